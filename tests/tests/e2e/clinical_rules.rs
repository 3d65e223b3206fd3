//! Clinical access rules (issue 12) on the devnet, driven with the peer tool as a hospital's
//! staff would: B's privacy office records a patient's deny for hospital A (which the
//! patient lets break-glass override), A's clinician is refused for treatment, then breaks
//! the glass with a reason and gets the history; B's privacy office is alerted, both chains
//! audit it, and the patient's "who accessed my record" report shows every step.

use crate::support::{A, B};
use ehr_protocol::registry::Role;
use ehr_tests::devnet::{path_without_wasmd, run_id, Devnet};
use ehr_tests::peer_tool::{ehrx, ehrx_bin, request_args, site, store, text, KillOnDrop, Site};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A family name no other run shares (letters only).
fn family_of_this_run() -> String {
    let letters: String = run_id()
        .chars()
        .filter_map(|c| c.to_digit(36).map(|d| (b'a' + (d % 26) as u8) as char))
        .take(8)
        .collect();
    format!("Okonkwo{letters}")
}

fn config(site: &Site) -> &str {
    site.config.to_str().unwrap()
}

/// `ehrx request` from a fresh site on A (one request per peer and minute is the policy),
/// with `extra` arguments (purpose, break-glass).
fn ask(
    devnet: &Devnet,
    root: &Path,
    name: &str,
    clinician: &(String, PathBuf),
    details: &Path,
    extra: &[&str],
) -> (Output, PathBuf) {
    let (requester, _) = site(devnet, root, A, name, &[Role::Request]);
    let out = requester.dir.join("history.json");
    let mut args = request_args(&requester.config, B, &clinician.0, details, &out, 180);
    // request_args asks for treatment; an emergency asks for emergency treatment instead.
    if let Some(at) = extra.iter().position(|a| *a == "--purpose") {
        let purpose = args.iter().position(|a| a == "--purpose").unwrap() + 1;
        args[purpose] = extra[at + 1].to_string();
        args.extend(
            extra
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != at && *i != at + 1)
                .map(|(_, a)| a.to_string()),
        );
    } else {
        args.extend(extra.iter().map(|s| s.to_string()));
    }
    let output = Command::new(ehrx_bin(devnet))
        .args(&args)
        .args(["--clinician-key", clinician.1.to_str().unwrap()])
        .env("PATH", path_without_wasmd())
        .output()
        .unwrap();
    (output, out)
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn a_consent_deny_refuses_treatment_and_break_glass_overrides_it_alerted_and_audited() {
    let devnet = Devnet::get();
    let root = std::env::temp_dir().join(format!("ehrx-clinical-{}", run_id()));
    std::fs::create_dir_all(&root).unwrap();
    let family = family_of_this_run();
    let (store_site, _) = site(devnet, &root, B, "rules-b-store", &[Role::Store]);
    let (reply_site, _) = site(devnet, &root, B, "rules-b-reply", &[Role::Reply]);
    let (privacy_site, _) = site(devnet, &root, B, "rules-b-privacy", &[Role::Privacy]);
    let (home_site, _) = site(devnet, &root, A, "rules-a-home", &[Role::Request]);

    let details = root.join("patient.json");
    std::fs::write(
        &details,
        json!({"given": "Chidi", "family": family, "birth_date": "1971-09-30", "ssn": "212-45-6733"}).to_string(),
    )
    .unwrap();
    let bundle = root.join("bundle.json");
    std::fs::write(
        &bundle,
        json!({
            "resourceType": "Bundle", "type": "collection",
            "entry": [
                {"fullUrl": "urn:uuid:0b7e6a3c-9d1f-4e2a-8c5b-6f4d3e2a1b01",
                 "resource": {"resourceType": "Patient", "id": "p1",
                    "name": [{"given": ["Chidi"], "family": family}], "birthDate": "1971-09-30",
                    "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "212-45-6733"}]}},
                {"fullUrl": "urn:uuid:0b7e6a3c-9d1f-4e2a-8c5b-6f4d3e2a1b02",
                 "resource": {"resourceType": "AllergyIntolerance", "id": "a1",
                    "code": {"text": "Penicillin"},
                    "patient": {"reference": "urn:uuid:0b7e6a3c-9d1f-4e2a-8c5b-6f4d3e2a1b01"}}}
            ]
        })
        .to_string(),
    )
    .unwrap();
    store(devnet, &store_site, &bundle, &details);

    // B's privacy office: the patient refuses sharing with hospital A, but allows an
    // emergency to override it.
    let recorded = ehrx(
        devnet,
        &[
            "--config",
            config(&privacy_site),
            "consent",
            "record",
            "--demographics",
            details.to_str().unwrap(),
            "--decision",
            "deny",
            "--partner",
            A,
            "--break-glass-override",
        ],
    );
    assert!(
        recorded.status.success(),
        "consent record: {}",
        text(&recorded)
    );
    let directive: Value = serde_json::from_slice(&recorded.stdout).unwrap();
    let directive_id = directive["directive_id"].as_str().unwrap().to_string();

    // Recorded by anyone but the privacy office: refused, nothing recorded.
    let by_store = ehrx(
        devnet,
        &[
            "--config",
            config(&store_site),
            "consent",
            "record",
            "--demographics",
            details.to_str().unwrap(),
            "--decision",
            "permit",
        ],
    );
    assert!(!by_store.status.success());
    assert!(
        text(&by_store).contains("NotAuthorized"),
        "{}",
        text(&by_store)
    );

    // The reply service alerts the privacy office by running a local program.
    let alert_file = root.join("alert.json");
    let hook = root.join("privacy-hook.sh");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\ncat > {}\n", alert_file.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = std::fs::File::create(reply_site.dir.join("reply-service.log")).unwrap();
    let _service = KillOnDrop(
        Command::new(ehrx_bin(devnet))
            .args([
                "--config",
                config(&reply_site),
                "reply-service",
                "--on-break-glass",
            ])
            .arg(&hook)
            .env("PATH", path_without_wasmd())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    );

    // A clinician whose credential allows break-glass.
    let id = format!("dr-er-{}", run_id());
    let created = ehrx(
        devnet,
        &[
            "--config",
            config(&home_site),
            "clinician",
            "new",
            "--id",
            &id,
            "--purpose",
            "treatment,emergency-treatment",
            "--break-glass",
        ],
    );
    assert!(
        created.status.success(),
        "clinician new: {}",
        text(&created)
    );
    let register: Value = serde_json::from_slice(&created.stdout).unwrap();
    assert_eq!(
        register["register_clinician"]["clinician"]["break_glass"],
        true
    );
    devnet
        .exec(A, "admin", &devnet.contract(A, "registry"), &register)
        .accepted();
    let clinician = (
        id.clone(),
        home_site.dir.join(format!("keys/clinicians/{id}.key")),
    );

    // 1. For treatment: the patient's deny holds. Answered on chain like any request; the
    //    sealed reply says ConsentDenied (exit 4), and nothing is written.
    let (refused, refused_out) = ask(devnet, &root, "rules-a-treat", &clinician, &details, &[]);
    assert_eq!(
        refused.status.code(),
        Some(4),
        "treatment: {}",
        text(&refused)
    );
    assert!(
        text(&refused).contains("ConsentDenied"),
        "{}",
        text(&refused)
    );
    assert!(!refused_out.exists());

    // 2. An emergency without its reason text is refused by the tool before anything is sent.
    let (no_reason, _) = ask(
        devnet,
        &root,
        "rules-a-noreason",
        &clinician,
        &details,
        &[
            "--purpose",
            "emergency-treatment",
            "--break-glass",
            "patient-unable-to-consent",
            "--reason-text",
            "  ",
        ],
    );
    assert!(!no_reason.status.success());
    assert!(
        text(&no_reason).contains("ReasonRequired"),
        "{}",
        text(&no_reason)
    );

    // 3. Break the glass with a reason: the deny allows it, the history comes back.
    let (emergency, emergency_out) = ask(
        devnet,
        &root,
        "rules-a-emergency",
        &clinician,
        &details,
        &[
            "--purpose",
            "emergency-treatment",
            "--break-glass",
            "patient-unable-to-consent",
            "--reason-text",
            "unconscious on arrival, suspected anaphylaxis",
        ],
    );
    assert!(
        emergency.status.success(),
        "break-glass: {}",
        text(&emergency)
    );
    let history = std::fs::read_to_string(&emergency_out).unwrap();
    assert!(history.contains("Penicillin"));

    // B's privacy office was alerted, with the sealed reason; the event names no patient.
    let alert: Value =
        serde_json::from_str(&std::fs::read_to_string(&alert_file).unwrap()).unwrap();
    assert_eq!(alert["event"], "break_glass");
    assert_eq!(alert["reason"], "patient_unable_to_consent");
    assert_eq!(alert["clinician_id"], id.as_str());
    assert_eq!(alert["outcome"], "records");
    assert!(alert["reason_text"]
        .as_str()
        .unwrap()
        .contains("anaphylaxis"));
    assert!(!alert.to_string().contains(&family));

    // Both chains audit the break-glass as its own event (`audit export --break-glass`).
    for (chain_site, chain) in [(&home_site, A), (&reply_site, B)] {
        let exported = ehrx(
            devnet,
            &[
                "--config",
                config(chain_site),
                "audit",
                "export",
                "--break-glass",
            ],
        );
        assert!(exported.status.success(), "{chain}: {}", text(&exported));
        let bundle: Value = serde_json::from_slice(&exported.stdout).unwrap();
        let ours = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.to_string().contains("110127") && e.to_string().contains(&id));
        assert!(ours, "{chain}: no Emergency Override event for {id}");
    }

    // The patient's report on B: the consent decisions (the deny, then its override) and
    // the disclosure, with purposes; as FHIR AuditEvents.
    let report = ehrx(
        devnet,
        &[
            "--config",
            config(&privacy_site),
            "audit",
            "patient",
            "--demographics",
            details.to_str().unwrap(),
        ],
    );
    assert!(report.status.success(), "audit patient: {}", text(&report));
    let report_text = String::from_utf8_lossy(&report.stdout).to_string();
    assert!(report_text.contains("consent_decision"), "{report_text}");
    assert!(report_text.contains("ETREAT") && report_text.contains("TREAT"));
    assert!(report_text.contains(&directive_id));

    // The directive as a FHIR Consent, by pseudonym only.
    let listed = ehrx(
        devnet,
        &[
            "--config",
            config(&privacy_site),
            "consent",
            "list",
            "--fhir",
            "--demographics",
            details.to_str().unwrap(),
        ],
    );
    assert!(listed.status.success(), "consent list: {}", text(&listed));
    let consents = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        consents.contains("\"resourceType\": \"Consent\""),
        "{consents}"
    );
    assert!(
        !consents.contains(&family),
        "the Consent names the patient by pseudonym only"
    );

    // Nothing of the patient in the reply service's log, nor in A's audit log.
    let log = std::fs::read_to_string(reply_site.dir.join("reply-service.log")).unwrap();
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
    for haystack in [&log, &audit_a] {
        for needle in [family.as_str(), "Chidi", "212-45-6733", "anaphylaxis"] {
            assert!(!haystack.contains(needle), "PHI {needle:?} leaked");
        }
    }
}
