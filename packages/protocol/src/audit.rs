//! Audit entries (no PHI: codes, ids, addresses and times only) and the append-only,
//! paginated log both contracts keep.

use crate::error_code::ErrorCode;
use crate::exchange::PurposeOfUse;
use crate::limits::page_size;
use crate::registry::Role;
use cosmwasm_schema::cw_serde;
use cosmwasm_std::{Addr, StdResult, Storage, Timestamp};
use cw_storage_plus::{Bound, Item, Map};

#[cw_serde]
#[derive(Copy, Eq)]
pub enum AuditAction {
    RecordStored,
    RequestSubmitted,
    RequestDelivered,
    RequestFailed,
    RequestTimedOut,
    RequestExpired,
    RequestReceived,
    ReplySubmitted,
    ReplyDelivered,
    ReplyFailed,
    ReplyTimedOut,
    ReplyReceived,
    Retrieval,
    Strike,
    Quarantine,
    Release,
    PeerRegistered,
    PeerKeysRotated,
    PeerRevoked,
    ClinicianChanged,
    PartnerChanged,
    PolicyChanged,
    AdminChanged,
    ChannelOpened,
    ChannelClosed,
    /// A break-glass request: sent (requesting chain) or received (custodian's chain); a
    /// distinct event beside the request's own.
    BreakGlass,
    /// A second clinician co-signed a break-glass request within the policy's time.
    BreakGlassCosigned,
    /// A break-glass request that needed a co-signature got none in time.
    BreakGlassCosignMissing,
    /// A patient's consent directive recorded, or revoked (custodian's chain).
    ConsentRecorded,
    ConsentRevoked,
    /// The custodian's chain decided a release against the patient's directives:
    /// `Success` released (`reason` none), `Rejected` with `ConsentDenied`.
    ConsentDecision,
}

#[cw_serde]
#[derive(Copy, Eq)]
pub enum AuditOutcome {
    Success,
    /// Refused with a reason code; nothing stored or forwarded.
    Rejected,
}

/// One step, on the chain where it happened.
#[cw_serde]
pub struct AuditEntry {
    pub id: u64,
    pub time: Timestamp,
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    pub reason: Option<ErrorCode>,
    /// The peer (or admin, or relayer) that caused the step.
    pub agent: Option<Addr>,
    pub role: Option<Role>,
    pub purpose: Option<PurposeOfUse>,
    pub request_id: Option<String>,
    /// Partner network on the other end, when there is one.
    pub partner_id: Option<String>,
    pub channel_id: Option<String>,
    pub packet_sequence: Option<u64>,
    /// What a registry change applied to: a peer address, a clinician id, a new admin.
    #[serde(default)]
    pub subject: Option<String>,
    /// The registered clinician a request step is about, on both chains.
    #[serde(default)]
    pub clinician_id: Option<String>,
    /// The custodian's pseudonym for the patient a step is about, on the custodian's chain
    /// only (consent, the release of a reply): what a patient's "who accessed my record"
    /// report is read by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// The consent directive (its id) that decided a `ConsentDecision`, or that a
    /// `ConsentRecorded` / `ConsentRevoked` is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directive_id: Option<String>,
}

impl AuditEntry {
    /// A successful step at `time`; fill the optional fields with the builder methods.
    pub fn new(time: Timestamp, action: AuditAction) -> Self {
        AuditEntry {
            id: 0,
            time,
            action,
            outcome: AuditOutcome::Success,
            reason: None,
            agent: None,
            role: None,
            purpose: None,
            request_id: None,
            partner_id: None,
            channel_id: None,
            packet_sequence: None,
            subject: None,
            clinician_id: None,
            patient: None,
            directive_id: None,
        }
    }

    pub fn rejected(mut self, reason: ErrorCode) -> Self {
        self.outcome = AuditOutcome::Rejected;
        self.reason = Some(reason);
        self
    }

    pub fn agent(mut self, agent: &Addr) -> Self {
        self.agent = Some(agent.clone());
        self
    }

    pub fn role(mut self, role: Role) -> Self {
        self.role = Some(role);
        self
    }

    pub fn purpose(mut self, purpose: PurposeOfUse) -> Self {
        self.purpose = Some(purpose);
        self
    }

    pub fn request(mut self, request_id: &str) -> Self {
        self.request_id = Some(request_id.to_string());
        self
    }

    pub fn partner(mut self, partner_id: &str) -> Self {
        self.partner_id = Some(partner_id.to_string());
        self
    }

    pub fn packet(mut self, channel_id: &str, sequence: u64) -> Self {
        self.channel_id = Some(channel_id.to_string());
        self.packet_sequence = Some(sequence);
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn clinician(mut self, clinician_id: &str) -> Self {
        self.clinician_id = Some(clinician_id.to_string());
        self
    }

    pub fn channel(mut self, channel_id: &str) -> Self {
        self.channel_id = Some(channel_id.to_string());
        self
    }

    /// The custodian's pseudonym of the patient (custodian's chain only).
    pub fn patient(mut self, pseudonym: &str) -> Self {
        self.patient = Some(pseudonym.to_string());
        self
    }

    pub fn directive(mut self, directive_id: &str) -> Self {
        self.directive_id = Some(directive_id.to_string());
        self
    }
}

/// Append-only log keyed by a monotonically increasing id; optionally indexed by patient
/// (`(patient, id)`, written whenever an appended entry names one).
pub struct AuditLog {
    next_id: Item<u64>,
    entries: Map<u64, AuditEntry>,
    patient_index: Option<&'static str>,
}

impl AuditLog {
    pub const fn new(next_id_key: &'static str, entries_key: &'static str) -> Self {
        AuditLog {
            next_id: Item::new(next_id_key),
            entries: Map::new(entries_key),
            patient_index: None,
        }
    }

    /// A log that also keeps the ids of the entries about each patient under `index_key`.
    pub const fn with_patient_index(
        next_id_key: &'static str,
        entries_key: &'static str,
        index_key: &'static str,
    ) -> Self {
        AuditLog {
            next_id: Item::new(next_id_key),
            entries: Map::new(entries_key),
            patient_index: Some(index_key),
        }
    }

    fn by_patient(&self) -> Option<Map<(&str, u64), ()>> {
        self.patient_index.map(Map::new)
    }

    /// Stores the entry with the next id and returns that id.
    pub fn append(&self, storage: &mut dyn Storage, mut entry: AuditEntry) -> StdResult<u64> {
        let id = self.next_id.may_load(storage)?.unwrap_or(1);
        entry.id = id;
        self.entries.save(storage, id, &entry)?;
        self.next_id.save(storage, &(id + 1))?;
        if let (Some(index), Some(patient)) = (self.by_patient(), entry.patient.as_deref()) {
            index.save(storage, (patient, id), &())?;
        }
        Ok(id)
    }

    /// Entries after `start_after`, oldest first.
    pub fn page(
        &self,
        storage: &dyn Storage,
        start_after: Option<u64>,
        limit: Option<u32>,
    ) -> StdResult<Vec<AuditEntry>> {
        self.entries
            .range(
                storage,
                start_after.map(Bound::exclusive),
                None,
                cosmwasm_std::Order::Ascending,
            )
            .take(page_size(limit))
            .map(|item| item.map(|(_, entry)| entry))
            .collect()
    }

    /// The entries about `patient` after the entry id `start_after`, oldest first; empty
    /// for a log without a patient index.
    pub fn page_by_patient(
        &self,
        storage: &dyn Storage,
        patient: &str,
        start_after: Option<u64>,
        limit: Option<u32>,
    ) -> StdResult<Vec<AuditEntry>> {
        let Some(index) = self.by_patient() else {
            return Ok(Vec::new());
        };
        index
            .prefix(patient)
            .keys(
                storage,
                start_after.map(Bound::exclusive),
                None,
                cosmwasm_std::Order::Ascending,
            )
            .take(page_size(limit))
            .map(|id| self.entries.load(storage, id?))
            .collect()
    }
}
