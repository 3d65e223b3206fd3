//! Linkability on real chains: after A asks B and C about the same patient (both hold a
//! record of them), an observer who reads every contract's full raw state on all three
//! chains (`wasmd query wasm contract-state all`, open to anyone who runs a node) finds no
//! value on B and C that links the patient: each keeps its own pseudonym, the details
//! arrived sealed afresh, and the answers are one sealed kind.

use crate::support::*;
use ehr_protocol::exchange::{ExecuteMsg, RequestStatus};
use ehr_protocol::registry::Role;
use ehr_tests::devnet::{now, Devnet};
use ehr_tests::harness::peer::opaque;
use ehr_tests::harness::peer::random_id;
use ehr_tests::linkage::{contains, is_a_name, tokens};
use std::collections::BTreeSet;

const C: &str = "hospital-c";

/// Every key and value of both contracts on `chain`, as an observer reads them: the REST
/// API's contract state, page by page (wasmd returns at most 100 entries a page).
fn raw_state(devnet: &Devnet, chain: &str) -> Vec<u8> {
    let api = devnet.chain(chain)["api"].as_str().unwrap().to_string();
    let mut all = Vec::new();
    for contract in ["registry", "exchange"] {
        let address = devnet.contract(chain, contract);
        let mut next: Option<String> = None;
        loop {
            // Small pages: a record chunk is 128 KiB, and the state holds every run's.
            let mut url =
                format!("{api}/cosmwasm/wasm/v1/contract/{address}/state?pagination.limit=20");
            if let Some(key) = &next {
                let key = key
                    .replace('+', "%2B")
                    .replace('/', "%2F")
                    .replace('=', "%3D");
                url.push_str(&format!("&pagination.key={key}"));
            }
            // A busy node may drop one large answer: try a page three times.
            let mut out = None;
            for attempt in 0..3 {
                let got = std::process::Command::new("curl")
                    .args(["-sS", "--fail", "--max-time", "60", &url])
                    .output()
                    .expect("curl");
                if got.status.success() {
                    out = Some(got);
                    break;
                }
                eprintln!(
                    "GET {url} (attempt {}): {}",
                    attempt + 1,
                    String::from_utf8_lossy(&got.stderr)
                );
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
            let out = out.unwrap_or_else(|| panic!("GET {url} failed three times"));
            let page: serde_json::Value = serde_json::from_slice(&out.stdout).expect("state JSON");
            for model in page["models"].as_array().cloned().unwrap_or_default() {
                let key =
                    hex::decode(model["key"].as_str().unwrap_or_default()).unwrap_or_default();
                let value =
                    cosmwasm_std::Binary::from_base64(model["value"].as_str().unwrap_or_default())
                        .map(|b| b.to_vec())
                        .unwrap_or_default();
                all.extend(key);
                all.push(b'\n');
                all.extend(value);
                all.push(b'\n');
            }
            next = page["pagination"]["next_key"]
                .as_str()
                .filter(|k| !k.is_empty())
                .map(str::to_string);
            if next.is_none() {
                break;
            }
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
    // The devnet is shared with the other tests: compare what this exchange adds.
    let (before_b, before_c) = (tokens(&raw_state(devnet, B)), tokens(&raw_state(devnet, C)));
    // B and C each hold a record of the patient, under their own pseudonym.
    for chain in [B, C] {
        let (key, storer) =
            devnet.fresh_peer(chain, &format!("store-link-{chain}"), &[Role::Store]);
        // Each hospital's own ciphertext (here: random bytes of bucket size).
        let ciphertext = random_id("ciphertext").into_bytes();
        let msg = storer.store_msg(chain, &random_id("rec"), &patient, &opaque(&ciphertext));
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
        let outcome = no_records(&requester.encryption_key);
        let body = responder.reply_body(&id, A, to, &requester.encryption_key, &outcome, now());
        devnet
            .exec(
                to,
                &reply_key,
                &exchange,
                &ExecuteMsg::SubmitReply(responder.reply_msg(&body, &outcome)),
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
    // its clinicians, its contracts), A's public custodian key (each partner registers it)
    // or the asking clinician's id, or is a field name: nothing about the patient.
    let mut allowed = tokens(&seen_a);
    // Keys that join A's partner id with the clinician's id (the per-clinician quota).
    allowed.insert(dr.id.clone());
    if let Some(key) = devnet.custodian(A)["records_key"].as_str() {
        allowed.extend(tokens(key.as_bytes()));
    }
    let added = |seen: &[u8], before: &BTreeSet<String>| -> BTreeSet<String> {
        tokens(seen).difference(before).cloned().collect()
    };
    let (added_b, added_c) = (added(&seen_b, &before_b), added(&seen_c, &before_c));
    assert!(!added_b.is_empty() && !added_c.is_empty());
    let common: Vec<&String> = added_b
        .intersection(&added_c)
        .filter(|t| !is_a_name(t))
        .filter(|t| {
            !allowed
                .iter()
                .any(|a| a.contains(t.as_str()) || t.contains(a.as_str()))
        })
        .collect();
    assert!(common.is_empty(), "values B and C share: {common:?}");
}
