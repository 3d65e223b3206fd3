//! `ehrx-devnet hermes ...`: the Hermes instances of a devnet directory, one step at a
//! time (what `up` will chain): `config` (write, validate, import keys), `connect`,
//! `channel`, `start`, `stop`, `failover`, `clear`. `--relayer NAME` (repeatable) picks
//! instances; default: every [[relayer]] of the file. See [`crate::hermes`].

use std::collections::BTreeMap;

use anyhow::Result;

use crate::cmd::DirArg;
use crate::config::{Devnet, Relayer};
use crate::hermes;
use crate::layout;
use crate::progress::Progress;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub dir: DirArg,
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Write each instance's config (on its `validator`), validate it, import its keys.
    Config(Pick),
    /// Create a connection (new clients) between two chains; prints both ends as JSON.
    Connect {
        #[arg(long)]
        relayer: String,
        #[arg(long)]
        a: String,
        #[arg(long)]
        b: String,
    },
    /// Create a channel on an existing connection; prints its ids as JSON and records both
    /// ends in DIR/hermes/ends.json.
    Channel {
        #[arg(long)]
        relayer: String,
        #[arg(long)]
        a_chain: String,
        #[arg(long)]
        a_connection: String,
        #[arg(long)]
        a_port: String,
        #[arg(long)]
        b_port: String,
        #[arg(long)]
        version: String,
        #[arg(long, default_value = "unordered")]
        ordering: String,
    },
    /// Start each instance (detached) and wait until it is healthy.
    Start(Pick),
    /// Stop each instance (it then should not run: `watch` leaves it alone).
    Stop(Pick),
    /// Move each instance off a node that does not answer (and restart it).
    Failover(Pick),
    /// `hermes clear packets` on every recorded channel end, once.
    Clear(Pick),
}

#[derive(Debug, Clone, clap::Args)]
pub struct Pick {
    /// The [[relayer]] instances (repeat the flag); default: all.
    #[arg(long = "relayer", value_name = "NAME")]
    pub relayers: Vec<String>,
}

impl Pick {
    fn of<'a>(&self, d: &'a Devnet) -> Result<Vec<&'a Relayer>> {
        if self.relayers.is_empty() {
            return Ok(d.relayers.iter().collect());
        }
        self.relayers
            .iter()
            .map(|n| hermes::relayer(d, n))
            .collect()
    }
}

pub fn run(args: Args) -> Result<()> {
    let p = Progress::new();
    let dir = args.dir.path();
    let _lock = layout::lock(&dir)?;
    let d = layout::load(&dir, None)?;
    match args.action {
        Action::Config(pick) => {
            for r in pick.of(&d)? {
                let chains = hermes::relayer_chains(&d, r);
                let path = hermes::write_config(&d, &dir, r, &chains, &BTreeMap::new())?;
                hermes::import_keys(&d, &dir, r, &chains)?;
                p.say(format!(
                    "{}: {} (validated; chains {}, validator {}), key {:?} imported",
                    r.name,
                    path.display(),
                    chains.join(", "),
                    r.validator,
                    r.account
                ));
            }
        }
        Action::Connect { relayer, a, b } => {
            let r = hermes::relayer(&d, &relayer)?;
            p.say(format!("{relayer}: create connection {a} <-> {b}"));
            let (sa, sb) = hermes::create_connection(&d, &dir, r, &a, &b)?;
            println!("{}", serde_json::to_string(&[sa, sb])?);
        }
        Action::Channel {
            relayer,
            a_chain,
            a_connection,
            a_port,
            b_port,
            version,
            ordering,
        } => {
            let r = hermes::relayer(&d, &relayer)?;
            p.say(format!(
                "{relayer}: create channel {a_port} <-> {b_port} on {a_chain} {a_connection} \
                 ({ordering}, {version})"
            ));
            let (ca, cb) = hermes::create_channel(
                &d,
                &dir,
                r,
                &a_chain,
                &a_connection,
                &a_port,
                &b_port,
                &version,
                &ordering,
            )?;
            println!(
                "{}",
                serde_json::json!({"a_chain": a_chain, "a_channel": ca, "b_channel": cb})
            );
        }
        Action::Start(pick) => {
            for r in pick.of(&d)? {
                hermes::start(&p, &d, &dir, r)?;
            }
        }
        Action::Stop(pick) => {
            for r in pick.of(&d)? {
                let was = hermes::stop(&dir, r)?;
                p.say(format!(
                    "{}: {}",
                    r.name,
                    if was { "stopped" } else { "was not running" }
                ));
            }
        }
        Action::Failover(pick) => {
            for r in pick.of(&d)? {
                let changes = hermes::failover(&p, &d, &dir, r)?;
                if changes.is_empty() {
                    p.say(format!("{}: every node it uses answers", r.name));
                }
                for c in changes {
                    println!("{c}");
                }
            }
        }
        Action::Clear(pick) => {
            let ends = hermes::recorded_ends(&dir);
            for r in pick.of(&d)? {
                hermes::clear_packets(&p, &d, &dir, r, &ends)?;
            }
        }
    }
    Ok(())
}
