//! Histories in chunks (issue 9): a record or a reply of any size is a signed manifest and
//! its chunks. Every chunk is checked against the manifest before it is kept; a missing,
//! reordered, duplicated or altered chunk is named and refused, and a reply is released to
//! its requester only whole, never as a silent part.

use cosmwasm_std::{Binary, IbcTimeout, StdAck, Timestamp};
use ehr_protocol::exchange::{
    IncomingStatus, QueryMsg, RecordsResponse, RequestStatus, StoreChunksMsg, SubmitReplyChunksMsg,
};
use ehr_protocol::packet::{frame, ExchangePacket, ReplyBody, ReplyPacket};
use ehr_protocol::registry::{Policy, Role};
use ehr_protocol::signing::reply_sign_bytes;
use ehr_protocol::ErrorCode;
use ehr_tests::harness::peer::{open_history, random_id, seal_history, Sealed, TestPeer};
use ehr_tests::harness::relayer::Relayer;
use ehr_tests::harness::scenario::REQUEST_TTL;
use ehr_tests::harness::TwoHospitals;

/// Chunks of 1 KiB, so that a few KiB make a history of several.
const CHUNK: usize = 1024;

fn small_chunks() -> TwoHospitals {
    TwoHospitals::with_policy(Policy {
        max_chunk_bytes: CHUNK as u64,
        strikes_before_quarantine: 10,
        ..Policy::default()
    })
}

/// A request pending on B; its id.
fn pending(net: &mut TwoHospitals) -> String {
    let (id, result) = net.request();
    result.accepted();
    net.relay_requests();
    id
}

/// A reply of eight 1 KiB chunks sealed to the requester, and its signed body.
fn eight_chunk_reply(net: &TwoHospitals, id: &str) -> (Sealed, ReplyBody) {
    let sealed = seal_history(
        &net.requester.encryption_key,
        &frame(br#""no_records""#, &[7u8; 6000]),
        CHUNK,
    );
    assert_eq!(sealed.chunks.len(), 8);
    let body = net.responder.reply_body(
        id,
        "hospital-a",
        "hospital-b",
        &net.requester.encryption_key,
        &sealed,
        net.b.now(),
    );
    (sealed, body)
}

fn chunks(sealed: &Sealed, range: std::ops::Range<usize>) -> Vec<Binary> {
    sealed.binaries()[range].to_vec()
}

fn more(id: &str, first_index: u32, chunks: Vec<Binary>) -> SubmitReplyChunksMsg {
    SubmitReplyChunksMsg {
        partner_id: "hospital-a".into(),
        request_id: id.into(),
        first_index,
        chunks,
    }
}

/// Chunk `index` of `sealed` as a packet signed by `signer`, delivered to A as packet
/// `sequence` of the B->A channel; A's acknowledgement.
fn deliver_chunk(
    net: &mut TwoHospitals,
    signer: &TestPeer,
    body: &ReplyBody,
    index: usize,
    chunk: Vec<u8>,
    sequence: u64,
) -> StdAck {
    let data = cosmwasm_std::to_json_binary(&ExchangePacket::Reply(ReplyPacket {
        body: body.clone(),
        signer_pubkey: signer.pubkey(),
        signature: signer.sign(&reply_sign_bytes(body)),
        chunk_index: index as u32,
        chunk: Binary::from(chunk),
    }))
    .unwrap();
    let timeout = IbcTimeout::with_timestamp(Timestamp::from_seconds(net.a.now() + 600));
    Relayer::inject(&mut net.a, &net.ab.reverse(), data, sequence, timeout)
}

fn progress(net: &TwoHospitals, id: &str) -> (RequestStatus, u32, u32) {
    let request = net.a.request(id);
    let reply = request
        .reply
        .clone()
        .unwrap_or_else(|| panic!("{request:?}"));
    (request.status, reply.chunks_received, reply.chunk_count)
}

#[test]
fn a_reply_in_many_chunks_is_released_only_whole() {
    let mut net = small_chunks();
    let id = pending(&mut net);
    let (sealed, body) = eight_chunk_reply(&net, &id);
    let responder = std::mem::replace(&mut net.responder, net.b.outsider("x"));
    let mut first = responder.reply_msg(&body, &sealed);
    first.chunks.truncate(3);
    net.b.submit_reply(&responder, first).accepted();
    let incoming = net.b.incoming("hospital-a", &id).unwrap();
    assert_eq!(incoming.status, IncomingStatus::Answering);
    assert_eq!(incoming.reply.as_ref().unwrap().chunks_sent, 3);
    assert!(net.relay_replies().iter().all(|d| d.ack.is_success()));
    assert_eq!(progress(&net, &id), (RequestStatus::Receiving, 3, 8));

    // Part of a history is never released.
    let requester = std::mem::replace(&mut net.requester, net.a.outsider("y"));
    let early = net.a.retrieve(&requester, &id);
    assert!(early.failure().contains("3 of 8 chunks"), "{early:?}");

    // The rest must come in order, from the peer that began the reply, as listed.
    let rest = |from: usize| chunks(&sealed, from..8);
    assert_eq!(
        net.b
            .submit_reply_chunks(&responder, more(&id, 5, rest(5)))
            .rejection(),
        "ChunkMissing"
    );
    assert_eq!(
        net.b
            .submit_reply_chunks(&responder, more(&id, 2, rest(2)))
            .rejection(),
        "ChunkDuplicate"
    );
    let mut swapped = rest(3);
    swapped.swap(0, 1);
    assert_eq!(
        net.b
            .submit_reply_chunks(&responder, more(&id, 3, swapped))
            .rejection(),
        "ChunkMismatch"
    );
    let other = net.b.add_peer("second-reply-service", &[Role::Reply]);
    assert_eq!(
        net.b
            .submit_reply_chunks(&other, more(&id, 3, rest(3)))
            .rejection(),
        "NotAuthorized"
    );
    // Only the altered chunks strike: a retry of what was sent is no misconduct.
    assert_eq!(net.b.peer(&responder.address).unwrap().strikes, 1);
    net.b
        .submit_reply_chunks(&responder, more(&id, 3, rest(3)))
        .accepted();
    assert_eq!(
        net.b.incoming("hospital-a", &id).unwrap().status,
        IncomingStatus::Answered
    );
    assert!(net.relay_replies().iter().all(|d| d.ack.is_success()));
    assert_eq!(progress(&net, &id), (RequestStatus::Answered, 8, 8));
    assert_eq!(
        net.b.incoming("hospital-a", &id).unwrap().status,
        IncomingStatus::Delivered
    );

    let reply =
        ehr_tests::harness::Chain::retrieved_reply(&net.a.retrieve(&requester, &id).accepted());
    assert_eq!(reply.manifest, sealed.manifest);
    let got = net.a.reply_chunks(&reply);
    assert_eq!(got, sealed.chunks);
    assert!(open_history(&requester.encryption_key, &got).is_some());
    // One audit entry for the whole reply on each side, not one per chunk.
    let received = net
        .a
        .audit()
        .iter()
        .filter(|e| e.action == ehr_protocol::audit::AuditAction::ReplyReceived)
        .count();
    assert_eq!(received, 1);
    let delivered = net
        .b
        .audit()
        .iter()
        .filter(|e| e.action == ehr_protocol::audit::AuditAction::ReplyDelivered)
        .count();
    assert_eq!(delivered, 1);
}

#[test]
fn chunks_arriving_in_any_order_make_the_same_history() {
    let mut net = small_chunks();
    let id = pending(&mut net);
    let (sealed, body) = eight_chunk_reply(&net, &id);
    let responder = std::mem::replace(&mut net.responder, net.b.outsider("x"));
    for (n, index) in [7usize, 2, 0, 5, 1, 6, 3, 4].into_iter().enumerate() {
        let ack = deliver_chunk(
            &mut net,
            &responder,
            &body,
            index,
            sealed.chunks[index].clone(),
            100 + n as u64,
        );
        assert!(ack.is_success(), "chunk {index}: {ack:?}");
    }
    assert_eq!(progress(&net, &id), (RequestStatus::Answered, 8, 8));
    let requester = std::mem::replace(&mut net.requester, net.a.outsider("y"));
    let reply =
        ehr_tests::harness::Chain::retrieved_reply(&net.a.retrieve(&requester, &id).accepted());
    assert_eq!(net.a.reply_chunks(&reply), sealed.chunks);
}

#[test]
fn a_duplicated_chunk_is_refused_by_name_and_changes_nothing() {
    let mut net = small_chunks();
    let id = pending(&mut net);
    let (sealed, body) = eight_chunk_reply(&net, &id);
    let responder = std::mem::replace(&mut net.responder, net.b.outsider("x"));
    let chunk = sealed.chunks[0].clone();
    assert!(deliver_chunk(&mut net, &responder, &body, 0, chunk.clone(), 100).is_success());
    let again = deliver_chunk(&mut net, &responder, &body, 0, chunk, 101);
    assert_eq!(
        again,
        StdAck::error(ErrorCode::ChunkDuplicate.to_ack_error())
    );
    assert_eq!(progress(&net, &id), (RequestStatus::Receiving, 1, 8));
}

#[test]
fn an_altered_or_misplaced_chunk_is_refused_and_the_reply_rejected() {
    for misplaced in [false, true] {
        let mut net = small_chunks();
        let id = pending(&mut net);
        let (sealed, body) = eight_chunk_reply(&net, &id);
        let responder = std::mem::replace(&mut net.responder, net.b.outsider("x"));
        assert!(deliver_chunk(
            &mut net,
            &responder,
            &body,
            0,
            sealed.chunks[0].clone(),
            100
        )
        .is_success());
        let (index, chunk) = if misplaced {
            (1, sealed.chunks[2].clone())
        } else {
            let mut altered = sealed.chunks[1].clone();
            altered[500] ^= 1;
            (1, altered)
        };
        let ack = deliver_chunk(&mut net, &responder, &body, index, chunk, 101);
        assert_eq!(ack, StdAck::error(ErrorCode::ChunkMismatch.to_ack_error()));
        let request = net.a.request(&id);
        assert_eq!(request.status, RequestStatus::Rejected);
        assert_eq!(request.reason, Some(ErrorCode::ChunkMismatch));
        // The chunk that had come is deleted with it: no part of a history stays.
        let state = net.a.dump_state();
        assert!(!state
            .windows(CHUNK)
            .any(|w| w == sealed.chunks[0].as_slice()));
        let requester = std::mem::replace(&mut net.requester, net.a.outsider("y"));
        assert!(net
            .a
            .retrieve(&requester, &id)
            .failure()
            .contains("ReplyNotReady"));
    }
}

#[test]
fn a_chunk_of_another_reply_cannot_join_this_one() {
    let mut net = small_chunks();
    let id = pending(&mut net);
    let (sealed, body) = eight_chunk_reply(&net, &id);
    let (other, other_body) = eight_chunk_reply(&net, &id);
    assert_ne!(sealed.manifest, other.manifest);
    let responder = std::mem::replace(&mut net.responder, net.b.outsider("x"));
    assert!(deliver_chunk(
        &mut net,
        &responder,
        &body,
        0,
        sealed.chunks[0].clone(),
        100
    )
    .is_success());
    // Validly signed by the same responder, for the same request: still another reply.
    let ack = deliver_chunk(
        &mut net,
        &responder,
        &other_body,
        1,
        other.chunks[1].clone(),
        101,
    );
    assert_eq!(ack, StdAck::error(ErrorCode::ChunkMismatch.to_ack_error()));
    assert_eq!(net.a.request(&id).status, RequestStatus::Rejected);
}

#[test]
fn a_reply_whose_chunks_stop_coming_ends_expired_with_chunks_missing_and_nothing_kept() {
    let mut net = small_chunks();
    let id = pending(&mut net);
    let (sealed, body) = eight_chunk_reply(&net, &id);
    let responder = std::mem::replace(&mut net.responder, net.b.outsider("x"));
    for index in 0..3 {
        let chunk = sealed.chunks[index].clone();
        assert!(deliver_chunk(
            &mut net,
            &responder,
            &body,
            index,
            chunk,
            100 + index as u64
        )
        .is_success());
    }
    let holds = |net: &TwoHospitals| {
        let state = net.a.dump_state();
        state
            .windows(CHUNK)
            .any(|w| w == sealed.chunks[1].as_slice())
    };
    // A checked each chunk against the signed manifest and keeps none of them: each is in
    // its packet, in A's blocks (docs/PROTOCOL-v2.md §10).
    assert!(!holds(&net), "A's state holds no chunk");
    assert_eq!(net.a.request(&id).reply.unwrap().chunks_received, 3);
    net.advance(REQUEST_TTL + Policy::default().finalise_grace_secs + 1);
    let keeper = net.a.addr("keeper");
    net.a.sweep(&keeper, None);
    let request = net.a.request(&id);
    assert_eq!(request.status, RequestStatus::Expired);
    assert_eq!(request.reason, Some(ErrorCode::ChunkMissing));
    assert!(!holds(&net), "a part of a history is never kept");
}

#[test]
fn a_record_is_stored_in_chunks_in_order_by_its_storer_only() {
    let mut net = small_chunks();
    let storer = std::mem::replace(&mut net.storer, net.b.outsider("x"));
    let sealed = seal_history(&net.records_key, &[3u8; 5000], CHUNK);
    assert_eq!(sealed.chunks.len(), 8);
    let record_id = random_id("rec");
    let mut msg = storer.store_msg("hospital-b", &record_id, &net.patient, &sealed);
    msg.chunks.truncate(2);
    net.b.store(&storer, msg).accepted();
    let listing = |net: &TwoHospitals| -> RecordsResponse {
        net.b
            .query_exchange(&QueryMsg::Records {
                patient_token: net.patient.token.clone(),
                start_after: None,
                limit: None,
            })
            .unwrap()
    };
    let meta = listing(&net)
        .records
        .into_iter()
        .find(|r| r.record_id == record_id)
        .unwrap();
    assert_eq!(
        (meta.chunks_stored, meta.chunk_count, meta.complete()),
        (2, 8, false)
    );

    let next = |first_index: u32, from: usize| StoreChunksMsg {
        patient_token: net.patient.token.clone(),
        record_id: record_id.clone(),
        first_index,
        chunks: chunks(&sealed, from..8),
    };
    assert_eq!(
        net.b.store_chunks(&storer, next(4, 4)).rejection(),
        "ChunkMissing"
    );
    assert_eq!(
        net.b.store_chunks(&storer, next(1, 1)).rejection(),
        "ChunkDuplicate"
    );
    let other = net.b.add_peer("second-desk", &[Role::Store]);
    assert_eq!(
        net.b.store_chunks(&other, next(2, 2)).rejection(),
        "NotAuthorized"
    );
    // A record that is not there (its store did not land): refused, not struck.
    let unknown = StoreChunksMsg {
        record_id: random_id("rec"),
        ..next(2, 2)
    };
    assert_eq!(
        net.b.store_chunks(&storer, unknown).rejection(),
        "UnknownRequest"
    );
    let mut altered = next(2, 2);
    altered.chunks[3] = Binary::from(vec![0u8; CHUNK]);
    assert_eq!(
        net.b.store_chunks(&storer, altered).rejection(),
        "ChunkMismatch"
    );
    assert_eq!(
        net.b.peer(&storer.address).unwrap().strikes,
        1,
        "only the altered chunk strikes"
    );
    net.b.store_chunks(&storer, next(2, 2)).accepted();
    let meta = listing(&net)
        .records
        .into_iter()
        .find(|r| r.record_id == record_id)
        .unwrap();
    assert!(meta.complete());
    assert_eq!(
        net.b.record_chunks(&net.patient.token, &record_id).unwrap(),
        sealed.chunks
    );
    let past_the_end = StoreChunksMsg {
        chunks: chunks(&sealed, 0..1),
        ..next(8, 8)
    };
    assert_eq!(
        net.b.store_chunks(&storer, past_the_end).rejection(),
        "InvalidFormat",
        "nothing past the last chunk"
    );
    assert_eq!(
        net.b.store_chunks(&storer, next(8, 8)).rejection(),
        "InvalidFormat",
        "an empty batch"
    );
}

#[test]
fn a_reply_larger_than_the_requesting_chains_policy_ends_the_request_too_large() {
    let mut net = small_chunks();
    // A takes replies of at most two chunks; B's reply service sends eight.
    let config: ehr_protocol::registry::ConfigResponse = net
        .a
        .query_registry(&ehr_protocol::registry::QueryMsg::Config {})
        .unwrap();
    net.a
        .admin_exec(&ehr_protocol::registry::ExecuteMsg::UpdatePolicy {
            policy: Policy {
                max_history_chunks: 2,
                ..config.policy
            },
        })
        .unwrap();
    let id = pending(&mut net);
    let (sealed, body) = eight_chunk_reply(&net, &id);
    let responder = std::mem::replace(&mut net.responder, net.b.outsider("x"));
    let ack = deliver_chunk(
        &mut net,
        &responder,
        &body,
        0,
        sealed.chunks[0].clone(),
        100,
    );
    assert_eq!(ack, StdAck::error(ErrorCode::TooLarge.to_ack_error()));
    let request = net.a.request(&id);
    assert_eq!(request.status, RequestStatus::Rejected);
    assert_eq!(request.reason, Some(ErrorCode::TooLarge));
    assert!(request.reply.is_none(), "nothing of it is kept");
}
