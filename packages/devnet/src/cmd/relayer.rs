//! `ehrx-devnet relayer start|stop|restart [--name NAME]`: the Hermes instances of the
//! devnet (all, or one), and the watcher that moves them off a dead node.

use anyhow::{bail, Context, Result};

use crate::cmd::{DirArg, Opened};
use crate::state::State;
use crate::{hermes, network};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub dir: DirArg,
    #[arg(value_enum)]
    pub action: Action,
    /// Only this [[relayer]] instance (default: all). The watcher keeps running.
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Action {
    Start,
    Stop,
    Restart,
}

pub fn run(args: Args) -> Result<()> {
    let o = Opened::new(&args.dir)?;
    let ctx = o.ctx();
    let state = State::load(&o.dir)?
        .filter(|s| s.complete)
        .context("the devnet is not up (scripts/devnet.sh up)")?;
    if let Some(name) = &args.name {
        let Some(r) = o.devnet.relayers.iter().find(|r| &r.name == name) else {
            bail!(
                "no [[relayer]] {name:?} (the devnet's: {})",
                o.devnet
                    .relayers
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        if matches!(args.action, Action::Stop | Action::Restart) && hermes::stop(&o.dir, r)? {
            o.p.say(format!("{name}: stopped"));
        }
        if matches!(args.action, Action::Start | Action::Restart) {
            let pid = hermes::start(&o.p, &o.devnet, &o.dir, r)?;
            o.p.say(format!("{name}: healthy (pid {pid})"));
        }
        return Ok(());
    }
    if matches!(args.action, Action::Stop | Action::Restart) {
        network::stop_relayers(&o.p, &o.devnet, &o.dir)?;
    }
    if matches!(args.action, Action::Start | Action::Restart) {
        network::start_relayers(&ctx, &state)?;
    }
    Ok(())
}
