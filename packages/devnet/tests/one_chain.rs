//! End to end, on real wasmd nodes (ignored by default: it starts four nodes):
//!
//! ```sh
//! PATH=~/.cache/ehrx-tools/bin:$PATH cargo test -p ehrx-devnet --test one_chain -- --ignored
//! ```
//!
//! One chain with four validators on ports 29500..29540: `up`, `status` shows four
//! validators of 10,000 power each; validator 2 killed with SIGKILL, the chain still makes
//! blocks; `start-node` brings it back and it catches up; `down --clean`.

mod common;

use std::time::{Duration, Instant};

use common::{run, runtime, up};

const BASE: u16 = 29500;

fn height(rt: &tokio::runtime::Runtime, validator: u16) -> Option<u64> {
    common::height(rt, BASE + 10 * validator + 1)
}

#[test]
#[ignore = "starts four wasmd nodes (needs wasmd on PATH or in ~/.cache/ehrx-tools/bin)"]
fn four_validators_survive_one_crash() {
    let net = up(BASE, "devnet-test", 1_000_000);
    let d = net.d.clone();
    let rt = runtime();
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
