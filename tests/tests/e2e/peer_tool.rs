//! The full exchange driven by the `ehrx` peer tool alone, as hospital staff would run it:
//! store on B, request from A, B's reply service answers, A retrieves, decrypts and writes
//! the FHIR Bundle, which holds what B stored. The patient's details travel sealed to B's
//! custodian key (B's records key, which devnet.sh registered in A's registry); B keeps the
//! record under its own pseudonym. A patient B does not know gets the same kind of answer on
//! chain (`answered`), "no records" only inside. Nothing the tool printed contains PHI.

use crate::support::*;
use ehr_protocol::registry::Role;
use ehr_tests::devnet::{path_without_wasmd, run_id, Devnet};
use ehr_tests::peer_tool::{ehrx, ehrx_bin, reply_service, request_args, site, store, text};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

const PHI: [&str; 8] = [
    "Amara",
    "Okafor",
    "AMARA",
    "okafor",
    "1979-06-21",
    "06/21/1979",
    "212-45-6701",
    "212456701",
];

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn full_exchange_with_the_peer_tool() {
    let devnet = Devnet::get();
    // Every `ehrx` here runs with a PATH in which there is no `wasmd`: the peer tool talks
    // to the chains itself (ehrx-chain).
    let wasmd = Command::new("wasmd")
        .arg("version")
        .env("PATH", path_without_wasmd())
        .output();
    assert!(
        wasmd
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound),
        "wasmd is reachable on ehrx's PATH: {wasmd:?}"
    );
    let root = std::env::temp_dir().join(format!("ehrx-e2e-{}", run_id()));
    std::fs::create_dir_all(&root).unwrap();
    // A's registry holds B's custodian key (devnet.sh's UpsertPartner).
    let partner: Value = devnet
        .query(
            A,
            &devnet.contract(A, "registry"),
            &json!({"partner": {"partner_id": B}}),
        )
        .unwrap();
    assert_eq!(
        partner["encryption_key"],
        devnet.custodian(B)["records_key"],
        "A's partner entry for B carries B's custodian key"
    );

    let (reply_site, _) = site(devnet, &root, B, "b-reply", &[Role::Reply]);
    let (store_site, _) = site(devnet, &root, B, "b-store", &[Role::Store]);
    let (request_site, _) = site(devnet, &root, A, "a-request", &[Role::Request]);

    let bundle = json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:5e2a9c14-7b3d-4f08-a6c1-2d8e4b0f7a01",
             "resource": {"resourceType": "Patient", "id": "p1",
                "name": [{"given": ["Amara"], "family": "Okafor"}], "birthDate": "1979-06-21"}},
            {"fullUrl": "urn:uuid:5e2a9c14-7b3d-4f08-a6c1-2d8e4b0f7a02",
             "resource": {"resourceType": "Condition", "id": "c1",
                "code": {"text": "Type 2 diabetes mellitus"},
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "subject": {"reference": "urn:uuid:5e2a9c14-7b3d-4f08-a6c1-2d8e4b0f7a01"}}}
        ]
    });
    std::fs::write(store_site.dir.join("bundle.json"), bundle.to_string()).unwrap();
    std::fs::write(
        store_site.dir.join("patient.json"),
        json!({"given": "Amara", "family": "Okafor", "birth_date": "1979-06-21", "ssn": "212-45-6701"}).to_string(),
    )
    .unwrap();
    // The requesting hospital writes the same patient its own way.
    std::fs::write(
        request_site.dir.join("patient.json"),
        json!({"given": "AMARA", "family": "okafor ", "birth_date": "06/21/1979", "ssn": "212456701"}).to_string(),
    )
    .unwrap();

    let stored = store(
        devnet,
        &store_site,
        &store_site.dir.join("bundle.json"),
        &store_site.dir.join("patient.json"),
    );

    let _service = reply_service(
        devnet,
        &reply_site,
        &reply_site.dir.join("reply-service.log"),
    );

    // The clinician's own key, made by ehrx on the requesting site; A's admin registers the
    // RegisterClinician message it prints, as is.
    let clinician_id = format!("e2e-dr-{}", run_id());
    let created = ehrx(
        devnet,
        &[
            "--config",
            request_site.config.to_str().unwrap(),
            "clinician",
            "new",
            "--id",
            &clinician_id,
        ],
    );
    assert!(
        created.status.success(),
        "clinician new: {}",
        text(&created)
    );
    let key_file = request_site
        .dir
        .join(format!("keys/clinicians/{clinician_id}.key"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600,
        "the clinician's key file is private"
    );
    let register: Value = serde_json::from_slice(&created.stdout).expect("RegisterClinician JSON");
    assert_eq!(
        register["register_clinician"]["clinician"]["allowed_purposes"],
        json!(["treatment"])
    );
    devnet
        .exec(A, "admin", &devnet.contract(A, "registry"), &register)
        .accepted();

    let history = request_site.dir.join("history.json");
    let requested = Command::new(ehrx_bin(devnet))
        .args(request_args(
            &request_site.config,
            B,
            &clinician_id,
            &request_site.dir.join("patient.json"),
            &history,
            180,
        ))
        .env("PATH", path_without_wasmd())
        .output()
        .unwrap();
    assert!(requested.status.success(), "request: {}", text(&requested));

    let written: Value = serde_json::from_str(&std::fs::read_to_string(&history).unwrap()).unwrap();
    assert_eq!(written["resourceType"], "Bundle");
    let resources: Vec<&Value> = written["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .collect();
    let condition = resources
        .iter()
        .find(|r| r["resourceType"] == "Condition")
        .expect("the stored Condition");
    assert_eq!(condition["code"]["text"], "Type 2 diabetes mellitus");
    let patient = resources
        .iter()
        .find(|r| r["resourceType"] == "Patient")
        .expect("the stored Patient");
    assert_eq!(patient["name"][0]["family"], "Okafor");
    let provenance = resources
        .iter()
        .find(|r| r["resourceType"] == "Provenance")
        .expect("Provenance");
    assert!(
        provenance.to_string().contains(B),
        "provenance names the responding network"
    );

    // A patient B does not know: on chain the request is answered like any other; only the
    // sealed reply says "no records" (ehrx exit status 3). From a second workstation of the
    // same clinician (the policy lets one peer send one request a minute).
    let (other_site, _) = site(devnet, &root, A, "a-request-2", &[Role::Request]);
    std::fs::write(
        other_site.dir.join("unknown.json"),
        json!({"given": "Nobody", "family": "Known", "birth_date": "1990-02-03", "ssn": "219-09-9998"}).to_string(),
    )
    .unwrap();
    let unknown = Command::new(ehrx_bin(devnet))
        .args(request_args(
            &other_site.config,
            B,
            &clinician_id,
            &other_site.dir.join("unknown.json"),
            &other_site.dir.join("unknown-history.json"),
            180,
        ))
        .args([Path::new("--clinician-key"), key_file.as_path()])
        .env("PATH", path_without_wasmd())
        .output()
        .unwrap();
    assert_eq!(
        unknown.status.code(),
        Some(3),
        "unknown patient: {}",
        text(&unknown)
    );
    assert!(
        text(&unknown).contains("answered"),
        "answered on chain: {}",
        text(&unknown)
    );
    assert!(!other_site.dir.join("unknown-history.json").exists());

    // Nothing the tool printed or logged holds PHI; neither do the audit logs.
    let service_log = std::fs::read_to_string(reply_site.dir.join("reply-service.log")).unwrap();
    let audit_a = serde_json::to_string(
        &devnet
            .query::<Value>(
                A,
                &devnet.contract(A, "exchange"),
                &json!({"audit_log": {"limit": 100}}),
            )
            .unwrap(),
    )
    .unwrap();
    for (what, haystack) in [
        ("store output", text(&stored)),
        ("request output", text(&requested)),
        ("no-records request output", text(&unknown)),
        ("reply service log", service_log),
        ("A audit log", audit_a),
    ] {
        for needle in PHI {
            assert!(!haystack.contains(needle), "PHI {needle:?} in {what}");
        }
    }
}
