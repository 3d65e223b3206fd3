//! Adding one of the hospital's own validators (issue 11): `add-validator` on a running
//! chain of four; the set then has five validators and the chain keeps making blocks;
//! MsgCreateValidator is disabled again afterwards: a funded account's create-validator
//! (the wasmd CLI, as an operator would type it) is refused by the circuit breaker.
//! Ignored by default (five nodes, ~2 min):
//!
//! ```sh
//! PATH=~/.cache/ehrx-tools/bin:$PATH cargo test -p ehrx-devnet --test add_validator -- --ignored
//! ```
//!
//! Ports 31500..31544.

mod common;

use std::time::{Duration, Instant};

use common::{height, run, runtime, up, validator_count, wasmd};

const BASE: u16 = 31500;
const CHAIN: &str = "devnet-addval";

#[test]
#[ignore = "starts five wasmd nodes (needs wasmd on PATH or in ~/.cache/ehrx-tools/bin)"]
fn the_admin_adds_a_validator_and_the_lock_closes_again() {
    // The admin holds two self-bonds: one for the new validator, one for the attempt.
    let net = up(BASE, CHAIN, 30_000_000_000);
    let d = &net.d;
    let rt = runtime();
    let added = run(&["add-validator", "--dir", d, "--chain", CHAIN]);
    assert!(added.status.success(), "add-validator failed");

    assert_eq!(validator_count(&rt, BASE + 1), Some(5));
    let status = run(&["status", "--dir", d]);
    assert!(status.status.success(), "every node, val4 too, answers");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("5 validators in the set, total voting power 50000"),
        "{text}"
    );
    assert!(text.contains("val4"), "status lists the added node: {text}");
    let now = height(&rt, BASE + 41).expect("val4 answers");
    let deadline = Instant::now() + Duration::from_secs(60);
    while height(&rt, BASE + 1).unwrap_or(0) < now + 5 {
        assert!(Instant::now() < deadline, "no 5 blocks after the addition");
        std::thread::sleep(Duration::from_millis(500));
    }

    // A second create-validator, by another account funded with the bonding denom.
    let accounts = net.dir.join(CHAIN).join("accounts");
    let a = accounts.to_string_lossy().into_owned();
    let node = format!("tcp://127.0.0.1:{}", BASE + 1);
    let tx = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend([
            "--home",
            &a,
            "--node",
            &node,
            "--chain-id",
            CHAIN,
            "--keyring-backend",
            "test",
            "--gas",
            "400000",
            "--fees",
            "0ufee",
            "-y",
            "--output",
            "json",
        ]);
        let out = wasmd(&all);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("$ wasmd {}\n{text}", args.join(" "));
        text
    };
    let keys = wasmd(&[
        "keys",
        "show",
        "peer1",
        "-a",
        "--home",
        &a,
        "--keyring-backend",
        "test",
    ]);
    let peer1 = String::from_utf8_lossy(&keys.stdout).trim().to_string();
    let sent = tx(&[
        "tx",
        "bank",
        "send",
        "admin",
        &peer1,
        "10000000000stake",
        "--from",
        "admin",
    ]);
    assert!(sent.contains("\"code\":0"), "{sent}");
    // Wait for the send's block.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let q = wasmd(&[
            "query", "bank", "balance", &peer1, "stake", "--node", &node, "--output", "json",
        ]);
        if String::from_utf8_lossy(&q.stdout).contains("10000000000") {
            break;
        }
        assert!(Instant::now() < deadline, "peer1 not funded");
        std::thread::sleep(Duration::from_millis(500));
    }
    let validator_json = net.tmp.path().join("validator.json");
    std::fs::write(
        &validator_json,
        r#"{"pubkey": {"@type": "/cosmos.crypto.ed25519.PubKey",
            "key": "oWg2ISpLF405Jcm2vXV+2v4fnjodh6aafuIdeoW+rUw="},
          "amount": "10000000000stake", "moniker": "intruder",
          "commission-rate": "0.1", "commission-max-rate": "0.2",
          "commission-max-change-rate": "0.01", "min-self-delegation": "1"}"#,
    )
    .unwrap();
    let refused = tx(&[
        "tx",
        "staking",
        "create-validator",
        &validator_json.to_string_lossy(),
        "--from",
        "peer1",
    ]);
    assert!(
        refused.contains("tx type not allowed")
            || refused.contains("circuit breaker disables execution of this message"),
        "the second create-validator was not refused by the circuit breaker: {refused}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(validator_count(&rt, BASE + 1), Some(5), "still five");
}
