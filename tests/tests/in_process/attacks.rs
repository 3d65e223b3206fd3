//! The paper's evaluation: an outsider's request, an insider's flood, an insider reading a
//! reply it did not ask for.

use ehr_protocol::audit::{AuditAction, AuditOutcome};
use ehr_protocol::registry::{ExecuteMsg, PeerStatus, Role};
use ehr_tests::harness::peer::opaque;
use ehr_tests::harness::peer::random_id;
use ehr_tests::harness::scenario::REQUEST_TTL;
use ehr_tests::harness::{ExchangeResult, TwoHospitals};

#[test]
fn outsider_request_is_rejected_traced_and_nothing_is_stored_or_sent() {
    let mut net = TwoHospitals::new();
    let outsider = net.a.outsider("outsider");
    let audit_before = net.a.audit().len();
    let (id, result) = net.request_from(&outsider);
    assert_eq!(result.rejection(), "NotRegistered");
    assert!(!net.a.has_request(&id));
    assert!(net.relay_requests().is_empty());
    assert!(net.b.pending_incoming().is_empty());
    // The attempt leaves a trace: an event naming the sender, and one bounded counter;
    // no audit entry, so outsiders cannot fill the chain's storage.
    let ExchangeResult::SoftRejected { response, .. } = &result else {
        unreachable!()
    };
    assert_eq!(
        ehr_tests::harness::chain::wasm_attr(response, "sender").as_deref(),
        Some(outsider.address.as_str())
    );
    let tally: ehr_protocol::exchange::OutsiderTally = net
        .a
        .query_exchange(&ehr_protocol::exchange::QueryMsg::OutsiderAttempts {})
        .unwrap();
    assert_eq!(tally.attempts, 1);
    assert_eq!(tally.last_at, Some(net.a.now()));
    assert_eq!(net.a.audit().len(), audit_before);
}

#[test]
fn insider_flood_is_rate_limited_then_quarantined_and_later_transactions_dropped() {
    let mut net = TwoHospitals::new();
    let flooder = net.a.add_peer("flooder", &[Role::Request, Role::Store]);
    let (first, result) = net.request_from(&flooder);
    result.accepted();
    // Three more inside the minute: each rate-limited and struck; the third quarantines.
    for n in 1..=3 {
        let (id, result) = net.request_from(&flooder);
        assert!(result.rejection().starts_with("RateLimited"), "attempt {n}");
        assert!(!net.a.has_request(&id));
        let ExchangeResult::SoftRejected { response, .. } = result else {
            unreachable!()
        };
        let quarantined = ehr_tests::harness::chain::wasm_attr(&response, "quarantined");
        assert_eq!(
            quarantined.as_deref(),
            Some(if n == 3 { "true" } else { "false" })
        );
    }
    let peer = net.a.peer(&flooder.address).unwrap();
    assert_eq!(peer.status, PeerStatus::Quarantined);
    assert_eq!(peer.strikes, 3);

    // Long after the window, everything it sends is dropped.
    net.advance(3600);
    let (id, result) = net.request_from(&flooder);
    assert_eq!(result.rejection(), "PeerQuarantined");
    assert!(!net.a.has_request(&id));
    let network = net.a.network_id.clone();
    let store = flooder.store_msg(
        &network,
        &random_id("rec"),
        &net.patient,
        &opaque(&[1, 2, 3]),
    );
    assert_eq!(net.a.store(&flooder, store).rejection(), "PeerQuarantined");
    assert_eq!(
        net.a.retrieve(&flooder, &first).rejection(),
        "PeerQuarantined"
    );
    assert_eq!(
        net.a.peer(&flooder.address).unwrap().strikes,
        3,
        "no strikes while quarantined"
    );
    assert_eq!(
        net.a.outbox.borrow().history.len(),
        1,
        "only the first request ever left"
    );

    let audit = net.a.audit();
    assert!(
        audit
            .iter()
            .any(|e| e.action == AuditAction::Quarantine
                && e.agent.as_ref() == Some(&flooder.address))
    );
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == AuditAction::Strike)
            .count(),
        3
    );

    // Only the admin releases it; then it may request again.
    let stranger = net.a.addr("stranger");
    let release = ExecuteMsg::ReleasePeer {
        address: flooder.address.to_string(),
    };
    assert!(net
        .a
        .app
        .execute_contract(stranger, net.a.registry.clone(), &release, &[])
        .is_err());
    let exchange = net.a.exchange.clone();
    assert!(
        net.a
            .app
            .execute_contract(exchange, net.a.registry.clone(), &release, &[])
            .is_err(),
        "the exchange may quarantine but not release"
    );
    net.a.admin_exec(&release).unwrap();
    assert_eq!(
        net.a.peer(&flooder.address).unwrap().status,
        PeerStatus::Active
    );
    net.request_from(&flooder).1.accepted();
}

use cw_multi_test::Executor;

#[test]
fn insider_retrieving_someone_elses_reply_gets_nothing_and_is_flagged() {
    let mut net = TwoHospitals::new();
    let id = net.full_exchange();
    let snoop = net.a.add_peer("snoop", &[Role::Request]);
    let result = net.a.retrieve(&snoop, &id);
    assert_eq!(result.rejection(), "NotAuthorized");
    let ExchangeResult::SoftRejected { response, .. } = result else {
        unreachable!()
    };
    assert!(response.data.is_none(), "no reply data released");
    assert_eq!(net.a.peer(&snoop.address).unwrap().strikes, 1);
    assert_eq!(net.a.request(&id).retrievals, 0);
    let entry = net
        .a
        .audit()
        .into_iter()
        .find(|e| e.action == AuditAction::Retrieval)
        .expect("attempt audited");
    assert_eq!(entry.outcome, AuditOutcome::Rejected);
    assert_eq!(entry.agent, Some(snoop.address.clone()));
    assert_eq!(entry.request_id.as_deref(), Some(id.as_str()));

    // Repeated snooping quarantines.
    net.a.retrieve(&snoop, &id);
    net.a.retrieve(&snoop, &id);
    assert_eq!(
        net.a.peer(&snoop.address).unwrap().status,
        PeerStatus::Quarantined
    );

    // An outsider cannot even try.
    let outsider = net.a.outsider("outsider");
    assert_eq!(net.a.retrieve(&outsider, &id).rejection(), "NotRegistered");
}

#[test]
fn retrieval_before_the_reply_is_a_clear_error_without_strike() {
    let mut net = TwoHospitals::new();
    let (id, result) = net.request();
    result.accepted();
    let requester = std::mem::replace(&mut net.requester, net.a.outsider("x"));
    let failure = net.a.retrieve(&requester, &id);
    assert!(failure.failure().contains("ReplyNotReady"));
    assert_eq!(net.a.peer(&requester.address).unwrap().strikes, 0);
}

#[test]
fn whether_records_exist_is_told_only_to_the_requester_inside_the_sealed_answer() {
    // No existence oracle: a request for a patient B holds nothing for is accepted like any
    // other, and B's answer is the same kind and size on chain as "declined"; only the
    // requester's key opens it to "no records". An observer of both chains learns nothing.
    let mut net = TwoHospitals::new();
    let requester = std::mem::replace(&mut net.requester, net.a.outsider("x"));
    let known = net.patient.clone();
    let unknown = ehr_tests::harness::Patient::new("Someone", "Else", "1990-02-02", "078-05-1120");
    let mut seen = Vec::new();
    for patient in [&known, &unknown] {
        net.advance(61);
        let msg = requester.request_msg(
            &requester.request_id(),
            "hospital-a",
            "hospital-b",
            &net.a.clinician,
            patient,
            net.a.now(),
            REQUEST_TTL,
        );
        let id = msg.request_id.clone();
        net.a.submit_request(&requester, msg).accepted();
        let acks = net.relay_requests();
        assert!(acks[0].ack.is_success(), "accepted whoever the patient is");
        net.answer(&id).accepted();
        net.relay_replies();
        let request = net.a.request(&id);
        assert_eq!(
            request.status,
            ehr_protocol::exchange::RequestStatus::Answered
        );
        let reply = request.reply.unwrap();
        seen.push((id, (reply.chunk_count, reply.chunks_received)));
    }
    assert_eq!(seen[0].1, seen[1].1, "the same shape on chain");
    let retrieved: Vec<_> = seen
        .iter()
        .map(|(id, _)| {
            ehr_tests::harness::Chain::retrieved_reply(&net.a.retrieve(&requester, id).accepted())
        })
        .collect();
    assert_eq!(
        retrieved[0].manifest.total_bytes(),
        retrieved[1].manifest.total_bytes(),
        "the same size on chain"
    );
    let open = |reply| {
        ehr_tests::harness::peer::open_outcome(
            &requester.encryption_key,
            &net.a.reply_chunks(reply),
        )
        .map(|(outcome, _)| outcome)
    };
    assert!(matches!(
        open(&retrieved[0]),
        Some(ehr_protocol::packet::SealedOutcome::Records { .. })
    ));
    assert_eq!(
        open(&retrieved[1]),
        Some(ehr_protocol::packet::SealedOutcome::NoRecords)
    );
}

#[test]
fn a_colleague_cannot_take_or_burn_another_requesters_id() {
    let mut net = TwoHospitals::new();
    let colleague = net.a.add_peer("dr-colleague", &[Role::Request]);
    let victim = std::mem::replace(&mut net.requester, net.a.outsider("x"));
    // The colleague sees the victim's pending transaction and submits its id first.
    let victims_id = victim.request_id();
    let front_run = net.request_msg(&colleague, &victims_id, net.a.now(), REQUEST_TTL);
    assert_eq!(
        net.a.submit_request(&colleague, front_run).rejection(),
        "InvalidFormat"
    );
    assert!(!net.a.has_request(&victims_id));
    // The victim's own transaction goes through, and the victim is not struck.
    let msg = net.request_msg(&victim, &victims_id, net.a.now(), REQUEST_TTL);
    net.a.submit_request(&victim, msg).accepted();
    assert_eq!(net.a.peer(&victim.address).unwrap().strikes, 0);
    assert!(net.relay_requests()[0].ack.is_success());
}

#[test]
fn a_partner_packet_with_an_id_outside_its_requesters_scope_is_refused() {
    let mut net = TwoHospitals::new();
    let (id, result) = net.request();
    result.accepted();
    // A partner (here: a tampering relayer path) rewrites the id into another scope.
    let mut sent = ehr_tests::harness::relayer::Relayer::pending(&net.a, &net.ab);
    let mut packet: ehr_protocol::packet::ExchangePacket =
        cosmwasm_std::from_json(&sent[0].data).unwrap();
    let other = net.a.add_peer("someone-else", &[Role::Request]);
    if let ehr_protocol::packet::ExchangePacket::Request(request) = &mut packet {
        request.body.request_id = other.request_id();
        request.signature = net
            .requester
            .sign(&ehr_protocol::signing::request_sign_bytes(&request.body));
    }
    sent[0].data = cosmwasm_std::to_json_binary(&packet).unwrap();
    let timeout = cosmwasm_std::IbcTimeout::with_timestamp(cosmwasm_std::Timestamp::from_seconds(
        net.b.now() + 600,
    ));
    let link = net.ab.clone();
    let ack = ehr_tests::harness::relayer::Relayer::inject(
        &mut net.b,
        &link,
        sent[0].data.clone(),
        5,
        timeout,
    );
    assert_eq!(ack, cosmwasm_std::StdAck::error("ehrx:InvalidFormat"));
    assert!(net.b.incoming("hospital-a", &id).is_none());
}
