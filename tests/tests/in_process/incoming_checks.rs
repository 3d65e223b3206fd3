//! Algorithm 2 (destination chain): the incoming request packet's checks, each a coded
//! error ack and an audit entry; then `SubmitReply`'s checks (first valid reply wins).

use cosmwasm_std::{to_json_binary, Binary, IbcTimeout, StdAck, Timestamp};
use ehr_protocol::audit::{AuditAction, AuditOutcome};
use ehr_protocol::exchange::{IncomingStatus, PurposeOfUse, RequestStatus};
use ehr_protocol::limits::PACKET_VERSION;
use ehr_protocol::packet::{ExchangePacket, RequestBody, RequestPacket};
use ehr_protocol::registry::{Policy, Role};
use ehr_protocol::signing::request_sign_bytes;
use ehr_tests::harness::peer::{custodian_key, random_id, seal, Patient, TestPeer};
use ehr_tests::harness::relayer::Relayer;
use ehr_tests::harness::scenario::REQUEST_TTL;
use ehr_tests::harness::TwoHospitals;

fn body(net: &TwoHospitals, peer: &TestPeer, patient: &Patient) -> RequestBody {
    let now = net.b.now();
    RequestBody {
        version: PACKET_VERSION,
        request_id: peer.request_id(),
        source_network: "hospital-a".into(),
        destination_network: "hospital-b".into(),
        requester: peer.address.to_string(),
        requester_role: Role::Request,
        clinician_id: "dr-adams".into(),
        purpose: PurposeOfUse::Treatment,
        sealed_patient: Binary::from(seal(&custodian_key("hospital-b"), &patient.details())),
        reply_encryption_key: Binary::from(peer.encryption_key.to_vec()),
        issued_at: now,
        expires_at: now + REQUEST_TTL,
        break_glass: None,
    }
}

fn packet(signer: &TestPeer, body: RequestBody) -> Binary {
    let signature = signer.sign(&request_sign_bytes(&body));
    to_json_binary(&ExchangePacket::Request(RequestPacket {
        body,
        signer_pubkey: signer.pubkey(),
        signature,
    }))
    .unwrap()
}

fn timeout(net: &TwoHospitals) -> IbcTimeout {
    IbcTimeout::with_timestamp(Timestamp::from_seconds(net.b.now() + 600))
}

/// Delivers `data` to B as if relayed over the A->B channel; asserts the coded error ack,
/// a rejected audit entry on B, and no pending request.
fn refused_on_b(net: &mut TwoHospitals, data: Binary, code: &str) {
    let link = net.ab.clone();
    let t = timeout(net);
    let ack = Relayer::inject(&mut net.b, &link, data, 77, t);
    assert_eq!(ack, StdAck::error(format!("ehrx:{code}")));
    assert!(net.b.pending_incoming().is_empty());
    let last = net.b.audit().pop().unwrap();
    assert_eq!(last.action, AuditAction::RequestReceived);
    assert_eq!(last.outcome, AuditOutcome::Rejected);
    assert_eq!(last.packet_sequence, Some(77));
}

#[test]
fn valid_request_packet_is_accepted_and_pending() {
    let mut net = TwoHospitals::new();
    let body = body(&net, &net.requester, &net.patient);
    let id = body.request_id.clone();
    let data = packet(&net.requester, body);
    let link = net.ab.clone();
    let t = timeout(&net);
    assert!(Relayer::inject(&mut net.b, &link, data, 5, t).is_success());
    let incoming = net.b.incoming("hospital-a", &id).unwrap();
    assert_eq!(incoming.status, IncomingStatus::Pending);
    assert_eq!(incoming.packet_sequence, 5);
}

#[test]
fn malformed_packet_is_invalid_format() {
    let mut net = TwoHospitals::new();
    refused_on_b(
        &mut net,
        Binary::from(b"{\"not\":\"ours\"}".to_vec()),
        "InvalidFormat",
    );
    // Patient details in clear, or sealed but not padded to the one fixed size.
    for sealed in [
        b"Maria Gonzalez 1984".to_vec(),
        seal(&custodian_key("hospital-b"), &[7u8; 2000]),
    ] {
        let mut body = body(&net, &net.requester, &net.patient);
        body.sealed_patient = Binary::from(sealed);
        let data = packet(&net.requester, body);
        refused_on_b(&mut net, data, "InvalidFormat");
    }
}

#[test]
fn unknown_packet_version_is_unsupported() {
    let mut net = TwoHospitals::new();
    for version in [PACKET_VERSION - 1, PACKET_VERSION + 1] {
        let mut body = body(&net, &net.requester, &net.patient);
        body.version = version;
        let data = packet(&net.requester, body);
        refused_on_b(&mut net, data, "UnsupportedVersion");
    }
}

#[test]
fn packet_on_a_channel_not_bound_to_a_partner_is_wrong_channel() {
    let mut net = TwoHospitals::new();
    let body = body(&net, &net.requester, &net.patient);
    let data = packet(&net.requester, body);
    let mut link = net.ab.clone();
    link.dst.channel_id = "channel-42".into();
    let t = timeout(&net);
    let ack = Relayer::inject(&mut net.b, &link, data, 1, t);
    assert_eq!(ack, StdAck::error("ehrx:WrongChannel"));
    assert!(net.b.pending_incoming().is_empty());
}

#[test]
fn misrouted_request_for_another_network_is_wrong_channel() {
    let mut net = TwoHospitals::new();
    let mut body = body(&net, &net.requester, &net.patient);
    body.destination_network = "hospital-c".into();
    let data = packet(&net.requester, body);
    refused_on_b(&mut net, data, "WrongChannel");
    let mut body2 = self::body(&net, &net.requester, &net.patient);
    body2.source_network = "hospital-c".into();
    let data = packet(&net.requester, body2);
    refused_on_b(&mut net, data, "WrongChannel");
}

#[test]
fn requester_role_other_than_request_is_not_authorized() {
    let mut net = TwoHospitals::new();
    let mut body = body(&net, &net.requester, &net.patient);
    body.requester_role = Role::Store;
    let data = packet(&net.requester, body);
    refused_on_b(&mut net, data, "NotAuthorized");
}

#[test]
fn bad_requester_signature_is_refused() {
    let mut net = TwoHospitals::new();
    let body = body(&net, &net.requester, &net.patient);
    let signature = net.requester.sign(&request_sign_bytes(&body));
    let mut tampered = body.clone();
    tampered.purpose = PurposeOfUse::EmergencyTreatment;
    let data = to_json_binary(&ExchangePacket::Request(RequestPacket {
        body: tampered,
        signer_pubkey: net.requester.pubkey(),
        signature,
    }))
    .unwrap();
    refused_on_b(&mut net, data, "BadSignature");
}

#[test]
fn expired_request_packet_is_refused() {
    let mut net = TwoHospitals::new();
    let mut body = body(&net, &net.requester, &net.patient);
    body.issued_at -= 1000;
    body.expires_at = net.b.now() - 1;
    let data = packet(&net.requester, body);
    refused_on_b(&mut net, data, "Expired");
}

#[test]
fn request_packet_outside_our_own_time_policy_is_refused() {
    // A partner's packet is bounded by the receiving chain's policy. Before this check, a
    // far-future expiry was accepted, and SubmitReply on it panicked in every attempt.
    let mut net = TwoHospitals::new();
    let policy = Policy::default();

    let mut far_future = body(&net, &net.requester, &net.patient);
    far_future.expires_at = u64::MAX / 2;
    let data = packet(&net.requester, far_future);
    refused_on_b(&mut net, data, "InvalidFormat");

    let mut too_long = body(&net, &net.requester, &net.patient);
    too_long.expires_at = too_long.issued_at + policy.max_request_ttl_secs + 1;
    let data = packet(&net.requester, too_long);
    refused_on_b(&mut net, data, "InvalidFormat");

    let mut issued_later = body(&net, &net.requester, &net.patient);
    issued_later.issued_at = net.b.now() + 3600;
    issued_later.expires_at = issued_later.issued_at + 60;
    let data = packet(&net.requester, issued_later);
    refused_on_b(&mut net, data, "InvalidFormat");

    // No strike for anyone: the sender is the partner, not one of our peers.
    assert!(net
        .b
        .audit()
        .iter()
        .all(|e| e.action != AuditAction::Strike));
}

#[test]
fn replayed_request_packet_is_refused() {
    let mut net = TwoHospitals::new();
    let body = body(&net, &net.requester, &net.patient);
    let data = packet(&net.requester, body);
    let link = net.ab.clone();
    let t = timeout(&net);
    assert!(Relayer::inject(&mut net.b, &link, data.clone(), 1, t.clone()).is_success());
    let ack = Relayer::inject(&mut net.b, &link, data, 2, t);
    assert_eq!(ack, StdAck::error("ehrx:Replay"));
    assert_eq!(net.b.pending_incoming().len(), 1);
}

#[test]
fn request_for_a_patient_without_records_is_accepted_like_any_other() {
    // The receiving chain never looks at records on receive: no error ack tells anyone that
    // a patient is (or is not) known here.
    let mut net = TwoHospitals::new();
    net.patient = Patient::new("Nobody", "Known", "1970-01-01", "123-45-6789");
    let (id, result) = net.request();
    result.accepted();
    let acks = net.relay_requests();
    assert!(acks[0].ack.is_success());
    assert_eq!(net.a.request(&id).status, RequestStatus::Pending);
    assert_eq!(net.b.pending_incoming().len(), 1);
}

// ------------------------------------------------------------------ SubmitReply

fn pending_request(net: &mut TwoHospitals) -> String {
    let (id, result) = net.request();
    result.accepted();
    net.relay_requests();
    id
}

#[test]
fn reply_from_outsider_is_refused() {
    let mut net = TwoHospitals::new();
    let id = pending_request(&mut net);
    let outsider = net.b.outsider("fake-responder");
    let outcome = net.reply_outcome_for(&id);
    assert_eq!(
        net.answer_with(&outsider, &id, outcome).rejection(),
        "NotRegistered"
    );
    assert_eq!(
        net.b.incoming("hospital-a", &id).unwrap().status,
        IncomingStatus::Pending
    );
    assert!(Relayer::pending(&net.b, &net.ab.reverse()).is_empty());
}

#[test]
fn reply_checks_role_request_signature_and_first_reply_wins() {
    let mut net = TwoHospitals::with_policy(Policy {
        strikes_before_quarantine: 10,
        ..Policy::default()
    });
    let id = pending_request(&mut net);
    let outcome = net.reply_outcome_for(&id);

    let storer = std::mem::replace(&mut net.storer, net.b.outsider("x"));
    assert_eq!(
        net.answer_with(&storer, &id, outcome.clone()).rejection(),
        "NotAuthorized"
    );

    let responder = std::mem::replace(&mut net.responder, net.b.outsider("y"));
    assert_eq!(
        net.answer_with(&responder, &random_id("req"), outcome.clone())
            .rejection(),
        "UnknownRequest"
    );

    let requester_key = net.requester.encryption_key;
    let outcome = outcome.clone();
    let body = responder.reply_body(
        &id,
        "hospital-a",
        "hospital-b",
        &requester_key,
        &outcome,
        net.b.now(),
    );
    let mut msg = responder.reply_msg(&body, &outcome);
    msg.signature = storer.sign(b"something else");
    assert_eq!(
        net.b.submit_reply(&responder, msg).rejection(),
        "BadSignature"
    );

    let mut bad_hash = outcome.clone();
    bad_hash.manifest.history_hash = "11".repeat(32);
    assert_eq!(
        net.answer_with(&responder, &id, bad_hash).rejection(),
        "InvalidFormat"
    );
    let mut altered = outcome.clone();
    altered.chunks[0][40] ^= 1;
    assert_eq!(
        net.answer_with(&responder, &id, altered).rejection(),
        "ChunkMismatch"
    );
    assert!(
        Relayer::pending(&net.b, &net.ab.reverse()).is_empty(),
        "no reply sent yet"
    );

    net.answer_with(&responder, &id, outcome.clone()).accepted();
    let second = net.b.add_peer("second-responder", &[Role::Reply]);
    assert_eq!(
        net.answer_with(&second, &id, outcome).rejection(),
        "AlreadyAnswered"
    );
    assert_eq!(Relayer::pending(&net.b, &net.ab.reverse()).len(), 1);
    let incoming = net.b.incoming("hospital-a", &id).unwrap();
    assert_eq!(incoming.answered_by, Some(responder.address.clone()));
}

#[test]
fn reply_after_request_expiry_is_refused() {
    let mut net = TwoHospitals::new();
    let id = pending_request(&mut net);
    let outcome = net.reply_outcome_for(&id);
    net.advance(REQUEST_TTL + 1);
    let responder = std::mem::replace(&mut net.responder, net.b.outsider("y"));
    assert_eq!(
        net.answer_with(&responder, &id, outcome).rejection(),
        "Expired"
    );
}

#[test]
fn purpose_the_receiver_does_not_accept_from_this_partner_is_not_authorized() {
    // A's clinician may ask for payment, but B answers A only for treatment: purpose of use
    // is checked on both chains.
    let mut net = TwoHospitals::new();
    let mut body = body(&net, &net.requester, &net.patient);
    body.purpose = PurposeOfUse::Payment;
    let data = packet(&net.requester, body);
    refused_on_b(&mut net, data, "NotAuthorized");
}
