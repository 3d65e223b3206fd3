//! `hermes`: the Hermes relayer (crate ibc-relayer-cli), binary `hermes`, and why it is
//! not a plain `cargo install ibc-relayer-cli`:
//!
//! - `--locked` is required: without the crate's own Cargo.lock, resolution fails today
//!   (core2 0.3.x, needed by the Namada dependencies, is yanked) or picks untested versions.
//! - ibc-relayer enables penumbra-sdk-proof-params' `download-proving-keys`. That crate, as
//!   published, ships Git-LFS pointer files (~130 bytes) for its seven src/gen/*_pk.bin
//!   proving keys, and its build script downloads the real keys (~100 MB) from GitHub,
//!   which is not reachable here, so the build fails. The build script skips the download
//!   when each file is >= 500 bytes. The keys are only loaded lazily when Hermes talks to a
//!   Penumbra chain; Cosmos SDK chains (our wasmd) never touch them. So we build against a
//!   copy of that crate whose *_pk.bin files hold a 512-byte placeholder. (A Hermes built
//!   this way cannot relay for Penumbra chains.)
//! - `cargo install <crate>` from the registry ignores [patch] (also from --config;
//!   rust-lang/cargo#12855), so we unpack ibc-relayer-cli into a throwaway build directory,
//!   add `[patch.crates-io]` pointing at the patched copy to its manifest, let cargo update
//!   the lock for that one package only (checked: exactly its source+checksum lines go
//!   away), and then `cargo install --locked --path`.
//! - RocksDB: ibc-relayer depends on Penumbra's storage crate (cnidarium), which pulls
//!   librocksdb-sys, whose build script compiles the bundled RocksDB 8.1.1 C++ sources:
//!   15m39s of the Hermes build in its cargo --timings report, the largest unit by far.
//!   With ROCKSDB_LIB_DIR it links Debian's librocksdb (7.8.3) instead; the Rust bindings
//!   are still generated from the bundled 8.1.1 headers. The C functions the rocksdb crate
//!   has that 7.8.3 lacks (hyper-clock cache, latest sequence number, async-io read option)
//!   are not called by cnidarium, and the linker drops the unused wrappers. Hermes opens no
//!   RocksDB for Cosmos SDK chains at all.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::out::{Logged, Out};
use super::pins::HERMES;
use super::staged::{self, Staged};
use super::sys::{is_executable, need_cmd, quiet, rm_rf};
use super::{apt, cargo_install, Config, Status};

const PROOF_PARAMS: &str = "penumbra-sdk-proof-params";

/// The last line of `hermes version`, e.g. `hermes 1.13.2+...`.
pub fn version(dir: &Path) -> String {
    let (_, v) = quiet(Command::new(dir.join("bin/hermes")).arg("version"));
    v.lines().last().unwrap_or("").to_string()
}

pub fn ok(dir: &Path) -> bool {
    is_executable(&dir.join("bin/hermes"))
        && quiet(Command::new(dir.join("bin/hermes")).arg("version"))
            .1
            .contains(HERMES)
}

pub fn cached(cfg: &Config) -> bool {
    ok(&cfg.cache.hermes_dir())
}

pub fn what() -> String {
    format!("Hermes (ibc-relayer-cli {HERMES})")
}

pub fn install(cfg: &Config, out: &Out) -> Result<Status> {
    let dir = cfg.cache.hermes_dir();
    let bin = dir.join("bin/hermes");
    if ok(&dir) {
        return staged::cached(cfg, out, "hermes", &bin);
    }
    need_cmd("cargo", "install Rust with rustup")?;
    for deb in apt::HERMES_DEBS {
        if !apt::installed(deb) {
            bail!(
                "Debian package {deb} missing (needed to build Hermes); run: {} apt",
                cfg.cmd
            );
        }
    }
    let bdir = cfg.cache.build_root().join(format!("hermes-v{HERMES}"));
    let mut b = Staged::start(cfg, out, "hermes", dir.clone(), Some(bdir.clone()))?;
    fs::create_dir_all(cfg.cache.build_root())?;
    out.log(format!(
        "building from crates.io with {} jobs, opt-level {} (~980 crates incl. RocksDB); log: {}",
        cfg.jobs,
        cfg.cache.opt_level,
        b.logf().display()
    ));
    let stage = b.stage.clone();
    build(cfg, &mut b.log, &stage, &bdir)?;
    if !ok(&stage) {
        bail!(
            "hermes: built binary fails '{}/bin/hermes version' (log: {})",
            stage.display(),
            b.logf().display()
        );
    }
    b.promote()?;
    b.log.run(Command::new(&bin).arg("version"))?;
    out.log(version(&dir));
    b.done(&bin)?;
    Ok(Status::Built)
}

/// `crate_file NAME VERSION`: the .crate in cargo's download cache (the newest of the
/// registries'), downloaded with `cargo info` (which fetches the package) if needed.
fn crate_file(cfg: &Config, log: &mut Logged, name: &str, ver: &str) -> Result<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
        });
    let reg = home.join("registry/cache");
    let file = format!("{name}-{ver}.crate");
    let find = || -> Option<PathBuf> {
        fs::read_dir(&reg)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join(&file))
            .filter_map(|p| Some((fs::metadata(&p).ok()?.modified().ok()?, p)))
            .max()
            .map(|(_, p)| p)
    };
    if let Some(p) = find() {
        return Ok(p);
    }
    log.note(format!("+ cargo info {name}@{ver} (downloads the package)"));
    log.run(
        Command::new("cargo")
            .args(["info", &format!("{name}@{ver}")])
            .current_dir(cfg.cache.build_root()),
    )?;
    find().with_context(|| format!("could not obtain {file} (looked in {})", reg.display()))
}

/// `[[package]]` NAME's version and checksum in a Cargo.lock.
fn locked_package(lock: &str, name: &str) -> Option<(String, String)> {
    let value = |line: &str, key: &str| -> Option<String> {
        let rest = line.strip_prefix(key)?.trim_start().strip_prefix('=')?;
        Some(rest.trim().trim_matches('"').to_string())
    };
    let (mut n, mut v) = (String::new(), String::new());
    for line in lock.lines() {
        if line.starts_with("[[package]]") {
            n.clear();
            v.clear();
        } else if let Some(x) = value(line, "name ") {
            n = x;
        } else if let Some(x) = value(line, "version ") {
            v = x;
        } else if let Some(c) = value(line, "checksum ") {
            if n == name {
                return Some((v, c));
            }
        }
    }
    None
}

/// The lock file changes after the patch are exactly the patched package's source and
/// checksum going away: no line added, two removed, one of them its checksum.
fn lock_change_ok(diff: &str, checksum: &str) -> bool {
    let added = diff.lines().filter(|l| l.starts_with('>')).count();
    let removed: Vec<&str> = diff.lines().filter(|l| l.starts_with('<')).collect();
    added == 0
        && removed.len() == 2
        && removed.contains(&format!("< checksum = \"{checksum}\"").as_str())
}

/// The placeholder written over a Git-LFS pointer, padded to 512 bytes.
fn placeholder() -> Vec<u8> {
    let mut b =
        b"PLACEHOLDER, NOT A PENUMBRA PROVING KEY. Written by ehrx scripts/install-tools.sh\n\
so that the crate builds offline; Penumbra proofs are not used for Cosmos SDK chains.\n"
            .to_vec();
    b.resize(512, 0);
    b
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

fn untar(log: &mut Logged, file: &Path, into: &Path) -> Result<()> {
    log.run(
        Command::new("tar")
            .arg("-xzf")
            .arg(file)
            .arg("-C")
            .arg(into),
    )
}

fn build(cfg: &Config, log: &mut Logged, stage: &Path, bdir: &Path) -> Result<()> {
    // Fresh sources, but keep $bdir/target from a failed attempt: a retry then only
    // compiles what is left (the paths are the same every time).
    let src = bdir.join(format!("ibc-relayer-cli-{HERMES}"));
    let orig_lock = bdir.join("Cargo.lock.orig");
    for p in [&src, &bdir.join("patched"), &orig_lock] {
        rm_rf(p)?;
    }
    fs::create_dir_all(bdir)?;
    let krate = crate_file(cfg, log, "ibc-relayer-cli", HERMES)?;
    log.note(format!("+ unpack {}", krate.display()));
    untar(log, &krate, bdir)?;
    let lock_path = src.join("Cargo.lock");
    let lock = fs::read_to_string(&lock_path).context("ibc-relayer-cli crate has no Cargo.lock")?;
    fs::copy(&lock_path, &orig_lock)?;

    let (pp_ver, pp_sum) = locked_package(&lock, PROOF_PARAMS)
        .context("penumbra-sdk-proof-params not in Cargo.lock")?;
    log.note(format!(
        "+ Cargo.lock pins {PROOF_PARAMS} {pp_ver} (sha256 {pp_sum})"
    ));
    let pp_crate = crate_file(cfg, log, PROOF_PARAMS, &pp_ver)?;
    if sha256_file(&pp_crate)? != pp_sum {
        bail!("checksum mismatch for {}", pp_crate.display());
    }
    let patched = bdir.join("patched");
    fs::create_dir_all(&patched)?;
    untar(log, &pp_crate, &patched)?;
    let pp_dir = patched.join(format!("{PROOF_PARAMS}-{pp_ver}"));
    let gen = pp_dir.join("src/gen");
    let mut keys: Vec<PathBuf> = fs::read_dir(&gen)
        .with_context(|| format!("reading {}", gen.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("_pk.bin"))
        .collect();
    keys.sort();
    let mut n = 0;
    for f in keys {
        let size = fs::metadata(&f)?.len();
        if size < 500 {
            log.note(format!(
                "+ placeholder for {} (was a {size}-byte Git-LFS pointer)",
                f.file_name().unwrap_or_default().to_string_lossy()
            ));
            fs::write(&f, placeholder())?;
            n += 1;
        }
    }
    log.note(format!("+ {n} proving-key files replaced"));

    let mut manifest = OpenOptions::new()
        .append(true)
        .open(src.join("Cargo.toml"))?;
    write!(
        manifest,
        "\n# Added by ehrx scripts/install-tools.sh: build offline against a copy of\n\
         # penumbra-sdk-proof-params whose Git-LFS pointers are replaced by placeholders.\n\
         [patch.crates-io]\n\
         penumbra-sdk-proof-params = {{ path = \"{}\" }}\n",
        pp_dir.display()
    )?;
    drop(manifest);

    // Let cargo record the patch in the lock file (no --locked here; yanked versions
    // already in the lock are kept), then check that nothing but the patched package
    // changed.
    log.note("+ cargo tree -i penumbra-sdk-proof-params (updates the lock for the patch only)");
    log.run(
        Command::new("cargo")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .args(["tree", "-e", "normal", "-i", PROOF_PARAMS, "--depth", "0"])
            .current_dir(&src),
    )?;
    let diff = quiet(Command::new("diff").arg(&orig_lock).arg(&lock_path)).1;
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('<') || l.starts_with('>'))
        .collect();
    log.note("+ lock file changes:");
    log.note(changed.join("\n"));
    if !lock_change_ok(&diff, &pp_sum) {
        bail!("unexpected Cargo.lock changes after patching; refusing to build");
    }

    let (src_s, stage_s) = (
        src.to_string_lossy().into_owned(),
        stage.to_string_lossy().into_owned(),
    );
    cargo_install::install(
        cfg,
        log,
        "hermes",
        &bdir.join("target"),
        &[
            "--locked", "--path", &src_s, "--root", &stage_s, "-j", &cfg.jobs, "--bin", "hermes",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
[[package]]
name = "pem"
version = "3.0.4"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "aaaa"

[[package]]
name = "penumbra-sdk-proof-params"
version = "2.0.4"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "bbbb"
dependencies = [
 "anyhow",
]

[[package]]
name = "penumbra-sdk-proto"
version = "2.0.4"
"#;

    #[test]
    fn the_proof_params_pin_is_read_from_the_lock() {
        assert_eq!(
            locked_package(LOCK, PROOF_PARAMS),
            Some(("2.0.4".into(), "bbbb".into()))
        );
        assert_eq!(locked_package(LOCK, "penumbra-sdk-proto"), None);
    }

    #[test]
    fn only_the_patched_packages_source_and_checksum_may_go() {
        let ok = "120,121d119\n< source = \"registry+https://github.com/rust-lang/crates.io-index\"\n< checksum = \"bbbb\"\n";
        assert!(lock_change_ok(ok, "bbbb"));
        assert!(!lock_change_ok(ok, "cccc"));
        assert!(!lock_change_ok(&format!("{ok}> version = \"1\"\n"), "bbbb"));
        assert!(!lock_change_ok("< checksum = \"bbbb\"\n", "bbbb"));
    }

    #[test]
    fn the_placeholder_is_512_bytes_and_says_what_it_is() {
        let p = placeholder();
        assert_eq!(p.len(), 512);
        assert!(p.starts_with(b"PLACEHOLDER, NOT A PENUMBRA PROVING KEY."));
    }
}
