//! What a request's sealed patient details hold: the plaintext of `sealed_patient`, which
//! only the custodian's reply service opens (issue 12). It is not on the wire in clear, so
//! it grows with `inner_version`, without a packet version bump.
//!
//! Version 2: the patient's details as the clinician knows them (any of name, birth date,
//! sex, SSN or its last 4, address, phone: the custodian matches them against its own
//! index), and, for a break-glass request, the clinician's free-text reason. Version 1 (the
//! four normalised fields of `Demographics::to_json`, no version field) is still read.

use crate::demographics::DemographicsInput;
use ehrx_matching::Attributes;
use serde::{Deserialize, Serialize};
use std::fmt;

pub const INNER_VERSION: u32 = 2;
/// The free-text reason of a break-glass request, at most this many characters (it must
/// fit, with the details, in the 1 KiB that is sealed).
pub const MAX_REASON_CHARS: usize = 300;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedDetails {
    pub inner_version: u32,
    pub patient: Attributes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass_reason: Option<String>,
}

impl fmt::Debug for SealedDetails {
    /// Redacted: which attributes are present, whether a reason is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedDetails")
            .field("inner_version", &self.inner_version)
            .field("patient", &self.patient)
            .field("break_glass_reason", &self.break_glass_reason.is_some())
            .finish()
    }
}

/// Why a reason text was refused (names the rule, not the text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    #[error("a break-glass request needs a free-text reason (--reason-text): it is sealed to the custodian's privacy office")]
    Empty,
    #[error("the break-glass reason is longer than {MAX_REASON_CHARS} characters; shorten it")]
    TooLong,
}

/// A break-glass reason as the clinician typed it: trimmed, non-empty, bounded.
pub fn check_reason(text: &str) -> Result<String, ReasonError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ReasonError::Empty);
    }
    if text.chars().count() > MAX_REASON_CHARS {
        return Err(ReasonError::TooLong);
    }
    Ok(text.to_string())
}

impl SealedDetails {
    pub fn new(patient: Attributes, break_glass_reason: Option<String>) -> Self {
        SealedDetails {
            inner_version: INNER_VERSION,
            patient,
            break_glass_reason,
        }
    }

    /// Reads either version; `None` when it is neither (or a later one this tool does not
    /// know).
    pub fn parse(bytes: &[u8]) -> Option<SealedDetails> {
        if let Ok(details) = serde_json::from_slice::<SealedDetails>(bytes) {
            return (details.inner_version == INNER_VERSION).then_some(details);
        }
        let v1: DemographicsInput = serde_json::from_slice(bytes).ok()?;
        Some(SealedDetails {
            inner_version: 1,
            patient: v1.normalise().ok()?.attributes(),
            break_glass_reason: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_versions_are_read_and_debug_shows_no_value() {
        let v2 = SealedDetails::new(
            Attributes {
                given: Some("Ann".into()),
                birth_date: Some("1990-07-08".into()),
                ..Attributes::default()
            },
            Some("unconscious after a crash".into()),
        );
        let bytes = serde_json::to_vec(&v2).unwrap();
        let back = SealedDetails::parse(&bytes).unwrap();
        assert_eq!(back.patient, v2.patient);
        assert_eq!(back.break_glass_reason, v2.break_glass_reason);
        let shown = format!("{back:?}");
        assert!(
            !shown.contains("Ann") && !shown.contains("crash"),
            "{shown}"
        );
        let v1 = br#"{"given":"ann","family":"lee","birth_date":"1990-07-08","ssn":"123456789"}"#;
        let old = SealedDetails::parse(v1).unwrap();
        assert_eq!(old.inner_version, 1);
        assert_eq!(old.patient.ssn.as_deref(), Some("123456789"));
        assert!(SealedDetails::parse(br#"{"inner_version":3,"patient":{}}"#).is_none());
    }

    #[test]
    fn a_reason_must_be_given_and_bounded() {
        assert_eq!(check_reason("  "), Err(ReasonError::Empty));
        assert_eq!(check_reason(&"x".repeat(301)), Err(ReasonError::TooLong));
        assert_eq!(check_reason(" chest pain ").unwrap(), "chest pain");
    }
}
