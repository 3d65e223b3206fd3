//! One module a subcommand.

pub mod add_chain;
pub mod add_validator;
pub mod check;
pub mod down;
pub mod env;
pub mod hermes;
pub mod relayer;
pub mod start_node;
pub mod status;
pub mod stop_node;
pub mod up;

use std::path::PathBuf;

/// The devnet directory argument shared by the subcommands.
#[derive(Debug, Clone, clap::Args)]
pub struct DirArg {
    /// The devnet directory (state, logs, pid files) [default: $EHRX_DEVNET_DIR, else
    /// ~/.cache/ehrx-devnet].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The devnet file argument.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// The devnet file [default: $EHRX_DEVNET_CONFIG, else this checkout's
    /// relayer-config/devnet.toml].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    pub fn path(&self) -> PathBuf {
        self.config
            .clone()
            .or_else(|| std::env::var_os("EHRX_DEVNET_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| crate::network::repo_root().join("relayer-config/devnet.toml"))
    }
}

/// What the network commands need: the devnet read from its directory, and a lock.
pub struct Opened {
    pub p: crate::progress::Progress,
    pub devnet: crate::config::Devnet,
    pub dir: PathBuf,
    pub repo: PathBuf,
    _lock: crate::layout::DirLock,
}

impl Opened {
    pub fn new(dir: &DirArg) -> anyhow::Result<Opened> {
        let dir = dir.path();
        let _lock = crate::layout::lock(&dir)?;
        let devnet = crate::layout::load(&dir, None)?;
        Ok(Opened {
            p: crate::progress::Progress::new(),
            devnet,
            dir,
            repo: crate::network::repo_root(),
            _lock,
        })
    }

    pub fn ctx(&self) -> crate::network::Ctx<'_> {
        crate::network::Ctx {
            p: &self.p,
            devnet: &self.devnet,
            dir: &self.dir,
            repo: &self.repo,
        }
    }
}

/// One validator node of a devnet directory.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArg {
    #[command(flatten)]
    pub dir: DirArg,
    /// The chain id.
    #[arg(long)]
    pub chain: String,
    /// The validator's index (0 to validators - 1).
    #[arg(long)]
    pub validator: u8,
}

impl NodeArg {
    /// The chain's nodes, the index of the one named, and the directory's lock.
    pub fn resolve(
        &self,
    ) -> anyhow::Result<(Vec<crate::layout::Node>, usize, crate::layout::DirLock)> {
        let dir = self.dir.path();
        let lock = crate::layout::lock(&dir)?;
        let d = crate::layout::load(&dir, None)?;
        let nodes = crate::layout::nodes(&d, &dir, &self.chain)?;
        let i = usize::from(self.validator);
        anyhow::ensure!(
            i < nodes.len(),
            "{} has validators 0..{}, not {}",
            self.chain,
            nodes.len(),
            self.validator
        );
        Ok((nodes, i, lock))
    }
}

impl DirArg {
    pub fn path(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(crate::default_dir)
    }
}
