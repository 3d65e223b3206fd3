//! `ehrx-devnet up --config FILE --dir DIR [--chain ID]...`: the chains of the devnet
//! file, each with its validators. The first time, a chain is made from nothing (homes,
//! keys, genesis with one gentx per validator, node configuration); later, its nodes are
//! started again from their state. Then every node runs in the background (log and pid
//! file in its home) and `up` waits until the chain produces blocks.
//!
//! Then (unless `--chains-only`) the rest of the network: [`crate::network`].

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::cmd::{ConfigArg, DirArg};
use crate::config::{Chain, Devnet};
use crate::layout::{self, Node};
use crate::nodecfg::{self, Peer};
use crate::process::{self, wasmd};
use crate::progress::Progress;
use crate::{genesis, network, ports, rpc};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub dir: DirArg,
    /// Validators per chain instead of the file's (1: a fast inner loop). Fixed when the
    /// devnet is made; a made devnet keeps its count.
    #[arg(long, value_name = "N")]
    pub validators: Option<u8>,
    /// Only the chains (no contracts, links or relayers); with --chain, only those.
    #[arg(long)]
    pub chains_only: bool,
    /// With --chains-only: only these chains (repeat the flag); default: all of the file.
    #[arg(long = "chain", value_name = "ID", requires = "chains_only")]
    pub chains: Vec<String>,
}

/// Marks a chain whose genesis and homes are complete.
const DONE: &str = "init.done";
/// The keyring backend of every key the devnet makes (files, no passphrase: a devnet).
const KEYRING: [&str; 2] = ["--keyring-backend", "test"];
/// How long `up` waits for a chain's first block.
const BLOCK_WAIT: Duration = Duration::from_secs(120);

pub fn run(args: Args) -> Result<()> {
    let p = Progress::new();
    let dir = args.dir.path();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let _lock = layout::lock(&dir)?;
    let config = args.config.path();
    save_config(&config, &dir, args.validators)?;
    let devnet = layout::load(&dir, None)?;
    p.say(format!(
        "devnet {} from {} ({})",
        dir.display(),
        config.display(),
        devnet
            .chains
            .iter()
            .filter(|c| !c.on_demand)
            .map(|c| format!("{} x{}", c.id, c.validators))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if !args.chains_only {
        let repo = network::repo_root();
        let ctx = network::Ctx {
            p: &p,
            devnet: &devnet,
            dir: &dir,
            repo: &repo,
        };
        return network::up(&ctx);
    }
    for id in &args.chains {
        if devnet.chain(id).is_none() {
            bail!("--chain {id}: no such [[chain]] in {}", config.display());
        }
    }
    let chosen: Vec<&Chain> = devnet
        .chains
        .iter()
        .filter(|c| args.chains.is_empty() || args.chains.contains(&c.id))
        .collect();
    for chain in chosen {
        let nodes = layout::nodes(&devnet, &dir, &chain.id)?;
        init_chain_if_needed(&p, &devnet, chain, &dir, &nodes)?;
        let started = start_nodes(&p, &nodes)?;
        wait_for_blocks(&p, &chain.id, &nodes, started)?;
    }
    p.say(format!(
        "up: done in {:.1}s (ehrx-devnet status --dir {})",
        p.elapsed_secs(),
        dir.display()
    ));
    Ok(())
}

/// Makes the chain the first time (see [`init_chain`]); a made chain is left as it is.
pub fn init_chain_if_needed(
    p: &Progress,
    devnet: &Devnet,
    chain: &Chain,
    dir: &Path,
    nodes: &[Node],
) -> Result<()> {
    if layout::chain_dir(dir, &chain.id).join(DONE).exists() {
        p.say(format!(
            "{}: made before; starting its nodes again",
            chain.id
        ));
        return Ok(());
    }
    init_chain(p, devnet, chain, dir, nodes)
}

/// Keeps a copy of the devnet file in DIR (status, down and start-node read it). A DIR
/// made from another file is refused: its chains would not match.
fn save_config(config: &Path, dir: &Path, validators: Option<u8>) -> Result<()> {
    let text = fs::read_to_string(config)
        .with_context(|| format!("reading the devnet file {}", config.display()))?;
    let saved = layout::saved_config(dir);
    let made = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .any(|e| e.path().join(DONE).exists());
    if let Ok(old) = fs::read_to_string(&saved) {
        if old != text && made {
            bail!(
                "{} was made from another devnet file (its copy: {}); run \
                 `ehrx-devnet down --clean --dir {}` first, or use that file",
                dir.display(),
                saved.display(),
                dir.display()
            );
        }
    }
    let marker = layout::validators_override(dir);
    let old = fs::read_to_string(&marker)
        .ok()
        .and_then(|t| t.trim().parse::<u8>().ok());
    if made {
        if let Some(n) = validators.filter(|n| Some(*n) != old) {
            bail!(
                "{} was made with {} validators per chain, not {n}; run `ehrx-devnet down \
                 --clean --dir {}` first to make it again with {n}",
                dir.display(),
                old.map_or("the file's".to_string(), |o| o.to_string()),
                dir.display()
            );
        }
    } else {
        match validators {
            Some(n) => fs::write(&marker, format!("{n}\n"))?,
            None => {
                let _ = fs::remove_file(&marker);
            }
        }
    }
    fs::write(saved, text)?;
    Ok(())
}

/// An account or operator key made by `wasmd keys add`.
pub struct Key {
    pub address: String,
}

/// `wasmd keys add NAME` in `home`; the mnemonic goes to `mnemonic_file` (0600).
pub fn add_key(home: &Path, name: &str, mnemonic_file: &Path) -> Result<Key> {
    let mut args = vec!["keys", "add", name, "--output", "json"];
    args.extend(KEYRING);
    let out = wasmd(home, &args)?;
    let json_start = out.find('{').context("keys add printed no JSON")?;
    let v: Value = serde_json::from_str(out[json_start..].trim())
        .with_context(|| format!("keys add {name}: unexpected output {out:?}"))?;
    let address = v["address"].as_str().context("keys add: no address")?;
    let mnemonic = v["mnemonic"].as_str().context("keys add: no mnemonic")?;
    write_private(mnemonic_file, format!("{mnemonic}\n").as_bytes())?;
    Ok(Key {
        address: address.to_string(),
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

fn private_dir(path: &Path) -> Result<()> {
    fs::create_dir_all(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    Ok(())
}

fn coins(entries: &[(u128, &str)]) -> Value {
    let mut list: Vec<(&str, u128)> = entries
        .iter()
        .filter(|(a, _)| *a > 0)
        .map(|(a, d)| (*d, *a))
        .collect();
    list.sort();
    Value::Array(
        list.into_iter()
            .map(|(d, a)| json!({"denom": d, "amount": a.to_string()}))
            .collect(),
    )
}

/// Makes a chain from nothing: see the module comment.
fn init_chain(
    p: &Progress,
    devnet: &Devnet,
    chain: &Chain,
    dir: &Path,
    nodes: &[Node],
) -> Result<()> {
    let id = chain.id.as_str();
    let cdir = layout::chain_dir(dir, id);
    if cdir.exists() {
        p.say(format!(
            "{id}: removing an unfinished earlier attempt ({})",
            cdir.display()
        ));
        for node in nodes {
            process::stop_node(node, Duration::from_secs(20))?;
        }
        fs::remove_dir_all(&cdir)?;
    }
    fs::create_dir_all(&cdir)?;

    // Accounts.
    let accounts_home = layout::accounts_home(dir, id);
    let mnemonics = accounts_home.join("mnemonics");
    private_dir(&mnemonics)?;
    let mut addresses = BTreeMap::new();
    let mut genesis_accounts = Vec::new();
    p.say(format!("{id}: account keys ({})", accounts_home.display()));
    for a in devnet.accounts_on(id) {
        let key = add_key(
            &accounts_home,
            &a.name,
            &mnemonics.join(format!("{}.txt", a.name)),
        )?;
        genesis_accounts.push(json!({
            "address": key.address,
            "coins": coins(&[(a.fee, &chain.fee_denom), (a.bond, &chain.bond_denom)]),
        }));
        addresses.insert(a.name.clone(), key.address);
    }
    let admin = devnet
        .accounts_on(id)
        .find(|a| a.role == crate::config::Role::Admin)
        .and_then(|a| addresses.get(&a.name))
        .with_context(|| format!("{id}: no admin account on this chain"))?
        .clone();

    // Validator homes and operator keys.
    p.say(format!(
        "{id}: {} validator homes and operator keys (wasmd init)",
        nodes.len()
    ));
    let mut operators = Vec::new();
    for node in nodes {
        let mut args = vec!["init", "", "--chain-id", id, "--default-denom"];
        let moniker = node.moniker();
        args[1] = &moniker;
        args.push(&chain.bond_denom);
        wasmd(&node.home, &args)?;
        let key = add_key(&node.home, "operator", &node.home.join("operator.mnemonic"))?;
        genesis_accounts.push(json!({
            "address": key.address,
            "coins": coins(&[(chain.operator_fee, &chain.fee_denom),
                             (chain.self_bond, &chain.bond_denom)]),
        }));
        operators.push(key.address);
    }

    // Genesis accounts, then one gentx per validator, each made in its own home.
    let node0 = &nodes[0];
    let accounts_file = cdir.join("genesis-accounts.json");
    fs::write(
        &accounts_file,
        serde_json::to_vec_pretty(&genesis_accounts)?,
    )?;
    p.say(format!(
        "{id}: genesis accounts ({})",
        genesis_accounts.len()
    ));
    wasmd(
        &node0.home,
        &[
            "genesis",
            "bulk-add-genesis-account",
            &accounts_file.to_string_lossy(),
        ],
    )?;
    let gentx_dir = node0.home.join("config/gentx");
    fs::create_dir_all(&gentx_dir)?;
    p.say(format!("{id}: {} gentxs", nodes.len()));
    let bond = format!("{}{}", chain.self_bond, chain.bond_denom);
    for node in nodes {
        if node.index != 0 {
            fs::copy(node0.genesis(), node.genesis())?;
        }
        let out = gentx_dir.join(format!("gentx-val{}.json", node.index));
        let (moniker, p2p, out) = (
            node.moniker(),
            node.ports.p2p.to_string(),
            out.to_string_lossy().into_owned(),
        );
        let mut args = vec![
            "genesis",
            "gentx",
            "operator",
            &bond,
            "--chain-id",
            id,
            "--moniker",
            &moniker,
            "--ip",
            "127.0.0.1",
            "--p2p-port",
            &p2p,
            "--output-document",
            &out,
        ];
        args.extend(KEYRING);
        wasmd(&node.home, &args)?;
    }
    wasmd(&node0.home, &["genesis", "collect-gentxs"])?;

    // The devnet's genesis edits (staking lock, permissions, slashing), checked by wasmd.
    let text = fs::read_to_string(node0.genesis())?;
    let mut g: Value = serde_json::from_str(&text)?;
    genesis::apply(&mut g, chain, &admin)?;
    let power = genesis::gentx_power(&g);
    fs::write(node0.genesis(), serde_json::to_vec_pretty(&g)?)?;
    wasmd(&node0.home, &["genesis", "validate"])
        .with_context(|| format!("{id}: the edited genesis does not validate"))?;
    p.say(format!(
        "{id}: genesis: {} validators, total power {power}; staking locked by x/circuit; \
         upload {:?}",
        nodes.len(),
        chain.upload
    ));

    // Node configuration: the same genesis everywhere, peers among the chain's own nodes.
    let peers = nodes.iter().map(Peer::of).collect::<Result<Vec<_>>>()?;
    for node in nodes {
        if node.index != 0 {
            fs::copy(node0.genesis(), node.genesis())?;
        }
        let cfg = node.home.join("config/config.toml");
        let text = fs::read_to_string(&cfg)?;
        let out = nodecfg::config_toml(&text, node, chain, &peers, &devnet.network.log_level)
            .with_context(|| format!("{}", cfg.display()))?;
        fs::write(&cfg, out)?;
        let app = node.home.join("config/app.toml");
        let text = fs::read_to_string(&app)?;
        fs::write(
            &app,
            nodecfg::app_toml(&text, node, chain).with_context(|| format!("{}", app.display()))?,
        )?;
        let client = node.home.join("config/client.toml");
        let text = fs::read_to_string(&client)?;
        fs::write(&client, nodecfg::client_toml(&text, id, node.ports.rpc)?)?;
    }
    // The accounts' home: `wasmd --home <accounts> tx ...` talks to validator 0.
    fs::create_dir_all(accounts_home.join("config"))?;
    let text = fs::read_to_string(node0.home.join("config/client.toml"))?;
    fs::write(
        accounts_home.join("config/client.toml"),
        nodecfg::client_toml(&text, id, node0.ports.rpc)?,
    )?;

    // What was made, for people and for the next slices (contracts, Hermes).
    let summary = json!({
        "chain_id": id,
        "accounts_home": accounts_home,
        "accounts": addresses,
        "validators": nodes.iter().zip(&operators).zip(&peers).map(|((n, op), peer)| json!({
            "index": n.index,
            "moniker": n.moniker(),
            "home": n.home,
            "node_id": peer.id,
            "operator": op,
            "rpc": n.ports.rpc_url(),
            "grpc": format!("http://127.0.0.1:{}", n.ports.grpc),
            "api": format!("http://127.0.0.1:{}", n.ports.api),
            "p2p": format!("tcp://127.0.0.1:{}", n.ports.p2p),
        })).collect::<Vec<_>>(),
    });
    fs::write(
        cdir.join("chain.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    fs::write(cdir.join(DONE), b"")?;
    p.say(format!(
        "{id}: made ({})",
        cdir.join("chain.json").display()
    ));
    Ok(())
}

/// The height stored in a node's state (0 for a fresh node).
pub fn stored_height(node: &Node) -> u64 {
    let path = node.home.join("data/priv_validator_state.json");
    fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| match &v["height"] {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        })
        .unwrap_or(0)
}

/// Starts the nodes that do not run; the ones it started.
pub fn start_nodes(p: &Progress, nodes: &[Node]) -> Result<Vec<Node>> {
    let mut started = Vec::new();
    for node in nodes {
        if let Some(pid) = process::running_pid(node) {
            p.say(format!("{}: already running (pid {pid})", node.moniker()));
            continue;
        }
        check_ports(node)?;
        let pid = process::spawn_node(node)?;
        p.say(format!(
            "{}: started pid {pid} (RPC {}, log {})",
            node.moniker(),
            node.ports.rpc,
            node.log_file().display()
        ));
        started.push(node.clone());
    }
    Ok(started)
}

fn check_ports(node: &Node) -> Result<()> {
    for (service, port) in node.ports.all() {
        if ports::in_use(port) {
            bail!(
                "{}: port {port} ({}) on 127.0.0.1 is in use by another process (`ss -ltnp | \
                 grep :{port}`); stop it, or move this devnet's port_base",
                node.moniker(),
                service.name()
            );
        }
    }
    Ok(())
}

/// Waits until every node of the chain answers with a block beyond the stored state.
pub fn wait_for_blocks(
    p: &Progress,
    chain: &str,
    nodes: &[Node],
    started: Vec<Node>,
) -> Result<()> {
    let want = nodes.iter().map(stored_height).max().unwrap_or(0) + 1;
    p.say(format!(
        "{chain}: waiting for block {want} on all {} nodes",
        nodes.len()
    ));
    let rt = rpc::runtime()?;
    let start = Instant::now();
    let mut last_note = Instant::now();
    // wasmd has been seen to exit at once, with nothing in its log, when started right
    // after its home was made or its last run stopped; started again it runs. Once a node.
    let mut retried: Vec<u8> = Vec::new();
    loop {
        for node in &started {
            if process::running_pid(node).is_none() && !retried.contains(&node.index) {
                retried.push(node.index);
                std::thread::sleep(Duration::from_secs(1));
                if process::running_pid(node).is_none() {
                    let pid = process::spawn_node(node)?;
                    p.say(format!(
                        "{}: exited during start; started again (pid {pid})",
                        node.moniker()
                    ));
                }
                continue;
            }
            if process::running_pid(node).is_none() {
                bail!(
                    "{}: wasmd exited during start (log {}):\n{}",
                    node.moniker(),
                    node.log_file().display(),
                    process::log_tail(&node.log_file(), 25)
                );
            }
        }
        let heights: Vec<Option<u64>> = nodes
            .iter()
            .map(|n| {
                rt.block_on(rpc::node_status(&n.ports.rpc_url()))
                    .ok()
                    .map(|s| s.height)
            })
            .collect();
        if heights.iter().all(|h| h.is_some_and(|h| h >= want)) {
            p.say(format!(
                "{chain}: producing blocks (heights {}) after {:.1}s",
                show_heights(&heights),
                start.elapsed().as_secs_f64()
            ));
            return Ok(());
        }
        if start.elapsed() > BLOCK_WAIT {
            let n0 = &nodes[0];
            bail!(
                "{chain}: no block {want} on every node within {}s (heights {}); validator \
                 0's log {}:\n{}",
                BLOCK_WAIT.as_secs(),
                show_heights(&heights),
                n0.log_file().display(),
                process::log_tail(&n0.log_file(), 20)
            );
        }
        if last_note.elapsed() >= Duration::from_secs(3) {
            p.say(format!(
                "{chain}: still waiting for block {want}: heights {} ({:.0}s)",
                show_heights(&heights),
                start.elapsed().as_secs_f64()
            ));
            last_note = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn show_heights(heights: &[Option<u64>]) -> String {
    heights
        .iter()
        .map(|h| h.map_or("-".to_string(), |h| h.to_string()))
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coins_sorted_without_zeros() {
        let c = coins(&[(5, "ufee"), (0, "zzz"), (7, "stake")]);
        assert_eq!(
            c,
            json!([{"denom": "stake", "amount": "7"}, {"denom": "ufee", "amount": "5"}])
        );
    }

    #[test]
    fn a_directory_made_from_another_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, dir) = (
            tmp.path().join("a.toml"),
            tmp.path().join("b.toml"),
            tmp.path().join("net"),
        );
        fs::write(&a, "version = 1\n").unwrap();
        fs::write(&b, "version = 1 # other\n").unwrap();
        fs::create_dir_all(dir.join("hospital-a")).unwrap();
        save_config(&a, &dir, None).unwrap();
        // Nothing made yet: another file may replace the copy.
        save_config(&b, &dir, Some(1)).unwrap();
        fs::write(dir.join("hospital-a").join(DONE), b"").unwrap();
        save_config(&b, &dir, Some(1)).unwrap();
        save_config(&b, &dir, None).unwrap();
        let err = save_config(&a, &dir, None).unwrap_err().to_string();
        assert!(err.contains("down --clean"), "{err}");
        // Made with one validator a chain: another count needs a new devnet.
        let err = save_config(&b, &dir, Some(4)).unwrap_err().to_string();
        assert!(err.contains("made with 1 validators"), "{err}");
    }

    #[test]
    fn stored_height_of_a_node() {
        let tmp = tempfile::tempdir().unwrap();
        let node = Node {
            chain: "c".into(),
            index: 0,
            home: tmp.path().to_path_buf(),
            ports: ports::NodePorts::of(26000, 0),
        };
        assert_eq!(stored_height(&node), 0);
        fs::create_dir_all(tmp.path().join("data")).unwrap();
        fs::write(
            tmp.path().join("data/priv_validator_state.json"),
            r#"{"height": "128", "round": 0, "step": 3}"#,
        )
        .unwrap();
        assert_eq!(stored_height(&node), 128);
    }
}
