//! No linkability, no existence oracle. An observer who holds every chain's full contract
//! state, events, packets and audit log after exchanges about the same patient with two
//! custodians (and about another patient) finds no equal value that links the patient
//! across custodians: each custodian keys records by its own pseudonym, requests carry the
//! details sealed afresh to the custodian, and replies are one sealed kind of bucket size.

use cosmwasm_std::{Binary, IbcOrder};
use ehr_protocol::registry::{Policy, Role};
use ehr_protocol::signing::key_hash;
use ehr_tests::harness::peer::opaque;
use ehr_tests::harness::peer::{random_id, seal, sealed_records, Patient};
use ehr_tests::harness::relayer::{Relayer, VERSION};
use ehr_tests::harness::scenario::REQUEST_TTL;
use ehr_tests::harness::{Chain, TwoHospitals};
use ehr_tests::linkage::{contains, linking, tokens};
use std::collections::BTreeSet;

/// Everything an observer of `chain` sees: contract state, events, sent packets, audit.
fn observed(chain: &Chain) -> Vec<u8> {
    let mut all = chain.dump_state();
    all.extend(serde_json::to_vec(&chain.events).unwrap());
    for packet in chain.outbox.borrow().history.iter() {
        all.extend(packet.data.as_slice());
    }
    all.extend(serde_json::to_vec(&chain.audit()).unwrap());
    all
}

#[test]
fn an_observer_of_every_chain_cannot_link_a_patient_across_custodians() {
    let policy = Policy {
        rate_limit_count: 20,
        ..Policy::default()
    };
    let mut net = TwoHospitals::with_policy(policy.clone());
    let mut c = Chain::with_policy("hospc", "hospital-c", policy);
    let connections = Relayer::connect(&mut net.a, &mut c);
    let (a_port, c_port) = (net.a.port(), c.port());
    net.a.add_partner("hospital-c", &connections.0, &c_port);
    c.add_partner("hospital-a", &connections.1, &a_port);
    let ac = Relayer::open_channel(
        &mut net.a,
        &mut c,
        &connections,
        IbcOrder::Unordered,
        VERSION,
    )
    .unwrap();
    let patient = net.patient.clone();
    // C holds a record of the same patient, under C's own pseudonym.
    let c_storer = c.add_peer("c-records", &[Role::Store]);
    let record = c_storer.store_msg(
        "hospital-c",
        &random_id("rec"),
        &patient,
        &opaque(&seal(&[9u8; 32], &patient.fhir_bundle())),
    );
    c.store(&c_storer, record).accepted();

    // The patient asked of B, then of C; another patient asked of B.
    net.full_exchange();
    let requester = std::mem::replace(&mut net.requester, net.a.outsider("x"));
    let to_c = requester.request_id();
    let msg = requester.request_msg(
        &to_c,
        "hospital-a",
        "hospital-c",
        &net.a.clinician,
        &patient,
        net.a.now(),
        REQUEST_TTL,
    );
    net.a.submit_request(&requester, msg).accepted();
    assert!(Relayer::relay(&mut net.a, &mut c, &ac)[0].ack.is_success());
    let c_responder = c.add_peer("c-reply", &[Role::Reply]);
    let outcome = sealed_records(&requester.encryption_key, &patient.fhir_bundle());
    let body = c_responder.reply_body(
        &to_c,
        "hospital-a",
        "hospital-c",
        &requester.encryption_key,
        &outcome,
        c.now(),
    );
    c.submit_reply(&c_responder, c_responder.reply_msg(&body, &outcome))
        .accepted();
    assert!(Relayer::relay(&mut c, &mut net.a, &ac.reverse())[0]
        .ack
        .is_success());
    net.requester = requester;
    net.patient = Patient::new("Other", "Person", "1966-06-06", "321-65-4321");
    net.advance(61);
    let (other, result) = net.request();
    result.accepted();
    net.relay_requests();
    net.answer(&other).accepted();
    net.relay_replies();

    let (seen_a, seen_b, seen_c) = (observed(&net.a), observed(&net.b), observed(&c));

    // Each custodian's pseudonym stays on its own chain; the requesting chain holds none.
    let (at_b, at_c) = (
        patient.pseudonym_at("hospital-b"),
        patient.pseudonym_at("hospital-c"),
    );
    assert_ne!(at_b, at_c);
    assert!(contains(&seen_b, &at_b) && contains(&seen_c, &at_c));
    assert!(!contains(&seen_c, &at_b) && !contains(&seen_b, &at_c));
    assert!(!contains(&seen_a, &at_b) && !contains(&seen_a, &at_c));

    // Nothing else is equal across the two custodians but the requester's own public
    // identity (its address, its clinician's key, its registered reply key and that key's
    // hash), which names who asked, not whom about.
    let requester = &net.requester;
    let allowed: BTreeSet<String> = [
        requester.address.to_string(),
        net.a.exchange.to_string(),
        net.a.clinician.pubkey().to_base64(),
        Binary::from(requester.encryption_key.to_vec()).to_base64(),
        key_hash(&requester.encryption_key),
    ]
    .iter()
    .flat_map(|v| tokens(v.as_bytes()))
    .collect();
    let common = linking(&seen_b, &seen_c, &allowed);
    assert!(common.is_empty(), "linkable values on B and C: {common:?}");
}
