//! Finalisation: every request reaches a terminal state on both chains. Packets finish most
//! of them (ack, timeout); a sweep closes the rest once their expiry plus the policy's grace
//! has passed: a request nobody answered, a reply whose fate never came back, a request
//! whose reply was refused, a reply whose chunks stopped coming (its chunks are deleted).
//! Bounded per call, callable by anyone, audited per entry.

use crate::error::ContractError;
use crate::registry_client::Registry;
use crate::state::{
    drop_reply, Incoming, AUDIT, BREAK_GLASS_BY_DUE, CONFIG, INCOMING_BY_EXPIRY, OUTGOING,
    OUTGOING_BY_EXPIRY, PENDING_INCOMING, REPLY_OUT,
};
use cosmwasm_std::{DepsMut, Env, MessageInfo, Order, Response, StdResult, Storage, Timestamp};
use ehr_protocol::audit::{AuditAction, AuditEntry};
use ehr_protocol::exchange::{IncomingStatus, RequestStatus};
use ehr_protocol::ErrorCode;

pub fn sweep(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    limit: Option<u32>,
) -> Result<Response, ContractError> {
    let config = CONFIG.load(deps.storage)?;
    let policy = Registry::new(&config.registry, deps.querier)
        .config()?
        .policy;
    let budget = limit
        .unwrap_or(policy.sweep_max_items)
        .clamp(1, policy.sweep_max_items) as usize;
    // Entries whose expiry is at or before this second may be closed.
    let cutoff = env
        .block
        .time
        .seconds()
        .saturating_sub(policy.finalise_grace_secs)
        .saturating_sub(1);
    let outgoing = sweep_outgoing(deps.storage, env.block.time, cutoff, budget)?;
    let incoming = sweep_incoming(
        deps.storage,
        env.block.time,
        cutoff,
        budget.saturating_sub(outgoing.visited),
    )?;
    let cosign = sweep_cosign_missing(
        deps.storage,
        env.block.time,
        budget
            .saturating_sub(outgoing.visited)
            .saturating_sub(incoming.visited),
    )?;
    Ok(Response::new()
        .add_attribute("action", "sweep")
        .add_attribute("outcome", "accepted")
        .add_attribute("swept_by", info.sender)
        .add_attribute("expired_outgoing", outgoing.expired.to_string())
        .add_attribute("expired_incoming", incoming.expired.to_string())
        .add_attribute("cosign_missing", cosign.expired.to_string())
        .add_attribute(
            "more",
            (outgoing.more || incoming.more || cosign.more).to_string(),
        ))
}

/// How much one side's sweep did.
struct Swept {
    /// Index entries looked at and removed (closed, or already final).
    visited: usize,
    /// Requests moved to `expired`.
    expired: usize,
    /// Whether due entries are left for another call.
    more: bool,
}

/// The first `budget` index keys due by `cutoff` (ascending expiry), and whether more are due.
fn due<K>(
    keys: impl Iterator<Item = StdResult<(u64, K)>>,
    cutoff: u64,
    budget: usize,
) -> StdResult<(Vec<(u64, K)>, bool)> {
    let mut keys: Vec<(u64, K)> = keys
        .take_while(|k| {
            k.as_ref()
                .map_or(true, |(expires_at, _)| *expires_at <= cutoff)
        })
        .take(budget.saturating_add(1))
        .collect::<StdResult<_>>()?;
    let more = keys.len() > budget;
    keys.truncate(budget);
    Ok((keys, more))
}

fn sweep_outgoing(
    storage: &mut dyn Storage,
    now: Timestamp,
    cutoff: u64,
    budget: usize,
) -> StdResult<Swept> {
    let (keys, more) = due(
        OUTGOING_BY_EXPIRY.keys(storage, None, None, Order::Ascending),
        cutoff,
        budget,
    )?;
    let mut expired = 0;
    for (expires_at, id) in &keys {
        OUTGOING_BY_EXPIRY.remove(storage, (*expires_at, id));
        let Some(mut request) = OUTGOING.may_load(storage, id)? else {
            continue;
        };
        // A reply half received ends here: its chunks are deleted, never released.
        let reason = match (request.status, &request.reply) {
            (RequestStatus::Pending, _) => ErrorCode::Expired,
            (RequestStatus::Receiving, _) => {
                drop_reply(storage, id);
                ErrorCode::ChunkMissing
            }
            _ => continue,
        };
        request.status = RequestStatus::Expired;
        request.reason = Some(reason.clone());
        OUTGOING.save(storage, id, &request)?;
        AUDIT.append(
            storage,
            AuditEntry::new(now, AuditAction::RequestExpired)
                .rejected(reason)
                .agent(&request.requester)
                .purpose(request.purpose)
                .request(id)
                .partner(&request.partner_id),
        )?;
        expired += 1;
    }
    Ok(Swept {
        visited: keys.len(),
        expired,
        more,
    })
}

fn sweep_incoming(
    storage: &mut dyn Storage,
    now: Timestamp,
    cutoff: u64,
    budget: usize,
) -> StdResult<Swept> {
    let (keys, more) = due(
        INCOMING_BY_EXPIRY
            .keys(storage, None, None, Order::Ascending)
            .map(|k| k.map(|(expires_at, partner, id)| (expires_at, (partner, id)))),
        cutoff,
        budget,
    )?;
    let mut expired = 0;
    for (expires_at, (partner, id)) in &keys {
        let key = (partner.as_str(), id.as_str());
        INCOMING_BY_EXPIRY.remove(storage, (*expires_at, key.0, key.1));
        let Some(mut incoming) = Incoming::may_load(storage, key)? else {
            continue;
        };
        if !matches!(
            incoming.status,
            IncomingStatus::Pending | IncomingStatus::Answering | IncomingStatus::Answered
        ) {
            continue;
        }
        REPLY_OUT.remove(storage, key);
        incoming.status = IncomingStatus::Expired;
        incoming.reason = Some(ErrorCode::Expired);
        Incoming::update(storage, &incoming)?;
        PENDING_INCOMING.remove(storage, key);
        AUDIT.append(
            storage,
            AuditEntry::new(now, AuditAction::RequestExpired)
                .rejected(ErrorCode::Expired)
                .purpose(incoming.body.purpose)
                .request(id)
                .partner(partner)
                .packet(&incoming.channel_id, incoming.packet_sequence),
        )?;
        expired += 1;
    }
    Ok(Swept {
        visited: keys.len(),
        expired,
        more,
    })
}

/// Break-glass requests whose co-signature is past due and missing: one
/// `BreakGlassCosignMissing` entry each, once (the index entry goes with it).
fn sweep_cosign_missing(
    storage: &mut dyn Storage,
    now: Timestamp,
    budget: usize,
) -> StdResult<Swept> {
    let (keys, more) = due(
        BREAK_GLASS_BY_DUE.keys(storage, None, None, Order::Ascending),
        now.seconds(),
        budget,
    )?;
    let mut missing = 0;
    for (due_at, id) in &keys {
        BREAK_GLASS_BY_DUE.remove(storage, (*due_at, id));
        let Some(request) = OUTGOING.may_load(storage, id)? else {
            continue;
        };
        if request.cosigned_by.is_some() {
            continue;
        }
        let mut entry = AuditEntry::new(now, AuditAction::BreakGlassCosignMissing)
            .rejected(ErrorCode::BreakGlassExpired)
            .agent(&request.requester)
            .clinician(&request.clinician_id)
            .purpose(request.purpose)
            .request(id)
            .partner(&request.partner_id);
        if let Some(reason) = request.break_glass {
            entry = entry.subject(reason.as_str());
        }
        AUDIT.append(storage, entry)?;
        missing += 1;
    }
    Ok(Swept {
        visited: keys.len(),
        expired: missing,
        more,
    })
}
