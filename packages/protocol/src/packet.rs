//! IBC packet and acknowledgement types. Their JSON is pinned in tests: changing it is a
//! breaking change that needs a new channel version.

use crate::error_code::ErrorCode;
use crate::exchange::PurposeOfUse;
use crate::registry::Role;
use cosmwasm_schema::cw_serde;
use cosmwasm_std::Binary;

/// Everything a requester signs; travels inside `RequestPacket`.
#[cw_serde]
pub struct RequestBody {
    pub version: u32,
    pub request_id: String,
    pub source_network: String,
    pub destination_network: String,
    /// The requesting peer's address on the source chain.
    pub requester: String,
    pub requester_role: Role,
    /// The registered clinician who asked; `RequestPacket::signer_pubkey` is their key.
    pub clinician_id: String,
    pub purpose: PurposeOfUse,
    /// The patient's details sealed to the custodian's registered key, fresh each time and
    /// exactly `SEALED_PATIENT_LEN` bytes: no patient-derived value travels in a form that
    /// can be compared. The custodian maps them to its own pseudonym off chain.
    pub sealed_patient: Binary,
    pub reply_encryption_key: Binary,
    pub issued_at: u64,
    pub expires_at: u64,
}

/// What the responder sends back: one kind, sealed. Whether the custodian found records,
/// found none or declined is inside the ciphertext (`SealedOutcome`), which is padded to a
/// size bucket, so neither the chains nor an observer learn whether records exist.
#[cw_serde]
#[non_exhaustive]
pub enum ReplyOutcome {
    Sealed {
        /// `SealedOutcome` as JSON, padded (`padding::pad`), sealed to the requester's
        /// registered key.
        ciphertext: Binary,
        /// Hex SHA-256 of `ciphertext`.
        content_hash: String,
    },
}

impl ReplyOutcome {
    pub fn kind(&self) -> &'static str {
        match self {
            ReplyOutcome::Sealed { .. } => "sealed",
        }
    }
}

/// The answer inside a sealed reply, as only the requester reads it.
#[cw_serde]
#[non_exhaustive]
pub enum SealedOutcome {
    /// The patient's history: a FHIR R4 Bundle (JSON bytes).
    Records { bundle: Binary },
    /// The custodian holds nothing for this patient (not an error, as in XCPD).
    NoRecords,
    /// The custodian declined with a coded reason.
    Declined { code: ErrorCode },
}

/// Everything a responder signs; travels inside `ReplyPacket`.
#[cw_serde]
pub struct ReplyBody {
    pub version: u32,
    pub request_id: String,
    pub requester_network: String,
    pub responder_network: String,
    pub responder: String,
    /// `signing::key_hash` of the key the responder encrypted to: the requester's
    /// registered key as the request named it. The requesting chain stores the reply only
    /// while this is the hash of the requester's current key.
    pub recipient_key_hash: String,
    pub outcome: ReplyOutcome,
    pub issued_at: u64,
}

#[cw_serde]
pub struct RequestPacket {
    pub body: RequestBody,
    /// The clinician's registered secp256k1 key (checked against the registry on the
    /// requesting chain; the responding chain verifies the signature with it).
    pub signer_pubkey: Binary,
    pub signature: Binary,
}

#[cw_serde]
pub struct ReplyPacket {
    pub body: ReplyBody,
    /// The responder's registered secp256k1 key.
    pub signer_pubkey: Binary,
    pub signature: Binary,
}

/// The one packet type on an `ehr-exchange-2` channel.
#[cw_serde]
#[non_exhaustive]
pub enum ExchangePacket {
    Request(RequestPacket),
    Reply(ReplyPacket),
}

/// Payload of a success acknowledgement (`StdAck::Success`). Errors are
/// `StdAck::Error(ErrorCode::to_ack_error())`.
#[cw_serde]
#[non_exhaustive]
pub enum ExchangeAck {
    /// The request passed Algorithm 2 and waits for a local peer's answer.
    RequestAccepted {},
    /// The reply passed Algorithm 3 and is stored for the requester.
    ReplyAccepted {},
}
