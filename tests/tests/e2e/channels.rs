//! Channel binding on real chains, on a second registry and exchange pair per chain (same
//! code), so the devnet's own A<->B binding is never touched: a handshake started from the
//! higher network id is refused at once, so two can never cross; the admin unbinds a
//! partner's channel, Hermes opens a new one, and a request in flight on the old channel
//! still gets its reply.

use crate::support::*;
use ehr_protocol::exchange::PurposeOfUse;
use ehr_protocol::exchange::{
    ExecuteMsg, IncomingRequest, OutgoingRequest, QueryMsg, RequestStatus,
};
use ehr_protocol::limits::CHANNEL_VERSION;
use ehr_protocol::registry::{
    ExecuteMsg as RegistryMsg, Partner, PartnerInput, PartnerStatus, QueryMsg as RegistryQuery,
    Role,
};
use ehr_tests::devnet::{now, run_id, Devnet};
use ehr_tests::harness::peer::opaque;
use ehr_tests::harness::peer::{random_id, Patient, TestClinician, TestPeer};
use serde_json::Value;
use std::process::Command;

/// A registry and an exchange of our own on `chain`.
struct Pair {
    chain: &'static str,
    registry: String,
    exchange: String,
}

impl Pair {
    fn deploy(devnet: &Devnet, chain: &'static str) -> Pair {
        let code = |name: &str| devnet.chain(chain)["code_ids"][name].as_u64().unwrap();
        let instantiate = |code_id: u64, msg: Value, label: &str| {
            let label = format!("{label}-{}", run_id());
            devnet
                .instantiate_cli(chain, "admin", code_id, &msg, &label)
                .unwrap_or_else(|e| panic!("instantiate {label}: {e}"))
        };
        let registry = instantiate(
            code("registry"),
            serde_json::json!({"admin": null, "network_id": chain, "policy": null}),
            "registry-pair",
        );
        let exchange = instantiate(
            code("exchange"),
            serde_json::json!({ "registry": registry }),
            "exchange-pair",
        );
        let pair = Pair {
            chain,
            registry,
            exchange,
        };
        pair.admin(
            devnet,
            &RegistryMsg::SetExchange {
                exchange: pair.exchange.clone(),
            },
        );
        pair
    }

    fn port(&self) -> String {
        format!("wasm.{}", self.exchange)
    }

    fn admin(&self, devnet: &Devnet, msg: &RegistryMsg) {
        devnet
            .exec(self.chain, "admin", &self.registry, msg)
            .accepted();
    }

    fn partner(&self, devnet: &Devnet, partner_id: &str) -> Partner {
        devnet
            .query::<Option<Partner>>(
                self.chain,
                &self.registry,
                &RegistryQuery::Partner {
                    partner_id: partner_id.to_string(),
                },
            )
            .unwrap()
            .expect("partner")
    }

    /// A fresh funded account registered in this pair's registry.
    fn peer(&self, devnet: &Devnet, name: &str, roles: &[Role]) -> (String, TestPeer) {
        let key = format!("{name}-{}", run_id());
        let peer = TestPeer::new(devnet.new_account(self.chain, &key), roles);
        self.admin(
            devnet,
            &RegistryMsg::RegisterPeer {
                peer: peer.peer_input(),
            },
        );
        (key, peer)
    }
}

/// `hermes create channel` from `a` to `b`; the two channel ids, or Hermes's output.
fn create_channel(devnet: &Devnet, a: &Pair, b: &Pair) -> Result<(String, String), String> {
    let other = if a.chain == A { B } else { A };
    let connection = devnet.chain(a.chain)["partners"][other]["connection_id"]
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
            "--json",
            "create",
            "channel",
        ])
        .args(["--a-chain", a.chain, "--a-connection", &connection])
        .args(["--a-port", &a.port(), "--b-port", &b.port()])
        .args([
            "--order",
            "unordered",
            "--channel-version",
            CHANNEL_VERSION,
            "--yes",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let result = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["status"] == "success")
        .map(|v| v["result"].clone());
    match result {
        Some(r) if out.status.success() => Ok((
            r["a_side"]["channel_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            r["b_side"]["channel_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )),
        _ => Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr))),
    }
}

fn incoming(devnet: &Devnet, pair: &Pair, id: &str) -> Option<IncomingRequest> {
    devnet
        .query(
            pair.chain,
            &pair.exchange,
            &QueryMsg::IncomingRequest {
                partner_id: A.to_string(),
                request_id: id.to_string(),
            },
        )
        .ok()
}

fn outgoing(devnet: &Devnet, pair: &Pair, id: &str) -> OutgoingRequest {
    devnet
        .query(
            pair.chain,
            &pair.exchange,
            &QueryMsg::Request {
                request_id: id.to_string(),
            },
        )
        .unwrap()
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn crossing_handshakes_are_refused_and_an_admin_unbind_and_rebind_loses_nothing() {
    let devnet = Devnet::get();
    let (a, b) = (Pair::deploy(devnet, A), Pair::deploy(devnet, B));
    for (ours, theirs, other) in [(&a, &b, B), (&b, &a, A)] {
        let connection = devnet.chain(ours.chain)["partners"][other]["connection_id"]
            .as_str()
            .unwrap()
            .to_string();
        ours.admin(
            devnet,
            &RegistryMsg::UpsertPartner {
                partner: PartnerInput {
                    partner_id: other.to_string(),
                    connection_id: connection,
                    counterparty_port: theirs.port(),
                    encryption_key: None,
                    status: PartnerStatus::Active,
                    accepted_purposes: ehr_protocol::registry::default_accepted_purposes(),
                },
            },
        );
    }

    // B starts a handshake (as if both sides started one at once): refused on B at once.
    let refused = create_channel(devnet, &b, &a).unwrap_err();
    assert!(refused.contains("opened from hospital-a"), "{refused}");
    assert!(a.partner(devnet, B).channel_id.is_none());
    assert!(b.partner(devnet, A).channel_id.is_none());
    // A's handshake binds the two ends of one channel.
    let (a1, b1) = create_channel(devnet, &a, &b).expect("A opens the channel");
    assert_eq!(
        a.partner(devnet, B).channel_id.as_deref(),
        Some(a1.as_str())
    );
    assert_eq!(
        b.partner(devnet, A).channel_id.as_deref(),
        Some(b1.as_str())
    );

    // A request in flight on that channel.
    let (requester_key, requester) = a.peer(devnet, "pair-requester", &[Role::Request]);
    let clinician = TestClinician::new(&format!("pair-dr-{}", run_id()));
    a.admin(
        devnet,
        &RegistryMsg::RegisterClinician {
            clinician: clinician.input(&[PurposeOfUse::Treatment]),
        },
    );
    let (store_key, storer) = b.peer(devnet, "pair-storer", &[Role::Store]);
    let (reply_key, responder) = b.peer(devnet, "pair-responder", &[Role::Reply]);
    let patient = Patient::new("Jun", "Tanaka", "1991-07-07", "411-22-3344");
    let record = storer.store_msg(B, &random_id("rec"), &patient, &opaque(b"opaque"));
    devnet
        .exec(B, &store_key, &b.exchange, &ExecuteMsg::StoreRecord(record))
        .accepted();
    let request = |requester: &TestPeer| {
        requester.request_msg(
            &requester.request_id(),
            A,
            B,
            &clinician,
            &patient,
            now(),
            900,
        )
    };
    let msg = request(&requester);
    let in_flight = msg.request_id.clone();
    devnet
        .exec(
            A,
            &requester_key,
            &a.exchange,
            &ExecuteMsg::SubmitRequest(msg),
        )
        .accepted();
    wait_for(devnet, "request on B", 90, || {
        incoming(devnet, &b, &in_flight)
    });

    // Both admins unbind; Hermes opens a new channel, which binds on both sides.
    a.admin(
        devnet,
        &RegistryMsg::UnbindPartnerChannel {
            partner_id: B.into(),
        },
    );
    b.admin(
        devnet,
        &RegistryMsg::UnbindPartnerChannel {
            partner_id: A.into(),
        },
    );
    assert_eq!(a.partner(devnet, B).retired_channels, vec![a1.clone()]);
    let (a2, b2) = create_channel(devnet, &a, &b).expect("A opens a new channel");
    assert_ne!(a2, a1);
    assert_eq!(
        a.partner(devnet, B).channel_id.as_deref(),
        Some(a2.as_str())
    );
    assert_eq!(
        b.partner(devnet, A).channel_id.as_deref(),
        Some(b2.as_str())
    );

    // The request in flight is answered on the channel it came in on, and completes.
    let outcome = no_records(&requester.encryption_key);
    let body = responder.reply_body(&in_flight, A, B, &requester.encryption_key, &outcome, now());
    devnet
        .exec(
            B,
            &reply_key,
            &b.exchange,
            &ExecuteMsg::SubmitReply(responder.reply_msg(&body, &outcome)),
        )
        .accepted();
    let answered = wait_for(devnet, "reply on the retired channel", 120, || {
        let r = outgoing(devnet, &a, &in_flight);
        (r.status != RequestStatus::Pending).then_some(r)
    });
    assert_eq!(answered.status, RequestStatus::Answered);
    assert_eq!(answered.channel_id, a1);

    // A new request (from a colleague's workstation: the rate limit is per peer) leaves on
    // the new channel.
    let (colleague_key, colleague) = a.peer(devnet, "pair-colleague", &[Role::Request]);
    let msg = request(&colleague);
    let fresh = msg.request_id.clone();
    devnet
        .exec(
            A,
            &colleague_key,
            &a.exchange,
            &ExecuteMsg::SubmitRequest(msg),
        )
        .accepted();
    assert_eq!(outgoing(devnet, &a, &fresh).channel_id, a2);
    let arrived = wait_for(devnet, "new request on B", 90, || {
        incoming(devnet, &b, &fresh)
    });
    assert_eq!(arrived.channel_id, b2);
}
