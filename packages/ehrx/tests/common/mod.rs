//! The in-process two-chain world the ehrx integration tests drive: two cw-multi-test
//! chains from the `ehr-tests` harness, its test relayer between them, and a `ChainClient`
//! that executes and queries as a node would.
#![allow(dead_code)]

use cosmwasm_std::{Addr, Timestamp};
use cw_multi_test::Executor;
use ehr_tests::harness::chain::Chain;
use ehr_tests::harness::relayer::{Link, Relayer};
use ehr_tests::harness::scenario::link_partners;
use ehrx::chain::{reduce_log, ChainClient, ChainError, TxEvent, TxResult};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

pub struct World {
    pub a: Chain,
    pub b: Chain,
    pub ab: Link,
}

impl World {
    pub fn new() -> Rc<RefCell<World>> {
        let mut a = Chain::new("hospa", "hospital-a");
        let mut b = Chain::new("hospb", "hospital-b");
        // ehrx stamps requests with the wall clock; the contracts check it against block time.
        let now = Timestamp::from_seconds(ehrx::time::now_unix());
        a.app.update_block(|blk| blk.time = now);
        b.app.update_block(|blk| blk.time = now);
        let ab = link_partners(&mut a, &mut b);
        Rc::new(RefCell::new(World { a, b, ab }))
    }

    pub fn chain(&mut self, side: Side) -> &mut Chain {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    pub fn relay_requests(&mut self) -> usize {
        Relayer::relay(&mut self.a, &mut self.b, &self.ab).len()
    }

    pub fn relay_replies(&mut self) -> usize {
        let ba = self.ab.reverse();
        Relayer::relay(&mut self.b, &mut self.a, &ba).len()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

/// What `WasmdCli` does, against an in-process chain: execute as `sender`, return the
/// events and contract data the way `wasmd query tx` shows them.
#[derive(Clone)]
pub struct InProcess {
    pub world: Rc<RefCell<World>>,
    pub side: Side,
    pub sender: Addr,
    pub txs: Rc<Cell<u64>>,
    /// Runs before each `Request` status query (relaying and the partner's reply service).
    pub on_status_poll: Option<Rc<dyn Fn()>>,
}

impl InProcess {
    pub fn new(world: &Rc<RefCell<World>>, side: Side, sender: &Addr) -> InProcess {
        InProcess {
            world: world.clone(),
            side,
            sender: sender.clone(),
            txs: Rc::new(Cell::new(0)),
            on_status_poll: None,
        }
    }
}

impl ChainClient for InProcess {
    fn address(&self) -> Result<String, ChainError> {
        Ok(self.sender.to_string())
    }

    fn execute_raw(&self, contract: &str, msg: &Value) -> Result<TxResult, ChainError> {
        let mut world = self.world.borrow_mut();
        let chain = world.chain(self.side);
        self.txs.set(self.txs.get() + 1);
        let txhash = format!("{:064X}", self.txs.get());
        let height = chain.app.block_info().height;
        let result =
            chain
                .app
                .execute_contract(self.sender.clone(), Addr::unchecked(contract), msg, &[]);
        chain.app.update_block(|b| b.height += 1);
        Ok(match result {
            Ok(response) => {
                chain.events.extend(response.events.iter().cloned());
                TxResult {
                    txhash,
                    height,
                    data: response.data.map(|d| d.to_vec()),
                    events: response
                        .events
                        .iter()
                        .map(|e| TxEvent {
                            kind: e.ty.clone(),
                            attributes: e
                                .attributes
                                .iter()
                                .map(|a| (a.key.clone(), a.value.clone()))
                                .collect(),
                        })
                        .collect(),
                    ..TxResult::default()
                }
            }
            Err(err) => TxResult {
                txhash,
                height,
                code: 5,
                codespace: "wasm".into(),
                raw_log: format!(
                    "failed to execute message; message index: 0: {err}: execute wasm contract failed"
                ),
                ..TxResult::default()
            },
        })
    }

    /// Code uploads and instantiations, as `ehrx admin deploy` sends them. The harness runs
    /// the contracts natively: an upload whose bytes end in `registry` or `exchange` stores
    /// that contract.
    fn execute_any(&self, msgs: &[ehrx_chain::msgs::Any]) -> Result<TxResult, ChainError> {
        use cosmrs::proto::cosmwasm::wasm::v1::{MsgInstantiateContract, MsgStoreCode};
        use cw_multi_test::{Contract, ContractWrapper};
        use ehrx_chain::msgs::{MSG_INSTANTIATE_CONTRACT, MSG_STORE_CODE};
        use prost::Message as _;
        let parse = |e: prost::DecodeError| ChainError::Parse(e.to_string());
        let mut world = self.world.borrow_mut();
        let chain = world.chain(self.side);
        self.txs.set(self.txs.get() + 1);
        let txhash = format!("{:064X}", self.txs.get());
        let event = |kind: &str, key: &str, value: String| TxEvent {
            kind: kind.into(),
            attributes: vec![(key.into(), value)],
        };
        let mut events = Vec::new();
        for any in msgs {
            match any.type_url.as_str() {
                MSG_STORE_CODE => {
                    let msg = MsgStoreCode::decode(any.value.as_slice()).map_err(parse)?;
                    let code: Box<dyn Contract<cosmwasm_std::Empty>> =
                        if msg.wasm_byte_code.ends_with(b"registry") {
                            Box::new(ContractWrapper::new(
                                registry::contract::execute,
                                registry::contract::instantiate,
                                registry::contract::query,
                            ))
                        } else {
                            Box::new(ContractWrapper::new(
                                exchange::contract::execute,
                                exchange::contract::instantiate,
                                exchange::contract::query,
                            ))
                        };
                    let id = chain
                        .app
                        .store_code_with_creator(Addr::unchecked(msg.sender), code);
                    events.push(event("store_code", "code_id", id.to_string()));
                }
                MSG_INSTANTIATE_CONTRACT => {
                    let msg =
                        MsgInstantiateContract::decode(any.value.as_slice()).map_err(parse)?;
                    let init: Value = serde_json::from_slice(&msg.msg)
                        .map_err(|e| ChainError::Parse(e.to_string()))?;
                    let made = chain.app.instantiate_contract(
                        msg.code_id,
                        Addr::unchecked(&msg.sender),
                        &init,
                        &[],
                        msg.label,
                        Some(msg.admin),
                    );
                    match made {
                        Ok(addr) => {
                            events.push(event("instantiate", "_contract_address", addr.to_string()))
                        }
                        Err(err) => {
                            return Ok(TxResult {
                                txhash,
                                code: 5,
                                codespace: "wasm".into(),
                                raw_log: format!("instantiate wasm contract failed: {err}"),
                                ..TxResult::default()
                            })
                        }
                    }
                }
                other => {
                    return Err(ChainError::Parse(format!(
                        "the fake chain cannot send {other}"
                    )))
                }
            }
        }
        Ok(TxResult {
            txhash,
            events,
            ..TxResult::default()
        })
    }

    fn received_packet(&self, channel: &str, sequence: u64) -> Result<Vec<u8>, ChainError> {
        let mut world = self.world.borrow_mut();
        world
            .chain(self.side)
            .received_packet(channel, sequence)
            .map(|data| data.to_vec())
            .ok_or_else(|| ChainError::Missing {
                what: format!("packet {sequence} received on {channel}"),
                hint: "the test relayer delivered no such packet".into(),
            })
    }

    fn query_raw(&self, contract: &str, msg: &Value) -> Result<Value, ChainError> {
        if msg.get("request").is_some() {
            if let Some(hook) = &self.on_status_poll {
                hook();
            }
        }
        let mut world = self.world.borrow_mut();
        world
            .chain(self.side)
            .app
            .wrap()
            .query_wasm_smart(contract, msg)
            .map_err(|e| {
                let (code, reason) = reduce_log(&e.to_string());
                ChainError::Refused {
                    what: "a contract query".into(),
                    abci_code: 1,
                    code,
                    reason,
                }
            })
    }
}
