use ehr_protocol::audit::{AuditAction, AuditOutcome};
use ehr_protocol::exchange::{IncomingStatus, RequestStatus};
use ehr_protocol::packet::ReplyOutcome;
use ehr_protocol::signing::content_hash;
use ehr_tests::harness::chain::Chain;
use ehr_tests::harness::peer::open;
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
    let ReplyOutcome::Records {
        ciphertext,
        content_hash: hash,
    } = reply.outcome
    else {
        panic!("expected records");
    };
    assert_eq!(content_hash(&ciphertext), hash);
    let plaintext =
        open(&requester.encryption_key, &ciphertext).expect("requester key opens reply");
    assert_eq!(plaintext, net.patient.fhir_bundle());
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
fn no_records_reply_and_declined_reply_finish_the_request() {
    let mut net = TwoHospitals::new();
    let id = {
        let (id, r) = net.request();
        r.accepted();
        net.relay_requests();
        id
    };
    let responder = std::mem::replace(&mut net.responder, net.b.outsider("x"));
    net.answer_with(&responder, &id, ReplyOutcome::NoRecords)
        .accepted();
    net.relay_replies();
    let request = net.a.request(&id);
    assert_eq!(request.status, RequestStatus::Answered);
    assert_eq!(request.reply.unwrap().outcome, "no_records");

    net.advance(61);
    let (id2, r) = net.request();
    r.accepted();
    net.relay_requests();
    net.answer_with(
        &responder,
        &id2,
        ReplyOutcome::Declined {
            code: ehr_protocol::ErrorCode::NotAuthorized,
        },
    )
    .accepted();
    net.relay_replies();
    let request = net.a.request(&id2);
    assert_eq!(request.status, RequestStatus::Rejected);
    assert_eq!(request.reason, Some(ehr_protocol::ErrorCode::NotAuthorized));
}
