//! Helpers of the end-to-end tests (each test file uses some of them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr as _;
use std::time::Duration;

use tendermint_rpc::client::CompatMode;
use tendermint_rpc::{Client as _, HttpClient, HttpClientUrl};

pub const BIN: &str = env!("CARGO_BIN_EXE_ehrx-devnet");

/// The binary under test: `$EHRX_DEVNET_BIN` (when a target directory shared between
/// branches holds another branch's `ehrx-devnet`), else cargo's.
pub fn bin() -> String {
    std::env::var("EHRX_DEVNET_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// Runs `ehrx-devnet ARGS`, echoing its output.
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

/// wasmd: on PATH, else the tool cache's.
pub fn wasmd_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("wasmd").is_file()))
        .unwrap_or(false);
    if on_path {
        PathBuf::from("wasmd")
    } else {
        PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/ehrx-tools/bin/wasmd")
    }
}

/// `wasmd ARGS`, its output.
pub fn wasmd(args: &[&str]) -> Output {
    Command::new(wasmd_bin())
        .args(args)
        .output()
        .expect("wasmd runs")
}

/// Stops the nodes and deletes the directory even when an assertion fails.
pub struct Cleanup(pub PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let dir = self.0.to_string_lossy().into_owned();
        run(&["down", "--clean", "--dir", &dir]);
    }
}

/// One chain of 4 validators brought up by `ehrx-devnet up` in a temporary directory;
/// taken down and deleted when dropped.
pub struct Net {
    // Dropped first: `down --clean` before the temporary directory goes.
    _cleanup: Cleanup,
    pub tmp: tempfile::TempDir,
    /// The devnet directory, as a path and as an argument.
    pub dir: PathBuf,
    pub d: String,
}

/// `up` of one chain `chain` of 4 validators at `base` (the admin holds `admin_bond`).
pub fn up(base: u16, chain: &str, admin_bond: u128) -> Net {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("devnet.toml");
    write_config(&config, base, chain, admin_bond);
    let dir = tmp.path().join("net");
    let d = dir.to_string_lossy().into_owned();
    let net = Net {
        _cleanup: Cleanup(dir.clone()),
        tmp,
        dir,
        d,
    };
    let c = config.to_string_lossy().into_owned();
    assert!(
        run(&["up", "--chains-only", "--config", &c, "--dir", &net.d])
            .status
            .success()
    );
    net
}

/// A devnet file: one chain `chain` of 4 validators at `base`, an admin (with `admin_bond`
/// of the bonding denom) and a peer.
pub fn write_config(path: &Path, base: u16, chain: &str, admin_bond: u128) {
    std::fs::write(
        path,
        format!(
            "version = 1\n[network]\nport_base = {base}\n\
             [[chain]]\nid = \"{chain}\"\nvalidators = 4\n\
             [[account]]\nname = \"admin\"\nrole = \"admin\"\nfee = 1000000\nbond = {admin_bond}\n\
             [[account]]\nname = \"peer1\"\nrole = \"peer\"\nfee = 1000000\n"
        ),
    )
    .unwrap();
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn client(rpc_port: u16) -> HttpClient {
    let url = HttpClientUrl::from_str(&format!("http://127.0.0.1:{rpc_port}")).unwrap();
    HttpClient::builder(url)
        .compat_mode(CompatMode::V0_38)
        .build()
        .unwrap()
}

/// The height of the node at `rpc_port`, if it answers.
pub fn height(rt: &tokio::runtime::Runtime, rpc_port: u16) -> Option<u64> {
    let c = client(rpc_port);
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(2), c.status())
            .await
            .ok()?
            .ok()
    })
    .map(|s| s.sync_info.latest_block_height.value())
}

/// The node ids the node at `rpc_port` has as peers (None: it does not answer).
pub fn peer_ids(rt: &tokio::runtime::Runtime, rpc_port: u16) -> Option<Vec<String>> {
    let c = client(rpc_port);
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(2), c.net_info())
            .await
            .ok()?
            .ok()
    })
    .map(|n| n.peers.iter().map(|p| p.node_info.id.to_string()).collect())
}

/// The validator count of the set at the latest height.
pub fn validator_count(rt: &tokio::runtime::Runtime, rpc_port: u16) -> Option<usize> {
    let c = client(rpc_port);
    rt.block_on(async {
        let s = c.status().await.ok()?;
        c.validators(s.sync_info.latest_block_height, tendermint_rpc::Paging::All)
            .await
            .ok()
    })
    .map(|v| v.validators.len())
}
