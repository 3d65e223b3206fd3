//! Clinical access rules (issue 12) on the devnet, driven with the peer tool as a hospital's
//! staff would: B's privacy office records a patient's deny for hospital A (which the
//! patient lets break-glass override), A's clinician is refused for treatment, then breaks
//! the glass with a reason and gets the history; B's privacy office is alerted, both chains
//! audit it, and the patient's "who accessed my record" report shows every step.

use crate::support::{A, B};
use ehr_protocol::registry::{
    ConfigResponse, ExecuteMsg as RegistryMsg, Policy, QueryMsg as RegistryQuery, Role,
};
use ehr_tests::devnet::{path_without_wasmd, run_id, Devnet};
use ehr_tests::fhir_tools::hapi_validate;
use ehr_tests::peer_tool::{
    ehrx, ehrx_bin, register_clinician, request_args, site, store, text, KillOnDrop, Site,
};
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
    let (id, key, register) = register_clinician(
        devnet,
        &home_site,
        &format!("dr-er-{}", run_id()),
        &[
            "--purpose",
            "treatment,emergency-treatment",
            "--break-glass",
        ],
    );
    assert_eq!(
        register["register_clinician"]["clinician"]["break_glass"],
        true
    );
    let clinician = (id.clone(), key);

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

    // The time box is the custodian's: with B's window cut to 2 s, a break-glass request
    // answered after it ended no longer overrides the deny (sealed ConsentDenied, exit 4).
    drop(_service);
    let registry_b = devnet.contract(B, "registry");
    let config_b: ConfigResponse = devnet
        .query(B, &registry_b, &RegistryQuery::Config {})
        .unwrap();
    let _restore = RestorePolicy(devnet, config_b.policy.clone());
    let mut short = config_b.policy;
    short.break_glass_window_secs = 2;
    devnet
        .exec(
            B,
            "admin",
            &registry_b,
            &RegistryMsg::UpdatePolicy { policy: short },
        )
        .accepted();
    let (late_site, _) = site(devnet, &root, A, "rules-a-late", &[Role::Request]);
    let late_out = late_site.dir.join("history.json");
    let mut args = request_args(&late_site.config, B, &clinician.0, &details, &late_out, 60);
    let at = args.iter().position(|a| a == "--purpose").unwrap() + 1;
    args[at] = "emergency-treatment".into();
    let late = Command::new(ehrx_bin(devnet))
        .args(&args)
        .args(["--clinician-key", clinician.1.to_str().unwrap()])
        .args([
            "--break-glass",
            "life-threatening",
            "--reason-text",
            "cardiac arrest in the ED",
        ])
        .env("PATH", path_without_wasmd())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_received(devnet, &id);
    std::thread::sleep(std::time::Duration::from_secs(3));
    pass_until(
        devnet,
        &reply_site,
        &root.join("late-passes.log"),
        "declined:ConsentDenied",
    );
    let late = late.wait_with_output().unwrap();
    assert_eq!(
        late.status.code(),
        Some(4),
        "after the time box: {}",
        text(&late)
    );
    assert!(text(&late).contains("ConsentDenied"), "{}", text(&late));
    assert!(!late_out.exists());

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

    // What the privacy office exports from the devnet is valid FHIR R4: the patient's
    // report and B's break-glass events, under the HL7 validator (HAPI), 0 errors.
    let report_file = root.join("patient-report.json");
    std::fs::write(&report_file, &report.stdout).unwrap();
    let break_glass_file = root.join("break-glass-b.json");
    let exported = ehrx(
        devnet,
        &[
            "--config",
            config(&reply_site),
            "audit",
            "export",
            "--break-glass",
        ],
    );
    std::fs::write(&break_glass_file, &exported.stdout).unwrap();
    for checked in hapi_validate(&[report_file.as_path(), break_glass_file.as_path()])
        .expect("the HAPI harness (scripts/install-tools.sh fhir-validator)")
    {
        let errors: Vec<_> = checked.errors().collect();
        assert!(errors.is_empty(), "{}: {errors:?}", checked.path.display());
    }

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

/// Sets B's registry policy back when dropped (a test that changes it may fail half way).
struct RestorePolicy(&'static Devnet, Policy);

impl Drop for RestorePolicy {
    fn drop(&mut self) {
        let registry = self.0.contract(B, "registry");
        self.0
            .exec(
                B,
                "admin",
                &registry,
                &RegistryMsg::UpdatePolicy {
                    policy: self.1.clone(),
                },
            )
            .accepted();
    }
}

/// Waits until B holds a pending request of `clinician_id` (relayed from A).
fn wait_received(devnet: &Devnet, clinician_id: &str) {
    let exchange = devnet.contract(B, "exchange");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let pending: Value = devnet
            .query(B, &exchange, &json!({"pending_incoming": {"limit": 100}}))
            .unwrap();
        let here = pending["requests"]
            .as_array()
            .is_some_and(|r| r.iter().any(|q| q["body"]["clinician_id"] == clinician_id));
        if here {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the request never reached B"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Waits until the reply service's `log` shows `needle`; its text.
fn wait_log(log: &Path, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let all = std::fs::read_to_string(log).unwrap_or_default();
        if all.contains(needle) {
            return all;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} in the reply service's log:\n{all}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// `ehrx reply-service --once` of `site` until its log (appended to `log`) shows `needle`;
/// each pass answers what is pending and sends one more batch of each reply under way.
fn pass_until(devnet: &Devnet, site: &Site, log: &Path, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let out = Command::new(ehrx_bin(devnet))
            .args(["--config", config(site), "reply-service", "--once"])
            .env("PATH", path_without_wasmd())
            .output()
            .unwrap();
        let mut all = std::fs::read_to_string(log).unwrap_or_default();
        all.push_str(&text(&out));
        std::fs::write(log, &all).unwrap();
        if all.contains(needle) {
            return all;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} in the reply service's passes:\n{all}"
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// A history of about 5 MiB that does not compress (scanned documents): 8 MiB sealed, 64
/// chunks, 16 transactions of the reply service (several seconds of sending, during which a
/// revocation lands).
fn scanned_bundle(given: &str, family: &str, ssn: &str) -> Value {
    use base64::Engine as _;
    use rand_core::RngCore as _;
    let mut scan = vec![0u8; 5 * 1024 * 1024];
    rand_core::OsRng.fill_bytes(&mut scan);
    json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:3f1e5d7c-2b4a-4c6e-9f8d-7a6b5c4d3e01",
             "resource": {"resourceType": "Patient", "id": "p1",
                "name": [{"given": [given], "family": family}], "birthDate": "1968-04-17",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": ssn}]}},
            {"fullUrl": "urn:uuid:3f1e5d7c-2b4a-4c6e-9f8d-7a6b5c4d3e02",
             "resource": {"resourceType": "DocumentReference", "id": "scan1", "status": "current",
                "subject": {"reference": "urn:uuid:3f1e5d7c-2b4a-4c6e-9f8d-7a6b5c4d3e01"},
                "content": [{"attachment": {"contentType": "application/pdf",
                    "data": base64::engine::general_purpose::STANDARD.encode(&scan)}}]}}
        ]
    })
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn a_deny_for_one_purpose_holds_and_a_consent_revoked_mid_reply_stops_it() {
    let devnet = Devnet::get();
    let root = std::env::temp_dir().join(format!("ehrx-revoke-{}", run_id()));
    std::fs::create_dir_all(&root).unwrap();
    let family = format!("{}x", family_of_this_run());
    let (store_site, _) = site(devnet, &root, B, "revoke-b-store", &[Role::Store]);
    let (reply_site, _) = site(devnet, &root, B, "revoke-b-reply", &[Role::Reply]);
    let (privacy_site, _) = site(devnet, &root, B, "revoke-b-privacy", &[Role::Privacy]);
    let (home_site, _) = site(devnet, &root, A, "revoke-a-home", &[Role::Request]);
    let details = root.join("patient.json");
    std::fs::write(
        &details,
        json!({"given": "Ngozi", "family": family, "birth_date": "1968-04-17", "ssn": "212-45-6755"}).to_string(),
    )
    .unwrap();
    let bundle = root.join("scan.json");
    std::fs::write(
        &bundle,
        scanned_bundle("Ngozi", &family, "212-45-6755").to_string(),
    )
    .unwrap();
    let stored = store(devnet, &store_site, &bundle, &details);
    let report: Value = serde_json::from_slice(&stored.stdout).unwrap();
    assert_eq!(report["chunks"], 64, "{}", text(&stored));

    let record = |args: &[&str]| {
        let mut all = vec![
            "--config",
            config(&privacy_site),
            "consent",
            "record",
            "--demographics",
        ];
        all.push(details.to_str().unwrap());
        all.extend_from_slice(args);
        let out = ehrx(devnet, &all);
        assert!(out.status.success(), "consent record: {}", text(&out));
    };
    // The patient refuses sharing for treatment (any partner); emergencies are not named.
    record(&["--decision", "deny", "--purpose", "treatment"]);

    let (id, key, _) = register_clinician(
        devnet,
        &home_site,
        &format!("dr-rv-{}", run_id()),
        &["--purpose", "treatment,emergency-treatment"],
    );
    let clinician = (id, key);
    let log = reply_site.dir.join("passes.log");

    // 1. For treatment: refused by the deny for that purpose (sealed ConsentDenied, exit 4).
    let spawn = |name: &str, purpose: &str| {
        let (requester, _) = site(devnet, &root, A, name, &[Role::Request]);
        let out = requester.dir.join("history.json");
        let mut args = request_args(&requester.config, B, &clinician.0, &details, &out, 30);
        let at = args.iter().position(|a| a == "--purpose").unwrap() + 1;
        args[at] = purpose.to_string();
        let child = Command::new(ehrx_bin(devnet))
            .args(&args)
            .args(["--clinician-key", clinician.1.to_str().unwrap()])
            .env("PATH", path_without_wasmd())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (child, out)
    };
    let log_file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let _service = KillOnDrop(
        Command::new(ehrx_bin(devnet))
            .args(["--config", config(&reply_site), "reply-service"])
            .env("PATH", path_without_wasmd())
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap(),
    );
    let (treat, treat_out) = spawn("revoke-a-treat", "treatment");
    wait_log(&log, "declined:ConsentDenied");
    let treat = treat.wait_with_output().unwrap();
    assert_eq!(treat.status.code(), Some(4), "treatment: {}", text(&treat));
    assert!(!treat_out.exists());

    // 2. For emergency treatment the deny does not apply: the reply begins (4 of its 64
    //    chunks a transaction)...
    let (emergency, emergency_out) = spawn("revoke-a-emergency", "emergency-treatment");
    wait_log(&log, "/64 chunks sent");
    // ...then the patient refuses every sharing, while the reply is under way...
    record(&["--decision", "deny"]);
    // ...and the custodian's chain refuses the rest: no more chunks leave.
    let passes = wait_log(&log, "reply refused by the contract (ConsentDenied");
    assert!(!passes.contains("answered records"), "{passes}");
    let emergency = emergency.wait_with_output().unwrap();
    assert!(
        !emergency.status.success(),
        "the requester got a history: {}",
        text(&emergency)
    );
    assert!(!emergency_out.exists(), "no history written");
}
