//! Patient matching with grades (issue 12), on the devnet with the peer tool: the custodian
//! (B) matches a request's sealed details against its own patient index, which `ehrx store`
//! fills; one certain match gets the history, several candidates get "more attributes
//! needed" naming them (exit 6), and a near twin never gets its twin's history.

use crate::support::{A, B};
use ehr_protocol::registry::Role;
use ehr_tests::devnet::{path_without_wasmd, run_id, Devnet};
use ehr_tests::peer_tool::{
    ehrx_bin, register_clinician, reply_service, request_args, site, store, text,
};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};

/// This run's patient. A warm devnet's patient index keeps every earlier run's patients,
/// so each identifying value differs from run to run: a family name built from the run id's
/// fastest-changing digits first (two runs' names differ from their first letters, so name
/// similarity does not make them candidates for each other), and the SSN, birth date, house
/// number and phone derived from it.
struct Person {
    family: String,
    ssn: String,
    twin_ssn: String,
    /// YYYY-MM-DD, and the same date as a US clerk writes it (MM/DD/YYYY).
    birth_date: String,
    birth_date_us: String,
    house: u32,
    phone: String,
}

fn person_of_this_run() -> Person {
    const SYLLABLES: [&str; 16] = [
        "ba", "ke", "lo", "mi", "nu", "pa", "re", "si", "to", "vu", "za", "de", "fo", "gi", "ha",
        "jo",
    ];
    let id = u32::from_str_radix(run_id(), 16).unwrap_or(0);
    let digits: Vec<usize> = run_id()
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(16).map(|d| d as usize))
        .collect();
    let mut family: String = digits.iter().map(|&d| SYLLABLES[d]).collect();
    family[..1].make_ascii_uppercase();
    let (month, day, year) = (1 + id % 12, 1 + (id / 12) % 28, 1950 + (id / 336) % 50);
    Person {
        family,
        ssn: format!("212-{:02}-{:04}", 10 + id % 89, id % 9973 + 1),
        twin_ssn: format!(
            "212-{:02}-{:04}",
            10 + (id + 7) % 89,
            (id + 4999) % 9973 + 1
        ),
        birth_date: format!("{year}-{month:02}-{day:02}"),
        birth_date_us: format!("{month:02}/{day:02}/{year}"),
        house: 10 + id % 9000,
        phone: format!("518-{:03}-{:04}", 200 + id % 700, id % 9973),
    }
}

/// A Bundle with the one Patient (name, birth date, sex, SSN, home address, phone) and a
/// Condition, as a hospital's EHR exports it.
fn bundle(given: &str, p: &Person, condition: &str) -> Value {
    json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:7c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d01",
             "resource": {"resourceType": "Patient", "id": "p1",
                "name": [{"use": "official", "given": [given], "family": p.family}],
                "gender": "male", "birthDate": p.birth_date,
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": p.ssn}],
                "address": [{"use": "home", "line": [format!("{} Harbor View Road", p.house)], "city": "Albany", "postalCode": "12203"}],
                "telecom": [{"system": "phone", "value": p.phone}]}},
            {"fullUrl": "urn:uuid:7c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d02",
             "resource": {"resourceType": "Condition", "id": "c1",
                "code": {"text": condition},
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "subject": {"reference": "urn:uuid:7c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d01"}}}
        ]
    })
}

/// `ehrx request` from a fresh requesting site on A (one request a peer per minute is the
/// policy) with `details`, waiting for the answer.
fn ask(
    devnet: &Devnet,
    root: &Path,
    name: &str,
    clinician: &(String, String),
    details: Value,
) -> (Output, std::path::PathBuf) {
    let (requester, _) = site(devnet, root, A, name, &[Role::Request]);
    let file = requester.dir.join("patient.json");
    std::fs::write(&file, details.to_string()).unwrap();
    let out = requester.dir.join("history.json");
    let output = Command::new(ehrx_bin(devnet))
        .args(request_args(
            &requester.config,
            B,
            &clinician.0,
            &file,
            &out,
            180,
        ))
        .args(["--clinician-key", &clinician.1])
        .env("PATH", path_without_wasmd())
        .output()
        .unwrap();
    (output, out)
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn a_nickname_without_ssn_matches_twins_need_more_and_a_near_twin_never_gets_the_history() {
    let devnet = Devnet::get();
    let root = std::env::temp_dir().join(format!("ehrx-matching-{}", run_id()));
    std::fs::create_dir_all(&root).unwrap();
    let p = person_of_this_run();
    let family = p.family.clone();
    let (store_site, _) = site(devnet, &root, B, "match-b-store", &[Role::Store]);
    let (reply_site, _) = site(devnet, &root, B, "match-b-reply", &[Role::Reply]);
    let (home_site, _) = site(devnet, &root, A, "match-a-home", &[Role::Request]);

    // B holds Jonathan's history, filed under his full name with his SSN. The details for
    // the pseudonym come from the Bundle's Patient, as do the index's attributes.
    let stored_bundle = store_site.dir.join("jonathan.json");
    std::fs::write(&stored_bundle, bundle("Jonathan", &p, "Asthma").to_string()).unwrap();
    let details = store_site.dir.join("jonathan-details.json");
    std::fs::write(
        &details,
        json!({"given": "Jonathan", "family": family, "birth_date": p.birth_date, "ssn": p.ssn})
            .to_string(),
    )
    .unwrap();
    let stored = store(devnet, &store_site, &stored_bundle, &details);
    let report: Value = serde_json::from_slice(&stored.stdout).unwrap();
    assert_eq!(
        report["indexed"],
        true,
        "store adds the patient to B's index: {}",
        text(&stored)
    );

    let _service = reply_service(
        devnet,
        &reply_site,
        &reply_site.dir.join("reply-service.log"),
    );
    let (id, key, _) =
        register_clinician(devnet, &home_site, &format!("dr-match-{}", run_id()), &[]);
    let dr = (id, key.to_str().unwrap().to_string());

    // 1. A's clinician knows him as "Jon", has no SSN, but has his birth date, phone and
    //    address: one certain match, the history comes back.
    let (found, out) = ask(
        devnet,
        &root,
        "match-a-nickname",
        &dr,
        json!({"given": "Jon", "family": family, "birth_date": p.birth_date_us, "sex": "male",
               "phone": format!("({}) {}", &p.phone[..3], &p.phone[4..]),
               "address": {"line": format!("{} Harbor View Rd", p.house), "city": "Albany", "postal_code": "12203"}}),
    );
    assert!(found.status.success(), "nickname, no SSN: {}", text(&found));
    let history = std::fs::read_to_string(&out).unwrap();
    assert!(history.contains("Asthma"), "the stored Condition came back");

    // 2. His twin brother Jeremy (same family, birth date, address and phone; his own SSN)
    //    is not in B's index: a request for him must never get Jonathan's history.
    let (twin, twin_out) = ask(
        devnet,
        &root,
        "match-a-twin",
        &dr,
        json!({"given": "Jeremy", "family": family, "birth_date": p.birth_date, "sex": "male",
               "ssn": p.twin_ssn, "phone": p.phone,
               "address": {"line": format!("{} Harbor View Road", p.house), "city": "Albany", "postal_code": "12203"}}),
    );
    assert!(
        !twin.status.success(),
        "a near twin matched: {}",
        text(&twin)
    );
    assert!(!twin_out.exists(), "no history written for the near twin");
    assert!(
        !text(&twin).contains("Asthma"),
        "nothing of the history in the output"
    );

    // 3. Only the family name and birth date: B cannot tell who it is (Jonathan, or someone
    //    it does not know): "more attributes needed", naming what would decide, exit 6.
    let (vague, vague_out) = ask(
        devnet,
        &root,
        "match-a-vague",
        &dr,
        json!({"family": family, "birth_date": p.birth_date}),
    );
    assert_eq!(
        vague.status.code(),
        Some(6),
        "vague details: {}",
        text(&vague)
    );
    assert!(text(&vague).contains("ask again with"), "{}", text(&vague));
    assert!(
        text(&vague).contains("given"),
        "names the given name: {}",
        text(&vague)
    );
    assert!(!vague_out.exists());

    // Nothing B's reply service logged names the patient.
    let log = std::fs::read_to_string(reply_site.dir.join("reply-service.log")).unwrap();
    for needle in [
        family.as_str(),
        "Jonathan",
        p.ssn.as_str(),
        &p.phone[4..],
        "Harbor",
    ] {
        assert!(
            !log.contains(needle),
            "PHI {needle:?} in the reply service log"
        );
    }
}
