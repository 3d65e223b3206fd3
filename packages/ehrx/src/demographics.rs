//! A patient's identifying details, normalised so both hospitals derive the same token.
//!
//! The type holds PHI: its `Debug` is redacted, it has no `Display`, its buffers are
//! zeroized on drop, and its errors name the field, never the value.

use crate::time;
use ehrx_matching::{Address, AttributeError, Attributes, Sex};
use serde::Deserialize;
use std::fmt;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

/// Earliest birth year accepted (anything older is a data-entry error).
pub const MIN_BIRTH_YEAR: u32 = 1850;

/// Why demographics were refused. Carries the field, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DemographicsError {
    #[error("the {0} name is empty once normalised (letters, digits, spaces and hyphens count)")]
    EmptyName(&'static str),
    #[error("the birth date is not a valid date (use YYYY-MM-DD, MM/DD/YYYY or YYYYMMDD)")]
    InvalidDate,
    #[error("the birth date is in the future or before {MIN_BIRTH_YEAR}")]
    ImplausibleDate,
    #[error("the SSN must be 9 digits, written 123-45-6789 or 123456789")]
    SsnFormat,
    #[error("the SSN is not a valid number: {0}")]
    SsnInvalid(&'static str),
}

/// Normalised demographics: the input of the patient token.
pub struct Demographics {
    given: Zeroizing<String>,
    family: Zeroizing<String>,
    birth_date: Zeroizing<String>,
    ssn: Zeroizing<String>,
}

impl Demographics {
    /// Normalises and checks every field.
    pub fn new(
        given: &str,
        family: &str,
        birth_date: &str,
        ssn: &str,
    ) -> Result<Demographics, DemographicsError> {
        Ok(Demographics {
            given: normalize_name(given).ok_or(DemographicsError::EmptyName("given"))?,
            family: normalize_name(family).ok_or(DemographicsError::EmptyName("family"))?,
            birth_date: normalize_birth_date(birth_date, time::now_unix())?,
            ssn: normalize_ssn(ssn)?,
        })
    }

    pub fn given(&self) -> &str {
        &self.given
    }

    pub fn family(&self) -> &str {
        &self.family
    }

    /// `YYYY-MM-DD`.
    pub fn birth_date(&self) -> &str {
        &self.birth_date
    }

    /// Nine digits, no dashes.
    pub fn ssn(&self) -> &str {
        &self.ssn
    }

    /// The normalised fields as matching attributes (name, birth date, SSN).
    pub fn attributes(&self) -> Attributes {
        Attributes {
            given: Some(self.given().to_string()),
            family: Some(self.family().to_string()),
            birth_date: Some(self.birth_date().to_string()),
            ssn: Some(self.ssn().to_string()),
            ..Attributes::default()
        }
    }

    /// JSON of the normalised fields, for the partner's matcher (always encrypted).
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({
                "given": self.given(),
                "family": self.family(),
                "birth_date": self.birth_date(),
                "ssn": self.ssn(),
            }))
            .expect("strings serialise"),
        )
    }
}

impl fmt::Debug for Demographics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Demographics { given: <redacted>, family: <redacted>, birth_date: <redacted>, ssn: <redacted> }")
    }
}

/// Demographics as read from a JSON file (`given`, `family`, `birth_date`, `ssn`), before
/// normalisation. Redacted like `Demographics`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemographicsInput {
    pub given: Zeroizing<String>,
    pub family: Zeroizing<String>,
    #[serde(alias = "birthDate", alias = "dob")]
    pub birth_date: Zeroizing<String>,
    pub ssn: Zeroizing<String>,
}

impl DemographicsInput {
    pub fn normalise(&self) -> Result<Demographics, DemographicsError> {
        Demographics::new(&self.given, &self.family, &self.birth_date, &self.ssn)
    }
}

impl fmt::Debug for DemographicsInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DemographicsInput { <redacted> }")
    }
}

/// The US SSN identifier system, as FHIR writes it.
pub const SSN_SYSTEM: &str = "http://hl7.org/fhir/sid/us-ssn";

/// The one Patient of a FHIR Bundle, read for its details only: every other resource and
/// field is skipped as it is parsed, so a history of many megabytes is never held as a
/// tree.
#[derive(Deserialize)]
struct PatientOnly<'a> {
    #[serde(borrow, default)]
    entry: Vec<EntryOnly<'a>>,
}

#[derive(Deserialize)]
struct EntryOnly<'a> {
    #[serde(borrow)]
    resource: Option<&'a serde_json::value::RawValue>,
}

/// Any resource, for its type (its other fields are skipped, whatever their shape).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeOnly {
    resource_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceOnly {
    #[serde(default)]
    name: Vec<HumanName>,
    birth_date: Option<Zeroizing<String>>,
    #[serde(default)]
    identifier: Vec<Identifier>,
    gender: Option<String>,
    #[serde(default)]
    address: Vec<FhirAddress>,
    #[serde(default)]
    telecom: Vec<ContactPoint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FhirAddress {
    #[serde(rename = "use")]
    address_use: Option<String>,
    #[serde(default)]
    line: Vec<String>,
    city: Option<String>,
    postal_code: Option<String>,
}

#[derive(Deserialize)]
struct ContactPoint {
    system: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
struct HumanName {
    #[serde(rename = "use")]
    name_use: Option<String>,
    family: Option<Zeroizing<String>>,
    #[serde(default)]
    given: Vec<Zeroizing<String>>,
}

#[derive(Deserialize)]
struct Identifier {
    system: Option<String>,
    value: Option<Zeroizing<String>>,
}

/// Why a Bundle's Patient gave no demographics. Names the element, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FromBundleError {
    #[error("the Bundle is not JSON (line {0}, column {1})")]
    NotJson(usize, usize),
    #[error(
        "the Bundle holds {0} Patient resources; exactly one is needed (or pass --demographics)"
    )]
    PatientCount(usize),
    #[error("the Patient has no {0}: give it one, or pass the details with --demographics")]
    Missing(&'static str),
    #[error(transparent)]
    Invalid(#[from] DemographicsError),
    #[error("the Patient's details are not valid for matching: {0}")]
    Attribute(#[from] AttributeError),
}

/// The patient's details from a Bundle's one Patient: the official name (else the first),
/// its first given name and family name, `birthDate`, and the identifier of system
/// `http://hl7.org/fhir/sid/us-ssn`.
pub fn from_bundle(bundle_json: &[u8]) -> Result<Demographics, FromBundleError> {
    let patient = the_patient(bundle_json)?;
    let (given, family) = names(&patient)?;
    let birth_date = patient
        .birth_date
        .as_ref()
        .ok_or(FromBundleError::Missing("birthDate"))?;
    let ssn = ssn_of(&patient).ok_or(FromBundleError::Missing(
        "identifier with system http://hl7.org/fhir/sid/us-ssn",
    ))?;
    Ok(Demographics::new(given, family, birth_date, ssn)?)
}

/// What the custodian's patient index keeps of a Bundle's one Patient, for matching: the
/// name, birth date, sex, SSN, home (else first) address and phone, each when present.
pub fn attributes_from_bundle(bundle_json: &[u8]) -> Result<Attributes, FromBundleError> {
    let patient = the_patient(bundle_json)?;
    let (given, family) = names(&patient)?;
    let address = patient
        .address
        .iter()
        .find(|a| a.address_use.as_deref() == Some("home"))
        .or_else(|| patient.address.first())
        .map(|a| Address {
            line: (!a.line.is_empty()).then(|| a.line.join(" ")),
            city: a.city.clone(),
            postal_code: a.postal_code.clone(),
        });
    let sex = patient.gender.as_deref().map(|g| match g {
        "male" => Sex::Male,
        "female" => Sex::Female,
        "other" => Sex::Other,
        _ => Sex::Unknown,
    });
    let attributes = Attributes {
        given: Some(given.to_string()),
        family: Some(family.to_string()),
        birth_date: patient.birth_date.as_ref().map(|d| d.to_string()),
        sex,
        ssn: ssn_of(&patient).map(|s| s.to_string()),
        ssn_last4: None,
        address,
        phone: patient
            .telecom
            .iter()
            .find(|t| t.system.as_deref() == Some("phone"))
            .and_then(|t| t.value.clone()),
    };
    attributes.validate()?;
    Ok(attributes)
}

fn the_patient(bundle_json: &[u8]) -> Result<ResourceOnly, FromBundleError> {
    let bundle: PatientOnly = serde_json::from_slice(bundle_json)
        .map_err(|e| FromBundleError::NotJson(e.line(), e.column()))?;
    let not_json = |e: serde_json::Error| FromBundleError::NotJson(e.line(), e.column());
    let mut patients: Vec<ResourceOnly> = Vec::new();
    for resource in bundle.entry.iter().filter_map(|e| e.resource) {
        let kind: TypeOnly = serde_json::from_str(resource.get()).map_err(not_json)?;
        if kind.resource_type == "Patient" {
            patients.push(serde_json::from_str(resource.get()).map_err(not_json)?);
        }
    }
    if patients.len() != 1 {
        return Err(FromBundleError::PatientCount(patients.len()));
    }
    Ok(patients.remove(0))
}

/// The official name (else the first): its first given name and its family name.
fn names(patient: &ResourceOnly) -> Result<(&str, &str), FromBundleError> {
    let name = patient
        .name
        .iter()
        .find(|n| n.name_use.as_deref() == Some("official"))
        .or_else(|| patient.name.first())
        .ok_or(FromBundleError::Missing("name"))?;
    let given = name
        .given
        .first()
        .ok_or(FromBundleError::Missing("given name"))?;
    let family = name
        .family
        .as_ref()
        .ok_or(FromBundleError::Missing("family name"))?;
    Ok((given, family))
}

fn ssn_of(patient: &ResourceOnly) -> Option<&str> {
    patient
        .identifier
        .iter()
        .find(|i| i.system.as_deref() == Some(SSN_SYSTEM))
        .and_then(|i| i.value.as_deref().map(|v| v.as_str()))
}

/// Letters that NFKD does not decompose, spelled the way ASCII records usually write them.
fn fold_letter(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'ø' => "o",
        'ł' => "l",
        'đ' | 'ð' => "d",
        'þ' => "th",
        'ı' => "i",
        _ => return None,
    })
}

/// NFKD, drop combining marks, lowercase, keep letters/digits/hyphens, collapse whitespace
/// (and whitespace around hyphens). `None` when nothing is left.
pub fn normalize_name(raw: &str) -> Option<Zeroizing<String>> {
    let mut folded = Zeroizing::new(String::with_capacity(raw.len()));
    for c in raw.nfkd().filter(|c| !is_combining_mark(*c)) {
        for c in c.to_lowercase().filter(|c| !is_combining_mark(*c)) {
            if let Some(ascii) = fold_letter(c) {
                folded.push_str(ascii);
            } else if c.is_alphanumeric() {
                folded.push(c);
            } else if c == '-' || c == '\u{2010}' {
                folded.push('-');
            } else if c.is_whitespace() {
                folded.push(' ');
            }
            // Anything else (apostrophes, periods, commas, ...) is dropped.
        }
    }
    // Collapse runs of separators; a hyphen wins over the spaces around it.
    let mut result = Zeroizing::new(String::with_capacity(folded.len()));
    let mut pending: Option<char> = None;
    for c in folded.chars() {
        match c {
            ' ' | '-' => {
                if !result.is_empty() {
                    pending = Some(if c == '-' || pending == Some('-') {
                        '-'
                    } else {
                        ' '
                    });
                }
            }
            c => {
                if let Some(sep) = pending.take() {
                    result.push(sep);
                }
                result.push(c);
            }
        }
    }
    (!result.is_empty()).then_some(result)
}

/// Accepts `YYYY-MM-DD`, `MM/DD/YYYY` and `YYYYMMDD`; returns `YYYY-MM-DD`. Refuses
/// impossible dates, dates after `now_unix` and years before `MIN_BIRTH_YEAR`.
pub fn normalize_birth_date(
    raw: &str,
    now_unix: u64,
) -> Result<Zeroizing<String>, DemographicsError> {
    let raw = raw.trim();
    if !raw.is_ascii() {
        return Err(DemographicsError::InvalidDate);
    }
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let num = |s: &str| -> Result<u32, DemographicsError> {
        if all_digits(s) {
            s.parse().map_err(|_| DemographicsError::InvalidDate)
        } else {
            Err(DemographicsError::InvalidDate)
        }
    };
    let (y, m, d) = match raw.len() {
        10 if raw.as_bytes()[4] == b'-' && raw.as_bytes()[7] == b'-' => {
            (num(&raw[0..4])?, num(&raw[5..7])?, num(&raw[8..10])?)
        }
        10 if raw.as_bytes()[2] == b'/' && raw.as_bytes()[5] == b'/' => {
            (num(&raw[6..10])?, num(&raw[0..2])?, num(&raw[3..5])?)
        }
        8 if all_digits(raw) => (num(&raw[0..4])?, num(&raw[4..6])?, num(&raw[6..8])?),
        _ => return Err(DemographicsError::InvalidDate),
    };
    let (year, month, day) = time::checked_date(y, m, d).ok_or(DemographicsError::InvalidDate)?;
    let today = (now_unix / 86_400) as i64;
    if y < MIN_BIRTH_YEAR || time::days_from_civil(year, month, day) > today {
        return Err(DemographicsError::ImplausibleDate);
    }
    Ok(Zeroizing::new(format!("{year:04}-{month:02}-{day:02}")))
}

/// Nine digits, written `123-45-6789` or `123456789`; refuses area 000, 666 and 900-999,
/// group 00 and serial 0000 (never issued). Returns the nine digits.
pub fn normalize_ssn(raw: &str) -> Result<Zeroizing<String>, DemographicsError> {
    let raw = raw.trim();
    if !raw.is_ascii() {
        return Err(DemographicsError::SsnFormat);
    }
    let b = raw.as_bytes();
    let digits: Zeroizing<String> = match b.len() {
        9 => Zeroizing::new(raw.to_string()),
        11 if b[3] == b'-' && b[6] == b'-' => {
            Zeroizing::new(format!("{}{}{}", &raw[0..3], &raw[4..6], &raw[7..11]))
        }
        _ => return Err(DemographicsError::SsnFormat),
    };
    if !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(DemographicsError::SsnFormat);
    }
    let area = &digits[0..3];
    if area == "000" || area == "666" || area.starts_with('9') {
        return Err(DemographicsError::SsnInvalid(
            "area 000, 666 and 900-999 are never issued",
        ));
    }
    if &digits[3..5] == "00" {
        return Err(DemographicsError::SsnInvalid("group 00 is never issued"));
    }
    if &digits[5..9] == "0000" {
        return Err(DemographicsError::SsnInvalid("serial 0000 is never issued"));
    }
    Ok(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> String {
        normalize_name(raw)
            .map(|s| s.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn names_fold_accents_case_punctuation_and_spaces() {
        assert_eq!(name("José"), "jose");
        assert_eq!(name("ÁLVAREZ"), "alvarez");
        assert_eq!(name("  Mary   Ann "), "mary ann");
        assert_eq!(name("O'Brien"), "obrien");
        assert_eq!(name("St. John"), "st john");
        assert_eq!(name("Smith - Jones"), "smith-jones");
        assert_eq!(name("Smith-Jones"), "smith-jones");
        assert_eq!(name("Müller"), "muller");
        assert_eq!(name("Straße"), "strasse");
        assert_eq!(name("Øster"), "oster");
        assert_eq!(name("Łukasz"), "lukasz");
        assert_eq!(name("Nguyễn"), "nguyen");
        // Compatibility forms (full-width letters, ligatures) fold too.
        assert_eq!(name("ＪＯＳＥ"), "jose");
        assert_eq!(name("ﬁona"), "fiona");
        // Decomposed and precomposed input give the same result.
        assert_eq!(name("Jose\u{301}"), name("Jos\u{e9}"));
        assert_eq!(normalize_name(" .,' "), None);
        assert_eq!(name("-Ann-"), "ann");
    }

    #[test]
    fn dates_in_three_formats_and_invalid_ones_refused() {
        let now = 1_750_000_000; // 2025-06-15
        let d = |s: &str| normalize_birth_date(s, now).map(|d| d.to_string());
        assert_eq!(d("1980-02-29").unwrap(), "1980-02-29");
        assert_eq!(d("02/29/1980").unwrap(), "1980-02-29");
        assert_eq!(d("19800229").unwrap(), "1980-02-29");
        assert_eq!(d(" 1980-01-05 ").unwrap(), "1980-01-05");
        assert_eq!(d("1981-02-29"), Err(DemographicsError::InvalidDate));
        assert_eq!(d("1980-13-01"), Err(DemographicsError::InvalidDate));
        assert_eq!(d("1980-04-31"), Err(DemographicsError::InvalidDate));
        assert_eq!(d("1980-00-10"), Err(DemographicsError::InvalidDate));
        assert_eq!(d("29/02/1980"), Err(DemographicsError::InvalidDate));
        assert_eq!(d("1980/02/29"), Err(DemographicsError::InvalidDate));
        assert_eq!(d("1980-2-9"), Err(DemographicsError::InvalidDate));
        assert_eq!(d("+980-02-29"), Err(DemographicsError::InvalidDate));
        assert_eq!(d("yesterday"), Err(DemographicsError::InvalidDate));
        assert_eq!(d("2030-01-01"), Err(DemographicsError::ImplausibleDate));
        assert_eq!(d("1700-01-01"), Err(DemographicsError::ImplausibleDate));
    }

    #[test]
    fn ssns_normalise_and_invalid_ones_are_refused() {
        let s = |raw: &str| normalize_ssn(raw).map(|s| s.to_string());
        assert_eq!(s("123-45-6789").unwrap(), "123456789");
        assert_eq!(s("123456789").unwrap(), "123456789");
        assert_eq!(s("12-345-6789"), Err(DemographicsError::SsnFormat));
        assert_eq!(s("12345678"), Err(DemographicsError::SsnFormat));
        assert_eq!(s("1234567890"), Err(DemographicsError::SsnFormat));
        assert_eq!(s("12a456789"), Err(DemographicsError::SsnFormat));
        assert_eq!(s("123 45 6789"), Err(DemographicsError::SsnFormat));
        for bad in ["000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456"] {
            assert!(
                matches!(s(bad), Err(DemographicsError::SsnInvalid(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            s("123-00-4567"),
            Err(DemographicsError::SsnInvalid(_))
        ));
        assert!(matches!(
            s("123-45-0000"),
            Err(DemographicsError::SsnInvalid(_))
        ));
        assert!(s("899-99-9999").is_ok());
    }

    #[test]
    fn debug_is_redacted_and_errors_hold_no_values() {
        let d = Demographics::new("José", "Álvarez", "1980-01-05", "123-45-6789").unwrap();
        let shown = format!("{d:?}");
        for phi in ["jose", "alvarez", "1980", "123456789", "6789"] {
            assert!(!shown.contains(phi), "{shown}");
        }
        assert!(shown.contains("redacted"));

        let input: DemographicsInput = serde_json::from_str(
            r#"{"given":"José","family":"Álvarez","birthDate":"01/05/1980","ssn":"123456789"}"#,
        )
        .unwrap();
        assert!(!format!("{input:?}").contains("José"));
        let normalised = input.normalise().unwrap();
        assert_eq!(normalised.birth_date(), "1980-01-05");

        let err = Demographics::new("José", "Álvarez", "1980-01-05", "666-45-6789").unwrap_err();
        assert!(!err.to_string().contains("45-6789"));
        assert!(!err.to_string().contains("6789"));
        let err = Demographics::new("José", "Álvarez", "01/32/1980", "123-45-6789").unwrap_err();
        assert!(!err.to_string().contains("32"));
    }

    #[test]
    fn details_come_from_the_bundles_one_patient() {
        let bundle = br#"{"resourceType":"Bundle","type":"collection","entry":[
            {"fullUrl":"urn:uuid:1","resource":{"resourceType":"Observation","status":"final"}},
            {"fullUrl":"urn:uuid:3","resource":{"resourceType":"Organization","name":"General"}},
            {"fullUrl":"urn:uuid:2","resource":{"resourceType":"Patient","id":"p",
             "name":[{"use":"usual","given":["Bob"],"family":"X"},
                     {"use":"official","given":["Amara","Ngozi"],"family":"Okafor"}],
             "birthDate":"1979-06-21",
             "identifier":[{"system":"urn:mrn","value":"12"},
                           {"system":"http://hl7.org/fhir/sid/us-ssn","value":"212-45-6701"}]}}]}"#;
        let d = from_bundle(bundle).unwrap();
        assert_eq!(
            (d.given(), d.family(), d.birth_date(), d.ssn()),
            ("amara", "okafor", "1979-06-21", "212456701")
        );
        let no_ssn = String::from_utf8(bundle.to_vec())
            .unwrap()
            .replace("us-ssn", "other");
        assert_eq!(
            from_bundle(no_ssn.as_bytes()).unwrap_err(),
            FromBundleError::Missing("identifier with system http://hl7.org/fhir/sid/us-ssn")
        );
        let two = br#"{"entry":[{"resource":{"resourceType":"Patient"}},{"resource":{"resourceType":"Patient"}}]}"#;
        assert_eq!(
            from_bundle(two).unwrap_err(),
            FromBundleError::PatientCount(2)
        );
        assert!(matches!(
            from_bundle(b"{").unwrap_err(),
            FromBundleError::NotJson(..)
        ));
    }
}
