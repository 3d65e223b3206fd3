//! Consent on the custodian's chain (issue 12): the privacy office records and revokes a
//! patient's directives; a reply that declares what it releases (`Disclosure`) is decided
//! against them with `ehr_protocol::consent::evaluate`, the one definition, at `SubmitReply`
//! and again at every `SubmitReplyChunks`.
//!
//! The chain cannot see inside a sealed reply: it enforces consent on what the custodian's
//! own reply service declares it releases. A refusal never reaches the requesting chain in
//! clear: the reply service answers with a sealed `Declined { ConsentDenied }`.

use crate::error::ContractError;
use crate::execute::{pipeline, require_role};
use crate::state::{KeptDisclosure, AUDIT, CONSENTS, RECORD_META};
use cosmwasm_std::{DepsMut, Env, MessageInfo, Order, Response, StdResult, Storage};
use ehr_protocol::audit::{AuditAction, AuditEntry};
use ehr_protocol::consent::{
    evaluate, ConsentDecision, ConsentDirective, ConsentDirectiveInput, ConsentOutcome,
    ConsentQuestion, DirectiveStatus, RecordCategory, MAX_DIRECTIVES_PER_PATIENT,
};
use ehr_protocol::exchange::{Disclosure, IncomingRequest};
use ehr_protocol::registry::{Policy, Role};
use ehr_protocol::{validate, ErrorCode};

use crate::rejection::Step;

/// Every directive kept for `patient` (at most `MAX_DIRECTIVES_PER_PATIENT`), by id.
pub fn directives(storage: &dyn Storage, patient: &str) -> StdResult<Vec<ConsentDirective>> {
    CONSENTS
        .prefix(patient)
        .range(storage, None, None, Order::Ascending)
        .map(|item| item.map(|(_, directive)| directive))
        .collect()
}

/// A consent decision on a release, and the code it is refused with, if it is.
pub struct Decision {
    pub outcome: ConsentOutcome,
    pub refusal: Option<ErrorCode>,
}

/// Decides a release of `categories` of `patient`'s records for `incoming`. `break_glass`:
/// the request's break-glass time box is open. A release that only a break-glass override
/// would permit, asked after the time box ended, is refused as `BreakGlassExpired`.
pub fn decide(
    storage: &dyn Storage,
    default: ConsentDecision,
    patient: &str,
    categories: &[RecordCategory],
    incoming: &IncomingRequest,
    break_glass: bool,
    now: u64,
) -> Result<Decision, ErrorCode> {
    let directives = directives(storage, patient).map_err(|_| ErrorCode::Internal)?;
    let question = ConsentQuestion {
        partner: &incoming.partner_id,
        purpose: incoming.body.purpose,
        categories,
        break_glass,
        now,
    };
    let outcome = evaluate(&directives, default, &question);
    let refusal = if outcome.permits() {
        None
    } else if incoming.break_glass.is_some()
        && !break_glass
        && evaluate(
            &directives,
            default,
            &ConsentQuestion {
                break_glass: true,
                ..question
            },
        )
        .permits()
    {
        Some(ErrorCode::BreakGlassExpired)
    } else {
        Some(ErrorCode::ConsentDenied)
    };
    Ok(Decision { outcome, refusal })
}

/// Whether `incoming`'s break-glass time box is open at `now`.
pub fn break_glass_open(incoming: &IncomingRequest, now: u64) -> bool {
    incoming.break_glass.is_some_and(|g| now < g.window_ends)
}

/// The format of a declared disclosure, before anything is read: a pseudonym, at most the
/// policy's records per patient, valid ids without duplicates.
pub fn check_disclosure_format(policy: &Policy, disclosure: &Disclosure) -> Result<(), ErrorCode> {
    validate::patient_token(&disclosure.patient)?;
    if disclosure.record_ids.len() > policy.max_records_per_patient as usize {
        return Err(ErrorCode::InvalidFormat);
    }
    for (i, id) in disclosure.record_ids.iter().enumerate() {
        validate::id(id)?;
        if disclosure.record_ids[..i].contains(id) {
            return Err(ErrorCode::InvalidFormat);
        }
    }
    Ok(())
}

/// The categories a disclosure releases (sorted, deduplicated): every record must be a
/// complete record stored under the pseudonym.
pub fn disclosed_categories(
    storage: &dyn Storage,
    disclosure: &Disclosure,
) -> Result<Vec<RecordCategory>, ErrorCode> {
    let mut categories = Vec::new();
    for id in &disclosure.record_ids {
        let meta = RECORD_META
            .may_load(storage, (&disclosure.patient, id))
            .map_err(|_| ErrorCode::Internal)?
            .filter(|meta| meta.complete())
            .ok_or(ErrorCode::InvalidFormat)?;
        categories.push(meta.category);
    }
    categories.sort();
    categories.dedup();
    Ok(categories)
}

/// The audit entry of a consent decision about a reply to `incoming` (refused when
/// `decision.refusal` is set).
pub fn decision_entry(
    env: &Env,
    agent: &cosmwasm_std::Addr,
    kept: &KeptDisclosure,
    incoming: &IncomingRequest,
    decision: &Decision,
) -> AuditEntry {
    let mut entry = AuditEntry::new(env.block.time, AuditAction::ConsentDecision)
        .agent(agent)
        .role(Role::Reply)
        .clinician(&incoming.body.clinician_id)
        .purpose(incoming.body.purpose)
        .request(&incoming.body.request_id)
        .partner(&incoming.partner_id)
        .patient(&kept.patient);
    if let Some(directive) = decision.outcome.directive_id() {
        entry = entry.directive(directive);
    }
    if let ConsentOutcome::OverriddenByBreakGlass { .. } = decision.outcome {
        entry = entry.subject("break_glass_override");
    }
    match &decision.refusal {
        Some(code) => entry.rejected(code.clone()),
        None => entry,
    }
}

// ------------------------------------------------------------ RecordConsent

/// The privacy office records a directive: validated, new for the patient, within the cap.
pub fn record_consent(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    directive: ConsentDirectiveInput,
) -> Result<Response, ContractError> {
    pipeline(
        deps,
        &env,
        &info,
        Step {
            action: AuditAction::ConsentRecorded,
            handler: "record_consent",
            request_id: None,
        },
        |deps, _config, admitted| {
            directive.validate()?;
            require_role(admitted, Role::Privacy)?;
            let key = (directive.patient.as_str(), directive.directive_id.as_str());
            if CONSENTS.has(deps.storage, key) {
                return Err(ErrorCode::Replay);
            }
            let kept = CONSENTS
                .prefix(&directive.patient)
                .keys_raw(deps.storage, None, None, Order::Ascending)
                .take(MAX_DIRECTIVES_PER_PATIENT as usize)
                .count();
            if kept >= MAX_DIRECTIVES_PER_PATIENT as usize {
                return Err(ErrorCode::CapReached);
            }
            Ok(())
        },
        |deps, _config, _admitted, ()| {
            let key = (directive.patient.as_str(), directive.directive_id.as_str());
            let stored = ConsentDirective {
                input: directive.clone(),
                recorded_by: info.sender.clone(),
                recorded_at: env.block.time.seconds(),
                status: DirectiveStatus::Active,
            };
            CONSENTS.save(deps.storage, key, &stored)?;
            AUDIT.append(
                deps.storage,
                AuditEntry::new(env.block.time, AuditAction::ConsentRecorded)
                    .agent(&info.sender)
                    .role(Role::Privacy)
                    .patient(&directive.patient)
                    .directive(&directive.directive_id),
            )?;
            Ok(Response::new()
                .add_attribute("action", "record_consent")
                .add_attribute("outcome", "accepted")
                .add_attribute("directive_id", &directive.directive_id))
        },
    )
}

// ------------------------------------------------------------ RevokeConsent

/// The privacy office revokes a directive: kept, marked revoked at block time.
pub fn revoke_consent(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    patient: String,
    directive_id: String,
) -> Result<Response, ContractError> {
    pipeline(
        deps,
        &env,
        &info,
        Step {
            action: AuditAction::ConsentRevoked,
            handler: "revoke_consent",
            request_id: None,
        },
        |deps, _config, admitted| {
            validate::patient_token(&patient)?;
            validate::id(&directive_id)?;
            require_role(admitted, Role::Privacy)?;
            let directive = CONSENTS
                .may_load(deps.storage, (&patient, &directive_id))
                .map_err(|_| ErrorCode::Internal)?
                .ok_or(ErrorCode::UnknownRequest)?;
            if directive.status != DirectiveStatus::Active {
                return Err(ErrorCode::Replay);
            }
            Ok(directive)
        },
        |deps, _config, _admitted, mut directive| {
            directive.status = DirectiveStatus::Revoked {
                at: env.block.time.seconds(),
            };
            CONSENTS.save(deps.storage, (&patient, &directive_id), &directive)?;
            AUDIT.append(
                deps.storage,
                AuditEntry::new(env.block.time, AuditAction::ConsentRevoked)
                    .agent(&info.sender)
                    .role(Role::Privacy)
                    .patient(&patient)
                    .directive(&directive_id),
            )?;
            Ok(Response::new()
                .add_attribute("action", "revoke_consent")
                .add_attribute("outcome", "accepted")
                .add_attribute("directive_id", &directive_id))
        },
    )
}
