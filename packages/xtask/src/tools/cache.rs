//! The tool cache's layout (install-tools.sh's, unchanged, so an existing cache is
//! recognised): one directory per tool and version (and build recipe), symlinks in `bin/`,
//! build logs and times in `logs/`, build directories in `build/`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::pins;
use super::sys::rm_rf;
use crate::clock::iso_now;

#[derive(Clone, Debug)]
pub struct Cache {
    /// `$EHRX_TOOLS`, default `~/.cache/ehrx-tools`.
    pub root: PathBuf,
    /// `EHRX_TOOLS_OPT_LEVEL` (default 1): part of the cargo-built tools' keys.
    pub opt_level: String,
}

impl Cache {
    pub fn wasmd_dir(&self) -> PathBuf {
        self.root.join(format!("wasmd-{}", pins::WASMD))
    }

    /// The key names the recipe too (opt-level, Debian's RocksDB): a changed recipe builds
    /// anew.
    pub fn hermes_dir(&self) -> PathBuf {
        self.root.join(format!(
            "hermes-v{}-o{}-sysrocksdb",
            pins::HERMES,
            self.opt_level
        ))
    }

    pub fn cosmwasm_check_dir(&self) -> PathBuf {
        self.root.join(format!(
            "cosmwasm-check-{}-o{}",
            pins::COSMWASM_CHECK,
            self.opt_level
        ))
    }

    pub fn binaryen_dir(&self) -> PathBuf {
        self.root.join(format!("binaryen-{}", pins::BINARYEN))
    }

    pub fn bin_dir(&self) -> PathBuf {
        self.root.join("bin")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn build_root(&self) -> PathBuf {
        self.root.join("build")
    }

    pub fn log_file(&self, piece: &str) -> PathBuf {
        self.log_dir().join(format!("{piece}.log"))
    }

    /// `<piece>.took`: how long the last build or install of the piece took (read by
    /// scripts/bench.sh).
    pub fn took_file(&self, piece: &str) -> PathBuf {
        self.log_dir().join(format!("{piece}.took"))
    }

    pub fn lock_file(&self) -> PathBuf {
        self.root.join(".install.lock")
    }

    /// Writes `<piece>.took`.
    pub fn write_took(&self, piece: &str, secs: u64, status: &str) -> Result<()> {
        std::fs::create_dir_all(self.log_dir())?;
        let path = self.took_file(piece);
        std::fs::write(&path, took_line(secs, status, &iso_now()))
            .with_context(|| format!("writing {}", path.display()))
    }

    /// The target of `bin/NAME` for TARGET: relative when TARGET is inside the cache, so
    /// the cache can be moved or copied as a whole.
    pub fn link_target(&self, target: &Path) -> PathBuf {
        let root = format!("{}/", self.root.display());
        let t = target.to_string_lossy();
        match t.strip_prefix(&root) {
            Some(rest) => PathBuf::from(format!("../{rest}")),
            None => target.to_path_buf(),
        }
    }

    /// `expose NAME TARGET`: `$EHRX_TOOLS/bin/NAME -> TARGET` (replaced at once: a link
    /// beside it, renamed over it).
    pub fn expose(&self, name: &str, target: &Path) -> Result<()> {
        let bin = self.bin_dir();
        std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
        let link = bin.join(name);
        let tmp = bin.join(format!(".{name}.{}", std::process::id()));
        rm_rf(&tmp)?;
        std::os::unix::fs::symlink(self.link_target(target), &tmp)
            .with_context(|| format!("linking {}", tmp.display()))?;
        std::fs::rename(&tmp, &link).with_context(|| format!("replacing {}", link.display()))
    }
}

/// A `.took` file's line: `SECONDS STATUS DATE`.
pub fn took_line(secs: u64, status: &str, date: &str) -> String {
    format!("{secs} {status} {date}\n")
}

/// The partial directory a build fills before it is moved into place.
pub fn partial(dir: &Path) -> PathBuf {
    let mut s = dir.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> Cache {
        Cache {
            root: PathBuf::from("/root/.cache/ehrx-tools"),
            opt_level: "1".into(),
        }
    }

    #[test]
    fn keys_are_install_tools_shs() {
        let c = cache();
        assert_eq!(
            c.wasmd_dir(),
            Path::new("/root/.cache/ehrx-tools/wasmd-v0.61.14")
        );
        assert_eq!(
            c.hermes_dir(),
            Path::new("/root/.cache/ehrx-tools/hermes-v1.13.2-o1-sysrocksdb")
        );
        assert_eq!(
            c.cosmwasm_check_dir(),
            Path::new("/root/.cache/ehrx-tools/cosmwasm-check-3.0.10-o1")
        );
        assert_eq!(
            c.binaryen_dir(),
            Path::new("/root/.cache/ehrx-tools/binaryen-132.0.0")
        );
        let o3 = Cache {
            opt_level: "3".into(),
            ..cache()
        };
        assert!(o3.hermes_dir().ends_with("hermes-v1.13.2-o3-sysrocksdb"));
        assert!(o3
            .cosmwasm_check_dir()
            .ends_with("cosmwasm-check-3.0.10-o3"));
        assert_eq!(
            partial(&c.wasmd_dir()),
            Path::new("/root/.cache/ehrx-tools/wasmd-v0.61.14.partial")
        );
    }

    #[test]
    fn logs_and_times_live_in_logs() {
        let c = cache();
        assert_eq!(
            c.log_file("wasmd"),
            Path::new("/root/.cache/ehrx-tools/logs/wasmd.log")
        );
        assert_eq!(
            c.took_file("hermes"),
            Path::new("/root/.cache/ehrx-tools/logs/hermes.took")
        );
        assert_eq!(
            c.lock_file(),
            Path::new("/root/.cache/ehrx-tools/.install.lock")
        );
    }

    #[test]
    fn the_took_line_is_seconds_status_date() {
        assert_eq!(
            took_line(1105, "built", "2026-12-06T21:32:11+00:00"),
            "1105 built 2026-12-06T21:32:11+00:00\n"
        );
    }

    #[test]
    fn links_into_the_cache_are_relative() {
        let c = cache();
        assert_eq!(
            c.link_target(&c.wasmd_dir().join("bin/wasmd")),
            Path::new("../wasmd-v0.61.14/bin/wasmd")
        );
        assert_eq!(
            c.link_target(Path::new("/usr/bin/wasm-opt")),
            Path::new("/usr/bin/wasm-opt")
        );
        // Only inside the cache, not a sibling that shares its name as a prefix.
        assert_eq!(
            c.link_target(Path::new("/root/.cache/ehrx-tools-old/x")),
            Path::new("/root/.cache/ehrx-tools-old/x")
        );
    }
}
