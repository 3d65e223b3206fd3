//! One module a subcommand.

pub mod add_validator;
pub mod check;
pub mod down;
pub mod hermes;
pub mod start_node;
pub mod status;
pub mod stop_node;
pub mod up;

use std::path::PathBuf;

/// The devnet directory argument shared by the subcommands.
#[derive(Debug, Clone, clap::Args)]
pub struct DirArg {
    /// The devnet directory (state, logs, pid files) [default: ~/.cache/ehrx-devnet-rs].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
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
