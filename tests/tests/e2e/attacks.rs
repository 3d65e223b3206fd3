//! The paper's three attacks on real chains.

use crate::support::*;
use ehr_protocol::exchange::{ExecuteMsg, RequestStatus};
use ehr_protocol::registry::{PeerStatus, QueryMsg as RegistryQuery, Role};
use ehr_tests::devnet::Devnet;
use ehr_tests::harness::peer::TestPeer;

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn outsider_request_is_refused_and_nothing_stored() {
    let devnet = Devnet::get();
    let key = format!("outsider-{}", ehr_tests::devnet::run_id());
    let address = devnet.new_account(A, &key);
    let outsider = TestPeer::new(address, &[Role::Request]);
    let patient = ehr_tests::harness::Patient::new("Lena", "Fischer", "1990-01-15", "321-54-9876");
    // Even with a registered clinician's own signature: the sender is not a peer.
    let asker = clinician(devnet, "outsider-dr");
    let msg = request_msg(&outsider, &asker, B, &patient, 600);
    let id = msg.request_id.clone();
    let result = submit(devnet, &key, msg);
    assert_eq!(result.rejection(), "NotRegistered", "{result:?}");
    let query = devnet.query::<serde_json::Value>(
        A,
        &devnet.contract(A, "exchange"),
        &ehr_protocol::exchange::QueryMsg::Request { request_id: id },
    );
    assert!(query.is_err(), "nothing stored for the outsider");
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn insider_flood_is_rate_limited_then_quarantined_and_dropped() {
    let devnet = Devnet::get();
    let (key, flooder) = devnet.fresh_peer(A, "flooder", &[Role::Request]);
    let patient = ehr_tests::harness::Patient::new("Flood", "Test", "1980-02-02", "123-45-6789");
    let asker = clinician(devnet, "flood-dr");
    submit(
        devnet,
        &key,
        request_msg(&flooder, &asker, B, &patient, 600),
    )
    .accepted();
    for attempt in 1..=3 {
        let result = submit(
            devnet,
            &key,
            request_msg(&flooder, &asker, B, &patient, 600),
        );
        assert!(
            result.rejection().starts_with("RateLimited"),
            "attempt {attempt}: {result:?}"
        );
    }
    let peer: Option<ehr_protocol::registry::Peer> = devnet
        .query(
            A,
            &devnet.contract(A, "registry"),
            &RegistryQuery::Peer {
                address: flooder.address.to_string(),
            },
        )
        .unwrap();
    let peer = peer.unwrap();
    assert_eq!(peer.status, PeerStatus::Quarantined);
    assert_eq!(peer.strikes, 3);
    let result = submit(
        devnet,
        &key,
        request_msg(&flooder, &asker, B, &patient, 600),
    );
    assert_eq!(result.rejection(), "PeerQuarantined");
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn insider_retrieving_another_peers_reply_gets_nothing_and_is_flagged() {
    let devnet = Devnet::get();
    let (req_key, requester) = devnet.fresh_peer(A, "asker", &[Role::Request]);
    let (snoop_key, snoop) = devnet.fresh_peer(A, "snoop", &[Role::Request]);
    let (store_key, storer) = devnet.fresh_peer(B, "store-s", &[Role::Store]);
    let (reply_key, responder) = devnet.fresh_peer(B, "reply-s", &[Role::Reply]);
    let patient = patient_with_record(devnet, B, &storer, &store_key);

    let asker = clinician(devnet, "asker-dr");
    let msg = request_msg(&requester, &asker, B, &patient, 900);
    let id = msg.request_id.clone();
    submit(devnet, &req_key, msg).accepted();
    let b_exchange = devnet.contract(B, "exchange");
    wait_for(devnet, "request relayed to B", 90, || {
        devnet
            .query::<ehr_protocol::exchange::IncomingRequest>(
                B,
                &b_exchange,
                &ehr_protocol::exchange::QueryMsg::IncomingRequest {
                    partner_id: A.into(),
                    request_id: id.clone(),
                },
            )
            .ok()
    });
    let outcome = no_records(&requester.encryption_key);
    let body = responder.reply_body(
        &id,
        A,
        B,
        &requester.encryption_key,
        &outcome,
        ehr_tests::devnet::now(),
    );
    devnet
        .exec(
            B,
            &reply_key,
            &b_exchange,
            &ExecuteMsg::SubmitReply(responder.reply_msg(&body, &outcome)),
        )
        .accepted();
    wait_for(devnet, "reply relayed to A", 90, || {
        (request_status(devnet, &id).status == RequestStatus::Answered).then_some(())
    });

    let a_exchange = devnet.contract(A, "exchange");
    let result = devnet.exec(
        A,
        &snoop_key,
        &a_exchange,
        &ExecuteMsg::RetrieveReply {
            request_id: id.clone(),
        },
    );
    assert_eq!(result.rejection(), "NotAuthorized");
    let peer: Option<ehr_protocol::registry::Peer> = devnet
        .query(
            A,
            &devnet.contract(A, "registry"),
            &RegistryQuery::Peer {
                address: snoop.address.to_string(),
            },
        )
        .unwrap();
    assert_eq!(peer.unwrap().strikes, 1, "the snoop is flagged");
    assert_eq!(request_status(devnet, &id).retrievals, 0);

    // The requester itself gets it.
    devnet
        .exec(
            A,
            &req_key,
            &a_exchange,
            &ExecuteMsg::RetrieveReply {
                request_id: id.clone(),
            },
        )
        .accepted();
    assert_eq!(request_status(devnet, &id).retrievals, 1);
}
