//! `ehrx-devnet start-node --chain ID --validator V`: start one node of a made chain again
//! (after a crash or a maintenance stop) and wait until it has caught up with the others.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::cmd::NodeArg;
use crate::layout::Node;
use crate::progress::Progress;
use crate::{process, rpc};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub node: NodeArg,
}

const CATCH_UP_WAIT: Duration = Duration::from_secs(300);

pub fn run(args: Args) -> Result<()> {
    let p = Progress::new();
    let (nodes, i, _lock) = args.node.resolve()?;
    let node = nodes[i].clone();
    if !node.genesis().exists() {
        bail!(
            "{}: not made yet; run `ehrx-devnet up` first",
            node.moniker()
        );
    }
    let rt = rpc::runtime()?;
    // The height the others have reached: the target to catch up with.
    let target = nodes
        .iter()
        .filter(|n| n.index != node.index)
        .filter_map(|n| rt.block_on(rpc::node_status(&n.ports.rpc_url())).ok())
        .map(|s| s.height)
        .max()
        .unwrap_or(0);
    let stored = crate::cmd::up::stored_height(&node);
    let started = crate::cmd::up::start_nodes(&p, std::slice::from_ref(&node))?;
    if started.is_empty() {
        return Ok(());
    }
    p.say(format!(
        "{}: stored height {stored}; waiting to catch up with the others (height {target})",
        node.moniker()
    ));
    wait_caught_up(&p, &rt, &node, target)
}

/// Waits until `node` runs, answers, is not catching up and has reached `target` (at
/// least block 1).
pub fn wait_caught_up(
    p: &Progress,
    rt: &tokio::runtime::Runtime,
    node: &Node,
    target: u64,
) -> Result<()> {
    let start = Instant::now();
    let mut last_note = Instant::now();
    loop {
        if process::running_pid(node).is_none() {
            bail!(
                "{}: wasmd exited during start (log {}):\n{}",
                node.moniker(),
                node.log_file().display(),
                process::log_tail(&node.log_file(), 25)
            );
        }
        let status = rt.block_on(rpc::node_status(&node.ports.rpc_url())).ok();
        if let Some(s) = &status {
            if !s.catching_up && s.height >= target.max(1) {
                p.say(format!(
                    "{}: caught up at height {} ({} peers, power {}) after {:.1}s",
                    node.moniker(),
                    s.height,
                    s.peers,
                    s.power,
                    start.elapsed().as_secs_f64()
                ));
                return Ok(());
            }
        }
        if start.elapsed() > CATCH_UP_WAIT {
            bail!(
                "{}: not caught up within {}s (log {})",
                node.moniker(),
                CATCH_UP_WAIT.as_secs(),
                node.log_file().display()
            );
        }
        if last_note.elapsed() >= Duration::from_secs(3) {
            p.say(format!(
                "{}: catching up: {} ({:.0}s)",
                node.moniker(),
                status.map_or("RPC not answering yet".into(), |s| format!(
                    "height {}, catching_up {}",
                    s.height, s.catching_up
                )),
                start.elapsed().as_secs_f64()
            ));
            last_note = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}
