//! `xtask tools [PIECES] [--list] [--check]`: installs the pinned tools this project needs
//! into the tool cache, outside the repository (what scripts/install-tools.sh did in bash;
//! it now builds this binary and runs it). Versions and the reasons for them:
//! shared/notes/stack.md.
//!
//! Pieces (one module each): `apt` (Debian packages), `rust-target` (rustup's wasm32
//! target), `wasmd`, `hermes`, `cosmwasm-check`, `wasm-opt`, and the two Maven-built Java
//! tools `fhir-validator` and `synthea` (`java.rs`).
//!
//! apt and rust-target run first; then the long pieces not yet cached build at the same
//! time, one thread each (Go and two cargo builds keep both cores busy through each
//! other's serial phases), each line they print prefixed with the piece's name.
//! `EHRX_INSTALL_SERIAL=1` builds them one after the other instead.
//!
//! The cache (`cache.rs`): `$EHRX_TOOLS` (default ~/.cache/ehrx-tools), one directory per
//! tool and version (and recipe), symlinks in `bin/`, build output in `logs/<piece>.log`,
//! the time a build took in `logs/<piece>.took` ("SECONDS STATUS DATE"; scripts/bench.sh
//! reports it). A piece whose cached binary exists and reports the pinned version is
//! skipped, so a second run takes seconds.
//!
//! Environment: `EHRX_TOOLS`, `CARGO_BUILD_JOBS` (rustc jobs of the cargo builds, default
//! 2), `EHRX_KEEP_BUILD=1` (keep `$EHRX_TOOLS/build/...`), `EHRX_HEARTBEAT` (seconds
//! between "still running" lines, default 60), `EHRX_INSTALL_SERIAL=1`,
//! `EHRX_TOOLS_OPT_LEVEL` (opt-level of Hermes and cosmwasm-check, default 1, part of their
//! cache keys), `EHRX_INSTALL_CMD` (the command the messages tell to re-run; set by
//! scripts/install-tools.sh).

mod apt;
mod cache;
mod cargo_install;
mod cosmwasm_check;
mod hermes;
mod java;
pub(crate) mod out;
pub(crate) mod piece;
mod rust_target;
mod staged;
pub(crate) mod sys;
mod wasm_opt;
mod wasmd;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::clock::fmt_duration;
use cache::Cache;
use out::Out;
use piece::{names, Piece, Selection};

/// The pinned versions.
pub mod pins {
    /// wasmd (SDK 0.53, ibc-go v10, CometBFT 0.38, wasmvm v3.0.7): the newest line inside
    /// Hermes 1.13's declared support.
    pub const WASMD: &str = "v0.61.14";
    /// wasmd v0.61.14 pins bytedance/sonic v1.14.2, which does not compile with Go >= 1.26
    /// ("undefined: GoMapIterator", cosmos/cosmos-sdk#25911). These are the first versions
    /// that do; applied only when the pinned one is older.
    pub const SONIC: &str = "v1.15.1";
    pub const SONIC_LOADER: &str = "v0.5.1";
    /// The crate ibc-relayer-cli.
    pub const HERMES: &str = "1.13.2";
    /// 3.0.11 needs rustc >= 1.96.
    pub const COSMWASM_CHECK: &str = "3.0.10";
    /// The npm package; Debian's binaryen 108 is too old.
    pub const BINARYEN: &str = "132.0.0";
    pub const RUST_WASM_TARGET: &str = "wasm32-unknown-unknown";
}

#[derive(clap::Args, Debug)]
pub struct ToolsArgs {
    /// List the pieces and exit
    #[arg(long)]
    list: bool,
    /// Exit 0 when the pieces are installed and cached, 1 otherwise; install nothing
    #[arg(long)]
    check: bool,
    /// Pieces to install (default: all): apt rust-target wasmd hermes cosmwasm-check
    /// wasm-opt fhir-validator synthea
    pieces: Vec<String>,
}

/// The settings of a run, from the environment.
pub struct Config {
    pub cache: Cache,
    /// The repository (the Java tools' sources): `EHRX_REPO_ROOT`, or where this crate
    /// was built from.
    pub repo: PathBuf,
    /// `CARGO_BUILD_JOBS`, default 2.
    pub jobs: String,
    pub keep_build: bool,
    /// `EHRX_HEARTBEAT` seconds, default 60.
    pub heartbeat: u64,
    pub serial: bool,
    /// How a user re-runs the install: `EHRX_INSTALL_CMD`, default `xtask tools`.
    pub cmd: String,
}

/// `${NAME:-}` non-empty.
fn env_set(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    fn from_env() -> Config {
        let root = env_set("EHRX_TOOLS").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/ehrx-tools")
        });
        let repo = env_set("EHRX_REPO_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")));
        Config {
            cache: Cache {
                root,
                opt_level: env_set("EHRX_TOOLS_OPT_LEVEL").unwrap_or_else(|| "1".into()),
            },
            repo,
            jobs: env_set("CARGO_BUILD_JOBS").unwrap_or_else(|| "2".into()),
            keep_build: env_set("EHRX_KEEP_BUILD").is_some(),
            heartbeat: env_set("EHRX_HEARTBEAT")
                .and_then(|s| s.parse().ok())
                .unwrap_or(60),
            serial: env_set("EHRX_INSTALL_SERIAL").is_some(),
            cmd: env_set("EHRX_INSTALL_CMD").unwrap_or_else(|| "xtask tools".into()),
        }
    }
}

/// What became of a piece: the summary's STATUS column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Already there (apt, rust-target).
    Present,
    /// Installed by a package manager (apt, rustup, npm).
    Installed,
    /// Found in the cache.
    Cached,
    /// Built now.
    Built,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Present => "present",
            Status::Installed => "installed",
            Status::Cached => "cached",
            Status::Built => "built",
        }
    }
}

/// A piece's status and how long it took.
#[derive(Clone, Copy, Debug)]
struct Outcome {
    status: Status,
    secs: u64,
}

pub fn run(args: ToolsArgs) -> ExitCode {
    if args.list {
        for p in Piece::ALL {
            println!("{}", p.name());
        }
        return ExitCode::SUCCESS;
    }
    let out = Out::plain();
    out::catch_interrupts();
    let result = install(&args, &out);
    if out::interrupted() {
        out.error("interrupted; the builds were stopped (their .partial directories are rebuilt on the next run)");
        return ExitCode::from(130);
    }
    match result {
        Ok(code) => code,
        Err(e) if e.is::<AlreadyReported>() => ExitCode::FAILURE,
        Err(e) => {
            out.error(format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// `piece_cached`: installed and cached, checked the way a build checks its result.
fn cached(cfg: &Config, p: Piece) -> bool {
    match p {
        Piece::Apt => apt::cached(),
        Piece::RustTarget => rust_target::cached(),
        Piece::Wasmd => wasmd::cached(cfg),
        Piece::Hermes => hermes::cached(cfg),
        Piece::CosmwasmCheck => cosmwasm_check::cached(cfg),
        Piece::WasmOpt => wasm_opt::cached(cfg),
        Piece::FhirValidator | Piece::Synthea => java::tool(p).cached(cfg),
    }
}

fn install(args: &ToolsArgs, out: &Out) -> Result<ExitCode> {
    let sel = Selection::parse(&args.pieces)?;
    let cfg = Config::from_env();
    let root = &cfg.cache.root;
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;

    // Serialise concurrent runs (two shells, or CI next to a developer); the lock file is
    // install-tools.sh's, so this waits for a bash install too.
    let _lock = if args.check {
        None
    } else {
        let lock = cfg.cache.lock_file();
        Some(sys::lock(&lock, || {
            out.log(format!(
                "another install-tools.sh holds {}; waiting for it",
                lock.display()
            ))
        })?)
    };

    let total = Instant::now();
    out.log(format!(
        "tool cache: {} (pieces: {})",
        root.display(),
        names(sel.pieces())
    ));

    if args.check {
        let missing: Vec<Piece> = sel
            .pieces()
            .iter()
            .copied()
            .filter(|&p| !cached(&cfg, p))
            .collect();
        if !missing.is_empty() {
            out.log(format!(
                "not installed yet: {} (run: {} {})",
                names(&missing),
                cfg.cmd,
                names(&missing)
            ));
            return Ok(ExitCode::FAILURE);
        }
        out.log(format!("installed and cached: {}", names(sel.pieces())));
        return Ok(ExitCode::SUCCESS);
    }

    let mut done: HashMap<Piece, Outcome> = HashMap::new();
    let mut one = |p: Piece| -> Result<()> {
        let o = run_piece(&cfg, out, &sel, p).map_err(|_| failed_exit())?;
        done.insert(p, o);
        Ok(())
    };
    // apt first when any piece needs packages, and the Rust target.
    if sel.runs_apt() {
        one(Piece::Apt)?;
    }
    if sel.has(Piece::RustTarget) {
        one(Piece::RustTarget)?;
    }
    // The long pieces: cached ones are linked here at once; those to build run in
    // parallel, each line prefixed with the piece's name.
    let mut to_build = Vec::new();
    for p in sel.long() {
        if cfg.serial || cached(&cfg, p) {
            one(p)?;
        } else {
            to_build.push(p);
        }
    }
    if to_build.len() == 1 {
        one(to_build[0])?;
    } else if to_build.len() > 1 {
        let step = out.step(format!(
            "building in parallel: {} (logs: {}/<piece>.log)",
            names(&to_build),
            cfg.cache.log_dir().display()
        ));
        let results = build_parallel(&cfg, &sel, &to_build);
        out.step_done(&step);
        let mut failed = Vec::new();
        for (p, r) in to_build.iter().zip(results) {
            match r {
                Some(o) => {
                    done.insert(*p, o);
                }
                None => failed.push(*p),
            }
        }
        if let Some(first) = failed.first() {
            anyhow::bail!(
                "building {} failed (see the lines prefixed [{}] above and {}); fix the cause and re-run: {} {}",
                names(&failed),
                first.name(),
                cfg.cache.log_file(first.name()).display(),
                cfg.cmd,
                names(&failed)
            );
        }
    }

    // Only when empty.
    let _ = std::fs::remove_dir(cfg.cache.build_root());
    summary(&cfg, &sel, &done, total.elapsed().as_secs());
    Ok(ExitCode::SUCCESS)
}

/// The error of a piece that already reported its failure: exit 1 without another message.
fn failed_exit() -> anyhow::Error {
    anyhow::Error::new(AlreadyReported)
}

#[derive(Debug)]
struct AlreadyReported;

impl std::fmt::Display for AlreadyReported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a piece failed (reported above)")
    }
}

impl std::error::Error for AlreadyReported {}

/// Builds the pieces at the same time, one thread each; a failed build lets the others
/// finish, so that they are cached for the re-run. `None` for a piece that failed.
fn build_parallel(cfg: &Config, sel: &Selection, pieces: &[Piece]) -> Vec<Option<Outcome>> {
    for p in pieces {
        let _ = std::fs::remove_file(cfg.cache.took_file(p.name()));
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = pieces
            .iter()
            .map(|&p| s.spawn(move || run_piece(cfg, &Out::prefixed(p.name()), sel, p).ok()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect()
    })
}

/// One piece between its step lines; a built or installed one leaves its time in
/// `<piece>.took`. A failure is reported here: the cause, the log's last lines, the fix.
fn run_piece(cfg: &Config, out: &Out, sel: &Selection, p: Piece) -> Result<Outcome> {
    let what = match p {
        Piece::Apt => apt::what(sel),
        Piece::RustTarget => rust_target::what(),
        Piece::Wasmd => wasmd::what(),
        Piece::Hermes => hermes::what(),
        Piece::CosmwasmCheck => cosmwasm_check::what(),
        Piece::WasmOpt => wasm_opt::what(),
        Piece::FhirValidator | Piece::Synthea => java::tool(p).what(cfg),
    };
    let step = out.step(format!("{}: {what}", p.name()));
    let result = match p {
        Piece::Apt => apt::install(cfg, out, sel),
        Piece::RustTarget => rust_target::install(cfg, out),
        Piece::Wasmd => wasmd::install(cfg, out),
        Piece::Hermes => hermes::install(cfg, out),
        Piece::CosmwasmCheck => cosmwasm_check::install(cfg, out),
        Piece::WasmOpt => wasm_opt::install(cfg, out),
        Piece::FhirValidator | Piece::Synthea => java::tool(p).install(cfg, out),
    };
    match result {
        Ok(status) => {
            let secs = step.secs();
            if matches!(status, Status::Built | Status::Installed) {
                cfg.cache.write_took(p.name(), secs, status.as_str())?;
            }
            out.step_done(&step);
            Ok(Outcome { status, secs })
        }
        Err(e) => {
            if !out::interrupted() {
                report_failure(cfg, out, p, &e);
            }
            Err(e)
        }
    }
}

fn report_failure(cfg: &Config, out: &Out, p: Piece, e: &anyhow::Error) {
    out.error(format!("{e:#}"));
    let mut text = format!(
        "\n[{}] FAILED: piece \"{}\"",
        crate::clock::clock(),
        p.name()
    );
    let log = cfg.cache.log_file(p.name());
    if std::fs::metadata(&log).is_ok_and(|m| m.len() > 0) {
        text.push_str(&format!(
            "\n  log: {}\n  last lines of the log:",
            log.display()
        ));
        for line in out::tail(&log, 25) {
            text.push_str(&format!("\n    | {line}"));
        }
    }
    text.push_str(&format!(
        "\n  Fix the cause and re-run: {} {}",
        cfg.cmd,
        p.name()
    ));
    out.lines(&text);
}

/// A row of the summary table.
fn row(piece: &str, status: &str, time: &str, version: &str, path: &str) -> String {
    format!("  {piece:<15} {status:<10} {time:<8} {version:<40} {path}")
}

/// The summary: each selected piece's status, time, version and path.
fn summary(cfg: &Config, sel: &Selection, done: &HashMap<Piece, Outcome>, total: u64) {
    let line = |p: Piece, version: String, path: String| {
        let o = done.get(&p);
        println!(
            "{}",
            row(
                p.name(),
                o.map(|o| o.status.as_str()).unwrap_or(""),
                &fmt_duration(o.map(|o| o.secs).unwrap_or(0)),
                &version,
                &path
            )
        );
    };
    println!();
    println!("Summary (total {})", fmt_duration(total));
    println!("{}", row("PIECE", "STATUS", "TIME", "VERSION", "PATH"));
    let show = |p: Piece| sel.has(p) || (p == Piece::Apt && done.contains_key(&p));
    for p in Piece::ALL.into_iter().filter(|&p| show(p)) {
        let c = &cfg.cache;
        let (version, path) = match p {
            Piece::Apt => ("Debian packages".into(), "dpkg".into()),
            Piece::RustTarget => (
                rust_target::summary_version(),
                pins::RUST_WASM_TARGET.into(),
            ),
            Piece::Wasmd => (
                wasmd::summary_version(cfg),
                c.wasmd_dir().join("bin/wasmd").display().to_string(),
            ),
            Piece::Hermes => (
                hermes::version(&c.hermes_dir()),
                c.hermes_dir().join("bin/hermes").display().to_string(),
            ),
            Piece::CosmwasmCheck => (
                cosmwasm_check::version(&c.cosmwasm_check_dir()),
                c.cosmwasm_check_dir()
                    .join("bin/cosmwasm-check")
                    .display()
                    .to_string(),
            ),
            Piece::WasmOpt => (
                wasm_opt::version(&c.binaryen_dir()).1,
                wasm_opt::bin(&c.binaryen_dir()).display().to_string(),
            ),
            Piece::FhirValidator | Piece::Synthea => java::tool(p).summary(cfg),
        };
        line(p, version, path);
    }
    let bin = cfg.cache.bin_dir();
    println!();
    println!(
        "Tools are linked in {} (scripts that source scripts/lib.sh get it on PATH). For your shell:",
        bin.display()
    );
    println!("  export PATH=\"{}:$PATH\"", bin.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_rows_have_install_tools_columns() {
        assert_eq!(
            row("PIECE", "STATUS", "TIME", "VERSION", "PATH"),
            format!(
                "  PIECE           STATUS     TIME     VERSION{} PATH",
                " ".repeat(33)
            )
        );
        assert_eq!(
            row(
                "wasm-opt",
                "cached",
                "0m00s",
                "wasm-opt version 132 (version_132)",
                "/c/x"
            ),
            "  wasm-opt        cached     0m00s    wasm-opt version 132 (version_132)       /c/x"
        );
    }
}
