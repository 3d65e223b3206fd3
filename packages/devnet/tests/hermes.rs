//! Two Hermes instances on one path, end to end (ignored by default: eight wasmd nodes and
//! two Hermes; needs `wasmd` and `hermes` on PATH or in ~/.cache/ehrx-tools/bin):
//!
//! ```sh
//! PATH=~/.cache/ehrx-tools/bin:$PATH cargo test -p ehrx-devnet --test hermes -- --ignored --nocapture
//! ```
//!
//! Two chains of four validators on ports 30500..30634, Hermes REST 30900 and 30902, in a
//! temporary directory: `up`; `hermes config` (both instances, each its own account);
//! a connection and an ICS-20 channel `transfer` <-> `transfer` (ics20-1: no contract
//! needed); both instances started. Then:
//!
//! 1. a transfer a -> b arrives (the voucher balance on b);
//! 2. the node hermes-1 uses on b is killed (SIGKILL); `hermes failover` moves hermes-1 to
//!    the next validator and restarts it; a second transfer arrives exactly once, both
//!    instances running;
//! 3. hermes-1 is killed (SIGKILL) right after a third transfer is sent: it arrives
//!    through hermes-2, exactly once;
//! 4. `watch` (detached) sees hermes-1 dead and starts it again.

mod common;

use common::run;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ehrx_chain::{msgs, BlockingChain, ChainConfig, KeyringKey};

const BASE: u16 = 30500;
const A: &str = "hx-a";
const B: &str = "hx-b";
const REST_1: u16 = 30900;
const REST_2: u16 = 30902;

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "ehrx-devnet {} failed",
        args.join(" ")
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stops the supervisor, both Hermes and the nodes, and deletes the directory, even when
/// an assertion fails.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let dir = self.0.to_string_lossy().into_owned();
        run(&["watch", "--stop", "--dir", &dir]);
        run(&["hermes", "--dir", &dir, "stop"]);
        run(&["down", "--clean", "--dir", &dir]);
    }
}

fn write_config(path: &Path) {
    let text = format!(
        "version = 1\n[network]\nport_base = {BASE}\n\
         [[chain]]\nid = \"{A}\"\nvalidators = 4\n\
         [[chain]]\nid = \"{B}\"\nvalidators = 4\n\
         [[account]]\nname = \"admin\"\nrole = \"admin\"\nfee = 1000000000\nbond = 1000000\n\
         [[account]]\nname = \"relayer\"\nrole = \"relayer\"\nfee = 10000000000000\n\
         [[account]]\nname = \"relayer-2\"\nrole = \"relayer\"\nfee = 10000000000000\n\
         [[account]]\nname = \"peer1\"\nrole = \"peer\"\nfee = 1000000000\n\
         [[contract]]\nname = \"exchange\"\nwasm = \"artifacts/exchange.wasm\"\n\
         [[channel]]\nname = \"a-b\"\na = \"{A}\"\nb = \"{B}\"\n\
         [[relayer]]\nname = \"hermes-1\"\nchannels = [\"a-b\"]\nrest_port = {REST_1}\nvalidator = 0\n\
         [[relayer]]\nname = \"hermes-2\"\nchannels = [\"a-b\"]\nrest_port = {REST_2}\nvalidator = 1\n\
         account = \"relayer-2\"\n"
    );
    std::fs::write(path, text).unwrap();
}

/// A client of validator `v` of `chain`, signing as `key` if given.
fn client(dir: &Path, chain: &str, v: u16, key: Option<&str>) -> BlockingChain {
    let base = if chain == A { BASE } else { BASE + 100 };
    let secret = key.map(|name| {
        KeyringKey {
            home: dir.join(chain).join("accounts"),
            backend: "test".into(),
            name: name.into(),
        }
        .open(|| None)
        .expect("the account key")
    });
    let cfg = ChainConfig {
        rpc: format!("http://127.0.0.1:{}", base + 10 * v + 1),
        chain_id: chain.into(),
        ..ChainConfig::default()
    };
    BlockingChain::new(cfg, secret).expect("client")
}

fn address(dir: &Path, chain: &str, name: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(chain).join("chain.json")).unwrap())
            .unwrap();
    v["accounts"][name].as_str().unwrap().to_string()
}

/// Sends `amount` ufee from peer1 on a to `to` on b over `channel`.
fn transfer(sender: &BlockingChain, channel: &str, to: &str, amount: u128) {
    let timeout = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(600);
    let from = sender.chain().address().unwrap();
    let msg = msgs::transfer(
        channel,
        &from,
        to,
        amount,
        "ufee",
        timeout.as_nanos() as u64,
    );
    let tx = sender
        .block_on(sender.chain().execute_any(&[msg]))
        .expect("transfer sent");
    assert_eq!(tx.code, 0, "transfer failed: {}", tx.raw_log);
}

/// Waits (90 s at most) until `balance()` is `want`, then 8 s more in which it must not
/// change: arrived, and exactly once.
fn arrives_once(balance: impl Fn() -> u128, want: u128, what: &str) {
    let t0 = Instant::now();
    loop {
        let b = balance();
        assert!(
            b <= want,
            "{what}: balance {b} above {want}: received twice?"
        );
        if b == want {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "{what}: balance {b}, not {want}, after 90 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("{what}: arrived after {:.1}s", t0.elapsed().as_secs_f64());
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(balance(), want, "{what}: the balance moved again");
}

fn rest_answers(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(b"GET /state HTTP/1.0\r\n\r\n");
    let mut buf = [0u8; 32];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).contains(" 200")
}

fn pid_of(dir: &Path, relayer: &str) -> i32 {
    std::fs::read_to_string(dir.join("hermes").join(relayer).join("hermes.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
#[ignore = "starts eight wasmd nodes and two Hermes (needs wasmd and hermes)"]
fn two_hermes_survive_a_dead_node_and_a_dead_relayer() {
    let tmp = tempfile::Builder::new()
        .prefix("hermes-it-")
        .tempdir_in("/tmp")
        .unwrap();
    let config = tmp.path().join("devnet.toml");
    write_config(&config);
    let dir = tmp.path().join("net");
    let d = dir.to_string_lossy().into_owned();
    let _cleanup = Cleanup(dir.clone());
    let c = config.to_string_lossy().into_owned();

    ok(&["up", "--chains-only", "--config", &c, "--dir", &d]);
    ok(&["hermes", "--dir", &d, "config"]);
    let conn = ok(&[
        "hermes",
        "--dir",
        &d,
        "connect",
        "--relayer",
        "hermes-1",
        "--a",
        A,
        "--b",
        B,
    ]);
    let ends: serde_json::Value = serde_json::from_str(conn.trim()).unwrap();
    let a_conn = ends[0]["connection_id"].as_str().unwrap().to_string();
    assert!(a_conn.starts_with("connection-"), "{ends}");
    let ch = ok(&[
        "hermes",
        "--dir",
        &d,
        "channel",
        "--relayer",
        "hermes-1",
        "--a-chain",
        A,
        "--a-connection",
        &a_conn,
        "--a-port",
        "transfer",
        "--b-port",
        "transfer",
        "--version",
        "ics20-1",
    ]);
    let ch: serde_json::Value = serde_json::from_str(ch.trim()).unwrap();
    let (a_ch, b_ch) = (
        ch["a_channel"].as_str().unwrap().to_string(),
        ch["b_channel"].as_str().unwrap().to_string(),
    );
    ok(&["hermes", "--dir", &d, "start"]);
    assert!(rest_answers(REST_1) && rest_answers(REST_2));

    let sender = client(&dir, A, 2, Some("peer1"));
    let reader = client(&dir, B, 3, None);
    let to = address(&dir, B, "peer1");
    let voucher = msgs::ibc_denom(&b_ch, "ufee");
    let balance = || {
        reader
            .block_on(reader.chain().balance(&to, &voucher))
            .unwrap_or(0)
    };

    // 1. Both instances relay; the transfer arrives once.
    transfer(&sender, &a_ch, &to, 1000);
    arrives_once(balance, 1000, "transfer 1");

    // 2. hermes-1's node on b dies; failover moves it to validator 1.
    ok(&[
        "stop-node",
        "--dir",
        &d,
        "--chain",
        B,
        "--validator",
        "0",
        "--kill",
    ]);
    let moved = ok(&["hermes", "--dir", &d, "failover"]);
    assert!(
        moved.contains("hermes-1: hx-b-val0 (RPC 30601) does not answer; moved to hx-b-val1"),
        "{moved}"
    );
    assert!(!moved.contains("hermes-2"), "hermes-2 uses val1: {moved}");
    let cfg = std::fs::read_to_string(dir.join("hermes/hermes-1/config.toml")).unwrap();
    assert!(cfg.contains("rpc_addr = 'http://127.0.0.1:30611'"), "{cfg}");
    assert!(rest_answers(REST_1) && rest_answers(REST_2));
    transfer(&sender, &a_ch, &to, 2000);
    arrives_once(balance, 3000, "transfer 2 (after failover)");
    assert!(rest_answers(REST_1) && rest_answers(REST_2));

    // 3. hermes-1 dies mid-flight; hermes-2 relays alone.
    let pid = pid_of(&dir, "hermes-1");
    transfer(&sender, &a_ch, &to, 4000);
    // SAFETY: kill(2) of the Hermes this test started (its pid file in our temp dir).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    arrives_once(balance, 7000, "transfer 3 (hermes-1 killed)");
    assert!(!rest_answers(REST_1), "hermes-1 is dead");
    assert!(rest_answers(REST_2));

    // 4. The supervisor starts hermes-1 again.
    ok(&["watch", "--detach", "--dir", &d, "--interval", "1s"]);
    let t0 = Instant::now();
    while !rest_answers(REST_1) {
        assert!(
            t0.elapsed() < Duration::from_secs(150),
            "watch did not restart hermes-1:\n{}",
            std::fs::read_to_string(dir.join("hermes/watch.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let log = std::fs::read_to_string(dir.join("hermes/watch.log")).unwrap();
    eprintln!("watch.log:\n{log}");
    assert!(
        log.contains(&format!("hermes-1: Hermes (pid {pid}) is not running")),
        "{log}"
    );
    assert_ne!(pid_of(&dir, "hermes-1"), pid);
    transfer(&sender, &a_ch, &to, 8000);
    arrives_once(balance, 15000, "transfer 4 (after the restart)");
}
