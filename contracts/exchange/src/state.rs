use crate::quota::Window;
use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, StdResult, Storage};
use cw_storage_plus::{Item, Map};
use ehr_protocol::audit::AuditLog;
use ehr_protocol::consent::{ConsentDirective, RecordCategory};
use ehr_protocol::exchange::{
    IncomingRequest, IncomingStatus, OutgoingRequest, OutsiderTally, RecordMeta, ReplyProgress,
    RetrievedReply, StoredRecord,
};
use ehr_protocol::packet::ReplyPacket;
use ehr_protocol::ErrorCode;

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

/// A stored record's signed manifest (meta, chunk hashes, signer, signature).
pub const RECORDS: Map<(&str, &str), StoredRecord> = Map::new("records");

/// Chunks of stored records by (patient token, record id, index), as raw bytes.
pub const RECORD_CHUNKS: RawChunks = RawChunks("record_chunks");

/// Chunks of replies an earlier release received for our requests, by (request id, index),
/// as raw bytes. Read by `ReplyChunk`, deleted with their reply; no longer written.
pub const REPLY_CHUNKS: RawChunks = RawChunks("reply_chunks");

/// Which chunks of a reply are in, by (request id, index), and the sequence of the packet
/// each came in: the chunk itself stays in that packet, in the block (a requester reads it
/// from there, `RetrievedReply::chunk_packets`). `None` for a chunk an earlier release kept
/// in `REPLY_CHUNKS`.
pub const REPLY_CHUNKS_IN: Map<(&str, u32), Option<u64>> = Map::new("reply_chunks_in");

/// Replies this chain is sending, by (partner id, request id): the signed body every chunk
/// packet carries (its `chunk` left empty).
pub const REPLY_OUT: Map<(&str, &str), ReplyPacket> = Map::new("reply_out");

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

/// Replies received for our requests (the signed manifest), keyed by request id; released
/// only by `RetrieveReply`.
pub const REPLIES: Map<&str, RetrievedReply> = Map::new("replies");

/// Requests received from partners, keyed by (partner id, request id), as they arrived:
/// written once. What changes as a request is answered is in `INCOMING_PROGRESS`; read both
/// through `Incoming`.
pub(crate) const INCOMING: Map<(&str, &str), IncomingRequest> = Map::new("incoming");

/// The part of an incoming request that changes as it is answered, by the same key. Kept
/// apart from the request (about 2.5 KB, the sealed patient details most of it): the chain
/// charges 30 gas a byte written, so each step of a reply (submitted, each chunk's ack, a
/// sweep) rewrites about 100 bytes, not the whole request. Absent until the first step; an
/// entry written whole before this split carries its own progress and is read as it is.
const INCOMING_PROGRESS: Map<(&str, &str), IncomingProgress> = Map::new("incoming_progress");

#[cw_serde]
pub struct IncomingProgress {
    pub status: IncomingStatus,
    pub answered_by: Option<Addr>,
    pub reason: Option<ErrorCode>,
    pub reply: Option<ReplyProgress>,
}

impl IncomingProgress {
    fn of(incoming: &IncomingRequest) -> Self {
        Self {
            status: incoming.status,
            answered_by: incoming.answered_by.clone(),
            reason: incoming.reason.clone(),
            reply: incoming.reply.clone(),
        }
    }
}

/// Incoming requests: the request as it arrived, joined with its progress.
pub struct Incoming;

impl Incoming {
    pub fn has(storage: &dyn Storage, key: (&str, &str)) -> bool {
        INCOMING.has(storage, key)
    }

    /// Keeps a request just received (its progress is in it: `Pending`).
    pub fn insert(storage: &mut dyn Storage, incoming: &IncomingRequest) -> StdResult<()> {
        let key = (
            incoming.partner_id.as_str(),
            incoming.body.request_id.as_str(),
        );
        INCOMING.save(storage, key, incoming)
    }

    pub fn may_load(
        storage: &dyn Storage,
        key: (&str, &str),
    ) -> StdResult<Option<IncomingRequest>> {
        let Some(mut incoming) = INCOMING.may_load(storage, key)? else {
            return Ok(None);
        };
        if let Some(progress) = INCOMING_PROGRESS.may_load(storage, key)? {
            incoming.status = progress.status;
            incoming.answered_by = progress.answered_by;
            incoming.reason = progress.reason;
            incoming.reply = progress.reply;
        }
        Ok(Some(incoming))
    }

    /// Only the progress, without reading the request, once a reply has begun.
    pub fn may_load_progress(
        storage: &dyn Storage,
        key: (&str, &str),
    ) -> StdResult<Option<IncomingProgress>> {
        match INCOMING_PROGRESS.may_load(storage, key)? {
            Some(progress) => Ok(Some(progress)),
            None => Ok(INCOMING
                .may_load(storage, key)?
                .as_ref()
                .map(IncomingProgress::of)),
        }
    }

    /// Records a step of the answer: writes the progress only.
    pub fn save_progress(
        storage: &mut dyn Storage,
        key: (&str, &str),
        progress: &IncomingProgress,
    ) -> StdResult<()> {
        INCOMING_PROGRESS.save(storage, key, progress)
    }

    /// `save_progress` for a request loaded whole.
    pub fn update(storage: &mut dyn Storage, incoming: &IncomingRequest) -> StdResult<()> {
        let key = (
            incoming.partner_id.as_str(),
            incoming.body.request_id.as_str(),
        );
        Self::save_progress(storage, key, &IncomingProgress::of(incoming))
    }
}

/// Index of incoming requests still waiting for a local answer.
pub const PENDING_INCOMING: Map<(&str, &str), ()> = Map::new("pending_incoming");

/// Block times (unix seconds) of each peer's accepted requests inside the rate-limit window.
pub const RECENT_REQUESTS: Map<&Addr, Vec<u64>> = Map::new("recent_requests");

/// Incoming quota windows per partner, and per (partner, remote clinician id).
pub const QUOTA_PARTNER: Map<&str, Window> = Map::new("quota_partner");
pub const QUOTA_REMOTE: Map<(&str, &str), Window> = Map::new("quota_remote");

/// Attempts by unregistered senders: a counter, never an entry per attempt.
pub const OUTSIDERS: Item<OutsiderTally> = Item::new("outsiders");

/// Every step on this chain, no PHI; the steps about a patient (consent, releases: the
/// custodian's own pseudonym) are also indexed by (patient, entry id) for `AuditByPatient`.
pub const AUDIT: AuditLog = AuditLog::with_patient_index("audit_next", "audit", "audit_by_patient");

/// A patient's consent directives, by (the custodian's pseudonym, directive id): recorded
/// by the privacy office, revoked ones kept as the patient's consent history. At most
/// `MAX_DIRECTIVES_PER_PATIENT` per patient.
pub const CONSENTS: Map<(&str, &str), ConsentDirective> = Map::new("consents");

/// What an accepted reply declared it releases, by (partner id, request id) like the
/// incoming progress: every later chunk is checked against the patient's directives again.
pub const DISCLOSURES: Map<(&str, &str), KeptDisclosure> = Map::new("disclosures");

#[cw_serde]
pub struct KeptDisclosure {
    /// The custodian's pseudonym.
    pub patient: String,
    /// The released records' categories, deduplicated.
    pub categories: Vec<RecordCategory>,
    /// The break-glass time box was open when the reply was accepted: the release is
    /// judged as a break-glass one to its end.
    pub break_glass: bool,
}

/// Break-glass requests this chain sent that wait for a co-signature, by (due time, request
/// id): what a sweep walks to audit a missing co-signature once.
pub const BREAK_GLASS_BY_DUE: Map<(u64, &str), ()> = Map::new("break_glass_by_due");

/// Chunks kept as raw bytes under a namespace: stored as JSON they would grow by a third
/// (base64), and a storage value may not exceed 128 KiB. The key is the namespace, then each
/// key part length-prefixed, then the index, so no two keys of one store collide.
pub struct RawChunks(&'static str);

impl RawChunks {
    fn key(&self, parts: &[&str], index: u32) -> Vec<u8> {
        let mut key = Vec::with_capacity(64);
        key.extend_from_slice(&(self.0.len() as u16).to_be_bytes());
        key.extend_from_slice(self.0.as_bytes());
        for part in parts {
            key.extend_from_slice(&(part.len() as u16).to_be_bytes());
            key.extend_from_slice(part.as_bytes());
        }
        key.extend_from_slice(&index.to_be_bytes());
        key
    }

    pub fn save(&self, storage: &mut dyn Storage, parts: &[&str], index: u32, data: &[u8]) {
        storage.set(&self.key(parts, index), data);
    }

    pub fn load(&self, storage: &dyn Storage, parts: &[&str], index: u32) -> Option<Vec<u8>> {
        storage.get(&self.key(parts, index))
    }

    pub fn remove(&self, storage: &mut dyn Storage, parts: &[&str], index: u32) {
        storage.remove(&self.key(parts, index));
    }
}

/// Deletes what a reply left on the requesting chain (its chunks, their index, its signed
/// manifest) when the request ends without it: a part of a history is never kept.
pub fn drop_reply(storage: &mut dyn Storage, request_id: &str) {
    let received: Vec<u32> = REPLY_CHUNKS_IN
        .prefix(request_id)
        .keys(storage, None, None, cosmwasm_std::Order::Ascending)
        .filter_map(Result::ok)
        .collect();
    for index in received {
        REPLY_CHUNKS.remove(storage, &[request_id], index);
        REPLY_CHUNKS_IN.remove(storage, (request_id, index));
    }
    REPLIES.remove(storage, request_id);
}
