//! Access to the real devnet for the end-to-end tests: brings it up when it is not running
//! (`scripts/devnet.sh up`), reads `devnet.json`, and drives the chains the way users do,
//! through the project's chain client (`ehrx-chain`, as the `ehrx` peer tool does) and, for
//! the SDK transactions an attacker would type (staking, authz), the `wasmd` CLI.

use crate::harness::peer::{TestClinician, TestPeer};
use cosmwasm_std::Addr;
use ehr_protocol::exchange::PurposeOfUse;
use ehr_protocol::registry::Role;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

pub struct Devnet {
    pub repo: PathBuf,
    pub dir: PathBuf,
    /// One client per (chain, keyring key), so its account sequence is tracked across calls.
    clients: Mutex<HashMap<(String, String), Arc<ehrx_chain::BlockingChain>>>,
}

/// A transaction in the JSON shape of `wasmd query tx -o json` (what the tests read).
pub fn tx_json(tx: &ehrx_chain::TxResult) -> Value {
    serde_json::json!({
        "txhash": tx.txhash,
        "height": tx.height.to_string(),
        "code": tx.code,
        "codespace": tx.codespace,
        "raw_log": tx.raw_log,
        "gas_used": tx.gas_used.to_string(),
        "data": tx.data.as_ref().map(hex::encode).unwrap_or_default(),
        "events": tx.events.iter().map(|e| serde_json::json!({
            "type": e.kind,
            "attributes": e.attributes.iter()
                .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
                .collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// What a transaction came to, as a peer sees it.
#[derive(Debug)]
pub enum TxOutcome {
    Accepted(Value),
    SoftRejected {
        reason: String,
        tx: Value,
    },
    /// Refused by the chain (simulation, CheckTx or DeliverTx): the error text.
    Failed(String),
}

impl TxOutcome {
    pub fn accepted(self) -> Value {
        match self {
            TxOutcome::Accepted(tx) => tx,
            other => panic!("expected acceptance, got {other:?}"),
        }
    }

    pub fn rejection(&self) -> &str {
        match self {
            TxOutcome::SoftRejected { reason, .. } => reason,
            other => panic!("expected a soft rejection, got {other:?}"),
        }
    }

    pub fn failure(&self) -> &str {
        match self {
            TxOutcome::Failed(text) => text,
            other => panic!("expected a failed transaction, got {other:?}"),
        }
    }
}

/// First value of a `wasm` event attribute in a tx JSON (`wasmd query tx -o json`).
pub fn tx_attr(tx: &Value, key: &str) -> Option<String> {
    tx["events"]
        .as_array()?
        .iter()
        .filter(|e| e["type"] == "wasm")
        .flat_map(|e| e["attributes"].as_array().cloned().unwrap_or_default())
        .find(|a| a["key"] == key)
        .and_then(|a| a["value"].as_str().map(str::to_string))
}

impl Devnet {
    /// The running devnet, started (once per test process) if it is not up.
    pub fn get() -> &'static Devnet {
        static DEVNET: OnceLock<Devnet> = OnceLock::new();
        DEVNET.get_or_init(|| {
            let devnet = Devnet::local();
            let healthy = devnet.script(&["status"]).status.success();
            if !healthy {
                eprintln!(
                    "[e2e] devnet is not up: running scripts/devnet.sh up (progress follows)"
                );
                let status = Command::new(devnet.repo.join("scripts/devnet.sh"))
                    .arg("up")
                    .status()
                    .expect("run scripts/devnet.sh up");
                assert!(status.success(), "scripts/devnet.sh up failed");
            }
            devnet
        })
    }

    /// The devnet of this checkout and `$EHRX_DEVNET_DIR` (default `~/.cache/ehrx-devnet`),
    /// whether it runs or not (`get` starts it).
    pub fn local() -> Devnet {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let dir = std::env::var_os("EHRX_DEVNET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/ehrx-devnet")
            });
        Devnet {
            repo,
            dir,
            clients: Mutex::new(HashMap::new()),
        }
    }

    pub fn json(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.join("devnet.json")).expect("devnet.json");
        serde_json::from_str(&text).expect("devnet.json is JSON")
    }

    pub fn chain(&self, chain: &str) -> Value {
        let info = self.json()["chains"][chain].clone();
        assert!(!info.is_null(), "chain {chain} is not in devnet.json");
        info
    }

    pub fn contract(&self, chain: &str, name: &str) -> String {
        self.chain(chain)["contracts"][name]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn key_address(&self, chain: &str, key: &str) -> Addr {
        Addr::unchecked(self.chain(chain)["keys"][key].as_str().expect("known key"))
    }

    /// The clinician `scripts/devnet.sh` registered on `chain`: its id, and the key
    /// `ehrx clinician new` made for it (`clinician.key_file` in devnet.json).
    pub fn clinician(&self, chain: &str) -> TestClinician {
        let info = self.chain(chain)["clinician"].clone();
        let (Some(id), Some(path)) = (info["id"].as_str(), info["key_file"].as_str()) else {
            panic!(
                "devnet.json names no clinician for {chain}: the devnet predates clinician \
                 credentials; run scripts/devnet.sh reset && scripts/devnet.sh up"
            )
        };
        let secret = std::fs::read(path).unwrap_or_else(|e| panic!("clinician key {path}: {e}"));
        TestClinician {
            id: id.to_string(),
            signing_key: k256::ecdsa::SigningKey::from_slice(&secret)
                .unwrap_or_else(|_| panic!("{path} is not a secp256k1 key")),
        }
    }

    /// The records (custodian) key and the pseudonym key `scripts/devnet.sh` made with ehrx
    /// for `chain` (devnet.json `.chains[].custodian`): `records_key_dir`, `records_key`
    /// (base64 X25519; partners hold it as this chain's `encryption_key`) and
    /// `pseudonym_key_file`.
    pub fn custodian(&self, chain: &str) -> Value {
        let info = self.chain(chain)["custodian"].clone();
        assert!(
            info["records_key"].is_string(),
            "devnet.json names no custodian keys for {chain}: the devnet predates sealed \
             patient details; run scripts/devnet.sh reset && scripts/devnet.sh up"
        );
        info
    }

    /// The denom fees are paid in (`DN_FEE_DENOM`); peers and the relayer hold only this.
    pub fn fee_denom(&self) -> String {
        self.denom("fee_denom")
    }

    /// The staking (bonding) denom (`DN_DENOM`); only each chain's admin holds it.
    pub fn bond_denom(&self) -> String {
        self.denom("bond_denom")
    }

    fn denom(&self, field: &str) -> String {
        self.json()[field]
            .as_str()
            .unwrap_or_else(|| {
                panic!(
                    "devnet.json has no {field}: the devnet predates the staking lock \
                     (issue 8); run scripts/devnet.sh reset && scripts/devnet.sh up"
                )
            })
            .to_string()
    }

    /// `wasmd tx ARGS` signed by the keyring key `from`, broadcast, waited for in a block
    /// (through the chain client). `fixed_gas` skips the simulation, so that a message the
    /// chain refuses reaches CheckTx / DeliverTx and fails there with a code and raw_log (as
    /// an attacker who does not simulate would see it). `Failed` holds wasmd's or the
    /// chain's report.
    pub fn tx(&self, chain: &str, from: &str, args: &[&str], fixed_gas: Option<u64>) -> TxOutcome {
        let node = self.node(chain);
        let gas_price = format!("0{}", self.fee_denom());
        let gas = fixed_gas.map(|g| g.to_string());
        let mut all: Vec<&str> = vec!["tx"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--from", from, "--keyring-backend", "test"]);
        all.extend_from_slice(&["--chain-id", chain, "--node", &node]);
        match &gas {
            Some(g) => all.extend_from_slice(&["--gas", g]),
            None => all.extend_from_slice(&["--gas", "auto", "--gas-adjustment", "1.5"]),
        }
        all.extend_from_slice(&["--gas-prices", &gas_price, "-y", "-o", "json"]);
        // Up to 5 attempts while the account sequence moves under us (another tx of the
        // same key in the same block); anything else fails at once.
        let mut attempt = 0;
        let sent: Value = loop {
            attempt += 1;
            let out = self.wasmd(chain, &all);
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            let parsed: Option<Value> = serde_json::from_slice(&out.stdout).ok();
            let retry = attempt < 5
                && (stderr.contains("account sequence mismatch")
                    || parsed.as_ref().is_some_and(|v| v["code"] == 32));
            if retry {
                std::thread::sleep(std::time::Duration::from_secs(1));
                continue;
            }
            match parsed {
                Some(v) if out.status.success() => break v,
                _ => {
                    return TxOutcome::Failed(format!(
                        "transaction failed before broadcast: wasmd tx {} (from {from} on \
                         {chain}): {stderr}{}",
                        args.iter().take(2).copied().collect::<Vec<_>>().join(" "),
                        String::from_utf8_lossy(&out.stdout)
                    ))
                }
            }
        };
        let hash = sent["txhash"].as_str().unwrap_or_default().to_string();
        if sent["code"].as_u64().unwrap_or(0) != 0 {
            return TxOutcome::Failed(format!(
                "transaction failed: CheckTx of wasmd tx {} on {chain}\n  txhash: {hash}\n  \
                 code: {} (codespace {})\n  raw_log: {}",
                args.iter().take(2).copied().collect::<Vec<_>>().join(" "),
                sent["code"],
                sent["codespace"].as_str().unwrap_or("-"),
                sent["raw_log"].as_str().unwrap_or_default()
            ));
        }
        let tx = match self.wait_tx(chain, &hash) {
            Ok(tx) => tx,
            Err(e) => return TxOutcome::Failed(e),
        };
        if tx.code != 0 {
            return TxOutcome::Failed(format!(
                "transaction failed: {chain} tx {hash}\n  code: {} (codespace {})\n  raw_log: {}",
                tx.code, tx.codespace, tx.raw_log
            ));
        }
        TxOutcome::Accepted(tx_json(&tx))
    }

    /// Waits (up to 45 s) until transaction `hash` is in a block of `chain`.
    pub fn wait_tx(&self, chain: &str, hash: &str) -> Result<ehrx_chain::TxResult, String> {
        let client = self.reader(chain);
        let start = std::time::Instant::now();
        loop {
            match client.block_on(client.chain().tx_by_hash(hash)) {
                Ok(tx) => return Ok(tx),
                Err(e) if start.elapsed() > std::time::Duration::from_secs(45) => {
                    return Err(format!(
                        "transaction {hash} on {chain} not found in a block within 45 s: {e}"
                    ))
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(400)),
            }
        }
    }

    /// `wasmd ARGS --home HOME`, HOME being `chain`'s accounts home (its keyring).
    pub fn wasmd(&self, chain: &str, args: &[&str]) -> Output {
        let home = self.chain(chain)["home"]
            .as_str()
            .expect("chain home")
            .to_string();
        Command::new("wasmd")
            .args(args)
            .args(["--home", &home])
            .env("PATH", path_with_tools())
            .output()
            .expect("run wasmd")
    }

    /// Every validator's RPC of `chain` (devnet.json `rpcs`; a devnet of schema 1 has one):
    /// the peers' clients are given all of them and fail over.
    pub fn rpcs(&self, chain: &str) -> Vec<String> {
        let info = self.chain(chain);
        match info["rpcs"].as_array() {
            Some(list) => list
                .iter()
                .map(|v| v.as_str().expect("an RPC URL").to_string())
                .collect(),
            None => vec![info["rpc"].as_str().expect("chain rpc").to_string()],
        }
    }

    /// The latest height validator `index` of `chain` reports (None when it does not
    /// answer).
    pub fn validator_height(&self, chain: &str, index: usize) -> Option<u64> {
        let rpc = self.rpcs(chain).get(index)?.clone();
        let cfg = ehrx_chain::ChainConfig {
            rpc,
            chain_id: chain.to_string(),
            ..ehrx_chain::ChainConfig::default()
        };
        let client = ehrx_chain::BlockingChain::new(cfg, None).ok()?;
        client.block_on(client.chain().height()).ok()
    }

    /// `ehrx-devnet stop-node` (SIGKILL when `kill`: a crash) of validator `index`.
    pub fn stop_validator(&self, chain: &str, index: usize, kill: bool) {
        let i = index.to_string();
        let mut args = vec!["stop-node", "--chain", chain, "--validator", &i];
        if kill {
            args.push("--kill");
        }
        let out = self.script(&args);
        assert!(
            out.status.success(),
            "stop-node {chain} {index}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `ehrx-devnet start-node`: validator `index` started again and caught up.
    pub fn start_validator(&self, chain: &str, index: usize) {
        let i = index.to_string();
        let out = self.script(&["start-node", "--chain", chain, "--validator", &i]);
        assert!(
            out.status.success(),
            "start-node {chain} {index}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The relayer instances of devnet.json (`hermes.instances`): name, pid file, config.
    pub fn relayers(&self) -> Vec<Value> {
        self.json()["hermes"]["instances"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// `chain`'s node, as the wasmd CLI takes it (`tcp://127.0.0.1:PORT`).
    pub fn node(&self, chain: &str) -> String {
        self.chain(chain)["node"]
            .as_str()
            .expect("chain node")
            .to_string()
    }

    /// `wasmd query ARGS -o json` on `chain`, parsed; Err holds wasmd's error.
    pub fn wasmd_query_try(&self, chain: &str, args: &[&str]) -> Result<Value, String> {
        let node = self.node(chain);
        let mut all = vec!["query"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--node", &node, "-o", "json"]);
        let out = self.wasmd(chain, &all);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).to_string());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("query JSON: {e}"))
    }

    /// `wasmd query ARGS -o json` on `chain`, parsed.
    pub fn wasmd_query(&self, chain: &str, args: &[&str]) -> Value {
        self.wasmd_query_try(chain, args)
            .unwrap_or_else(|e| panic!("wasmd query {}: {e}", args.join(" ")))
    }

    /// `wasmd tx wasm instantiate` of `code_id` by keyring key `from` (no admin): the new
    /// contract's address.
    pub fn instantiate_cli(
        &self,
        chain: &str,
        from: &str,
        code_id: u64,
        msg: &Value,
        label: &str,
    ) -> Result<String, String> {
        let (code, msg) = (code_id.to_string(), msg.to_string());
        let args = [
            "wasm",
            "instantiate",
            &code,
            &msg,
            "--label",
            label,
            "--no-admin",
        ];
        match self.tx(chain, from, &args, None) {
            TxOutcome::Accepted(tx) => tx["events"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["type"] == "instantiate")
                .flat_map(|e| e["attributes"].as_array().cloned().unwrap_or_default())
                .find(|a| a["key"] == "_contract_address")
                .and_then(|a| a["value"].as_str().map(str::to_string))
                .ok_or_else(|| format!("instantiate of code {code_id}: no _contract_address")),
            TxOutcome::SoftRejected { reason, .. } => Err(reason),
            TxOutcome::Failed(e) => Err(e),
        }
    }

    /// Waits until `chain` reaches height `want` (up to `secs`): the height reached.
    pub fn wait_height(&self, chain: &str, want: u64, secs: u64) -> Result<u64, String> {
        let start = std::time::Instant::now();
        loop {
            let h = self.height(chain);
            if h >= want {
                return Ok(h);
            }
            if start.elapsed() >= std::time::Duration::from_secs(secs) {
                return Err(format!("{chain}: height {h} after {secs}s, wanted {want}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }

    /// The latest block height of `chain` (0 when its node does not answer).
    pub fn height(&self, chain: &str) -> u64 {
        let client = self.reader(chain);
        client.block_on(client.chain().height()).unwrap_or(0)
    }

    /// The chain client signing as keyring key `key` of `chain`.
    pub fn client(&self, chain: &str, key: &str) -> Arc<ehrx_chain::BlockingChain> {
        let mut clients = self.clients.lock().unwrap();
        clients
            .entry((chain.to_string(), key.to_string()))
            .or_insert_with(|| {
                let secret = (!key.is_empty()).then(|| {
                    self.keyring_key(chain, key)
                        .open(|| None)
                        .unwrap_or_else(|e| panic!("{chain} key {key}: {e}"))
                });
                let cfg = ehrx_chain::ChainConfig {
                    rpc: self.rpcs(chain).join(","),
                    chain_id: chain.to_string(),
                    gas_price: format!("0{}", self.fee_denom()),
                    gas_adjustment: 1.5,
                    ..ehrx_chain::ChainConfig::default()
                };
                Arc::new(ehrx_chain::BlockingChain::new(cfg, secret).expect("chain client"))
            })
            .clone()
    }

    /// A client of `chain` that only reads.
    pub fn reader(&self, chain: &str) -> Arc<ehrx_chain::BlockingChain> {
        self.client(chain, "")
    }

    /// Runs `scripts/devnet.sh ARGS` and returns its output.
    pub fn script(&self, args: &[&str]) -> Output {
        Command::new(self.repo.join("scripts/devnet.sh"))
            .args(args)
            .env("EHRX_DEVNET_DIR", &self.dir)
            .output()
            .expect("run scripts/devnet.sh")
    }

    /// Executes `msg` on `contract` from the keyring key `from`, waits for the block.
    pub fn exec(&self, chain: &str, from: &str, contract: &str, msg: &impl Serialize) -> TxOutcome {
        use ehrx_chain::ChainClient as _;
        let msg = serde_json::to_value(msg).unwrap();
        let tx = match self.client(chain, from).execute_raw(contract, &msg) {
            Ok(tx) if tx.code == 0 => tx_json(&tx),
            Ok(tx) => {
                return TxOutcome::Failed(format!(
                    "tx {} failed: code: {} codespace: {} raw_log: {}",
                    tx.txhash, tx.code, tx.codespace, tx.raw_log
                ))
            }
            Err(e) => return TxOutcome::Failed(e.to_string()),
        };
        match tx_attr(&tx, "outcome").as_deref() {
            Some("rejected") => TxOutcome::SoftRejected {
                reason: tx_attr(&tx, "reason").unwrap_or_default(),
                tx,
            },
            _ => TxOutcome::Accepted(tx),
        }
    }

    pub fn query<T: DeserializeOwned>(
        &self,
        chain: &str,
        contract: &str,
        msg: &impl Serialize,
    ) -> Result<T, String> {
        use ehrx_chain::ChainClient as _;
        let msg = serde_json::to_value(msg).unwrap();
        let answer = self
            .reader(chain)
            .query_raw(contract, &msg)
            .map_err(|e| e.to_string())?;
        serde_json::from_value(answer).map_err(|e| e.to_string())
    }

    /// The keyring key `name` in `chain`'s wasmd home (the `test` backend).
    pub fn keyring_key(&self, chain: &str, name: &str) -> ehrx_chain::KeyringKey {
        ehrx_chain::KeyringKey {
            home: PathBuf::from(self.chain(chain)["home"].as_str().expect("chain home")),
            backend: "test".into(),
            name: name.to_string(),
        }
    }

    /// A new keyring key `name` in `chain`'s home, unfunded: its address.
    pub fn new_key(&self, chain: &str, name: &str) -> Addr {
        let address = self
            .keyring_key(chain, name)
            .create("wasm")
            .unwrap_or_else(|e| panic!("new key {name} on {chain}: {e}"));
        Addr::unchecked(address)
    }

    /// A fresh funded account `name` on `chain` (a new keyring key, funded by the admin),
    /// so each test run has peers no earlier run rate-limited or struck.
    pub fn new_account(&self, chain: &str, name: &str) -> Addr {
        let address = self.new_key(chain, name);
        let admin = self.key_address(chain, "admin");
        // The fee denom only: nobody but the admin holds the bonding denom (issue 8).
        let send = ehrx_chain::msgs::send(
            admin.as_str(),
            address.as_str(),
            1_000_000_000,
            &self.fee_denom(),
        );
        let client = self.client(chain, "admin");
        let tx = client
            .block_on(client.chain().execute_any(&[send]))
            .unwrap_or_else(|e| panic!("funding {name}: {e}"));
        assert_eq!(tx.code, 0, "funding {name}: {}", tx.raw_log);
        address
    }

    /// Registers the account `address` as a peer with fresh protocol keys.
    pub fn register(&self, chain: &str, address: Addr, roles: &[Role]) -> TestPeer {
        let peer = TestPeer::new(address, roles);
        let registry = self.contract(chain, "registry");
        self.exec(
            chain,
            "admin",
            &registry,
            &ehr_protocol::registry::ExecuteMsg::RegisterPeer {
                peer: peer.peer_input(),
            },
        )
        .accepted();
        peer
    }

    /// A new funded account registered as a peer: `name` gets a per-run suffix.
    pub fn fresh_peer(&self, chain: &str, name: &str, roles: &[Role]) -> (String, TestPeer) {
        let key = format!("{name}-{}", run_id());
        let address = self.new_account(chain, &key);
        (key, self.register(chain, address, roles))
    }

    /// A clinician with a fresh key, registered on `chain` by its admin for `purposes`
    /// (`RegisterClinician`): `name` gets a per-run suffix, so each test asks as a
    /// clinician no earlier run used (their incoming quotas on the partner start empty).
    pub fn fresh_clinician(
        &self,
        chain: &str,
        name: &str,
        purposes: &[PurposeOfUse],
    ) -> TestClinician {
        let clinician = TestClinician::new(&format!("{name}-{}", run_id()));
        self.exec(
            chain,
            "admin",
            &self.contract(chain, "registry"),
            &ehr_protocol::registry::ExecuteMsg::RegisterClinician {
                clinician: clinician.input(purposes),
            },
        )
        .accepted();
        clinician
    }
}

/// One id per test process, so account names do not collide across runs.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| format!("{:x}", now() % 0xff_ffff))
}

/// PATH with the project's tool cache first (where scripts/install-tools.sh puts wasmd).
pub fn path_with_tools() -> String {
    let tools = std::env::var("EHRX_TOOLS")
        .unwrap_or_else(|_| format!("{}/.cache/ehrx-tools", std::env::var("HOME").unwrap()));
    format!("{tools}/bin:{}", std::env::var("PATH").unwrap_or_default())
}

/// PATH without any directory that holds a `wasmd` (nor the tool cache): what the `ehrx`
/// processes of the tests run with, so that every exchange they make shows the peer tool
/// needs no `wasmd` binary.
pub fn path_without_wasmd() -> String {
    let tools = std::env::var("EHRX_TOOLS")
        .unwrap_or_else(|_| format!("{}/.cache/ehrx-tools", std::env::var("HOME").unwrap()));
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .filter(|dir| !dir.starts_with(&tools) && !dir.join("wasmd").exists())
        .map(|dir| dir.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// Unix seconds now. The devnet's chains run on this machine's clock, so block time is
/// within a block or two of it (the contracts tolerate 300 s of skew).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}
