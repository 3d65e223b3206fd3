//! `ehrx-devnet status --dir DIR`: every node of every made chain: process, height,
//! peers, voting power (CometBFT RPC), RSS and CPU time (/proc). Exit 0 only when every
//! node answers.

use anyhow::{bail, Result};

use crate::cmd::DirArg;
use crate::state::State;
use crate::{hermes, layout, process, rpc};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub dir: DirArg,
}

pub fn run(args: Args) -> Result<()> {
    let dir = args.dir.path();
    let d = layout::load(&dir, None)?;
    let rt = rpc::runtime()?;
    let mut down = 0;
    for c in &d.chains {
        let nodes = layout::nodes(&d, &dir, &c.id)?;
        if !nodes[0].genesis().exists() {
            if c.on_demand {
                println!(
                    "{}: not made (on demand: scripts/devnet.sh add-chain {})",
                    c.id, c.id
                );
            } else {
                println!("{}: not made (scripts/devnet.sh up)", c.id);
            }
            continue;
        }
        let set = nodes
            .iter()
            .find_map(|n| rt.block_on(rpc::validator_set(&n.ports.rpc_url())).ok());
        match set {
            Some(s) => println!(
                "{}: {} validators in the set, total voting power {}",
                c.id, s.count, s.total_power
            ),
            None => println!("{}: no node answers", c.id),
        }
        for n in &nodes {
            let pid = process::running_pid(n);
            let usage = pid
                .and_then(process::usage)
                .map_or(String::new(), |(rss, cpu)| {
                    format!("  rss {} MiB  cpu {cpu:.1}s", rss / 1024)
                });
            let state = match rt.block_on(rpc::node_status(&n.ports.rpc_url())) {
                Ok(s) => format!(
                    "height {}  peers {}  power {}{}",
                    s.height,
                    s.peers,
                    s.power,
                    if s.catching_up { "  catching up" } else { "" }
                ),
                Err(e) => {
                    down += 1;
                    format!("not answering ({e})")
                }
            };
            println!(
                "  val{} pid {:>7}  rpc {}  {state}{usage}",
                n.index,
                pid.map_or("-".to_string(), |p| p.to_string()),
                n.ports.rpc,
            );
        }
    }
    let mut problems = Vec::new();
    if down > 0 {
        problems.push(format!("{down} node(s) not answering"));
    }
    match State::load(&dir)? {
        None => println!("devnet.json: none (chains only, or not made: scripts/devnet.sh up)"),
        Some(state) => {
            if !state.complete {
                problems.push("devnet.json is not complete (an `up` did not finish)".into());
            }
            for id in &state.chain_ids {
                let c = &state.chains[id];
                println!(
                    "{id}: registry {} (code {}), exchange {} (code {})",
                    c.deployed.contracts.registry,
                    c.deployed.code_ids.registry,
                    c.deployed.contracts.exchange,
                    c.deployed.code_ids.exchange
                );
                for (p, e) in &c.partners {
                    println!(
                        "  partner {p}: {} {} -> {} {}",
                        e.connection_id,
                        e.channel_id,
                        e.counterparty_port,
                        e.counterparty_channel_id
                    );
                }
            }
            for i in &state.hermes.instances {
                let Ok(r) = hermes::relayer(&d, &i.name) else {
                    continue;
                };
                match hermes::running(&dir, r) {
                    Some(pid) => println!("{}: running (pid {pid}), REST {}", i.name, i.rest),
                    None => {
                        println!("{}: STOPPED (log {})", i.name, i.log.display());
                        problems.push(format!("{} is not running", i.name));
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "not healthy: {} (`scripts/devnet.sh up` starts what is missing)",
            problems.join("; ")
        );
    }
    println!("status: healthy");
    Ok(())
}
