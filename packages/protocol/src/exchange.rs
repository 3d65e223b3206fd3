//! Messages and types of the `exchange` contract: stores, requests, replies, retrieval.

use crate::chunks::Manifest;
use crate::consent::{
    BreakGlass, ConsentDirective, ConsentDirectiveInput, EmergencyReason, RecordCategory,
};
use crate::error_code::ErrorCode;
use crate::packet::RequestBody;
use cosmwasm_schema::{cw_serde, QueryResponses};
use cosmwasm_std::{Addr, Binary};

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

/// The paper's transaction type 1: an encrypted record enters the ledger. A record of any
/// size is a signed manifest and its chunks (`chunks` module): this message carries the
/// manifest and the first chunks, `StoreChunks` the rest, in order. Every chunk is checked
/// against the manifest before it is written; the record is complete with its last chunk.
#[cw_serde]
pub struct StoreRecordMsg {
    pub record_id: String,
    pub patient_token: String,
    /// The chunks of the record sealed to the hospital's records key.
    pub manifest: Manifest,
    /// Storing peer's signature over `signing::store_sign_bytes`.
    pub signature: Binary,
    /// Chunks 0, 1, ... (as many as fit one transaction; may be empty).
    pub chunks: Vec<Binary>,
    /// What kind of record it is, for the patient's consent directives; signed last in
    /// `ehrx/store/v3`. `general` when not given.
    #[serde(default)]
    pub category: RecordCategory,
}

/// More chunks of a record its storer began, from `first_index` on: the next missing one.
#[cw_serde]
pub struct StoreChunksMsg {
    pub patient_token: String,
    pub record_id: String,
    pub first_index: u32,
    pub chunks: Vec<Binary>,
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
    /// A break-glass claim (emergency access): signed with the request. Needs the purpose
    /// `emergency_treatment`, a clinician whose credential allows it, and a coded reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<BreakGlass>,
}

/// A local peer answers a pending incoming request: the signed manifest of the sealed
/// reply and its first chunks; `SubmitReplyChunks` sends the rest. Each chunk leaves as one
/// packet that carries the signed body.
#[cw_serde]
pub struct SubmitReplyMsg {
    /// The requesting network.
    pub partner_id: String,
    pub request_id: String,
    pub manifest: Manifest,
    pub issued_at: u64,
    /// Signature over `signing::reply_sign_bytes` of the reply body.
    pub signature: Binary,
    /// Chunks 0, 1, ... (as many as fit one transaction; may be empty).
    pub chunks: Vec<Binary>,
    /// What the reply releases, as the reply service declares it: the custodian's chain
    /// checks it against the patient's consent directives before the first chunk leaves,
    /// and again at every later chunk. Absent: no consent check (the chain cannot see
    /// inside the sealed reply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosure: Option<Disclosure>,
}

/// The records a reply releases: complete records stored under the custodian's pseudonym
/// `patient`. Empty `record_ids` releases nothing (a sealed `no_records` or `declined`).
#[cw_serde]
pub struct Disclosure {
    /// The custodian's pseudonym for the patient (64 lowercase hex).
    pub patient: String,
    pub record_ids: Vec<String>,
}

/// A second clinician on the requesting chain co-signs a break-glass request, within the
/// policy's `break_glass_cosign_secs` of it.
#[cw_serde]
pub struct CosignMsg {
    pub request_id: String,
    /// The co-signing clinician: registered, active, allowed break-glass, not the requester.
    pub clinician_id: String,
    /// The co-signer's low-S signature over `signing::cosign_sign_bytes`.
    pub signature: Binary,
}

/// More chunks of a reply this peer began, from `first_index` on: the next unsent one.
#[cw_serde]
pub struct SubmitReplyChunksMsg {
    pub partner_id: String,
    pub request_id: String,
    pub first_index: u32,
    pub chunks: Vec<Binary>,
}

#[cw_serde]
pub enum ExecuteMsg {
    StoreRecord(StoreRecordMsg),
    StoreChunks(StoreChunksMsg),
    SubmitRequest(SubmitRequestMsg),
    SubmitReply(SubmitReplyMsg),
    SubmitReplyChunks(SubmitReplyChunksMsg),
    /// Only the requesting peer gets the reply, once every chunk is in: its manifest in the
    /// response data (`RetrievedReply`), then its chunks through the `ReplyChunk` query.
    ///
    /// A query cannot serve this release: queries have no sender. The response data is
    /// JSON of `RetrievedReply` (schema: `schema/exchange-data/retrieved_reply.json`).
    RetrieveReply {
        /// The request this peer sent (`SubmitRequestMsg.request_id`).
        request_id: String,
    },
    /// Finalises requests on both sides whose expiry (plus the policy's grace) has passed
    /// and that are still open: outgoing `pending` and incoming `pending` or `answered`
    /// become `expired`, each with one audit entry. Anyone may call it (a keeper, the reply
    /// service, an operator); it is never struck, and one call does at most
    /// `min(limit, policy.sweep_max_items)` entries.
    Sweep {
        /// At most this many entries (capped by `policy.sweep_max_items`).
        limit: Option<u32>,
    },
    /// A second clinician co-signs a break-glass request this chain sent (sent by a peer
    /// with the `request` role).
    CosignBreakGlass(CosignMsg),
    /// The custodian's privacy office records a patient's consent directive (role
    /// `privacy`).
    RecordConsent {
        directive: ConsentDirectiveInput,
    },
    /// The privacy office revokes a directive: it is kept, marked revoked, as the
    /// patient's consent history.
    RevokeConsent {
        patient: String,
        directive_id: String,
    },
}

#[cw_serde]
#[derive(Copy, Eq)]
pub enum RequestStatus {
    Pending,
    /// Some chunks of the reply are in, not all.
    Receiving,
    /// Every chunk of the reply is in.
    Answered,
    Rejected,
    TimedOut,
    Expired,
}

/// What the requesting chain keeps of one of its requests (no ciphertext).
#[cw_serde]
// `deserialize_with` reads legacy times (unix_time); the schemas describe unix seconds.
#[schemaifier(mute_warnings)]
pub struct OutgoingRequest {
    pub request_id: String,
    /// The peer that sent it: the only one that may retrieve its reply.
    pub requester: Addr,
    /// The registered clinician who asked.
    pub clinician_id: String,
    /// The network asked.
    pub partner_id: String,
    /// The channel the request packet left on; the reply must come back on it.
    pub channel_id: String,
    pub purpose: PurposeOfUse,
    pub status: RequestStatus,
    /// Why it was rejected or failed, when it was.
    pub reason: Option<ErrorCode>,
    /// Block time of the request, unix seconds.
    #[serde(deserialize_with = "crate::unix_time::seconds")]
    pub created_at: u64,
    /// The signed expiry, unix seconds.
    pub expires_at: u64,
    /// The request packet's sequence on `channel_id`.
    pub packet_sequence: Option<u64>,
    /// The reply, once its first chunk is in.
    pub reply: Option<ReplySummary>,
    /// How many times the requester retrieved the reply (each audited).
    pub retrievals: u32,
    /// `key_hash` of the requester's registered encryption key when it asked. A reply is
    /// stored only while the requester's current key still has this hash.
    #[serde(default)]
    pub reply_key_hash: Option<String>,
    /// A break-glass request: the clinician's coded reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<EmergencyReason>,
    /// When the policy asks for a co-signature: the second clinician must co-sign before
    /// this time (unix seconds); a sweep audits it missing after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosign_due: Option<u64>,
    /// The clinician id that co-signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosigned_by: Option<String>,
}

/// Who answered, from where, and how much of the sealed reply is in.
#[cw_serde]
// `deserialize_with` reads legacy times (unix_time); the schemas describe unix seconds.
#[schemaifier(mute_warnings)]
pub struct ReplySummary {
    /// The responding peer's address on its own chain.
    pub responder: String,
    /// The responding network (the partner asked).
    pub responder_network: String,
    /// Lowercase hex hash binding every chunk of the sealed reply.
    pub history_hash: String,
    pub chunk_count: u32,
    pub chunks_received: u32,
    /// Block time when the first chunk came, unix seconds.
    #[serde(deserialize_with = "crate::unix_time::seconds")]
    pub received_at: u64,
    /// The channel the reply came on.
    pub channel_id: String,
    /// The first chunk's packet.
    pub packet_sequence: u64,
}

/// Response data of a successful `RetrieveReply`: the signed reply without its chunks. Each
/// chunk is read from its packet in the chain's blocks (`chunk_packets`), or, for a reply an
/// earlier release stored whole, with the `ReplyChunk` query.
#[cw_serde]
pub struct RetrievedReply {
    pub request_id: String,
    /// The responding peer's address on its own chain.
    pub responder: String,
    /// The responding network.
    pub responder_network: String,
    /// The responder's secp256k1 public key (33 bytes, compressed) that `signature` verifies
    /// under.
    pub responder_pubkey: Binary,
    /// The key hash the responder signed it encrypted to.
    pub recipient_key_hash: String,
    /// The chunks of the sealed reply: their count, sizes and hashes.
    pub manifest: Manifest,
    /// Unix seconds, as the responder signed it.
    pub issued_at: u64,
    /// The responder's signature over `signing::reply_sign_bytes` (domain `ehrx/reply/v2`).
    pub signature: Binary,
    /// The channel the reply came on.
    pub channel_id: String,
    /// The first chunk's packet.
    pub packet_sequence: u64,
    /// The sequence of the packet (on `channel_id`) each chunk came in, by chunk index: read
    /// chunk `i` from the `recv_packet` event of packet `chunk_packets[i]` (`packet_data_hex`,
    /// a `ReplyPacket`) and check it against `manifest`. The chain keeps no copy of a chunk
    /// (30 gas a byte written): it is in the block already. Set in `RetrieveReply`'s data;
    /// empty for a reply an earlier release stored whole (read it with `ReplyChunk`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunk_packets: Vec<u64>,
}

#[cw_serde]
#[derive(Copy, Eq)]
pub enum IncomingStatus {
    /// Waiting for a local peer to answer.
    Pending,
    /// A reply was begun: its manifest is signed, not every chunk is sent yet.
    Answering,
    /// Every chunk of the reply was sent; waiting for their acknowledgements.
    Answered,
    /// The requesting chain accepted every chunk of the reply.
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
// `deserialize_with` reads legacy times (unix_time); the schemas describe unix seconds.
#[schemaifier(mute_warnings)]
pub struct IncomingRequest {
    /// The requesting network.
    pub partner_id: String,
    /// The channel it came on.
    pub channel_id: String,
    pub packet_sequence: u64,
    /// Block time when it came, unix seconds.
    #[serde(deserialize_with = "crate::unix_time::seconds")]
    pub received_at: u64,
    /// The signed request, as the requesting chain sent it, except `sealed_patient` when
    /// `sealed_patient_sha256` is set: then it is empty here.
    pub body: RequestBody,
    /// SHA-256 (lowercase hex) of the request's `sealed_patient`, when the chain kept the
    /// request without them. The sealed details (~1.4 KB as JSON, 30 gas a byte to store) are
    /// in the chain's blocks already, in the packet: the custodian's reply service reads
    /// them from the `recv_packet` event of `packet_sequence` on `channel_id`
    /// (`packet_data_hex`) and checks them against this hash. Absent in requests an earlier
    /// release kept whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_patient_sha256: Option<String>,
    /// The requesting clinician's secp256k1 public key.
    pub signer_pubkey: Binary,
    /// The clinician's signature over `signing::request_sign_bytes(body)`.
    pub signature: Binary,
    pub status: IncomingStatus,
    /// The local peer whose reply was accepted.
    pub answered_by: Option<Addr>,
    /// Why the reply failed, when it did.
    pub reason: Option<ErrorCode>,
    /// The reply's progress, once begun.
    #[serde(default)]
    pub reply: Option<ReplyProgress>,
    /// A break-glass request this chain accepted, with its time box.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<BreakGlassGrant>,
}

/// The custodian's chain accepted a break-glass claim: until `window_ends` (unix seconds;
/// receipt plus the policy's `break_glass_window_secs`) it may override a deny the patient
/// allowed break-glass to override.
#[cw_serde]
#[derive(Copy, Eq)]
pub struct BreakGlassGrant {
    pub reason: EmergencyReason,
    pub window_ends: u64,
}

/// How far a reply has gone: chunks sent by the reply service, chunks the requesting chain
/// acknowledged.
#[cw_serde]
pub struct ReplyProgress {
    pub chunk_count: u32,
    pub chunks_sent: u32,
    pub chunks_acked: u32,
}

/// Metadata of a stored record (its manifest through `Record`, its chunks through
/// `RecordChunk`).
#[cw_serde]
// `deserialize_with` reads legacy times (unix_time); the schemas describe unix seconds.
#[schemaifier(mute_warnings)]
pub struct RecordMeta {
    pub record_id: String,
    /// Lowercase hex hash binding every chunk of the sealed record.
    pub history_hash: String,
    /// Length of every chunk.
    pub chunk_bytes: u32,
    pub chunk_count: u32,
    /// Chunks in so far; the record is complete when this is `chunk_count`.
    pub chunks_stored: u32,
    /// The storing peer.
    pub stored_by: Addr,
    /// Block time of the `StoreRecord`, unix seconds.
    #[serde(deserialize_with = "crate::unix_time::seconds")]
    pub stored_at: u64,
    /// The category the storer signed (`general` for records stored before v3).
    #[serde(default)]
    pub category: RecordCategory,
}

impl RecordMeta {
    /// Every chunk is in: the record can be read and answered with.
    pub fn complete(&self) -> bool {
        self.chunks_stored == self.chunk_count
    }
}

#[cw_serde]
pub struct StoredRecord {
    pub meta: RecordMeta,
    pub manifest: Manifest,
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
    /// Received requests still waiting for a local answer, in (partner id, request id)
    /// order.
    #[returns(IncomingRequestsResponse)]
    PendingIncoming {
        /// Start after this request: the cursor of the previous page's last one
        /// (`IncomingCursor::after`).
        start_after: Option<IncomingCursor>,
        /// Page size: default 20, at most 100 (`limits::DEFAULT_PAGE`, `MAX_PAGE`).
        limit: Option<u32>,
    },
    /// Record index for a patient token: metadata only.
    #[returns(RecordsResponse)]
    Records {
        patient_token: String,
        start_after: Option<String>,
        limit: Option<u32>,
    },
    /// One stored record's signed manifest.
    #[returns(StoredRecord)]
    Record {
        patient_token: String,
        record_id: String,
    },
    /// One chunk of a stored record (readable only with the records key).
    #[returns(Binary)]
    RecordChunk {
        patient_token: String,
        record_id: String,
        index: u32,
    },
    /// One chunk of a reply an earlier release stored whole, once its requester retrieved
    /// it (`RetrieveReply`); readable only with the requester's key. A reply received now
    /// keeps its chunks in their packets only: read them from the blocks
    /// (`RetrievedReply::chunk_packets`).
    #[returns(Binary)]
    ReplyChunk { request_id: String, index: u32 },
    #[returns(crate::registry::AuditLogResponse)]
    AuditLog {
        start_after: Option<u64>,
        limit: Option<u32>,
    },
    /// How many transactions outsiders (unregistered senders) sent, and when the last came.
    #[returns(OutsiderTally)]
    OutsiderAttempts {},
    /// A patient's consent directives (revoked ones included), by directive id.
    #[returns(ConsentDirectivesResponse)]
    ConsentDirectives {
        /// The custodian's pseudonym.
        patient: String,
        start_after: Option<String>,
        limit: Option<u32>,
    },
    /// What the patient's directives decide now for a release of these categories to this
    /// partner for this purpose: what the reply service asks before it builds a reply.
    #[returns(crate::consent::ConsentOutcome)]
    ConsentCheck {
        patient: String,
        partner_id: String,
        purpose: PurposeOfUse,
        categories: Vec<RecordCategory>,
        /// The request is a break-glass request within its time box.
        break_glass: bool,
    },
    /// The audit entries about one patient (consent and releases), oldest first: the
    /// patient's "who accessed my record" report.
    #[returns(crate::registry::AuditLogResponse)]
    AuditByPatient {
        patient: String,
        start_after: Option<u64>,
        limit: Option<u32>,
    },
}

#[cw_serde]
pub struct ConsentDirectivesResponse {
    pub directives: Vec<ConsentDirective>,
}

/// Where a `PendingIncoming` page starts: after the incoming request with these ids.
#[cw_serde]
pub struct IncomingCursor {
    /// The requesting network (`IncomingRequest.partner_id`).
    pub partner_id: String,
    /// Its request id (`IncomingRequest.body.request_id`).
    pub request_id: String,
}

impl IncomingCursor {
    /// The cursor of the page that follows `last`.
    pub fn after(last: &IncomingRequest) -> Self {
        IncomingCursor {
            partner_id: last.partner_id.clone(),
            request_id: last.body.request_id.clone(),
        }
    }
}

/// The trace outsiders leave: one counter, so that they cannot fill the chain's storage.
/// Each attempt is also an event in its transaction (`outcome=rejected`,
/// `reason=NotRegistered`, `sender`).
#[cw_serde]
// `deserialize_with` reads legacy times (unix_time); the schemas describe unix seconds.
#[schemaifier(mute_warnings)]
#[derive(Default)]
pub struct OutsiderTally {
    pub attempts: u64,
    /// Block time of the last attempt, unix seconds.
    #[serde(default, deserialize_with = "crate::unix_time::optional_seconds")]
    pub last_at: Option<u64>,
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
