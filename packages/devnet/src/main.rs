//! `ehrx-devnet`: the ehrx dev network as data, driven from Rust (issue 11).
//!
//! A devnet file (TOML, [`config`]) describes the network; this slice brings up its
//! chains with N validators each, reports their status and takes them down. Contracts,
//! Hermes and channels are still `scripts/devnet.sh`'s (relayer-config/DEVNET.md, "The
//! Rust devnet tool (preview)").

mod cmd;
mod config;
// The deployment stage: a library of `up` (not wired into it yet).
#[allow(dead_code)]
mod deploy;
mod genesis;
#[allow(dead_code)]
mod gov;
mod hermes;
mod layout;
mod nodecfg;
mod ports;
mod process;
mod progress;
mod rpc;
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
}

/// The default devnet directory: ~/.cache/ehrx-devnet-rs (not scripts/devnet.sh's).
pub fn default_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".cache/ehrx-devnet-rs")
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
    };
    if let Err(err) = result {
        eprintln!("ehrx-devnet: error: {err:#}");
        std::process::exit(1);
    }
}
