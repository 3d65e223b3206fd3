//! Typed access to the registry contract on this chain.

use cosmwasm_std::{to_json_binary, Addr, QuerierWrapper, StdResult, WasmMsg};
use ehr_protocol::registry::{Clinician, ConfigResponse, ExecuteMsg, Partner, Peer, QueryMsg};
use ehr_protocol::ErrorCode;

pub struct Registry<'a> {
    pub addr: &'a Addr,
    pub querier: QuerierWrapper<'a>,
}

impl<'a> Registry<'a> {
    pub fn new(addr: &'a Addr, querier: QuerierWrapper<'a>) -> Self {
        Registry { addr, querier }
    }

    fn query<T: serde::de::DeserializeOwned>(&self, msg: &QueryMsg) -> StdResult<T> {
        self.querier.query_wasm_smart(self.addr, msg)
    }

    pub fn config(&self) -> StdResult<ConfigResponse> {
        self.query(&QueryMsg::Config {})
    }

    pub fn peer(&self, address: &Addr) -> StdResult<Option<Peer>> {
        self.query(&QueryMsg::Peer {
            address: address.to_string(),
        })
    }

    pub fn clinician(&self, clinician_id: &str) -> StdResult<Option<Clinician>> {
        self.query(&QueryMsg::Clinician {
            clinician_id: clinician_id.to_string(),
        })
    }

    pub fn partner(&self, partner_id: &str) -> StdResult<Option<Partner>> {
        self.query(&QueryMsg::Partner {
            partner_id: partner_id.to_string(),
        })
    }

    pub fn partner_by_channel(&self, channel_id: &str) -> StdResult<Option<Partner>> {
        self.query(&QueryMsg::PartnerByChannel {
            channel_id: channel_id.to_string(),
        })
    }

    pub fn partner_by_connection(
        &self,
        connection_id: &str,
        counterparty_port: &str,
    ) -> StdResult<Option<Partner>> {
        self.query(&QueryMsg::PartnerByConnection {
            connection_id: connection_id.to_string(),
            counterparty_port: counterparty_port.to_string(),
        })
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
