//! Typed access to the registry contract on this chain.
//!
//! Reads are raw queries of the registry's storage (`ehr_protocol::registry_layout`, the
//! one definition both contracts use): a store read each, without running the registry's
//! code. These lookups are on every packet and transaction, so they are the bulk of the
//! exchange's gas beyond its own writes. Changes go through the registry's messages.

use cosmwasm_std::{to_json_binary, Addr, QuerierWrapper, StdResult, WasmMsg};
use ehr_protocol::registry::{Clinician, ConfigResponse, ExecuteMsg, Partner, Peer};
use ehr_protocol::registry_layout::{
    clinician_key, connection_key, CLINICIANS, CONFIG, PARTNERS, PARTNER_BY_CHANNEL,
    PARTNER_BY_CONNECTION, PEERS,
};
use ehr_protocol::ErrorCode;

pub struct Registry<'a> {
    pub addr: &'a Addr,
    pub querier: QuerierWrapper<'a>,
}

impl<'a> Registry<'a> {
    pub fn new(addr: &'a Addr, querier: QuerierWrapper<'a>) -> Self {
        Registry { addr, querier }
    }

    pub fn config(&self) -> StdResult<ConfigResponse> {
        CONFIG.query(&self.querier, self.addr.clone())
    }

    pub fn peer(&self, address: &Addr) -> StdResult<Option<Peer>> {
        PEERS.query(&self.querier, self.addr.clone(), address)
    }

    pub fn clinician(&self, clinician_id: &str) -> StdResult<Option<Clinician>> {
        match clinician_key(clinician_id) {
            Some(key) => CLINICIANS.query(&self.querier, self.addr.clone(), key),
            None => Ok(None),
        }
    }

    pub fn partner(&self, partner_id: &str) -> StdResult<Option<Partner>> {
        PARTNERS.query(&self.querier, self.addr.clone(), partner_id)
    }

    /// The partner this channel is bound to, if any: two store reads.
    pub fn partner_by_channel(&self, channel_id: &str) -> StdResult<Option<Partner>> {
        match PARTNER_BY_CHANNEL.query(&self.querier, self.addr.clone(), channel_id)? {
            Some(partner_id) => self.partner(&partner_id),
            None => Ok(None),
        }
    }

    pub fn partner_by_connection(
        &self,
        connection_id: &str,
        counterparty_port: &str,
    ) -> StdResult<Option<Partner>> {
        let Some(key) = connection_key(connection_id, counterparty_port) else {
            return Ok(None);
        };
        match PARTNER_BY_CONNECTION.query(&self.querier, self.addr.clone(), key)? {
            Some(partner_id) => self.partner(&partner_id),
            None => Ok(None),
        }
    }
}

fn execute(registry: &Addr, msg: &ExecuteMsg) -> StdResult<WasmMsg> {
    Ok(WasmMsg::Execute {
        contract_addr: registry.to_string(),
        msg: to_json_binary(msg)?,
        funds: vec![],
    })
}

pub fn record_strike_msg(registry: &Addr, peer: &Addr, reason: &ErrorCode) -> StdResult<WasmMsg> {
    execute(
        registry,
        &ExecuteMsg::RecordStrike {
            address: peer.to_string(),
            reason: reason.clone(),
        },
    )
}

pub fn bind_channel_msg(registry: &Addr, partner_id: &str, channel_id: &str) -> StdResult<WasmMsg> {
    execute(
        registry,
        &ExecuteMsg::BindChannel {
            partner_id: partner_id.to_string(),
            channel_id: channel_id.to_string(),
        },
    )
}

pub fn unbind_channel_msg(registry: &Addr, channel_id: &str) -> StdResult<WasmMsg> {
    execute(
        registry,
        &ExecuteMsg::UnbindChannel {
            channel_id: channel_id.to_string(),
        },
    )
}
