//! Bounded queries and record caps: the record index is metadata only, every listing is
//! paginated with a hard cap, and the policy caps the records under one patient token.

use ehr_protocol::exchange::{QueryMsg, RecordsResponse};
use ehr_protocol::limits::MAX_PAGE;
use ehr_protocol::registry::{PeerStatus, Policy};
use ehr_tests::harness::chain::wasm_attr;
use ehr_tests::harness::peer::opaque;
use ehr_tests::harness::peer::{random_id, Patient};
use ehr_tests::harness::{ExchangeResult, TwoHospitals};

fn store(net: &mut TwoHospitals, patient: &Patient) -> ExchangeResult {
    let storer = std::mem::replace(&mut net.storer, net.b.outsider("x"));
    let network = net.b.network_id.clone();
    let msg = storer.store_msg(&network, &random_id("rec"), patient, &opaque(&vec![7; 512]));
    let result = net.b.store(&storer, msg);
    net.storer = storer;
    result
}

fn records(
    net: &TwoHospitals,
    patient: &Patient,
    start_after: Option<String>,
    limit: u32,
) -> RecordsResponse {
    net.b
        .query_exchange(&QueryMsg::Records {
            patient_token: patient.token.clone(),
            start_after,
            limit: Some(limit),
        })
        .unwrap()
}

#[test]
fn the_policy_caps_records_per_patient_without_striking_the_storer() {
    let mut net = TwoHospitals::with_policy(Policy {
        max_records_per_patient: 3,
        strikes_before_quarantine: 1,
        ..Policy::default()
    });
    let patient = net.patient.clone();
    // The scenario stored one already.
    store(&mut net, &patient).accepted();
    store(&mut net, &patient).accepted();
    let full = store(&mut net, &patient);
    assert_eq!(full.rejection(), "CapReached");
    let ExchangeResult::SoftRejected { response, .. } = &full else {
        unreachable!()
    };
    assert_eq!(wasm_attr(response, "strike").as_deref(), Some("false"));
    assert_eq!(net.b.record_count(&patient.token), 3);
    let storer = net.b.peer(&net.storer.address).unwrap();
    assert_eq!((storer.status, storer.strikes), (PeerStatus::Active, 0));
    // Another patient is not affected.
    let other = Patient::new("Ahmed", "Khan", "1970-01-02", "078-05-1120");
    store(&mut net, &other).accepted();
}

#[test]
fn record_listing_is_metadata_only_and_paginated_with_a_hard_cap() {
    let mut net = TwoHospitals::with_policy(Policy {
        max_records_per_patient: MAX_PAGE + 10,
        ..Policy::default()
    });
    let patient = net.patient.clone();
    for _ in 0..MAX_PAGE + 4 {
        store(&mut net, &patient).accepted();
    }
    // Asking for more than the cap gets the cap.
    let page = records(&net, &patient, None, 10_000);
    assert_eq!(page.records.len(), MAX_PAGE as usize);
    let rest = records(
        &net,
        &patient,
        page.records.last().map(|r| r.record_id.clone()),
        10_000,
    );
    assert_eq!(rest.records.len(), 5);
    // Metadata only: the listing's JSON holds no ciphertext field.
    let json = serde_json::to_string(&page).unwrap();
    assert!(!json.contains("chunk_hashes"));
    assert!(page
        .records
        .iter()
        .all(|r| r.complete() && r.chunk_bytes > 0));
}
