//! The request lifecycle: pending -> answered | rejected | timed_out | expired, exactly once,
//! through acks and timeouts whose handlers never fail.

use cosmwasm_std::{
    Binary, IbcAcknowledgement, IbcPacket, IbcPacketAckMsg, IbcTimeout, StdAck, Timestamp,
};
use ehr_protocol::audit::AuditAction;
use ehr_protocol::exchange::RequestStatus;
use ehr_tests::harness::chain::IbcEntry;
use ehr_tests::harness::relayer::Relayer;
use ehr_tests::harness::TwoHospitals;

#[test]
fn request_times_out_while_relayer_is_down_and_late_reply_is_refused() {
    let mut net = TwoHospitals::new();
    let (id, result) = net.request();
    result.accepted();
    // Relayer down past the packet timeout (policy: 600 s).
    net.advance(601);
    assert!(
        net.relay_requests().is_empty(),
        "timed-out packet is not delivered"
    );
    assert_eq!(Relayer::time_out(&mut net.a, &net.b, &net.ab), 1);
    let request = net.a.request(&id);
    assert_eq!(request.status, RequestStatus::TimedOut);
    assert!(net
        .a
        .audit()
        .iter()
        .any(|e| e.action == AuditAction::RequestTimedOut && e.request_id.as_deref() == Some(&id)));
    assert!(net.b.pending_incoming().is_empty());
}

#[test]
fn error_ack_moves_request_to_rejected_once() {
    let mut net = TwoHospitals::new();
    // B's admin suspends A: the request gets an error ack.
    net.b.set_partner_status(
        "hospital-a",
        ehr_protocol::registry::PartnerStatus::Suspended,
    );
    let (id, result) = net.request();
    result.accepted();
    let sent = Relayer::pending(&net.a, &net.ab);
    let acks = net.relay_requests();
    assert!(acks[0].ack.is_error());
    assert_eq!(net.a.request(&id).status, RequestStatus::Rejected);

    // A second (duplicate) ack or a late timeout for the same packet changes nothing.
    let packet = IbcPacket::new(
        sent[0].data.clone(),
        net.ab.src.clone(),
        net.ab.dst.clone(),
        sent[0].sequence,
        sent[0].timeout.clone(),
    );
    let relayer = net.a.addr("relayer");
    net.a
        .app
        .wasm_sudo(
            net.a.exchange.clone(),
            &IbcEntry::Ack(IbcPacketAckMsg::new(
                IbcAcknowledgement::new(StdAck::success(b"{}").to_binary()),
                packet.clone(),
                relayer.clone(),
            )),
        )
        .expect("ack handler never fails");
    net.a
        .app
        .wasm_sudo(
            net.a.exchange.clone(),
            &IbcEntry::Timeout(cosmwasm_std::IbcPacketTimeoutMsg::new(packet, relayer)),
        )
        .expect("timeout handler never fails");
    let request = net.a.request(&id);
    assert_eq!(request.status, RequestStatus::Rejected);
    assert_eq!(
        request.reason,
        Some(ehr_protocol::ErrorCode::PartnerUnavailable)
    );
}

#[test]
fn ack_and_timeout_handlers_survive_garbage() {
    let mut net = TwoHospitals::new();
    let relayer = net.a.addr("relayer");
    let packet = IbcPacket::new(
        Binary::from(b"not json".to_vec()),
        net.ab.src.clone(),
        net.ab.dst.clone(),
        9,
        IbcTimeout::with_timestamp(Timestamp::from_seconds(1)),
    );
    for ack in [b"garbage".to_vec(), StdAck::error("x").to_binary().to_vec()] {
        let response = net
            .a
            .app
            .wasm_sudo(
                net.a.exchange.clone(),
                &IbcEntry::Ack(IbcPacketAckMsg::new(
                    IbcAcknowledgement::new(ack),
                    packet.clone(),
                    relayer.clone(),
                )),
            )
            .expect("ack handler never fails");
        assert_eq!(
            ehr_tests::harness::chain::wasm_attr(&response, "outcome").as_deref(),
            Some("unknown_packet")
        );
    }
    net.a
        .app
        .wasm_sudo(
            net.a.exchange.clone(),
            &IbcEntry::Timeout(cosmwasm_std::IbcPacketTimeoutMsg::new(packet, relayer)),
        )
        .expect("timeout handler never fails");
}

#[test]
fn foreign_error_ack_text_is_recorded_as_internal() {
    let mut net = TwoHospitals::new();
    let (id, result) = net.request();
    result.accepted();
    let sent = Relayer::pending(&net.a, &net.ab);
    let packet = IbcPacket::new(
        sent[0].data.clone(),
        net.ab.src.clone(),
        net.ab.dst.clone(),
        sent[0].sequence,
        sent[0].timeout.clone(),
    );
    let relayer = net.a.addr("relayer");
    // What wasmd writes when a contract's receive returns an error.
    let wasmd_ack = StdAck::error("ABCI code: 5: error handling packet: see events for details");
    net.a
        .app
        .wasm_sudo(
            net.a.exchange.clone(),
            &IbcEntry::Ack(IbcPacketAckMsg::new(
                IbcAcknowledgement::new(wasmd_ack.to_binary()),
                packet,
                relayer,
            )),
        )
        .unwrap();
    let request = net.a.request(&id);
    assert_eq!(request.status, RequestStatus::Rejected);
    assert_eq!(request.reason, Some(ehr_protocol::ErrorCode::Internal));
}

#[test]
fn packet_timeout_never_exceeds_request_expiry() {
    let mut net = TwoHospitals::new();
    let requester = std::mem::replace(&mut net.requester, net.a.outsider("x"));
    let now = net.a.now();
    let msg = requester.request_msg(
        &requester.request_id(),
        "hospital-a",
        "hospital-b",
        &net.a.clinician,
        &net.patient,
        now,
        30,
    );
    net.a.submit_request(&requester, msg).accepted();
    let sent = Relayer::pending(&net.a, &net.ab);
    assert_eq!(
        sent[0].timeout.timestamp(),
        Some(Timestamp::from_seconds(now + 30))
    );
}
