use crate::quota::Window;
use cosmwasm_schema::cw_serde;
use cosmwasm_std::Addr;
use cw_storage_plus::{Item, Map};
use ehr_protocol::audit::AuditLog;
use ehr_protocol::exchange::{
    IncomingRequest, OutgoingRequest, OutsiderTally, RecordMeta, RetrievedReply, StoredRecord,
};

#[cw_serde]
pub struct Config {
    pub registry: Addr,
    /// Our network id, copied from the registry at instantiation.
    pub network_id: String,
}

pub const CONFIG: Item<Config> = Item::new("config");

/// Record metadata keyed by (patient token, record id): the record index per patient. Kept
/// apart from the ciphertext, so listing a patient's records never loads a ciphertext and
/// its gas does not grow with record size.
pub const RECORD_META: Map<(&str, &str), RecordMeta> = Map::new("record_meta");

/// The whole stored record (ciphertext, signer, signature), read one at a time.
pub const RECORDS: Map<(&str, &str), StoredRecord> = Map::new("records");

/// Records stored per patient token, capped by the policy's `max_records_per_patient`.
pub const RECORD_COUNT: Map<&str, u32> = Map::new("record_count");

/// Requests this chain sent, keyed by request id (ids are unique per network: replay check).
pub const OUTGOING: Map<&str, OutgoingRequest> = Map::new("outgoing");

/// (requester, request id) index for the by-requester query.
pub const OUTGOING_BY_REQUESTER: Map<(&Addr, &str), ()> = Map::new("outgoing_by_requester");

/// Open outgoing requests by (expires_at, request id): what a sweep walks.
pub const OUTGOING_BY_EXPIRY: Map<(u64, &str), ()> = Map::new("outgoing_by_expiry");

/// Open incoming requests by (expires_at, partner id, request id): what a sweep walks.
pub const INCOMING_BY_EXPIRY: Map<(u64, &str, &str), ()> = Map::new("incoming_by_expiry");

/// Replies received for our requests, keyed by request id; released only by `RetrieveReply`.
pub const REPLIES: Map<&str, RetrievedReply> = Map::new("replies");

/// Requests received from partners, keyed by (partner id, request id).
pub const INCOMING: Map<(&str, &str), IncomingRequest> = Map::new("incoming");

/// Index of incoming requests still waiting for a local answer.
pub const PENDING_INCOMING: Map<(&str, &str), ()> = Map::new("pending_incoming");

/// Block times (unix seconds) of each peer's accepted requests inside the rate-limit window.
pub const RECENT_REQUESTS: Map<&Addr, Vec<u64>> = Map::new("recent_requests");

/// Incoming quota windows per partner, and per (partner, remote clinician id).
pub const QUOTA_PARTNER: Map<&str, Window> = Map::new("quota_partner");
pub const QUOTA_REMOTE: Map<(&str, &str), Window> = Map::new("quota_remote");

/// Attempts by unregistered senders: a counter, never an entry per attempt.
pub const OUTSIDERS: Item<OutsiderTally> = Item::new("outsiders");

/// Every step on this chain, no PHI.
pub const AUDIT: AuditLog = AuditLog::new("audit_next", "audit");
