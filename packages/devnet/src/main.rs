//! `ehrx-devnet`: the ehrx dev network as data, driven from Rust (issue 11).
//!
//! A devnet file (TOML, [`config`]) describes the network: chains of N validators,
//! accounts, contracts and registry set-up, partners, channels, relayer instances. `up`
//! brings it all up ([`network`]) and writes `devnet.json` ([`state`]) for the tests, the
//! benchmark, the demo and the peer tool; `scripts/devnet.sh` is a thin entry point to
//! this binary (relayer-config/DEVNET.md).

mod cmd;
mod config;
mod deploy;
mod genesis;
mod gov;
mod hermes;
mod layout;
mod network;
mod nodecfg;
mod ports;
mod process;
mod progress;
mod rpc;
mod state;
mod watch;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "ehrx-devnet", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and validate a devnet file; print what it describes.
    Check(cmd::check::Args),
    /// Make (first time) and start the chains of a devnet file; wait for blocks.
    Up(cmd::up::Args),
    /// Height, peers, voting power, RSS and CPU of every node of a devnet directory.
    Status(cmd::status::Args),
    /// Stop every node of a devnet directory (--clean: and delete it).
    Down(cmd::down::Args),
    /// Start one validator node again and wait until it has caught up.
    StartNode(cmd::start_node::Args),
    /// Stop one validator node (TERM, or --kill for a crash).
    StopNode(cmd::stop_node::Args),
    /// Add one of the hospital's own validators to a running chain (the admin procedure).
    AddValidator(cmd::add_validator::Args),
    /// The Hermes instances: config, connect, channel, start, stop, failover, clear.
    Hermes(cmd::hermes::Args),
    /// Supervise the Hermes instances: move one off a dead node, restart one that died.
    Watch(watch::Args),
    /// Stop everything and delete the devnet directory (= down --clean).
    Reset(cmd::DirArg),
    /// Make an on-demand chain of the devnet file (e.g. hospital-c) and link it.
    AddChain(cmd::add_chain::Args),
    /// An ICS-20 channel on the first link's connection (the benchmark's baseline).
    AddTransferChannel(cmd::DirArg),
    /// Start, stop or restart the relayers (every instance, or --name).
    Relayer(cmd::relayer::Args),
    /// Relay, once, whatever packets and acks are pending on every link.
    ClearPackets(cmd::DirArg),
    /// Print shell exports for a chain (eval "$(ehrx-devnet env hospital-a)").
    Env(cmd::env::Args),
}

/// The default devnet directory: $EHRX_DEVNET_DIR, else ~/.cache/ehrx-devnet.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EHRX_DEVNET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".cache/ehrx-devnet")
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(a) => cmd::check::run(a),
        Command::Up(a) => cmd::up::run(a),
        Command::Status(a) => cmd::status::run(a),
        Command::Down(a) => cmd::down::run(a),
        Command::StartNode(a) => cmd::start_node::run(a),
        Command::StopNode(a) => cmd::stop_node::run(a),
        Command::AddValidator(a) => cmd::add_validator::run(a),
        Command::Hermes(a) => cmd::hermes::run(a),
        Command::Watch(a) => watch::run(a),
        Command::Reset(dir) => cmd::down::run(cmd::down::Args { dir, clean: true }),
        Command::AddChain(a) => cmd::add_chain::run(a),
        Command::AddTransferChannel(dir) => {
            cmd::Opened::new(&dir).and_then(|o| network::add_transfer_channel(&o.ctx()))
        }
        Command::Relayer(a) => cmd::relayer::run(a),
        Command::ClearPackets(dir) => cmd::Opened::new(&dir).and_then(|o| {
            let state = state::State::load(&o.dir)?
                .ok_or_else(|| anyhow::anyhow!("no devnet.json in {}", o.dir.display()))?;
            network::clear_packets(&o.ctx(), &state)
        }),
        Command::Env(a) => cmd::env::run(a),
    };
    if let Err(err) = result {
        eprintln!("ehrx-devnet: error: {err:#}");
        std::process::exit(1);
    }
}
