//! Who gets in, and what happens to a registered peer that breaks a rule.
//!
//! An outsider's transaction succeeds with nothing stored but one counter, and an event that
//! names the sender and `reason=NotRegistered` (the trace an auditor sees). A registered
//! peer that breaks a rule is *soft-rejected*: the transaction succeeds so the attempt can be
//! recorded (a failing transaction would revert the audit entry and the strike too), nothing
//! is stored or forwarded, a reason code is emitted and audited, and a strike is counted in
//! the registry, which quarantines the peer at the policy's limit.

use crate::error::ContractError;
use crate::registry_client::{record_strike_msg, Registry};
use crate::state::{AUDIT, OUTSIDERS};
use cosmwasm_std::{Addr, DepsMut, Env, Response, StdResult, Storage};
use ehr_protocol::audit::{AuditAction, AuditEntry};
use ehr_protocol::registry::{ConfigResponse, Peer, PeerStatus};
use ehr_protocol::ErrorCode;

/// A registered peer that passed the status gate, with the registry's current config.
pub struct Admitted {
    pub peer: Peer,
    pub registry: ConfigResponse,
}

/// Who sent a transaction.
pub enum Admission {
    /// A registered peer in good standing, with the registry's config.
    Admitted(Admitted),
    /// A registered peer that is quarantined, revoked or out of its validity: soft-reject
    /// with this code.
    Refused(Peer, ErrorCode),
    /// Not a registered peer at all.
    Outsider,
}

/// Loads the sender's registration.
pub fn admit(registry: &Registry, sender: &Addr, env: &Env) -> Result<Admission, ContractError> {
    let Some(peer) = registry.peer(sender)? else {
        return Ok(Admission::Outsider);
    };
    let refusal = match peer.status {
        PeerStatus::Quarantined => Some(ErrorCode::PeerQuarantined),
        PeerStatus::Revoked => Some(ErrorCode::KeyRevoked),
        PeerStatus::Active if !peer.is_valid_at(env.block.time) => Some(ErrorCode::NotAuthorized),
        PeerStatus::Active => None,
    };
    Ok(match refusal {
        Some(code) => Admission::Refused(peer, code),
        None => Admission::Admitted(Admitted {
            peer,
            registry: registry.config()?,
        }),
    })
}

/// An outsider's attempt: nothing is stored but one counter, and the transaction's event
/// says who tried what. No audit entry, no strike: an outsider could otherwise fill our
/// storage with entries, one new address at a time.
pub fn refuse_outsider(
    storage: &mut dyn Storage,
    env: &Env,
    sender: &Addr,
    step: &Step,
) -> StdResult<Response> {
    let mut tally = OUTSIDERS.may_load(storage)?.unwrap_or_default();
    tally.attempts = tally.attempts.saturating_add(1);
    tally.last_at = Some(env.block.time.seconds());
    OUTSIDERS.save(storage, &tally)?;
    let mut response = Response::new()
        .add_attribute("action", step.handler)
        .add_attribute("outcome", "rejected")
        .add_attribute("reason", ErrorCode::NotRegistered.to_string())
        .add_attribute("sender", sender)
        .add_attribute("strike", "false");
    if let Some(id) = step.request_id {
        response = response.add_attribute("request_id", id);
    }
    Ok(response)
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
    if !code.counts_as_strike() {
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
