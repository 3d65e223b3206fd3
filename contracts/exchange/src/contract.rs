//! Entry points: validate and dispatch only.

use crate::error::ContractError;
use crate::registry_client::Registry;
use crate::state::{Config, CONFIG};
use crate::{consent, execute, query, sweep};
use cosmwasm_schema::cw_serde;
#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{to_json_binary, Binary, Deps, DepsMut, Env, MessageInfo, Response, StdResult};
use ehr_protocol::exchange::{ExecuteMsg, InstantiateMsg, QueryMsg};
use ehr_protocol::upgrade::migrate_version;

/// Recorded with cw2 so that migrate refuses another contract's code or a downgrade.
pub const CONTRACT_NAME: &str = "crates.io:ehr-exchange";
pub const CONTRACT_VERSION: &str = env!("CARGO_PKG_VERSION");

#[cw_serde]
pub struct MigrateMsg {}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(
    deps: DepsMut,
    _env: Env,
    _info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, ContractError> {
    let registry = deps.api.addr_validate(&msg.registry)?;
    let network_id = Registry::new(&registry, deps.querier).config()?.network_id;
    CONFIG.save(
        deps.storage,
        &Config {
            registry: registry.clone(),
            network_id: network_id.clone(),
        },
    )?;
    cw2::set_contract_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    Ok(Response::new()
        .add_attribute("action", "instantiate")
        .add_attribute("registry", registry)
        .add_attribute("network_id", network_id))
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn execute(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> Result<Response, ContractError> {
    match msg {
        ExecuteMsg::StoreRecord(msg) => execute::store_record(deps, env, info, msg),
        ExecuteMsg::StoreChunks(msg) => execute::store_chunks(deps, env, info, msg),
        ExecuteMsg::SubmitRequest(msg) => execute::submit_request(deps, env, info, msg),
        ExecuteMsg::SubmitReply(msg) => execute::submit_reply(deps, env, info, msg),
        ExecuteMsg::SubmitReplyChunks(msg) => execute::submit_reply_chunks(deps, env, info, msg),
        ExecuteMsg::RetrieveReply { request_id } => {
            execute::retrieve_reply(deps, env, info, request_id)
        }
        ExecuteMsg::Sweep { limit } => sweep::sweep(deps, env, info, limit),
        ExecuteMsg::CosignBreakGlass(msg) => execute::cosign_break_glass(deps, env, info, msg),
        ExecuteMsg::RecordConsent { directive } => {
            consent::record_consent(deps, env, info, directive)
        }
        ExecuteMsg::RevokeConsent {
            patient,
            directive_id,
        } => consent::revoke_consent(deps, env, info, patient, directive_id),
    }
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(deps: Deps, env: Env, msg: QueryMsg) -> StdResult<Binary> {
    match msg {
        QueryMsg::Config {} => to_json_binary(&query::config(deps)?),
        QueryMsg::Request { request_id } => to_json_binary(&query::request(deps, request_id)?),
        QueryMsg::RequestsByRequester {
            requester,
            start_after,
            limit,
        } => to_json_binary(&query::requests_by_requester(
            deps,
            requester,
            start_after,
            limit,
        )?),
        QueryMsg::IncomingRequest {
            partner_id,
            request_id,
        } => to_json_binary(&query::incoming_request(deps, partner_id, request_id)?),
        QueryMsg::PendingIncoming { start_after, limit } => {
            to_json_binary(&query::pending_incoming(deps, start_after, limit)?)
        }
        QueryMsg::Records {
            patient_token,
            start_after,
            limit,
        } => to_json_binary(&query::records(deps, patient_token, start_after, limit)?),
        QueryMsg::Record {
            patient_token,
            record_id,
        } => to_json_binary(&query::record(deps, patient_token, record_id)?),
        QueryMsg::RecordChunk {
            patient_token,
            record_id,
            index,
        } => to_json_binary(&query::record_chunk(
            deps,
            &patient_token,
            &record_id,
            index,
        )?),
        QueryMsg::ReplyChunk { request_id, index } => {
            to_json_binary(&query::reply_chunk(deps, &request_id, index)?)
        }
        QueryMsg::AuditLog { start_after, limit } => {
            to_json_binary(&query::audit_log(deps, start_after, limit)?)
        }
        QueryMsg::OutsiderAttempts {} => to_json_binary(&query::outsider_attempts(deps)?),
        QueryMsg::ConsentDirectives {
            patient,
            start_after,
            limit,
        } => to_json_binary(&query::consent_directives(
            deps,
            &patient,
            start_after,
            limit,
        )?),
        QueryMsg::ConsentCheck {
            patient,
            partner_id,
            purpose,
            categories,
            break_glass,
        } => to_json_binary(&query::consent_check(
            deps,
            &env,
            &patient,
            &partner_id,
            purpose,
            &categories,
            break_glass,
        )?),
        QueryMsg::AuditByPatient {
            patient,
            start_after,
            limit,
        } => to_json_binary(&query::audit_by_patient(
            deps,
            &patient,
            start_after,
            limit,
        )?),
    }
}

/// Refuses another contract's state and downgrades (`ehr_protocol::upgrade`); records the
/// new version with cw2.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn migrate(deps: DepsMut, _env: Env, _msg: MigrateMsg) -> Result<Response, ContractError> {
    let from = migrate_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION)?;
    Ok(Response::new()
        .add_attribute("action", "migrate")
        .add_attribute("from_version", from)
        .add_attribute("to_version", CONTRACT_VERSION))
}
