//! Hermes 1.13 instances of a devnet directory: their configuration, keys, connection and
//! channel creation, start and stop, and failover to another validator.
//!
//! ```text
//! DIR/hermes/<relayer>/config.toml   rendered from relayer-config/hermes.toml.tmpl (pull mode)
//! DIR/hermes/<relayer>/keys/         its key store: the [[relayer]] account's key per chain
//! DIR/hermes/<relayer>/hermes.log    `hermes start`'s output; hermes.pid while it should run
//! DIR/hermes/<relayer>/hermes-cli.log  the one-shot commands (keys, create, clear, validate)
//! DIR/hermes/ends.json               the channel ends created, for `clear packets`
//! DIR/hermes/watch.pid, watch.log    the supervisor (`ehrx-devnet watch`)
//! ```
//!
//! **One node per chain.** Hermes 1.13 takes one RPC (and gRPC) address per chain. Each
//! instance starts on validator `[[relayer]] validator` of every chain; when that node
//! stops answering, [`failover`] rewrites the instance's config against the next validator
//! whose RPC answers and restarts it (`ehrx-devnet watch` does this every few seconds).
//! The validator in use is read back from the config itself (its `rpc_addr`), so the
//! config file is the one record of it.
//!
//! **Two instances on one path.** The standard redundancy: both relay every packet of the
//! channel, each with its own account (two processes on one account race on its sequence;
//! Hermes' FAQ: "if two instances of Hermes operate on the same chain, they need to access
//! different wallets"). A packet is still received once: the chain keeps a receipt per
//! packet, and ibc-go's `RedundantRelayDecorator` (in wasmd's ante handler) refuses at
//! CheckTx a transaction whose packet messages (recv, ack, timeout) were all relayed
//! already (code 22, "packet messages are redundant": the losing instance logs it and pays
//! no fee), while a redundant message inside a mixed transaction is a no-op since ibc-go
//! #268. Killing one instance mid-flight loses nothing: the other relays the packet, and a
//! restarted instance clears what is pending (`clear_on_start`, [`clear_packets`]).

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::{parse_duration, Devnet, Relayer};
use crate::layout;
use crate::ports::{self, NodePorts};
use crate::process;
use crate::progress::Progress;
use crate::rpc;

/// The configuration template shared with scripts/devnet.sh.
const TEMPLATE: &str = include_str!("../../../relayer-config/hermes.toml.tmpl");
const TEMPLATE_NAME: &str = "relayer-config/hermes.toml.tmpl";
/// Hermes' pull interval (relayer-config/README.md: 500 ms measured best with 500 ms blocks).
pub const PULL_INTERVAL: &str = "500ms";
/// Hermes' log level: `info` shows every relayed batch.
pub const LOG_LEVEL: &str = "info";
/// How long [`start`] waits for a healthy Hermes.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long [`start`] waits for its ports to be free.
const PORT_WAIT: Duration = Duration::from_secs(5);
/// TERM, then KILL after this.
const STOP_GRACE: Duration = Duration::from_secs(20);
/// What Hermes logs once its workers run.
const STARTED: &str = "Hermes has started";

/// One end of a connection or channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Side {
    pub chain_id: String,
    pub client_id: String,
    pub connection_id: String,
    /// Empty for a connection's end.
    #[serde(default)]
    pub port_id: String,
    #[serde(default)]
    pub channel_id: String,
}

/// The `result` of `hermes --json create connection` and `create channel`: the two ends
/// (Hermes' `Connection` / `Channel`; ids are absent until the handshake made them).
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectionEnds {
    pub a_side: HermesEnd,
    pub b_side: HermesEnd,
}

/// One end as Hermes prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct HermesEnd {
    pub client_id: String,
    pub connection_id: Option<String>,
    #[serde(default)]
    pub port_id: Option<String>,
    #[serde(default)]
    pub channel_id: Option<String>,
}

impl HermesEnd {
    fn side(&self, chain_id: &str, what: &str) -> Result<Side> {
        let connection_id = self
            .connection_id
            .clone()
            .with_context(|| format!("Hermes printed no connection id for {chain_id} ({what})"))?;
        Ok(Side {
            chain_id: chain_id.to_string(),
            client_id: self.client_id.clone(),
            connection_id,
            port_id: self.port_id.clone().unwrap_or_default(),
            channel_id: self.channel_id.clone().unwrap_or_default(),
        })
    }
}

/// `<dir>/hermes/<name>/`: config.toml, keys/, hermes.log, hermes.pid.
pub fn instance_dir(dir: &Path, relayer: &str) -> PathBuf {
    dir.join("hermes").join(relayer)
}

fn config_path(dir: &Path, relayer: &str) -> PathBuf {
    instance_dir(dir, relayer).join("config.toml")
}

fn log_path(dir: &Path, relayer: &str) -> PathBuf {
    instance_dir(dir, relayer).join("hermes.log")
}

fn pid_path(dir: &Path, relayer: &str) -> PathBuf {
    instance_dir(dir, relayer).join("hermes.pid")
}

fn cli_log(dir: &Path, relayer: &str) -> PathBuf {
    instance_dir(dir, relayer).join("hermes-cli.log")
}

/// The Hermes binary: `$EHRX_HERMES`, else `hermes` on PATH, else the tool cache's.
pub fn hermes_bin() -> PathBuf {
    process::tool_bin("hermes", "EHRX_HERMES")
}

/// The chains of a relayer's channels, in the file's order.
pub fn relayer_chains<'a>(devnet: &'a Devnet, relayer: &Relayer) -> Vec<&'a str> {
    devnet
        .chains
        .iter()
        .map(|c| c.id.as_str())
        .filter(|id| {
            devnet
                .channels
                .iter()
                .filter(|ch| relayer.channels.contains(&ch.name))
                .any(|ch| ch.a == *id || ch.b == *id)
        })
        .collect()
}

/// The relayer named `name` in the devnet file.
pub fn relayer<'a>(devnet: &'a Devnet, name: &str) -> Result<&'a Relayer> {
    devnet
        .relayers
        .iter()
        .find(|r| r.name == name)
        .with_context(|| {
            let known: Vec<&str> = devnet.relayers.iter().map(|r| r.name.as_str()).collect();
            format!(
                "no [[relayer]] named {name:?} in the devnet file (it has: {})",
                known.join(", ")
            )
        })
}

/// What a config is rendered for: an instance, and the validator it uses on each chain.
struct Placement<'a> {
    devnet: &'a Devnet,
    dir: &'a Path,
    relayer: &'a Relayer,
    nodes: Vec<(&'a str, u8)>,
}

/// The instance's configuration text: the template's head once and its chain block once
/// per chain, every placeholder filled, each chain's RPC and gRPC those of its validator,
/// `key_name` the relayer's account.
fn render_template(template: &str, at: &Placement) -> Result<String> {
    let Placement {
        devnet,
        dir,
        relayer,
        ..
    } = *at;
    let begin = template
        .find("# ----- BEGIN CHAIN")
        .with_context(|| format!("{TEMPLATE_NAME} has no \"# ----- BEGIN CHAIN\" line"))?;
    let end = template[begin..]
        .find("# ----- END CHAIN")
        .map(|i| begin + i)
        .with_context(|| format!("{TEMPLATE_NAME} has no \"# ----- END CHAIN\" line"))?;
    let end = template[end..]
        .find('\n')
        .map_or(template.len(), |i| end + i + 1);
    let (head, block) = (&template[..begin], &template[begin..end]);
    anyhow::ensure!(!at.nodes.is_empty(), "{}: no chain to relay", relayer.name);

    let rest = relayer.rest_port.to_string();
    let telemetry = (u32::from(relayer.rest_port) + 1).to_string();
    let mut out = fill(
        head,
        &[
            ("LOG_LEVEL", LOG_LEVEL),
            ("REST_PORT", &rest),
            ("TELEMETRY_PORT", &telemetry),
        ],
    );
    let key_store = instance_dir(dir, &relayer.name).join("keys");
    let key_store = key_store.to_string_lossy();
    for &(id, v) in &at.nodes {
        let (index, chain) = devnet
            .chain(id)
            .with_context(|| format!("{}: no [[chain]] {id:?} in the devnet file", relayer.name))?;
        anyhow::ensure!(
            v < chain.validators,
            "{}: {id} has validators 0..{}, not {v}",
            relayer.name,
            chain.validators
        );
        let ports = NodePorts::of(devnet.chain_port_base(index), v);
        let unbonding = parse_duration(&chain.unbonding_time).map_err(anyhow::Error::msg)?;
        // Hermes' own default: 2/3 of the unbonding time.
        let trusting = format!("{}s", unbonding.as_secs() * 2 / 3);
        out.push_str(&fill(
            block,
            &[
                ("CHAIN_ID", id),
                ("RPC_PORT", &ports.rpc.to_string()),
                ("GRPC_PORT", &ports.grpc.to_string()),
                ("KEY_STORE", &key_store),
                ("FEE_DENOM", &chain.fee_denom),
                ("PULL_INTERVAL", PULL_INTERVAL),
                ("TRUSTING_PERIOD", &trusting),
                ("UNBONDING_HUMAN", &chain.unbonding_time),
            ],
        ));
    }
    let left = leftover_placeholders(&out);
    if !left.is_empty() {
        bail!(
            "{TEMPLATE_NAME} has placeholders this tool does not fill: {}; add them to \
             packages/devnet/src/hermes.rs (render) or remove them from the template",
            left.join(" ")
        );
    }
    // key_name: the relayer's own account (the template says 'relayer').
    let mut doc: toml_edit::DocumentMut = out
        .parse()
        .with_context(|| format!("the config rendered from {TEMPLATE_NAME} is not TOML"))?;
    let tables = doc["chains"]
        .as_array_of_tables_mut()
        .context("the rendered config has no [[chains]]")?;
    for t in tables.iter_mut() {
        t["key_name"] = toml_edit::value(relayer.account.as_str());
    }
    Ok(doc.to_string())
}

fn fill(text: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(text.to_string(), |t, (name, value)| {
        t.replace(&format!("@{name}@"), value)
    })
}

/// `@NAME@` placeholders left outside comments.
fn leftover_placeholders(text: &str) -> Vec<String> {
    let mut left = Vec::new();
    for line in text.lines() {
        let code = line.split('#').next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find('@') {
            let after = &rest[i + 1..];
            match after.find('@') {
                Some(j)
                    if j > 0
                        && after[..j]
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c == '_') =>
                {
                    let name = format!("@{}@", &after[..j]);
                    if !left.contains(&name) {
                        left.push(name);
                    }
                    rest = &after[j + 1..];
                }
                _ => rest = after,
            }
        }
    }
    left
}

/// Writes the instance's config for `chains` (validated by `hermes config validate`
/// before it replaces the old one), each chain's RPC/gRPC taken from validator
/// `nodes[chain]` (absent: `relayer.validator`). Returns its path.
pub fn write_config(
    devnet: &Devnet,
    dir: &Path,
    relayer: &Relayer,
    chains: &[&str],
    nodes: &BTreeMap<String, u8>,
) -> Result<PathBuf> {
    let placement = Placement {
        devnet,
        dir,
        relayer,
        nodes: chains
            .iter()
            .map(|c| (*c, nodes.get(*c).copied().unwrap_or(relayer.validator)))
            .collect(),
    };
    let text = render_template(TEMPLATE, &placement)?;
    let idir = instance_dir(dir, &relayer.name);
    fs::create_dir_all(idir.join("keys"))
        .with_context(|| format!("creating {}", idir.display()))?;
    let path = config_path(dir, &relayer.name);
    let tmp = path.with_extension("toml.tmp");
    fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    run_cli(dir, &relayer.name, &tmp, &["config", "validate"]).with_context(|| {
        format!(
            "{}: checking the config rendered from {TEMPLATE_NAME} with `hermes config \
             validate` (kept as {})",
            relayer.name,
            tmp.display()
        )
    })?;
    fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Runs `hermes --config CONFIG ARGS` to completion, its output appended to the
/// instance's hermes-cli.log; its stdout, or an error with the output's tail.
fn run_cli(dir: &Path, relayer: &str, config: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(hermes_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| {
            format!(
                "cannot run {} (install it with scripts/install-tools.sh hermes, or set \
                 EHRX_HERMES)",
                hermes_bin().display()
            )
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = cli_log(dir, relayer);
    if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(&log) {
        let _ = writeln!(f, "\n+ hermes {}\n{stdout}{stderr}", args.join(" "));
    }
    if !out.status.success() {
        let text = format!("{stdout}{stderr}");
        let lines: Vec<&str> = text.lines().collect();
        bail!(
            "hermes {} failed ({}):\n{}  full output: {}",
            args.join(" "),
            out.status,
            lines[lines.len().saturating_sub(15)..]
                .iter()
                .map(|l| format!("    | {l}\n"))
                .collect::<String>(),
            log.display()
        );
    }
    Ok(stdout)
}

/// `hermes --json ARGS` with the instance's config: the `result` of its last
/// `"status": "success"` line.
fn hermes_json(dir: &Path, relayer: &str, args: &[&str]) -> Result<serde_json::Value> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run_cli(dir, relayer, &config_path(dir, relayer), &all)?;
    json_result(&out).with_context(|| {
        format!(
            "hermes {}: (full output: {})",
            args.join(" "),
            cli_log(dir, relayer).display()
        )
    })
}

/// The `result` of the last `{"result": ..., "status": "success"}` line of Hermes'
/// `--json` output (log lines, also JSON, are skipped); an error with Hermes' own error
/// text if it printed `"status": "error"`.
pub fn json_result(stdout: &str) -> Result<serde_json::Value> {
    let mut found = None;
    for line in stdout.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) else {
            continue;
        };
        match v.get("status").and_then(|s| s.as_str()) {
            Some("success") => found = Some(v["result"].clone()),
            Some("error") => bail!("Hermes says: {}", v["result"]),
            _ => {}
        }
    }
    found.context("Hermes printed no `\"status\": \"success\"` result")
}

/// Imports the instance's key for every chain: the [[relayer]] account's mnemonic, made by
/// `up` in `<dir>/<chain>/accounts/mnemonics/<account>.txt`.
pub fn import_keys(devnet: &Devnet, dir: &Path, relayer: &Relayer, chains: &[&str]) -> Result<()> {
    let config = config_path(dir, &relayer.name);
    anyhow::ensure!(
        config.exists(),
        "{}: no {} (write the config first)",
        relayer.name,
        config.display()
    );
    for chain in chains {
        anyhow::ensure!(
            devnet.accounts_on(chain).any(|a| a.name == relayer.account),
            "{}: account {:?} does not exist on {chain} (devnet file)",
            relayer.name,
            relayer.account
        );
        let mnemonic = layout::accounts_home(dir, chain)
            .join("mnemonics")
            .join(format!("{}.txt", relayer.account));
        anyhow::ensure!(
            mnemonic.exists(),
            "{}: no {}: {chain} was made without account {:?} (run `ehrx-devnet up` first; an \
             account added to the file after the chain was made needs `down --clean` and `up`)",
            relayer.name,
            mnemonic.display(),
            relayer.account
        );
        let mnemonic = mnemonic.to_string_lossy();
        run_cli(
            dir,
            &relayer.name,
            &config,
            &[
                "keys",
                "add",
                "--chain",
                chain,
                "--key-name",
                &relayer.account,
                "--mnemonic-file",
                &mnemonic,
                "--overwrite",
            ],
        )
        .with_context(|| format!("{}: importing its key for {chain}", relayer.name))?;
    }
    Ok(())
}

/// The status Hermes reports for light client `client` on `chain` (`Active`, `Expired`,
/// `Frozen`).
pub fn client_status(dir: &Path, relayer: &Relayer, chain: &str, client: &str) -> Result<String> {
    let v = hermes_json(
        dir,
        &relayer.name,
        &[
            "query", "client", "status", "--chain", chain, "--client", client,
        ],
    )?;
    v.as_str()
        .map(str::to_string)
        .with_context(|| format!("hermes query client status: unexpected result {v}"))
}

/// `hermes create connection --a-chain A --b-chain B` (new clients on both chains): the two
/// ends, client and connection ids filled.
pub fn create_connection(
    _devnet: &Devnet,
    dir: &Path,
    relayer: &Relayer,
    a: &str,
    b: &str,
) -> Result<(Side, Side)> {
    let v = hermes_json(
        dir,
        &relayer.name,
        &["create", "connection", "--a-chain", a, "--b-chain", b],
    )
    .with_context(|| format!("connection {a} <-> {b} (relayer {})", relayer.name))?;
    let ends: ConnectionEnds = serde_json::from_value(v.clone())
        .with_context(|| format!("unexpected result of create connection: {v}"))?;
    Ok((
        ends.a_side.side(a, "create connection")?,
        ends.b_side.side(b, "create connection")?,
    ))
}

/// `hermes create channel` on connection `a_connection` of chain `a`: the channel ids
/// (a's, b's). Both ends are recorded in `<dir>/hermes/ends.json` ([`recorded_ends`]: what
/// `watch` clears after a restart).
#[allow(clippy::too_many_arguments)]
pub fn create_channel(
    _devnet: &Devnet,
    dir: &Path,
    relayer: &Relayer,
    a: &str,
    a_connection: &str,
    a_port: &str,
    b_port: &str,
    version: &str,
    ordering: &str,
) -> Result<(String, String)> {
    let what = format!(
        "channel {a_port} <-> {b_port} on {a} {a_connection} (relayer {})",
        relayer.name
    );
    let v = hermes_json(
        dir,
        &relayer.name,
        &[
            "create",
            "channel",
            "--a-chain",
            a,
            "--a-connection",
            a_connection,
            "--a-port",
            a_port,
            "--b-port",
            b_port,
            "--order",
            ordering,
            "--channel-version",
            version,
            "--yes",
        ],
    )
    .with_context(|| what.clone())?;
    let ends: ConnectionEnds = serde_json::from_value(v.clone())
        .with_context(|| format!("{what}: unexpected result of create channel: {v}"))?;
    let b = counterparty_chain(dir, relayer, a, &ends.a_side.client_id)
        .with_context(|| what.clone())?;
    let sa = ends.a_side.side(a, "create channel")?;
    let sb = ends.b_side.side(&b, "create channel")?;
    anyhow::ensure!(
        !sa.channel_id.is_empty() && !sb.channel_id.is_empty(),
        "{what}: create channel printed no channel ids: {v}"
    );
    record_ends(dir, &[sa.clone(), sb.clone()])?;
    Ok((sa.channel_id, sb.channel_id))
}

/// The chain that client `client_id` of chain `a` follows (Hermes prints no chain ids for a
/// channel's ends): `hermes query client state`'s `chain_id`.
fn counterparty_chain(dir: &Path, relayer: &Relayer, a: &str, client_id: &str) -> Result<String> {
    let v = hermes_json(
        dir,
        &relayer.name,
        &[
            "query", "client", "state", "--chain", a, "--client", client_id,
        ],
    )?;
    find_key(&v, "chain_id")
        .with_context(|| format!("client {client_id} of {a}: no chain_id in its state: {v}"))
}

/// The first string value of `key` anywhere in `v` (depth first).
fn find_key(v: &serde_json::Value, key: &str) -> Option<String> {
    match v {
        serde_json::Value::Object(m) => m
            .get(key)
            .and_then(|x| x.as_str().map(str::to_string))
            .or_else(|| m.values().find_map(|x| find_key(x, key))),
        serde_json::Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}

fn ends_path(dir: &Path) -> PathBuf {
    dir.join("hermes").join("ends.json")
}

/// Adds channel ends to `<dir>/hermes/ends.json` (what [`clear_packets`] sweeps after a
/// restart by `watch`).
pub fn record_ends(dir: &Path, ends: &[Side]) -> Result<()> {
    let mut all = recorded_ends(dir);
    for e in ends {
        if !all.contains(e) {
            all.push(e.clone());
        }
    }
    let path = ends_path(dir);
    fs::create_dir_all(dir.join("hermes"))?;
    fs::write(&path, serde_json::to_vec_pretty(&all)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// The channel ends of `<dir>/hermes/ends.json` (none if absent).
pub fn recorded_ends(dir: &Path) -> Vec<Side> {
    fs::read(ends_path(dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The pid of the instance's Hermes if it runs (pid file, and /proc's command line names
/// its config: a recycled pid is never taken for it).
pub fn running(dir: &Path, relayer: &Relayer) -> Option<i32> {
    process::recorded_pid(
        &pid_path(dir, &relayer.name),
        &config_path(dir, &relayer.name).to_string_lossy(),
    )
}

/// Should the instance run? Its pid file exists: [`start`] writes it, [`stop`] removes it,
/// a crash leaves it.
pub fn should_run(dir: &Path, relayer: &Relayer) -> bool {
    pid_path(dir, &relayer.name).exists()
}

/// Starts the instance's `hermes start` detached (own session, no inherited descriptors,
/// log `hermes.log`, pid `hermes.pid`) and waits until it is healthy: "Hermes has started"
/// in its log since this start, and REST `/state` answers (120 s at most; the log's tail
/// in the error). An instance already running is left as it is. Returns the pid.
pub fn start(p: &Progress, _devnet: &Devnet, dir: &Path, relayer: &Relayer) -> Result<u32> {
    let name = &relayer.name;
    if let Some(pid) = running(dir, relayer) {
        p.say(format!("{name}: Hermes already running (pid {pid})"));
        return Ok(pid as u32);
    }
    let config = config_path(dir, name);
    anyhow::ensure!(
        config.exists(),
        "{name}: no {} (write its config and import its keys first: `ehrx-devnet hermes \
         config`)",
        config.display()
    );
    for (what, port) in [
        ("REST", u32::from(relayer.rest_port)),
        ("telemetry", u32::from(relayer.rest_port) + 1),
    ] {
        let port = u16::try_from(port).context("telemetry port above 65535")?;
        // A Hermes just stopped may hold its ports a moment longer: its memory (and so
        // its /proc command line) goes before its descriptors do.
        let t0 = Instant::now();
        while ports::in_use(port) && t0.elapsed() < PORT_WAIT {
            std::thread::sleep(Duration::from_millis(100));
        }
        if ports::in_use(port) {
            bail!(
                "{name}: Hermes {what} port {port} is in use by another process; stop it, or \
                 give [[relayer]] {name} another rest_port (telemetry is rest_port + 1)"
            );
        }
    }
    let log = log_path(dir, name);
    let from = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let mut cmd = Command::new(hermes_bin());
    cmd.arg("--config").arg(&config).arg("start");
    let mut child = process::spawn_detached(&mut cmd, &log, &pid_path(dir, name), "hermes start")
        .with_context(|| {
        format!(
            "{name}: cannot start {} (install it with scripts/install-tools.sh hermes, or \
                 set EHRX_HERMES)",
            hermes_bin().display()
        )
    })?;
    let pid = child.id();
    p.say(format!(
        "{name}: Hermes started, pid {pid} (log {})",
        log.display()
    ));
    let t0 = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let _ = fs::remove_file(pid_path(dir, name));
            bail!(
                "{name}: Hermes exited during start ({status}); its log since the start:\n{}  \
                 log: {}",
                tail_since(&log, from, 30),
                log.display()
            );
        }
        if log_since(&log, from).contains(STARTED) && rest_answers(relayer.rest_port) {
            break;
        }
        if t0.elapsed() > START_TIMEOUT {
            bail!(
                "{name}: Hermes (pid {pid}) not healthy after {}s (no \"{STARTED}\" in its log \
                 or no answer at http://127.0.0.1:{}/state); its log:\n{}  log: {}; stop it with \
                 `ehrx-devnet hermes stop --relayer {name}`",
                START_TIMEOUT.as_secs(),
                relayer.rest_port,
                tail_since(&log, from, 20),
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    p.say(format!(
        "{name}: Hermes healthy after {:.1}s (http://127.0.0.1:{}/state)",
        t0.elapsed().as_secs_f64(),
        relayer.rest_port
    ));
    // Not waited for: it outlives this process (init reaps it then).
    drop(child);
    Ok(pid)
}

fn log_since(path: &Path, from: u64) -> String {
    let Ok(mut f) = fs::File::open(path) else {
        return String::new();
    };
    use std::io::Seek as _;
    let mut text = String::new();
    if f.seek(std::io::SeekFrom::Start(from)).is_ok() {
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    text
}

fn tail_since(path: &Path, from: u64, n: usize) -> String {
    let text = log_since(path, from);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("    | {l}\n"))
        .collect()
}

/// Does Hermes' REST API answer `GET /state` with 200?
fn rest_answers(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /state HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 64];
    let n = s.read(&mut head).unwrap_or(0);
    let line = String::from_utf8_lossy(&head[..n]);
    line.starts_with("HTTP/1.") && line.split_whitespace().nth(1) == Some("200")
}

/// Stops the instance's Hermes (TERM, KILL after 20 s) and removes its pid file (it then
/// should not run). Ok(false) if it was not running.
pub fn stop(dir: &Path, relayer: &Relayer) -> Result<bool> {
    process::stop_recorded(
        &pid_path(dir, &relayer.name),
        &config_path(dir, &relayer.name).to_string_lossy(),
        &relayer.name,
        STOP_GRACE,
    )
}

/// `hermes clear packets` on every channel end: relays, once, whatever is pending (Hermes'
/// `clear_on_start` can miss a packet committed in the block it starts at). Failures are
/// warnings: the running instances keep relaying regardless.
pub fn clear_packets(
    p: &Progress,
    _devnet: &Devnet,
    dir: &Path,
    relayer: &Relayer,
    ends: &[Side],
) -> Result<()> {
    let config = config_path(dir, &relayer.name);
    for e in ends.iter().filter(|e| !e.channel_id.is_empty()) {
        let result = run_cli(
            dir,
            &relayer.name,
            &config,
            &[
                "clear",
                "packets",
                "--chain",
                &e.chain_id,
                "--port",
                &e.port_id,
                "--channel",
                &e.channel_id,
            ],
        );
        if let Err(err) = result {
            p.say(format!(
                "{}: warning: hermes clear packets on {} {} failed; the instances keep \
                 relaying: {err:#}",
                relayer.name, e.chain_id, e.channel_id
            ));
        }
    }
    Ok(())
}

/// The validator each chain of the instance's config uses, read from its `rpc_addr`.
pub fn current_nodes(
    devnet: &Devnet,
    dir: &Path,
    relayer: &Relayer,
) -> Result<BTreeMap<String, u8>> {
    let path = config_path(dir, &relayer.name);
    let text = fs::read_to_string(&path)
        .with_context(|| format!("{}: reading {}", relayer.name, path.display()))?;
    nodes_of_config(devnet, &text).with_context(|| format!("{}", path.display()))
}

fn nodes_of_config(devnet: &Devnet, text: &str) -> Result<BTreeMap<String, u8>> {
    let table: toml::Table = text.parse()?;
    let mut out = BTreeMap::new();
    for c in table
        .get("chains")
        .and_then(|c| c.as_array())
        .context("no [[chains]]")?
    {
        let id = c
            .get("id")
            .and_then(|v| v.as_str())
            .context("a chain without id")?;
        let rpc = c
            .get("rpc_addr")
            .and_then(|v| v.as_str())
            .with_context(|| format!("{id}: no rpc_addr"))?;
        let port: u16 = rpc
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .with_context(|| format!("{id}: rpc_addr {rpc:?} has no port"))?;
        let (index, chain) = devnet
            .chain(id)
            .with_context(|| format!("chain {id} is not in the devnet file"))?;
        let base = devnet.chain_port_base(index);
        let v = (0..chain.validators)
            .find(|v| NodePorts::of(base, *v).rpc == port)
            .with_context(|| format!("{id}: rpc_addr {rpc} is no validator of the devnet file"))?;
        out.insert(id.to_string(), v);
    }
    Ok(out)
}

/// The validator after `current` (in index order, wrapping) for which `answers` is true;
/// None if no other one does.
pub fn next_node(current: u8, count: u8, mut answers: impl FnMut(u8) -> bool) -> Option<u8> {
    (1..count)
        .map(|k| ((u16::from(current) + u16::from(k)) % u16::from(count)) as u8)
        .find(|v| answers(*v))
}

/// If a node the instance uses (per chain) does not answer its RPC `/status`, rewrites its
/// config against the next validator whose RPC answers and restarts it (if it should run:
/// its pid file exists). Returns what it changed, one line a chain, naming the instance,
/// the dead node and the new one; empty if every node answers. An error if no validator of
/// a chain answers (nothing to move to).
pub fn failover(
    p: &Progress,
    devnet: &Devnet,
    dir: &Path,
    relayer: &Relayer,
) -> Result<Vec<String>> {
    let current = current_nodes(devnet, dir, relayer)?;
    let rt = rpc::runtime()?;
    let mut next = current.clone();
    let mut changes = Vec::new();
    for (chain, v) in &current {
        let nodes = layout::nodes(devnet, dir, chain)?;
        let answers = |i: u8| {
            rt.block_on(rpc::node_status(&nodes[usize::from(i)].ports.rpc_url()))
                .is_ok()
        };
        if answers(*v) {
            continue;
        }
        let dead = &nodes[usize::from(*v)];
        let Some(n) = next_node(*v, nodes.len() as u8, answers) else {
            bail!(
                "{}: {} (RPC {}) does not answer, and no other validator of {chain} does; start \
                 one: ehrx-devnet start-node --chain {chain} --validator {v}",
                relayer.name,
                dead.moniker(),
                dead.ports.rpc
            );
        };
        let new = &nodes[usize::from(n)];
        changes.push(format!(
            "{}: {} (RPC {}) does not answer; moved to {} (RPC {}, gRPC {})",
            relayer.name,
            dead.moniker(),
            dead.ports.rpc,
            new.moniker(),
            new.ports.rpc,
            new.ports.grpc
        ));
        next.insert(chain.clone(), n);
    }
    if changes.is_empty() {
        return Ok(changes);
    }
    for c in &changes {
        p.say(c);
    }
    let chains: Vec<&str> = current.keys().map(String::as_str).collect();
    write_config(devnet, dir, relayer, &chains, &next)?;
    if should_run(dir, relayer) {
        p.say(format!(
            "{}: restarting Hermes on the new node(s)",
            relayer.name
        ));
        stop(dir, relayer)?;
        start(p, devnet, dir, relayer)?;
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../relayer-config/devnet.toml");

    fn example() -> Devnet {
        Devnet::parse(EXAMPLE).unwrap()
    }

    fn render(
        d: &Devnet,
        r: &Relayer,
        template: &str,
        nodes: &[(&'static str, u8)],
    ) -> Result<String> {
        let mut placed: Vec<(&str, u8)> = relayer_chains(d, r)
            .into_iter()
            .map(|c| (c, r.validator))
            .collect();
        for (c, v) in nodes {
            placed
                .iter_mut()
                .filter(|p| p.0 == *c)
                .for_each(|p| p.1 = *v);
        }
        let at = Placement {
            devnet: d,
            dir: Path::new("/net"),
            relayer: r,
            nodes: placed,
        };
        render_template(template, &at)
    }

    fn rendered(name: &str, nodes: &[(&'static str, u8)]) -> (String, toml::Table) {
        let d = example();
        let r = relayer(&d, name).unwrap();
        let text = render(&d, r, TEMPLATE, nodes).unwrap();
        let table = text.parse().unwrap();
        (text, table)
    }

    fn chain(t: &toml::Table, i: usize) -> &toml::Table {
        t["chains"].as_array().unwrap()[i].as_table().unwrap()
    }

    #[test]
    fn both_instances_render_on_their_own_nodes_ports_and_keys() {
        let (one, t1) = rendered("hermes-1", &[]);
        let (_, t2) = rendered("hermes-2", &[]);
        assert!(leftover_placeholders(&one).is_empty());
        assert_eq!(t1["rest"]["port"].as_integer(), Some(26900));
        assert_eq!(t1["telemetry"]["port"].as_integer(), Some(26901));
        assert_eq!(t2["rest"]["port"].as_integer(), Some(26902));
        assert_eq!(t2["telemetry"]["port"].as_integer(), Some(26903));
        let (a1, b1, a2, b2) = (chain(&t1, 0), chain(&t1, 1), chain(&t2, 0), chain(&t2, 1));
        assert_eq!(a1["id"].as_str(), Some("hospital-a"));
        assert_eq!(b1["id"].as_str(), Some("hospital-b"));
        // hermes-1: validator 0; hermes-2: validator 1.
        assert_eq!(a1["rpc_addr"].as_str(), Some("http://127.0.0.1:26001"));
        assert_eq!(a1["grpc_addr"].as_str(), Some("http://127.0.0.1:26002"));
        assert_eq!(b1["rpc_addr"].as_str(), Some("http://127.0.0.1:26101"));
        assert_eq!(a2["rpc_addr"].as_str(), Some("http://127.0.0.1:26011"));
        assert_eq!(b2["grpc_addr"].as_str(), Some("http://127.0.0.1:26112"));
        assert_eq!(a1["key_name"].as_str(), Some("relayer"));
        assert_eq!(b2["key_name"].as_str(), Some("relayer-2"));
        assert_eq!(
            a2["key_store_folder"].as_str(),
            Some("/net/hermes/hermes-2/keys")
        );
        // Pull mode, as the template says; fees in the fee denom; 2/3 of 14 days.
        assert_eq!(a1["event_source"]["mode"].as_str(), Some("pull"));
        assert_eq!(a1["event_source"]["interval"].as_str(), Some("500ms"));
        assert_eq!(a1["gas_price"]["denom"].as_str(), Some("ufee"));
        assert_eq!(a1["trusting_period"].as_str(), Some("806400s"));
        // The template's comments stay.
        assert!(one.contains("PULL, not push"));
    }

    #[test]
    fn node_choice_per_chain_and_read_back() {
        let d = example();
        let (text, t) = rendered("hermes-1", &[("hospital-b", 3)]);
        assert_eq!(
            chain(&t, 0)["rpc_addr"].as_str(),
            Some("http://127.0.0.1:26001")
        );
        assert_eq!(
            chain(&t, 1)["rpc_addr"].as_str(),
            Some("http://127.0.0.1:26131")
        );
        let back = nodes_of_config(&d, &text).unwrap();
        assert_eq!(back["hospital-a"], 0);
        assert_eq!(back["hospital-b"], 3);
        let r = relayer(&d, "hermes-1").unwrap();
        let err = render(&d, r, TEMPLATE, &[("hospital-b", 4)]).unwrap_err();
        assert!(err.to_string().contains("validators 0..4, not 4"), "{err}");
    }

    #[test]
    fn an_unknown_placeholder_is_refused() {
        let d = example();
        let r = relayer(&d, "hermes-1").unwrap();
        let t = TEMPLATE.replace("max_msg_num = 30", "max_msg_num = @MAX_MSGS@");
        let err = render(&d, r, &t, &[]).unwrap_err();
        assert!(err.to_string().contains("@MAX_MSGS@"), "{err}");
        // In a comment it is harmless (the template's own header names @NAME@).
        assert_eq!(
            leftover_placeholders("# @NAME@ x\nx = 1"),
            Vec::<String>::new()
        );
        assert_eq!(
            leftover_placeholders("a = 'user@host' # @X@"),
            Vec::<String>::new()
        );
    }

    /// Captured from Hermes 1.13.2 on a 2 × 1-validator devnet (its JSON log lines, on
    /// stderr, kept in: they are skipped).
    const CONNECTION_JSON: &str = include_str!("testdata/hermes-create-connection.json");
    const CHANNEL_JSON: &str = include_str!("testdata/hermes-create-channel.json");

    #[test]
    fn hermes_json_results_parse() {
        let v = json_result(CONNECTION_JSON).unwrap();
        let ends: ConnectionEnds = serde_json::from_value(v).unwrap();
        let a = ends.a_side.side("hospital-a", "t").unwrap();
        let b = ends.b_side.side("hospital-b", "t").unwrap();
        assert_eq!(a.client_id, "07-tendermint-0");
        assert_eq!(a.connection_id, "connection-0");
        assert_eq!(b.client_id, "07-tendermint-0");
        assert_eq!(b.connection_id, "connection-0");
        assert_eq!(a.channel_id, "");

        let v = json_result(CHANNEL_JSON).unwrap();
        let ends: ConnectionEnds = serde_json::from_value(v).unwrap();
        let a = ends.a_side.side("hospital-a", "t").unwrap();
        let b = ends.b_side.side("hospital-b", "t").unwrap();
        assert_eq!(
            (a.port_id.as_str(), a.channel_id.as_str()),
            ("transfer", "channel-0")
        );
        assert_eq!(
            (b.port_id.as_str(), b.channel_id.as_str()),
            ("transfer", "channel-0")
        );

        let state = json_result(include_str!("testdata/hermes-query-client-state.json")).unwrap();
        assert_eq!(find_key(&state, "chain_id").as_deref(), Some("hospital-b"));

        let err = json_result("{\"result\":\"no chain x\",\"status\":\"error\"}").unwrap_err();
        assert!(err.to_string().contains("no chain x"), "{err}");
        assert!(json_result("not json\n").is_err());
    }

    #[test]
    fn failover_picks_the_next_node_that_answers() {
        let up = |alive: &'static [u8]| move |v: u8| alive.contains(&v);
        assert_eq!(next_node(0, 4, up(&[1, 2, 3])), Some(1));
        assert_eq!(next_node(0, 4, up(&[2, 3])), Some(2));
        assert_eq!(next_node(2, 4, up(&[0, 1])), Some(0), "wraps around");
        assert_eq!(next_node(3, 4, up(&[1, 2])), Some(1));
        assert_eq!(next_node(1, 4, up(&[1])), None, "only the dead one itself");
        assert_eq!(
            next_node(0, 1, up(&[0])),
            None,
            "one validator: nowhere to go"
        );
        assert_eq!(next_node(0, 4, up(&[])), None);
        // Each other node is asked at most once, in order.
        let mut asked = Vec::new();
        next_node(1, 4, |v| {
            asked.push(v);
            false
        });
        assert_eq!(asked, [2, 3, 0]);
    }

    #[test]
    fn relayer_chains_follow_the_channels() {
        let d = example();
        let r = relayer(&d, "hermes-2").unwrap();
        assert_eq!(relayer_chains(&d, r), ["hospital-a", "hospital-b"]);
        assert!(relayer(&d, "hermes-9")
            .unwrap_err()
            .to_string()
            .contains("hermes-1, hermes-2"));
    }
}
