//! A patient's sharing directive (`ehr_protocol::consent`) as a FHIR R4 `Consent`, out and in.
//!
//! Out ([`consent_to_fhir`]): a privacy consent (scope `patient-privacy`, category LOINC
//! 59284-0) about the patient named by the custodian's pseudonym only (never demographics),
//! held by the custodian network, with one top-level `provision` of type permit or deny that
//! carries the directive's period, partner networks (actors in the role of information
//! recipient), purposes of use (v3-ActReason) and record categories (security labels); a deny
//! the patient allowed break-glass to override has one nested permit for purpose
//! v3-ActReason `BTG`. The Consent's id is the directive id.
//!
//! In ([`consent_from_fhir`]): strict. Only what a directive can say is accepted; anything
//! that would narrow or widen it in a way the chain cannot enforce (a provision on data,
//! classes or codes, an actor that is not a partner network, an unknown purpose or label, a
//! modifier extension) is refused rather than dropped. The patient is either the custodian's
//! pseudonym (`patient.identifier`) or a contained `Patient` with name, birth date and SSN,
//! from which the caller derives the pseudonym with its own key ([`ImportedConsent::into_input`]):
//! this module never holds the key.
//!
//! Errors name the element and the fix, with a code (`consent-import/...`); they never
//! repeat a patient's value (codes such as a purpose or a status are repeated, when they look
//! like codes).
//!
//! The mappings (docs/FHIR-EXPORT.md):
//!
//! | directive | FHIR |
//! |---|---|
//! | `decision` Permit / Deny | `provision.type` permit / deny; `policyRule` v3-ActCode OPTIN / OPTOUT (OPTOUTE for a deny with the break-glass exception) |
//! | `partners` | `provision.actor[]`: role v3-ParticipationType IRCP, `reference.identifier` `urn:ehrx:network` |
//! | `purposes` | `provision.purpose[]`: v3-ActReason TREAT, ETREAT, HPAYMT, HOPERAT |
//! | `categories` | `provision.securityLabel[]`: see [`category_label`] |
//! | `valid_from` / `valid_until` | `provision.period.start` / `.end` (end inclusive: `valid_until - 1` s) |
//! | `break_glass_override` (deny) | `provision.provision[0]`: permit, purpose v3-ActReason BTG |
//! | `recorded_at` | `dateTime` |
//! | `status` Revoked { at } | `status` inactive, `meta.lastUpdated` = at |

use crate::demographics::{Demographics, DemographicsError, SSN_SYSTEM};
use crate::fhir::{
    directive_system, pseudonym_system, purpose_code, purpose_from_code, StdCoding, ACT_REASON,
    NETWORK_SYSTEM, PSEUDONYM_SYSTEM_PREFIX, PURPOSES,
};
use crate::time;
use ehr_protocol::consent::{
    ConsentDecision, ConsentDirective, ConsentDirectiveInput, DirectiveStatus, RecordCategory,
    MAX_DIRECTIVE_SCOPE,
};
use ehr_protocol::exchange::PurposeOfUse;
use ehr_protocol::validate;
use serde_json::{json, Map, Value};
use std::fmt;

const V3_ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const V3_CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const PARTICIPATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const CONSENT_SCOPE: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
const LOINC: &str = "http://loinc.org";

/// The Consent's scope: a privacy consent.
pub const SCOPE_PATIENT_PRIVACY: StdCoding = (CONSENT_SCOPE, "patient-privacy", "Privacy Consent");
/// The Consent's category: LOINC 59284-0.
pub const CATEGORY_PATIENT_CONSENT: StdCoding = (LOINC, "59284-0", "Patient Consent");
/// The role of a partner named by a directive: the recipient of the records.
pub const ACTOR_RECIPIENT: StdCoding = (PARTICIPATION_TYPE, "IRCP", "information recipient");
/// The purpose of the nested permit of a deny the patient let break-glass override.
pub const PURPOSE_BTG: StdCoding = (ACT_REASON, "BTG", "break the glass");

/// The security label a record category is written with. `General` (records of no special
/// sensitivity) is v3-Confidentiality `N` (normal): without a label a directive about general
/// records only would read as one about every category.
pub fn category_label(category: RecordCategory) -> StdCoding {
    match category {
        RecordCategory::General => (V3_CONFIDENTIALITY, "N", "normal"),
        RecordCategory::MentalHealth => (
            V3_ACT_CODE,
            "PSY",
            "psychiatry disorder information sensitivity",
        ),
        RecordCategory::SubstanceUse => (
            V3_ACT_CODE,
            "ETH",
            "substance abuse information sensitivity",
        ),
        RecordCategory::Reproductive => (
            V3_ACT_CODE,
            "SEX",
            "sexuality and reproductive health information sensitivity",
        ),
        RecordCategory::Hiv => (V3_ACT_CODE, "HIV", "HIV/AIDS information sensitivity"),
        RecordCategory::Genetic => (
            V3_ACT_CODE,
            "GDIS",
            "genetic disease information sensitivity",
        ),
    }
}

/// The policy rule of a directive: what the base policy is, given its one provision.
fn policy_rule(input: &ConsentDirectiveInput) -> StdCoding {
    match (input.decision, input.break_glass_override) {
        (ConsentDecision::Permit, _) => (V3_ACT_CODE, "OPTIN", "opt-in"),
        (ConsentDecision::Deny, false) => (V3_ACT_CODE, "OPTOUT", "op-out"),
        (ConsentDecision::Deny, true) => (V3_ACT_CODE, "OPTOUTE", "opt-out with exceptions"),
    }
}

fn coding((system, code, display): StdCoding) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

/// `valid_until` is exclusive (the first second it no longer applies); `period.end` is
/// inclusive: the last whole second it applies.
fn period(input: &ConsentDirectiveInput) -> Option<Value> {
    let mut p = Map::new();
    if let Some(from) = input.valid_from {
        p.insert("start".into(), json!(time::rfc3339(from, 0)));
    }
    if let Some(until) = input.valid_until {
        p.insert(
            "end".into(),
            json!(time::rfc3339(until.saturating_sub(1), 0)),
        );
    }
    (!p.is_empty()).then_some(Value::Object(p))
}

/// A directive as a FHIR R4 `Consent` of `custodian_network` (whose chain keeps it).
pub fn consent_to_fhir(d: &ConsentDirective, custodian_network: &str) -> Value {
    let input = &d.input;
    let mut provision = json!({
        "type": match input.decision {
            ConsentDecision::Permit => "permit",
            ConsentDecision::Deny => "deny",
        },
    });
    if let Some(p) = period(input) {
        provision["period"] = p;
    }
    if !input.partners.is_empty() {
        provision["actor"] = input
            .partners
            .iter()
            .map(|partner| {
                json!({
                    "role": { "coding": [coding(ACTOR_RECIPIENT)] },
                    "reference": {
                        "identifier": { "system": NETWORK_SYSTEM, "value": partner },
                        "display": format!("network {partner}"),
                    },
                })
            })
            .collect();
    }
    if !input.purposes.is_empty() {
        provision["purpose"] = input
            .purposes
            .iter()
            .map(|&p| {
                let (code, display) = purpose_code(p);
                coding((ACT_REASON, code, display))
            })
            .collect();
    }
    if !input.categories.is_empty() {
        provision["securityLabel"] = input
            .categories
            .iter()
            .map(|&c| coding(category_label(c)))
            .collect();
    }
    if input.decision == ConsentDecision::Deny && input.break_glass_override {
        provision["provision"] = json!([{
            "type": "permit",
            "purpose": [coding(PURPOSE_BTG)],
        }]);
    }
    let mut consent = json!({
        "resourceType": "Consent",
        "id": input.directive_id,
        "identifier": [{
            "system": directive_system(custodian_network),
            "value": input.directive_id,
        }],
        "status": match d.status {
            DirectiveStatus::Active => "active",
            DirectiveStatus::Revoked { .. } => "inactive",
        },
        "scope": { "coding": [coding(SCOPE_PATIENT_PRIVACY)] },
        "category": [{ "coding": [coding(CATEGORY_PATIENT_CONSENT)] }],
        "patient": {
            "identifier": {
                "system": pseudonym_system(custodian_network),
                "value": input.patient,
            },
        },
        "dateTime": time::rfc3339(d.recorded_at, 0),
        "organization": [{
            "identifier": { "system": NETWORK_SYSTEM, "value": custodian_network },
            "display": format!("network {custodian_network}"),
        }],
        "policyRule": { "coding": [coding(policy_rule(input))] },
        "provision": provision,
    });
    consent["text"] = crate::fhir::narrative(&summary(d));
    if let DirectiveStatus::Revoked { at } = d.status {
        consent["meta"] = json!({ "lastUpdated": time::rfc3339(at, 0) });
    }
    consent
}

/// The Consent's narrative: what the directive decides (no patient details).
fn summary(d: &ConsentDirective) -> String {
    let i = &d.input;
    let list = |items: Vec<String>, all: &str| {
        if items.is_empty() {
            all.to_string()
        } else {
            items.join(", ")
        }
    };
    format!(
        "Sharing directive {} ({}): {} the release of {} records to {} for {}{}.",
        i.directive_id,
        match d.status {
            DirectiveStatus::Active => "active",
            DirectiveStatus::Revoked { .. } => "revoked",
        },
        match i.decision {
            ConsentDecision::Permit => "permits",
            ConsentDecision::Deny => "denies",
        },
        list(
            i.categories
                .iter()
                .map(|c| c.as_str().replace('_', " "))
                .collect(),
            "all"
        ),
        list(i.partners.clone(), "every partner network"),
        list(
            i.purposes
                .iter()
                .map(|&p| purpose_code(p).1.to_lowercase())
                .collect(),
            "any purpose"
        ),
        if i.decision == ConsentDecision::Deny && i.break_glass_override {
            "; a break-glass request may override it"
        } else {
            ""
        }
    )
}

/// Why a Consent was refused: the element, the fix, and a code. Never a patient's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentImportError {
    #[error("consent-import/not-json: the file is not JSON (line {line}, column {column}); fix its syntax")]
    NotJson { line: usize, column: usize },
    #[error("consent-import/resource-type: resourceType is {found}, not \"Consent\"; import a FHIR R4 Consent resource")]
    WrongResourceType { found: Shown },
    #[error("consent-import/missing: {field} is missing; {fix}")]
    Missing {
        field: &'static str,
        fix: &'static str,
    },
    #[error("consent-import/invalid: {field} {problem}; {fix}")]
    Invalid {
        field: String,
        problem: &'static str,
        fix: &'static str,
    },
    #[error("consent-import/id: Consent.id must be the directive id, 16 to 64 characters of a-z, 0-9 and '-' (the protocol's id rule); give the Consent such an id")]
    BadId,
    #[error("consent-import/status: Consent.status is {found}; only an active or proposed Consent becomes a directive (a revoked one is revoked on the chain, not imported)")]
    Status { found: Shown },
    #[error("consent-import/provision: {problem}; a directive is one top-level provision of type permit or deny (a deny may hold one nested permit for purpose v3-ActReason BTG)")]
    Provision { problem: String },
    #[error("consent-import/unsupported: {field} is not supported: a directive is scoped by partner network, purpose of use, record category and period only; remove it (importing without it would change what the patient asked)")]
    Unsupported { field: String },
    #[error("consent-import/purpose: {field} is {found}, not a known purpose of use; use one of {known}")]
    UnknownPurpose {
        field: String,
        found: Shown,
        known: KnownPurposes,
    },
    #[error("consent-import/category: {field} is {found}, not a known record category label; use one of {known}")]
    UnknownCategory {
        field: String,
        found: Shown,
        known: KnownCategories,
    },
    #[error("consent-import/period: {field} is not a FHIR dateTime (YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm), at or after 1970); {fix}")]
    BadPeriod {
        field: &'static str,
        fix: &'static str,
    },
    #[error("consent-import/period-order: Consent.provision.period ends before it starts; swap or correct start and end")]
    PeriodOrder,
    #[error("consent-import/patient: {problem}; {fix}")]
    Patient { problem: &'static str, fix: String },
    #[error("consent-import/demographics: the contained Patient's details are refused: {0}")]
    Demographics(#[from] DemographicsError),
}

impl ConsentImportError {
    /// The error's code (`consent-import/...`), for scripts and tests.
    pub fn code(&self) -> &'static str {
        use ConsentImportError::*;
        match self {
            NotJson { .. } => "consent-import/not-json",
            WrongResourceType { .. } => "consent-import/resource-type",
            Missing { .. } => "consent-import/missing",
            Invalid { .. } => "consent-import/invalid",
            BadId => "consent-import/id",
            Status { .. } => "consent-import/status",
            Provision { .. } => "consent-import/provision",
            Unsupported { .. } => "consent-import/unsupported",
            UnknownPurpose { .. } => "consent-import/purpose",
            UnknownCategory { .. } => "consent-import/category",
            BadPeriod { .. } => "consent-import/period",
            PeriodOrder => "consent-import/period-order",
            Patient { .. } => "consent-import/patient",
            Demographics(_) => "consent-import/demographics",
        }
    }
}

/// A value from the file that is repeated in an error only when it looks like a code (at most
/// 64 of `[A-Za-z0-9._:/#|-]`): a status, a resource type, a purpose or label code and its
/// system. Anything else (which could be a patient's data) is not repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown(Option<String>);

impl Shown {
    fn of(value: Option<&Value>) -> Shown {
        let text = match value {
            Some(Value::String(s)) => s.as_str(),
            _ => return Shown(None),
        };
        let codelike = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:/#|-".contains(&b));
        Shown(codelike.then(|| text.to_string()))
    }

    fn coding(c: &Value) -> Shown {
        let system = c
            .get("system")
            .and_then(Value::as_str)
            .unwrap_or("(no system)");
        let code = Shown::of(c.get("code"));
        match (Shown::of(Some(&json!(system))).0, code.0) {
            (Some(s), Some(c)) => Shown(Some(format!("{s}#{c}"))),
            (None, Some(c)) => Shown(Some(format!("(an unusable system)#{c}"))),
            _ => Shown(None),
        }
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(s) => write!(f, "\"{s}\""),
            None => f.write_str("a value that is not a code (not repeated here)"),
        }
    }
}

/// The purposes of use a Consent may name (for the error message).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KnownPurposes;

impl fmt::Display for KnownPurposes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let codes: Vec<String> = PURPOSES
            .iter()
            .map(|&p| {
                let (code, display) = purpose_code(p);
                format!("{code} ({display})")
            })
            .collect();
        write!(
            f,
            "{ACT_REASON} {} (and BTG, only as the purpose of the nested permit of a deny)",
            codes.join(", ")
        )
    }
}

/// The record category labels a Consent may name (for the error message).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KnownCategories;

impl fmt::Display for KnownCategories {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<String> = RecordCategory::ALL
            .iter()
            .map(|&c| {
                let (system, code, _) = category_label(c);
                format!("{system}#{code} ({})", c.as_str())
            })
            .collect();
        f.write_str(&labels.join(", "))
    }
}

/// Who the imported Consent is about.
pub enum ConsentPatient {
    /// The custodian's pseudonym, given in `patient.identifier` (checked: 64 lowercase hex).
    Pseudonym(String),
    /// A contained Patient's details, normalised: the caller derives the pseudonym with its
    /// own key.
    Demographics(Demographics),
}

impl fmt::Debug for ConsentPatient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsentPatient::Pseudonym(p) => write!(f, "Pseudonym({p})"),
            ConsentPatient::Demographics(d) => write!(f, "Demographics({d:?})"),
        }
    }
}

/// A Consent read by [`consent_from_fhir`]: the directive, but for its patient.
#[derive(Debug)]
pub struct ImportedConsent {
    pub patient: ConsentPatient,
    /// Every field but `patient` (empty until [`ImportedConsent::into_input`]).
    pub directive: ConsentDirectiveInput,
}

impl ImportedConsent {
    /// The directive to record: the pseudonym as given, or `pseudonym_of` the contained
    /// Patient's details (the caller's key: `|d| pseudonym::pseudonym(&key, d)`). Checked
    /// as the contract checks it.
    pub fn into_input(
        self,
        pseudonym_of: impl FnOnce(&Demographics) -> String,
    ) -> std::result::Result<ConsentDirectiveInput, ConsentImportError> {
        let mut input = self.directive;
        input.patient = match self.patient {
            ConsentPatient::Pseudonym(p) => p,
            ConsentPatient::Demographics(d) => pseudonym_of(&d),
        };
        if validate::patient_token(&input.patient).is_err() {
            return Err(ConsentImportError::Patient {
                problem: "the derived pseudonym is not 64 lowercase hex characters",
                fix: "derive it with pseudonym::pseudonym and this hospital's key".into(),
            });
        }
        if input.validate().is_err() {
            return Err(ConsentImportError::Provision {
                problem: "the directive does not pass the protocol's format checks".into(),
            });
        }
        Ok(input)
    }
}

type Result<T> = std::result::Result<T, ConsentImportError>;

fn field_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn array<'a>(obj: &'a Map<String, Value>, key: &str, field: &str) -> Result<&'a [Value]> {
    match obj.get(key) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(ConsentImportError::Invalid {
            field: field.to_string(),
            problem: "is not a JSON array",
            fix: "write it as an array, as FHIR JSON does for repeating elements",
        }),
    }
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| ConsentImportError::Invalid {
        field: field.to_string(),
        problem: "is not a JSON object",
        fix: "write it as an object",
    })
}

/// A FHIR dateTime as unix seconds, and whether it was a whole day (`YYYY-MM-DD`).
fn parse_date_time(text: &str) -> Option<(u64, bool)> {
    let (date, rest) = match text.split_once('T') {
        Some((d, r)) => (d, Some(r)),
        None => (text, None),
    };
    let (y, m, d) = time::parse_iso_date(date)?;
    let mut secs = time::days_from_civil(y, m, d) * 86_400;
    let Some(rest) = rest else {
        return u64::try_from(secs).ok().map(|s| (s, true));
    };
    // hh:mm:ss[.fff] then Z or +hh:mm / -hh:mm (required by FHIR when a time is given).
    let (clock, offset) = if let Some(c) = rest.strip_suffix('Z') {
        (c, 0i64)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (c, off) = rest.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        if oh.len() != 2 || om.len() != 2 {
            return None;
        }
        let (oh, om): (i64, i64) = (oh.parse().ok()?, om.parse().ok()?);
        if oh > 14 || om > 59 {
            return None;
        }
        (c, sign * (oh * 3600 + om * 60))
    };
    let clock = match clock.split_once('.') {
        Some((c, frac)) if !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()) => c,
        Some(_) => return None,
        None => clock,
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let [h, mi, s] = parts[..] else {
        return None;
    };
    if [h, mi, s]
        .iter()
        .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let (h, mi, s): (i64, i64, i64) = (h.parse().ok()?, mi.parse().ok()?, s.parse().ok()?);
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    secs += h * 3600 + mi * 60 + s - offset;
    u64::try_from(secs).ok().map(|s| (s, false))
}

/// The top-level elements a Consent may have here; the others are refused (see
/// [`ConsentImportError::Unsupported`]), except the informational ones ignored below.
const IGNORED_TOP: [&str; 6] = [
    "meta",
    "text",
    "identifier",
    "category",
    "dateTime",
    "language",
];

/// Reads a FHIR R4 Consent (JSON) as a sharing directive of `custodian_network`. Strict: see
/// the module's docs. Nothing is returned unless all of it is understood.
pub fn consent_from_fhir(json: &[u8], custodian_network: &str) -> Result<ImportedConsent> {
    let value: Value = serde_json::from_slice(json).map_err(|e| ConsentImportError::NotJson {
        line: e.line(),
        column: e.column(),
    })?;
    let Some(consent) = value.as_object() else {
        return Err(ConsentImportError::WrongResourceType {
            found: Shown(Some("(not a JSON object)".into())),
        });
    };
    match consent.get("resourceType").and_then(Value::as_str) {
        Some("Consent") => {}
        _ => {
            return Err(ConsentImportError::WrongResourceType {
                found: Shown::of(consent.get("resourceType")),
            })
        }
    }
    for key in consent.keys() {
        let known = [
            "resourceType",
            "id",
            "status",
            "scope",
            "patient",
            "organization",
            "policyRule",
            "provision",
            "contained",
        ];
        if !known.contains(&key.as_str()) && !IGNORED_TOP.contains(&key.as_str()) {
            return Err(ConsentImportError::Unsupported {
                field: format!("Consent.{key}"),
            });
        }
    }
    let directive_id = match consent.get("id") {
        None => {
            return Err(ConsentImportError::Missing {
                field: "Consent.id",
                fix: "give the Consent the directive id as its id (16 to 64 of a-z, 0-9, '-')",
            })
        }
        Some(Value::String(id)) if validate::id(id).is_ok() => id.clone(),
        Some(_) => return Err(ConsentImportError::BadId),
    };
    match field_str(consent, "status") {
        Some("active") | Some("proposed") => {}
        None => {
            return Err(ConsentImportError::Missing {
                field: "Consent.status",
                fix: "set it to active",
            })
        }
        Some(_) => {
            return Err(ConsentImportError::Status {
                found: Shown::of(consent.get("status")),
            })
        }
    }
    check_scope(consent)?;
    check_organization(consent, custodian_network)?;
    let patient = read_patient(consent, custodian_network)?;
    let provision = match consent.get("provision") {
        None => {
            return Err(ConsentImportError::Missing {
                field: "Consent.provision",
                fix: "add one provision of type permit or deny",
            })
        }
        Some(Value::Array(_)) => {
            return Err(ConsentImportError::Provision {
                problem: "Consent.provision is an array (R4 allows one top-level provision)".into(),
            })
        }
        Some(p) => object(p, "Consent.provision")?,
    };
    let directive = read_provision(provision, directive_id)?;
    Ok(ImportedConsent { patient, directive })
}

fn check_scope(consent: &Map<String, Value>) -> Result<()> {
    let scope = consent.get("scope").ok_or(ConsentImportError::Missing {
        field: "Consent.scope",
        fix: "set it to http://terminology.hl7.org/CodeSystem/consentscope#patient-privacy",
    })?;
    let codings = array(
        object(scope, "Consent.scope")?,
        "coding",
        "Consent.scope.coding",
    )?;
    let privacy = codings.iter().any(|c| {
        c.get("system").and_then(Value::as_str) == Some(SCOPE_PATIENT_PRIVACY.0)
            && c.get("code").and_then(Value::as_str) == Some(SCOPE_PATIENT_PRIVACY.1)
    });
    if !privacy {
        return Err(ConsentImportError::Invalid {
            field: "Consent.scope".into(),
            problem: "is not consentscope#patient-privacy",
            fix: "a sharing directive is a privacy consent: set the scope to http://terminology.hl7.org/CodeSystem/consentscope#patient-privacy",
        });
    }
    Ok(())
}

/// The Consent may name its custodian organisation: it must be this network.
fn check_organization(consent: &Map<String, Value>, network: &str) -> Result<()> {
    for (i, org) in array(consent, "organization", "Consent.organization")?
        .iter()
        .enumerate()
    {
        let field = format!("Consent.organization[{i}]");
        let org = object(org, &field)?;
        if let Some(id) = org.get("identifier").and_then(Value::as_object) {
            if field_str(id, "system") == Some(NETWORK_SYSTEM)
                && field_str(id, "value") != Some(network)
            {
                return Err(ConsentImportError::Invalid {
                    field: format!("{field}.identifier"),
                    problem: "names another network as the custodian",
                    fix: "import a Consent on the chain of the network that keeps it",
                });
            }
        }
    }
    Ok(())
}

fn read_patient(consent: &Map<String, Value>, network: &str) -> Result<ConsentPatient> {
    let patient = consent.get("patient").ok_or(ConsentImportError::Missing {
        field: "Consent.patient",
        fix: "name the patient by the custodian's pseudonym (patient.identifier) or by a contained Patient (patient.reference \"#id\")",
    })?;
    let patient = object(patient, "Consent.patient")?;
    match (patient.get("identifier"), field_str(patient, "reference")) {
        (Some(_), Some(_)) => Err(ConsentImportError::Patient {
            problem: "Consent.patient has both an identifier and a reference",
            fix: "give one: the pseudonym, or the contained Patient".into(),
        }),
        (Some(id), None) => {
            let id = object(id, "Consent.patient.identifier")?;
            let system = field_str(id, "system");
            let expected = pseudonym_system(network);
            if system != Some(expected.as_str()) {
                let fix = match system {
                    Some(s) if s.starts_with(PSEUDONYM_SYSTEM_PREFIX) => format!(
                        "it is another network's pseudonym; only {expected} (made with this hospital's key) names a patient here"
                    ),
                    _ => format!("use the system {expected}, or a contained Patient"),
                };
                return Err(ConsentImportError::Patient {
                    problem: "Consent.patient.identifier.system is not this network's pseudonym system",
                    fix,
                });
            }
            match field_str(id, "value") {
                Some(v) if validate::patient_token(v).is_ok() => {
                    Ok(ConsentPatient::Pseudonym(v.to_string()))
                }
                _ => Err(ConsentImportError::Patient {
                    problem: "Consent.patient.identifier.value is not a pseudonym",
                    fix: "a pseudonym is 64 lowercase hex characters, as `ehrx` derives it".into(),
                }),
            }
        }
        (None, Some(reference)) => {
            let Some(local) = reference.strip_prefix('#') else {
                return Err(ConsentImportError::Patient {
                    problem: "Consent.patient.reference does not point at a contained resource",
                    fix: "refer to the contained Patient as \"#its-id\", or give the pseudonym in patient.identifier".into(),
                });
            };
            let contained = array(consent, "contained", "Consent.contained")?;
            let found = contained.iter().find(|r| {
                r.get("resourceType").and_then(Value::as_str) == Some("Patient")
                    && r.get("id").and_then(Value::as_str) == Some(local)
            });
            let Some(found) = found.and_then(Value::as_object) else {
                return Err(ConsentImportError::Patient {
                    problem: "Consent.patient.reference names no contained Patient",
                    fix: "add the Patient to Consent.contained with that id".into(),
                });
            };
            Ok(ConsentPatient::Demographics(contained_demographics(found)?))
        }
        (None, None) => Err(ConsentImportError::Missing {
            field: "Consent.patient.identifier",
            fix: "name the patient by the custodian's pseudonym (patient.identifier) or by a contained Patient (patient.reference \"#id\")",
        }),
    }
}

/// Name (the official one, else the first: its first given and its family), birthDate and
/// the US SSN identifier of a contained Patient.
fn contained_demographics(p: &Map<String, Value>) -> Result<Demographics> {
    let missing = |field: &'static str| {
        ConsentImportError::Missing {
        field,
        fix: "the contained Patient needs a name (given and family), birthDate and an identifier of system http://hl7.org/fhir/sid/us-ssn to derive the pseudonym",
    }
    };
    let names = array(p, "name", "Consent.contained.name")?;
    let name = names
        .iter()
        .find(|n| n.get("use").and_then(Value::as_str) == Some("official"))
        .or_else(|| names.first())
        .and_then(Value::as_object)
        .ok_or(missing("Consent.contained[Patient].name"))?;
    let given = name
        .get("given")
        .and_then(Value::as_array)
        .and_then(|g| g.first())
        .and_then(Value::as_str)
        .ok_or(missing("Consent.contained[Patient].name.given"))?;
    let family =
        field_str(name, "family").ok_or(missing("Consent.contained[Patient].name.family"))?;
    let birth_date =
        field_str(p, "birthDate").ok_or(missing("Consent.contained[Patient].birthDate"))?;
    let ssn = array(p, "identifier", "Consent.contained.identifier")?
        .iter()
        .find(|i| i.get("system").and_then(Value::as_str) == Some(SSN_SYSTEM))
        .and_then(|i| i.get("value"))
        .and_then(Value::as_str)
        .ok_or(missing("Consent.contained[Patient].identifier (us-ssn)"))?;
    Ok(Demographics::new(given, family, birth_date, ssn)?)
}

fn read_provision(p: &Map<String, Value>, directive_id: String) -> Result<ConsentDirectiveInput> {
    const KNOWN: [&str; 7] = [
        "type",
        "period",
        "actor",
        "purpose",
        "securityLabel",
        "provision",
        "id",
    ];
    if let Some(key) = p.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ConsentImportError::Unsupported {
            field: format!("Consent.provision.{key}"),
        });
    }
    let decision = match field_str(p, "type") {
        Some("permit") => ConsentDecision::Permit,
        Some("deny") => ConsentDecision::Deny,
        None => {
            return Err(ConsentImportError::Provision {
                problem: "Consent.provision.type is missing".into(),
            })
        }
        Some(_) => {
            return Err(ConsentImportError::Provision {
                problem: format!("Consent.provision.type is {}", Shown::of(p.get("type"))),
            })
        }
    };
    let (valid_from, valid_until) = read_period(p)?;
    let partners = read_actors(p)?;
    let purposes = read_purposes(p, "Consent.provision")?;
    if purposes.contains(&None) {
        return Err(ConsentImportError::Provision {
            problem: "Consent.provision.purpose names BTG at the top level".into(),
        });
    }
    let purposes: Vec<PurposeOfUse> = purposes.into_iter().flatten().collect();
    let categories = read_labels(p)?;
    let break_glass_override = read_break_glass(p, decision)?;
    let too_many = |what: &str| ConsentImportError::Provision {
        problem: format!("the provision names more than {MAX_DIRECTIVE_SCOPE} {what}"),
    };
    let twice = |what: &str| ConsentImportError::Provision {
        problem: format!("the provision names one of its {what} twice"),
    };
    if partners.len() > MAX_DIRECTIVE_SCOPE {
        return Err(too_many("partners"));
    }
    if purposes.len() > MAX_DIRECTIVE_SCOPE {
        return Err(too_many("purposes"));
    }
    if categories.len() > MAX_DIRECTIVE_SCOPE {
        return Err(too_many("categories"));
    }
    if has_duplicates(&partners) {
        return Err(twice("partners"));
    }
    if has_duplicates(&purposes) {
        return Err(twice("purposes"));
    }
    if has_duplicates(&categories) {
        return Err(twice("categories"));
    }
    Ok(ConsentDirectiveInput {
        directive_id,
        patient: String::new(),
        decision,
        partners,
        purposes,
        categories,
        valid_from,
        valid_until,
        break_glass_override,
    })
}

fn has_duplicates<T: PartialEq>(items: &[T]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, a)| items[..i].contains(a))
}

fn read_period(p: &Map<String, Value>) -> Result<(Option<u64>, Option<u64>)> {
    let Some(period) = p.get("period") else {
        return Ok((None, None));
    };
    let period = object(period, "Consent.provision.period")?;
    let start = match period.get("start") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(parse_date_time)
                .map(|(secs, _)| secs)
                .ok_or(ConsentImportError::BadPeriod {
                    field: "Consent.provision.period.start",
                    fix: "write when the directive starts to apply, e.g. 2025-01-31 or 2025-01-31T08:00:00Z",
                })?,
        ),
    };
    let end = match period.get("end") {
        None => None,
        // Inclusive: the day's end, or the second's end.
        Some(v) => Some(
            v.as_str()
                .and_then(parse_date_time)
                .map(|(secs, day)| if day { secs + 86_400 } else { secs + 1 })
                .ok_or(ConsentImportError::BadPeriod {
                    field: "Consent.provision.period.end",
                    fix: "write the last moment the directive applies, e.g. 2025-12-31 or 2025-12-31T23:59:59Z",
                })?,
        ),
    };
    if let (Some(s), Some(e)) = (start, end) {
        if e <= s {
            return Err(ConsentImportError::PeriodOrder);
        }
    }
    Ok((start, end))
}

fn read_actors(p: &Map<String, Value>) -> Result<Vec<String>> {
    let mut partners = Vec::new();
    for (i, actor) in array(p, "actor", "Consent.provision.actor")?
        .iter()
        .enumerate()
    {
        let field = format!("Consent.provision.actor[{i}]");
        let actor = object(actor, &field)?;
        let role_ok = actor
            .get("role")
            .and_then(|r| r.get("coding"))
            .and_then(Value::as_array)
            .is_some_and(|codings| {
                codings.iter().any(|c| {
                    c.get("system").and_then(Value::as_str) == Some(ACTOR_RECIPIENT.0)
                        && c.get("code").and_then(Value::as_str) == Some(ACTOR_RECIPIENT.1)
                })
            });
        if !role_ok {
            return Err(ConsentImportError::Invalid {
                field: format!("{field}.role"),
                problem: "is not v3-ParticipationType#IRCP",
                fix: "a directive names the partner networks that would receive the records: give each actor the role http://terminology.hl7.org/CodeSystem/v3-ParticipationType#IRCP",
            });
        }
        let id = actor
            .get("reference")
            .and_then(|r| r.get("identifier"))
            .and_then(Value::as_object);
        let network = id
            .filter(|id| field_str(id, "system") == Some(NETWORK_SYSTEM))
            .and_then(|id| field_str(id, "value"));
        match network {
            Some(n) if validate::name(n).is_ok() => partners.push(n.to_string()),
            _ => {
                return Err(ConsentImportError::Invalid {
                    field: format!("{field}.reference.identifier"),
                    problem: "does not name a partner network",
                    fix: "refer to the partner by identifier, system urn:ehrx:network, value its network id (1 to 64 of A-Z, a-z, 0-9, '.', '_', '-')",
                })
            }
        }
    }
    Ok(partners)
}

/// The purposes of a provision; `None` for BTG.
fn read_purposes(p: &Map<String, Value>, at: &str) -> Result<Vec<Option<PurposeOfUse>>> {
    let mut out = Vec::new();
    for (i, c) in array(p, "purpose", &format!("{at}.purpose"))?
        .iter()
        .enumerate()
    {
        let field = format!("{at}.purpose[{i}]");
        let system = c.get("system").and_then(Value::as_str);
        let code = c.get("code").and_then(Value::as_str).unwrap_or_default();
        let purpose = match system {
            Some(ACT_REASON) if code == PURPOSE_BTG.1 => Some(None),
            Some(ACT_REASON) => purpose_from_code(code).map(Some),
            _ => None,
        };
        match purpose {
            Some(p) => out.push(p),
            None => {
                return Err(ConsentImportError::UnknownPurpose {
                    field,
                    found: Shown::coding(c),
                    known: KnownPurposes,
                })
            }
        }
    }
    Ok(out)
}

fn read_labels(p: &Map<String, Value>) -> Result<Vec<RecordCategory>> {
    let mut out = Vec::new();
    for (i, c) in array(p, "securityLabel", "Consent.provision.securityLabel")?
        .iter()
        .enumerate()
    {
        let system = c.get("system").and_then(Value::as_str);
        let code = c.get("code").and_then(Value::as_str);
        let category = RecordCategory::ALL.into_iter().find(|&cat| {
            let (s, k, _) = category_label(cat);
            system == Some(s) && code == Some(k)
        });
        match category {
            Some(cat) => out.push(cat),
            None => {
                return Err(ConsentImportError::UnknownCategory {
                    field: format!("Consent.provision.securityLabel[{i}]"),
                    found: Shown::coding(c),
                    known: KnownCategories,
                })
            }
        }
    }
    Ok(out)
}

/// A deny's one nested permit for purpose BTG (and nothing else): the patient lets a
/// break-glass request override the deny.
fn read_break_glass(p: &Map<String, Value>, decision: ConsentDecision) -> Result<bool> {
    let nested = array(p, "provision", "Consent.provision.provision")?;
    let bad = |problem: &str| ConsentImportError::Provision {
        problem: problem.to_string(),
    };
    match nested {
        [] => Ok(false),
        [_] if decision == ConsentDecision::Permit => Err(bad("a permit has a nested provision")),
        [one] => {
            let one = object(one, "Consent.provision.provision[0]")?;
            if let Some(key) = one
                .keys()
                .find(|k| !["type", "purpose"].contains(&k.as_str()))
            {
                return Err(ConsentImportError::Unsupported {
                    field: format!("Consent.provision.provision[0].{key}"),
                });
            }
            if field_str(one, "type") != Some("permit") {
                return Err(bad("the nested provision of a deny is not a permit"));
            }
            let purposes = read_purposes(one, "Consent.provision.provision[0]")?;
            if purposes != [None] {
                return Err(bad(
                    "the nested permit of a deny has a purpose other than exactly BTG",
                ));
            }
            Ok(true)
        }
        _ => Err(bad("the provision has more than one nested provision")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::Addr;

    const P: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const NET: &str = "hospital-b";

    fn directive(decision: ConsentDecision) -> ConsentDirective {
        ConsentDirective {
            input: ConsentDirectiveInput {
                directive_id: "d-0123456789abcdef".into(),
                patient: P.into(),
                decision,
                partners: vec![],
                purposes: vec![],
                categories: vec![],
                valid_from: None,
                valid_until: None,
                break_glass_override: false,
            },
            recorded_by: Addr::unchecked("wasm1office"),
            recorded_at: 1_700_000_000,
            status: DirectiveStatus::Active,
        }
    }

    /// The shapes of the tests and fixtures: a permit, a deny per partner, per purpose, per
    /// category with the break-glass exception and a period, a revoked one.
    pub(crate) fn shapes() -> Vec<(&'static str, ConsentDirective)> {
        let permit = directive(ConsentDecision::Permit);
        let mut per_partner = directive(ConsentDecision::Deny);
        per_partner.input.directive_id = "deny-partner-0000001".into();
        per_partner.input.partners = vec!["hospital-a".into(), "hospital-c".into()];
        let mut per_purpose = directive(ConsentDecision::Deny);
        per_purpose.input.directive_id = "deny-purpose-0000001".into();
        per_purpose.input.purposes = vec![PurposeOfUse::Payment, PurposeOfUse::Operations];
        let mut per_category = directive(ConsentDecision::Deny);
        per_category.input.directive_id = "deny-category-000001".into();
        per_category.input.categories = vec![
            RecordCategory::General,
            RecordCategory::MentalHealth,
            RecordCategory::SubstanceUse,
            RecordCategory::Reproductive,
            RecordCategory::Hiv,
            RecordCategory::Genetic,
        ];
        per_category.input.break_glass_override = true;
        per_category.input.valid_from = Some(1_700_000_000);
        per_category.input.valid_until = Some(1_800_000_000);
        let mut revoked = directive(ConsentDecision::Permit);
        revoked.input.directive_id = "permit-revoked-00001".into();
        revoked.input.partners = vec!["hospital-a".into()];
        revoked.input.purposes = vec![PurposeOfUse::Treatment, PurposeOfUse::EmergencyTreatment];
        revoked.status = DirectiveStatus::Revoked { at: 1_750_000_000 };
        vec![
            ("permit", permit),
            ("deny-per-partner", per_partner),
            ("deny-per-purpose", per_purpose),
            ("deny-per-category-break-glass", per_category),
            ("revoked", revoked),
        ]
    }

    fn import(v: &Value) -> Result<ImportedConsent> {
        consent_from_fhir(&serde_json::to_vec(v).unwrap(), NET)
    }

    #[test]
    fn export_has_the_r4_consent_shape() {
        let (_, d) = shapes().remove(3);
        let c = consent_to_fhir(&d, NET);
        assert_eq!(c["resourceType"], "Consent");
        assert_eq!(c["id"], "deny-category-000001");
        assert_eq!(c["status"], "active");
        assert_eq!(c["scope"]["coding"][0]["code"], "patient-privacy");
        assert_eq!(c["category"][0]["coding"][0]["code"], "59284-0");
        assert_eq!(
            c["patient"],
            json!({"identifier": {"system": "urn:ehrx:patient-pseudonym:hospital-b", "value": P}})
        );
        assert_eq!(c["dateTime"], "2023-11-14T22:13:20Z");
        assert_eq!(c["organization"][0]["identifier"]["value"], NET);
        assert_eq!(c["policyRule"]["coding"][0]["code"], "OPTOUTE");
        let p = &c["provision"];
        assert_eq!(p["type"], "deny");
        assert_eq!(p["period"]["start"], "2023-11-14T22:13:20Z");
        assert_eq!(p["period"]["end"], "2027-01-15T07:59:59Z");
        let labels: Vec<&str> = p["securityLabel"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["code"].as_str().unwrap())
            .collect();
        assert_eq!(labels, ["N", "PSY", "ETH", "SEX", "HIV", "GDIS"]);
        assert_eq!(
            p["provision"],
            json!([{"type": "permit", "purpose": [coding(PURPOSE_BTG)]}])
        );
        // The R4 model and its invariants (ppc-1..5) hold.
        let bundle = json!({"resourceType": "Bundle", "type": "collection",
            "entry": shapes().iter().map(|(_, d)| json!({
                "fullUrl": format!("urn:ehrx:consent:{}", d.input.directive_id),
                "resource": consent_to_fhir(d, NET)})).collect::<Vec<_>>()});
        crate::fhir::validate_bundle(&bundle).unwrap();

        let (_, revoked) = shapes().remove(4);
        let c = consent_to_fhir(&revoked, NET);
        assert_eq!(c["status"], "inactive");
        assert_eq!(c["meta"]["lastUpdated"], "2025-06-15T15:06:40Z");
        assert_eq!(c["policyRule"]["coding"][0]["code"], "OPTIN");
        assert_eq!(
            c["provision"]["actor"][0]["role"]["coding"][0]["code"],
            "IRCP"
        );
        assert_eq!(
            c["provision"]["actor"][0]["reference"]["identifier"],
            json!({"system": NETWORK_SYSTEM, "value": "hospital-a"})
        );
        assert_eq!(c["provision"]["purpose"][1]["code"], "ETREAT");
    }

    /// The contained-Patient form of the import (a test person: not a real patient).
    fn with_contained_patient(mut c: Value) -> Value {
        c["patient"] = json!({"reference": "#pat"});
        c["contained"] = json!([{
            "resourceType": "Patient", "id": "pat",
            "name": [{"use": "official", "family": "Álvarez", "given": ["José"]}],
            "birthDate": "1980-01-05",
            "identifier": [{"system": SSN_SYSTEM, "value": "123-45-6789"}]
        }]);
        c
    }

    #[test]
    fn consent_fixtures_are_current() {
        for (name, d) in shapes() {
            crate::fhir::tests::check_fixture(
                &format!("consent-{name}.json"),
                &consent_to_fhir(&d, NET),
            );
        }
        let (_, d) = shapes().remove(1);
        let input = with_contained_patient(consent_to_fhir(&d, NET));
        assert!(import(&input).is_ok());
        crate::fhir::tests::check_fixture("consent-import-contained-patient.json", &input);
    }

    #[test]
    fn export_then_import_is_lossless() {
        for (name, d) in shapes() {
            let mut c = consent_to_fhir(&d, NET);
            // A revoked Consent is not imported as such: the same directive, active.
            c["status"] = json!("active");
            let imported = import(&c).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(matches!(&imported.patient, ConsentPatient::Pseudonym(p) if p == P));
            let input = imported
                .into_input(|_| unreachable!("a pseudonym was given"))
                .unwrap();
            assert_eq!(input, d.input, "{name}");
        }
        // A permit's break-glass flag means nothing and is not written.
        let mut odd = directive(ConsentDecision::Permit);
        odd.input.break_glass_override = true;
        assert!(consent_to_fhir(&odd, NET)["provision"]
            .get("provision")
            .is_none());
    }

    #[test]
    fn a_contained_patient_is_derived_by_the_callers_key() {
        let (_, d) = shapes().remove(1);
        let mut c = with_contained_patient(consent_to_fhir(&d, NET));
        let imported = import(&c).unwrap();
        let ConsentPatient::Demographics(ref details) = imported.patient else {
            panic!("demographics expected");
        };
        assert_eq!(details.family(), "alvarez");
        let input = imported.into_input(|_| P.to_string()).unwrap();
        assert_eq!(input, d.input);
        // Wrong details: the field, never the value.
        c["contained"][0]["identifier"][0]["value"] = json!("000-12-3456");
        let e = import(&c).unwrap_err();
        assert_eq!(e.code(), "consent-import/demographics");
        assert!(!e.to_string().contains("000-12-3456"), "{e}");
        // A derived pseudonym that is not one is refused.
        c["contained"][0]["identifier"][0]["value"] = json!("123-45-6789");
        let e = import(&c)
            .unwrap()
            .into_input(|_| "nope".into())
            .unwrap_err();
        assert_eq!(e.code(), "consent-import/patient");
    }

    #[test]
    fn dates_parse_as_fhir_date_times() {
        assert_eq!(parse_date_time("1970-01-02"), Some((86_400, true)));
        assert_eq!(
            parse_date_time("2023-11-14T22:13:20Z"),
            Some((1_700_000_000, false))
        );
        assert_eq!(
            parse_date_time("2023-11-14T23:13:20.500+01:00"),
            Some((1_700_000_000, false))
        );
        assert_eq!(
            parse_date_time("2023-11-14T17:13:20-05:00"),
            Some((1_700_000_000, false))
        );
        for bad in [
            "2023-11-14T22:13:20",
            "2023-13-01",
            "2023-11-14T25:00:00Z",
            "1969-12-31",
            "2023-11-14T22:13Z",
            "yesterday",
            "2023-11-14T22:13:20+1:00",
        ] {
            assert_eq!(parse_date_time(bad), None, "{bad}");
        }
    }

    /// Each malformed fixture (tests/fixtures/fhir/consent/invalid) is refused with its code,
    /// naming the element, and without repeating the patient's values.
    #[test]
    fn malformed_consents_are_refused_with_the_right_error() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/fhir/consent/invalid");
        let cases: &[(&str, &str, &str)] = &[
            ("not-json.json", "consent-import/not-json", "line 4"),
            (
                "wrong-resource-type.json",
                "consent-import/resource-type",
                "\"Patient\"",
            ),
            (
                "no-provision.json",
                "consent-import/missing",
                "Consent.provision",
            ),
            ("two-provisions.json", "consent-import/provision", "array"),
            (
                "unknown-purpose.json",
                "consent-import/purpose",
                "v3-ActReason#PUBHLTH",
            ),
            (
                "unknown-category.json",
                "consent-import/category",
                "v3-ActCode#SDV",
            ),
            (
                "bad-period.json",
                "consent-import/period",
                "Consent.provision.period.end",
            ),
            (
                "period-backwards.json",
                "consent-import/period-order",
                "ends before",
            ),
            ("bad-id.json", "consent-import/id", "16 to 64"),
            ("no-id.json", "consent-import/missing", "Consent.id"),
            ("revoked.json", "consent-import/status", "\"inactive\""),
            (
                "provision-on-data.json",
                "consent-import/unsupported",
                "Consent.provision.data",
            ),
            (
                "actor-not-a-network.json",
                "consent-import/invalid",
                "actor[0].reference",
            ),
            (
                "other-networks-pseudonym.json",
                "consent-import/patient",
                "another network",
            ),
            (
                "nested-permit-not-btg.json",
                "consent-import/purpose",
                "provision[0].purpose[0]",
            ),
            (
                "patient-demographics-incomplete.json",
                "consent-import/missing",
                "birthDate",
            ),
            (
                "not-privacy-scope.json",
                "consent-import/invalid",
                "Consent.scope",
            ),
        ];
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                cases.iter().any(|c| c.0 == name),
                "{name} has no expected error here"
            );
        }
        for (file, code, mention) in cases {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            let e = consent_from_fhir(&bytes, NET).expect_err(file);
            assert_eq!(e.code(), *code, "{file}: {e}");
            let text = e.to_string();
            println!("{file}: {text}");
            assert!(text.starts_with(code), "{file}: {text}");
            assert!(
                text.contains(mention),
                "{file}: {text} (expected {mention})"
            );
            for phi in ["Alvarez", "Álvarez", "123-45-6789", "1980-01-05", P] {
                assert!(
                    !text.contains(phi),
                    "{file} repeats a patient's value: {text}"
                );
            }
            seen += 1;
        }
        assert_eq!(seen, cases.len());
    }

    #[test]
    fn an_unknown_purpose_lists_the_known_ones() {
        let (_, d) = shapes().remove(0);
        let mut c = consent_to_fhir(&d, NET);
        c["provision"]["purpose"] = json!([{"system": ACT_REASON, "code": "HRESCH"}]);
        let e = import(&c).unwrap_err().to_string();
        assert!(
            e.contains("\"http://terminology.hl7.org/CodeSystem/v3-ActReason#HRESCH\""),
            "{e}"
        );
        for known in ["TREAT", "ETREAT", "HPAYMT", "HOPERAT"] {
            assert!(e.contains(known), "{e}");
        }
        // A value that is not a code is not repeated.
        c["provision"]["purpose"] = json!([{"system": ACT_REASON, "code": "Jose Alvarez 1980"}]);
        let e = import(&c).unwrap_err().to_string();
        assert!(!e.contains("Jose"), "{e}");
    }
}
