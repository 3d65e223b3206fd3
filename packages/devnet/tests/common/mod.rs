//! What the end-to-end tests share: running the binary, and cleaning up after it.

use std::path::PathBuf;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_ehrx-devnet");

/// Runs `ehrx-devnet ARGS`, echoing what it printed (shown when a test fails).
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

/// Stops the nodes and deletes the directory even when an assertion fails.
pub struct Cleanup(pub PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let dir = self.0.to_string_lossy().into_owned();
        run(&["down", "--clean", "--dir", &dir]);
    }
}
