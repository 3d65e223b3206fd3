//! An IBC module for cw-multi-test that records the packets contracts send, the way the
//! chain's IBC keeper would commit them, so the test relayer can deliver them.

use cosmwasm_std::{
    Addr, Api, Binary, BlockInfo, CustomMsg, CustomQuery, Empty, IbcMsg, IbcQuery, IbcTimeout,
    Querier, StdError, StdResult, Storage,
};
use cw_multi_test::{AppResponse, CosmosRouter, Ibc, Module};
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A packet a contract committed with `IbcMsg::SendPacket`.
#[derive(Clone, Debug)]
pub struct SentPacket {
    pub src_port: String,
    pub src_channel: String,
    pub sequence: u64,
    pub data: Binary,
    pub timeout: IbcTimeout,
}

#[derive(Default)]
pub struct Outbox {
    /// Committed, not yet relayed or timed out.
    pub packets: Vec<SentPacket>,
    /// Every packet ever committed (the privacy scan reads it).
    pub history: Vec<SentPacket>,
    next_sequence: HashMap<String, u64>,
}

#[derive(Clone, Default)]
pub struct RecordingIbc {
    pub outbox: Rc<RefCell<Outbox>>,
}

impl Module for RecordingIbc {
    type ExecT = IbcMsg;
    type QueryT = IbcQuery;
    type SudoT = Empty;

    fn execute<ExecC, QueryC>(
        &self,
        _api: &dyn Api,
        _storage: &mut dyn Storage,
        _router: &dyn CosmosRouter<ExecC = ExecC, QueryC = QueryC>,
        _block: &BlockInfo,
        sender: Addr,
        msg: IbcMsg,
    ) -> StdResult<AppResponse>
    where
        ExecC: CustomMsg + DeserializeOwned + 'static,
        QueryC: CustomQuery + DeserializeOwned + 'static,
    {
        match msg {
            IbcMsg::SendPacket {
                channel_id,
                data,
                timeout,
            } => {
                let mut outbox = self.outbox.borrow_mut();
                let sequence = outbox.next_sequence.entry(channel_id.clone()).or_insert(0);
                *sequence += 1;
                let sequence = *sequence;
                let packet = SentPacket {
                    src_port: format!("wasm.{sender}"),
                    src_channel: channel_id,
                    sequence,
                    data,
                    timeout,
                };
                outbox.history.push(packet.clone());
                outbox.packets.push(packet);
                Ok(AppResponse::default())
            }
            other => Err(StdError::msg(format!("unsupported IBC message: {other:?}"))),
        }
    }

    fn query(
        &self,
        _api: &dyn Api,
        _storage: &dyn Storage,
        _querier: &dyn Querier,
        _block: &BlockInfo,
        request: IbcQuery,
    ) -> StdResult<Binary> {
        Err(StdError::msg(format!("unsupported IBC query: {request:?}")))
    }

    fn sudo<ExecC, QueryC>(
        &self,
        _api: &dyn Api,
        _storage: &mut dyn Storage,
        _router: &dyn CosmosRouter<ExecC = ExecC, QueryC = QueryC>,
        _block: &BlockInfo,
        _msg: Empty,
    ) -> StdResult<AppResponse>
    where
        ExecC: CustomMsg + DeserializeOwned + 'static,
        QueryC: CustomQuery + DeserializeOwned + 'static,
    {
        Err(StdError::msg("no IBC sudo"))
    }
}

impl Ibc for RecordingIbc {}
