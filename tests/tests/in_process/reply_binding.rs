//! Replies only to the requester's registered key, and only while the requester is still
//! entitled: revocation and key rotation take effect on requests already in flight.

use cosmwasm_std::{Binary, StdAck};
use cw_multi_test::Executor;
use ehr_protocol::audit::{AuditAction, AuditOutcome};
use ehr_protocol::exchange::{IncomingStatus, RequestStatus};
use ehr_protocol::registry::{ExecuteMsg, Role};
use ehr_protocol::ErrorCode;
use ehr_tests::harness::peer::TestPeer;
use ehr_tests::harness::scenario::REQUEST_TTL;
use ehr_tests::harness::TwoHospitals;

/// A request answered on B whose reply packet waits to be relayed to A.
fn answered(net: &mut TwoHospitals) -> String {
    let (id, result) = net.request();
    result.accepted();
    net.relay_requests();
    net.answer(&id).accepted();
    id
}

/// Relays the reply; asserts A refused it with `code`, stored nothing, ended the request,
/// audited it, and B learnt why.
fn reply_refused(net: &mut TwoHospitals, id: &str, code: ErrorCode) {
    let acks = net.relay_replies();
    assert_eq!(acks[0].ack, StdAck::error(code.to_ack_error()));
    let request = net.a.request(id);
    assert_eq!(request.status, RequestStatus::Rejected);
    assert_eq!(request.reason, Some(code.clone()));
    assert!(request.reply.is_none(), "the reply is never stored");
    let audit = net.a.audit();
    let last = audit
        .iter()
        .rev()
        .find(|e| e.action == AuditAction::ReplyReceived)
        .unwrap();
    assert_eq!(last.outcome, AuditOutcome::Rejected);
    assert_eq!(last.reason, Some(code.clone()));
    assert_eq!(last.agent.as_ref(), Some(&net.requester.address));
    let incoming = net.b.incoming("hospital-a", id).unwrap();
    assert_eq!(incoming.status, IncomingStatus::Failed);
    assert_eq!(incoming.reason, Some(code));
}

#[test]
fn request_naming_a_reply_key_of_its_own_choosing_is_refused() {
    let mut net = TwoHospitals::new();
    let requester = std::mem::replace(&mut net.requester, net.a.outsider("x"));
    // Same peer, same signing key, but replies asked to a key the admin never registered.
    let mut rogue = TestPeer::new(requester.address.clone(), &[Role::Request]);
    rogue.signing_key = requester.signing_key.clone();
    let id = requester.request_id();
    let msg = net.request_msg(&rogue, &id, net.a.now(), REQUEST_TTL);
    assert_eq!(
        net.a.submit_request(&requester, msg).rejection(),
        "RecipientKeyMismatch"
    );
    assert!(!net.a.has_request(&id));
    assert!(net.relay_requests().is_empty(), "nothing sent");
}

#[test]
fn reply_arriving_after_the_requester_was_revoked_is_refused_and_never_stored() {
    let mut net = TwoHospitals::new();
    let id = answered(&mut net);
    net.a
        .admin_exec(&ExecuteMsg::RevokePeer {
            address: net.requester.address.to_string(),
        })
        .unwrap();
    reply_refused(&mut net, &id, ErrorCode::RequesterRevoked);
}

#[test]
fn reply_arriving_after_the_requester_was_quarantined_is_refused() {
    let mut net = TwoHospitals::new();
    let id = answered(&mut net);
    let exchange = net.a.exchange.to_string();
    for _ in 0..3 {
        net.a
            .app
            .execute_contract(
                cosmwasm_std::Addr::unchecked(&exchange),
                net.a.registry.clone(),
                &ExecuteMsg::RecordStrike {
                    address: net.requester.address.to_string(),
                    reason: ErrorCode::RateLimited { retry_after: 1 },
                },
                &[],
            )
            .unwrap();
    }
    reply_refused(&mut net, &id, ErrorCode::RequesterRevoked);
}

#[test]
fn reply_encrypted_to_a_key_rotated_away_mid_flight_is_refused() {
    let mut net = TwoHospitals::new();
    let id = answered(&mut net);
    let rotated = TestPeer::new(net.requester.address.clone(), &[Role::Request]);
    net.a
        .admin_exec(&ExecuteMsg::RotatePeerKeys {
            address: net.requester.address.to_string(),
            signing_key: rotated.pubkey(),
            encryption_key: Binary::from(rotated.encryption_key.to_vec()),
        })
        .unwrap();
    reply_refused(&mut net, &id, ErrorCode::RecipientKeyMismatch);
}

#[test]
fn reply_arriving_after_the_clinician_was_revoked_is_refused() {
    let mut net = TwoHospitals::new();
    let id = answered(&mut net);
    net.a
        .admin_exec(&ExecuteMsg::RevokeClinician {
            clinician_id: net.a.clinician.id.clone(),
        })
        .unwrap();
    reply_refused(&mut net, &id, ErrorCode::RequesterRevoked);
}

#[test]
fn reply_whose_responder_encrypted_to_another_key_is_refused() {
    // A responder (or a partner chain) that encrypts to a key of its choosing must say so in
    // the signed recipient key hash, and the requesting chain refuses it.
    let mut net = TwoHospitals::new();
    let (id, result) = net.request();
    result.accepted();
    net.relay_requests();
    let elsewhere = [7u8; 32];
    let outcome = ehr_tests::harness::peer::sealed_outcome(
        &elsewhere,
        &ehr_protocol::packet::SealedOutcome::NoRecords,
    );
    let body = net.responder.reply_body(
        &id,
        "hospital-a",
        "hospital-b",
        &elsewhere,
        &outcome,
        net.a.now(),
    );
    let signature = net
        .responder
        .sign(&ehr_protocol::signing::reply_sign_bytes(&body));
    let data = cosmwasm_std::to_json_binary(&ehr_protocol::packet::ExchangePacket::Reply(
        ehr_protocol::packet::ReplyPacket {
            body,
            signer_pubkey: net.responder.pubkey(),
            signature,
            chunk_index: 0,
            chunk: outcome.binaries().remove(0),
        },
    ))
    .unwrap();
    let timeout = cosmwasm_std::IbcTimeout::with_timestamp(cosmwasm_std::Timestamp::from_seconds(
        net.a.now() + 600,
    ));
    let link = net.ab.reverse();
    let ack = ehr_tests::harness::relayer::Relayer::inject(&mut net.a, &link, data, 900, timeout);
    assert_eq!(ack, StdAck::error("ehrx:RecipientKeyMismatch"));
    let request = net.a.request(&id);
    assert_eq!(request.status, RequestStatus::Rejected);
    assert!(request.reply.is_none());
}
