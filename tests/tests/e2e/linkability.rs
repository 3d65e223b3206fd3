//! Linkability on real chains: after A asks B and C about the same patient (both hold a
//! record of them), an observer who reads every contract's full raw state on all three
//! chains (`wasmd query wasm contract-state all`, open to anyone who runs a node) finds no
//! value on B and C that links the patient: each keeps its own pseudonym, the details
//! arrived sealed afresh, and the answers are one sealed kind.

use crate::support::*;
use ehr_protocol::exchange::{ExecuteMsg, RequestStatus};
use ehr_protocol::registry::Role;
use ehr_tests::devnet::{now, Devnet};
use ehr_tests::harness::peer::random_id;
use ehr_tests::linkage::{contains, linking, tokens};

const C: &str = "hospital-c";

/// Every key and value of both contracts on `chain`, as an observer reads them.
fn raw_state(devnet: &Devnet, chain: &str) -> Vec<u8> {
    let mut all = Vec::new();
    for contract in ["registry", "exchange"] {
        let address = devnet.contract(chain, contract);
        let state = devnet.wasmd_query(
            chain,
            &[
                "wasm",
                "contract-state",
                "all",
                &address,
                "--limit",
                "100000",
            ],
        );
        for model in state["models"].as_array().cloned().unwrap_or_default() {
            let key = hex::decode(model["key"].as_str().unwrap_or_default()).unwrap_or_default();
            let value =
                cosmwasm_std::Binary::from_base64(model["value"].as_str().unwrap_or_default())
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
            all.extend(key);
            all.push(b'\n');
            all.extend(value);
            all.push(b'\n');
        }
    }
    all
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn an_observer_of_all_chains_state_cannot_link_a_patient_across_hospitals() {
    let devnet = Devnet::get();
    if devnet.json()["chains"][C].is_null() {
        let out = devnet.script(&["add-chain"]);
        assert!(
            out.status.success(),
            "add-chain: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let patient = fresh_patient("Linh", "Nguyen", "1988-08-08", "601-22");
    // B and C each hold a record of the patient, under their own pseudonym.
    for chain in [B, C] {
        let (key, storer) =
            devnet.fresh_peer(chain, &format!("store-link-{chain}"), &[Role::Store]);
        let msg = storer.store_msg(chain, &random_id("rec"), &patient, b"opaque".to_vec());
        devnet
            .exec(
                chain,
                &key,
                &devnet.contract(chain, "exchange"),
                &ExecuteMsg::StoreRecord(msg),
            )
            .accepted();
    }
    // A asks both about the patient; each answers (sealed).
    let dr = clinician(devnet, "dr-link");
    for to in [B, C] {
        let (key, requester) = devnet.fresh_peer(A, &format!("link-to-{to}"), &[Role::Request]);
        let msg = request_msg(&requester, &dr, to, &patient, 900);
        let id = msg.request_id.clone();
        submit(devnet, &key, msg).accepted();
        let exchange = devnet.contract(to, "exchange");
        wait_for(devnet, "request at the custodian", 120, || {
            devnet
                .query::<ehr_protocol::exchange::IncomingRequest>(
                    to,
                    &exchange,
                    &ehr_protocol::exchange::QueryMsg::IncomingRequest {
                        partner_id: A.into(),
                        request_id: id.clone(),
                    },
                )
                .ok()
        });
        let (reply_key, responder) =
            devnet.fresh_peer(to, &format!("reply-link-{to}"), &[Role::Reply]);
        let body = responder.reply_body(
            &id,
            A,
            to,
            &requester.encryption_key,
            no_records(&requester.encryption_key),
            now(),
        );
        devnet
            .exec(
                to,
                &reply_key,
                &exchange,
                &ExecuteMsg::SubmitReply(responder.reply_msg(&body)),
            )
            .accepted();
        let answered = wait_for(devnet, "reply on A", 120, || {
            let r = request_status(devnet, &id);
            (r.status != RequestStatus::Pending).then_some(r)
        });
        assert_eq!(answered.status, RequestStatus::Answered);
    }

    let (seen_a, seen_b, seen_c) = (
        raw_state(devnet, A),
        raw_state(devnet, B),
        raw_state(devnet, C),
    );
    let (at_b, at_c) = (patient.pseudonym_at(B), patient.pseudonym_at(C));
    assert!(contains(&seen_b, &at_b) && contains(&seen_c, &at_c));
    assert!(!contains(&seen_c, &at_b) && !contains(&seen_b, &at_c));
    assert!(!contains(&seen_a, &at_b) && !contains(&seen_a, &at_c));
    // What B and C both hold comes from A's own public state (its peers' addresses and keys,
    // its clinicians, its contracts) or is A's public custodian key (each partner registers
    // it), or is a field name: nothing about the patient.
    let mut allowed = tokens(&seen_a);
    if let Some(key) = devnet.custodian(A)["records_key"].as_str() {
        allowed.extend(tokens(key.as_bytes()));
    }
    let common = linking(&seen_b, &seen_c, &allowed);
    assert!(common.is_empty(), "values B and C share: {common:?}");
}
