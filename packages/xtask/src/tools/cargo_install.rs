//! The build profile of the two cargo-installed tools (Hermes, cosmwasm-check): opt-level
//! `EHRX_TOOLS_OPT_LEVEL` (default 1) instead of the release default 3 (no LTO, 16 codegen
//! units, no debug info: the crates set no profile of their own), the mold linker, and for
//! Hermes Debian's RocksDB instead of the bundled C++ copy. Hermes' CPU time (user+sys) on
//! 2 cores: 34.8 min at opt-level 3, 28.6 min at 1, 19.3 min at 1 with Debian's RocksDB;
//! the relaying figures of scripts/bench.sh did not move (README, "How long it takes").

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use super::out::Logged;
use super::sys::quiet;
use super::Config;

/// `cargo install --timings --target-dir TARGET_DIR ARGS` with the profile above; cargo's
/// `--timings` report is kept as `$EHRX_TOOLS/logs/PIECE-timings.html`.
pub fn install(
    cfg: &Config,
    log: &mut Logged,
    piece: &str,
    target_dir: &Path,
    args: &[&str],
) -> Result<()> {
    let mut cmd = Command::new("cargo");
    cmd.env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", &cfg.cache.opt_level)
        .env("RUSTFLAGS", "-C link-arg=-fuse-ld=mold");
    let mut extra = String::new();
    if piece == "hermes" {
        let (ok, libdir) = quiet(Command::new("pkg-config").args(["--variable=libdir", "rocksdb"]));
        if !ok || libdir.is_empty() {
            anyhow::bail!(
                "pkg-config finds no rocksdb (Debian package librocksdb-dev; run: {} apt)",
                cfg.cmd
            );
        }
        extra = format!("ROCKSDB_LIB_DIR={libdir}");
        cmd.env("ROCKSDB_LIB_DIR", &libdir);
    }
    cmd.args(["install", "--timings", "--target-dir"])
        .arg(target_dir)
        .args(args);
    log.note(format!(
        "+ {extra} CARGO_PROFILE_RELEASE_OPT_LEVEL={} RUSTFLAGS='-C link-arg=-fuse-ld=mold' cargo install --timings --target-dir {} {}",
        cfg.cache.opt_level,
        target_dir.display(),
        args.join(" ")
    ));
    let result = log.run(&mut cmd);
    let report = target_dir.join("cargo-timings/cargo-timing.html");
    if report.is_file() {
        let to = cfg.cache.log_dir().join(format!("{piece}-timings.html"));
        std::fs::copy(&report, &to).with_context(|| format!("copying {}", report.display()))?;
    }
    result
}
