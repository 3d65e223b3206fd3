//! Faults of a hospital network of several validators (issue 11), during a stream of
//! exchanges driven by the `ehrx` peer tool (requests from A, B's reply service answering):
//!
//! - a validator of B that serves no one's RPC is killed (SIGKILL): B keeps producing
//!   blocks, every exchange is answered, the validator catches up when started again;
//! - the validator whose RPC Hermes (hermes-1) and the peers use first is killed: the peers'
//!   clients move to another node, the devnet's watcher moves hermes-1 to another node, and
//!   nothing is lost;
//! - one of the two Hermes instances relaying the path is killed mid-flight: the other
//!   relays everything, and every packet is received exactly once.
//!
//! "Exactly once" is read on B's chain: one successful transaction per request packet with
//! its `recv_packet` (a second relayer's copy is refused as redundant), and A's request
//! answered once.

use crate::support::*;
use ehr_protocol::exchange::RequestStatus;
use ehr_protocol::registry::Role;
use ehr_tests::devnet::{path_without_wasmd, run_id, Devnet};
use ehr_tests::peer_tool::{
    self, ehrx, ehrx_bin, reply_service, request_args, site, text, KillOnDrop, Site,
};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How many exchanges each stream carries (one requesting site each: the policy lets a peer
/// send one request a minute).
const STREAM: usize = 4;

/// B's stored patient, B's reply service and `STREAM` requesting sites on A.
struct Stream {
    root: PathBuf,
    requesters: Vec<Site>,
    clinician_id: String,
    clinician_key: PathBuf,
    _service: KillOnDrop,
}

impl Stream {
    fn new(devnet: &Devnet, name: &str) -> Stream {
        let root = std::env::temp_dir().join(format!("ehrx-e2e-{name}-{}", run_id()));
        std::fs::create_dir_all(&root).unwrap();
        let (store, _) = site(devnet, &root, B, &format!("{name}-store"), &[Role::Store]);
        let (reply, _) = site(devnet, &root, B, &format!("{name}-reply"), &[Role::Reply]);
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": "urn:uuid:7c1e0b52-2f4e-4c55-9d1a-0b7d6f3e9a10",
             "resource": {"resourceType": "Patient", "id": "p1",
                "name": [{"given": ["Ines"], "family": "Varga"}], "birthDate": "1968-02-14"}}]});
        std::fs::write(store.dir.join("bundle.json"), bundle.to_string()).unwrap();
        let patient = json!({"given": "Ines", "family": "Varga", "birth_date": "1968-02-14",
                             "ssn": format!("3{:02}-51-{:04}", run_id().len() % 90, std::process::id() % 10000)});
        std::fs::write(store.dir.join("patient.json"), patient.to_string()).unwrap();
        peer_tool::store(
            devnet,
            &store,
            &store.dir.join("bundle.json"),
            &store.dir.join("patient.json"),
        );
        let service = reply_service(devnet, &reply, &root.join("reply-service.log"));
        let requesters: Vec<Site> = (0..STREAM)
            .map(|i| {
                site(
                    devnet,
                    &root,
                    A,
                    &format!("{name}-req{i}"),
                    &[Role::Request],
                )
                .0
            })
            .collect();
        for r in &requesters {
            std::fs::copy(store.dir.join("patient.json"), r.dir.join("patient.json")).unwrap();
        }
        // One clinician, made on the first site and registered by A's admin.
        let clinician_id = format!("{name}-dr-{}", run_id());
        let created = ehrx(
            devnet,
            &[
                "--config",
                requesters[0].config.to_str().unwrap(),
                "clinician",
                "new",
                "--id",
                &clinician_id,
            ],
        );
        assert!(
            created.status.success(),
            "clinician new: {}",
            text(&created)
        );
        let register: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
        devnet
            .exec(A, "admin", &devnet.contract(A, "registry"), &register)
            .accepted();
        let clinician_key = requesters[0]
            .dir
            .join(format!("keys/clinicians/{clinician_id}.key"));
        Stream {
            root,
            requesters,
            clinician_id,
            clinician_key,
            _service: service,
        }
    }

    /// Starts every request (`ehrx request`, waiting up to 240 s for its reply).
    fn start(&self, devnet: &Devnet) -> Vec<(PathBuf, Child)> {
        self.requesters
            .iter()
            .map(|r| {
                let out = r.dir.join("history.json");
                let child = Command::new(ehrx_bin(devnet))
                    .args(request_args(
                        &r.config,
                        B,
                        &self.clinician_id,
                        &r.dir.join("patient.json"),
                        &out,
                        240,
                    ))
                    .args([Path::new("--clinician-key"), self.clinician_key.as_path()])
                    .env("PATH", path_without_wasmd())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("start ehrx request");
                (out, child)
            })
            .collect()
    }

    /// Every request of the stream got its history; A's requests all answered once.
    fn finish(&self, devnet: &Devnet, running: Vec<(PathBuf, Child)>) {
        for (out, child) in running {
            let done = child.wait_with_output().unwrap();
            assert!(
                done.status.success(),
                "a request of the stream failed: {}\nreply service log:\n{}",
                text(&done),
                std::fs::read_to_string(self.root.join("reply-service.log")).unwrap_or_default()
            );
            let history: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
            assert_eq!(history["resourceType"], "Bundle");
            let id = request_id_of(&text(&done));
            assert_eq!(
                request_status(devnet, &id).status,
                RequestStatus::Answered,
                "request {id}"
            );
            assert_eq!(
                received_times(devnet, &id),
                1,
                "request {id} received once on B"
            );
        }
    }
}

/// The request id `ehrx request` printed in its progress lines (`request <id>: ...`).
fn request_id_of(output: &str) -> String {
    let words: Vec<&str> = output.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == "request" && w[1].ends_with(':') && w[1].len() > 1)
        .map(|w| w[1].trim_end_matches(':').to_string())
        .unwrap_or_else(|| panic!("no request id in: {output}"))
}

/// How many successful transactions on B carry the request's packet (`recv_packet`) and the
/// exchange's handling of it.
fn received_times(devnet: &Devnet, request_id: &str) -> usize {
    use ehrx_chain::Query;
    let client = devnet.reader(B);
    let query = Query::eq("wasm.request_id", request_id);
    let txs = client
        .block_on(client.chain().tx_search_all(query))
        .expect("tx search on B");
    txs.iter()
        .filter(|tx| tx.code == 0 && tx.events.iter().any(|e| e.kind == "recv_packet"))
        .count()
}

/// Heights of B's validators but `except`, now and `secs` later: all advanced.
fn b_keeps_producing_blocks(devnet: &Devnet, except: usize) {
    let n = devnet.rpcs(B).len();
    let before: Vec<Option<u64>> = (0..n).map(|i| devnet.validator_height(B, i)).collect();
    std::thread::sleep(Duration::from_secs(4));
    for i in (0..n).filter(|i| *i != except) {
        let (b, a) = (before[i], devnet.validator_height(B, i));
        assert!(
            matches!((b, a), (Some(b), Some(a)) if a > b),
            "{B} validator {i} stalled: {b:?} -> {a:?}"
        );
    }
    assert_eq!(
        devnet.validator_height(B, except),
        None,
        "the killed validator {except} answers"
    );
}

/// Validator `index` of B catches up after its restart.
fn restart_and_catch_up(devnet: &Devnet, index: usize) {
    devnet.start_validator(B, index);
    let others = devnet
        .validator_height(B, (index + 1) % devnet.rpcs(B).len())
        .unwrap();
    let start = Instant::now();
    loop {
        if devnet
            .validator_height(B, index)
            .is_some_and(|h| h >= others)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "validator {index} of {B} did not catch up with height {others}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn needs_validators(devnet: &Devnet) -> bool {
    let n = devnet.rpcs(B).len();
    if n < 4 {
        eprintln!("[e2e] {B} has {n} validator(s) (a --validators 1 devnet): skipped");
    }
    n >= 4
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn a_validator_serving_no_rpc_killed_mid_stream_loses_nothing() {
    let devnet = Devnet::get();
    if !needs_validators(devnet) {
        return;
    }
    // Validator 3: neither hermes-1 (0) nor hermes-2 (1) nor the peers (0 first) use it.
    let stream = Stream::new(devnet, "val3");
    let running = stream.start(devnet);
    std::thread::sleep(Duration::from_secs(2));
    devnet.stop_validator(B, 3, true);
    b_keeps_producing_blocks(devnet, 3);
    stream.finish(devnet, running);
    restart_and_catch_up(devnet, 3);
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn the_validator_hermes_and_the_peers_use_killed_mid_stream_loses_nothing() {
    let devnet = Devnet::get();
    if !needs_validators(devnet) {
        return;
    }
    let stream = Stream::new(devnet, "val0");
    let running = stream.start(devnet);
    std::thread::sleep(Duration::from_secs(2));
    devnet.stop_validator(B, 0, true);
    b_keeps_producing_blocks(devnet, 0);
    stream.finish(devnet, running);
    // The watcher moved hermes-1 off B's validator 0.
    let watch = std::fs::read_to_string(devnet.dir.join("hermes/watch.log")).unwrap_or_default();
    assert!(
        watch.contains("hermes-1") && watch.contains(B),
        "the watcher's log names the move of hermes-1 off {B}:\n{watch}"
    );
    restart_and_catch_up(devnet, 0);
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn one_of_two_relayers_killed_mid_flight_loses_nothing_and_answers_nothing_twice() {
    let devnet = Devnet::get();
    let relayers = devnet.relayers();
    if relayers.len() < 2 {
        eprintln!("[e2e] one relayer instance: skipped");
        return;
    }
    let stream = Stream::new(devnet, "relayer");
    let running = stream.start(devnet);
    std::thread::sleep(Duration::from_millis(1500));
    let pid_file = relayers[0]["pid_file"].as_str().unwrap();
    let pid = std::fs::read_to_string(pid_file).unwrap();
    let killed = Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success(), "kill -9 {}", pid.trim());
    stream.finish(devnet, running);
    // Both instances run again (the watcher restarts a relayer that died).
    let out = devnet.script(&["status"]);
    assert!(out.status.success(), "status: {}", text(&out));
}
