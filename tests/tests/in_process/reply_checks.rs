//! Algorithm 3 (source chain, incoming reply): forged, misrouted, duplicate and late
//! replies are refused with a coded error ack and audited; the request keeps its state.

use cosmwasm_std::{to_json_binary, Binary, IbcTimeout, StdAck, Timestamp};
use ehr_protocol::audit::{AuditAction, AuditOutcome};
use ehr_protocol::chunks::Manifest;
use ehr_protocol::exchange::RequestStatus;
use ehr_protocol::packet::{ExchangePacket, ReplyBody, ReplyPacket};
use ehr_protocol::signing::reply_sign_bytes;
use ehr_tests::harness::peer::{opaque, random_id, TestPeer};
use ehr_tests::harness::relayer::Relayer;
use ehr_tests::harness::scenario::{link_partners, REQUEST_TTL};
use ehr_tests::harness::{Chain, TwoHospitals};

/// A request that reached B and waits for a reply.
fn pending(net: &mut TwoHospitals) -> String {
    let (id, result) = net.request();
    result.accepted();
    net.relay_requests();
    id
}

/// The one chunk of the forged history (`opaque` is deterministic).
fn forged_chunk() -> Vec<u8> {
    opaque(b"forged").chunks.remove(0)
}

/// Chunk 0 of a reply, signed by `signer`, carrying `chunk`.
fn chunk_packet(signer: &TestPeer, body: ReplyBody, chunk: Vec<u8>) -> Binary {
    let signature = signer.sign(&reply_sign_bytes(&body));
    to_json_binary(&ExchangePacket::Reply(ReplyPacket {
        body,
        signer_pubkey: signer.pubkey(),
        signature,
        chunk_index: 0,
        chunk: Binary::from(chunk),
    }))
    .unwrap()
}

fn reply_packet(signer: &TestPeer, body: ReplyBody) -> Binary {
    chunk_packet(signer, body, forged_chunk())
}

fn forged_body(net: &TwoHospitals, signer: &TestPeer, id: &str) -> ReplyBody {
    signer.reply_body(
        id,
        "hospital-a",
        "hospital-b",
        &net.requester.encryption_key,
        &opaque(b"forged"),
        net.a.now(),
    )
}

/// Delivers `data` to A over the B->A channel; asserts the error ack and a rejected audit.
fn refused_on_a(net: &mut TwoHospitals, data: Binary, code: &str) {
    let link = net.ab.reverse();
    let timeout = IbcTimeout::with_timestamp(Timestamp::from_seconds(net.a.now() + 600));
    let ack = Relayer::inject(&mut net.a, &link, data, 900, timeout);
    assert_eq!(ack, StdAck::error(format!("ehrx:{code}")));
    let last = net.a.audit().pop().unwrap();
    assert_eq!(last.action, AuditAction::ReplyReceived);
    assert_eq!(last.outcome, AuditOutcome::Rejected);
}

#[test]
fn forged_reply_with_bad_signature_is_refused_and_request_stays_pending() {
    let mut net = TwoHospitals::new();
    let id = pending(&mut net);
    let body = forged_body(&net, &net.responder, &id);
    let signature = net.responder.sign(&reply_sign_bytes(&body));
    let mut tampered = body;
    tampered.responder = "wasm1somebodyelse".into();
    let data = to_json_binary(&ExchangePacket::Reply(ReplyPacket {
        body: tampered,
        signer_pubkey: net.responder.pubkey(),
        signature,
        chunk_index: 0,
        chunk: Binary::from(forged_chunk()),
    }))
    .unwrap();
    refused_on_a(&mut net, data, "BadSignature");
    assert_eq!(net.a.request(&id).status, RequestStatus::Pending);
}

#[test]
fn reply_for_unknown_request_is_refused() {
    let mut net = TwoHospitals::new();
    let body = forged_body(&net, &net.responder, &random_id("req"));
    let data = reply_packet(&net.responder, body);
    refused_on_a(&mut net, data, "UnknownRequest");
}

#[test]
fn reply_chunk_that_is_not_the_manifests_is_refused() {
    let mut net = TwoHospitals::new();
    let id = pending(&mut net);
    let mut body = forged_body(&net, &net.responder, &id);
    // Altered on the way: its hash is not the one the responder signed.
    let mut altered = forged_chunk();
    altered[100] ^= 1;
    let data = chunk_packet(&net.responder, body.clone(), altered);
    refused_on_a(&mut net, data, "ChunkMismatch");
    // A manifest whose hashes do not give its history hash.
    body.manifest.history_hash = "22".repeat(32);
    let data = reply_packet(&net.responder, body.clone());
    refused_on_a(&mut net, data, "InvalidFormat");
    // A chunk not of a size bucket: its size could identify the history.
    let unpadded = vec![9u8; 3000];
    body.manifest = Manifest::of(std::slice::from_ref(&unpadded));
    let data = chunk_packet(&net.responder, body, unpadded);
    refused_on_a(&mut net, data, "InvalidFormat");
}

#[test]
fn reply_claiming_another_responder_network_is_wrong_channel() {
    let mut net = TwoHospitals::new();
    let id = pending(&mut net);
    let mut body = forged_body(&net, &net.responder, &id);
    body.responder_network = "hospital-c".into();
    let data = reply_packet(&net.responder, body);
    refused_on_a(&mut net, data, "WrongChannel");
}

#[test]
fn reply_arriving_on_another_partners_channel_is_wrong_channel() {
    // A request to B answered over C's channel: the reply must come back on the channel
    // the request left on.
    let mut net = TwoHospitals::new();
    let id = pending(&mut net);
    let mut c = Chain::new("hospc", "hospital-c");
    let ac = link_partners(&mut net.a, &mut c);
    let mut body = forged_body(&net, &net.responder, &id);
    body.responder_network = "hospital-c".into();
    let data = reply_packet(&net.responder, body);
    let timeout = IbcTimeout::with_timestamp(Timestamp::from_seconds(net.a.now() + 600));
    let ack = Relayer::inject(&mut net.a, &ac.reverse(), data, 1, timeout);
    assert_eq!(ack, StdAck::error("ehrx:WrongChannel"));
    assert_eq!(net.a.request(&id).status, RequestStatus::Pending);
}

#[test]
fn reply_on_unbound_channel_is_wrong_channel() {
    let mut net = TwoHospitals::new();
    let id = pending(&mut net);
    let body = forged_body(&net, &net.responder, &id);
    let data = reply_packet(&net.responder, body);
    let mut link = net.ab.reverse();
    link.dst.channel_id = "channel-99".into();
    let timeout = IbcTimeout::with_timestamp(Timestamp::from_seconds(net.a.now() + 600));
    let ack = Relayer::inject(&mut net.a, &link, data, 1, timeout);
    assert_eq!(ack, StdAck::error("ehrx:WrongChannel"));
}

#[test]
fn duplicate_reply_is_already_answered() {
    let mut net = TwoHospitals::new();
    let id = pending(&mut net);
    net.answer(&id).accepted();
    let sent = Relayer::pending(&net.b, &net.ab.reverse());
    net.relay_replies();
    assert_eq!(net.a.request(&id).status, RequestStatus::Answered);
    // The relayer (or an attacker) replays the same packet.
    let replayed = sent[0].data.clone();
    refused_on_a(&mut net, replayed, "AlreadyAnswered");
    assert_eq!(net.a.request(&id).status, RequestStatus::Answered);
}

#[test]
fn late_reply_after_expiry_is_refused_and_request_expires() {
    let mut net = TwoHospitals::new();
    let id = pending(&mut net);
    net.answer(&id).accepted();
    // Relaying is delayed past the request's expiry but inside the packet's timeout window
    // as seen by a lagging relayer: inject directly.
    let sent = Relayer::pending(&net.b, &net.ab.reverse());
    net.advance(REQUEST_TTL + 5);
    refused_on_a(&mut net, sent[0].data.clone(), "Expired");
    let request = net.a.request(&id);
    assert_eq!(request.status, RequestStatus::Expired);
    assert!(request.reply.is_none());
}

#[test]
fn reply_refused_by_the_source_is_marked_failed_on_the_destination() {
    let mut net = TwoHospitals::new();
    let id = pending(&mut net);
    net.answer(&id).accepted();
    // A suspends B before the reply arrives: A refuses it, B learns why from the ack.
    net.a.set_partner_status(
        "hospital-b",
        ehr_protocol::registry::PartnerStatus::Suspended,
    );
    let acks = net.relay_replies();
    assert_eq!(acks[0].ack, StdAck::error("ehrx:PartnerUnavailable"));
    let incoming = net.b.incoming("hospital-a", &id).unwrap();
    assert_eq!(
        incoming.status,
        ehr_protocol::exchange::IncomingStatus::Failed
    );
    assert_eq!(
        incoming.reason,
        Some(ehr_protocol::ErrorCode::PartnerUnavailable)
    );
    assert_eq!(
        net.b.audit().pop().unwrap().action,
        AuditAction::ReplyFailed
    );
    assert_eq!(net.a.request(&id).status, RequestStatus::Pending);
}

#[test]
fn reply_packet_timeout_marks_the_incoming_request_timed_out() {
    let mut net = TwoHospitals::new();
    let id = pending(&mut net);
    net.answer(&id).accepted();
    // The relayer is down until the reply's timeout (capped by request expiry) passes.
    net.advance(REQUEST_TTL + 1);
    let ba = net.ab.reverse();
    assert!(Relayer::relay(&mut net.b, &mut net.a, &ba).is_empty());
    assert_eq!(Relayer::time_out(&mut net.b, &net.a, &ba), 1);
    let incoming = net.b.incoming("hospital-a", &id).unwrap();
    assert_eq!(
        incoming.status,
        ehr_protocol::exchange::IncomingStatus::TimedOut
    );
    assert_eq!(
        net.b.audit().pop().unwrap().action,
        AuditAction::ReplyTimedOut
    );
}
