use ehr_protocol::audit::{AuditAction, AuditOutcome};
use ehr_protocol::chunks::Manifest;
use ehr_protocol::exchange::{IncomingStatus, RequestStatus};
use ehr_protocol::packet::SealedOutcome;
use ehr_tests::harness::chain::Chain;
use ehr_tests::harness::peer::{open_outcome, sealed_outcome};
use ehr_tests::harness::TwoHospitals;

#[test]
fn full_exchange_store_request_reply_retrieve() {
    let mut net = TwoHospitals::new();
    assert_eq!(net.b.record_count(&net.patient.token), 1);

    let (id, result) = net.request();
    let response = result.accepted();
    assert_eq!(
        ehr_tests::harness::chain::wasm_attr(&response, "outcome").as_deref(),
        Some("accepted")
    );
    assert_eq!(net.a.request(&id).status, RequestStatus::Pending);

    let acks = net.relay_requests();
    assert_eq!(acks.len(), 1);
    assert!(acks[0].ack.is_success());
    let pending = net.b.pending_incoming();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].body.request_id, id);
    assert_eq!(pending[0].status, IncomingStatus::Pending);

    net.answer(&id).accepted();
    assert!(net.b.pending_incoming().is_empty());
    let acks = net.relay_replies();
    assert_eq!(acks.len(), 1);
    assert!(acks[0].ack.is_success(), "{:?}", acks[0].ack);
    assert_eq!(
        net.b.incoming("hospital-a", &id).unwrap().status,
        IncomingStatus::Delivered
    );

    let request = net.a.request(&id);
    assert_eq!(request.status, RequestStatus::Answered);
    let summary = request.reply.expect("reply summary");
    assert_eq!(summary.responder, net.responder.address.to_string());
    assert_eq!(summary.responder_network, "hospital-b");
    assert_eq!(summary.channel_id, net.ab.src.channel_id);

    let requester = std::mem::replace(&mut net.requester, net.b.outsider("x"));
    let retrieved = net.a.retrieve(&requester, &id).accepted();
    let reply = Chain::retrieved_reply(&retrieved);
    let chunks = net.a.reply_chunks(&reply);
    assert_eq!(Manifest::of(&chunks), reply.manifest);
    let Some((SealedOutcome::Records { parts }, bundle)) =
        open_outcome(&requester.encryption_key, &chunks)
    else {
        panic!("the requester's key opens records");
    };
    assert_eq!(parts.len(), 1);
    assert_eq!(bundle, net.patient.fhir_bundle());
    assert_eq!(net.a.request(&id).retrievals, 1);

    // Each step is on the audit log of the chain where it happened.
    let actions_a: Vec<_> = net.a.audit().iter().map(|e| e.action).collect();
    for action in [
        AuditAction::RequestSubmitted,
        AuditAction::RequestDelivered,
        AuditAction::ReplyReceived,
        AuditAction::Retrieval,
        AuditAction::ChannelOpened,
    ] {
        assert!(
            actions_a.contains(&action),
            "A lacks {action:?}: {actions_a:?}"
        );
    }
    let actions_b: Vec<_> = net.b.audit().iter().map(|e| e.action).collect();
    for action in [
        AuditAction::RecordStored,
        AuditAction::RequestReceived,
        AuditAction::ReplySubmitted,
        AuditAction::ReplyDelivered,
    ] {
        assert!(
            actions_b.contains(&action),
            "B lacks {action:?}: {actions_b:?}"
        );
    }
    assert!(net
        .a
        .audit()
        .iter()
        .all(|e| e.outcome == AuditOutcome::Success));
}

#[test]
fn no_records_and_declined_replies_look_like_records_on_chain_and_finish_the_request() {
    let mut net = TwoHospitals::new();
    let responder = std::mem::replace(&mut net.responder, net.b.outsider("x"));
    let key = net.requester.encryption_key;
    let mut summaries = Vec::new();
    for inner in [
        SealedOutcome::NoRecords,
        SealedOutcome::Declined {
            code: ehr_protocol::ErrorCode::NotAuthorized,
        },
    ] {
        net.advance(61);
        let (id, r) = net.request();
        r.accepted();
        net.relay_requests();
        net.answer_with(&responder, &id, sealed_outcome(&key, &inner))
            .accepted();
        net.relay_replies();
        let request = net.a.request(&id);
        // The chain only knows that B answered; what it answered is for the requester.
        assert_eq!(request.status, RequestStatus::Answered);
        let summary = request.reply.unwrap();
        assert_eq!(summary.chunks_received, summary.chunk_count);
        let requester = std::mem::replace(&mut net.requester, net.a.outsider("y"));
        let retrieved = Chain::retrieved_reply(&net.a.retrieve(&requester, &id).accepted());
        net.requester = requester;
        summaries.push(retrieved.manifest.total_bytes());
        let chunks = net.a.reply_chunks(&retrieved);
        assert_eq!(open_outcome(&key, &chunks), Some((inner, Vec::new())));
    }
    // No records and a refusal are the same size on chain (the smallest bucket).
    assert_eq!(summaries[0], summaries[1]);
}
