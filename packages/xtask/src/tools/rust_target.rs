//! `rust-target`: rustup's wasm32-unknown-unknown target, for the contracts.

use std::process::Command;

use anyhow::Result;

use super::out::{Logged, Out};
use super::pins::RUST_WASM_TARGET;
use super::sys::{need_cmd, quiet};
use super::{Config, Status};

pub fn cached() -> bool {
    let (_, list) = quiet(Command::new("rustup").args(["target", "list", "--installed"]));
    list.lines().any(|l| l == RUST_WASM_TARGET)
}

pub fn what() -> String {
    format!("rustup target {RUST_WASM_TARGET}")
}

/// `rustc --version`, e.g. `rustc 1.95.0 (59807616e 2026-04-14)`.
pub fn rustc_version() -> String {
    quiet(Command::new("rustc").arg("--version")).1
}

pub fn install(cfg: &Config, out: &Out) -> Result<Status> {
    need_cmd("rustup", "install Rust with rustup")?;
    if cached() {
        out.log(format!(
            "{RUST_WASM_TARGET} already installed for {}",
            rustc_version()
        ));
        return Ok(Status::Present);
    }
    let mut log = Logged::create(
        out,
        &cfg.cache.log_file("rust-target"),
        "rust-target",
        cfg.heartbeat,
    )?;
    log.run(Command::new("rustup").args(["target", "add", RUST_WASM_TARGET]))?;
    Ok(Status::Installed)
}

/// The summary's version: `rustc 1.95.0`.
pub fn summary_version() -> String {
    let v = rustc_version();
    format!("rustc {}", v.split_whitespace().nth(1).unwrap_or(""))
}
