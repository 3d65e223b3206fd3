//! `BlockingChain`: the `ChainClient` the synchronous peer tool uses, a `Chain` driven by
//! its own single-threaded tokio runtime.

use crate::client::{Chain, ChainConfig, ContractEvents};
use crate::tx::{ChainClient, ChainError, TxResult, Watch};
use serde_json::Value;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use zeroize::Zeroizing;

pub struct BlockingChain {
    runtime: tokio::runtime::Runtime,
    chain: Chain,
    /// What is followed, and its subscription while connected.
    events: Mutex<Option<(Watch, Option<ContractEvents>)>>,
}

impl BlockingChain {
    pub fn new(
        cfg: ChainConfig,
        secret: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<BlockingChain, ChainError> {
        // One worker, so the websocket is read while the caller works between waits.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| ChainError::Parse(format!("cannot start the async runtime: {e}")))?;
        // reqwest's client must be built inside a runtime.
        let chain = runtime.block_on(async { Chain::new(cfg, secret) })?;
        Ok(BlockingChain {
            runtime,
            chain,
            events: Mutex::new(None),
        })
    }

    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

impl ChainClient for BlockingChain {
    fn address(&self) -> Result<String, ChainError> {
        self.chain.address()
    }

    fn execute_raw(&self, contract: &str, msg: &Value) -> Result<TxResult, ChainError> {
        let bytes = serde_json::to_vec(msg).map_err(|e| ChainError::Parse(e.to_string()))?;
        self.block_on(self.chain.execute(contract, &bytes))
    }

    fn execute_all_raw(&self, contract: &str, msgs: &[Value]) -> Vec<Result<TxResult, ChainError>> {
        // Each execution takes the account lock only to sign and broadcast, so the
        // transactions go out in order with consecutive sequences and are waited for together.
        let bytes: Vec<Result<Vec<u8>, String>> = msgs
            .iter()
            .map(|m| serde_json::to_vec(m).map_err(|e| e.to_string()))
            .collect();
        self.block_on(futures::future::join_all(bytes.iter().map(|b| async {
            match b {
                Ok(bytes) => self.chain.execute(contract, bytes).await,
                Err(e) => Err(ChainError::Parse(e.clone())),
            }
        })))
    }

    fn execute_any(&self, msgs: &[cosmrs::Any]) -> Result<TxResult, ChainError> {
        self.block_on(self.chain.execute_any(msgs))
    }

    fn received_packet(&self, channel: &str, sequence: u64) -> Result<Vec<u8>, ChainError> {
        self.block_on(self.chain.received_packet(channel, sequence))
    }

    fn query_raw(&self, contract: &str, msg: &Value) -> Result<Value, ChainError> {
        let bytes = serde_json::to_vec(msg).map_err(|e| ChainError::Parse(e.to_string()))?;
        let answer = self.block_on(self.chain.smart_query(contract, &bytes))?;
        serde_json::from_slice(&answer)
            .map_err(|e| ChainError::Parse(format!("the contract's answer is not JSON: {e}")))
    }

    fn watch(&self, what: &Watch) {
        let mut events = self.events.lock().expect("events");
        if events
            .as_ref()
            .is_some_and(|(w, s)| w == what && s.is_some())
        {
            return;
        }
        let subscription = self.block_on(self.chain.subscribe(what)).ok();
        *events = Some((what.clone(), subscription));
    }

    fn wait_for_activity(&self, what: &Watch, safety_net: Duration) -> bool {
        self.watch(what);
        let mut events = self.events.lock().expect("events");
        let Some((_, slot)) = events.as_mut() else {
            return false;
        };
        let Some(subscription) = slot.as_mut() else {
            // No websocket (yet): the safety net is the poll.
            drop(events);
            std::thread::sleep(safety_net);
            return false;
        };
        let seen = self
            .runtime
            .block_on(async { tokio::time::timeout(safety_net, subscription.next()).await });
        match seen {
            Ok(Some(())) => {
                subscription.drain();
                true
            }
            // The connection ended: reconnect on the next call; the caller catches up.
            Ok(None) => {
                *slot = None;
                true
            }
            Err(_) => false,
        }
    }
}
