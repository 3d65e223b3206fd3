//! What the end-to-end tests share: running the `ehrx-devnet` binary.

use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_ehrx-devnet");

/// Runs `ehrx-devnet ARGS`, echoing the command and its output (shown when a test fails).
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(BIN).args(args).output().expect("runs");
    eprintln!(
        "$ ehrx-devnet {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
