//! `ehrx-devnet add-validator --chain ID [--bond AMOUNT]`: adds one of the hospital's own
//! validators to a running chain, the admin procedure of relayer-config/DEVNET.md
//! ("Adding one of the hospital's own validators"), automated:
//!
//! 1. a new home `val<N>` (N = the chain's current count; ports of validator N):
//!    `wasmd init`, its operator key, the chain's genesis, its config (peers and
//!    allowlist = every existing validator);
//! 2. the allowlist: the new node's id added to every existing validator's
//!    `persistent_peers` and `unconditional_peer_ids`, each restarted in turn (one down at a
//!    time; the next only after it caught up and the chain made a block);
//! 3. the new node started and caught up (a full node, not yet a validator); recorded in
//!    `DIR/<chain>/extra-validators`, so that status, stop-node and down see it;
//! 4. the admin sends the operator `--bond` of the bonding denom (nobody else holds it);
//! 5. the admin (circuit super admin) lifts the breaker for MsgCreateValidator only;
//! 6. the operator's MsgCreateValidator, with the new node's consensus key;
//! 7. the admin trips the breaker again, whether 6 passed or not;
//! 8. wait until the validator set has N+1 validators.
//!
//! 4 to 7 are separate transactions: the ante handler checks the disabled list before a
//! reset in the same transaction would run.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use base64::Engine as _;
use ehrx_chain::{BlockingChain, ChainConfig, KeyringKey, TxResult};
use prost::Message as _;
use serde_json::{json, Value};

use crate::cmd::start_node::wait_caught_up;
use crate::cmd::up::{add_key, start_nodes};
use crate::cmd::DirArg;
use crate::config::{Chain, Role};
use crate::genesis::STAKING_LOCKED_MSGS;
use crate::layout::{self, Node};
use crate::nodecfg::{self, Peer};
use crate::process::{self, wasmd};
use crate::progress::Progress;
use crate::{ports, rpc};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub dir: DirArg,
    /// The chain to add a validator to.
    #[arg(long, value_name = "ID")]
    pub chain: String,
    /// The new validator's self-bond in the bonding denom, sent by the admin
    /// [default: the chain's self_bond].
    #[arg(long, value_name = "AMOUNT")]
    pub bond: Option<u128>,
}

pub const MSG_CREATE_VALIDATOR: &str = STAKING_LOCKED_MSGS[0];
const MSG_RESET: &str = "/cosmos.circuit.v1.MsgResetCircuitBreaker";
const MSG_TRIP: &str = "/cosmos.circuit.v1.MsgTripCircuitBreaker";
/// How long to wait for a block, or for the validator set to change.
const WAIT: Duration = Duration::from_secs(60);

/// `cosmos.circuit.v1.MsgTripCircuitBreaker` (cosmos-sdk x/circuit,
/// proto/cosmos/circuit/v1/tx.proto; cosmossdk.io/x/circuit v0.1.1 types/tx.pb.go):
/// authority = 1, msg_type_urls = 2. cosmos-sdk-proto 0.27 generates it but does not
/// export the module.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MsgTripCircuitBreaker {
    #[prost(string, tag = "1")]
    pub authority: String,
    #[prost(string, repeated, tag = "2")]
    pub msg_type_urls: Vec<String>,
}

/// `cosmos.circuit.v1.MsgResetCircuitBreaker` (same file): authority = 1,
/// msg_type_urls = 3 (there is no field 2).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MsgResetCircuitBreaker {
    #[prost(string, tag = "1")]
    pub authority: String,
    #[prost(string, repeated, tag = "3")]
    pub msg_type_urls: Vec<String>,
}

fn any(type_url: &str, value: Vec<u8>) -> ehrx_chain::msgs::Any {
    ehrx_chain::msgs::Any {
        type_url: type_url.into(),
        value,
    }
}

/// The circuit breaker lifted (`reset = true`) or tripped for `type_url`, by `authority`.
pub fn circuit(authority: &str, type_url: &str, reset: bool) -> ehrx_chain::msgs::Any {
    let urls = vec![type_url.to_string()];
    let authority = authority.to_string();
    if reset {
        let m = MsgResetCircuitBreaker {
            authority,
            msg_type_urls: urls,
        };
        any(MSG_RESET, m.encode_to_vec())
    } else {
        let m = MsgTripCircuitBreaker {
            authority,
            msg_type_urls: urls,
        };
        any(MSG_TRIP, m.encode_to_vec())
    }
}

/// A `LegacyDec` on the wire: the 18-decimal fixed-point integer as text (the SDK's
/// `customtype` marshals the scaled big integer, not "0.10").
fn legacy_dec_percent(p: u64) -> String {
    (u128::from(p) * 10_u128.pow(16)).to_string()
}

/// The operator's `MsgCreateValidator`: `operator` (account address) becomes validator
/// `moniker` with consensus key `consensus_key` (32-byte Ed25519) and a self-bond of
/// `amount` `denom`; commission 10% (max 20%, 1% a day).
pub fn create_validator(
    operator: &str,
    moniker: &str,
    consensus_key: &[u8],
    amount: u128,
    denom: &str,
) -> Result<ehrx_chain::msgs::Any> {
    use cosmrs::proto::cosmos::staking::v1beta1::{CommissionRates, Description};
    let account: cosmrs::AccountId = operator
        .parse()
        .map_err(|e| anyhow::anyhow!("operator address {operator}: {e}"))?;
    let valoper =
        cosmrs::AccountId::new(&format!("{}valoper", account.prefix()), &account.to_bytes())
            .map_err(|e| anyhow::anyhow!("validator address of {operator}: {e}"))?;
    let pubkey = cosmrs::proto::cosmos::crypto::ed25519::PubKey {
        key: consensus_key.to_vec(),
    };
    // `delegator_address` (deprecated since SDK 0.50: the validator address signs and
    // self-delegates) stays empty.
    #[allow(deprecated)]
    let msg = cosmrs::proto::cosmos::staking::v1beta1::MsgCreateValidator {
        description: Some(Description {
            moniker: moniker.to_string(),
            ..Default::default()
        }),
        commission: Some(CommissionRates {
            rate: legacy_dec_percent(10),
            max_rate: legacy_dec_percent(20),
            max_change_rate: legacy_dec_percent(1),
        }),
        min_self_delegation: "1".into(),
        delegator_address: String::new(),
        validator_address: valoper.to_string(),
        pubkey: Some(cosmrs::proto::Any {
            type_url: "/cosmos.crypto.ed25519.PubKey".into(),
            value: pubkey.encode_to_vec(),
        }),
        value: Some(cosmrs::proto::cosmos::base::v1beta1::Coin {
            denom: denom.to_string(),
            amount: amount.to_string(),
        }),
    };
    Ok(any(MSG_CREATE_VALIDATOR, msg.encode_to_vec()))
}

/// The consensus (Ed25519) public key of a node, from its `config/priv_validator_key.json`.
pub fn consensus_key(home: &Path) -> Result<Vec<u8>> {
    let path = home.join("config/priv_validator_key.json");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let b64 = v["pub_key"]["value"]
        .as_str()
        .with_context(|| format!("{}: no pub_key.value", path.display()))?;
    let key = base64::engine::general_purpose::STANDARD.decode(b64)?;
    ensure!(
        key.len() == 32,
        "{}: an Ed25519 public key has 32 bytes, not {}",
        path.display(),
        key.len()
    );
    Ok(key)
}

pub fn run(args: Args) -> Result<()> {
    let p = Progress::new();
    let dir = args.dir.path();
    let _lock = layout::lock(&dir)?;
    let devnet = layout::load(&dir, None)?;
    let (_, chain) = devnet.chain(&args.chain).with_context(|| {
        format!(
            "--chain {}: no such [[chain]] in {}",
            args.chain,
            layout::saved_config(&dir).display()
        )
    })?;
    let chain = chain.clone();
    let id = chain.id.as_str();
    let nodes = layout::nodes(&devnet, &dir, id)?;
    ensure!(
        nodes[0].genesis().exists(),
        "{id}: not made yet; run `ehrx-devnet up --chain {id}` first"
    );
    for n in &nodes {
        ensure!(
            process::running_pid(n).is_some(),
            "{}: not running; the rolling restart needs every validator up \
             (`ehrx-devnet start-node --chain {id} --validator {}`)",
            n.moniker(),
            n.index
        );
    }
    let n = nodes.len();
    ensure!(
        n < ports::MAX_VALIDATORS,
        "{id} has {n} validators, the most the port layout allows ({})",
        ports::MAX_VALIDATORS
    );
    let new = layout::node(&devnet, &dir, id, n as u8)?;
    ensure!(
        !new.home.exists(),
        "{} exists but is not counted (an unfinished earlier add-validator): stop it if it \
         runs (`kill $(cat {})`), remove it (`rm -rf {}`) and run add-validator again",
        new.home.display(),
        new.pid_file().display(),
        new.home.display()
    );
    for (service, port) in new.ports.all() {
        ensure!(
            !ports::in_use(port),
            "{}: port {port} ({}) is in use by another process (`ss -ltnp | grep :{port}`)",
            new.moniker(),
            service.name()
        );
    }
    let bond = args.bond.unwrap_or(chain.self_bond);
    let admin_name = devnet
        .accounts_on(id)
        .find(|a| a.role == Role::Admin)
        .map(|a| a.name.clone())
        .with_context(|| format!("{id}: no admin account in the devnet file"))?;
    let accounts = layout::accounts_home(&dir, id);
    let rpc_url = nodes[0].ports.rpc_url();
    let admin = signer(&chain, &rpc_url, &accounts, &admin_name)?;
    let admin_addr = admin.chain().address()?;
    let held = admin
        .block_on(admin.chain().balance(&admin_addr, &chain.bond_denom))
        .context("reading the admin's balance")?;
    ensure!(
        held >= bond,
        "{id}: the admin {admin_name} holds {held}{} but the new validator's self-bond is \
         {bond}: pass a smaller --bond, or give the admin more `bond` in the devnet file",
        chain.bond_denom
    );

    // 1. The new home.
    p.say(format!(
        "{id}: step 1/8: new validator home {} (ports {}..{})",
        new.home.display(),
        new.ports.p2p,
        new.ports.pprof
    ));
    let operator = make_home(&devnet.network.log_level, &chain, &nodes, &new)?;

    // 2. The allowlist, one validator at a time.
    let rt = rpc::runtime()?;
    let new_peer = Peer::of(&new)?;
    p.say(format!(
        "{id}: step 2/8: node {} added to the allowlist of the {n} validators (rolling restart)",
        new_peer.id
    ));
    for node in &nodes {
        let cfg = node.home.join("config/config.toml");
        let text = fs::read_to_string(&cfg)?;
        fs::write(&cfg, nodecfg::add_peer(&text, &new_peer)?)?;
        restart(&p, &rt, &nodes, node)?;
    }

    // 3. The new node, a full node first.
    p.say(format!("{id}: step 3/8: starting {}", new.moniker()));
    let target = chain_height(&rt, &nodes);
    start_nodes(&p, std::slice::from_ref(&new))?;
    if let Err(e) = wait_caught_up(&p, &rt, &new, target) {
        let _ = process::stop_node(&new, Duration::from_secs(20));
        return Err(e.context(format!(
            "{} did not catch up; it is stopped and not counted: remove {} and try again",
            new.moniker(),
            new.home.display()
        )));
    }
    let extra = layout::extra_validators(&dir, id)? + 1;
    fs::write(
        layout::extra_validators_file(&dir, id),
        format!("{extra}\n"),
    )?;
    record_in_chain_json(&dir, id, &new, &new_peer.id, &operator)?;
    let half_done = || {
        format!(
            "{} runs as a full node and is counted; finish by hand \
             (relayer-config/DEVNET.md, \"Adding one of the hospital's own validators\")",
            new.moniker()
        )
    };

    // 4. Funds.
    p.say(format!(
        "{id}: step 4/8: {admin_name} sends {bond}{} to the operator {operator}",
        chain.bond_denom
    ));
    let send = ehrx_chain::msgs::send(&admin_addr, &operator, bond, &chain.bond_denom);
    submit(&admin, &[send], "the bank send").with_context(half_done)?;

    // 5-7. The breaker lifted for one message, the validator, the breaker again.
    p.say(format!(
        "{id}: step 5/8: {admin_name} lifts the circuit breaker for {MSG_CREATE_VALIDATOR}"
    ));
    submit(
        &admin,
        &[circuit(&admin_addr, MSG_CREATE_VALIDATOR, true)],
        "the circuit reset",
    )
    .with_context(half_done)?;
    p.say(format!(
        "{id}: step 6/8: the operator's MsgCreateValidator ({}, self-bond {bond}{})",
        new.moniker(),
        chain.bond_denom
    ));
    let created = signer(&chain, &rpc_url, &new.home, "operator").and_then(|op| {
        let msg = create_validator(
            &operator,
            &new.moniker(),
            &consensus_key(&new.home)?,
            bond,
            &chain.bond_denom,
        )?;
        submit(&op, &[msg], "MsgCreateValidator")
    });
    p.say(format!(
        "{id}: step 7/8: {admin_name} trips the circuit breaker again"
    ));
    let tripped = submit(
        &admin,
        &[circuit(&admin_addr, MSG_CREATE_VALIDATOR, false)],
        "the circuit trip",
    );
    if let Err(e) = tripped {
        return Err(e.context(format!(
            "MsgCreateValidator is NOT disabled again: run `wasmd tx circuit disable \
             {MSG_CREATE_VALIDATOR} --from {admin_name} --home {} --keyring-backend test \
             --gas 200000 -y` now",
            accounts.display()
        )));
    }
    let created = created.with_context(half_done)?;
    p.say(format!(
        "{id}: MsgCreateValidator in block {}; MsgCreateValidator disabled again",
        created.height
    ));

    // 8. The set.
    p.say(format!(
        "{id}: step 8/8: waiting for {} validators in the set",
        n + 1
    ));
    let start = Instant::now();
    loop {
        let set = rt.block_on(rpc::validator_set(&rpc_url)).ok();
        if let Some(set) = set.as_ref().filter(|s| s.count > n) {
            let power = rt
                .block_on(rpc::node_status(&new.ports.rpc_url()))
                .map(|s| s.power)
                .unwrap_or(0);
            p.say(format!(
                "{id}: {} validators, total voting power {}; {} has power {power} \
                 (done in {:.1}s)",
                set.count,
                set.total_power,
                new.moniker(),
                p.elapsed_secs()
            ));
            return Ok(());
        }
        if start.elapsed() > WAIT {
            bail!(
                "{id}: the validator set still has {} validators {}s after the \
                 MsgCreateValidator (tx {}); see {}",
                set.map_or("?".into(), |s| s.count.to_string()),
                WAIT.as_secs(),
                created.txhash,
                new.log_file().display()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A client signing with key `name` of the test keyring in `home`.
fn signer(chain: &Chain, rpc: &str, home: &Path, name: &str) -> Result<BlockingChain> {
    let key = KeyringKey {
        home: home.to_path_buf(),
        backend: "test".into(),
        name: name.into(),
    }
    .open(|| None)?;
    let cfg = ChainConfig {
        rpc: rpc.to_string(),
        chain_id: chain.id.clone(),
        gas_price: format!("0{}", chain.fee_denom),
        ..ChainConfig::default()
    };
    Ok(BlockingChain::new(cfg, Some(key))?)
}

/// Sends `msgs` in one transaction and checks that it passed.
fn submit(chain: &BlockingChain, msgs: &[ehrx_chain::msgs::Any], what: &str) -> Result<TxResult> {
    let result = chain
        .block_on(chain.chain().execute_any(msgs))
        .with_context(|| format!("{what} failed"))?;
    ensure!(
        result.code == 0,
        "{what} failed in block {} (tx {}, code {} {}): {}",
        result.height,
        result.txhash,
        result.codespace,
        result.code,
        result.raw_log
    );
    Ok(result)
}

/// Step 1: `wasmd init`, the operator key, the genesis and the configuration of `new`
/// (peers: every node of `nodes`). Returns the operator's address.
fn make_home(log_level: &str, chain: &Chain, nodes: &[Node], new: &Node) -> Result<String> {
    let moniker = new.moniker();
    wasmd(
        &new.home,
        &[
            "init",
            &moniker,
            "--chain-id",
            &chain.id,
            "--default-denom",
            &chain.bond_denom,
        ],
    )?;
    let key = add_key(&new.home, "operator", &new.home.join("operator.mnemonic"))?;
    fs::copy(nodes[0].genesis(), new.genesis())?;
    let peers = nodes
        .iter()
        .chain([new])
        .map(Peer::of)
        .collect::<Result<Vec<_>>>()?;
    let cfg = new.home.join("config/config.toml");
    let text = fs::read_to_string(&cfg)?;
    fs::write(
        &cfg,
        nodecfg::config_toml(&text, new, chain, &peers, log_level)?,
    )?;
    let app = new.home.join("config/app.toml");
    let text = fs::read_to_string(&app)?;
    fs::write(&app, nodecfg::app_toml(&text, new, chain)?)?;
    let client = new.home.join("config/client.toml");
    let text = fs::read_to_string(&client)?;
    fs::write(
        &client,
        nodecfg::client_toml(&text, &chain.id, new.ports.rpc)?,
    )?;
    Ok(key.address)
}

/// The highest height any of `nodes` answers with (0 if none).
fn chain_height(rt: &tokio::runtime::Runtime, nodes: &[Node]) -> u64 {
    nodes
        .iter()
        .filter_map(|n| rt.block_on(rpc::node_status(&n.ports.rpc_url())).ok())
        .map(|s| s.height)
        .max()
        .unwrap_or(0)
}

/// Restarts `node` (its new config) and waits until it caught up and the chain made a
/// block after that.
fn restart(p: &Progress, rt: &tokio::runtime::Runtime, nodes: &[Node], node: &Node) -> Result<()> {
    let others: Vec<Node> = nodes
        .iter()
        .filter(|n| n.index != node.index)
        .cloned()
        .collect();
    process::stop_node(node, Duration::from_secs(20))?;
    let target = chain_height(rt, &others);
    start_nodes(p, std::slice::from_ref(node))?;
    wait_caught_up(p, rt, node, target)?;
    let after = chain_height(rt, nodes);
    let start = Instant::now();
    while chain_height(rt, nodes) <= after {
        ensure!(
            start.elapsed() < WAIT,
            "{}: no block within {}s after restarting {} (its log {})",
            node.chain,
            WAIT.as_secs(),
            node.moniker(),
            node.log_file().display()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    Ok(())
}

/// Adds the new validator to `DIR/<chain>/chain.json` (if there).
fn record_in_chain_json(
    dir: &Path,
    chain: &str,
    node: &Node,
    node_id: &str,
    operator: &str,
) -> Result<()> {
    let path = layout::chain_dir(dir, chain).join("chain.json");
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(());
    };
    let mut v: Value =
        serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    if let Some(list) = v["validators"].as_array_mut() {
        list.push(json!({
            "index": node.index,
            "moniker": node.moniker(),
            "home": node.home,
            "node_id": node_id,
            "operator": operator,
            "rpc": node.ports.rpc_url(),
            "grpc": format!("http://127.0.0.1:{}", node.ports.grpc),
            "api": format!("http://127.0.0.1:{}", node.ports.api),
            "p2p": format!("tcp://127.0.0.1:{}", node.ports.p2p),
            "added": true,
        }));
    }
    fs::write(&path, serde_json::to_vec_pretty(&v)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_dec_is_the_scaled_integer() {
        assert_eq!(legacy_dec_percent(10), "100000000000000000");
        assert_eq!(legacy_dec_percent(1), "10000000000000000");
    }

    #[test]
    fn circuit_messages_use_the_proto_field_numbers() {
        let reset = circuit("wasm1x", MSG_CREATE_VALIDATOR, true);
        assert_eq!(reset.type_url, MSG_RESET);
        // authority: field 1 (0x0a), type urls: field 3 (0x1a).
        assert_eq!(reset.value[0], 0x0a);
        assert_eq!(reset.value[2 + "wasm1x".len()], 0x1a);
        let trip = circuit("wasm1x", MSG_CREATE_VALIDATOR, false);
        assert_eq!(trip.type_url, MSG_TRIP);
        assert_eq!(trip.value[2 + "wasm1x".len()], 0x12);
        let back = MsgTripCircuitBreaker::decode(&*trip.value).unwrap();
        assert_eq!(back.msg_type_urls, [MSG_CREATE_VALIDATOR]);
    }

    #[test]
    fn create_validator_signed_by_the_valoper_address() {
        let op = cosmrs::AccountId::new("wasm", &[1; 20])
            .unwrap()
            .to_string();
        let m = create_validator(&op, "c-val4", &[7; 32], 5, "stake").unwrap();
        assert_eq!(m.type_url, MSG_CREATE_VALIDATOR);
        let back =
            cosmrs::proto::cosmos::staking::v1beta1::MsgCreateValidator::decode(&*m.value).unwrap();
        assert!(back.validator_address.starts_with("wasmvaloper1"));
        assert_eq!(
            back.pubkey.unwrap().type_url,
            "/cosmos.crypto.ed25519.PubKey"
        );
        assert_eq!(back.value.unwrap().amount, "5");
    }
}
