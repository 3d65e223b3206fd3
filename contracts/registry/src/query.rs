//! One function per `QueryMsg` variant, each answering the response type the protocol names.

use cosmwasm_std::{Deps, Order, StdResult};
use cw_storage_plus::Bound;
use ehr_protocol::limits::page_size;
use ehr_protocol::registry::{
    AuditLogResponse, Clinician, CliniciansResponse, ConfigResponse, Partner, PartnersResponse,
    Peer, PeersResponse,
};
use ehr_protocol::registry_layout::{clinician_key, connection_key};

use crate::state::{
    AUDIT, CLINICIANS, CONFIG, PARTNERS, PARTNER_BY_CHANNEL, PARTNER_BY_CONNECTION, PEERS,
};

pub fn config(deps: Deps) -> StdResult<ConfigResponse> {
    CONFIG.load(deps.storage)
}

/// `None` for an unregistered peer and for a string that is not a valid address.
pub fn peer(deps: Deps, address: String) -> StdResult<Option<Peer>> {
    match deps.api.addr_validate(&address) {
        Ok(addr) => PEERS.may_load(deps.storage, &addr),
        Err(_) => Ok(None),
    }
}

/// Peers in address order after `start_after` (compared as raw bytes, so any string works
/// as a cursor, valid address or not).
pub fn peers(
    deps: Deps,
    start_after: Option<String>,
    limit: Option<u32>,
) -> StdResult<PeersResponse> {
    let start = start_after.map(|s| Bound::ExclusiveRaw(s.into_bytes()));
    let peers = PEERS
        .range(deps.storage, start, None, Order::Ascending)
        .take(page_size(limit))
        .map(|item| item.map(|(_, peer)| peer))
        .collect::<StdResult<_>>()?;
    Ok(PeersResponse { peers })
}

pub fn clinician(deps: Deps, clinician_id: String) -> StdResult<Option<Clinician>> {
    match clinician_key(&clinician_id) {
        Some(key) => CLINICIANS.may_load(deps.storage, key),
        None => Ok(None),
    }
}

pub fn clinicians(
    deps: Deps,
    start_after: Option<String>,
    limit: Option<u32>,
) -> StdResult<CliniciansResponse> {
    let start = start_after.as_deref().map(Bound::exclusive);
    let clinicians = CLINICIANS
        .range(deps.storage, start, None, Order::Ascending)
        .take(page_size(limit))
        .map(|item| item.map(|(_, clinician)| clinician))
        .collect::<StdResult<_>>()?;
    Ok(CliniciansResponse { clinicians })
}

pub fn partner(deps: Deps, partner_id: String) -> StdResult<Option<Partner>> {
    PARTNERS.may_load(deps.storage, &partner_id)
}

pub fn partners(
    deps: Deps,
    start_after: Option<String>,
    limit: Option<u32>,
) -> StdResult<PartnersResponse> {
    let start = start_after.as_deref().map(Bound::exclusive);
    let partners = PARTNERS
        .range(deps.storage, start, None, Order::Ascending)
        .take(page_size(limit))
        .map(|item| item.map(|(_, partner)| partner))
        .collect::<StdResult<_>>()?;
    Ok(PartnersResponse { partners })
}

/// The partner registered for this connection and counterparty port, if any.
pub fn partner_by_connection(
    deps: Deps,
    connection_id: String,
    counterparty_port: String,
) -> StdResult<Option<Partner>> {
    let Some(key) = connection_key(&connection_id, &counterparty_port) else {
        return Ok(None);
    };
    match PARTNER_BY_CONNECTION.may_load(deps.storage, key)? {
        Some(partner_id) => PARTNERS.may_load(deps.storage, &partner_id),
        None => Ok(None),
    }
}

/// The partner this channel is bound to, if any.
pub fn partner_by_channel(deps: Deps, channel_id: String) -> StdResult<Option<Partner>> {
    match PARTNER_BY_CHANNEL.may_load(deps.storage, &channel_id)? {
        Some(partner_id) => PARTNERS.may_load(deps.storage, &partner_id),
        None => Ok(None),
    }
}

pub fn audit_log(
    deps: Deps,
    start_after: Option<u64>,
    limit: Option<u32>,
) -> StdResult<AuditLogResponse> {
    Ok(AuditLogResponse {
        entries: AUDIT.page(deps.storage, start_after, limit)?,
    })
}
