//! One function per `ExecuteMsg` variant. Authorisation is checked in `contract::execute`
//! before any of these runs; each one validates its own input, writes state, appends one
//! audit entry per change and answers with `("action", "<handler>")` first.

use cosmwasm_std::{Addr, Binary, DepsMut, Env, MessageInfo, Response, Storage};
use ehr_protocol::audit::{AuditAction, AuditEntry};
use ehr_protocol::error_code::ErrorCode;
use ehr_protocol::limits::{
    MAX_CHUNK_BYTES, MAX_CLOCK_SKEW_SECS, MAX_HISTORY_CHUNKS, MAX_PORT_LEN, MAX_SWEEP_ITEMS,
    MIN_BUCKET,
};
use ehr_protocol::registry::{
    Clinician, ClinicianInput, ClinicianStatus, Partner, PartnerInput, Peer, PeerInput, PeerStatus,
    Policy, Role, MAX_RETIRED_CHANNELS,
};
use ehr_protocol::validate;

use crate::error::ContractError;
use crate::state::{
    Config, AUDIT, CLINICIANS, CONFIG, PARTNERS, PARTNER_BY_CHANNEL, PARTNER_BY_CONNECTION, PEERS,
};

/// Longest window, lifetime or timeout the policy may set: one year. Far above any sensible
/// value, and low enough that `block time + n seconds` can never overflow in the exchange.
pub const MAX_POLICY_SECS: u64 = 365 * 24 * 60 * 60;
/// Prefix of every wasmd contract port.
pub const WASM_PORT_PREFIX: &str = "wasm.";

/// Maps a protocol format check onto `InvalidFormat { field }`.
pub(crate) fn check(result: Result<(), ErrorCode>, field: &str) -> Result<(), ContractError> {
    result.map_err(|_| ContractError::invalid(field))
}

fn ensure(ok: bool, field: &str) -> Result<(), ContractError> {
    if ok {
        Ok(())
    } else {
        Err(ContractError::invalid(field))
    }
}

/// Counts, windows and timeouts above zero; sizes within the protocol ceiling.
pub(crate) fn validate_policy(policy: &Policy) -> Result<(), ContractError> {
    ensure(policy.rate_limit_count > 0, "policy.rate_limit_count")?;
    ensure(
        (1..=MAX_POLICY_SECS).contains(&policy.rate_limit_window_secs),
        "policy.rate_limit_window_secs",
    )?;
    ensure(
        policy.strikes_before_quarantine > 0,
        "policy.strikes_before_quarantine",
    )?;
    ensure(
        (1..=MAX_POLICY_SECS).contains(&policy.max_request_ttl_secs),
        "policy.max_request_ttl_secs",
    )?;
    ensure(
        (1..=MAX_POLICY_SECS).contains(&policy.packet_timeout_secs),
        "policy.packet_timeout_secs",
    )?;
    ensure(
        policy.max_chunk_bytes.is_power_of_two()
            && policy.max_chunk_bytes >= MIN_BUCKET as u64
            && policy.max_chunk_bytes <= MAX_CHUNK_BYTES as u64,
        "policy.max_chunk_bytes",
    )?;
    ensure(
        policy.max_history_chunks.is_power_of_two()
            && policy.max_history_chunks <= MAX_HISTORY_CHUNKS,
        "policy.max_history_chunks",
    )?;
    ensure(
        policy.max_clock_skew_secs <= MAX_CLOCK_SKEW_SECS,
        "policy.max_clock_skew_secs",
    )?;
    ensure(
        policy.min_request_ttl_secs <= policy.max_request_ttl_secs,
        "policy.min_request_ttl_secs",
    )?;
    ensure(
        policy.min_remaining_lifetime_secs <= policy.max_request_ttl_secs,
        "policy.min_remaining_lifetime_secs",
    )?;
    ensure(
        policy.incoming_per_partner_count > 0,
        "policy.incoming_per_partner_count",
    )?;
    ensure(
        policy.incoming_per_remote_requester_count > 0,
        "policy.incoming_per_remote_requester_count",
    )?;
    ensure(
        (1..=MAX_POLICY_SECS).contains(&policy.incoming_window_secs),
        "policy.incoming_window_secs",
    )?;
    ensure(
        policy.max_records_per_patient > 0,
        "policy.max_records_per_patient",
    )?;
    ensure(
        (1..=MAX_SWEEP_ITEMS).contains(&policy.sweep_max_items),
        "policy.sweep_max_items",
    )?;
    ensure(
        policy.finalise_grace_secs <= MAX_POLICY_SECS,
        "policy.finalise_grace_secs",
    )?;
    ensure(
        policy.break_glass_window_secs <= MAX_POLICY_SECS,
        "policy.break_glass_window_secs",
    )?;
    ensure(
        policy.break_glass_cosign_secs <= MAX_POLICY_SECS,
        "policy.break_glass_cosign_secs",
    )?;
    Ok(())
}

fn validate_address(deps: &DepsMut, address: &str, field: &str) -> Result<Addr, ContractError> {
    deps.api
        .addr_validate(address)
        .map_err(|_| ContractError::invalid(field))
}

fn validate_keys(signing_key: &Binary, encryption_key: &Binary) -> Result<(), ContractError> {
    check(validate::secp256k1_pubkey(signing_key), "signing_key")?;
    check(validate::x25519_key(encryption_key), "encryption_key")
}

/// A registered peer, or `UnknownPeer` (also for a malformed address: it cannot be one).
fn load_peer(deps: &DepsMut, address: &str) -> Result<(Addr, Peer), ContractError> {
    let addr = deps
        .api
        .addr_validate(address)
        .map_err(|_| ContractError::UnknownPeer)?;
    let peer = PEERS
        .may_load(deps.storage, &addr)?
        .ok_or(ContractError::UnknownPeer)?;
    Ok((addr, peer))
}

fn audit(storage: &mut dyn Storage, entry: AuditEntry) -> Result<u64, ContractError> {
    Ok(AUDIT.append(storage, entry)?)
}

pub fn update_admin(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    mut config: Config,
    admin: String,
) -> Result<Response, ContractError> {
    let admin_addr = validate_address(&deps, &admin, "admin")?;
    config.admin = admin_addr.clone();
    CONFIG.save(deps.storage, &config)?;
    audit(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::AdminChanged)
            .agent(&info.sender)
            .subject(admin_addr.as_str()),
    )?;
    Ok(Response::new()
        .add_attribute("action", "update_admin")
        .add_attribute("admin", admin_addr))
}

/// Audited as `AdminChanged`: naming the exchange hands out privileged rights (strikes that
/// quarantine peers, channel binding), which is a change of who administers what, not a
/// change of limits.
pub fn set_exchange(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    mut config: Config,
    exchange: String,
) -> Result<Response, ContractError> {
    let exchange_addr = validate_address(&deps, &exchange, "exchange")?;
    config.exchange = Some(exchange_addr.clone());
    CONFIG.save(deps.storage, &config)?;
    audit(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::AdminChanged)
            .agent(&info.sender)
            .subject(exchange_addr.as_str()),
    )?;
    Ok(Response::new()
        .add_attribute("action", "set_exchange")
        .add_attribute("exchange", exchange_addr))
}

pub fn update_policy(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    mut config: Config,
    policy: Policy,
) -> Result<Response, ContractError> {
    validate_policy(&policy)?;
    config.policy = policy;
    CONFIG.save(deps.storage, &config)?;
    audit(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::PolicyChanged).agent(&info.sender),
    )?;
    Ok(Response::new().add_attribute("action", "update_policy"))
}

/// Registers or re-registers a peer, roles sorted and unique. A new peer is active with zero
/// strikes; re-registering keeps the strikes and a quarantine (only `ReleasePeer` releases).
pub fn register_peer(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    input: PeerInput,
) -> Result<Response, ContractError> {
    let address = validate_address(&deps, &input.address, "address")?;
    validate_keys(&input.signing_key, &input.encryption_key)?;
    check(validate::name(&input.device_id), "device_id")?;
    let mut roles: Vec<Role> = input.roles;
    roles.sort();
    roles.dedup();
    ensure(!roles.is_empty(), "roles")?;
    if let (Some(from), Some(until)) = (input.valid_from, input.valid_until) {
        ensure(from < until, "valid_until")?;
    }

    // Re-registering (new keys, roles or window) never releases a quarantine and never
    // forgets strikes: only `ReleasePeer` does, with its own audit entry.
    let existing = PEERS.may_load(deps.storage, &address)?;
    let replaced = existing.is_some();
    let (status, strikes) = match existing {
        Some(old) if old.status == PeerStatus::Quarantined => {
            (PeerStatus::Quarantined, old.strikes)
        }
        Some(old) => (PeerStatus::Active, old.strikes),
        None => (PeerStatus::Active, 0),
    };
    let peer = Peer {
        address: address.clone(),
        signing_key: input.signing_key,
        encryption_key: input.encryption_key,
        device_id: input.device_id,
        roles,
        status,
        valid_from: input.valid_from,
        valid_until: input.valid_until,
        strikes,
    };
    PEERS.save(deps.storage, &address, &peer)?;
    audit(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::PeerRegistered)
            .agent(&info.sender)
            .subject(address.as_str()),
    )?;
    let roles = peer
        .roles
        .iter()
        .map(Role::as_str)
        .collect::<Vec<_>>()
        .join(",");
    Ok(Response::new()
        .add_attribute("action", "register_peer")
        .add_attribute("peer", address)
        .add_attribute("roles", roles)
        .add_attribute("replaced", replaced.to_string()))
}

/// Replaces both keys at once; status and strikes are kept.
pub fn rotate_peer_keys(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    address: String,
    signing_key: Binary,
    encryption_key: Binary,
) -> Result<Response, ContractError> {
    validate_keys(&signing_key, &encryption_key)?;
    let (addr, mut peer) = load_peer(&deps, &address)?;
    peer.signing_key = signing_key;
    peer.encryption_key = encryption_key;
    PEERS.save(deps.storage, &addr, &peer)?;
    audit(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::PeerKeysRotated)
            .agent(&info.sender)
            .subject(addr.as_str()),
    )?;
    Ok(Response::new()
        .add_attribute("action", "rotate_peer_keys")
        .add_attribute("peer", addr))
}

pub fn revoke_peer(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    address: String,
) -> Result<Response, ContractError> {
    let (addr, mut peer) = load_peer(&deps, &address)?;
    peer.status = PeerStatus::Revoked;
    PEERS.save(deps.storage, &addr, &peer)?;
    audit(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::PeerRevoked)
            .agent(&info.sender)
            .subject(addr.as_str()),
    )?;
    Ok(Response::new()
        .add_attribute("action", "revoke_peer")
        .add_attribute("peer", addr))
}

/// Quarantined -> active with strikes cleared; any other status is `NotQuarantined`.
pub fn release_peer(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    address: String,
) -> Result<Response, ContractError> {
    let (addr, mut peer) = load_peer(&deps, &address)?;
    if peer.status != PeerStatus::Quarantined {
        return Err(ContractError::NotQuarantined);
    }
    peer.status = PeerStatus::Active;
    peer.strikes = 0;
    PEERS.save(deps.storage, &addr, &peer)?;
    audit(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::Release)
            .agent(&info.sender)
            .subject(addr.as_str()),
    )?;
    Ok(Response::new()
        .add_attribute("action", "release_peer")
        .add_attribute("peer", addr))
}

/// Counts a soft rejection; an active peer at the policy's limit is quarantined.
///
/// The audit entries name the struck peer as agent, not the sender: the sender is always
/// the exchange contract (checked before this runs), while the peer is the one that caused
/// the step, which is what `AuditEntry::agent` records.
pub fn record_strike(
    deps: DepsMut,
    env: Env,
    _info: MessageInfo,
    config: &Config,
    address: String,
    reason: ErrorCode,
) -> Result<Response, ContractError> {
    let (addr, mut peer) = load_peer(&deps, &address)?;
    peer.strikes = peer.strikes.saturating_add(1);
    let quarantined = peer.status == PeerStatus::Active
        && peer.strikes >= config.policy.strikes_before_quarantine;
    if quarantined {
        peer.status = PeerStatus::Quarantined;
    }
    PEERS.save(deps.storage, &addr, &peer)?;

    audit(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::Strike)
            .rejected(reason.clone())
            .agent(&addr),
    )?;
    if quarantined {
        // The quarantine itself succeeded; the reason is the strike that triggered it.
        let mut entry = AuditEntry::new(env.block.time, AuditAction::Quarantine).agent(&addr);
        entry.reason = Some(reason.clone());
        audit(deps.storage, entry)?;
    }
    Ok(Response::new()
        .add_attribute("action", "record_strike")
        .add_attribute("peer", addr)
        .add_attribute("reason", reason.name())
        .add_attribute("strikes", peer.strikes.to_string())
        .add_attribute("quarantined", quarantined.to_string()))
}

/// Registers a clinician, or replaces a registered one's key, purposes and validity (key
/// rotation; also revives a revoked clinician). No name is stored: the id is the hospital's.
pub fn register_clinician(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    input: ClinicianInput,
) -> Result<Response, ContractError> {
    check(validate::name(&input.clinician_id), "clinician_id")?;
    check(
        validate::secp256k1_pubkey(&input.signing_key),
        "signing_key",
    )?;
    ensure(
        !input.allowed_purposes.is_empty() && input.allowed_purposes.len() <= 8,
        "allowed_purposes",
    )?;
    if let (Some(from), Some(until)) = (input.valid_from, input.valid_until) {
        ensure(from < until, "valid_until")?;
    }
    let existed = CLINICIANS.has(deps.storage, &input.clinician_id);
    let clinician = Clinician::registered(input);
    CLINICIANS.save(deps.storage, &clinician.clinician_id, &clinician)?;
    audit(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::ClinicianChanged)
            .agent(&info.sender)
            .subject(clinician.clinician_id.as_str())
            .clinician(&clinician.clinician_id),
    )?;
    Ok(Response::new()
        .add_attribute("action", "register_clinician")
        .add_attribute("clinician_id", clinician.clinician_id)
        .add_attribute("created", (!existed).to_string()))
}

/// Revokes a clinician at once: new requests and replies to requests in flight are refused.
pub fn revoke_clinician(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    clinician_id: String,
) -> Result<Response, ContractError> {
    let mut clinician = CLINICIANS
        .may_load(deps.storage, &clinician_id)?
        .ok_or(ContractError::UnknownClinician)?;
    clinician.status = ClinicianStatus::Revoked;
    CLINICIANS.save(deps.storage, &clinician_id, &clinician)?;
    audit(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::ClinicianChanged)
            .agent(&info.sender)
            .subject(clinician_id.as_str())
            .clinician(&clinician_id),
    )?;
    Ok(Response::new()
        .add_attribute("action", "revoke_clinician")
        .add_attribute("clinician_id", clinician_id))
}

/// `wasm.` followed by a contract address: 1..=128 chars, the tail alphanumeric.
fn validate_port(port: &str) -> Result<(), ContractError> {
    let ok = port.len() <= MAX_PORT_LEN
        && port.strip_prefix(WASM_PORT_PREFIX).is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    ensure(ok, "counterparty_port")
}

/// Adds or updates a partner at once. Keeps the (connection, port) index unique and in step;
/// moving a partner to another connection or port unbinds its channel, because that channel
/// belongs to the old route.
pub fn upsert_partner(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    input: PartnerInput,
) -> Result<Response, ContractError> {
    check(validate::name(&input.partner_id), "partner_id")?;
    check(validate::name(&input.connection_id), "connection_id")?;
    validate_port(&input.counterparty_port)?;
    if let Some(key) = &input.encryption_key {
        check(validate::x25519_key(key), "encryption_key")?;
    }
    ensure(
        !input.accepted_purposes.is_empty() && input.accepted_purposes.len() <= 8,
        "accepted_purposes",
    )?;

    let route = (
        input.connection_id.as_str(),
        input.counterparty_port.as_str(),
    );
    if let Some(owner) = PARTNER_BY_CONNECTION.may_load(deps.storage, route)? {
        if owner != input.partner_id {
            return Err(ContractError::PartnerConflict {
                partner_id: owner,
                connection_id: input.connection_id,
                counterparty_port: input.counterparty_port,
            });
        }
    }

    let existing = PARTNERS.may_load(deps.storage, &input.partner_id)?;
    let mut channel_id = None;
    let mut unbound = None;
    if let Some(old) = existing.as_ref() {
        let same_route = old.connection_id == input.connection_id
            && old.counterparty_port == input.counterparty_port;
        if same_route {
            channel_id = old.channel_id.clone();
        } else {
            PARTNER_BY_CONNECTION.remove(
                deps.storage,
                (old.connection_id.as_str(), old.counterparty_port.as_str()),
            );
            if let Some(old_channel) = &old.channel_id {
                PARTNER_BY_CHANNEL.remove(deps.storage, old_channel);
                unbound = Some(old_channel.clone());
            }
            // The old route is no longer trusted: its retired channels end too.
            for retired in &old.retired_channels {
                PARTNER_BY_CHANNEL.remove(deps.storage, retired);
            }
        }
    }
    let retired_channels = match (&existing, &unbound) {
        (Some(old), None) => old.retired_channels.clone(),
        _ => Vec::new(),
    };

    let partner = Partner {
        partner_id: input.partner_id,
        connection_id: input.connection_id,
        counterparty_port: input.counterparty_port,
        encryption_key: input.encryption_key,
        status: input.status,
        channel_id,
        retired_channels,
        accepted_purposes: input.accepted_purposes,
    };
    PARTNERS.save(deps.storage, &partner.partner_id, &partner)?;
    PARTNER_BY_CONNECTION.save(
        deps.storage,
        (
            partner.connection_id.as_str(),
            partner.counterparty_port.as_str(),
        ),
        &partner.partner_id,
    )?;
    audit(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::PartnerChanged)
            .agent(&info.sender)
            .partner(&partner.partner_id),
    )?;
    if let Some(old_channel) = &unbound {
        audit(
            deps.storage,
            AuditEntry::new(env.block.time, AuditAction::ChannelClosed)
                .agent(&info.sender)
                .partner(&partner.partner_id)
                .channel(old_channel),
        )?;
    }

    let mut response = Response::new()
        .add_attribute("action", "upsert_partner")
        .add_attribute("partner_id", partner.partner_id)
        .add_attribute("connection_id", partner.connection_id)
        .add_attribute("counterparty_port", partner.counterparty_port)
        .add_attribute("created", existing.is_none().to_string());
    if let Some(old_channel) = unbound {
        response = response.add_attribute("unbound_channel_id", old_channel);
    }
    Ok(response)
}

/// Binds the channel a completed handshake opened. Binding the same channel again is a
/// no-op success; a partner holds one channel at a time and a channel one partner.
pub fn bind_channel(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    partner_id: String,
    channel_id: String,
) -> Result<Response, ContractError> {
    check(validate::name(&channel_id), "channel_id")?;
    let mut partner = PARTNERS
        .may_load(deps.storage, &partner_id)?
        .ok_or(ContractError::UnknownPartner)?;
    if let Some(bound) = &partner.channel_id {
        if *bound != channel_id {
            return Err(ContractError::ChannelAlreadyBound);
        }
    }
    if let Some(owner) = PARTNER_BY_CHANNEL.may_load(deps.storage, &channel_id)? {
        if owner != partner_id {
            return Err(ContractError::ChannelAlreadyBound);
        }
    }
    let already = partner.channel_id.is_some();
    if !already {
        partner.channel_id = Some(channel_id.clone());
        PARTNERS.save(deps.storage, &partner_id, &partner)?;
        PARTNER_BY_CHANNEL.save(deps.storage, &channel_id, &partner_id)?;
        audit(
            deps.storage,
            AuditEntry::new(env.block.time, AuditAction::ChannelOpened)
                .agent(&info.sender)
                .partner(&partner_id)
                .channel(&channel_id),
        )?;
    }
    Ok(Response::new()
        .add_attribute("action", "bind_channel")
        .add_attribute("partner_id", partner_id)
        .add_attribute("channel_id", channel_id)
        .add_attribute("already_bound", already.to_string()))
}

/// Forgets a channel closed by the counterparty. An unknown channel is a no-op success (the
/// exchange must be able to clean up without failing the relayer's transaction).
pub fn unbind_channel(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    channel_id: String,
) -> Result<Response, ContractError> {
    let owner = PARTNER_BY_CHANNEL.may_load(deps.storage, &channel_id)?;
    if let Some(partner_id) = &owner {
        PARTNER_BY_CHANNEL.remove(deps.storage, &channel_id);
        if let Some(mut partner) = PARTNERS.may_load(deps.storage, partner_id)? {
            if partner.channel_id.as_deref() == Some(channel_id.as_str()) {
                partner.channel_id = None;
            }
            partner.retired_channels.retain(|c| *c != channel_id);
            PARTNERS.save(deps.storage, partner_id, &partner)?;
        }
        audit(
            deps.storage,
            AuditEntry::new(env.block.time, AuditAction::ChannelClosed)
                .agent(&info.sender)
                .partner(partner_id)
                .channel(&channel_id),
        )?;
    }
    let mut response = Response::new()
        .add_attribute("action", "unbind_channel")
        .add_attribute("channel_id", channel_id)
        .add_attribute("unbound", owner.is_some().to_string());
    if let Some(partner_id) = owner {
        response = response.add_attribute("partner_id", partner_id);
    }
    Ok(response)
}

/// The admin unbinds a partner's current channel and retires it: in-flight replies and acks
/// on it still complete; the next completed handshake binds a new channel.
pub fn unbind_partner_channel(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    partner_id: String,
) -> Result<Response, ContractError> {
    let mut partner = PARTNERS
        .may_load(deps.storage, &partner_id)?
        .ok_or(ContractError::UnknownPartner)?;
    let channel_id = partner
        .channel_id
        .take()
        .ok_or(ContractError::NoChannelBound)?;
    partner.retired_channels.insert(0, channel_id.clone());
    for dropped in partner
        .retired_channels
        .split_off(MAX_RETIRED_CHANNELS.min(partner.retired_channels.len()))
    {
        PARTNER_BY_CHANNEL.remove(deps.storage, &dropped);
    }
    PARTNERS.save(deps.storage, &partner_id, &partner)?;
    audit(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::ChannelClosed)
            .agent(&info.sender)
            .partner(&partner_id)
            .channel(&channel_id),
    )?;
    Ok(Response::new()
        .add_attribute("action", "unbind_partner_channel")
        .add_attribute("partner_id", partner_id)
        .add_attribute("retired_channel_id", channel_id))
}
