//! `ehrx-devnet check --config FILE`: validate a devnet file and summarise it.

use std::path::PathBuf;

use anyhow::Result;

use crate::config::{downtime_tolerance, parse_duration, Devnet};
use crate::layout;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The devnet file (e.g. relayer-config/devnet.toml).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let d = Devnet::load(&args.config)?;
    println!("{}: valid (format {})", args.config.display(), d.version);
    for (i, c) in d.chains.iter().enumerate() {
        let nodes = layout::nodes(&d, std::path::Path::new(""), &c.id)?;
        let rpcs: Vec<String> = nodes.iter().map(|n| n.ports.rpc.to_string()).collect();
        let block = parse_duration(&c.timeout_commit).unwrap_or_default();
        println!(
            "  chain {} : {} validators, ports {}.., RPC {}, blocks ~{}, jailed after >= {}s down",
            c.id,
            c.validators,
            d.chain_port_base(i),
            rpcs.join(","),
            c.timeout_commit,
            downtime_tolerance(&c.slashing, block).as_secs()
        );
    }
    println!(
        "  accounts: {}",
        d.accounts
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let contracts: Vec<String> = d
        .contracts
        .iter()
        .map(|c| format!("{}{}", c.name, if c.pin { " (pinned)" } else { "" }))
        .collect();
    println!(
        "  network: contracts [{}], custodian keys {}, {} clinicians, \
         {} registered peers, {} channels, {} partners, {} relayers",
        contracts.join(", "),
        d.registry.custodian,
        d.registry.clinicians.len(),
        d.registry.peers.len(),
        d.channels.len(),
        d.partners.len(),
        d.relayers.len()
    );
    Ok(())
}
