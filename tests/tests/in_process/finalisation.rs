//! Every request reaches a terminal state on both chains. Packets close most; a bounded
//! sweep, callable by anyone and never struck, closes what is left once the request's expiry
//! plus the policy's grace has passed.

use ehr_protocol::audit::AuditAction;
use ehr_protocol::exchange::{IncomingStatus, RequestStatus};
use ehr_protocol::registry::Policy;
use ehr_protocol::ErrorCode;
use ehr_tests::harness::chain::wasm_attr;
use ehr_tests::harness::scenario::REQUEST_TTL;
use ehr_tests::harness::TwoHospitals;

fn busy() -> Policy {
    Policy {
        rate_limit_count: 20,
        ..Policy::default()
    }
}

/// `n` requests delivered to B and never answered.
fn unanswered(net: &mut TwoHospitals, n: usize) -> Vec<String> {
    let ids = (0..n)
        .map(|_| {
            let (id, result) = net.request();
            result.accepted();
            id
        })
        .collect();
    assert!(net.relay_requests().iter().all(|d| d.ack.is_success()));
    ids
}

#[test]
fn unanswered_request_is_expired_on_both_chains_by_anyones_sweep_after_the_grace() {
    let mut net = TwoHospitals::with_policy(busy());
    let grace = Policy::default().finalise_grace_secs;
    let ids = unanswered(&mut net, 1);
    let id = &ids[0];
    let keeper = net.a.addr("anyone-at-all");

    // At expiry, inside the grace: nothing moves (a packet may still finish it).
    net.advance(REQUEST_TTL + grace - 1);
    let response = net.b.sweep(&keeper, None);
    assert_eq!(
        wasm_attr(&response, "expired_incoming").as_deref(),
        Some("0")
    );
    assert_eq!(
        net.b.incoming("hospital-a", id).unwrap().status,
        IncomingStatus::Pending
    );

    net.advance(2);
    let response = net.b.sweep(&keeper, None);
    assert_eq!(
        wasm_attr(&response, "expired_incoming").as_deref(),
        Some("1")
    );
    let incoming = net.b.incoming("hospital-a", id).unwrap();
    assert_eq!(incoming.status, IncomingStatus::Expired);
    assert!(
        net.b.pending_incoming().is_empty(),
        "the reply service's queue is clean"
    );
    let response = net.a.sweep(&keeper, None);
    assert_eq!(
        wasm_attr(&response, "expired_outgoing").as_deref(),
        Some("1")
    );
    let request = net.a.request(id);
    assert_eq!(request.status, RequestStatus::Expired);
    assert_eq!(request.reason, Some(ErrorCode::Expired));

    for chain in [&net.a, &net.b] {
        let entry = chain
            .audit()
            .into_iter()
            .rfind(|e| e.action == AuditAction::RequestExpired)
            .expect("the sweep is audited");
        assert_eq!(entry.request_id.as_deref(), Some(id.as_str()));
        assert_eq!(entry.reason, Some(ErrorCode::Expired));
    }
    // A second sweep finds nothing; a reply service that wakes up now is refused, unstruck.
    let response = net.b.sweep(&keeper, None);
    assert_eq!(
        wasm_attr(&response, "expired_incoming").as_deref(),
        Some("0")
    );
    let outcome = ehr_tests::harness::peer::sealed_outcome(
        &net.requester.encryption_key,
        &ehr_protocol::packet::SealedOutcome::NoRecords,
    );
    let responder = std::mem::replace(&mut net.responder, net.b.outsider("y"));
    let late = net.answer_with(&responder, id, outcome);
    assert_eq!(late.rejection(), "AlreadyAnswered");
    assert_eq!(net.b.peer(&responder.address).unwrap().strikes, 0);
}

#[test]
fn a_sweep_is_bounded_and_says_when_more_is_due() {
    let mut net = TwoHospitals::with_policy(Policy {
        sweep_max_items: 3,
        ..busy()
    });
    let ids = unanswered(&mut net, 5);
    net.advance(REQUEST_TTL + Policy::default().finalise_grace_secs + 1);
    let keeper = net.b.addr("keeper");
    // Asking for more than the policy allows gets the policy's maximum.
    let first = net.b.sweep(&keeper, Some(100));
    assert_eq!(wasm_attr(&first, "expired_incoming").as_deref(), Some("3"));
    assert_eq!(wasm_attr(&first, "more").as_deref(), Some("true"));
    let second = net.b.sweep(&keeper, Some(1));
    assert_eq!(wasm_attr(&second, "expired_incoming").as_deref(), Some("1"));
    let third = net.b.sweep(&keeper, None);
    assert_eq!(wasm_attr(&third, "expired_incoming").as_deref(), Some("1"));
    assert_eq!(wasm_attr(&third, "more").as_deref(), Some("false"));
    for id in &ids {
        assert_eq!(
            net.b.incoming("hospital-a", id).unwrap().status,
            IncomingStatus::Expired
        );
    }
}

#[test]
fn a_request_whose_reply_was_refused_is_not_left_pending_forever() {
    let mut net = TwoHospitals::with_policy(busy());
    let ids = unanswered(&mut net, 1);
    let id = &ids[0];
    // B answers; A's admin suspends B, so A refuses the reply: A's request stays pending.
    net.answer(id).accepted();
    net.a.set_partner_status(
        "hospital-b",
        ehr_protocol::registry::PartnerStatus::Suspended,
    );
    assert!(!net.relay_replies()[0].ack.is_success());
    assert_eq!(net.a.request(id).status, RequestStatus::Pending);
    net.advance(REQUEST_TTL + Policy::default().finalise_grace_secs + 1);
    let requester = net.requester.address.clone();
    net.a.sweep(&requester, None);
    assert_eq!(net.a.request(id).status, RequestStatus::Expired);
    // Final states are left alone: B's incoming already failed on the error ack.
    net.b.sweep(&requester, None);
    assert_eq!(
        net.b.incoming("hospital-a", id).unwrap().status,
        IncomingStatus::Failed
    );
}
