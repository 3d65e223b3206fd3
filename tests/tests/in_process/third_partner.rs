//! The paper's "new healthcare system joining in real time": a third chain is added to the
//! lookup tables and linked while A and B keep exchanging, with no redeploy.

use ehr_protocol::exchange::RequestStatus;
use ehr_protocol::packet::SealedOutcome;
use ehr_protocol::registry::Role;
use ehr_tests::harness::peer::opaque;
use ehr_tests::harness::peer::{open_outcome, random_id, seal, sealed_records, Patient};
use ehr_tests::harness::relayer::Relayer;
use ehr_tests::harness::scenario::{link_partners, REQUEST_TTL};
use ehr_tests::harness::{Chain, TwoHospitals};

#[test]
fn third_partner_joins_at_run_time_while_a_and_b_keep_exchanging() {
    let mut net = TwoHospitals::new();
    let exchange_code_before = net.a.exchange.clone();
    let first = net.full_exchange();
    assert_eq!(net.a.request(&first).status, RequestStatus::Answered);

    // Hospital C comes up with its own chain and contracts, and is linked to A.
    let mut c = Chain::new("hospc", "hospital-c");
    let ac = link_partners(&mut net.a, &mut c);
    assert_eq!(net.a.exchange, exchange_code_before, "no redeploy on A");
    let c_storer = c.add_peer("c-records", &[Role::Store]);
    let c_responder = c.add_peer("c-reply", &[Role::Reply]);
    let c_records_key = [9u8; 32];
    let network = c.network_id.clone();
    c.store(
        &c_storer,
        c_storer.store_msg(
            &network,
            &random_id("rec"),
            &net.patient,
            &opaque(&seal(
                &c_records_key,
                b"{\"resourceType\":\"Bundle\",\"type\":\"collection\"}",
            )),
        ),
    )
    .accepted();

    // A asks C...
    net.advance(61);
    c.advance(61);
    let requester = std::mem::replace(&mut net.requester, net.a.outsider("x"));
    let to_c = requester.request_id();
    let msg = requester.request_msg(
        &to_c,
        "hospital-a",
        "hospital-c",
        &net.a.clinician,
        &net.patient,
        net.a.now(),
        REQUEST_TTL,
    );
    net.a.submit_request(&requester, msg).accepted();
    // ...and, in the same minute window of another clinician, asks B again.
    let colleague = net.a.add_peer("dr-baker", &[Role::Request]);
    let to_b = colleague.request_id();
    let msg = colleague.request_msg(
        &to_b,
        "hospital-a",
        "hospital-b",
        &net.a.clinician,
        &net.patient,
        net.a.now(),
        REQUEST_TTL,
    );
    net.a.submit_request(&colleague, msg).accepted();

    assert!(Relayer::relay(&mut net.a, &mut c, &ac)[0].ack.is_success());
    assert!(net.relay_requests()[0].ack.is_success());

    let incoming = c
        .incoming_with_details("hospital-a", &to_c)
        .expect("C received A's request");
    let stored = c
        .query_exchange::<ehr_protocol::exchange::RecordsResponse>(
            &ehr_protocol::exchange::QueryMsg::Records {
                // C opens the sealed details and maps them to its own pseudonym.
                patient_token: Patient::pseudonym_from_sealed(
                    "hospital-c",
                    &incoming.body.sealed_patient,
                )
                .expect("details sealed to C"),
                start_after: None,
                limit: None,
            },
        )
        .unwrap();
    assert_eq!(stored.records.len(), 1);
    let outcome = sealed_records(&requester.encryption_key, b"{\"from\":\"c\"}");
    let body = c_responder.reply_body(
        &to_c,
        "hospital-a",
        "hospital-c",
        &requester.encryption_key,
        &outcome,
        c.now(),
    );
    c.submit_reply(&c_responder, c_responder.reply_msg(&body, &outcome))
        .accepted();
    net.answer(&to_b).accepted();

    assert!(Relayer::relay(&mut c, &mut net.a, &ac.reverse())[0]
        .ack
        .is_success());
    assert!(net.relay_replies()[0].ack.is_success());

    let from_c = net.a.request(&to_c);
    assert_eq!(from_c.status, RequestStatus::Answered);
    assert_eq!(
        from_c.reply.as_ref().unwrap().responder_network,
        "hospital-c"
    );
    assert_eq!(from_c.channel_id, ac.src.channel_id);
    assert_eq!(net.a.request(&to_b).status, RequestStatus::Answered);

    let retrieved = net.a.retrieve(&requester, &to_c).accepted();
    let reply = Chain::retrieved_reply(&retrieved);
    let (outcome, bundle) =
        open_outcome(&requester.encryption_key, &net.a.reply_chunks(&reply)).expect("opens");
    assert!(matches!(outcome, SealedOutcome::Records { .. }));
    assert_eq!(bundle, b"{\"from\":\"c\"}");

    // A reply from C cannot be passed off as B's answer (different channel).
    assert_ne!(from_c.channel_id, net.a.request(&to_b).channel_id);
}
