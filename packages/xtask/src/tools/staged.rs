//! The common frame of a tool's build into the cache: found cached, or built into
//! `<dir>.partial` (with a fresh log and a build directory under `$EHRX_TOOLS/build`), moved
//! into place once it works, then linked in `bin/`.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::cache::partial;
use super::out::{Logged, Out};
use super::sys::{rename, rm_rf};
use super::{Config, Status};

/// A cached tool: say so and (re)link it.
pub fn cached(cfg: &Config, out: &Out, name: &str, bin: &Path) -> Result<Status> {
    out.log(format!("cached: {}", bin.display()));
    cfg.cache.expose(name, bin)?;
    Ok(Status::Cached)
}

/// A build in progress.
pub struct Staged<'a> {
    cfg: &'a Config,
    name: &'a str,
    pub log: Logged<'a>,
    /// Where the tool goes once it works.
    pub dir: PathBuf,
    /// `<dir>.partial`, what the build fills.
    pub stage: PathBuf,
    /// The build directory (removed at the end unless `EHRX_KEEP_BUILD`).
    pub bdir: Option<PathBuf>,
}

impl<'a> Staged<'a> {
    /// A fresh log for piece `name`, and an empty stage for `dir`.
    pub fn start(
        cfg: &'a Config,
        out: &'a Out,
        name: &'a str,
        dir: PathBuf,
        bdir: Option<PathBuf>,
    ) -> Result<Staged<'a>> {
        let log = Logged::create(out, &cfg.cache.log_file(name), name, cfg.heartbeat)?;
        let stage = partial(&dir);
        rm_rf(&stage)?;
        Ok(Staged {
            cfg,
            name,
            log,
            dir,
            stage,
            bdir,
        })
    }

    pub fn logf(&self) -> PathBuf {
        self.log.path().to_path_buf()
    }

    /// `rm -rf DIR; mv DIR.partial DIR`.
    pub fn promote(&self) -> Result<()> {
        rm_rf(&self.dir)?;
        rename(&self.stage, &self.dir)
    }

    /// Removes the build directory (unless `EHRX_KEEP_BUILD`) and links `bin` in `bin/`.
    pub fn done(self, bin: &Path) -> Result<()> {
        if let (Some(bdir), false) = (&self.bdir, self.cfg.keep_build) {
            rm_rf(bdir)?;
        }
        self.cfg.cache.expose(self.name, bin)
    }
}
