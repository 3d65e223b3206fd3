//! The one list of coded reasons a transaction, packet or retrieval is refused.
//! Acks, events, errors and audit entries carry these codes, never payload text.

use cosmwasm_schema::cw_serde;
use std::fmt;

/// Why something was refused. The JSON form is pinned by tests: it travels in packets.
#[cw_serde]
#[derive(Eq)]
pub enum ErrorCode {
    InvalidFormat,
    UnknownPartner,
    PartnerUnavailable,
    NotRegistered,
    BadSignature,
    KeyRevoked,
    NotAuthorized,
    /// No clinician is registered under the request's clinician id.
    UnknownClinician,
    /// Seconds until the peer may send again.
    RateLimited {
        retry_after: u64,
    },
    PeerQuarantined,
    Replay,
    Expired,
    NoRecords,
    AlreadyAnswered,
    UnknownRequest,
    WrongChannel,
    TooLarge,
    UnsupportedVersion,
    /// A reply encrypted to a key other than the requester's registered one, or a request
    /// naming a reply key that is not the requester's registered key.
    RecipientKeyMismatch,
    /// The requester was revoked, quarantined or left its validity while its request was
    /// in flight: the reply is refused and never stored.
    RequesterRevoked,
    /// A partner (or one of its requesters) sent more requests than our policy accepts per
    /// window; seconds until the window reopens.
    QuotaExceeded {
        retry_after: u64,
    },
    /// The policy's cap on records per patient is reached.
    CapReached,
    /// A chunk whose SHA-256 is not the one its manifest lists at its index: altered, or
    /// put in another place.
    ChunkMismatch,
    /// A chunk sent again where one is already kept.
    ChunkDuplicate,
    /// A chunk sent past a gap, or a history that ended with chunks missing.
    ChunkMissing,
    /// A break-glass request from a clinician whose credential does not allow it, for a
    /// purpose other than emergency treatment, or to a partner whose policy accepts none.
    BreakGlassNotAllowed,
    /// A break-glass request without its coded reason (or, found by the custodian's reply
    /// service, without its free-text reason).
    ReasonRequired,
    /// A break-glass request's time box (the responding chain's policy) has run out.
    BreakGlassExpired,
    /// The patient's consent directive refuses this release (to this partner, for this
    /// purpose, of these categories).
    ConsentDenied,
    Internal,
}

impl ErrorCode {
    /// The short name used in events, acks and logs (`RateLimited` without its detail).
    pub fn name(&self) -> &'static str {
        match self {
            ErrorCode::InvalidFormat => "InvalidFormat",
            ErrorCode::UnknownPartner => "UnknownPartner",
            ErrorCode::PartnerUnavailable => "PartnerUnavailable",
            ErrorCode::NotRegistered => "NotRegistered",
            ErrorCode::BadSignature => "BadSignature",
            ErrorCode::KeyRevoked => "KeyRevoked",
            ErrorCode::NotAuthorized => "NotAuthorized",
            ErrorCode::UnknownClinician => "UnknownClinician",
            ErrorCode::RateLimited { .. } => "RateLimited",
            ErrorCode::PeerQuarantined => "PeerQuarantined",
            ErrorCode::Replay => "Replay",
            ErrorCode::Expired => "Expired",
            ErrorCode::NoRecords => "NoRecords",
            ErrorCode::AlreadyAnswered => "AlreadyAnswered",
            ErrorCode::UnknownRequest => "UnknownRequest",
            ErrorCode::WrongChannel => "WrongChannel",
            ErrorCode::TooLarge => "TooLarge",
            ErrorCode::UnsupportedVersion => "UnsupportedVersion",
            ErrorCode::RecipientKeyMismatch => "RecipientKeyMismatch",
            ErrorCode::RequesterRevoked => "RequesterRevoked",
            ErrorCode::QuotaExceeded { .. } => "QuotaExceeded",
            ErrorCode::CapReached => "CapReached",
            ErrorCode::ChunkMismatch => "ChunkMismatch",
            ErrorCode::ChunkDuplicate => "ChunkDuplicate",
            ErrorCode::ChunkMissing => "ChunkMissing",
            ErrorCode::BreakGlassNotAllowed => "BreakGlassNotAllowed",
            ErrorCode::ReasonRequired => "ReasonRequired",
            ErrorCode::BreakGlassExpired => "BreakGlassExpired",
            ErrorCode::ConsentDenied => "ConsentDenied",
            ErrorCode::Internal => "Internal",
        }
    }

    /// Whether a peer's own transaction refused with this code counts as a strike. Strikes
    /// are for the peer's own misconduct only: codes for its standing (quarantined,
    /// revoked, not registered) or for conditions it does not control (a request that
    /// expired, a race lost to another reply service, a partner or request the admin or a
    /// sweep removed, a full record index, our own fault) are audited without a strike,
    /// so that a partner cannot get our reply service quarantined.
    pub fn counts_as_strike(&self) -> bool {
        !matches!(
            self,
            ErrorCode::NotRegistered
                | ErrorCode::PeerQuarantined
                | ErrorCode::KeyRevoked
                | ErrorCode::Expired
                | ErrorCode::AlreadyAnswered
                | ErrorCode::PartnerUnavailable
                | ErrorCode::UnknownPartner
                | ErrorCode::UnknownRequest
                | ErrorCode::CapReached
                | ErrorCode::ChunkDuplicate
                | ErrorCode::ChunkMissing
                | ErrorCode::BreakGlassExpired
                | ErrorCode::ConsentDenied
                | ErrorCode::Internal
        )
    }

    /// The text of an error acknowledgement: `ehrx:<Code>`; a reader that does not know
    /// the prefix (e.g. wasmd's own redacted error ack) maps to `Internal`.
    pub fn to_ack_error(&self) -> String {
        format!("{ACK_ERROR_PREFIX}{}", self)
    }

    /// Parses the text of an error acknowledgement leniently: unknown text is `Internal`.
    pub fn from_ack_error(text: &str) -> ErrorCode {
        text.strip_prefix(ACK_ERROR_PREFIX)
            .and_then(ErrorCode::parse)
            .unwrap_or(ErrorCode::Internal)
    }

    /// Parses the `Display` form back into a code.
    pub fn parse(text: &str) -> Option<ErrorCode> {
        if let Some(rest) = text.strip_prefix("RateLimited(retry_after=") {
            let secs = rest.strip_suffix(')')?.parse().ok()?;
            return Some(ErrorCode::RateLimited { retry_after: secs });
        }
        if let Some(rest) = text.strip_prefix("QuotaExceeded(retry_after=") {
            let secs = rest.strip_suffix(')')?.parse().ok()?;
            return Some(ErrorCode::QuotaExceeded { retry_after: secs });
        }
        ALL_SIMPLE_CODES.iter().find(|c| c.name() == text).cloned()
    }
}

const ACK_ERROR_PREFIX: &str = "ehrx:";

const ALL_SIMPLE_CODES: [ErrorCode; 28] = [
    ErrorCode::InvalidFormat,
    ErrorCode::UnknownPartner,
    ErrorCode::PartnerUnavailable,
    ErrorCode::NotRegistered,
    ErrorCode::BadSignature,
    ErrorCode::KeyRevoked,
    ErrorCode::NotAuthorized,
    ErrorCode::UnknownClinician,
    ErrorCode::PeerQuarantined,
    ErrorCode::Replay,
    ErrorCode::Expired,
    ErrorCode::NoRecords,
    ErrorCode::AlreadyAnswered,
    ErrorCode::UnknownRequest,
    ErrorCode::WrongChannel,
    ErrorCode::TooLarge,
    ErrorCode::UnsupportedVersion,
    ErrorCode::RecipientKeyMismatch,
    ErrorCode::RequesterRevoked,
    ErrorCode::CapReached,
    ErrorCode::ChunkMismatch,
    ErrorCode::ChunkDuplicate,
    ErrorCode::ChunkMissing,
    ErrorCode::BreakGlassNotAllowed,
    ErrorCode::ReasonRequired,
    ErrorCode::BreakGlassExpired,
    ErrorCode::ConsentDenied,
    ErrorCode::Internal,
];

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::RateLimited { retry_after } => {
                write!(f, "RateLimited(retry_after={retry_after})")
            }
            ErrorCode::QuotaExceeded { retry_after } => {
                write!(f, "QuotaExceeded(retry_after={retry_after})")
            }
            other => f.write_str(other.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips_through_parse() {
        let mut all = ALL_SIMPLE_CODES.to_vec();
        all.push(ErrorCode::RateLimited { retry_after: 42 });
        all.push(ErrorCode::QuotaExceeded { retry_after: 7 });
        for code in all {
            assert_eq!(ErrorCode::parse(&code.to_string()), Some(code.clone()));
            assert_eq!(ErrorCode::from_ack_error(&code.to_ack_error()), code);
        }
    }

    #[test]
    fn foreign_ack_text_is_internal() {
        assert_eq!(
            ErrorCode::from_ack_error("ABCI code: 5: error handling packet"),
            ErrorCode::Internal
        );
        assert_eq!(ErrorCode::from_ack_error("ehrx:Nope"), ErrorCode::Internal);
    }

    #[test]
    fn json_form_is_pinned() {
        assert_eq!(
            serde_json::to_string(&ErrorCode::BadSignature).unwrap(),
            r#""bad_signature""#
        );
        assert_eq!(
            serde_json::to_string(&ErrorCode::RateLimited { retry_after: 60 }).unwrap(),
            r#"{"rate_limited":{"retry_after":60}}"#
        );
    }
}
