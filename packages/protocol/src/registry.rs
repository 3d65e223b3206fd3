//! Messages and types of the `registry` contract: peers, clinicians, partners
//! (the paper's lookup table) and policy.

use crate::audit::AuditEntry;
use crate::consent::ConsentDecision;
use crate::error_code::ErrorCode;
use crate::exchange::PurposeOfUse;
use cosmwasm_schema::{cw_serde, QueryResponses};
use cosmwasm_std::{Addr, Binary, Timestamp};

/// What a peer may do.
#[cw_serde]
#[derive(Copy, Eq, PartialOrd, Ord)]
pub enum Role {
    Store,
    Request,
    Reply,
    Admin,
    /// The custodian's privacy office: records and revokes patients' consent directives.
    Privacy,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Store => "store",
            Role::Request => "request",
            Role::Reply => "reply",
            Role::Admin => "admin",
            Role::Privacy => "privacy",
        }
    }
}

#[cw_serde]
#[derive(Copy, Eq)]
pub enum PeerStatus {
    Active,
    Quarantined,
    Revoked,
}

/// Tunable limits. The paper's defaults: one request per peer per minute.
#[cw_serde]
#[schemaifier(mute_warnings)]
pub struct Policy {
    /// Requests a peer may submit per window.
    pub rate_limit_count: u32,
    /// Rate-limit window in seconds.
    pub rate_limit_window_secs: u64,
    /// Soft rejections a peer may collect before it is quarantined.
    pub strikes_before_quarantine: u32,
    /// Longest lifetime a request may ask for (expires_at - issued_at), seconds.
    pub max_request_ttl_secs: u64,
    /// IBC packet timeout for requests and replies, seconds (capped by the request's expiry).
    pub packet_timeout_secs: u64,
    /// Largest chunk of a sealed record or reply, bytes: a power of two, at most the
    /// protocol's `MAX_CHUNK_BYTES` (128 KiB). A history larger than one chunk is several
    /// chunks of this size. (Read from a first-release policy's `max_ciphertext_bytes`.)
    #[serde(alias = "max_ciphertext_bytes")]
    pub max_chunk_bytes: u64,
    /// Most chunks one stored record or one reply may have (a power of two, at most
    /// `MAX_HISTORY_CHUNKS`): with 128 KiB chunks the default 128 is 16 MiB sealed.
    #[serde(default = "defaults::max_history_chunks")]
    pub max_history_chunks: u32,
    /// How far a request's `issued_at` may lie ahead of block time, seconds.
    #[serde(default = "defaults::max_clock_skew_secs")]
    pub max_clock_skew_secs: u64,
    /// Shortest lifetime a request may ask for (expires_at - issued_at), seconds.
    #[serde(default = "defaults::min_request_ttl_secs")]
    pub min_request_ttl_secs: u64,
    /// A partner's request must still have this long to live when it arrives, seconds;
    /// shorter ones get an `Expired` error ack, so a partner cannot make our reply service
    /// answer requests that expire under it.
    #[serde(default = "defaults::min_remaining_lifetime_secs")]
    pub min_remaining_lifetime_secs: u64,
    /// Requests accepted from one partner per quota window.
    #[serde(default = "defaults::incoming_per_partner_count")]
    pub incoming_per_partner_count: u32,
    /// Requests accepted from one remote requester per quota window.
    #[serde(default = "defaults::incoming_per_remote_requester_count")]
    pub incoming_per_remote_requester_count: u32,
    /// Window of both incoming quotas, seconds.
    #[serde(default = "defaults::incoming_window_secs")]
    pub incoming_window_secs: u64,
    /// Records that may be stored under one patient token.
    #[serde(default = "defaults::max_records_per_patient")]
    pub max_records_per_patient: u32,
    /// Most requests one `Sweep` finalises.
    #[serde(default = "defaults::sweep_max_items")]
    pub sweep_max_items: u32,
    /// How long after its expiry a request may still be finalised by its own packet
    /// (ack, timeout) before a sweep may close it, seconds.
    #[serde(default = "defaults::finalise_grace_secs")]
    pub finalise_grace_secs: u64,
    /// How long a break-glass request this chain receives may override a deny the patient
    /// allowed to be overridden, from its receipt, seconds; 0: this chain accepts no
    /// break-glass request.
    #[serde(default = "defaults::break_glass_window_secs")]
    pub break_glass_window_secs: u64,
    /// How long a second clinician has to co-sign a break-glass request this chain sends,
    /// seconds; 0: no co-signature asked.
    #[serde(default)]
    pub break_glass_cosign_secs: u64,
    /// What a release is decided as when none of the patient's directives speaks to it.
    #[serde(default = "defaults::consent_default")]
    pub consent_default: ConsentDecision,
}

/// Defaults of the policy fields added after the first release; a stored policy without
/// them reads as these.
mod defaults {
    pub fn max_clock_skew_secs() -> u64 {
        30
    }
    pub fn min_request_ttl_secs() -> u64 {
        30
    }
    pub fn min_remaining_lifetime_secs() -> u64 {
        15
    }
    pub fn incoming_per_partner_count() -> u32 {
        600
    }
    pub fn incoming_per_remote_requester_count() -> u32 {
        60
    }
    pub fn incoming_window_secs() -> u64 {
        60
    }
    pub fn max_records_per_patient() -> u32 {
        256
    }
    pub fn sweep_max_items() -> u32 {
        50
    }
    pub fn finalise_grace_secs() -> u64 {
        60
    }
    pub fn max_history_chunks() -> u32 {
        128
    }
    pub fn break_glass_window_secs() -> u64 {
        900
    }
    pub fn consent_default() -> super::ConsentDecision {
        super::ConsentDecision::Permit
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            rate_limit_count: 1,
            rate_limit_window_secs: 60,
            strikes_before_quarantine: 3,
            max_request_ttl_secs: 3600,
            packet_timeout_secs: 600,
            max_chunk_bytes: crate::limits::MAX_CHUNK_BYTES as u64,
            max_history_chunks: defaults::max_history_chunks(),
            max_clock_skew_secs: defaults::max_clock_skew_secs(),
            min_request_ttl_secs: defaults::min_request_ttl_secs(),
            min_remaining_lifetime_secs: defaults::min_remaining_lifetime_secs(),
            incoming_per_partner_count: defaults::incoming_per_partner_count(),
            incoming_per_remote_requester_count: defaults::incoming_per_remote_requester_count(),
            incoming_window_secs: defaults::incoming_window_secs(),
            max_records_per_patient: defaults::max_records_per_patient(),
            sweep_max_items: defaults::sweep_max_items(),
            finalise_grace_secs: defaults::finalise_grace_secs(),
            break_glass_window_secs: defaults::break_glass_window_secs(),
            break_glass_cosign_secs: 0,
            consent_default: defaults::consent_default(),
        }
    }
}

/// A peer as the admin registers it.
#[cw_serde]
pub struct PeerInput {
    pub address: String,
    /// Compressed secp256k1 key that signs stores, requests and replies.
    pub signing_key: Binary,
    /// X25519 key replies are encrypted to.
    pub encryption_key: Binary,
    /// The paper's MAC address: informational only, never an authentication factor.
    pub device_id: String,
    pub roles: Vec<Role>,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
}

#[cw_serde]
pub struct Peer {
    pub address: Addr,
    pub signing_key: Binary,
    pub encryption_key: Binary,
    pub device_id: String,
    pub roles: Vec<Role>,
    pub status: PeerStatus,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    /// Soft rejections since registration or the last release.
    pub strikes: u32,
}

impl Peer {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether `now` lies inside the peer's validity window.
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        self.valid_from.is_none_or(|from| now >= from)
            && self.valid_until.is_none_or(|until| now < until)
    }
}

#[cw_serde]
#[derive(Copy, Eq)]
pub enum ClinicianStatus {
    Active,
    Revoked,
}

/// A health worker who may request, as the admin registers them: an id (the hospital's
/// own staff identifier or a handle, never a name), the public half of a secp256k1 key
/// that only the clinician's peer tool holds, the purposes of use they may request for,
/// and a validity window. Requests are signed with that key over request-scoped bytes, so
/// nothing a query, event, packet or audit entry shows lets anyone else act as them.
#[cw_serde]
pub struct ClinicianInput {
    pub clinician_id: String,
    /// Compressed secp256k1 public key.
    pub signing_key: Binary,
    pub allowed_purposes: Vec<PurposeOfUse>,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    /// The credential allows break-glass (emergency) requests.
    #[serde(default)]
    pub break_glass: bool,
}

#[cw_serde]
pub struct Clinician {
    pub clinician_id: String,
    pub signing_key: Binary,
    pub allowed_purposes: Vec<PurposeOfUse>,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub status: ClinicianStatus,
    /// The credential allows break-glass (emergency) requests.
    #[serde(default)]
    pub break_glass: bool,
}

impl Clinician {
    /// A clinician as registered from `input`: active.
    pub fn registered(input: ClinicianInput) -> Self {
        Clinician {
            clinician_id: input.clinician_id,
            signing_key: input.signing_key,
            allowed_purposes: input.allowed_purposes,
            valid_from: input.valid_from,
            valid_until: input.valid_until,
            status: ClinicianStatus::Active,
            break_glass: input.break_glass,
        }
    }

    /// Whether the clinician may request for `purpose` at `now`: the code a refusal is
    /// reported with otherwise.
    pub fn may_request(&self, purpose: PurposeOfUse, now: Timestamp) -> Result<(), ErrorCode> {
        if self.status == ClinicianStatus::Revoked {
            return Err(ErrorCode::KeyRevoked);
        }
        let valid = self.valid_from.is_none_or(|from| now >= from)
            && self.valid_until.is_none_or(|until| now < until);
        if !valid || !self.allowed_purposes.contains(&purpose) {
            return Err(ErrorCode::NotAuthorized);
        }
        Ok(())
    }
}

#[cw_serde]
#[derive(Copy, Eq)]
pub enum PartnerStatus {
    Active,
    Suspended,
}

/// A partner network as the admin enters it in the lookup table.
#[cw_serde]
pub struct PartnerInput {
    /// The partner's network id (its chain id); also what requests name as destination.
    pub partner_id: String,
    /// Our IBC connection to the partner chain.
    pub connection_id: String,
    /// The partner exchange contract's port, `wasm.<address>`.
    pub counterparty_port: String,
    /// The partner's X25519 key for encrypted request demographics.
    pub encryption_key: Option<Binary>,
    pub status: PartnerStatus,
    /// Purposes of use we answer this partner's requests for (checked on receive: a request
    /// for another purpose gets a `NotAuthorized` error ack). Treatment and emergency
    /// treatment when not given.
    #[serde(default = "default_accepted_purposes")]
    pub accepted_purposes: Vec<PurposeOfUse>,
}

/// The purposes a partner entry accepts unless the admin says otherwise.
pub fn default_accepted_purposes() -> Vec<PurposeOfUse> {
    vec![PurposeOfUse::Treatment, PurposeOfUse::EmergencyTreatment]
}

#[cw_serde]
pub struct Partner {
    pub partner_id: String,
    pub connection_id: String,
    pub counterparty_port: String,
    pub encryption_key: Option<Binary>,
    pub status: PartnerStatus,
    /// Our channel end, bound by the exchange contract when the handshake completes.
    pub channel_id: Option<String>,
    /// Channels the admin unbound (newest first, at most `MAX_RETIRED_CHANNELS`): no new
    /// request travels on them, but replies and acks of requests already in flight on them
    /// still complete, so an unbind loses nothing.
    #[serde(default)]
    pub retired_channels: Vec<String>,
    /// Purposes of use we answer this partner's requests for.
    #[serde(default = "default_accepted_purposes")]
    pub accepted_purposes: Vec<PurposeOfUse>,
}

/// How many unbound channels a partner remembers for in-flight traffic.
pub const MAX_RETIRED_CHANNELS: usize = 4;

impl Partner {
    /// Whether `channel_id` is this partner's current channel or one it retired.
    pub fn carries(&self, channel_id: &str) -> bool {
        self.channel_id.as_deref() == Some(channel_id)
            || self.retired_channels.iter().any(|c| c == channel_id)
    }
}

#[cw_serde]
pub struct InstantiateMsg {
    /// Defaults to the instantiating account.
    pub admin: Option<String>,
    /// Our network id (the chain id), e.g. `hospital-a`.
    pub network_id: String,
    pub policy: Option<Policy>,
}

#[cw_serde]
pub enum ExecuteMsg {
    /// Admin: hand admin rights to another address (e.g. a multisig).
    UpdateAdmin { admin: String },
    /// Admin: the exchange contract allowed to record strikes and bind channels.
    SetExchange { exchange: String },
    /// Admin.
    UpdatePolicy { policy: Policy },
    /// Admin: register or re-register a peer. A new peer starts active with zero strikes;
    /// re-registering replaces keys, roles and window but keeps the strikes, and a quarantined
    /// peer stays quarantined (only `ReleasePeer` releases it). A revoked peer becomes active.
    RegisterPeer { peer: PeerInput },
    /// Admin: replace a peer's keys at once; anything signed with the old key fails.
    RotatePeerKeys {
        address: String,
        signing_key: Binary,
        encryption_key: Binary,
    },
    /// Admin: revoke a peer; it can no longer store, request, reply or retrieve.
    RevokePeer { address: String },
    /// Admin: release a quarantined peer and clear its strikes.
    ReleasePeer { address: String },
    /// Exchange only: count a soft rejection; quarantines the peer at the policy's limit.
    RecordStrike { address: String, reason: ErrorCode },
    /// Admin: register a clinician, or replace a registered one's key, purposes and
    /// validity (key rotation; also revives a revoked clinician). Audited.
    RegisterClinician { clinician: ClinicianInput },
    /// Admin: revoke a clinician at once, also for their requests already in flight.
    RevokeClinician { clinician_id: String },
    /// Admin: add or update a partner; takes effect at once, no redeploy.
    UpsertPartner { partner: PartnerInput },
    /// Exchange only: bind the channel a completed handshake opened to a partner.
    BindChannel {
        partner_id: String,
        channel_id: String,
    },
    /// Exchange only: forget a channel closed by the counterparty.
    UnbindChannel { channel_id: String },
    /// Admin: unbind a partner's channel (e.g. after a failed or crossing handshake). The
    /// channel is retired: requests already in flight on it still complete, new ones wait
    /// for a new handshake (`hermes create channel` from the lower network id), which binds
    /// the new channel. Audited.
    UnbindPartnerChannel { partner_id: String },
}

#[cw_serde]
#[derive(QueryResponses)]
pub enum QueryMsg {
    #[returns(ConfigResponse)]
    Config {},
    /// `None` when the address is not a registered peer.
    #[returns(Option<Peer>)]
    Peer { address: String },
    #[returns(PeersResponse)]
    Peers {
        start_after: Option<String>,
        limit: Option<u32>,
    },
    /// `None` when no clinician has that id.
    #[returns(Option<Clinician>)]
    Clinician { clinician_id: String },
    #[returns(CliniciansResponse)]
    Clinicians {
        start_after: Option<String>,
        limit: Option<u32>,
    },
    #[returns(Option<Partner>)]
    Partner { partner_id: String },
    #[returns(PartnersResponse)]
    Partners {
        start_after: Option<String>,
        limit: Option<u32>,
    },
    /// The partner registered for a connection and counterparty port (handshake check).
    #[returns(Option<Partner>)]
    PartnerByConnection {
        connection_id: String,
        counterparty_port: String,
    },
    /// The partner a channel is bound to (checked on every packet).
    #[returns(Option<Partner>)]
    PartnerByChannel { channel_id: String },
    /// Registry changes, newest last.
    #[returns(AuditLogResponse)]
    AuditLog {
        start_after: Option<u64>,
        limit: Option<u32>,
    },
}

/// The registry's settings, as stored (`registry_layout::CONFIG`) and as the `Config` query
/// answers them.
#[cw_serde]
pub struct ConfigResponse {
    /// The only address that may change the registry or release a quarantined peer.
    pub admin: Addr,
    /// The only contract that may record strikes and bind or unbind channels; unset until
    /// the admin configures it (then every exchange-only message is refused).
    pub exchange: Option<Addr>,
    pub network_id: String,
    pub policy: Policy,
}

#[cw_serde]
pub struct PeersResponse {
    pub peers: Vec<Peer>,
}

#[cw_serde]
pub struct CliniciansResponse {
    pub clinicians: Vec<Clinician>,
}

#[cw_serde]
pub struct PartnersResponse {
    pub partners: Vec<Partner>,
}

#[cw_serde]
pub struct AuditLogResponse {
    pub entries: Vec<AuditEntry>,
}
