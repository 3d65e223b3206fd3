//! End to end, on real wasmd nodes (ignored by default: it starts four nodes):
//!
//! ```sh
//! PATH=~/.cache/ehrx-tools/bin:$PATH cargo test -p ehrx-devnet --test one_chain -- --ignored
//! ```
//!
//! One chain with four validators on ports 36500..36540: `up`, `status` shows four
//! validators of 10,000 power each; validator 2 killed with SIGKILL, the chain still makes
//! blocks; `start-node` brings it back and it catches up; `down --clean`.

mod common;

use common::run;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use tendermint_rpc::client::CompatMode;
use tendermint_rpc::{Client as _, HttpClient, HttpClientUrl};

const BASE: u16 = 36500;

fn height(rt: &tokio::runtime::Runtime, validator: u16) -> Option<u64> {
    let url = HttpClientUrl::from_str(&format!("http://127.0.0.1:{}", BASE + 10 * validator + 1))
        .unwrap();
    let client = HttpClient::builder(url)
        .compat_mode(CompatMode::V0_38)
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(2), client.status())
            .await
            .ok()?
            .ok()
    })
    .map(|s| s.sync_info.latest_block_height.value())
}

/// Stops the nodes and deletes the directory even when an assertion fails.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let dir = self.0.to_string_lossy().into_owned();
        run(&["down", "--clean", "--dir", &dir]);
    }
}

fn write_config(path: &Path) {
    std::fs::write(
        path,
        format!(
            "version = 1\n[network]\nport_base = {BASE}\n\
             [[chain]]\nid = \"devnet-test\"\nvalidators = 4\n\
             [[account]]\nname = \"admin\"\nrole = \"admin\"\nfee = 1000000\nbond = 1000000\n\
             [[account]]\nname = \"peer1\"\nrole = \"peer\"\nfee = 1000000\n"
        ),
    )
    .unwrap();
}

#[test]
#[ignore = "starts four wasmd nodes (needs wasmd on PATH or in ~/.cache/ehrx-tools/bin)"]
fn four_validators_survive_one_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("devnet.toml");
    write_config(&config);
    let dir = tmp.path().join("net");
    let d = dir.to_string_lossy().into_owned();
    let _cleanup = Cleanup(dir.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let c = config.to_string_lossy().into_owned();
    assert!(run(&["up", "--config", &c, "--dir", &d]).status.success());
    let status = run(&["status", "--dir", &d]);
    assert!(status.status.success());
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("4 validators in the set, total voting power 40000"),
        "{text}"
    );
    assert_eq!(text.matches("power 10000").count(), 4, "{text}");

    assert!(run(&[
        "stop-node",
        "--dir",
        &d,
        "--chain",
        "devnet-test",
        "--validator",
        "2",
        "--kill"
    ])
    .status
    .success());
    let at_kill = height(&rt, 0).expect("validator 0 answers");
    let deadline = Instant::now() + Duration::from_secs(120);
    while height(&rt, 0).unwrap_or(0) < at_kill + 5 {
        assert!(
            Instant::now() < deadline,
            "no 5 blocks after the crash of validator 2 (height {at_kill})"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(height(&rt, 2).is_none(), "validator 2 is down");

    assert!(run(&[
        "start-node",
        "--dir",
        &d,
        "--chain",
        "devnet-test",
        "--validator",
        "2"
    ])
    .status
    .success());
    let caught = height(&rt, 2).expect("validator 2 answers again");
    assert!(
        caught >= at_kill + 5,
        "caught up: {caught} >= {}",
        at_kill + 5
    );
    assert!(run(&["status", "--dir", &d]).status.success());
}
