//! `wasm-opt`: from the npm package binaryen (Debian's binaryen 108 is too old for the
//! lowering flags the contracts' build uses).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};

use super::out::Out;
use super::pins::BINARYEN;
use super::staged::{self, Staged};
use super::sys::{is_executable, need_cmd, quiet};
use super::{Config, Status};

pub fn bin(dir: &Path) -> PathBuf {
    dir.join("node_modules/.bin/wasm-opt")
}

/// `wasm-opt --version`, e.g. `wasm-opt version 132 (version_132)`.
pub fn version(dir: &Path) -> (bool, String) {
    quiet(Command::new(bin(dir)).arg("--version"))
}

/// Whether a `--version` line names the pinned major: `grep -q "version 132\b"`.
fn reports_major(text: &str) -> bool {
    let major = BINARYEN.split('.').next().unwrap_or(BINARYEN);
    let pat = format!("version {major}");
    text.match_indices(&pat).any(|(i, _)| {
        text[i + pat.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

pub fn ok(dir: &Path) -> bool {
    if !is_executable(&bin(dir)) {
        return false;
    }
    let (success, v) = version(dir);
    success && reports_major(&v)
}

pub fn cached(cfg: &Config) -> bool {
    ok(&cfg.cache.binaryen_dir())
}

pub fn what() -> String {
    format!("wasm-opt (npm binaryen@{BINARYEN})")
}

pub fn install(cfg: &Config, out: &Out) -> Result<Status> {
    let dir = cfg.cache.binaryen_dir();
    if ok(&dir) {
        return staged::cached(cfg, out, "wasm-opt", &bin(&dir));
    }
    need_cmd("npm", "install Node.js and npm")?;
    let mut b = Staged::start(cfg, out, "wasm-opt", dir.clone(), None)?;
    std::fs::create_dir_all(&b.stage)?;
    out.log(format!(
        "npm install --prefix {} binaryen@{BINARYEN}; log: {}",
        b.stage.display(),
        b.logf().display()
    ));
    let stage = b.stage.clone();
    b.log.run(
        Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&stage)
            .args(["--no-audit", "--no-fund", &format!("binaryen@{BINARYEN}")]),
    )?;
    b.promote()?;
    if !ok(&dir) {
        let major = BINARYEN.split('.').next().unwrap_or(BINARYEN);
        bail!(
            "wasm-opt: '{} --version' does not report version {major} (log: {})",
            bin(&dir).display(),
            b.logf().display()
        );
    }
    b.done(&bin(&dir))?;
    Ok(Status::Installed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_line_must_name_the_pinned_major() {
        assert!(reports_major("wasm-opt version 132 (version_132)"));
        assert!(reports_major("wasm-opt version 132"));
        assert!(!reports_major("wasm-opt version 1320"));
        assert!(!reports_major("wasm-opt version 108"));
        assert!(!reports_major(""));
    }
}
