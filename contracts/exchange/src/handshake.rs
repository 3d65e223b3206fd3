//! Channel handshake rules: unordered, our version, only over a registered partner's
//! connection and counterparty port, one channel per partner, opened from the side with the
//! lower network id, never closed from our side.

use crate::error::ContractError;
use crate::registry_client::{bind_channel_msg, unbind_channel_msg, Registry};
use crate::state::{AUDIT, CONFIG};
use cosmwasm_std::{
    DepsMut, Env, Ibc3ChannelOpenResponse, IbcBasicResponse, IbcChannel, IbcChannelCloseMsg,
    IbcChannelConnectMsg, IbcChannelOpenMsg, IbcOrder,
};
use ehr_protocol::audit::{AuditAction, AuditEntry};
use ehr_protocol::limits::{CHANNEL_VERSION, MAX_PORT_LEN};
use ehr_protocol::registry::{Partner, PartnerStatus};
use ehr_protocol::{validate, ErrorCode};

/// Checks shared by both handshake steps; returns the partner the channel belongs to.
fn check_channel(
    deps: &DepsMut,
    channel: &IbcChannel,
    counterparty_version: Option<&str>,
) -> Result<Partner, ContractError> {
    if channel.order != IbcOrder::Unordered {
        return Err(ContractError::handshake(
            ErrorCode::InvalidFormat,
            "only unordered channels",
        ));
    }
    // OpenInit may carry an empty version: we then propose ours.
    if !(channel.version.is_empty() || channel.version == CHANNEL_VERSION) {
        return Err(ContractError::handshake(
            ErrorCode::UnsupportedVersion,
            format!("channel version must be {CHANNEL_VERSION}"),
        ));
    }
    if let Some(version) = counterparty_version {
        if version != CHANNEL_VERSION {
            return Err(ContractError::handshake(
                ErrorCode::UnsupportedVersion,
                format!("counterparty version must be {CHANNEL_VERSION}"),
            ));
        }
    }
    // Bounded before they become storage keys in the registry's lookup.
    if validate::name(&channel.connection_id).is_err()
        || channel.counterparty_endpoint.port_id.len() > MAX_PORT_LEN
    {
        return Err(ContractError::handshake(
            ErrorCode::InvalidFormat,
            "connection id or counterparty port out of bounds",
        ));
    }
    let config = CONFIG.load(deps.storage)?;
    let partner = Registry::new(&config.registry, deps.querier)
        .partner_by_connection(
            &channel.connection_id,
            &channel.counterparty_endpoint.port_id,
        )?
        .ok_or_else(|| {
            ContractError::handshake(
                ErrorCode::UnknownPartner,
                "connection and counterparty port are not a registered partner",
            )
        })?;
    if partner.status != PartnerStatus::Active {
        return Err(ContractError::handshake(
            ErrorCode::PartnerUnavailable,
            "partner is suspended",
        ));
    }
    if let Some(bound) = &partner.channel_id {
        if bound != &channel.endpoint.channel_id {
            return Err(ContractError::handshake(
                ErrorCode::WrongChannel,
                format!("partner already bound to {bound}"),
            ));
        }
    }
    Ok(partner)
}

/// Handshakes between two hospitals start on the one with the lower network id. Both sides
/// apply the same rule, so two handshakes can never cross (each side binding a different
/// channel and the partner left half bound): the other side's OpenInit is refused.
fn may_initiate(our_network: &str, partner: &Partner) -> Result<(), ContractError> {
    if our_network < partner.partner_id.as_str() {
        return Ok(());
    }
    Err(ContractError::handshake(
        ErrorCode::WrongChannel,
        format!(
            "channels between {our_network} and {partner} are opened from {partner} (the lower \
             network id), so that handshakes never cross: run `hermes create channel --a-chain \
             {partner}` instead",
            partner = partner.partner_id
        ),
    ))
}

pub fn open(
    deps: DepsMut,
    msg: IbcChannelOpenMsg,
) -> Result<Option<Ibc3ChannelOpenResponse>, ContractError> {
    let (channel, counterparty_version) = match &msg {
        IbcChannelOpenMsg::OpenInit { channel } => (channel, None),
        IbcChannelOpenMsg::OpenTry {
            channel,
            counterparty_version,
        } => (channel, Some(counterparty_version.as_str())),
    };
    let partner = check_channel(&deps, channel, counterparty_version)?;
    if counterparty_version.is_none() {
        may_initiate(&CONFIG.load(deps.storage)?.network_id, &partner)?;
    }
    Ok(Some(Ibc3ChannelOpenResponse {
        version: CHANNEL_VERSION.to_string(),
    }))
}

pub fn connect(
    deps: DepsMut,
    env: Env,
    msg: IbcChannelConnectMsg,
) -> Result<IbcBasicResponse, ContractError> {
    let (channel, counterparty_version) = match &msg {
        IbcChannelConnectMsg::OpenAck {
            channel,
            counterparty_version,
        } => (channel, Some(counterparty_version.as_str())),
        IbcChannelConnectMsg::OpenConfirm { channel } => (channel, None),
    };
    let partner = check_channel(&deps, channel, counterparty_version)?;
    let config = CONFIG.load(deps.storage)?;
    let channel_id = &channel.endpoint.channel_id;
    AUDIT.append(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::ChannelOpened)
            .partner(&partner.partner_id)
            .channel(channel_id),
    )?;
    Ok(IbcBasicResponse::new()
        .add_attribute("action", "ibc_channel_connect")
        .add_attribute("partner_id", &partner.partner_id)
        .add_attribute("channel_id", channel_id)
        .add_message(bind_channel_msg(
            &config.registry,
            &partner.partner_id,
            channel_id,
        )?))
}

pub fn close(
    deps: DepsMut,
    env: Env,
    msg: IbcChannelCloseMsg,
) -> Result<IbcBasicResponse, ContractError> {
    let channel = match msg {
        IbcChannelCloseMsg::CloseInit { .. } => return Err(ContractError::CloseRefused),
        IbcChannelCloseMsg::CloseConfirm { channel } => channel,
    };
    let config = CONFIG.load(deps.storage)?;
    let channel_id = &channel.endpoint.channel_id;
    AUDIT.append(
        deps.storage,
        AuditEntry::new(env.block.time, AuditAction::ChannelClosed).channel(channel_id),
    )?;
    Ok(IbcBasicResponse::new()
        .add_attribute("action", "ibc_channel_close")
        .add_attribute("channel_id", channel_id)
        .add_message(unbind_channel_msg(&config.registry, channel_id)?))
}
