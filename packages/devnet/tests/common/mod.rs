//! What the end-to-end tests share: running the `ehrx-devnet` binary.

use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_ehrx-devnet");

/// The binary under test: `$EHRX_DEVNET_BIN` if set (a copy taken right after the build,
/// when several worktrees share one target directory and overwrite each other's binary),
/// else cargo's.
pub fn bin() -> String {
    std::env::var("EHRX_DEVNET_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// Runs `ehrx-devnet ARGS`, echoing the command and its output (shown when a test fails).
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(bin()).args(args).output().expect("runs");
    eprintln!(
        "$ ehrx-devnet {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
