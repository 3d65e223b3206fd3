//! Messages and types of the `exchange` contract: stores, requests, replies, retrieval.

use crate::error_code::ErrorCode;
use crate::packet::{ReplyOutcome, RequestBody};
use cosmwasm_schema::{cw_serde, QueryResponses};
use cosmwasm_std::{Addr, Binary, Timestamp};

/// HL7 purpose of use, checked on both chains.
#[cw_serde]
#[derive(Copy, Eq)]
pub enum PurposeOfUse {
    /// HL7 `TREAT`.
    Treatment,
    /// HL7 `ETREAT`: emergency treatment.
    EmergencyTreatment,
    /// HL7 `HPAYMT`.
    Payment,
    /// HL7 `HOPERAT`.
    Operations,
}

impl PurposeOfUse {
    pub fn as_str(&self) -> &'static str {
        match self {
            PurposeOfUse::Treatment => "treatment",
            PurposeOfUse::EmergencyTreatment => "emergency_treatment",
            PurposeOfUse::Payment => "payment",
            PurposeOfUse::Operations => "operations",
        }
    }
}

#[cw_serde]
pub struct InstantiateMsg {
    /// The registry contract on this chain (peers, clinicians, partners, policy).
    pub registry: String,
}

/// The paper's transaction type 1: an encrypted record enters the ledger.
#[cw_serde]
pub struct StoreRecordMsg {
    pub record_id: String,
    pub patient_token: String,
    /// The record encrypted to the hospital's records key.
    pub ciphertext: Binary,
    /// Hex SHA-256 of `ciphertext`; recomputed on chain.
    pub content_hash: String,
    /// Storing peer's signature over `signing::store_sign_bytes`.
    pub signature: Binary,
}

/// Algorithm 1: a local clinician asks a partner network for a patient's history.
#[cw_serde]
pub struct SubmitRequestMsg {
    pub request_id: String,
    /// Destination network (its partner id in our lookup table).
    pub partner_id: String,
    /// The registered clinician who asks; `signature` is theirs.
    pub clinician_id: String,
    pub purpose: PurposeOfUse,
    /// The patient's details sealed to the partner's registered custodian key
    /// (`SEALED_PATIENT_LEN` bytes).
    pub sealed_patient: Binary,
    /// X25519 key the reply is encrypted to: the peer's registered key.
    pub reply_encryption_key: Binary,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds.
    pub expires_at: u64,
    /// The clinician's signature over `signing::request_sign_bytes` of the request body.
    pub signature: Binary,
}

/// A local peer answers a pending incoming request.
#[cw_serde]
pub struct SubmitReplyMsg {
    /// The requesting network.
    pub partner_id: String,
    pub request_id: String,
    pub outcome: ReplyOutcome,
    pub issued_at: u64,
    /// Signature over `signing::reply_sign_bytes` of the reply body.
    pub signature: Binary,
}

#[cw_serde]
pub enum ExecuteMsg {
    StoreRecord(StoreRecordMsg),
    SubmitRequest(SubmitRequestMsg),
    SubmitReply(SubmitReplyMsg),
    /// Only the requesting peer gets the reply (in the response data, as `RetrievedReply`).
    RetrieveReply {
        request_id: String,
    },
    /// Finalises requests on both sides whose expiry (plus the policy's grace) has passed
    /// and that are still open: outgoing `pending` and incoming `pending` or `answered`
    /// become `expired`, each with one audit entry. Anyone may call it (a keeper, the reply
    /// service, an operator); it is never struck, and one call does at most
    /// `min(limit, policy.sweep_max_items)` entries.
    Sweep {
        limit: Option<u32>,
    },
}

#[cw_serde]
#[derive(Copy, Eq)]
pub enum RequestStatus {
    Pending,
    Answered,
    Rejected,
    TimedOut,
    Expired,
}

/// What the requesting chain keeps of one of its requests (no ciphertext).
#[cw_serde]
pub struct OutgoingRequest {
    pub request_id: String,
    pub requester: Addr,
    /// The registered clinician who asked.
    pub clinician_id: String,
    pub partner_id: String,
    pub channel_id: String,
    pub purpose: PurposeOfUse,
    pub status: RequestStatus,
    pub reason: Option<ErrorCode>,
    pub created_at: Timestamp,
    pub expires_at: u64,
    pub packet_sequence: Option<u64>,
    pub reply: Option<ReplySummary>,
    pub retrievals: u32,
    /// `key_hash` of the requester's registered encryption key when it asked. A reply is
    /// stored only while the requester's current key still has this hash.
    #[serde(default)]
    pub reply_key_hash: Option<String>,
}

/// Who answered, from where, with what outcome kind.
#[cw_serde]
pub struct ReplySummary {
    pub responder: String,
    pub responder_network: String,
    pub outcome: String,
    pub content_hash: Option<String>,
    pub received_at: Timestamp,
    pub channel_id: String,
    pub packet_sequence: u64,
}

/// Response data of a successful `RetrieveReply`.
#[cw_serde]
pub struct RetrievedReply {
    pub request_id: String,
    pub responder: String,
    pub responder_network: String,
    pub responder_pubkey: Binary,
    pub outcome: ReplyOutcome,
    pub issued_at: u64,
    pub signature: Binary,
    pub channel_id: String,
    pub packet_sequence: u64,
}

#[cw_serde]
#[derive(Copy, Eq)]
pub enum IncomingStatus {
    /// Waiting for a local peer to answer.
    Pending,
    /// A reply was sent; waiting for its acknowledgement.
    Answered,
    /// The requesting chain accepted the reply.
    Delivered,
    /// The requesting chain refused the reply (reason set).
    Failed,
    /// The reply packet timed out.
    TimedOut,
    /// Nobody answered before the request expired, or the answer's fate never came back:
    /// closed by a sweep.
    Expired,
}

/// A request received from a partner, kept for the local reply service.
#[cw_serde]
pub struct IncomingRequest {
    pub partner_id: String,
    pub channel_id: String,
    pub packet_sequence: u64,
    pub received_at: Timestamp,
    pub body: RequestBody,
    pub signer_pubkey: Binary,
    pub signature: Binary,
    pub status: IncomingStatus,
    pub answered_by: Option<Addr>,
    pub reason: Option<ErrorCode>,
}

/// Metadata of a stored record (the ciphertext only through `Record`).
#[cw_serde]
pub struct RecordMeta {
    pub record_id: String,
    pub content_hash: String,
    pub size: u64,
    pub stored_by: Addr,
    pub stored_at: Timestamp,
}

#[cw_serde]
pub struct StoredRecord {
    pub meta: RecordMeta,
    pub ciphertext: Binary,
    pub signer_pubkey: Binary,
    pub signature: Binary,
}

#[cw_serde]
#[derive(QueryResponses)]
pub enum QueryMsg {
    #[returns(ConfigResponse)]
    Config {},
    /// A request this chain sent.
    #[returns(OutgoingRequest)]
    Request { request_id: String },
    #[returns(RequestsResponse)]
    RequestsByRequester {
        requester: String,
        start_after: Option<String>,
        limit: Option<u32>,
    },
    /// A request received from a partner.
    #[returns(IncomingRequest)]
    IncomingRequest {
        partner_id: String,
        request_id: String,
    },
    /// Received requests still waiting for a local answer.
    #[returns(IncomingRequestsResponse)]
    PendingIncoming {
        start_after: Option<(String, String)>,
        limit: Option<u32>,
    },
    /// Record index for a patient token: metadata only.
    #[returns(RecordsResponse)]
    Records {
        patient_token: String,
        start_after: Option<String>,
        limit: Option<u32>,
    },
    /// One stored record with its ciphertext (readable only with the records key).
    #[returns(StoredRecord)]
    Record {
        patient_token: String,
        record_id: String,
    },
    #[returns(crate::registry::AuditLogResponse)]
    AuditLog {
        start_after: Option<u64>,
        limit: Option<u32>,
    },
    /// How many transactions outsiders (unregistered senders) sent, and when the last came.
    #[returns(OutsiderTally)]
    OutsiderAttempts {},
}

/// The trace outsiders leave: one counter, so that they cannot fill the chain's storage.
/// Each attempt is also an event in its transaction (`outcome=rejected`,
/// `reason=NotRegistered`, `sender`).
#[cw_serde]
#[derive(Default)]
pub struct OutsiderTally {
    pub attempts: u64,
    pub last_at: Option<Timestamp>,
}

#[cw_serde]
pub struct ConfigResponse {
    pub registry: Addr,
    pub network_id: String,
}

#[cw_serde]
pub struct RequestsResponse {
    pub requests: Vec<OutgoingRequest>,
}

#[cw_serde]
pub struct IncomingRequestsResponse {
    pub requests: Vec<IncomingRequest>,
}

#[cw_serde]
pub struct RecordsResponse {
    pub records: Vec<RecordMeta>,
}

/// Re-exported so the exchange's audit query and the registry's share one type.
pub type AuditLogResponse = crate::registry::AuditLogResponse;
