//! Incoming quotas: per partner and per remote clinician, from the receiving chain's own
//! policy. A flooding partner gets a coded error ack; its requests never reach the reply
//! service, and nobody on either chain is struck for it.

use cosmwasm_std::StdAck;
use ehr_protocol::exchange::RequestStatus;
use ehr_protocol::registry::{PeerStatus, Policy, Role};
use ehr_protocol::ErrorCode;
use ehr_tests::harness::chain::ALL_PURPOSES;
use ehr_tests::harness::TwoHospitals;

fn policy(per_partner: u32, per_requester: u32) -> Policy {
    Policy {
        rate_limit_count: 20,
        incoming_per_partner_count: per_partner,
        incoming_per_remote_requester_count: per_requester,
        incoming_window_secs: 60,
        ..Policy::default()
    }
}

fn acks_for(
    net: &mut TwoHospitals,
    from: &ehr_tests::harness::peer::TestPeer,
    n: usize,
) -> Vec<StdAck> {
    let ids: Vec<String> = (0..n)
        .map(|_| {
            let (id, result) = net.request_from(from);
            result.accepted();
            id
        })
        .collect();
    let acks = net.relay_requests().into_iter().map(|d| d.ack).collect();
    for id in &ids {
        let status = net.a.request(id).status;
        assert!(matches!(
            status,
            RequestStatus::Pending | RequestStatus::Rejected
        ));
    }
    acks
}

#[test]
fn one_remote_clinician_flooding_is_held_to_their_quota_without_strikes() {
    let mut net = TwoHospitals::with_policy(policy(100, 2));
    let flooder = net.a.add_peer("flooding-clinic", &[Role::Request]);
    let acks = acks_for(&mut net, &flooder, 4);
    assert!(acks[0].is_success() && acks[1].is_success(), "{acks:?}");
    for ack in &acks[2..] {
        assert_eq!(ack, &StdAck::error("ehrx:QuotaExceeded(retry_after=60)"));
    }
    assert_eq!(
        net.b.pending_incoming().len(),
        2,
        "only the quota reached B"
    );
    // A colleague (another clinician) at the same partner is not held back by it.
    let colleague = net.a.add_clinician("dr-colleague", &ALL_PURPOSES);
    let flooding_clinician = std::mem::replace(&mut net.a.clinician, colleague);
    let workstation = net.a.add_peer("colleague-workstation", &[Role::Request]);
    assert!(acks_for(&mut net, &workstation, 1)[0].is_success());
    net.a.clinician = flooding_clinician;
    // Nobody struck: not our reply service, not A's requester.
    let responder = net.b.peer(&net.responder.address).unwrap();
    assert_eq!(
        (responder.status, responder.strikes),
        (PeerStatus::Active, 0)
    );
    assert_eq!(net.a.peer(&flooder.address).unwrap().strikes, 0);
    let refused = net
        .b
        .audit()
        .into_iter()
        .filter(|e| matches!(e.reason, Some(ErrorCode::QuotaExceeded { .. })))
        .count();
    assert_eq!(refused, 2, "each refusal audited on B");
    // The window passes: accepted again.
    net.advance(61);
    assert!(acks_for(&mut net, &flooder, 1)[0].is_success());
}

#[test]
fn a_partner_flooding_through_many_requesters_is_held_to_the_partner_quota() {
    let mut net = TwoHospitals::with_policy(policy(3, 10));
    let mut acks = Vec::new();
    for n in 0..5 {
        let peer = net.a.add_peer(&format!("clinic-{n}"), &[Role::Request]);
        acks.extend(acks_for(&mut net, &peer, 1));
    }
    let accepted = acks.iter().filter(|a| a.is_success()).count();
    assert_eq!(accepted, 3, "{acks:?}");
    assert!(acks[3..]
        .iter()
        .all(|a| matches!(a, StdAck::Error(text) if text.starts_with("ehrx:QuotaExceeded"))));
    assert_eq!(net.b.pending_incoming().len(), 3);
}
