//! `ehrx-devnet stop-node --chain ID --validator V [--kill]`: stop one node; --kill sends
//! SIGKILL at once (a crash, for fault tests).

use std::time::Duration;

use anyhow::Result;

use crate::cmd::NodeArg;
use crate::process;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub node: NodeArg,
    /// SIGKILL instead of a clean stop.
    #[arg(long)]
    pub kill: bool,
}

pub fn run(args: Args) -> Result<()> {
    let (nodes, i, _lock) = args.node.resolve()?;
    let node = &nodes[i];
    if args.kill {
        match process::running_pid(node) {
            Some(pid) => {
                process::signal(pid, libc::SIGKILL)?;
                eprintln!("{}: pid {pid} killed (SIGKILL)", node.moniker());
            }
            None => eprintln!("{}: not running", node.moniker()),
        }
    } else if process::stop_node(node, Duration::from_secs(20))? {
        eprintln!("{}: stopped", node.moniker());
    } else {
        eprintln!("{}: not running", node.moniker());
    }
    Ok(())
}
