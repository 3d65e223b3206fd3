//! Issue 8's attacks on real chains: a partner sending short-lived requests, a requester
//! revoked while its request is in flight, the record index filled to the policy's cap
//! with maximum-size records while every query stays within wasmd's query gas limit, a
//! request in a registered clinician's name without their key, and a clinician revoked
//! while their request is in flight.

use crate::support::*;
use ehr_protocol::exchange::{
    ExecuteMsg, IncomingStatus, QueryMsg, RecordsResponse, RequestStatus,
};
use ehr_protocol::registry::{
    Clinician, CliniciansResponse, ConfigResponse, ExecuteMsg as RegistryMsg, PeerStatus, Policy,
    QueryMsg as RegistryQuery, Role,
};
use ehr_protocol::ErrorCode;
use ehr_tests::devnet::{now, tx_attr, Devnet, TxOutcome};
use ehr_tests::harness::peer::opaque;
use ehr_tests::harness::peer::Sealed;
use ehr_tests::harness::peer::{random_id, TestClinician, TestPeer};

fn peer(devnet: &Devnet, chain: &str, address: &TestPeer) -> ehr_protocol::registry::Peer {
    devnet
        .query::<Option<ehr_protocol::registry::Peer>>(
            chain,
            &devnet.contract(chain, "registry"),
            &RegistryQuery::Peer {
                address: address.address.to_string(),
            },
        )
        .unwrap()
        .expect("registered")
}

/// `responder`'s reply to request `id`, encrypted (as signed) to `requester`'s reply key.
fn answer(
    devnet: &Devnet,
    key: &str,
    responder: &TestPeer,
    requester: &TestPeer,
    id: &str,
    outcome: Sealed,
) -> TxOutcome {
    let body = responder.reply_body(id, A, B, &requester.encryption_key, &outcome, now());
    devnet.exec(
        B,
        key,
        &devnet.contract(B, "exchange"),
        &ExecuteMsg::SubmitReply(responder.reply_msg(&body, &outcome)),
    )
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn partner_requests_that_expire_under_our_reply_service_never_get_it_quarantined() {
    let devnet = Devnet::get();
    let (store_key, storer) = devnet.fresh_peer(B, "store-short", &[Role::Store]);
    let (reply_key, responder) = devnet.fresh_peer(B, "reply-short", &[Role::Reply]);
    let patient = patient_with_record(devnet, B, &storer, &store_key);
    let shortest = Policy::default().min_request_ttl_secs;
    // More short-lived requests than B's strike limit, from several requesters on A.
    let limit = Policy::default().strikes_before_quarantine as usize;
    let asker = clinician(devnet, "short-dr");
    let mut ids = Vec::new();
    for n in 0..=limit {
        let (key, requester) = devnet.fresh_peer(A, &format!("short-{n}"), &[Role::Request]);
        let msg = request_msg(&requester, &asker, B, &patient, shortest);
        ids.push((msg.request_id.clone(), msg.expires_at, requester));
        submit(devnet, &key, msg).accepted();
    }
    for (id, _, _) in &ids {
        wait_for(devnet, "short-lived request on B", 90, || {
            incoming(devnet, id)
        });
    }
    // Our reply service is slower than their lifetime.
    let last_expiry = ids.iter().map(|(_, e, _)| *e).max().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(
        last_expiry.saturating_sub(now()) + 2,
    ));
    for (id, _, requester) in &ids {
        let result = answer(
            devnet,
            &reply_key,
            &responder,
            requester,
            id,
            no_records(&requester.encryption_key),
        );
        assert_eq!(result.rejection(), "Expired", "{result:?}");
        let TxOutcome::SoftRejected { tx, .. } = &result else {
            unreachable!()
        };
        assert_eq!(tx_attr(tx, "strike").as_deref(), Some("false"));
    }
    let standing = peer(devnet, B, &responder);
    assert_eq!((standing.status, standing.strikes), (PeerStatus::Active, 0));
}

fn incoming(devnet: &Devnet, id: &str) -> Option<ehr_protocol::exchange::IncomingRequest> {
    devnet
        .query(
            B,
            &devnet.contract(B, "exchange"),
            &QueryMsg::IncomingRequest {
                partner_id: A.to_string(),
                request_id: id.to_string(),
            },
        )
        .ok()
}

/// A request in flight from a fresh peer on A, asked by a fresh clinician; A's admin executes
/// `revoke(peer, clinician)` while it travels, then B answers. The reply is refused on A with
/// `RequesterRevoked`, never stored, and B learns the refusal. Returns the requesting peer.
fn reply_refused_after_revocation(
    devnet: &Devnet,
    name: &str,
    revoke: impl FnOnce(&TestPeer, &TestClinician) -> RegistryMsg,
) -> TestPeer {
    let (key, requester) = devnet.fresh_peer(A, name, &[Role::Request]);
    let (store_key, storer) = devnet.fresh_peer(B, &format!("store-{name}"), &[Role::Store]);
    let (reply_key, responder) = devnet.fresh_peer(B, &format!("reply-{name}"), &[Role::Reply]);
    let patient = patient_with_record(devnet, B, &storer, &store_key);
    let asker = clinician(devnet, &format!("{name}-dr"));
    let msg = request_msg(&requester, &asker, B, &patient, 900);
    let id = msg.request_id.clone();
    submit(devnet, &key, msg).accepted();
    devnet
        .exec(
            A,
            "admin",
            &devnet.contract(A, "registry"),
            &revoke(&requester, &asker),
        )
        .accepted();
    wait_for(devnet, "request on B", 90, || incoming(devnet, &id));
    answer(
        devnet,
        &reply_key,
        &responder,
        &requester,
        &id,
        no_records(&requester.encryption_key),
    )
    .accepted();
    let request = wait_for(devnet, "reply refused on A", 120, || {
        let r = request_status(devnet, &id);
        (r.status != RequestStatus::Pending).then_some(r)
    });
    assert_eq!(request.status, RequestStatus::Rejected);
    assert_eq!(request.reason, Some(ErrorCode::RequesterRevoked));
    assert_eq!(request.clinician_id, asker.id);
    assert!(request.reply.is_none(), "the reply is never stored");
    let failed = wait_for(devnet, "B learns the refusal", 120, || {
        incoming(devnet, &id).filter(|i| i.status != IncomingStatus::Answered)
    });
    assert_eq!(failed.status, IncomingStatus::Failed);
    assert_eq!(failed.reason, Some(ErrorCode::RequesterRevoked));
    requester
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn a_reply_for_a_requester_revoked_mid_flight_is_refused_and_never_stored() {
    // A's admin revokes the requesting peer while the request is on its way.
    reply_refused_after_revocation(Devnet::get(), "revoked-mid", |requester, _| {
        RegistryMsg::RevokePeer {
            address: requester.address.to_string(),
        }
    });
}

/// Every clinician A's registry lists (the public `Clinicians` query, paged).
fn listed_clinicians(devnet: &Devnet) -> Vec<Clinician> {
    let mut all: Vec<Clinician> = Vec::new();
    loop {
        let page: CliniciansResponse = devnet
            .query(
                A,
                &devnet.contract(A, "registry"),
                &RegistryQuery::Clinicians {
                    start_after: all.last().map(|c| c.clinician_id.clone()),
                    limit: Some(30),
                },
            )
            .unwrap();
        if page.clinicians.is_empty() {
            return all;
        }
        all.extend(page.clinicians);
    }
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn a_request_in_a_registered_clinicians_name_without_their_key_is_refused_and_nothing_sent() {
    let devnet = Devnet::get();
    let victim = clinician(devnet, "victim-dr");
    let (key, colleague) = devnet.fresh_peer(A, "colleague", &[Role::Request]);
    let (store_key, storer) = devnet.fresh_peer(B, "store-stolen", &[Role::Store]);
    let patient = patient_with_record(devnet, B, &storer, &store_key);
    // The registry is public: the colleague reads the clinician's id (and public key).
    let listed = listed_clinicians(devnet);
    let entry = listed
        .iter()
        .find(|c| c.clinician_id == victim.id)
        .expect("the registry lists the clinician");
    assert_eq!(entry.signing_key, victim.pubkey());
    // What the id alone lets them sign with: a key of their own, or their peer key.
    let forgers = [
        TestClinician::new(&victim.id),
        TestClinician {
            id: victim.id.clone(),
            signing_key: colleague.signing_key.clone(),
        },
    ];
    let mut refused = Vec::new();
    for forger in &forgers {
        let msg = request_msg(&colleague, forger, B, &patient, 600);
        let id = msg.request_id.clone();
        let result = submit(devnet, &key, msg);
        assert_eq!(result.rejection(), "BadSignature", "{result:?}");
        let TxOutcome::SoftRejected { tx, .. } = &result else {
            unreachable!()
        };
        assert_eq!(tx_attr(tx, "strike").as_deref(), Some("true"));
        // Nothing stored on A, so nothing sent.
        let stored = devnet.query::<serde_json::Value>(
            A,
            &devnet.contract(A, "exchange"),
            &QueryMsg::Request {
                request_id: id.clone(),
            },
        );
        assert!(
            stored.is_err(),
            "a refused request is not stored: {stored:?}"
        );
        refused.push(id);
    }
    // Only the clinician's own key signs in their name (from the same workstation: the
    // refusals above did not use up its rate limit).
    let genuine = request_msg(&colleague, &victim, B, &patient, 600);
    let genuine_id = genuine.request_id.clone();
    submit(devnet, &key, genuine).accepted();
    let received = wait_for(devnet, "the genuine request on B", 90, || {
        incoming(devnet, &genuine_id)
    });
    assert_eq!(received.body.clinician_id, victim.id);
    assert_eq!(received.signer_pubkey, victim.pubkey());
    // The refused ones never reached B (the genuine one, sent after them, did).
    for id in &refused {
        assert!(incoming(devnet, id).is_none(), "{id} reached B");
    }
    assert_eq!(peer(devnet, A, &colleague).strikes, 2);
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn a_reply_for_a_clinician_revoked_mid_flight_is_refused_and_never_stored() {
    let devnet = Devnet::get();
    // A's admin revokes the clinician (not the peer) while the request is on its way.
    let requester = reply_refused_after_revocation(devnet, "clin-revoked", |_, clinician| {
        RegistryMsg::RevokeClinician {
            clinician_id: clinician.id.clone(),
        }
    });
    // The peer itself is still active and unstruck: only the clinician's standing changed.
    let standing = peer(devnet, A, &requester);
    assert_eq!((standing.status, standing.strikes), (PeerStatus::Active, 0));
}

/// Puts B's policy back when the test ends, even when it fails.
struct PolicyGuard<'a>(&'a Devnet, Policy);

impl Drop for PolicyGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.exec(
            B,
            "admin",
            &self.0.contract(B, "registry"),
            &RegistryMsg::UpdatePolicy {
                policy: self.1.clone(),
            },
        );
    }
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn records_filled_to_the_cap_at_maximum_size_stay_within_query_gas() {
    let devnet = Devnet::get();
    let registry = devnet.contract(B, "registry");
    let exchange = devnet.contract(B, "exchange");
    let config: ConfigResponse = devnet
        .query(B, &registry, &RegistryQuery::Config {})
        .unwrap();
    let _restore = PolicyGuard(devnet, config.policy.clone());
    // A cap of 10 keeps the test short; the issue saw about 8 maximum-size records exceed
    // the 3M query gas limit when the listing loaded every ciphertext.
    let cap = 10;
    devnet
        .exec(
            B,
            "admin",
            &registry,
            &RegistryMsg::UpdatePolicy {
                policy: Policy {
                    max_records_per_patient: cap,
                    ..config.policy.clone()
                },
            },
        )
        .accepted();
    let (store_key, storer) = devnet.fresh_peer(B, "store-cap", &[Role::Store]);
    // A new patient each run: the index of an earlier run's patient is full already.
    let patient = fresh_patient("Cap", "Filler", "1960-03-03", "555-12");
    // One 64 KiB chunk each (a 128 KiB chunk is beyond what the CLI helper takes as an
    // argument; the large-history test reads 128 KiB chunks through ehrx).
    let max = 64 * 1024 - 100;
    let mut stored = Vec::new();
    for n in 0..=cap {
        let record_id = random_id("rec");
        let msg = storer.store_msg(B, &record_id, &patient, &opaque(&vec![n as u8; max]));
        let result = devnet.exec(B, &store_key, &exchange, &ExecuteMsg::StoreRecord(msg));
        if n < cap {
            result.accepted();
            stored.push(record_id);
        } else {
            assert_eq!(result.rejection(), "CapReached", "{result:?}");
        }
    }
    // Every listing and lookup answers under wasmd's default query gas limit (3M): the
    // listing reads metadata only, pages are capped.
    let listing: RecordsResponse = devnet
        .query(
            B,
            &exchange,
            &QueryMsg::Records {
                patient_token: patient.token.clone(),
                start_after: None,
                limit: Some(1000),
            },
        )
        .expect("records listing within query gas");
    assert_eq!(listing.records.len(), cap as usize);
    assert!(listing
        .records
        .iter()
        .all(|r| r.complete() && r.chunk_bytes as usize == 64 * 1024));
    for record_id in [&stored[0], &stored[stored.len() - 1]] {
        devnet
            .query::<serde_json::Value>(
                B,
                &exchange,
                &QueryMsg::Record {
                    patient_token: patient.token.clone(),
                    record_id: record_id.clone(),
                },
            )
            .expect("one maximum-size record within query gas");
    }
    for query in [
        QueryMsg::PendingIncoming {
            start_after: None,
            limit: Some(1000),
        },
        QueryMsg::AuditLog {
            start_after: None,
            limit: Some(1000),
        },
    ] {
        devnet
            .query::<serde_json::Value>(B, &exchange, &query)
            .expect("paged query within query gas");
    }
}
