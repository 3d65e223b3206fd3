//! The whole network of a devnet file: chains, contracts and registry set-up, IBC links
//! and relayers, brought up in that order and described in `devnet.json` ([`State`]).
//!
//! `up` the first time makes everything (cold); later it starts what a `down` stopped
//! (warm) from the state on disk. A directory whose earlier `up` did not finish is
//! stopped and made again: nothing half-made is kept.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::cmd::up::{init_chain_if_needed, start_nodes, wait_for_blocks};
use crate::config::{Chain, Channel, Devnet, Relayer};
use crate::hermes::Side;
use crate::layout::{self, Node};
use crate::progress::Progress;
use crate::state::{self, ChainEntry, Hermes, HermesInstance, Link, State, Tool, ValidatorEntry};
use crate::{deploy, hermes, process, rpc};

/// What every step needs.
pub struct Ctx<'a> {
    pub p: &'a Progress,
    pub devnet: &'a Devnet,
    pub dir: &'a Path,
    pub repo: &'a Path,
}

/// The chains `up` makes: every chain but the ones made on demand (`add-chain`).
pub fn base_chains(devnet: &Devnet) -> Vec<&Chain> {
    devnet.chains.iter().filter(|c| !c.on_demand).collect()
}

/// The channels whose both chains are in `chains`.
fn channels_among<'a>(devnet: &'a Devnet, chains: &[String]) -> Vec<&'a Channel> {
    devnet
        .channels
        .iter()
        .filter(|c| chains.contains(&c.a) && chains.contains(&c.b))
        .collect()
}

/// `up`: cold or warm, see the module comment.
pub fn up(ctx: &Ctx) -> Result<()> {
    match State::load(ctx.dir)? {
        Some(state) if state.complete => warm_up(ctx, state),
        other => {
            if other.is_some() || has_chain_dirs(ctx) {
                ctx.p.say(format!(
                    "{} holds an unfinished devnet (an earlier `up` did not finish): stopping \
                     what it started and making it again",
                    ctx.dir.display()
                ));
                stop_all(ctx.p, ctx.devnet, ctx.dir)?;
                for c in &ctx.devnet.chains {
                    let d = layout::chain_dir(ctx.dir, &c.id);
                    if d.exists() {
                        fs::remove_dir_all(&d)?;
                    }
                }
                let _ = fs::remove_dir_all(ctx.dir.join("hermes"));
                let _ = fs::remove_file(state::path(ctx.dir));
            }
            cold_up(ctx)
        }
    }
}

fn has_chain_dirs(ctx: &Ctx) -> bool {
    ctx.devnet
        .chains
        .iter()
        .any(|c| layout::chain_dir(ctx.dir, &c.id).exists())
}

/// Runs `f` for each chain at once (one thread each): the results in the chains' order.
fn each_chain<T: Send>(
    chains: &[&Chain],
    f: impl Fn(&Chain) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let f = &f;
    let results: Vec<Result<T>> = std::thread::scope(|s| {
        let handles: Vec<_> = chains.iter().map(|c| s.spawn(move || f(c))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a chain's thread panicked")))
            })
            .collect()
    });
    results.into_iter().collect()
}

/// Makes (the first time) and starts a chain's nodes; waits for its blocks.
fn start_chain(ctx: &Ctx, chain: &Chain) -> Result<()> {
    let nodes = layout::nodes(ctx.devnet, ctx.dir, &chain.id)?;
    init_chain_if_needed(ctx.p, ctx.devnet, chain, ctx.dir, &nodes)?;
    let started = start_nodes(ctx.p, &nodes)?;
    wait_for_blocks(ctx.p, &chain.id, &nodes, started)
}

/// Deploys the contracts on a running chain: its devnet.json entry.
fn deploy_chain(ctx: &Ctx, chain: &Chain) -> Result<ChainEntry> {
    let nodes = layout::nodes(ctx.devnet, ctx.dir, &chain.id)?;
    let deployed = deploy::deploy_chain(ctx.p, ctx.devnet, ctx.dir, &chain.id, ctx.repo)
        .with_context(|| format!("{}: deploying the contracts", chain.id))?;
    chain_entry(ctx, chain, &nodes, deployed)
}

fn make_chain(ctx: &Ctx, chain: &Chain) -> Result<ChainEntry> {
    start_chain(ctx, chain)?;
    deploy_chain(ctx, chain)
}

/// A chain's devnet.json entry, from what `init` wrote (chain.json) and the deployment.
fn chain_entry(
    ctx: &Ctx,
    chain: &Chain,
    nodes: &[Node],
    deployed: deploy::Deployed,
) -> Result<ChainEntry> {
    let cdir = layout::chain_dir(ctx.dir, &chain.id);
    let made: Value = serde_json::from_slice(&fs::read(cdir.join("chain.json"))?)
        .with_context(|| format!("{}", cdir.join("chain.json").display()))?;
    let keys: BTreeMap<String, String> = serde_json::from_value(made["accounts"].clone())?;
    let validators = nodes
        .iter()
        .zip(made["validators"].as_array().into_iter().flatten())
        .map(|(n, v)| ValidatorEntry {
            index: n.index,
            moniker: n.moniker(),
            home: n.home.clone(),
            node_id: v["node_id"].as_str().unwrap_or_default().into(),
            operator: v["operator"].as_str().unwrap_or_default().into(),
            rpc: n.ports.rpc_url(),
            grpc: format!("http://127.0.0.1:{}", n.ports.grpc),
            p2p: format!("tcp://127.0.0.1:{}", n.ports.p2p),
            log: n.log_file(),
            pid_file: n.pid_file(),
        })
        .collect::<Vec<_>>();
    let n0 = &nodes[0];
    let home = layout::accounts_home(ctx.dir, &chain.id);
    Ok(ChainEntry {
        chain_id: chain.id.clone(),
        node: format!("tcp://127.0.0.1:{}", n0.ports.rpc),
        rpc: n0.ports.rpc_url(),
        grpc: format!("http://127.0.0.1:{}", n0.ports.grpc),
        api: format!("http://127.0.0.1:{}", n0.ports.api),
        p2p: format!("tcp://127.0.0.1:{}", n0.ports.p2p),
        rpcs: nodes.iter().map(|n| n.ports.rpc_url()).collect(),
        log: n0.log_file(),
        pid_file: n0.pid_file(),
        keyring_backend: "test".into(),
        mnemonics_dir: home.join("mnemonics"),
        home,
        keys,
        partners: BTreeMap::new(),
        validators,
        deployed,
    })
}

fn tool_version(bin: &Path, args: &[&str]) -> String {
    std::process::Command::new(bin)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().last().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
}

fn new_state(ctx: &Ctx) -> Result<State> {
    let first = ctx
        .devnet
        .chains
        .first()
        .context("the devnet file has no [[chain]]")?;
    let wasmd = process::wasmd_bin();
    let hermes_bin = hermes::hermes_bin();
    let instances = ctx
        .devnet
        .relayers
        .iter()
        .map(|r| instance(ctx.dir, r))
        .collect::<Vec<_>>();
    let h0 = instances.first().cloned().context(
        "the devnet file has no [[relayer]]: add one, or `up --chains-only` for the chains alone",
    )?;
    Ok(State {
        schema: state::SCHEMA,
        complete: false,
        devnet_dir: ctx.dir.to_path_buf(),
        created_at: process::now_text(),
        bond_denom: first.bond_denom.clone(),
        fee_denom: first.fee_denom.clone(),
        keyring_backend: "test".into(),
        channel_version: ctx
            .devnet
            .channels
            .first()
            .map_or_else(String::new, |c| c.version.clone()),
        wasmd: Tool {
            version: tool_version(&wasmd, &["version"]),
            bin: wasmd,
        },
        artifacts_dir: ctx.repo.join("artifacts"),
        hermes: Hermes {
            version: tool_version(&hermes_bin, &["version"]),
            bin: hermes_bin,
            config: h0.config.clone(),
            log: h0.log.clone(),
            pid_file: h0.pid_file.clone(),
            rest: h0.rest.clone(),
            telemetry: h0.telemetry.clone(),
            event_source: "pull".into(),
            instances,
        },
        chain_ids: Vec::new(),
        chains: BTreeMap::new(),
        links: Vec::new(),
        transfer: None,
    })
}

fn instance(dir: &Path, r: &Relayer) -> HermesInstance {
    let d = hermes::instance_dir(dir, &r.name);
    HermesInstance {
        name: r.name.clone(),
        account: r.account.clone(),
        config: d.join("config.toml"),
        log: d.join("hermes.log"),
        pid_file: d.join("hermes.pid"),
        rest: format!("http://127.0.0.1:{}", r.rest_port),
        telemetry: format!("http://127.0.0.1:{}/metrics", u32::from(r.rest_port) + 1),
    }
}

fn cold_up(ctx: &Ctx) -> Result<()> {
    let t0 = Instant::now();
    fs::create_dir_all(ctx.dir)?;
    let mut state = new_state(ctx)?;
    state.save(ctx.dir)?;
    let chains = base_chains(ctx.devnet);
    let ids: Vec<String> = chains.iter().map(|c| c.id.clone()).collect();
    ctx.p.say(format!(
        "chains {}: init and start (in parallel)",
        names(&chains)
    ));
    each_chain(&chains, |c| start_chain(ctx, c))?;
    let t_chains = t0.elapsed();
    // A connection needs no contract: the relayers' configs are written and the connections
    // made while the contracts are deployed (the handshakes take most of a cold start).
    let channels = channels_among(ctx.devnet, &ids);
    ctx.p.say(format!(
        "contracts on {} and the connections of {}, at the same time",
        names(&chains),
        channels
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let (entries, connections) = std::thread::scope(|s| {
        let deploying = s.spawn(|| each_chain(&chains, |c| deploy_chain(ctx, c)));
        let connecting = s.spawn(|| -> Result<Vec<(Side, Side)>> {
            relayer_configs(ctx, &ids, true)?;
            channels.iter().map(|c| connect(ctx, c)).collect()
        });
        (
            deploying
                .join()
                .unwrap_or_else(|_| Err(anyhow!("the deploying thread panicked"))),
            connecting
                .join()
                .unwrap_or_else(|_| Err(anyhow!("the connecting thread panicked"))),
        )
    });
    for entry in entries? {
        state.chain_ids.push(entry.chain_id.clone());
        state.chains.insert(entry.chain_id.clone(), entry);
    }
    state.save(ctx.dir)?;
    let t_deployed = t0.elapsed();
    for (channel, ends) in channels.iter().zip(connections?) {
        link(ctx, &mut state, channel, ends)?;
        state.save(ctx.dir)?;
    }
    start_relayers(ctx, &state)?;
    state.complete = true;
    state.save(ctx.dir)?;
    summary(ctx, &state);
    ctx.p.say(format!(
        "devnet up (cold) in {:.1}s: chains {:.1}s; contracts and connections {:.1}s; \
         channels and relayers {:.1}s",
        t0.elapsed().as_secs_f64(),
        t_chains.as_secs_f64(),
        (t_deployed - t_chains).as_secs_f64(),
        (t0.elapsed() - t_deployed).as_secs_f64()
    ));
    Ok(())
}

fn names(chains: &[&Chain]) -> String {
    chains
        .iter()
        .map(|c| c.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The relayers that relay a channel among `chains_up`, each with the chains it relays.
fn active_relayers<'a>(
    devnet: &'a Devnet,
    chains_up: &[String],
) -> Vec<(&'a Relayer, Vec<String>)> {
    devnet
        .relayers
        .iter()
        .filter_map(|r| {
            let mut chains: Vec<String> = Vec::new();
            for ch in &r.channels {
                let Some(c) = devnet.channels.iter().find(|c| &c.name == ch) else {
                    continue;
                };
                if chains_up.contains(&c.a) && chains_up.contains(&c.b) {
                    for id in [&c.a, &c.b] {
                        if !chains.contains(id) {
                            chains.push(id.clone());
                        }
                    }
                }
            }
            (!chains.is_empty()).then_some((r, chains))
        })
        .collect()
}

/// Writes every active relayer's config (each on its own validator when that one
/// answers, else the next that does) and, the first time, imports its keys.
fn relayer_configs(ctx: &Ctx, chains_up: &[String], keys: bool) -> Result<()> {
    for (r, chains) in active_relayers(ctx.devnet, chains_up) {
        let ids: Vec<&str> = chains.iter().map(String::as_str).collect();
        let nodes = live_nodes(ctx, &chains, r.validator)?;
        let cfg = hermes::write_config(ctx.devnet, ctx.dir, r, &ids, &nodes)?;
        if keys {
            hermes::import_keys(ctx.devnet, ctx.dir, r, &ids)?;
        }
        ctx.p.say(format!(
            "{}: config {} (chains {}; validators {:?})",
            r.name,
            cfg.display(),
            ids.join(", "),
            nodes
        ));
    }
    Ok(())
}

/// For each chain: validator `preferred` if its RPC answers, else the first that does.
fn live_nodes(ctx: &Ctx, chains: &[String], preferred: u8) -> Result<BTreeMap<String, u8>> {
    let rt = rpc::runtime()?;
    let mut out = BTreeMap::new();
    for id in chains {
        let nodes = layout::nodes(ctx.devnet, ctx.dir, id)?;
        let answers = |v: u8| {
            rt.block_on(rpc::node_status(&nodes[usize::from(v)].ports.rpc_url()))
                .is_ok()
        };
        // The preferred one (wrapped to the chain's count), else the next that answers: the
        // order the watcher's failover uses.
        let count = nodes.len() as u8;
        let first = preferred % count;
        let chosen = if answers(first) {
            Some(first)
        } else {
            hermes::next_node(first, count, answers)
        };
        out.insert(
            id.clone(),
            chosen.with_context(|| format!("{id}: no validator's RPC answers"))?,
        );
    }
    Ok(out)
}

/// One `[[channel]]`: a new connection (new clients), the partners of the devnet file
/// registered on both registries, the channel between the two exchanges, and the check
/// that both registries bound it.
fn link(ctx: &Ctx, state: &mut State, channel: &Channel, ends: (Side, Side)) -> Result<()> {
    let relayer = relayer_of(ctx, channel)?;
    let (a, b) = (channel.a.as_str(), channel.b.as_str());
    let (mut a_side, mut b_side) = ends;
    let port = |chain: &str| -> Result<String> {
        let entry = state.chains.get(chain).context("chain not made")?;
        Ok(match channel.contract.as_str() {
            "exchange" => entry.deployed.exchange_port.clone(),
            other => format!("wasm.{}", contract_address(entry, other)?),
        })
    };
    a_side.port_id = port(a)?;
    b_side.port_id = port(b)?;
    let partners: Vec<_> = ctx
        .devnet
        .partners
        .iter()
        .filter(|p| p.channel == channel.name)
        .collect();
    for p in &partners {
        let (conn, counterparty_port) = if p.chain == a {
            (&a_side.connection_id, &b_side.port_id)
        } else {
            (&b_side.connection_id, &a_side.port_id)
        };
        let key = state
            .chains
            .get(&p.partner)
            .and_then(|c| c.deployed.custodian.as_ref())
            .map(|c| c.records_key.clone());
        deploy::upsert_partner(
            ctx.devnet,
            ctx.dir,
            &p.chain,
            &p.partner,
            conn,
            counterparty_port,
            key.as_deref(),
            &p.status,
        )?;
        ctx.p.say(format!(
            "{}: partner {} -> {conn}, counterparty port {counterparty_port}, records key {}",
            p.chain,
            p.partner,
            key.as_deref().unwrap_or("none")
        ));
    }
    ctx.p.say(format!(
        "{}: channel {} <-> {} ({}, {})",
        channel.name, a_side.port_id, b_side.port_id, channel.ordering, channel.version
    ));
    let (ch_a, ch_b) = hermes::create_channel(
        ctx.devnet,
        ctx.dir,
        relayer,
        a,
        &a_side.connection_id,
        &a_side.port_id,
        &b_side.port_id,
        &channel.version,
        &channel.ordering,
    )
    .with_context(|| format!("channel handshake {a} <-> {b} (the exchange contracts' checks are in their events: `ehrx-devnet status`)"))?;
    a_side.channel_id = ch_a;
    b_side.channel_id = ch_b;
    for p in &partners {
        let want = if p.chain == a {
            &a_side.channel_id
        } else {
            &b_side.channel_id
        };
        let got = deploy::partner_channel(ctx.devnet, ctx.dir, &p.chain, &p.partner)?;
        if got.as_ref() != Some(want) {
            bail!(
                "{}: its registry bound {:?} for partner {}, expected {want}: the exchange did \
                 not bind the channel at its handshake (see its events)",
                p.chain,
                got,
                p.partner
            );
        }
    }
    ctx.p.say(format!(
        "{}: {a} {} <-> {b} {}; registries bound it",
        channel.name, a_side.channel_id, b_side.channel_id
    ));
    state.add_link(Link {
        name: channel.name.clone(),
        a: a.into(),
        b: b.into(),
        version: channel.version.clone(),
        order: channel.ordering.clone(),
        a_side,
        b_side,
    });
    Ok(())
}

/// The first relayer that relays `channel`: it makes the channel's handshakes.
fn relayer_of<'a>(ctx: &Ctx<'a>, channel: &Channel) -> Result<&'a Relayer> {
    ctx.devnet
        .relayers
        .iter()
        .find(|r| r.channels.contains(&channel.name))
        .with_context(|| format!("no [[relayer]] relays channel {}", channel.name))
}

/// A new connection (new clients on both chains) for `channel`: its two ends.
fn connect(ctx: &Ctx, channel: &Channel) -> Result<(Side, Side)> {
    let relayer = relayer_of(ctx, channel)?;
    let (a, b) = (channel.a.as_str(), channel.b.as_str());
    ctx.p.say(format!(
        "{}: connection {a} <-> {b} (new clients)",
        channel.name
    ));
    let (a_side, b_side) = hermes::create_connection(ctx.devnet, ctx.dir, relayer, a, b)?;
    ctx.p.say(format!(
        "{}: {a} {} ({}) <-> {b} {} ({})",
        channel.name,
        a_side.connection_id,
        a_side.client_id,
        b_side.connection_id,
        b_side.client_id
    ));
    Ok((a_side, b_side))
}

fn contract_address(entry: &ChainEntry, name: &str) -> Result<String> {
    match name {
        "registry" => Ok(entry.deployed.contracts.registry.clone()),
        "exchange" => Ok(entry.deployed.contracts.exchange.clone()),
        other => bail!("no contract {other:?} on {}", entry.chain_id),
    }
}

/// Starts every active relayer that does not run, clears what is pending, and the
/// watcher that moves a relayer off a dead node.
pub fn start_relayers(ctx: &Ctx, state: &State) -> Result<()> {
    for (r, _) in active_relayers(ctx.devnet, &state.chain_ids) {
        if let Some(pid) = hermes::running(ctx.dir, r) {
            ctx.p
                .say(format!("{}: already running (pid {pid})", r.name));
            continue;
        }
        let pid = hermes::start(ctx.p, ctx.devnet, ctx.dir, r)?;
        ctx.p.say(format!("{}: healthy (pid {pid})", r.name));
    }
    clear_packets(ctx, state)?;
    let pid = crate::watch::spawn_watch(ctx.dir)?;
    ctx.p.say(format!(
        "watch: pid {pid} (moves a relayer to another validator when its node dies; log {})",
        ctx.dir.join("hermes/watch.log").display()
    ));
    Ok(())
}

/// Relays, once, whatever is pending on every link (Hermes' clear_on_start can miss a
/// packet committed in the block it starts at).
pub fn clear_packets(ctx: &Ctx, state: &State) -> Result<()> {
    let Some((r, _)) = active_relayers(ctx.devnet, &state.chain_ids)
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    let ends: Vec<_> = state.links.iter().map(|l| l.a_side.clone()).collect();
    hermes::clear_packets(ctx.p, ctx.devnet, ctx.dir, r, &ends)
}

pub fn stop_relayers(p: &Progress, devnet: &Devnet, dir: &Path) -> Result<()> {
    crate::watch::stop_watch(dir)?;
    for r in &devnet.relayers {
        if hermes::stop(dir, r)? {
            p.say(format!("{}: stopped", r.name));
        }
    }
    Ok(())
}

/// Stops the watcher, every relayer and every node of the directory.
pub fn stop_all(p: &Progress, devnet: &Devnet, dir: &Path) -> Result<()> {
    stop_relayers(p, devnet, dir)?;
    for c in &devnet.chains {
        for node in layout::nodes(devnet, dir, &c.id)? {
            if node.home.exists() && process::stop_node(&node, Duration::from_secs(20))? {
                p.say(format!("{}: stopped", node.moniker()));
            }
        }
    }
    Ok(())
}

/// Starts what a `down` stopped: the nodes of every chain of devnet.json, then the
/// relayers (on live validators) and the watcher.
fn warm_up(ctx: &Ctx, state: State) -> Result<()> {
    let t0 = Instant::now();
    let chains: Vec<&Chain> = state
        .chain_ids
        .iter()
        .map(|id| {
            ctx.devnet
                .chain(id)
                .map(|(_, c)| c)
                .with_context(|| format!("{id} is in devnet.json but not in the devnet file"))
        })
        .collect::<Result<_>>()?;
    let started = each_chain(&chains, |chain| {
        let nodes = layout::nodes(ctx.devnet, ctx.dir, &chain.id)?;
        let started = start_nodes(ctx.p, &nodes)?;
        if started.is_empty() {
            return Ok(false);
        }
        wait_for_blocks(ctx.p, &chain.id, &nodes, started)?;
        Ok(true)
    })?;
    let all_running = active_relayers(ctx.devnet, &state.chain_ids)
        .iter()
        .all(|(r, _)| hermes::running(ctx.dir, r).is_some());
    if all_running && !started.contains(&true) && crate::watch::watch_running(ctx.dir).is_some() {
        ctx.p.say(format!(
            "already up: every node, relayer and the watcher run; description {}",
            state::path(ctx.dir).display()
        ));
        return Ok(());
    }
    if !all_running {
        relayer_configs(ctx, &state.chain_ids, false)?;
    }
    check_clients(ctx, &state)?;
    start_relayers(ctx, &state)?;
    ctx.p.say(format!(
        "devnet up (warm) in {:.1}s; description {}",
        t0.elapsed().as_secs_f64(),
        state::path(ctx.dir).display()
    ));
    Ok(())
}

/// Every link's light clients must still be active: chains stopped for longer than the
/// trusting period (9 days) have expired clients, and nothing would be relayed.
fn check_clients(ctx: &Ctx, state: &State) -> Result<()> {
    let mut expired = Vec::new();
    for link in &state.links {
        let Some(channel) = ctx.devnet.channels.iter().find(|c| c.name == link.name) else {
            continue;
        };
        let relayer = relayer_of(ctx, channel)?;
        for side in [&link.a_side, &link.b_side] {
            let status = hermes::client_status(ctx.dir, relayer, &side.chain_id, &side.client_id)?;
            if status != "Active" {
                expired.push(format!("{} {} {status}", side.chain_id, side.client_id));
            }
        }
    }
    if !expired.is_empty() {
        bail!(
            "IBC clients not active: {}. The chains were stopped longer than the trusting \
             period (9 days); make the devnet again: scripts/devnet.sh reset && \
             scripts/devnet.sh up",
            expired.join(", ")
        );
    }
    ctx.p.say(format!(
        "light clients of {} link(s): active",
        state.links.len()
    ));
    Ok(())
}

/// `add-chain ID`: an on-demand chain of the devnet file, made, linked by its channels
/// to the chains that run, and relayed (the relayers restart with the new chain).
pub fn add_chain(ctx: &Ctx, id: &str) -> Result<()> {
    let mut state = State::load(ctx.dir)?
        .filter(|s| s.complete)
        .context("the devnet is not up (scripts/devnet.sh up first)")?;
    let (_, chain) = ctx
        .devnet
        .chain(id)
        .with_context(|| format!("no [[chain]] {id} in the devnet file"))?;
    if state.chains.contains_key(id) {
        ctx.p.say(format!(
            "{id} is already part of the devnet; `up` restarts it if stopped"
        ));
        return Ok(());
    }
    let cdir = layout::chain_dir(ctx.dir, id);
    if cdir.exists() {
        ctx.p.say(format!(
            "{id}: leftovers of an unfinished add-chain; removing {} and starting over",
            cdir.display()
        ));
        for node in layout::nodes(ctx.devnet, ctx.dir, id)? {
            process::stop_node(&node, Duration::from_secs(20))?;
        }
        fs::remove_dir_all(&cdir)?;
    }
    let entry = make_chain(ctx, chain)?;
    state.chain_ids.push(id.into());
    state.chains.insert(id.into(), entry);
    state.save(ctx.dir)?;
    // Hermes reads its config at start: write the new one, import the new chain's key,
    // link, then restart the relayers so that they relay for the new chain too.
    relayer_configs(ctx, &state.chain_ids, true)?;
    let new: Vec<&Channel> = channels_among(ctx.devnet, &state.chain_ids)
        .into_iter()
        .filter(|c| state.link(&c.name).is_none())
        .collect();
    for channel in new {
        let ends = connect(ctx, channel)?;
        link(ctx, &mut state, channel, ends)?;
        state.save(ctx.dir)?;
    }
    stop_relayers(ctx.p, ctx.devnet, ctx.dir)?;
    start_relayers(ctx, &state)?;
    summary(ctx, &state);
    Ok(())
}

/// `add-transfer-channel`: an ICS-20 channel on the first link's connection, the baseline
/// the benchmark compares with (same relayers, same chains).
pub fn add_transfer_channel(ctx: &Ctx) -> Result<()> {
    let mut state = State::load(ctx.dir)?
        .filter(|s| s.complete)
        .context("the devnet is not up (scripts/devnet.sh up first)")?;
    if let Some(t) = &state.transfer {
        ctx.p.say("transfer channel already exists");
        println!("{}", serde_json::to_string(t)?);
        return Ok(());
    }
    let link = state
        .links
        .first()
        .context("the devnet has no link")?
        .clone();
    let relayer = ctx
        .devnet
        .relayers
        .iter()
        .find(|r| r.channels.contains(&link.name))
        .context("no relayer for the first link")?;
    ctx.p.say(format!(
        "channel transfer <-> transfer on {} {}",
        link.a, link.a_side.connection_id
    ));
    let (a_channel, b_channel) = hermes::create_channel(
        ctx.devnet,
        ctx.dir,
        relayer,
        &link.a,
        &link.a_side.connection_id,
        "transfer",
        "transfer",
        "ics20-1",
        "unordered",
    )?;
    let t = state::Transfer {
        a: link.a.clone(),
        b: link.b.clone(),
        port: "transfer".into(),
        version: "ics20-1".into(),
        a_connection: link.a_side.connection_id.clone(),
        a_channel,
        b_channel,
    };
    println!("{}", serde_json::to_string(&t)?);
    state.transfer = Some(t);
    state.save(ctx.dir)?;
    // Hermes spawns packet workers for a new channel on its first packet: no restart.
    Ok(())
}

fn summary(ctx: &Ctx, state: &State) {
    let mut out = format!(
        "\nDevnet ready. State and logs: {}\n  description (tests, bench, demo, peer tool): {}\n",
        ctx.dir.display(),
        state::path(ctx.dir).display()
    );
    for id in &state.chain_ids {
        let c = &state.chains[id];
        out += &format!(
            "  {id}: {} validators, rpc {}\n    registry {}\n    exchange {}\n",
            c.validators.len(),
            c.rpcs.join(" "),
            c.deployed.contracts.registry,
            c.deployed.contracts.exchange
        );
        for (p, e) in &c.partners {
            out += &format!(
                "    partner {p}: {} {} -> {}\n",
                e.connection_id, e.channel_id, e.counterparty_port
            );
        }
    }
    for i in &state.hermes.instances {
        out += &format!("  {}: log {}, REST {}\n", i.name, i.log.display(), i.rest);
    }
    eprint!("{out}");
}

/// The repository root (artifacts/, relayer-config/): `EHRX_REPO_ROOT`, else this
/// crate's checkout.
pub fn repo_root() -> PathBuf {
    std::env::var_os("EHRX_REPO_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .canonicalize()
                .unwrap_or_else(|_| PathBuf::from("."))
        })
}
