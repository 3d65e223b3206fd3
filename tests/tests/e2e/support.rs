use ehr_protocol::exchange::{OutgoingRequest, PurposeOfUse, QueryMsg, SubmitRequestMsg};
use ehr_tests::devnet::{now, Devnet, TxOutcome};
use ehr_tests::harness::peer::opaque;
use ehr_tests::harness::peer::{random_id, Patient, TestClinician, TestPeer};
use std::time::{Duration, Instant};

pub const A: &str = "hospital-a";
pub const B: &str = "hospital-b";

/// A new patient on each call (a random SSN in `area-group-*`), so that runs on a warm
/// devnet never find the records of an earlier run (nor reach the policy's cap on records
/// per patient).
pub fn fresh_patient(
    given: &'static str,
    family: &'static str,
    birth_date: &'static str,
    area_group: &str,
) -> Patient {
    let serial = u16::from_str_radix(&random_id("x")[2..6], 16).unwrap_or(0) % 10_000;
    let ssn: &'static str = Box::leak(format!("{area_group}-{serial:04}").into_boxed_str());
    Patient::new(given, family, birth_date, ssn)
}

/// A patient with a record stored on `chain` by a fresh storer peer; returns the patient
/// (a fresh one each call).
pub fn patient_with_record(
    devnet: &Devnet,
    chain: &str,
    storer: &TestPeer,
    storer_key: &str,
) -> Patient {
    let patient = fresh_patient("Amara", "Okafor", "1979-06-21", "212-45");
    let exchange = devnet.contract(chain, "exchange");
    let msg = storer.store_msg(
        chain,
        &random_id("rec"),
        &patient,
        &opaque(b"opaque-ciphertext-of-a-bundle"),
    );
    devnet
        .exec(
            chain,
            storer_key,
            &exchange,
            &ehr_protocol::exchange::ExecuteMsg::StoreRecord(msg),
        )
        .accepted();
    patient
}

/// A request from `peer` on A to `to`, asked (and signed) by `clinician`.
pub fn request_msg(
    peer: &TestPeer,
    clinician: &TestClinician,
    to: &str,
    patient: &Patient,
    ttl: u64,
) -> SubmitRequestMsg {
    peer.request_msg(&peer.request_id(), A, to, clinician, patient, now(), ttl)
}

/// A clinician registered on A for treatment, fresh for this test.
pub fn clinician(devnet: &Devnet, name: &str) -> TestClinician {
    devnet.fresh_clinician(A, name, &[PurposeOfUse::Treatment])
}

pub fn submit(devnet: &Devnet, key: &str, msg: SubmitRequestMsg) -> TxOutcome {
    let exchange = devnet.contract(A, "exchange");
    devnet.exec(
        A,
        key,
        &exchange,
        &ehr_protocol::exchange::ExecuteMsg::SubmitRequest(msg),
    )
}

pub fn request_status(devnet: &Devnet, id: &str) -> OutgoingRequest {
    devnet
        .query(
            A,
            &devnet.contract(A, "exchange"),
            &QueryMsg::Request {
                request_id: id.to_string(),
            },
        )
        .expect("request query")
}

/// Polls `check` every second until it returns `Some`, or fails after `secs`. Every wait
/// here is for Hermes to relay something. Hermes 1.13 in pull mode sometimes fails to pull a
/// packet's data right after it is committed ("no packet data was pulled", a race with the
/// tx indexer) and the packet then waits for the next activity on its channel; an operator
/// clears it with `hermes clear packets`. So after 20 s without progress the wait runs
/// `scripts/devnet.sh clear-packets` once, and says so.
pub fn wait_for<T>(
    devnet: &Devnet,
    what: &str,
    secs: u64,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    let mut cleared = false;
    loop {
        if let Some(value) = check() {
            eprintln!("[e2e] {what}: after {}s", start.elapsed().as_secs());
            return value;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out after {secs}s waiting for {what}"
        );
        if !cleared && start.elapsed() > Duration::from_secs(20) {
            eprintln!(
                "[e2e] {what}: nothing relayed after 20s, running scripts/devnet.sh clear-packets"
            );
            let out = devnet.script(&["clear-packets"]);
            if !out.status.success() {
                eprintln!(
                    "[e2e] clear-packets failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            cleared = true;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Ensures Hermes runs again even when a test fails while it is stopped.
pub struct RelayerGuard<'a>(pub &'a Devnet);

impl Drop for RelayerGuard<'_> {
    fn drop(&mut self) {
        let out = self.0.script(&["start-relayer"]);
        if !out.status.success() {
            eprintln!(
                "[e2e] start-relayer failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

pub fn stop_relayer(devnet: &Devnet) -> RelayerGuard<'_> {
    let out = devnet.script(&["stop-relayer"]);
    assert!(
        out.status.success(),
        "stop-relayer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    RelayerGuard(devnet)
}

/// A sealed "no records" answer to `recipient` (the requester's registered reply key), as a
/// reply service builds it: on chain it looks like any other answer.
pub fn no_records(recipient: &[u8]) -> ehr_tests::harness::peer::Sealed {
    let key: [u8; 32] = recipient.try_into().expect("a 32-byte reply key");
    ehr_tests::harness::peer::sealed_outcome(&key, &ehr_protocol::packet::SealedOutcome::NoRecords)
}
