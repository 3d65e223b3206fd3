//! `cosmwasm-check`: `cargo install --locked` of the pinned version (3.0.11 needs rustc
//! >= 1.96) with the crate's own Cargo.lock, at the tools' opt-level.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

use super::out::Out;
use super::pins::COSMWASM_CHECK;
use super::staged::{self, Staged};
use super::sys::{is_executable, need_cmd, quiet};
use super::{cargo_install, Config, Status};

/// `cosmwasm-check --version`, e.g. `cosmwasm-check 3.0.10`.
pub fn version(dir: &Path) -> String {
    quiet(Command::new(dir.join("bin/cosmwasm-check")).arg("--version")).1
}

pub fn ok(dir: &Path) -> bool {
    is_executable(&dir.join("bin/cosmwasm-check"))
        && version(dir).ends_with(&format!(" {COSMWASM_CHECK}"))
}

pub fn cached(cfg: &Config) -> bool {
    ok(&cfg.cache.cosmwasm_check_dir())
}

pub fn what() -> String {
    format!("cosmwasm-check {COSMWASM_CHECK}")
}

pub fn install(cfg: &Config, out: &Out) -> Result<Status> {
    let dir = cfg.cache.cosmwasm_check_dir();
    let bin = dir.join("bin/cosmwasm-check");
    if ok(&dir) {
        return staged::cached(cfg, out, "cosmwasm-check", &bin);
    }
    need_cmd("cargo", "install Rust with rustup")?;
    let bdir = cfg
        .cache
        .build_root()
        .join(format!("cosmwasm-check-{COSMWASM_CHECK}"));
    let mut b = Staged::start(cfg, out, "cosmwasm-check", dir, Some(bdir.clone()))?;
    out.log(format!(
        "cargo install --locked (the crate's own Cargo.lock) with {} jobs, opt-level {}; log: {}",
        cfg.jobs,
        cfg.cache.opt_level,
        b.logf().display()
    ));
    let stage = b.stage.to_string_lossy().into_owned();
    cargo_install::install(
        cfg,
        &mut b.log,
        "cosmwasm-check",
        &bdir,
        &[
            "--locked",
            "--version",
            COSMWASM_CHECK,
            "cosmwasm-check",
            "--root",
            &stage,
            "-j",
            &cfg.jobs,
        ],
    )?;
    if !ok(&b.stage) {
        bail!(
            "cosmwasm-check: built binary fails its version check (log: {})",
            b.logf().display()
        );
    }
    b.promote()?;
    b.done(&bin)?;
    Ok(Status::Built)
}
