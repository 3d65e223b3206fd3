//! The demographics of a query or of an indexed patient, their validation and their
//! normalised form.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::{nickname_groups, normalize_name, soundex};

/// Administrative sex as recorded. `Unknown` compares as absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
    Other,
    Unknown,
}

/// A postal address. Every part optional; `line` is the street line ("12 Oak Street Apt 4").
/// `Debug` is redacted like [`Attributes`].
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
}

/// Demographics of a query (what the requester sent) or of a patient in the custodian's
/// [`Index`](crate::Index). Every field is optional; a *query* with neither a name
/// (given or family) nor a birth date is refused ([`AttributeError::NoNameOrBirthDate`]).
///
/// Raw values are kept as given and validated/normalised when scored or indexed:
/// names NFKD-folded to uppercase ASCII letters with hyphens and spaces collapsed,
/// `birth_date` a real `YYYY-MM-DD` calendar date, `ssn` 9 digits (hyphens and spaces
/// ignored), `ssn_last4` 4 digits (derived from `ssn` when `ssn` is given; both given and
/// different is an error), `phone` the digits only (a leading US country code `1` on 11
/// digits dropped; 7 to 15 digits), `postal_code` its first 5 digits.
///
/// These are PHI: `Debug` prints only which fields are present, never a value.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Attributes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<Sex>,
    /// 9 digits, hyphens allowed (`123-45-6789`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssn: Option<String>,
    /// 4 digits; only needed when the full `ssn` is not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssn_last4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl Attributes {
    /// The fields that are present, in [`AttributeName`] order (`ssn_last4` also when
    /// derived from `ssn`).
    pub fn present(&self) -> Vec<AttributeName> {
        let mut out = Vec::new();
        let mut add = |on: bool, name| {
            if on {
                out.push(name)
            }
        };
        add(self.given.is_some(), AttributeName::Given);
        add(self.family.is_some(), AttributeName::Family);
        add(self.birth_date.is_some(), AttributeName::BirthDate);
        add(
            self.sex.is_some_and(|s| s != Sex::Unknown),
            AttributeName::Sex,
        );
        add(self.ssn.is_some(), AttributeName::Ssn);
        add(
            self.ssn.is_some() || self.ssn_last4.is_some(),
            AttributeName::SsnLast4,
        );
        add(self.address.is_some(), AttributeName::Address);
        add(self.phone.is_some(), AttributeName::Phone);
        out
    }

    /// Validates every present field (the errors name the field, never the value).
    pub fn validate(&self) -> Result<(), AttributeError> {
        Norm::new(self).map(|_| ())
    }
}

impl fmt::Debug for Attributes {
    /// Redacted: `Attributes { present: [given, family, birth_date] }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.present().iter().map(|a| a.as_str()).collect();
        f.debug_struct("Attributes")
            .field("present", &names)
            .finish()
    }
}

impl fmt::Debug for Address {
    /// Redacted: only which parts are present.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.line.is_some() {
            parts.push("line");
        }
        if self.city.is_some() {
            parts.push("city");
        }
        if self.postal_code.is_some() {
            parts.push("postal_code");
        }
        f.debug_struct("Address").field("present", &parts).finish()
    }
}

/// The name of a demographic attribute, with a stable snake_case spelling; the order of the
/// variants is the fixed order in which [`Answer::NeedMoreAttributes`](crate::Answer) lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeName {
    Given,
    Family,
    BirthDate,
    Sex,
    Ssn,
    SsnLast4,
    Address,
    Phone,
}

impl AttributeName {
    /// All of them, in the fixed order.
    pub const ALL: [AttributeName; 8] = [
        AttributeName::Given,
        AttributeName::Family,
        AttributeName::BirthDate,
        AttributeName::Sex,
        AttributeName::Ssn,
        AttributeName::SsnLast4,
        AttributeName::Address,
        AttributeName::Phone,
    ];

    /// The stable snake_case name (`birth_date`, `ssn_last4`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeName::Given => "given",
            AttributeName::Family => "family",
            AttributeName::BirthDate => "birth_date",
            AttributeName::Sex => "sex",
            AttributeName::Ssn => "ssn",
            AttributeName::SsnLast4 => "ssn_last4",
            AttributeName::Address => "address",
            AttributeName::Phone => "phone",
        }
    }
}

impl fmt::Display for AttributeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused attribute. The message names the field and the rule, never the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    #[error("{0}: no letter left after normalisation")]
    EmptyName(AttributeName),
    #[error("birth_date: not a valid YYYY-MM-DD calendar date")]
    InvalidBirthDate,
    #[error("ssn: not 9 digits")]
    InvalidSsn,
    #[error("ssn_last4: not 4 digits")]
    InvalidSsnLast4,
    #[error("ssn_last4: differs from the last 4 digits of ssn")]
    SsnLast4Mismatch,
    #[error("phone: not 7 to 15 digits")]
    InvalidPhone,
    #[error("address: postal_code has fewer than 5 digits")]
    InvalidPostalCode,
    #[error("query: neither a name (given, family) nor a birth_date")]
    NoNameOrBirthDate,
}

impl AttributeError {
    /// The attribute at fault (`None` for [`AttributeError::NoNameOrBirthDate`]).
    pub fn field(&self) -> Option<AttributeName> {
        Some(match self {
            AttributeError::EmptyName(a) => *a,
            AttributeError::InvalidBirthDate => AttributeName::BirthDate,
            AttributeError::InvalidSsn => AttributeName::Ssn,
            AttributeError::InvalidSsnLast4 | AttributeError::SsnLast4Mismatch => {
                AttributeName::SsnLast4
            }
            AttributeError::InvalidPhone => AttributeName::Phone,
            AttributeError::InvalidPostalCode => AttributeName::Address,
            AttributeError::NoNameOrBirthDate => return None,
        })
    }
}

/// A calendar date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    pub(crate) fn parse(raw: &str) -> Option<Date> {
        let b = raw.trim().as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let s = &b[r];
            s.iter()
                .all(u8::is_ascii_digit)
                .then(|| s.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        if !(1800..=2200).contains(&year) || !(1..=12).contains(&month) {
            return None;
        }
        if day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date {
            year: year as u16,
            month: month as u8,
            day: day as u8,
        })
    }

    /// `YYYYMMDD` as 8 ASCII digits (for the one-digit-typo comparison).
    pub(crate) fn digits(self) -> [u8; 8] {
        let s = format!("{:04}{:02}{:02}", self.year, self.month, self.day);
        let mut out = [0u8; 8];
        out.copy_from_slice(s.as_bytes());
        out
    }
}

pub(crate) fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// A name, normalised, with what the comparisons need precomputed.
#[derive(Clone, Debug)]
pub(crate) struct NormName {
    pub full: String,
    pub soundex: Option<[u8; 4]>,
    /// Soundex of each space-separated part (compound family names, middle names).
    pub part_soundex: Vec<[u8; 4]>,
    pub nickname_groups: Vec<u16>,
}

impl NormName {
    fn new(raw: &str, field: AttributeName) -> Result<NormName, AttributeError> {
        let full = normalize_name(raw).ok_or(AttributeError::EmptyName(field))?;
        let part_soundex = full.split(' ').filter_map(soundex).collect();
        Ok(NormName {
            soundex: soundex(&full),
            part_soundex,
            nickname_groups: nickname_groups(&full),
            full,
        })
    }
}

/// The validated, normalised form of [`Attributes`] that scoring and indexing use.
#[derive(Clone, Debug, Default)]
pub(crate) struct Norm {
    pub given: Option<NormName>,
    pub family: Option<NormName>,
    pub birth_date: Option<Date>,
    /// `Unknown` is stored as `None`.
    pub sex: Option<Sex>,
    pub ssn: Option<[u8; 9]>,
    pub ssn_last4: Option<[u8; 4]>,
    pub address_line: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub phone: Option<String>,
}

fn digits_of(raw: &str, allowed_separators: &[char]) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    for c in raw.trim().chars() {
        if c.is_ascii_digit() {
            out.push(c);
        } else if !allowed_separators.contains(&c) {
            return None;
        }
    }
    Some(out)
}

/// Street line: uppercase alphanumerics, punctuation dropped, common USPS suffixes and
/// unit designators abbreviated, spaces collapsed.
fn normalize_line(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else if c == '.' || c == '\'' {
                '\0'
            } else {
                ' '
            }
        })
        .filter(|c| *c != '\0')
        .collect();
    let words: Vec<&str> = cleaned
        .split_whitespace()
        .map(|w| match w {
            "STREET" => "ST",
            "AVENUE" => "AVE",
            "ROAD" => "RD",
            "DRIVE" => "DR",
            "LANE" => "LN",
            "BOULEVARD" => "BLVD",
            "COURT" => "CT",
            "PLACE" => "PL",
            "TERRACE" => "TER",
            "CIRCLE" => "CIR",
            "PARKWAY" => "PKWY",
            "HIGHWAY" => "HWY",
            "APARTMENT" | "UNIT" | "SUITE" | "STE" | "#" => "APT",
            "NORTH" => "N",
            "SOUTH" => "S",
            "EAST" => "E",
            "WEST" => "W",
            w => w,
        })
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

impl Norm {
    pub(crate) fn new(a: &Attributes) -> Result<Norm, AttributeError> {
        let given = a
            .given
            .as_deref()
            .map(|g| NormName::new(g, AttributeName::Given))
            .transpose()?;
        let family = a
            .family
            .as_deref()
            .map(|g| NormName::new(g, AttributeName::Family))
            .transpose()?;
        let birth_date = a
            .birth_date
            .as_deref()
            .map(|d| Date::parse(d).ok_or(AttributeError::InvalidBirthDate))
            .transpose()?;
        let ssn = match a.ssn.as_deref() {
            None => None,
            Some(raw) => {
                let d = digits_of(raw, &['-', ' ']).ok_or(AttributeError::InvalidSsn)?;
                let d: [u8; 9] = d
                    .as_bytes()
                    .try_into()
                    .map_err(|_| AttributeError::InvalidSsn)?;
                Some(d)
            }
        };
        let given_last4 = match a.ssn_last4.as_deref() {
            None => None,
            Some(raw) => {
                let d = digits_of(raw, &[' ']).ok_or(AttributeError::InvalidSsnLast4)?;
                let d: [u8; 4] = d
                    .as_bytes()
                    .try_into()
                    .map_err(|_| AttributeError::InvalidSsnLast4)?;
                Some(d)
            }
        };
        let derived_last4 = ssn.map(|s| [s[5], s[6], s[7], s[8]]);
        if let (Some(d), Some(g)) = (derived_last4, given_last4) {
            if d != g {
                return Err(AttributeError::SsnLast4Mismatch);
            }
        }
        let phone = match a.phone.as_deref() {
            None => None,
            Some(raw) => {
                let mut d = digits_of(raw, &['-', ' ', '(', ')', '.', '+'])
                    .ok_or(AttributeError::InvalidPhone)?;
                if d.len() == 11 && d.starts_with('1') {
                    d.remove(0);
                }
                if !(7..=15).contains(&d.len()) {
                    return Err(AttributeError::InvalidPhone);
                }
                Some(d)
            }
        };
        let (mut address_line, mut city, mut postal_code) = (None, None, None);
        if let Some(addr) = &a.address {
            address_line = addr.line.as_deref().and_then(normalize_line);
            city = addr.city.as_deref().and_then(normalize_name);
            if let Some(raw) = addr.postal_code.as_deref() {
                let d = digits_of(raw, &['-', ' ']).ok_or(AttributeError::InvalidPostalCode)?;
                if d.len() < 5 {
                    return Err(AttributeError::InvalidPostalCode);
                }
                postal_code = Some(d[..5].to_string());
            }
        }
        Ok(Norm {
            given,
            family,
            birth_date,
            sex: a.sex.filter(|s| *s != Sex::Unknown),
            ssn,
            ssn_last4: derived_last4.or(given_last4),
            address_line,
            city,
            postal_code,
            phone,
        })
    }

    pub(crate) fn has(&self, a: AttributeName) -> bool {
        match a {
            AttributeName::Given => self.given.is_some(),
            AttributeName::Family => self.family.is_some(),
            AttributeName::BirthDate => self.birth_date.is_some(),
            AttributeName::Sex => self.sex.is_some(),
            AttributeName::Ssn => self.ssn.is_some(),
            AttributeName::SsnLast4 => self.ssn_last4.is_some(),
            AttributeName::Address => {
                self.address_line.is_some() || self.postal_code.is_some() || self.city.is_some()
            }
            AttributeName::Phone => self.phone.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Attributes {
        Attributes {
            given: Some("Jon".into()),
            family: Some("Smith".into()),
            birth_date: Some("1980-02-29".into()),
            sex: Some(Sex::Male),
            ssn: Some("123-45-6789".into()),
            ssn_last4: None,
            address: Some(Address {
                line: Some("12 Oak Street".into()),
                city: Some("Springfield".into()),
                postal_code: Some("62704".into()),
            }),
            phone: Some("(217) 555-0134".into()),
        }
    }

    #[test]
    fn debug_prints_no_value() {
        let a = full();
        let dbg = format!("{a:?} {:?}", a.address.as_ref().unwrap());
        for value in [
            "Jon",
            "JON",
            "Smith",
            "SMITH",
            "1980",
            "02-29",
            "123",
            "6789",
            "Oak",
            "Springfield",
            "62704",
            "217",
            "555",
            "Male",
        ] {
            assert!(!dbg.contains(value), "Debug leaks {value}: {dbg}");
        }
        assert!(dbg.contains("given") && dbg.contains("ssn_last4") && dbg.contains("phone"));
        let pretty = format!("{a:#?}");
        assert!(!pretty.contains("Smith"));
    }

    #[test]
    fn normalises_and_derives_last4() {
        let n = Norm::new(&full()).unwrap();
        assert_eq!(n.given.unwrap().full, "JON");
        assert_eq!(n.ssn_last4, Some(*b"6789"));
        assert_eq!(n.phone.as_deref(), Some("2175550134"));
        assert_eq!(n.address_line.as_deref(), Some("12 OAK ST"));
        assert_eq!(
            n.birth_date,
            Some(Date {
                year: 1980,
                month: 2,
                day: 29
            })
        );
    }

    #[test]
    fn errors_name_the_field_never_the_value() {
        type Case = (fn(&mut Attributes), AttributeError);
        let cases: [Case; 6] = [
            (
                |a| a.birth_date = Some("1981-02-29".into()),
                AttributeError::InvalidBirthDate,
            ),
            (
                |a| a.birth_date = Some("29/02/1980".into()),
                AttributeError::InvalidBirthDate,
            ),
            (
                |a| a.ssn = Some("12345678".into()),
                AttributeError::InvalidSsn,
            ),
            (
                |a| a.ssn_last4 = Some("6788".into()),
                AttributeError::SsnLast4Mismatch,
            ),
            (
                |a| a.phone = Some("555".into()),
                AttributeError::InvalidPhone,
            ),
            (
                |a| a.given = Some("--".into()),
                AttributeError::EmptyName(AttributeName::Given),
            ),
        ];
        for (mutate, expected) in cases {
            let mut a = full();
            mutate(&mut a);
            let err = a.validate().unwrap_err();
            assert_eq!(err, expected);
            let msg = err.to_string();
            assert!(msg.starts_with(expected.field().unwrap().as_str()), "{msg}");
            for leak in ["1981", "12345678", "6788", "555"] {
                assert!(!msg.contains(leak), "{msg}");
            }
        }
    }

    #[test]
    fn serde_is_snake_case() {
        let json = serde_json::to_string(&full()).unwrap();
        assert!(json.contains("\"birth_date\":\"1980-02-29\""), "{json}");
        assert!(json.contains("\"sex\":\"male\""), "{json}");
        assert!(json.contains("\"postal_code\""), "{json}");
        let back: Attributes = serde_json::from_str(&json).unwrap();
        assert_eq!(back, full());
        assert_eq!(
            serde_json::to_string(&AttributeName::SsnLast4).unwrap(),
            "\"ssn_last4\""
        );
    }
}
