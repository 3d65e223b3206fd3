//! Algorithm 1 (source chain, `SubmitRequest`) and `StoreRecord`: every check, its coded
//! rejection, and that nothing is stored or sent.

use cosmwasm_std::Binary;
use ehr_protocol::audit::{AuditAction, AuditOutcome};
use ehr_protocol::exchange::{PurposeOfUse, SubmitRequestMsg};
use ehr_protocol::limits::PACKET_VERSION;
use ehr_protocol::packet::RequestBody;
use ehr_protocol::registry::{ExecuteMsg, Policy, Role};
use ehr_tests::harness::peer::opaque;
use ehr_tests::harness::peer::{random_id, seal, TestClinician, TestPeer};
use ehr_tests::harness::relayer::Relayer;
use ehr_tests::harness::scenario::REQUEST_TTL;
use ehr_tests::harness::{ExchangeResult, TwoHospitals};

fn requester(net: &mut TwoHospitals) -> TestPeer {
    std::mem::replace(
        &mut net.requester,
        TestPeer::new(net.a.addr("placeholder"), &[]),
    )
}

/// Submits `msg` and asserts a soft rejection with `code`, nothing recorded, no packet.
fn assert_refused(
    net: &mut TwoHospitals,
    peer: &TestPeer,
    msg: ehr_protocol::exchange::SubmitRequestMsg,
    code: &str,
) {
    let id = msg.request_id.clone();
    let sent_before = net.a.outbox.borrow().history.len();
    let result = net.a.submit_request(peer, msg);
    assert_eq!(result.rejection(), code);
    assert!(
        !net.a.has_request(&id),
        "refused request must not be stored"
    );
    assert_eq!(
        net.a.outbox.borrow().history.len(),
        sent_before,
        "no packet for a refused request"
    );
    let last = net
        .a
        .audit()
        .into_iter()
        .rev()
        .find(|e| e.action == AuditAction::RequestSubmitted)
        .expect("refusal audited");
    assert_eq!(last.outcome, AuditOutcome::Rejected);
    assert_eq!(
        last.reason.map(|r| r.name().to_string()).as_deref(),
        Some(code.split('(').next().unwrap())
    );
}

/// A request from `peer` to B, signed by `clinician`.
fn msg_by(net: &TwoHospitals, peer: &TestPeer, clinician: &TestClinician) -> SubmitRequestMsg {
    peer.request_msg(
        &peer.request_id(),
        "hospital-a",
        "hospital-b",
        clinician,
        &net.patient,
        net.a.now(),
        REQUEST_TTL,
    )
}

/// The request body the contract rebuilds from `msg` sent by `peer` (what gets signed).
fn body_of(peer: &TestPeer, msg: &SubmitRequestMsg) -> RequestBody {
    RequestBody {
        version: PACKET_VERSION,
        request_id: msg.request_id.clone(),
        source_network: "hospital-a".into(),
        destination_network: msg.partner_id.clone(),
        requester: peer.address.to_string(),
        requester_role: Role::Request,
        clinician_id: msg.clinician_id.clone(),
        purpose: msg.purpose,
        sealed_patient: msg.sealed_patient.clone(),
        reply_encryption_key: msg.reply_encryption_key.clone(),
        issued_at: msg.issued_at,
        expires_at: msg.expires_at,
        break_glass: msg.break_glass.clone(),
    }
}

fn valid_msg(net: &TwoHospitals, peer: &TestPeer) -> SubmitRequestMsg {
    msg_by(net, peer, &net.a.clinician)
}

#[test]
fn outsider_request_is_refused_and_nothing_is_stored() {
    let mut net = TwoHospitals::new();
    let outsider = net.a.outsider("mallory");
    let msg = valid_msg(&net, &outsider);
    let id = msg.request_id.clone();
    let audit_before = net.a.audit().len();
    let result = net.a.submit_request(&outsider, msg);
    assert_eq!(result.rejection(), "NotRegistered");
    assert!(!net.a.has_request(&id));
    assert_eq!(net.a.audit().len(), audit_before);
    assert!(net.a.outbox.borrow().history.is_empty());
}

#[test]
fn patient_details_in_clear_or_unpadded_are_invalid_format() {
    let mut net = TwoHospitals::new();
    let peer = requester(&mut net);
    let mut msg = valid_msg(&net, &peer);
    msg.sealed_patient = Binary::from(b"Maria Gonzalez".to_vec());
    assert_refused(&mut net, &peer, msg, "InvalidFormat");
    let mut msg = valid_msg(&net, &peer);
    msg.sealed_patient = Binary::from(seal(&[1u8; 32], &[0u8; 1500]));
    assert_refused(&mut net, &peer, msg, "InvalidFormat");
}

#[test]
fn lifetime_longer_than_policy_is_invalid_format() {
    let mut net = TwoHospitals::new();
    let peer = requester(&mut net);
    let msg = peer.request_msg(
        &peer.request_id(),
        "hospital-a",
        "hospital-b",
        &net.a.clinician,
        &net.patient,
        net.a.now(),
        10 * 3600,
    );
    assert_refused(&mut net, &peer, msg, "InvalidFormat");
}

#[test]
fn second_request_inside_the_window_is_rate_limited_with_retry_time() {
    let mut net = TwoHospitals::new();
    let peer = requester(&mut net);
    net.a
        .submit_request(&peer, valid_msg(&net, &peer))
        .accepted();
    net.advance(20);
    let msg = valid_msg(&net, &peer);
    assert_refused(&mut net, &peer, msg, "RateLimited(retry_after=40)");
    net.advance(40);
    net.a
        .submit_request(&peer, valid_msg(&net, &peer))
        .accepted();
}

#[test]
fn rate_limit_window_and_count_come_from_policy() {
    let policy = Policy {
        rate_limit_count: 3,
        rate_limit_window_secs: 10,
        strikes_before_quarantine: 10,
        ..Policy::default()
    };
    let mut net = TwoHospitals::with_policy(policy);
    let peer = requester(&mut net);
    for _ in 0..3 {
        net.a
            .submit_request(&peer, valid_msg(&net, &peer))
            .accepted();
    }
    let msg = valid_msg(&net, &peer);
    assert_refused(&mut net, &peer, msg, "RateLimited(retry_after=10)");
    net.advance(10);
    net.a
        .submit_request(&peer, valid_msg(&net, &peer))
        .accepted();
}

#[test]
fn unknown_clinician_is_refused() {
    let mut net = TwoHospitals::new();
    let peer = requester(&mut net);
    let stranger = TestClinician::new("dr-nobody");
    let msg = msg_by(&net, &peer, &stranger);
    assert_refused(&mut net, &peer, msg, "UnknownClinician");
}

#[test]
fn revoked_clinician_is_refused_at_once_without_strike() {
    let mut net = TwoHospitals::new();
    let peer = requester(&mut net);
    net.a
        .admin_exec(&ExecuteMsg::RevokeClinician {
            clinician_id: net.a.clinician.id.clone(),
        })
        .unwrap();
    let msg = valid_msg(&net, &peer);
    let result = net.a.submit_request(&peer, msg);
    assert_eq!(result.rejection(), "KeyRevoked");
    assert_eq!(net.a.peer(&peer.address).unwrap().strikes, 0);
}

#[test]
fn purpose_the_clinician_is_not_allowed_is_not_authorized() {
    let mut net = TwoHospitals::new();
    let peer = requester(&mut net);
    let nurse = net
        .a
        .add_clinician("nurse-ortiz", &[PurposeOfUse::Treatment]);
    let treatment = msg_by(&net, &peer, &nurse);
    // Signed by the nurse herself: the signature is fine, the purpose is not hers to use.
    let body = RequestBody {
        purpose: PurposeOfUse::Payment,
        ..body_of(&peer, &treatment)
    };
    let msg = TestPeer::sign_request(&body, &nurse);
    assert_refused(&mut net, &peer, msg, "NotAuthorized");
}

#[test]
fn stolen_clinician_id_without_the_clinicians_key_is_bad_signature() {
    // Another registered peer reads a clinician's id from the public registry and asks in
    // their name, signing with its own key: the chain checks the clinician's key.
    let mut net = TwoHospitals::new();
    let thief = requester(&mut net);
    let impostor = TestClinician::new(&net.a.clinician.id);
    let msg = msg_by(&net, &thief, &impostor);
    assert_refused(&mut net, &thief, msg, "BadSignature");
    let mut msg = valid_msg(&net, &thief);
    msg.signature = thief.sign(b"anything the thief can sign");
    assert_refused(&mut net, &thief, msg, "BadSignature");
}

#[test]
fn destination_missing_from_lookup_table_is_unknown_partner() {
    let mut net = TwoHospitals::new();
    let peer = requester(&mut net);
    let msg = peer.request_msg(
        &peer.request_id(),
        "hospital-a",
        "hospital-z",
        &net.a.clinician,
        &net.patient,
        net.a.now(),
        REQUEST_TTL,
    );
    assert_refused(&mut net, &peer, msg, "UnknownPartner");
}

#[test]
fn partner_without_bound_channel_or_suspended_is_unavailable() {
    let mut net = TwoHospitals::new();
    let peer = requester(&mut net);
    // Registered, but no channel was ever opened to it.
    net.a
        .add_partner("hospital-c", "connection-9", "wasm.hospc1contract");
    let msg = peer.request_msg(
        &peer.request_id(),
        "hospital-a",
        "hospital-c",
        &net.a.clinician,
        &net.patient,
        net.a.now(),
        REQUEST_TTL,
    );
    assert_refused(&mut net, &peer, msg, "PartnerUnavailable");
    // Suspended partner with a bound channel.
    net.a.set_partner_status(
        "hospital-b",
        ehr_protocol::registry::PartnerStatus::Suspended,
    );
    let msg = valid_msg(&net, &peer);
    assert_refused(&mut net, &peer, msg, "PartnerUnavailable");
}

#[test]
fn peer_without_request_role_is_not_authorized() {
    let mut net = TwoHospitals::new();
    let clerk = net.a.add_peer("clerk", &[Role::Store]);
    let msg = valid_msg(&net, &clerk);
    assert_refused(&mut net, &clerk, msg, "NotAuthorized");
}

#[test]
fn signature_by_the_peers_own_key_is_bad_signature() {
    // Requests are the clinician's: even the sending peer's registered key cannot sign one.
    let mut net = TwoHospitals::new();
    let peer = requester(&mut net);
    let mut msg = valid_msg(&net, &peer);
    let body = body_of(&peer, &msg);
    msg.signature = peer.sign(&ehr_protocol::signing::request_sign_bytes(&body));
    assert_refused(&mut net, &peer, msg, "BadSignature");
}

#[test]
fn high_s_twin_of_a_valid_signature_is_bad_signature() {
    // ECDSA malleability: (r, n - s) verifies under the same key as (r, s). Only the low-S
    // form is accepted, so a signature has exactly one accepted encoding.
    let mut net = TwoHospitals::new();
    let peer = requester(&mut net);
    let mut msg = valid_msg(&net, &peer);
    msg.signature = TestPeer::high_s(&msg.signature);
    assert_refused(&mut net, &peer, msg, "BadSignature");
}

#[test]
fn tampered_field_after_signing_is_bad_signature() {
    let mut net = TwoHospitals::new();
    let peer = requester(&mut net);
    let mut msg = valid_msg(&net, &peer);
    msg.purpose = ehr_protocol::exchange::PurposeOfUse::EmergencyTreatment;
    assert_refused(&mut net, &peer, msg, "BadSignature");
}

#[test]
fn replayed_request_id_is_refused() {
    let policy = Policy {
        rate_limit_count: 5,
        ..Policy::default()
    };
    let mut net = TwoHospitals::with_policy(policy);
    let peer = requester(&mut net);
    let msg = valid_msg(&net, &peer);
    net.a.submit_request(&peer, msg.clone()).accepted();
    // The identical signed message again: same id.
    let result = net.a.submit_request(&peer, msg);
    assert_eq!(result.rejection(), "Replay");
    assert_eq!(net.a.outbox.borrow().history.len(), 1);
}

#[test]
fn expired_request_is_refused_against_block_time() {
    let mut net = TwoHospitals::new();
    let peer = requester(&mut net);
    let now = net.a.now();
    let msg = peer.request_msg(
        &peer.request_id(),
        "hospital-a",
        "hospital-b",
        &net.a.clinician,
        &net.patient,
        now - 200,
        100,
    );
    assert_refused(&mut net, &peer, msg, "Expired");
}

#[test]
fn future_dated_request_is_invalid_format() {
    let mut net = TwoHospitals::new();
    let peer = requester(&mut net);
    let now = net.a.now();
    let msg = peer.request_msg(
        &peer.request_id(),
        "hospital-a",
        "hospital-b",
        &net.a.clinician,
        &net.patient,
        now + 3600,
        600,
    );
    assert_refused(&mut net, &peer, msg, "InvalidFormat");
}

#[test]
fn revoked_peer_is_refused_without_strike_and_a_rotated_reply_key_binds_new_requests() {
    let policy = Policy {
        rate_limit_count: 5,
        ..Policy::default()
    };
    let mut net = TwoHospitals::with_policy(policy);
    let peer = requester(&mut net);
    // Rotation: a request naming the old reply key no longer passes.
    let rotated = TestPeer::new(peer.address.clone(), &[Role::Request]);
    net.a
        .admin_exec(&ExecuteMsg::RotatePeerKeys {
            address: peer.address.to_string(),
            signing_key: rotated.pubkey(),
            encryption_key: Binary::from(rotated.encryption_key.to_vec()),
        })
        .unwrap();
    let msg = valid_msg(&net, &peer);
    assert_refused(&mut net, &peer, msg, "RecipientKeyMismatch");
    net.a
        .submit_request(&rotated, valid_msg(&net, &rotated))
        .accepted();

    net.a
        .admin_exec(&ExecuteMsg::RevokePeer {
            address: peer.address.to_string(),
        })
        .unwrap();
    let msg = valid_msg(&net, &rotated);
    let result = net.a.submit_request(&rotated, msg);
    assert_eq!(result.rejection(), "KeyRevoked");
    let ExchangeResult::SoftRejected { response, .. } = result else {
        unreachable!()
    };
    assert_eq!(
        ehr_tests::harness::chain::wasm_attr(&response, "strike").as_deref(),
        Some("false")
    );
}

#[test]
fn peer_outside_validity_window_is_not_authorized() {
    let mut net = TwoHospitals::new();
    let mut temp = TestPeer::new(net.a.addr("locum"), &[Role::Request]);
    let mut input = temp.peer_input();
    input.valid_until = Some(cosmwasm_std::Timestamp::from_seconds(net.a.now() + 100));
    net.a
        .admin_exec(&ExecuteMsg::RegisterPeer { peer: input })
        .unwrap();
    net.advance(200);
    temp.roles = vec![Role::Request];
    let msg = valid_msg(&net, &temp);
    assert_refused(&mut net, &temp, msg, "NotAuthorized");
}

#[test]
fn request_without_channel_after_partner_joins_late_still_needs_handshake() {
    // A partner whose connection is registered can take requests only after the
    // handshake bound a channel: registering alone is not enough.
    let mut net = TwoHospitals::new();
    let mut c = ehr_tests::harness::Chain::new("hospc", "hospital-c");
    let conns = Relayer::connect(&mut net.a, &mut c);
    net.a.add_partner("hospital-c", &conns.0, &c.port());
    let peer = requester(&mut net);
    let msg = peer.request_msg(
        &peer.request_id(),
        "hospital-a",
        "hospital-c",
        &net.a.clinician,
        &net.patient,
        net.a.now(),
        REQUEST_TTL,
    );
    assert_refused(&mut net, &peer, msg, "PartnerUnavailable");
}

// ------------------------------------------------------------------ StoreRecord

fn store_refused(
    net: &mut TwoHospitals,
    peer: &TestPeer,
    msg: ehr_protocol::exchange::StoreRecordMsg,
    code: &str,
) {
    let before = net.b.record_count(&net.patient.token);
    assert_eq!(net.b.store(peer, msg).rejection(), code);
    assert_eq!(net.b.record_count(&net.patient.token), before);
}

#[test]
fn store_checks_role_hash_signature_and_duplicates() {
    // Enough strikes allowed to see every check (quarantine has its own tests).
    let mut net = TwoHospitals::with_policy(Policy {
        strikes_before_quarantine: 10,
        max_history_chunks: 2,
        ..Policy::default()
    });
    let storer = std::mem::replace(&mut net.storer, TestPeer::new(net.b.addr("x"), &[]));
    let ct = seal(&net.records_key, b"{}");

    let responder_only = net.b.add_peer("nurse-station", &[Role::Reply]);
    let msg = responder_only.store_msg("hospital-b", &random_id("rec"), &net.patient, &opaque(&ct));
    store_refused(&mut net, &responder_only, msg, "NotAuthorized");

    // A chunk that is not the one the manifest lists.
    let mut msg = storer.store_msg("hospital-b", &random_id("rec"), &net.patient, &opaque(&ct));
    msg.chunks[0] = Binary::from(vec![0u8; msg.chunks[0].len()]);
    store_refused(&mut net, &storer, msg, "ChunkMismatch");
    // A manifest whose hashes do not give its history hash.
    let mut msg = storer.store_msg("hospital-b", &random_id("rec"), &net.patient, &opaque(&ct));
    msg.manifest.history_hash = "00".repeat(32);
    store_refused(&mut net, &storer, msg, "InvalidFormat");

    let mut msg = storer.store_msg("hospital-b", &random_id("rec"), &net.patient, &opaque(&ct));
    msg.record_id = random_id("rec");
    store_refused(&mut net, &storer, msg, "BadSignature");

    // Signed for another network: the domain binds the network id.
    let msg = storer.store_msg("hospital-a", &random_id("rec"), &net.patient, &opaque(&ct));
    store_refused(&mut net, &storer, msg, "BadSignature");

    let msg = storer.store_msg(
        "hospital-b",
        &net.record_id.clone(),
        &net.patient,
        &opaque(&ct),
    );
    store_refused(&mut net, &storer, msg, "Replay");

    let msg = storer.store_msg(
        "hospital-b",
        &random_id("rec"),
        &net.patient,
        &opaque(&vec![1u8; 300 * 1024]),
    );
    // Four chunks of 128 KiB, above this policy's two.
    store_refused(&mut net, &storer, msg, "TooLarge");

    let outsider = net.b.outsider("intruder");
    let msg = outsider.store_msg("hospital-b", &random_id("rec"), &net.patient, &opaque(&ct));
    assert_eq!(net.b.store(&outsider, msg).rejection(), "NotRegistered");

    net.b
        .store(
            &storer,
            storer.store_msg("hospital-b", &random_id("rec"), &net.patient, &opaque(&ct)),
        )
        .accepted();
    assert_eq!(net.b.record_count(&net.patient.token), 2);
}
