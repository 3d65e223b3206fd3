//! Who gets in, and what happens to a registered peer that breaks a rule.
//!
//! An outsider gets a hard error (the transaction reverts, nothing is stored). A registered
//! peer that breaks a rule is *soft-rejected*: the transaction succeeds so the attempt can be
//! recorded (a failing transaction would revert the audit entry and the strike too), nothing
//! is stored or forwarded, a reason code is emitted and audited, and a strike is counted in
//! the registry, which quarantines the peer at the policy's limit.

use crate::error::ContractError;
use crate::registry_client::{record_strike_msg, Registry};
use crate::state::AUDIT;
use cosmwasm_std::{Addr, DepsMut, Env, Response, StdResult};
use ehr_protocol::audit::{AuditAction, AuditEntry};
use ehr_protocol::registry::{ConfigResponse, Peer, PeerStatus};
use ehr_protocol::ErrorCode;

/// A registered peer that passed the status gate, with the registry's current config.
pub struct Admitted {
    pub peer: Peer,
    pub registry: ConfigResponse,
}

/// Loads the sender's registration. Outsiders are a hard error; quarantined, revoked or
/// out-of-validity peers come back as a code to soft-reject with.
pub fn admit(
    registry: &Registry,
    sender: &Addr,
    env: &Env,
) -> Result<Result<Admitted, (Peer, ErrorCode)>, ContractError> {
    let peer = registry.peer(sender)?.ok_or(ContractError::NotRegistered)?;
    let refusal = match peer.status {
        PeerStatus::Quarantined => Some(ErrorCode::PeerQuarantined),
        PeerStatus::Revoked => Some(ErrorCode::KeyRevoked),
        PeerStatus::Active if !peer.is_valid_at(env.block.time) => Some(ErrorCode::NotAuthorized),
        PeerStatus::Active => None,
    };
    Ok(match refusal {
        Some(code) => Err((peer, code)),
        None => Ok(Admitted {
            peer,
            registry: registry.config()?,
        }),
    })
}

/// Which transaction a rejection belongs to: its audit action, handler name and request id.
pub struct Step<'a> {
    pub action: AuditAction,
    pub handler: &'static str,
    pub request_id: Option<&'a str>,
}

impl<'a> Step<'a> {
    /// A step about a request; a malformed id is left out of the audit entry and events.
    pub fn for_request(action: AuditAction, handler: &'static str, request_id: &'a str) -> Self {
        Step {
            action,
            handler,
            request_id: ehr_protocol::validate::id(request_id)
                .ok()
                .map(|_| request_id),
        }
    }
}

/// Strikes are for the peer's own misconduct only. Codes that describe its standing
/// (quarantined, revoked) or conditions it does not control (a request that expired, a race
/// lost to another reply service, a partner or request the admin or a sweep removed, our
/// own fault, a full record index) are audited without a strike: otherwise a partner could get our reply service
/// quarantined by sending requests that expire under it.
pub fn counts_as_strike(code: &ErrorCode) -> bool {
    !matches!(
        code,
        ErrorCode::PeerQuarantined
            | ErrorCode::KeyRevoked
            | ErrorCode::Expired
            | ErrorCode::AlreadyAnswered
            | ErrorCode::PartnerUnavailable
            | ErrorCode::UnknownPartner
            | ErrorCode::UnknownRequest
            | ErrorCode::CapReached
            | ErrorCode::Internal
    )
}

/// Records a soft rejection: audit entry, strike (and quarantine at the limit), event.
pub fn soft_reject(
    deps: DepsMut,
    env: &Env,
    registry_addr: &Addr,
    peer: &Peer,
    step: &Step,
    code: ErrorCode,
) -> StdResult<Response> {
    let mut entry = AuditEntry::new(env.block.time, step.action)
        .rejected(code.clone())
        .agent(&peer.address);
    if let Some(id) = step.request_id {
        entry = entry.request(id);
    }
    AUDIT.append(deps.storage, entry)?;

    let mut response = Response::new()
        .add_attribute("action", step.handler)
        .add_attribute("outcome", "rejected")
        .add_attribute("reason", code.to_string());
    if let Some(id) = step.request_id {
        response = response.add_attribute("request_id", id);
    }
    if !counts_as_strike(&code) {
        return Ok(response.add_attribute("strike", "false"));
    }

    let strikes = peer.strikes.saturating_add(1);
    let limit = Registry::new(registry_addr, deps.querier)
        .config()?
        .policy
        .strikes_before_quarantine;
    let quarantined = peer.status == PeerStatus::Active && strikes >= limit;
    AUDIT.append(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::Strike)
            .rejected(code.clone())
            .agent(&peer.address),
    )?;
    if quarantined {
        AUDIT.append(
            deps.storage,
            AuditEntry::new(env.block.time, AuditAction::Quarantine)
                .rejected(code.clone())
                .agent(&peer.address),
        )?;
    }
    Ok(response
        .add_attribute("strike", "true")
        .add_attribute("strikes", strikes.to_string())
        .add_attribute("quarantined", quarantined.to_string())
        .add_message(record_strike_msg(registry_addr, &peer.address, &code)?))
}
