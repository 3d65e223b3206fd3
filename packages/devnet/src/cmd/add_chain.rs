//! `ehrx-devnet add-chain [ID]`: an on-demand chain of the devnet file (default: the
//! first one), made and linked to the running chains by its channels.

use anyhow::{Context, Result};

use crate::cmd::{DirArg, Opened};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub dir: DirArg,
    /// The chain (a [[chain]] with `on_demand = true`); default: the first such chain.
    pub chain: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let o = Opened::new(&args.dir)?;
    let id = match args.chain {
        Some(id) => id,
        None => o
            .devnet
            .chains
            .iter()
            .find(|c| c.on_demand)
            .map(|c| c.id.clone())
            .context("the devnet file has no chain with `on_demand = true`")?,
    };
    crate::network::add_chain(&o.ctx(), &id)
}
