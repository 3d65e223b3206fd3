//! IBC packet and acknowledgement types. Their JSON is pinned in tests: changing it is a
//! breaking change that needs a new channel version.

use crate::chunks::Manifest;
use crate::consent::BreakGlass;
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
    /// The clinician's break-glass claim (v3): signed, last in `ehrx/request/v3`. Absent for
    /// an ordinary request, and then absent from the JSON too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<BreakGlass>,
}

/// The answer inside a sealed reply, as only the requester reads it: the JSON header of the
/// reply's plaintext (`frame`), followed by the bytes its parts announce.
#[cw_serde]
#[non_exhaustive]
pub enum SealedOutcome {
    /// The patient's history: one part per stored record, in order. Each is the record's
    /// FHIR R4 Bundle compressed with zstd, as the storing peer attested it.
    Records { parts: Vec<RecordPart> },
    /// The custodian holds nothing for this patient (not an error, as in XCPD).
    NoRecords,
    /// The custodian declined with a coded reason.
    Declined { code: ErrorCode },
    /// The details sent did not single out one patient (several candidates, or none
    /// confidently): ask again with these attributes too (`ehrx_matching::AttributeName`
    /// spellings: `ssn`, `address`, ...), as IHE XCPD answers.
    NeedMoreAttributes { attributes: Vec<String> },
}

/// One stored record inside a reply: its `bytes` follow the header, in part order.
#[cw_serde]
pub struct RecordPart {
    pub bytes: u64,
    pub attestation: Attestation,
}

/// The storing peer's signature over what it stored, sealed inside the record and carried
/// into the reply: the requester checks that the history it reads is the one the storer
/// signed. `commitment` = hex SHA-256(`nonce` ‖ the compressed Bundle); the random nonce
/// keeps a guessed history from being confirmed against it. It never appears in clear on a
/// chain, and it names neither the record nor the patient.
#[cw_serde]
pub struct Attestation {
    pub network_id: String,
    /// The storing peer's address.
    pub storer: String,
    pub storer_pubkey: Binary,
    pub nonce: Binary,
    pub commitment: String,
    /// Over `signing::attest_sign_bytes`.
    pub signature: Binary,
}

/// A sealed plaintext: a 4-byte big-endian header length, the header (its JSON), then
/// `body`.
pub fn frame(header_json: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + header_json.len() + body.len());
    out.extend_from_slice(&(header_json.len() as u32).to_be_bytes());
    out.extend_from_slice(header_json);
    out.extend_from_slice(body);
    out
}

/// `frame` undone: the header and the body after it; `None` when it is no frame.
pub fn unframe<H: serde::de::DeserializeOwned>(framed: &[u8]) -> Option<(H, &[u8])> {
    let len = u32::from_be_bytes(framed.get(..4)?.try_into().ok()?) as usize;
    let header = framed.get(4..4usize.checked_add(len)?)?;
    let header = cosmwasm_std::from_json(header).ok()?;
    Some((header, &framed[4 + len..]))
}

/// Everything a responder signs; travels in every chunk of the reply.
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
    /// The sealed reply's chunks: a `SealedOutcome` frame, padded and sealed to the
    /// requester's registered key. Records, no records and declined look alike on chain.
    pub manifest: Manifest,
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

/// One chunk of a reply. Every chunk carries the whole signed body, so each packet is
/// verified on its own (signature, manifest, entitlement), whatever order they arrive in.
#[cw_serde]
pub struct ReplyPacket {
    pub body: ReplyBody,
    /// The responder's registered secp256k1 key.
    pub signer_pubkey: Binary,
    pub signature: Binary,
    /// This chunk's place in `body.manifest`.
    pub chunk_index: u32,
    pub chunk: Binary,
}

/// The one packet type on an `ehr-exchange-3` channel.
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
    /// A chunk of the reply passed Algorithm 3 and is stored for the requester.
    ReplyAccepted {},
}
