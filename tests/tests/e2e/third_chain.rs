//! The paper's "new healthcare system joining in real time": hospital-c is added to the
//! running devnet (its own chain, contracts, partner entries and channel) while A and B keep
//! exchanging, then A exchanges with C.

use crate::support::*;
use ehr_protocol::exchange::{ExecuteMsg, QueryMsg, RequestStatus};
use ehr_protocol::registry::Role;
use ehr_tests::devnet::{now, Devnet};

const C: &str = "hospital-c";

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn third_chain_joins_while_a_and_b_keep_exchanging() {
    let devnet = Devnet::get();
    // An A->B exchange in flight while C joins.
    let (key_ab, requester_ab) = devnet.fresh_peer(A, "before-c", &[Role::Request]);
    let (store_key, storer) = devnet.fresh_peer(B, "store-3", &[Role::Store]);
    let (reply_key_b, responder_b) = devnet.fresh_peer(B, "reply-3", &[Role::Reply]);
    let patient = patient_with_record(devnet, B, &storer, &store_key);
    let asker = clinician(devnet, "third-dr");
    let msg = request_msg(&requester_ab, &asker, B, &patient, 1800);
    let in_flight = msg.request_id.clone();
    submit(devnet, &key_ab, msg).accepted();

    if devnet.json()["chains"][C].is_null() {
        let out = devnet.script(&["add-chain"]);
        assert!(
            out.status.success(),
            "add-chain: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        devnet.chain(A)["partners"][C]["channel_id"].is_string(),
        "A bound a channel to C"
    );

    // The in-flight A->B exchange completes.
    let b_exchange = devnet.contract(B, "exchange");
    wait_for(devnet, "A->B request on B", 120, || {
        devnet
            .query::<ehr_protocol::exchange::IncomingRequest>(
                B,
                &b_exchange,
                &QueryMsg::IncomingRequest {
                    partner_id: A.into(),
                    request_id: in_flight.clone(),
                },
            )
            .ok()
    });
    let outcome = no_records(&requester_ab.encryption_key);
    let body = responder_b.reply_body(
        &in_flight,
        A,
        B,
        &requester_ab.encryption_key,
        &outcome,
        now(),
    );
    devnet
        .exec(
            B,
            &reply_key_b,
            &b_exchange,
            &ExecuteMsg::SubmitReply(responder_b.reply_msg(&body, &outcome)),
        )
        .accepted();
    wait_for(devnet, "A->B answered", 120, || {
        (request_status(devnet, &in_flight).status == RequestStatus::Answered).then_some(())
    });

    // A asks C.
    let (key_ac, requester_ac) = devnet.fresh_peer(A, "to-c", &[Role::Request]);
    let (c_store_key, c_storer) = devnet.fresh_peer(C, "store-c3", &[Role::Store]);
    let (c_reply_key, c_responder) = devnet.fresh_peer(C, "reply-c3", &[Role::Reply]);
    let patient_c = patient_with_record(devnet, C, &c_storer, &c_store_key);
    let msg = request_msg(&requester_ac, &asker, C, &patient_c, 1800);
    let to_c = msg.request_id.clone();
    submit(devnet, &key_ac, msg).accepted();
    let c_exchange = devnet.contract(C, "exchange");
    wait_for(devnet, "A->C request on C", 120, || {
        devnet
            .query::<ehr_protocol::exchange::IncomingRequest>(
                C,
                &c_exchange,
                &QueryMsg::IncomingRequest {
                    partner_id: A.into(),
                    request_id: to_c.clone(),
                },
            )
            .ok()
    });
    let outcome = no_records(&requester_ac.encryption_key);
    let body = c_responder.reply_body(&to_c, A, C, &requester_ac.encryption_key, &outcome, now());
    devnet
        .exec(
            C,
            &c_reply_key,
            &c_exchange,
            &ExecuteMsg::SubmitReply(c_responder.reply_msg(&body, &outcome)),
        )
        .accepted();
    let answered = wait_for(devnet, "A->C answered", 120, || {
        let r = request_status(devnet, &to_c);
        (r.status == RequestStatus::Answered).then_some(r)
    });
    assert_eq!(answered.reply.unwrap().responder_network, C);
    assert_ne!(
        answered.channel_id,
        request_status(devnet, &in_flight).channel_id
    );
}
