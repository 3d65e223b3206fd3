//! Channel binding: handshakes start on the lower network id, so two can never cross and
//! leave a partner half bound; the admin can unbind a partner's channel, a new handshake
//! binds a new one, and nothing in flight on the old channel is lost.

use cosmwasm_std::IbcOrder;
use ehr_protocol::audit::AuditAction;
use ehr_protocol::exchange::{IncomingStatus, RequestStatus};
use ehr_protocol::registry::ExecuteMsg;
use ehr_tests::harness::relayer::{Relayer, VERSION};
use ehr_tests::harness::TwoHospitals;

fn connections(net: &TwoHospitals) -> (String, String) {
    (net.ab.src_connection.clone(), net.ab.dst_connection.clone())
}

fn unbind(chain: &mut ehr_tests::harness::Chain, partner: &str) {
    chain
        .admin_exec(&ExecuteMsg::UnbindPartnerChannel {
            partner_id: partner.to_string(),
        })
        .unwrap();
}

#[test]
fn a_handshake_started_by_the_higher_network_id_is_refused_so_none_can_cross() {
    let mut net = TwoHospitals::new();
    unbind(&mut net.a, "hospital-b");
    unbind(&mut net.b, "hospital-a");
    let conns = connections(&net);
    let reversed = (conns.1.clone(), conns.0.clone());
    // B starts a handshake while A would start one too: B's OpenInit is refused at once.
    let refused = Relayer::open_channel(
        &mut net.b,
        &mut net.a,
        &reversed,
        IbcOrder::Unordered,
        VERSION,
    )
    .unwrap_err();
    assert!(refused.contains("opened from hospital-a"), "{refused}");
    assert!(refused.contains("hermes create channel --a-chain hospital-a"));
    // A's handshake completes, and both sides bind the two ends of the same channel.
    let link = Relayer::open_channel(&mut net.a, &mut net.b, &conns, IbcOrder::Unordered, VERSION)
        .unwrap();
    assert_eq!(
        net.a.partner("hospital-b").unwrap().channel_id,
        Some(link.src.channel_id.clone())
    );
    assert_eq!(
        net.b.partner("hospital-a").unwrap().channel_id,
        Some(link.dst.channel_id.clone())
    );
    // A repeated handshake from A is refused while the partner is bound: still one channel.
    assert!(
        Relayer::open_channel(&mut net.a, &mut net.b, &conns, IbcOrder::Unordered, VERSION)
            .is_err()
    );
    assert_eq!(
        net.b.partner("hospital-a").unwrap().channel_id,
        Some(link.dst.channel_id)
    );
}

#[test]
fn admin_unbinds_and_a_new_channel_is_bound_while_requests_in_flight_complete() {
    let mut net = TwoHospitals::new();
    // A request is on B, waiting for its reply, when both admins unbind the channel.
    let (in_flight, result) = net.request();
    result.accepted();
    assert!(net.relay_requests()[0].ack.is_success());
    unbind(&mut net.a, "hospital-b");
    unbind(&mut net.b, "hospital-a");
    for chain in [&net.a, &net.b] {
        let entry = chain.registry_audit().pop().unwrap();
        assert_eq!(entry.action, AuditAction::ChannelClosed);
        assert!(entry.agent.is_some(), "the admin's unbind names the admin");
    }
    // No new request can leave while no channel is bound.
    net.advance(61);
    let (_, refused) = net.request();
    assert_eq!(refused.rejection(), "PartnerUnavailable");

    // A new handshake binds a new channel on both sides.
    let conns = connections(&net);
    let fresh = Relayer::open_channel(&mut net.a, &mut net.b, &conns, IbcOrder::Unordered, VERSION)
        .unwrap();
    assert_ne!(fresh.src.channel_id, net.ab.src.channel_id);
    assert_eq!(
        net.a.partner("hospital-b").unwrap().channel_id,
        Some(fresh.src.channel_id.clone())
    );

    // The request in flight is answered on the channel it came in on, and A takes the reply.
    net.answer(&in_flight).accepted();
    assert!(net.relay_replies()[0].ack.is_success());
    assert_eq!(net.a.request(&in_flight).status, RequestStatus::Answered);
    assert_eq!(
        net.b.incoming("hospital-a", &in_flight).unwrap().status,
        IncomingStatus::Delivered
    );

    // New requests travel on the new channel; a new request on the retired one is refused.
    net.advance(61);
    let (id, result) = net.request();
    result.accepted();
    assert!(Relayer::relay(&mut net.a, &mut net.b, &fresh)[0]
        .ack
        .is_success());
    assert!(net.b.incoming("hospital-a", &id).is_some());
    let old = net.ab.clone();
    let stale = net.b.incoming("hospital-a", &id).unwrap();
    let data = cosmwasm_std::to_json_binary(&ehr_protocol::packet::ExchangePacket::Request(
        ehr_protocol::packet::RequestPacket {
            body: stale.body,
            signer_pubkey: stale.signer_pubkey,
            signature: stale.signature,
        },
    ))
    .unwrap();
    let timeout = cosmwasm_std::IbcTimeout::with_timestamp(cosmwasm_std::Timestamp::from_seconds(
        net.b.now() + 600,
    ));
    let ack = Relayer::inject(&mut net.b, &old, data, 99, timeout);
    assert_eq!(ack, cosmwasm_std::StdAck::error("ehrx:WrongChannel"));
}
