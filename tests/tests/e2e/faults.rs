//! Faults and hostile traffic on real chains: a request timing out while Hermes is stopped,
//! Hermes killed mid-exchange, forged and misrouted replies, and a channel handshake from a
//! contract that is not a registered partner.

use crate::support::*;
use ehr_protocol::exchange::{ExecuteMsg, IncomingRequest, QueryMsg, RequestStatus};
use ehr_protocol::registry::Role;
use ehr_tests::devnet::{now, Devnet};
use std::process::Command;

fn incoming(devnet: &Devnet, id: &str) -> Option<IncomingRequest> {
    devnet
        .query(
            B,
            &devnet.contract(B, "exchange"),
            &QueryMsg::IncomingRequest {
                partner_id: A.into(),
                request_id: id.to_string(),
            },
        )
        .ok()
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn request_times_out_while_hermes_is_stopped() {
    let devnet = Devnet::get();
    let (key, requester) = devnet.fresh_peer(A, "timeout", &[Role::Request]);
    let (store_key, storer) = devnet.fresh_peer(B, "store-t", &[Role::Store]);
    let patient = patient_with_record(devnet, B, &storer, &store_key);

    let asker = clinician(devnet, "timeout-dr");
    let guard = stop_relayer(devnet);
    // A 30-second request (the policy's shortest): its packet timeout is capped at its expiry.
    let msg = request_msg(&requester, &asker, B, &patient, 30);
    let id = msg.request_id.clone();
    submit(devnet, &key, msg).accepted();
    std::thread::sleep(std::time::Duration::from_secs(35));
    assert_eq!(request_status(devnet, &id).status, RequestStatus::Pending);
    drop(guard); // Hermes restarts and proves the timeout to A.
    let request = wait_for(devnet, "timeout relayed to A", 180, || {
        let r = request_status(devnet, &id);
        (r.status != RequestStatus::Pending).then_some(r)
    });
    assert_eq!(request.status, RequestStatus::TimedOut);
    assert!(incoming(devnet, &id).is_none(), "B never saw the request");
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn hermes_killed_mid_exchange_and_restarted_loses_nothing() {
    let devnet = Devnet::get();
    let (key, requester) = devnet.fresh_peer(A, "crash", &[Role::Request]);
    let (store_key, storer) = devnet.fresh_peer(B, "store-c", &[Role::Store]);
    let (reply_key, responder) = devnet.fresh_peer(B, "reply-c", &[Role::Reply]);
    let patient = patient_with_record(devnet, B, &storer, &store_key);

    // The request is committed while Hermes is down...
    let asker = clinician(devnet, "crash-dr");
    let guard = stop_relayer(devnet);
    let msg = request_msg(&requester, &asker, B, &patient, 900);
    let id = msg.request_id.clone();
    submit(devnet, &key, msg).accepted();
    drop(guard);
    wait_for(devnet, "request relayed after restart", 180, || {
        incoming(devnet, &id)
    });

    // ...and so is the reply.
    let guard = stop_relayer(devnet);
    let outcome = no_records(&requester.encryption_key);
    let body = responder.reply_body(&id, A, B, &requester.encryption_key, &outcome, now());
    devnet
        .exec(
            B,
            &reply_key,
            &devnet.contract(B, "exchange"),
            &ExecuteMsg::SubmitReply(responder.reply_msg(&body, &outcome)),
        )
        .accepted();
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(request_status(devnet, &id).status, RequestStatus::Pending);
    drop(guard);
    let request = wait_for(devnet, "reply relayed after restart", 180, || {
        let r = request_status(devnet, &id);
        (r.status == RequestStatus::Answered).then_some(r)
    });
    let reply = request.reply.unwrap();
    assert_eq!(reply.chunks_received, reply.chunk_count);
    wait_for(devnet, "reply ack back on B", 60, || {
        (incoming(devnet, &id)?.status == ehr_protocol::exchange::IncomingStatus::Delivered)
            .then_some(())
    });
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn forged_and_misrouted_replies_are_refused() {
    let devnet = Devnet::get();
    let (key, requester) = devnet.fresh_peer(A, "forged", &[Role::Request]);
    let (store_key, storer) = devnet.fresh_peer(B, "store-f", &[Role::Store]);
    let (reply_key, responder) = devnet.fresh_peer(B, "reply-f", &[Role::Reply]);
    let patient = patient_with_record(devnet, B, &storer, &store_key);
    let asker = clinician(devnet, "forged-dr");
    let msg = request_msg(&requester, &asker, B, &patient, 900);
    let id = msg.request_id.clone();
    submit(devnet, &key, msg).accepted();
    wait_for(devnet, "request relayed to B", 90, || incoming(devnet, &id));
    let reply_to = &requester.encryption_key;
    let b_exchange = devnet.contract(B, "exchange");
    let outcome = no_records(reply_to);
    let reply = |body: &ehr_protocol::packet::ReplyBody| {
        ExecuteMsg::SubmitReply(responder.reply_msg(body, &outcome))
    };

    // Misrouted: addressed to a network that never asked.
    let body = responder.reply_body(&id, "hospital-c", B, reply_to, &outcome, now());
    assert_eq!(
        devnet
            .exec(B, &reply_key, &b_exchange, &reply(&body))
            .rejection(),
        "UnknownRequest"
    );
    // Forged: signed by a key the registry does not hold for this responder.
    let body = responder.reply_body(&id, A, B, reply_to, &outcome, now());
    let mut forged = responder.reply_msg(&body, &outcome);
    forged.signature = storer.sign(b"not the reply");
    assert_eq!(
        devnet
            .exec(B, &reply_key, &b_exchange, &ExecuteMsg::SubmitReply(forged))
            .rejection(),
        "BadSignature"
    );
    // Not a registered responder at all.
    let outsider_key = format!("fake-responder-{}", ehr_tests::devnet::run_id());
    let outsider_addr = devnet.new_account(B, &outsider_key);
    let outsider = ehr_tests::harness::TestPeer::new(outsider_addr, &[Role::Reply]);
    let body = outsider.reply_body(&id, A, B, reply_to, &outcome, now());
    let result = devnet.exec(
        B,
        &outsider_key,
        &b_exchange,
        &ExecuteMsg::SubmitReply(outsider.reply_msg(&body, &outcome)),
    );
    assert_eq!(result.rejection(), "NotRegistered", "{result:?}");
    // Nothing was sent: the request on A is still pending.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(request_status(devnet, &id).status, RequestStatus::Pending);
    let incoming = incoming(devnet, &id).unwrap();
    assert_eq!(
        incoming.status,
        ehr_protocol::exchange::IncomingStatus::Pending
    );
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn handshake_from_an_unregistered_contract_is_refused() {
    let devnet = Devnet::get();
    // A second exchange instance on B: same code, but not B's registered exchange, so A's
    // lookup table does not list its port.
    let code_id = devnet.chain(B)["code_ids"]["exchange"]
        .as_u64()
        .expect("exchange code id");
    let msg = serde_json::json!({ "registry": devnet.contract(B, "registry") });
    let label = format!("rogue-{}", ehr_tests::devnet::run_id());
    let rogue = devnet
        .instantiate_cli(B, "admin", code_id, &msg, &label)
        .unwrap_or_else(|e| panic!("instantiate rogue: {e}"));

    let b_connection = devnet.chain(B)["partners"][A]["connection_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The first relayer instance's config (devnet.json `hermes.config`).
    let config = std::path::PathBuf::from(devnet.json()["hermes"]["config"].as_str().unwrap());
    let out = Command::new("hermes")
        .env("PATH", ehr_tests::devnet::path_with_tools())
        .args([
            "--config",
            config.to_str().unwrap(),
            "create",
            "channel",
            "--a-chain",
            B,
        ])
        .args([
            "--a-connection",
            &b_connection,
            "--a-port",
            &format!("wasm.{rogue}"),
        ])
        .args([
            "--b-port",
            &format!("wasm.{}", devnet.contract(A, "exchange")),
        ])
        .args([
            "--order",
            "unordered",
            "--channel-version",
            ehr_protocol::limits::CHANNEL_VERSION,
            "--yes",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "handshake must fail: {text}");
    assert!(
        text.contains("UnknownPartner") || text.contains("handshake refused"),
        "{text}"
    );
    // A's binding to B is untouched.
    let partner: Option<ehr_protocol::registry::Partner> = devnet
        .query(
            A,
            &devnet.contract(A, "registry"),
            &ehr_protocol::registry::QueryMsg::Partner {
                partner_id: B.into(),
            },
        )
        .unwrap();
    assert_eq!(
        partner.unwrap().channel_id.as_deref(),
        devnet.chain(A)["partners"][B]["channel_id"].as_str()
    );
}
