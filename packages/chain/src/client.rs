//! `Chain`: one connection to a wasmd node over CometBFT RPC.
//!
//! Transactions are built and signed with cosmrs (SIGN_MODE_DIRECT), simulated and queried
//! through `abci_query` on the SDK's gRPC paths, broadcast with `broadcast_tx_sync`, and
//! followed to their block through the `tx` endpoint (the node's `kv` indexer). The account
//! sequence is tracked here, so one peer can have several transactions in flight; a
//! sequence mismatch re-reads the account and signs again.
//!
//! Gas comes from simulation. The gas a kind of message used is kept per size class, so
//! the next message of that kind and size is not simulated again; a cached estimate that
//! runs out of gas is dropped and the message simulated and sent again.

use crate::tx::{contract_data, reduce_log, ChainError, TxEvent, TxResult, Watch};
use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::crypto::PublicKey;
use cosmrs::proto::cosmos::auth::v1beta1::{
    BaseAccount, QueryAccountRequest, QueryAccountResponse,
};
use cosmrs::proto::cosmos::tx::v1beta1::{SimulateRequest, SimulateResponse};
use cosmrs::proto::cosmwasm::wasm::v1::{
    QuerySmartContractStateRequest, QuerySmartContractStateResponse,
};
use cosmrs::tx::{Body, Fee, SignDoc, SignerInfo};
use cosmrs::{AccountId, Coin};
use prost::Message as _;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::{Client as _, HttpClient, Order};
use zeroize::Zeroizing;

/// How to reach one chain.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// CometBFT RPC, e.g. `http://127.0.0.1:26657`; several, comma-separated, for a chain
    /// of several validators: the client uses one and moves to the next when it cannot be
    /// reached.
    pub rpc: String,
    pub chain_id: String,
    /// Bech32 prefix of account addresses (`wasm` on wasmd).
    pub account_prefix: String,
    /// Price per unit of gas, e.g. `0ufee` or `0.025ustake`.
    pub gas_price: String,
    /// Simulated gas is multiplied by this.
    pub gas_adjustment: f64,
    /// A fixed gas limit instead of simulation.
    pub fixed_gas: Option<u64>,
    /// Messages too large to simulate (an `abci_query` carries them hex-encoded, twice
    /// their size, against the node's 1 MB RPC body limit) get this much gas per byte of
    /// the message, plus `large_tx_gas_base`.
    pub large_tx_gas_per_byte: u64,
    pub large_tx_gas_base: u64,
    /// How long to wait for a transaction to be in a block.
    pub tx_timeout: Duration,
    /// How often to look for it meanwhile.
    pub tx_poll: Duration,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            rpc: "http://127.0.0.1:26657".into(),
            chain_id: String::new(),
            account_prefix: "wasm".into(),
            gas_price: "0ufee".into(),
            gas_adjustment: 1.4,
            fixed_gas: None,
            // Measured on wasmd v0.61.14: a 123 KB StoreRecord used 5.2 M gas.
            large_tx_gas_per_byte: 100,
            large_tx_gas_base: 1_000_000,
            tx_timeout: Duration::from_secs(60),
            tx_poll: Duration::from_millis(100),
        }
    }
}

/// Above this many bytes of message, gas is estimated from the size, not simulated.
pub const MAX_SIMULATED_MSG: usize = 300 * 1024;
/// SDK root codespace codes.
const SDK_OUT_OF_GAS: u32 = 11;
const SDK_WRONG_SEQUENCE: u32 = 32;
const SEND_ATTEMPTS: usize = 4;

/// `0ufee` / `0.025uatom` into (price, denom).
pub fn parse_gas_price(text: &str) -> Result<(f64, String), ChainError> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| ChainError::Parse(format!("gas price `{text}` has no denom")))?;
    let (amount, denom) = text.split_at(split);
    let amount: f64 = amount
        .parse()
        .map_err(|_| ChainError::Parse(format!("gas price `{text}` has no amount")))?;
    Ok((amount, denom.to_string()))
}

struct Signer {
    key: SigningKey,
    public: PublicKey,
    address: AccountId,
}

#[derive(Debug, Clone, Copy)]
struct Account {
    number: u64,
    sequence: u64,
}

/// One chain, optionally with the key that signs this peer's transactions.
pub struct Chain {
    cfg: ChainConfig,
    /// The nodes of `cfg.rpc`, in order; `current` is the one in use.
    nodes: Vec<(String, HttpClient)>,
    current: std::sync::atomic::AtomicUsize,
    signer: Option<Signer>,
    gas_price: (f64, cosmrs::Denom),
    chain_id: cosmrs::tendermint::chain::Id,
    /// The next sequence to sign with; `None` until read from the chain or after a
    /// mismatch. Held across sign and broadcast, so sequences go out in order.
    account: tokio::sync::Mutex<Option<Account>>,
    /// Most gas a kind of message of a size class used.
    gas_used: Mutex<HashMap<(String, u32), u64>>,
}

impl Chain {
    /// A client of `cfg.rpc`; `secret` is the account key (32 bytes) when this client
    /// sends transactions.
    pub fn new(
        mut cfg: ChainConfig,
        secret: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Chain, ChainError> {
        let mut nodes = Vec::new();
        for address in cfg.rpc.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            // `tcp://host:port`, as the wasmd CLI's --node takes it, is CometBFT's HTTP RPC.
            let address = match address.strip_prefix("tcp://") {
                Some(rest) => format!("http://{rest}"),
                None => address.to_string(),
            };
            let url = tendermint_rpc::HttpClientUrl::from_str(&address).map_err(|e| {
                ChainError::Parse(format!("the RPC address `{address}` is not a URL: {e}"))
            })?;
            let client = HttpClient::builder(url)
                .compat_mode(CompatMode::V0_38)
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| ChainError::Parse(format!("RPC client for {address}: {e}")))?;
            nodes.push((address, client));
        }
        if nodes.is_empty() {
            return Err(ChainError::Parse(
                "no RPC address: give the node as http://HOST:PORT (several, comma-separated)"
                    .into(),
            ));
        }
        cfg.rpc = nodes
            .iter()
            .map(|(a, _)| a.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let signer = secret
            .map(|secret| -> Result<Signer, ChainError> {
                let key = SigningKey::from_slice(&secret)
                    .map_err(|e| ChainError::Key(format!("not a secp256k1 account key: {e}")))?;
                let public = key.public_key();
                let address = public
                    .account_id(&cfg.account_prefix)
                    .map_err(|e| ChainError::Key(format!("address of the account key: {e}")))?;
                Ok(Signer {
                    key,
                    public,
                    address,
                })
            })
            .transpose()?;
        let (price, denom) = parse_gas_price(&cfg.gas_price)?;
        let denom = denom
            .parse()
            .map_err(|e| ChainError::Parse(format!("gas price denom `{denom}`: {e}")))?;
        let chain_id = cfg
            .chain_id
            .parse()
            .map_err(|e| ChainError::Parse(format!("chain id `{}`: {e}", cfg.chain_id)))?;
        Ok(Chain {
            nodes,
            current: std::sync::atomic::AtomicUsize::new(0),
            signer,
            gas_price: (price, denom),
            chain_id,
            account: tokio::sync::Mutex::new(None),
            gas_used: Mutex::new(HashMap::new()),
            cfg,
        })
    }

    /// The signing account's address.
    pub fn address(&self) -> Result<String, ChainError> {
        self.signer().map(|s| s.address.to_string())
    }

    fn signer(&self) -> Result<&Signer, ChainError> {
        self.signer.as_ref().ok_or_else(|| {
            ChainError::Key("this client has no account key: it can query, not send".into())
        })
    }

    fn unreachable(&self, e: tendermint_rpc::Error) -> ChainError {
        ChainError::Unreachable {
            endpoint: self.cfg.rpc.clone(),
            reason: rpc_reason(&e),
        }
    }

    /// The RPC address in use.
    pub fn node(&self) -> &str {
        &self.nodes[self.current.load(std::sync::atomic::Ordering::Relaxed)].0
    }

    /// Runs `call` on the node in use; when that node cannot be reached (connection refused,
    /// timeout: not an answer of the node's), on the next ones in turn, each once. The node
    /// that answers stays in use. With one node, a plain call.
    async fn on_node<T, F, Fut>(&self, call: F) -> Result<T, tendermint_rpc::Error>
    where
        F: Fn(HttpClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, tendermint_rpc::Error>>,
    {
        use std::sync::atomic::Ordering::Relaxed;
        let n = self.nodes.len();
        let first = self.current.load(Relaxed);
        let mut last = None;
        for k in 0..n {
            let i = (first + k) % n;
            match call(self.nodes[i].1.clone()).await {
                Ok(v) => {
                    if k > 0 {
                        self.current.store(i, Relaxed);
                        eprintln!(
                            "warning: {} cannot be reached; using {} instead",
                            self.nodes[first].0, self.nodes[i].0
                        );
                    }
                    return Ok(v);
                }
                Err(e) if n > 1 && is_transport(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one node was tried"))
    }

    /// An `abci_query` on one of the SDK's gRPC paths; the chain's refusal becomes
    /// `ChainError::Refused` with the reason reduced to the contract's words.
    async fn grpc_query(
        &self,
        what: &str,
        path: &str,
        request: Vec<u8>,
    ) -> Result<Vec<u8>, ChainError> {
        let answer = self
            .on_node(|c| {
                let request = request.clone();
                async move {
                    c.abci_query(Some(path.to_string()), request, None, false)
                        .await
                }
            })
            .await
            .map_err(|e| self.unreachable(e))?;
        if answer.code.is_err() {
            let (code, reason) = reduce_log(&answer.log);
            return Err(ChainError::Refused {
                what: what.to_string(),
                abci_code: answer.code.value(),
                code,
                reason,
            });
        }
        Ok(answer.value)
    }

    /// A smart query: the contract's JSON answer.
    pub async fn smart_query(&self, contract: &str, msg: &[u8]) -> Result<Vec<u8>, ChainError> {
        let request = QuerySmartContractStateRequest {
            address: contract.to_string(),
            query_data: msg.to_vec(),
        };
        let response: QuerySmartContractStateResponse = self
            .grpc_typed(
                "a contract query",
                "/cosmwasm.wasm.v1.Query/SmartContractState",
                &request,
            )
            .await?;
        Ok(response.data)
    }

    /// A query on one of the SDK's gRPC paths (`/cosmos.gov.v1.Query/Proposal`) with a
    /// protobuf request and answer, for the modules this client has no method of its own for.
    pub async fn grpc_typed<A: prost::Message + Default>(
        &self,
        what: &str,
        path: &str,
        request: &impl prost::Message,
    ) -> Result<A, ChainError> {
        let value = self.grpc_query(what, path, request.encode_to_vec()).await?;
        A::decode(value.as_slice()).map_err(|e| ChainError::Parse(format!("{what}: {e}")))
    }

    async fn read_account(&self, address: &str) -> Result<Account, ChainError> {
        let request = QueryAccountRequest {
            address: address.to_string(),
        };
        let value = self
            .grpc_query(
                "the account query",
                "/cosmos.auth.v1beta1.Query/Account",
                request.encode_to_vec(),
            )
            .await
            .map_err(|e| match e {
                ChainError::Refused { reason, .. } if reason.contains("not found") => {
                    ChainError::Key(format!(
                        "account {address} does not exist on chain {}: it has never received \
                         funds; ask the hospital's admin to fund it",
                        self.cfg.chain_id
                    ))
                }
                other => other,
            })?;
        let any = QueryAccountResponse::decode(value.as_slice())
            .map_err(|e| ChainError::Parse(format!("account answer: {e}")))?
            .account
            .ok_or_else(|| ChainError::Parse("account answer without an account".into()))?;
        let base = BaseAccount::decode(any.value.as_slice()).map_err(|e| {
            ChainError::Parse(format!(
                "account {address} is a {}, not a base account: {e}",
                any.type_url
            ))
        })?;
        Ok(Account {
            number: base.account_number,
            sequence: base.sequence,
        })
    }

    fn sign(
        &self,
        signer: &Signer,
        account: Account,
        msgs: &[cosmrs::Any],
        gas: u64,
    ) -> Result<Vec<u8>, ChainError> {
        let body = Body::new(msgs.to_vec(), "", 0u32);
        let fee_amount = (self.gas_price.0 * gas as f64).ceil() as u128;
        let fee = Fee::from_amount_and_gas(
            Coin {
                denom: self.gas_price.1.clone(),
                amount: fee_amount,
            },
            gas,
        );
        let auth_info =
            SignerInfo::single_direct(Some(signer.public), account.sequence).auth_info(fee);
        let doc = SignDoc::new(&body, &auth_info, &self.chain_id, account.number)
            .map_err(|e| ChainError::Parse(format!("sign doc: {e}")))?;
        doc.sign(&signer.key)
            .and_then(|raw| raw.to_bytes())
            .map_err(|e| ChainError::Key(format!("signing the transaction: {e}")))
    }

    async fn simulate(&self, tx_bytes: Vec<u8>) -> Result<u64, ChainError> {
        #[allow(deprecated)]
        let request = SimulateRequest { tx: None, tx_bytes };
        let value = self
            .grpc_query(
                "the transaction (simulation)",
                "/cosmos.tx.v1beta1.Service/Simulate",
                request.encode_to_vec(),
            )
            .await
            .map_err(|e| match e {
                ChainError::Refused {
                    abci_code,
                    code,
                    reason,
                    ..
                } => ChainError::TxFailed {
                    txhash: None,
                    abci_code,
                    code,
                    reason: format!("{reason} [refused in simulation, nothing was sent]"),
                },
                other => other,
            })?;
        let response = SimulateResponse::decode(value.as_slice())
            .map_err(|e| ChainError::Parse(format!("simulation answer: {e}")))?;
        Ok(response.gas_info.map(|g| g.gas_used).unwrap_or(0))
    }

    fn cached_gas(&self, key: &(String, u32)) -> Option<u64> {
        self.gas_used.lock().expect("gas cache").get(key).copied()
    }

    fn remember_gas(&self, key: (String, u32), used: u64) {
        let mut cache = self.gas_used.lock().expect("gas cache");
        let entry = cache.entry(key).or_insert(0);
        *entry = (*entry).max(used);
    }

    fn adjusted(&self, gas: u64) -> u64 {
        (gas as f64 * self.cfg.gas_adjustment).ceil() as u64
    }

    /// Executes `msg` (JSON) on `contract` and waits for its block. The result is not
    /// checked; see `TxResult::ensure_accepted`.
    pub async fn execute(&self, contract: &str, msg: &[u8]) -> Result<TxResult, ChainError> {
        let signer = self.signer()?;
        let any = crate::msgs::execute_contract(signer.address.as_ref(), contract, msg)?;
        let gas_key = (message_kind(msg), size_class(msg.len()));
        self.send(&[any], Some(gas_key), msg.len(), &|_| {}).await
    }

    /// Signs `msgs` (any SDK messages, e.g. from `crate::msgs`) into one transaction with
    /// simulated gas, broadcasts it and waits for its block. The result is not checked.
    pub async fn execute_any(&self, msgs: &[cosmrs::Any]) -> Result<TxResult, ChainError> {
        self.execute_any_with(msgs, &|_| {}).await
    }

    /// `execute_any`, calling `taken` with the hash as soon as the node has taken the
    /// transaction (CheckTx passed), before its block: where a benchmark starts its clock.
    pub async fn execute_any_with(
        &self,
        msgs: &[cosmrs::Any],
        taken: &dyn Fn(&str),
    ) -> Result<TxResult, ChainError> {
        let len = msgs.iter().map(|m| m.value.len()).sum();
        self.send(msgs, None, len, taken).await
    }

    /// Sends `msgs` in one transaction: gas from the cache under `gas_key` (when given),
    /// else by size (`len` bytes) or simulation; the account sequence is tracked.
    async fn send(
        &self,
        msgs: &[cosmrs::Any],
        gas_key: Option<(String, u32)>,
        len: usize,
        taken: &dyn Fn(&str),
    ) -> Result<TxResult, ChainError> {
        let signer = self.signer()?;
        let mut use_cache = gas_key.is_some();
        let mut last = None;
        for _ in 0..SEND_ATTEMPTS {
            let (hash, from_cache) = {
                let mut account = self.account.lock().await;
                let current = match *account {
                    Some(a) => a,
                    None => self.read_account(signer.address.as_ref()).await?,
                };
                let cached = match &gas_key {
                    Some(key) if use_cache => self.cached_gas(key),
                    _ => None,
                };
                let gas = match (self.cfg.fixed_gas, cached) {
                    (Some(limit), _) => limit,
                    (None, Some(used)) => self.adjusted(used),
                    (None, None) if len > MAX_SIMULATED_MSG => self
                        .cfg
                        .large_tx_gas_base
                        .saturating_add(self.cfg.large_tx_gas_per_byte.saturating_mul(len as u64)),
                    (None, None) => {
                        let probe = self.sign(signer, current, msgs, 0)?;
                        match self.simulate(probe).await {
                            Ok(used) => self.adjusted(used),
                            Err(ChainError::TxFailed {
                                abci_code, reason, ..
                            }) if abci_code == SDK_WRONG_SEQUENCE
                                || reason.contains("account sequence mismatch") =>
                            {
                                *account = None;
                                last = Some(reason);
                                continue;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                };
                let tx = self.sign(signer, current, msgs, gas)?;
                let sent = self
                    .on_node(|c| {
                        let tx = tx.clone();
                        async move { c.broadcast_tx_sync(tx).await }
                    })
                    .await
                    .map_err(|e| self.unreachable(e))?;
                if sent.code.is_err() {
                    let abci_code = sent.code.value();
                    if abci_code == SDK_WRONG_SEQUENCE && sent.codespace == "sdk" {
                        *account = None;
                        last = Some(sent.log);
                        continue;
                    }
                    *account = Some(current);
                    let (code, reason) = reduce_log(&sent.log);
                    return Err(ChainError::TxFailed {
                        txhash: Some(sent.hash.to_string()),
                        abci_code,
                        code,
                        reason: format!(
                            "{reason} [rejected before inclusion, {} code {abci_code}]",
                            sent.codespace
                        ),
                    });
                }
                *account = Some(Account {
                    sequence: current.sequence + 1,
                    ..current
                });
                (sent.hash, cached.is_some())
            };
            taken(&hash.to_string());
            let result = self.wait_tx(hash).await?;
            if result.code == SDK_OUT_OF_GAS && result.codespace == "sdk" && from_cache {
                // The cached estimate was too low for this message: simulate it.
                if let Some(key) = &gas_key {
                    self.gas_used.lock().expect("gas cache").remove(key);
                }
                use_cache = false;
                last = Some(result.raw_log);
                continue;
            }
            if let (0, Some(key)) = (result.code, &gas_key) {
                self.remember_gas(key.clone(), result.gas_used);
            }
            return Ok(result);
        }
        Err(ChainError::TxFailed {
            txhash: None,
            abci_code: 0,
            code: None,
            reason: format!(
                "gave up after {SEND_ATTEMPTS} attempts: {}",
                last.unwrap_or_default()
            ),
        })
    }

    /// Waits until transaction `hash` is in a block.
    pub async fn wait_tx(&self, hash: cosmrs::tendermint::Hash) -> Result<TxResult, ChainError> {
        let start = Instant::now();
        loop {
            let last = match self
                .on_node(|c| async move { c.tx(hash, false).await })
                .await
            {
                Ok(found) => return tx_result(found),
                Err(e) => rpc_reason(&e),
            };
            if start.elapsed() >= self.cfg.tx_timeout {
                return Err(ChainError::TxTimeout {
                    txhash: hash.to_string(),
                    secs: self.cfg.tx_timeout.as_secs(),
                    last,
                });
            }
            tokio::time::sleep(self.cfg.tx_poll).await;
        }
    }

    /// The transactions a CometBFT event query matches in the node's tx index, oldest
    /// first, at most `limit`.
    pub async fn tx_search(
        &self,
        query: tendermint_rpc::query::Query,
        limit: u8,
    ) -> Result<Vec<TxResult>, ChainError> {
        Ok(self.tx_search_page(query, 1, limit).await?.0)
    }

    /// One page (from 1) of `per_page` matches, oldest first, and how many match in all.
    async fn tx_search_page(
        &self,
        query: tendermint_rpc::query::Query,
        page: u32,
        per_page: u8,
    ) -> Result<(Vec<TxResult>, u32), ChainError> {
        let found = self
            .on_node(|c| {
                let query = query.clone();
                async move {
                    c.tx_search(query, false, page, per_page, Order::Ascending)
                        .await
                }
            })
            .await
            .map_err(|e| self.unreachable(e))?;
        let txs = found
            .txs
            .into_iter()
            .map(tx_result)
            .collect::<Result<_, _>>()?;
        Ok((txs, found.total_count))
    }

    /// Every transaction a CometBFT event query matches, oldest first, page by page.
    pub async fn tx_search_all(
        &self,
        query: tendermint_rpc::query::Query,
    ) -> Result<Vec<TxResult>, ChainError> {
        const PER_PAGE: u8 = 100;
        let mut all = Vec::new();
        for page in 1.. {
            let (txs, total) = self.tx_search_page(query.clone(), page, PER_PAGE).await?;
            let last = txs.len() < usize::from(PER_PAGE);
            all.extend(txs);
            if last || all.len() >= total as usize {
                break;
            }
        }
        Ok(all)
    }

    /// Transaction `hash` (hex), if the node's index has it.
    pub async fn tx_by_hash(&self, hash: &str) -> Result<TxResult, ChainError> {
        let parsed = cosmrs::tendermint::Hash::from_str(hash)
            .map_err(|e| ChainError::Parse(format!("tx hash `{hash}`: {e}")))?;
        match self
            .on_node(|c| async move { c.tx(parsed, false).await })
            .await
        {
            Ok(found) => tx_result(found),
            Err(e) => Err(ChainError::Missing {
                what: format!("transaction {hash}"),
                hint: rpc_reason(&e),
            }),
        }
    }

    /// The header time (BFT time) of block `height`, in milliseconds since the epoch.
    pub async fn block_time_ms(&self, height: u64) -> Result<i64, ChainError> {
        let height = cosmrs::tendermint::block::Height::try_from(height)
            .map_err(|e| ChainError::Parse(format!("height {height}: {e}")))?;
        let block = self
            .on_node(|c| async move { c.block(height).await })
            .await
            .map_err(|e| self.unreachable(e))?;
        Ok((block.block.header.time.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    /// The bank balance of `address` in `denom`.
    pub async fn balance(&self, address: &str, denom: &str) -> Result<u128, ChainError> {
        use cosmrs::proto::cosmos::bank::v1beta1::{QueryBalanceRequest, QueryBalanceResponse};
        let request = QueryBalanceRequest {
            address: address.to_string(),
            denom: denom.to_string(),
        };
        let answer: QueryBalanceResponse = self
            .grpc_typed(
                "the balance query",
                "/cosmos.bank.v1beta1.Query/Balance",
                &request,
            )
            .await?;
        let amount = answer.balance.map(|c| c.amount).unwrap_or_default();
        if amount.is_empty() {
            return Ok(0);
        }
        amount
            .parse()
            .map_err(|e| ChainError::Parse(format!("balance amount `{amount}`: {e}")))
    }

    /// The wasm byte code stored as `code_id`.
    pub async fn wasm_code(&self, code_id: u64) -> Result<Vec<u8>, ChainError> {
        use cosmrs::proto::cosmwasm::wasm::v1::{QueryCodeRequest, QueryCodeResponse};
        let answer: QueryCodeResponse = self
            .grpc_typed(
                "the code query",
                "/cosmwasm.wasm.v1.Query/Code",
                &QueryCodeRequest { code_id },
            )
            .await?;
        Ok(answer.data)
    }

    /// The data of the packet this chain received as `sequence` on `channel` (its own end),
    /// from the `recv_packet` event of the transaction that delivered it: the bytes are in
    /// the block, so a contract need not store them again.
    pub async fn received_packet(
        &self,
        channel: &str,
        sequence: u64,
    ) -> Result<Vec<u8>, ChainError> {
        use tendermint_rpc::query::Query;
        let seq = sequence.to_string();
        let query = Query::eq("recv_packet.packet_dst_channel", channel)
            .and_eq("recv_packet.packet_sequence", seq.as_str());
        let txs = self.tx_search(query, 10).await?;
        let data = txs
            .iter()
            .flat_map(|tx| &tx.events)
            .find(|e| {
                e.kind == "recv_packet"
                    && e.attr("packet_dst_channel") == Some(channel)
                    && e.attr("packet_sequence") == Some(seq.as_str())
            })
            .and_then(|e| e.attr("packet_data_hex"))
            .ok_or_else(|| ChainError::Missing {
                what: format!("packet {sequence} received on {channel}"),
                hint: format!(
                    "no transaction in the tx index of {} delivered it; the node must index \
                     transactions ([tx_index] indexer = \"kv\" in config.toml) and keep them \
                     until the request is answered",
                    self.cfg.rpc
                ),
            })?;
        hex::decode(data).map_err(|e| {
            ChainError::Parse(format!(
                "packet {sequence} on {channel}: packet_data_hex is not hex: {e}"
            ))
        })
    }

    /// The latest block height, or why the node cannot be reached.
    pub async fn height(&self) -> Result<u64, ChainError> {
        let status = self
            .on_node(|c| async move { c.status().await })
            .await
            .map_err(|e| self.unreachable(e))?;
        Ok(status.sync_info.latest_block_height.value())
    }
}

/// A live subscription to the transactions that touch one contract (its `wasm` events),
/// over the node's CometBFT websocket. Dropping it closes the connection.
pub struct ContractEvents {
    client: tendermint_rpc::WebSocketClient,
    subscription: tendermint_rpc::Subscription,
    driver: tokio::task::JoinHandle<()>,
}

impl ContractEvents {
    /// Waits for the next transaction touching the contract. `None` when the connection
    /// ended (the node restarted or dropped a slow reader): callers catch up by query.
    pub async fn next(&mut self) -> Option<()> {
        use futures::StreamExt as _;
        match self.subscription.next().await {
            Some(Ok(_)) => Some(()),
            _ => None,
        }
    }

    /// Events already received, without waiting: how many were drained.
    pub fn drain(&mut self) -> usize {
        use futures::FutureExt as _;
        use futures::StreamExt as _;
        let mut n = 0;
        while let Some(Some(Ok(_))) = self.subscription.next().now_or_never() {
            n += 1;
        }
        n
    }
}

impl Drop for ContractEvents {
    fn drop(&mut self) {
        use tendermint_rpc::SubscriptionClient as _;
        let _ = self.client.clone().close();
        self.driver.abort();
    }
}

impl Chain {
    /// The CometBFT websocket of RPC address `rpc` (`http://h:p` → `ws://h:p/websocket`).
    fn websocket_url(rpc: &str) -> String {
        let base = rpc.trim_end_matches('/');
        let base = base
            .strip_prefix("https://")
            .map(|rest| format!("wss://{rest}"))
            .or_else(|| {
                base.strip_prefix("http://")
                    .map(|rest| format!("ws://{rest}"))
            })
            .unwrap_or_else(|| base.to_string());
        format!("{base}/websocket")
    }

    /// Subscribes to the transactions that emit `wasm` events of `what.contract` (packets
    /// received and acknowledged by it as well as executions), and that carry
    /// `what.attribute` in a `wasm` event when it is set.
    /// With several nodes: the node in use, else the next that accepts, in turn.
    pub async fn subscribe(&self, what: &Watch) -> Result<ContractEvents, ChainError> {
        use std::sync::atomic::Ordering::Relaxed;
        let n = self.nodes.len();
        let first = self.current.load(Relaxed);
        let mut last = None;
        for k in 0..n {
            let i = (first + k) % n;
            match Self::subscribe_on(&self.nodes[i].0, what).await {
                Ok(events) => {
                    if k > 0 {
                        self.current.store(i, Relaxed);
                    }
                    return Ok(events);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one node was tried"))
    }

    async fn subscribe_on(rpc: &str, what: &Watch) -> Result<ContractEvents, ChainError> {
        use tendermint_rpc::SubscriptionClient as _;
        let url = Self::websocket_url(rpc);
        let unreachable = |e: tendermint_rpc::Error| ChainError::Unreachable {
            endpoint: url.clone(),
            reason: rpc_reason(&e),
        };
        let ws_url = tendermint_rpc::WebSocketClientUrl::from_str(&url).map_err(unreachable)?;
        let (client, driver) = tendermint_rpc::WebSocketClient::builder(ws_url)
            .compat_mode(CompatMode::V0_38)
            .build()
            .await
            .map_err(unreachable)?;
        let driver = tokio::spawn(async move {
            let _ = driver.run().await;
        });
        let subscription = match client.subscribe(what.query()).await {
            Ok(s) => s,
            Err(e) => {
                driver.abort();
                return Err(unreachable(e));
            }
        };
        Ok(ContractEvents {
            client,
            subscription,
            driver,
        })
    }
}

/// Did the node fail to answer at all (rather than answer with an error)?
fn is_transport(e: &tendermint_rpc::Error) -> bool {
    use tendermint_rpc::error::ErrorDetail as D;
    matches!(
        e.detail(),
        D::Io(_)
            | D::Http(_)
            | D::HttpRequestFailed(_)
            | D::Timeout(_)
            | D::ClientInternal(_)
            | D::WebSocket(_)
            | D::WebSocketTimeout(_)
    )
}

/// An RPC error with its causes (tendermint-rpc's own text is only "HTTP error"; the cause
/// says "connection refused" or "operation timed out").
fn rpc_reason(e: &tendermint_rpc::Error) -> String {
    let mut reason = e.detail().to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !reason.contains(&text) {
            reason = format!("{reason}: {text}");
        }
        source = cause.source();
    }
    reason
}

/// The top-level key of a contract message (`submit_request`), for the gas cache.
fn message_kind(msg: &[u8]) -> String {
    let head = &msg[..msg.len().min(64)];
    let text = String::from_utf8_lossy(head);
    text.trim_start_matches(['{', ' '])
        .trim_start_matches('"')
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Size classes of 2^(k/2) bytes: messages within ~41% of each other share an estimate.
fn size_class(len: usize) -> u32 {
    let len = len.max(1) as f64;
    (len.log2() * 2.0).floor() as u32
}

/// The bytes of a `tx_result.data`: tendermint-rpc 0.40 hands over the JSON's base64 text
/// as it is (its `Bytes` field is not base64-decoded), so decode it here; bytes that are
/// not base64 are taken as they are.
fn result_data(data: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap_or_else(|_| data.to_vec())
}

fn tx_result(found: tendermint_rpc::endpoint::tx::Response) -> Result<TxResult, ChainError> {
    let r = found.tx_result;
    let events = r
        .events
        .iter()
        .map(|e| TxEvent {
            kind: e.kind.clone(),
            attributes: e
                .attributes
                .iter()
                .map(|a| {
                    (
                        String::from_utf8_lossy(a.key_bytes()).into_owned(),
                        String::from_utf8_lossy(a.value_bytes()).into_owned(),
                    )
                })
                .collect(),
        })
        .collect();
    let messages = cosmrs::proto::cosmos::tx::v1beta1::Tx::decode(found.tx.as_slice())
        .ok()
        .and_then(|tx| tx.body)
        .map(|body| body.messages.into_iter().map(|m| m.type_url).collect())
        .unwrap_or_default();
    let data = if r.code.is_ok() && !r.data.is_empty() {
        contract_data(&result_data(&r.data))?
    } else {
        None
    };
    Ok(TxResult {
        txhash: found.hash.to_string(),
        height: found.height.value(),
        code: r.code.value(),
        codespace: r.codespace,
        raw_log: r.log,
        gas_used: r.gas_used.max(0) as u64,
        data,
        events,
        messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_told_apart_by_kind_and_size() {
        assert_eq!(
            message_kind(br#"{"submit_request":{"a":1}}"#),
            "submit_request"
        );
        assert_eq!(message_kind(br#"{ "store_chunks" : {}}"#), "store_chunks");
        assert_eq!(size_class(1100), size_class(1300));
        assert_ne!(size_class(1100), size_class(1600));
        assert_ne!(size_class(100_000), size_class(400_000));
    }

    /// `tx_result.data` of a real StoreRecord on wasmd v0.61 (CometBFT 0.38 `/tx`), as
    /// tendermint-rpc hands it over: the base64 text.
    #[test]
    fn tx_data_is_read_from_its_base64_text() {
        let text = b"Ei4KLC9jb3Ntd2FzbS53YXNtLnYxLk1zZ0V4ZWN1dGVDb250cmFjdFJlc3BvbnNl";
        let raw = result_data(text);
        assert_eq!(raw[0], 0x12);
        assert_eq!(contract_data(&raw).unwrap(), None);
        assert_eq!(result_data(&raw), raw);

        // With data: RetrieveReply's JSON comes back out.
        use cosmrs::proto::cosmos::base::abci::v1beta1::TxMsgData;
        use cosmrs::proto::cosmwasm::wasm::v1::MsgExecuteContractResponse;
        let data = TxMsgData {
            msg_responses: vec![cosmrs::Any {
                type_url: "/cosmwasm.wasm.v1.MsgExecuteContractResponse".into(),
                value: MsgExecuteContractResponse {
                    data: br#"{"request_id":"ab"}"#.to_vec(),
                }
                .encode_to_vec(),
            }],
            ..Default::default()
        };
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode(data.encode_to_vec());
        assert_eq!(
            contract_data(&result_data(text.as_bytes()))
                .unwrap()
                .as_deref(),
            Some(br#"{"request_id":"ab"}"#.as_slice())
        );
        let other = TxMsgData {
            msg_responses: vec![cosmrs::Any {
                type_url: "/cosmos.bank.v1beta1.MsgSendResponse".into(),
                value: vec![],
            }],
            ..Default::default()
        };
        assert_eq!(contract_data(&other.encode_to_vec()).unwrap(), None);
    }

    #[tokio::test]
    async fn several_nodes_are_tried_in_turn() {
        let chain = Chain::new(
            ChainConfig {
                rpc: "tcp://127.0.0.1:9, http://127.0.0.1:10".into(),
                chain_id: "hospital-a".into(),
                ..ChainConfig::default()
            },
            None,
        )
        .unwrap();
        assert_eq!(chain.node(), "http://127.0.0.1:9");
        let err = chain.height().await.unwrap_err().to_string();
        // Both tried; the error names the list, the last cause is the second node's.
        assert!(
            err.contains("http://127.0.0.1:9,http://127.0.0.1:10"),
            "{err}"
        );
        assert!(err.contains("Connection refused"), "{err}");
        assert!(Chain::new(
            ChainConfig {
                rpc: " , ".into(),
                chain_id: "hospital-a".into(),
                ..ChainConfig::default()
            },
            None
        )
        .is_err());
    }

    #[test]
    fn gas_prices_parse() {
        assert_eq!(parse_gas_price("0ufee").unwrap(), (0.0, "ufee".into()));
        assert_eq!(
            parse_gas_price("0.025ustake").unwrap(),
            (0.025, "ustake".into())
        );
        assert!(parse_gas_price("ufee").is_err());
        assert!(parse_gas_price("12").is_err());
    }

    #[tokio::test]
    async fn a_node_that_is_not_there_is_named_in_the_error() {
        let chain = Chain::new(
            ChainConfig {
                rpc: "tcp://127.0.0.1:9".into(),
                chain_id: "hospital-a".into(),
                ..ChainConfig::default()
            },
            Some(Zeroizing::new(vec![7u8; 32])),
        )
        .unwrap();
        let err = chain.height().await.unwrap_err();
        assert_eq!(
            Chain::websocket_url(chain.node()),
            "ws://127.0.0.1:9/websocket"
        );
        assert!(err.is_transient(), "{err:?}");
        assert!(err.to_string().contains("http://127.0.0.1:9"), "{err}");
        assert!(err.to_string().contains("is the node running"), "{err}");
        assert!(
            err.to_string().contains("Connection refused"),
            "the cause: {err}"
        );
        let err = chain
            .execute(
                "wasm14hj2tavq8fpesdwxxcu44rty3hh90vhujrvcmstl4zr3txmfvw9s0phg4d",
                b"{}",
            )
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert!(chain.address().unwrap().starts_with("wasm1"));
    }
}
