//! Strikes are for a peer's own misconduct. A partner controls the lifetime of the requests
//! it sends, and two honest reply services may race: none of that may get our peers struck
//! or quarantined. Time bounds come from each chain's own policy.

use cosmwasm_std::StdAck;
use ehr_protocol::exchange::{IncomingStatus, RequestStatus};
use ehr_protocol::registry::{PeerStatus, Policy, Role};
use ehr_protocol::ErrorCode;
use ehr_tests::harness::chain::wasm_attr;
use ehr_tests::harness::peer::TestPeer;
use ehr_tests::harness::{ExchangeResult, TwoHospitals};

/// Several requests per minute, so one requester can send a batch.
fn busy_policy() -> Policy {
    Policy {
        rate_limit_count: 20,
        ..Policy::default()
    }
}

/// A request from A's requester with the given lifetime; accepted on A.
fn short_request(net: &mut TwoHospitals, ttl: u64) -> String {
    let requester = std::mem::replace(&mut net.requester, net.a.outsider("x"));
    let id = requester.request_id();
    let msg = net.request_msg(&requester, &id, net.a.now(), ttl);
    net.a.submit_request(&requester, msg).accepted();
    net.requester = requester;
    id
}

fn struck(result: &ExchangeResult) -> Option<String> {
    match result {
        ExchangeResult::SoftRejected { response, .. } => wasm_attr(response, "strike"),
        other => panic!("expected a soft rejection, got {other:?}"),
    }
}

fn answer_as(net: &mut TwoHospitals, responder: &TestPeer, id: &str) -> ExchangeResult {
    let outcome = net.reply_outcome_for(id);
    net.answer_with(responder, id, outcome)
}

#[test]
fn partner_sending_requests_that_expire_under_our_reply_service_cannot_get_it_quarantined() {
    let mut net = TwoHospitals::with_policy(busy_policy());
    let policy = Policy::default();
    // Five requests with the shortest lifetime A allows; each arrives with enough life left.
    let ids: Vec<String> = (0..5)
        .map(|_| short_request(&mut net, policy.min_request_ttl_secs))
        .collect();
    let acks = net.relay_requests();
    assert!(acks.iter().all(|d| d.ack.is_success()), "{acks:?}");
    // Our reply service is slower than their lifetime.
    net.advance(policy.min_request_ttl_secs + 1);
    let responder = std::mem::replace(&mut net.responder, net.b.outsider("y"));
    for id in &ids {
        let result = answer_as(&mut net, &responder, id);
        assert_eq!(result.rejection(), "Expired");
        assert_eq!(struck(&result).as_deref(), Some("false"));
    }
    let peer = net.b.peer(&responder.address).unwrap();
    assert_eq!(peer.status, PeerStatus::Active);
    assert_eq!(peer.strikes, 0);
    // The refusals are still on the record.
    let refused = net
        .b
        .audit()
        .into_iter()
        .filter(|e| e.reason == Some(ErrorCode::Expired))
        .count();
    assert!(refused >= ids.len(), "each late answer audited");
}

#[test]
fn request_arriving_with_too_little_lifetime_left_is_refused_by_the_receivers_policy() {
    let mut net = TwoHospitals::with_policy(busy_policy());
    let policy = Policy::default();
    let id = short_request(&mut net, policy.min_request_ttl_secs);
    // The relayer is slow: by arrival, less than B's minimum remaining lifetime is left.
    net.advance(policy.min_request_ttl_secs - policy.min_remaining_lifetime_secs + 1);
    let acks = net.relay_requests();
    assert_eq!(acks[0].ack, StdAck::error("ehrx:Expired"));
    assert!(net.b.incoming("hospital-a", &id).is_none(), "never kept");
    assert!(net.b.pending_incoming().is_empty());
    let request = net.a.request(&id);
    assert_eq!(request.status, RequestStatus::Rejected);
    assert_eq!(request.reason, Some(ErrorCode::Expired));
}

#[test]
fn losing_a_reply_race_or_answering_for_a_suspended_partner_is_not_a_strike() {
    let mut net = TwoHospitals::with_policy(Policy {
        strikes_before_quarantine: 1,
        ..busy_policy()
    });
    let first = short_request(&mut net, 600);
    let second = short_request(&mut net, 600);
    net.relay_requests();
    let fast = std::mem::replace(&mut net.responder, net.b.outsider("y"));
    let slow = net.b.add_peer("second-reply-service", &[Role::Reply]);
    answer_as(&mut net, &fast, &first).accepted();
    let lost = answer_as(&mut net, &slow, &first);
    assert_eq!(lost.rejection(), "AlreadyAnswered");
    assert_eq!(struck(&lost).as_deref(), Some("false"));

    // B's admin suspends A while the second request waits.
    net.b.set_partner_status(
        "hospital-a",
        ehr_protocol::registry::PartnerStatus::Suspended,
    );
    let unavailable = answer_as(&mut net, &slow, &second);
    assert_eq!(unavailable.rejection(), "PartnerUnavailable");
    assert_eq!(struck(&unavailable).as_deref(), Some("false"));

    let peer = net.b.peer(&slow.address).unwrap();
    assert_eq!((peer.status, peer.strikes), (PeerStatus::Active, 0));
    assert_eq!(
        net.b.incoming("hospital-a", &second).unwrap().status,
        IncomingStatus::Pending
    );
}

#[test]
fn clock_skew_and_shortest_lifetime_come_from_the_policy() {
    let mut net = TwoHospitals::with_policy(busy_policy());
    let policy = Policy::default();
    let requester = std::mem::replace(&mut net.requester, net.a.outsider("x"));
    let now = net.a.now();
    let mut submit = |issued_at: u64, ttl: u64| {
        let msg = net.request_msg(&requester, &requester.request_id(), issued_at, ttl);
        net.a.submit_request(&requester, msg)
    };
    // Issued further ahead than the policy's skew (the old constant allowed 300 s).
    let ahead = submit(now + policy.max_clock_skew_secs + 1, 600);
    assert_eq!(ahead.rejection(), "InvalidFormat");
    // Shorter than the policy's shortest lifetime.
    let brief = submit(now, policy.min_request_ttl_secs - 1);
    assert_eq!(brief.rejection(), "InvalidFormat");
    // Within both bounds: accepted.
    submit(now + policy.max_clock_skew_secs, 600).accepted();
}
