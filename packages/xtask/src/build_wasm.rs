//! `xtask build-wasm [--no-check]`: the contracts as chain-ready wasm artifacts (what
//! scripts/build-wasm.sh did in bash). Reasons: shared/notes/stack.md, "Contract build and
//! the bulk-memory trap".
//!
//! 1. `cargo build --profile wasm --lib --target wasm32-unknown-unknown -p registry -p
//!    exchange`, RUSTFLAGS `-C link-arg=-s` (plus `--allow-undefined` on Rust >= 1.96,
//!    CosmWasm/cosmwasm#2695);
//! 2. wasm-opt (binaryen >= 117) lowers bulk-memory and sign-extension ops, which wasmvm 3.0
//!    rejects; skipped when cargo's output and the flags are those of the artifact there;
//! 3. cosmwasm-check with the capabilities wasmd v0.61 advertises;
//! 4. artifacts/<contract>.wasm and artifacts/checksums.txt (sha256sum format).

use std::fs;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::clock::fmt_duration;
use crate::sh::{self, log, warn, Steps};
use crate::tools::sys::{need_cmd, quiet};

const CONTRACTS: [&str; 2] = ["registry", "exchange"];
const TARGET: &str = "wasm32-unknown-unknown";
/// What wasmd v0.61.14 (wasmvm 3.0) offers. The contracts use cosmwasm-std feature
/// `stargate` only; cosmwasm_3_0 is deliberately absent (no released wasmd has it).
const CAPABILITIES: &str = "iterator,staking,stargate,cosmwasm_1_1,cosmwasm_1_2,cosmwasm_1_3,cosmwasm_1_4,cosmwasm_2_0,cosmwasm_2_1,cosmwasm_2_2";
const WASM_OPT_FLAGS: &[&str] = &[
    "-Oz",
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-reference-types",
    "--enable-multivalue",
    "--llvm-memory-copy-fill-lowering",
    "--signext-lowering",
];
const INSTALL_HINT: &str = "run scripts/install-tools.sh";

/// `--no-check` or nothing; whether to run cosmwasm-check.
pub fn parse(args: &[String]) -> Result<bool> {
    let mut check = true;
    for a in args {
        match a.as_str() {
            "--no-check" => check = false,
            _ => bail!("unknown argument '{a}' (try --help)"),
        }
    }
    Ok(check)
}

/// binaryen's version number out of `wasm-opt --version` (`wasm-opt version 132 (...)`).
pub fn wasm_opt_version(out: &str) -> Option<u32> {
    let i = out.find("version ")?;
    let digits: String = out[i + 8..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// The minor version out of `rustc --version` (`rustc 1.95.0 (...)`).
pub fn rust_minor(out: &str) -> Option<u32> {
    out.split_whitespace()
        .nth(1)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}

/// What an artifact was made from: cargo's output, the wasm-opt version and flags.
pub fn stamp_key(raw_sha: &str, wasm_opt_ver: u32) -> String {
    format!(
        "{raw_sha} wasm-opt {wasm_opt_ver} {}",
        WASM_OPT_FLAGS.join(" ")
    )
}

/// Whether the artifact there is made from the same input (its stamp file, as `$(<f)`
/// reads it, equals the key); then wasm-opt, the slow part, is skipped.
pub fn fresh(artifact_exists: bool, stamp: Option<&str>, key: &str) -> bool {
    artifact_exists && stamp.is_some_and(|s| s.trim_end_matches('\n') == key)
}

pub fn run(args: Vec<String>) -> Result<()> {
    let check = parse(&args)?;
    let root = sh::repo();
    let out = sh::env_set("EHRX_ARTIFACTS")
        .map(Into::into)
        .unwrap_or_else(|| root.join("artifacts"));
    let target_dir = sh::target_dir();

    // ---- tools
    need_cmd("cargo", "install Rust with rustup")?;
    let (_, targets) = quiet(Command::new("rustup").args(["target", "list", "--installed"]));
    if !targets.lines().any(|l| l == TARGET) {
        bail!("Rust target {TARGET} is not installed ({INSTALL_HINT} rust-target, or: rustup target add {TARGET})");
    }
    need_cmd("wasm-opt", &format!("{INSTALL_HINT} wasm-opt"))?;
    if check {
        need_cmd("cosmwasm-check", &format!("{INSTALL_HINT} cosmwasm-check"))?;
    }
    // The lowering passes need binaryen >= 117; Debian's 108 silently lacks them.
    let (_, v) = quiet(Command::new("wasm-opt").arg("--version"));
    let wasm_opt_ver = match wasm_opt_version(&v) {
        Some(n) if n >= 117 => n,
        n => bail!(
            "wasm-opt {} is version '{}', too old for --llvm-memory-copy-fill-lowering ({INSTALL_HINT} wasm-opt)",
            crate::tools::sys::which("wasm-opt").unwrap_or_default().display(),
            n.map_or("?".into(), |n| n.to_string())
        ),
    };
    let (_, rustc) = quiet(Command::new("rustc").arg("--version"));
    let mut rustflags = "-C link-arg=-s".to_string();
    if rust_minor(&rustc).is_some_and(|m| m >= 96) {
        rustflags += " -C link-arg=--allow-undefined";
    }

    let total_start = Instant::now();
    log(format!(
        "repo: {}; artifacts: {}; {rustc}; wasm-opt {wasm_opt_ver}",
        root.display(),
        out.display()
    ));

    // ---- 1. cargo build
    let mut steps = Steps::default();
    steps.step(format!(
        "cargo build (profile wasm, {TARGET}): {}",
        CONTRACTS.join(" ")
    ));
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(&root)
        .env_remove("CARGO_BUILD_TARGET")
        .env("RUSTFLAGS", &rustflags)
        .args(["build", "--profile", "wasm", "--lib"]);
    if sh::env_set("EHRX_CARGO_LOCKED").is_some() {
        cargo.arg("--locked");
    }
    cargo.args(["--target", TARGET]);
    for c in CONTRACTS {
        cargo.args(["-p", c]);
    }
    if sh::run(&mut cargo).is_err() {
        bail!("cargo build failed (see the compiler output above)");
    }

    // ---- 2. wasm-opt
    steps.step("wasm-opt: lower bulk-memory and sign-ext");
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut raw_sizes = Vec::new();
    for c in CONTRACTS {
        let raw = target_dir.join(format!("{TARGET}/wasm/{}.wasm", c.replace('-', "_")));
        let Ok(meta) = fs::metadata(&raw) else {
            bail!("cargo produced no {}", raw.display());
        };
        raw_sizes.push(meta.len());
        let artifact = out.join(format!("{c}.wasm"));
        let stamp = out.join(format!(".{c}.wasm.input"));
        let key = stamp_key(&sh::sha256_file(&raw)?, wasm_opt_ver);
        let stamp_text = fs::read_to_string(&stamp).ok();
        if fresh(artifact.is_file(), stamp_text.as_deref(), &key) {
            sh::touch(&artifact)?;
            log(format!(
                "{c}: cargo output unchanged; {} kept",
                artifact.display()
            ));
            continue;
        }
        let tmp = out.join(format!(".{c}.wasm.tmp"));
        let opt = sh::run(
            Command::new("wasm-opt")
                .args(WASM_OPT_FLAGS)
                .arg(&raw)
                .arg("-o")
                .arg(&tmp),
        );
        if opt.is_err() {
            bail!("wasm-opt failed on {}", raw.display());
        }
        fs::rename(&tmp, &artifact)?;
        fs::write(&stamp, format!("{key}\n"))?;
        log(format!("{c}: {} -> {}", raw.display(), artifact.display()));
    }

    // ---- 3. cosmwasm-check
    if check {
        let (_, ver) = quiet(Command::new("cosmwasm-check").arg("--version"));
        steps.step(format!("cosmwasm-check ({ver})"));
        let ok = sh::run(
            Command::new("cosmwasm-check")
                .args(["--available-capabilities", CAPABILITIES])
                .args(CONTRACTS.map(|c| out.join(format!("{c}.wasm")))),
        );
        if ok.is_err() {
            bail!("cosmwasm-check rejected the artifacts (output above). If it mentions bulk memory, the wasm-opt lowering did not run as expected");
        }
    } else {
        warn("cosmwasm-check skipped (--no-check): the chain may still refuse the upload");
    }

    // ---- 4. checksums and sizes
    steps.step("checksums");
    let mut sums = Vec::new();
    let mut checksums = String::new();
    for c in CONTRACTS {
        let sha = sh::sha256_file(&out.join(format!("{c}.wasm")))?;
        checksums += &format!("{sha}  {c}.wasm\n");
        sums.push(sha);
    }
    fs::write(out.join("checksums.txt"), &checksums)?;
    eprint!("{checksums}");
    steps.done();

    println!();
    println!(
        "Artifacts in {} (built in {}):",
        out.display(),
        fmt_duration(total_start.elapsed().as_secs())
    );
    println!(
        "  {:<14} {:>12} {:>12}  SHA256",
        "CONTRACT", "CARGO BYTES", "FINAL BYTES"
    );
    for (i, c) in CONTRACTS.iter().enumerate() {
        let final_size = fs::metadata(out.join(format!("{c}.wasm")))?.len();
        println!(
            "  {:<14} {:>12} {:>12}  {}",
            format!("{c}.wasm"),
            raw_sizes[i],
            final_size,
            sums[i]
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        assert!(parse(&[]).unwrap());
        assert!(!parse(&["--no-check".into()]).unwrap());
        assert_eq!(
            parse(&["--check".into()]).unwrap_err().to_string(),
            "unknown argument '--check' (try --help)"
        );
    }

    #[test]
    fn versions_of_the_tools() {
        assert_eq!(
            wasm_opt_version("wasm-opt version 132 (version_132)"),
            Some(132)
        );
        assert_eq!(wasm_opt_version("wasm-opt version 108"), Some(108));
        assert_eq!(wasm_opt_version("something else"), None);
        assert_eq!(rust_minor("rustc 1.95.0 (59807616e 2026-04-14)"), Some(95));
        assert_eq!(rust_minor("rustc 1.96.0-nightly"), Some(96));
    }

    #[test]
    fn wasm_opt_is_skipped_only_for_the_same_input_and_flags() {
        let key = stamp_key("abc", 132);
        assert!(key.starts_with("abc wasm-opt 132 -Oz --enable-bulk-memory"));
        assert!(key.ends_with("--signext-lowering"));
        assert!(fresh(true, Some(&format!("{key}\n")), &key));
        assert!(!fresh(false, Some(&key), &key), "no artifact");
        assert!(!fresh(true, None, &key), "no stamp");
        assert!(
            !fresh(true, Some(&stamp_key("abd", 132)), &key),
            "new cargo output"
        );
        assert!(
            !fresh(true, Some(&stamp_key("abc", 133)), &key),
            "new wasm-opt"
        );
    }
}
