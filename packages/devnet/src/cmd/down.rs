//! `ehrx-devnet down --dir DIR [--clean]`: stop the watcher, the relayers and every node
//! of DIR (TERM, then KILL after 20 s), and with --clean delete DIR.

use anyhow::{bail, Result};

use crate::cmd::DirArg;
use crate::layout;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub dir: DirArg,
    /// Also delete the directory (its chains start from genesis at the next `up`).
    #[arg(long)]
    pub clean: bool,
}

pub fn run(args: Args) -> Result<()> {
    let dir = args.dir.path();
    if !dir.exists() {
        eprintln!("{}: nothing there", dir.display());
        return Ok(());
    }
    let d = layout::load(&dir, None)?;
    let _lock = layout::lock(&dir)?;
    crate::network::stop_all(&crate::progress::Progress::new(), &d, &dir)?;
    eprintln!("stopped; state kept in {} unless --clean", dir.display());
    if args.clean {
        if !layout::saved_config(&dir).exists() {
            bail!("{} has no devnet.toml: not deleting it", dir.display());
        }
        std::fs::remove_dir_all(&dir)?;
        eprintln!("{} deleted", dir.display());
    }
    Ok(())
}
