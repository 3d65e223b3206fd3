//! `apt`: the Debian packages, installed with `--no-install-recommends`, so everything
//! needed is listed:
//!
//! - libclang-dev, clang: bindgen (zstd-sys, librocksdb-sys) for Hermes
//! - protobuf-compiler: protoc, for the Namada crates' build scripts (Hermes)
//! - libprotobuf-dev: the well-known .proto files (google/protobuf/timestamp.proto) those
//!   build scripts import; only a Recommends of protobuf-compiler, and without it the
//!   namada_tx build script fails after ~14 min of build
//! - libssl-dev, pkg-config: openssl-sys (Hermes)
//! - patchelf: points wasmd's rpath at its own directory
//! - jq, curl: used by the project's other scripts
//! - mold: a faster linker for the two cargo builds (their ~300 build scripts, proc macros
//!   and the 80 MB hermes binary)
//! - librocksdb-dev: Debian's RocksDB, linked instead of compiling the copy bundled in
//!   librocksdb-sys (see hermes.rs)

use std::process::Command;

use anyhow::{bail, Result};

use super::out::{Logged, Out};
use super::piece::{Piece, Selection};
use super::sys::{succeeds, which};
use super::{Config, Status};

/// What Hermes' build needs.
pub const HERMES_DEBS: [&str; 8] = [
    "libclang-dev",
    "clang",
    "protobuf-compiler",
    "libprotobuf-dev",
    "libssl-dev",
    "pkg-config",
    "mold",
    "librocksdb-dev",
];

/// Every package of the `apt` piece.
pub fn all_debs() -> Vec<&'static str> {
    let mut v = vec!["jq", "curl"];
    v.extend(HERMES_DEBS);
    v.push("patchelf");
    v
}

/// The packages a selection needs: all with `apt`, otherwise only the selected pieces'.
pub fn wanted(sel: &Selection) -> Vec<&'static str> {
    if sel.has(Piece::Apt) {
        return all_debs();
    }
    let mut v = vec!["jq", "curl"];
    if sel.has(Piece::Wasmd) {
        v.push("patchelf");
    }
    if sel.has(Piece::Hermes) {
        v.extend(HERMES_DEBS);
    }
    if sel.has(Piece::CosmwasmCheck) {
        v.extend(["pkg-config", "mold"]);
    }
    v
}

/// `dpkg -s PACKAGE` succeeds.
pub fn installed(deb: &str) -> bool {
    succeeds(Command::new("dpkg").args(["-s", deb]))
}

pub fn cached() -> bool {
    all_debs().into_iter().all(installed)
}

pub fn what(sel: &Selection) -> String {
    format!("Debian packages ({})", wanted(sel).join(" "))
}

pub fn install(cfg: &Config, out: &Out, sel: &Selection) -> Result<Status> {
    let missing: Vec<&str> = wanted(sel).into_iter().filter(|d| !installed(d)).collect();
    if missing.is_empty() {
        out.log("all present");
        return Ok(Status::Present);
    }
    out.log(format!("missing: {}", missing.join(" ")));
    let sudo = !super::sys::is_root();
    if sudo && which("sudo").is_none() {
        bail!(
            "Debian packages missing ({}) and not root, no sudo: install them with apt-get",
            missing.join(" ")
        );
    }
    let apt = |args: &[&str]| {
        let mut c = Command::new(if sudo { "sudo" } else { "env" });
        if sudo {
            c.arg("env");
        }
        c.arg("DEBIAN_FRONTEND=noninteractive")
            .arg("apt-get")
            .args(args);
        c
    };
    let mut log = Logged::create(out, &cfg.cache.log_file("apt"), "apt", cfg.heartbeat)?;
    out.log(format!(
        "apt-get update (once), then install; log: {}",
        log.path().display()
    ));
    log.run(&mut apt(&["update"]))?;
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend(&missing);
    log.run(&mut apt(&args))?;
    Ok(Status::Installed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(args: &[&str]) -> Selection {
        Selection::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn the_apt_piece_wants_every_package() {
        assert_eq!(
            wanted(&sel(&[])).join(" "),
            "jq curl libclang-dev clang protobuf-compiler libprotobuf-dev libssl-dev \
             pkg-config mold librocksdb-dev patchelf"
        );
    }

    #[test]
    fn other_pieces_want_only_their_packages() {
        assert_eq!(wanted(&sel(&["wasmd"])), vec!["jq", "curl", "patchelf"]);
        assert_eq!(
            wanted(&sel(&["cosmwasm-check"])),
            vec!["jq", "curl", "pkg-config", "mold"]
        );
        assert_eq!(wanted(&sel(&["wasmd", "hermes"])).len(), 11);
    }
}
