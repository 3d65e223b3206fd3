//! Entry points: check who may send what, validate, dispatch. The work is in `execute.rs`
//! and `query.rs`.

use cosmwasm_schema::cw_serde;
#[cfg(not(feature = "library"))]
use cosmwasm_std::entry_point;
use cosmwasm_std::{
    to_json_binary, Addr, Binary, Deps, DepsMut, Env, MessageInfo, Response, StdResult,
};
use ehr_protocol::audit::{AuditAction, AuditEntry};
use ehr_protocol::registry::{ExecuteMsg, InstantiateMsg, QueryMsg};
use ehr_protocol::upgrade::migrate_version;
use ehr_protocol::validate;

use crate::error::ContractError;
use crate::execute::{self, check};
use crate::query;
use crate::state::{Config, AUDIT, CONFIG};

/// Name stored with the state so migrate refuses another contract's code.
pub const CONTRACT_NAME: &str = concat!("crates.io:", env!("CARGO_PKG_NAME"));
pub const CONTRACT_VERSION_STR: &str = env!("CARGO_PKG_VERSION");

/// No parameters yet; the version record decides what a migration has to do.
#[cw_serde]
pub struct MigrateMsg {}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn instantiate(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: InstantiateMsg,
) -> Result<Response, ContractError> {
    let admin = match msg.admin {
        Some(admin) => deps
            .api
            .addr_validate(&admin)
            .map_err(|_| ContractError::invalid("admin"))?,
        None => info.sender.clone(),
    };
    check(validate::name(&msg.network_id), "network_id")?;
    let policy = msg.policy.unwrap_or_default();
    execute::validate_policy(&policy)?;

    CONFIG.save(
        deps.storage,
        &Config {
            admin: admin.clone(),
            exchange: None,
            network_id: msg.network_id.clone(),
            policy,
        },
    )?;
    cw2::set_contract_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION_STR)?;
    // The first admin is the first registry change on record.
    AUDIT.append(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::AdminChanged).agent(&info.sender),
    )?;

    Ok(Response::new()
        .add_attribute("action", "instantiate")
        .add_attribute("admin", admin)
        .add_attribute("network_id", msg.network_id))
}

/// Who may send each message, in one place:
/// - admin: everything that changes peers, codes, partners, policy, admin and exchange,
///   and unbinding a partner's channel;
/// - exchange contract: `RecordStrike`, `BindChannel`, `UnbindChannel`.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn execute(
    deps: DepsMut,
    env: Env,
    info: MessageInfo,
    msg: ExecuteMsg,
) -> Result<Response, ContractError> {
    let config = CONFIG.load(deps.storage)?;
    match msg {
        ExecuteMsg::UpdateAdmin { admin } => {
            ensure_admin(&config, &info.sender)?;
            execute::update_admin(deps, env, info, config, admin)
        }
        ExecuteMsg::SetExchange { exchange } => {
            ensure_admin(&config, &info.sender)?;
            execute::set_exchange(deps, env, info, config, exchange)
        }
        ExecuteMsg::UpdatePolicy { policy } => {
            ensure_admin(&config, &info.sender)?;
            execute::update_policy(deps, env, info, config, policy)
        }
        ExecuteMsg::RegisterPeer { peer } => {
            ensure_admin(&config, &info.sender)?;
            execute::register_peer(deps, env, info, peer)
        }
        ExecuteMsg::RotatePeerKeys {
            address,
            signing_key,
            encryption_key,
        } => {
            ensure_admin(&config, &info.sender)?;
            execute::rotate_peer_keys(deps, env, info, address, signing_key, encryption_key)
        }
        ExecuteMsg::RevokePeer { address } => {
            ensure_admin(&config, &info.sender)?;
            execute::revoke_peer(deps, env, info, address)
        }
        ExecuteMsg::ReleasePeer { address } => {
            ensure_admin(&config, &info.sender)?;
            execute::release_peer(deps, env, info, address)
        }
        ExecuteMsg::RecordStrike { address, reason } => {
            ensure_exchange(&config, &info.sender)?;
            execute::record_strike(deps, env, info, &config, address, reason)
        }
        ExecuteMsg::RegisterClinician { clinician } => {
            ensure_admin(&config, &info.sender)?;
            execute::register_clinician(deps, env, info, clinician)
        }
        ExecuteMsg::RevokeClinician { clinician_id } => {
            ensure_admin(&config, &info.sender)?;
            execute::revoke_clinician(deps, env, info, clinician_id)
        }
        ExecuteMsg::UpsertPartner { partner } => {
            ensure_admin(&config, &info.sender)?;
            execute::upsert_partner(deps, env, info, partner)
        }
        ExecuteMsg::BindChannel {
            partner_id,
            channel_id,
        } => {
            ensure_exchange(&config, &info.sender)?;
            execute::bind_channel(deps, env, info, partner_id, channel_id)
        }
        ExecuteMsg::UnbindChannel { channel_id } => {
            ensure_exchange(&config, &info.sender)?;
            execute::unbind_channel(deps, env, info, channel_id)
        }
        ExecuteMsg::UnbindPartnerChannel { partner_id } => {
            ensure_admin(&config, &info.sender)?;
            execute::unbind_partner_channel(deps, env, info, partner_id)
        }
    }
}

fn ensure_admin(config: &Config, sender: &Addr) -> Result<(), ContractError> {
    if *sender == config.admin {
        Ok(())
    } else {
        Err(ContractError::Unauthorized)
    }
}

/// Only the configured exchange contract; nobody (not even the admin) while none is set.
fn ensure_exchange(config: &Config, sender: &Addr) -> Result<(), ContractError> {
    match &config.exchange {
        Some(exchange) if exchange == sender => Ok(()),
        _ => Err(ContractError::Unauthorized),
    }
}

#[cfg_attr(not(feature = "library"), entry_point)]
pub fn query(deps: Deps, _env: Env, msg: QueryMsg) -> StdResult<Binary> {
    match msg {
        QueryMsg::Config {} => to_json_binary(&query::config(deps)?),
        QueryMsg::Peer { address } => to_json_binary(&query::peer(deps, address)?),
        QueryMsg::Peers { start_after, limit } => {
            to_json_binary(&query::peers(deps, start_after, limit)?)
        }
        QueryMsg::Clinician { clinician_id } => {
            to_json_binary(&query::clinician(deps, clinician_id)?)
        }
        QueryMsg::Clinicians { start_after, limit } => {
            to_json_binary(&query::clinicians(deps, start_after, limit)?)
        }
        QueryMsg::Partner { partner_id } => to_json_binary(&query::partner(deps, partner_id)?),
        QueryMsg::Partners { start_after, limit } => {
            to_json_binary(&query::partners(deps, start_after, limit)?)
        }
        QueryMsg::PartnerByConnection {
            connection_id,
            counterparty_port,
        } => to_json_binary(&query::partner_by_connection(
            deps,
            connection_id,
            counterparty_port,
        )?),
        QueryMsg::PartnerByChannel { channel_id } => {
            to_json_binary(&query::partner_by_channel(deps, channel_id)?)
        }
        QueryMsg::AuditLog { start_after, limit } => {
            to_json_binary(&query::audit_log(deps, start_after, limit)?)
        }
    }
}

/// Refuses another contract's state and downgrades (`ehr_protocol::upgrade`); records the
/// new version with cw2.
#[cfg_attr(not(feature = "library"), entry_point)]
pub fn migrate(deps: DepsMut, _env: Env, _msg: MigrateMsg) -> Result<Response, ContractError> {
    let from = migrate_version(deps.storage, CONTRACT_NAME, CONTRACT_VERSION_STR)?;
    Ok(Response::new()
        .add_attribute("action", "migrate")
        .add_attribute("from_version", from)
        .add_attribute("to_version", CONTRACT_VERSION_STR))
}
