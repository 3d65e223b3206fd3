//! The tests' independent validator and test histories (issue 9): the HAPI FHIR validator
//! harness accepts the generated histories and refuses each invalid fixture where expected.
//!
//! These need the harness and Synthea, built by `scripts/install-tools.sh fhir-validator
//! synthea` (Java 17 and Maven; seconds with a warm Maven cache), so they are `#[ignore]`d:
//! the unit stage of scripts/test.sh runs without them. Run them with
//!
//!     cargo test -p ehr-tests --test fhir_tools -- --ignored
//!
//! The first run generates the histories (Synthea, ~20 s) into ~/.cache/ehrx-histories; the
//! validation of the four in one JVM takes ~25 s.

use std::path::{Path, PathBuf};

use ehr_tests::fhir_tools::{
    bundle_resources, hapi_validate, history, FileReport, HistoryKind, Severity,
};

const NEEDS: &str =
    "needs the HAPI harness and Synthea: scripts/install-tools.sh fhir-validator synthea";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/fhir")
        .join(name)
}

#[test]
#[ignore = "needs the HAPI harness and Synthea: scripts/install-tools.sh fhir-validator synthea"]
fn generated_histories_are_valid_r4() {
    let paths: Vec<PathBuf> = HistoryKind::ALL
        .iter()
        .map(|&k| history(k).expect(NEEDS))
        .collect();
    let sizes: Vec<usize> = paths
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len() as usize)
        .collect();
    let [small, mid, large, attachments] = sizes[..] else {
        unreachable!()
    };
    assert!(
        (5_000..=10 * 1024).contains(&small),
        "Small10K is {small} bytes"
    );
    assert!(
        (900 * 1024..=1024 * 1024).contains(&mid),
        "Mid1M is {mid} bytes"
    );
    assert!(large >= 5 * 1024 * 1024, "Large5M is {large} bytes");
    assert!(
        attachments >= 5 * 1024 * 1024,
        "Attachments5M is {attachments} bytes"
    );
    for p in &paths {
        let resources = bundle_resources(&std::fs::read(p).unwrap()).unwrap();
        assert_eq!(resources[0].0, "Patient", "{}", p.display());
        for ty in ["Encounter", "Condition", "Observation"] {
            assert!(
                resources.iter().any(|(t, _)| t == ty),
                "{} has no {ty}",
                p.display()
            );
        }
    }
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    for report in hapi_validate(&refs).unwrap() {
        assert_eq!(
            report.errors().count(),
            0,
            "{}:\n{}",
            report.path.display(),
            report.error_lines()
        );
        println!(
            "{}: 0 errors, {} warnings, {} ms",
            report.path.display(),
            report.count(Severity::Warning),
            report.millis
        );
    }
}

/// A fixture, the normalised location of its error, the message id and the line and column
/// when they are checked.
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<(u32, u32)>,
);

/// The control fixture is valid; each invalid fixture gets an error (or a fatal) at the
/// expected normalised location, with the expected message id where HAPI gives one.
#[test]
#[ignore = "needs the HAPI harness and Synthea: scripts/install-tools.sh fhir-validator synthea"]
fn each_class_of_error_is_refused_at_its_location() {
    let cases: [Case; 5] = [
        (
            "invalid/missing-required.json",
            "Bundle.entry[1].resource",
            Some("Validation_VAL_Profile_Minimum"),
            None,
        ),
        (
            "invalid/wrong-cardinality.json",
            "Bundle.entry[1].resource.subject",
            None,
            None,
        ),
        (
            "invalid/wrong-type.json",
            "Bundle.entry[0].resource.deceased",
            Some("Type_Specific_Checks_DT_Boolean_Value"),
            None,
        ),
        (
            "invalid/unresolvable-reference.json",
            "Bundle.entry[1].resource.subject",
            Some("Reference_REF_CantResolve"),
            None,
        ),
        (
            "invalid/malformed.json",
            "(file)",
            Some("harness"),
            Some((6, 6)),
        ),
    ];
    let mut paths = vec![fixture("valid.json")];
    paths.extend(cases.iter().map(|c| fixture(c.0)));
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let reports: Vec<FileReport> = hapi_validate(&refs).expect(NEEDS);
    assert_eq!(
        reports[0].errors().count(),
        0,
        "valid.json:\n{}",
        reports[0].error_lines()
    );
    for ((file, location, id, at), report) in cases.iter().zip(&reports[1..]) {
        let hit = report.errors().find(|i| {
            i.normalised_location() == *location
                && id.is_none_or(|id| i.id.as_deref() == Some(id))
                && at.is_none_or(|(l, c)| (i.line, i.col) == (l, c))
        });
        assert!(
            hit.is_some(),
            "{file}: no error at {location} ({id:?}, {at:?}); the errors:\n{}",
            report.error_lines()
        );
    }
}

/// What the peer tool exports (tests/fixtures/fhir/export, kept current by the `ehrx` unit
/// tests `audit_fixture_is_current` and `consent_fixtures_are_current`): an AuditEvent of
/// every audit action with and without patient, clinician, reason, partner and packet, the
/// patient access report, and a Consent of each shape (permit, deny per partner, per purpose,
/// per category with the break-glass nested permit, revoked; and the contained-Patient form
/// of the import). Each is valid R4 with no error under the HAPI validator; the warnings
/// that remain are the ones docs/FHIR-EXPORT.md explains, and no other.
///
/// Against base R4 only: the harness loads no IG package (it runs offline, and the IHE BALP
/// package `ihe.iti.balp` is not in the tool cache), so the BALP profiles are not checked
/// here; the BALP patterns are asserted by the `ehrx` unit tests.
#[test]
#[ignore = "needs the HAPI harness: scripts/install-tools.sh fhir-validator"]
fn exported_audit_events_and_consents_are_valid_r4() {
    let dir = fixture("export");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/fhir/export")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "audit-events.json",
        "patient-access-report.json",
        "consent-permit.json",
        "consent-deny-per-partner.json",
        "consent-deny-per-purpose.json",
        "consent-deny-per-category-break-glass.json",
        "consent-revoked.json",
        "consent-import-contained-patient.json",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} is missing");
    }
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let reports = hapi_validate(&refs).expect(NEEDS);
    // The warnings explained in docs/FHIR-EXPORT.md, by message id and what they are about.
    let accepted = |i: &ehr_tests::fhir_tools::Issue| -> bool {
        let m = i.message.as_str();
        match i.id.as_deref() {
            // Unknown code systems offline: LOINC, and BALP's own (its IG is not loaded).
            Some("Terminology_PassThrough_TX_Message") => {
                m.contains("http://loinc.org")
                    || m.contains("https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType")
            }
            // BALP's subtypes (ISO 21089 lifecycle, BALP AuthZ) are outside R4's extensible
            // audit-event-sub-type value set.
            Some("Terminology_TX_NoValid_13") => {
                m.contains("'Audit Event Sub-Type'")
                    && (m.contains("iso-21089-lifecycle#")
                        || m.contains("BALP/CodeSystem/AuthZsubType#"))
            }
            // v3-ActCode OPTIN / OPTOUT / OPTOUTE are outside R4's extensible consent-policy
            // value set.
            Some("Terminology_TX_NoValid_2_CC") => m.contains("'Consent PolicyRule Codes'"),
            _ => false,
        }
    };
    let mut total = (0, 0);
    for report in &reports {
        assert_eq!(
            report.errors().count(),
            0,
            "{}:\n{}",
            report.path.display(),
            report.error_lines()
        );
        let warnings: Vec<_> = report
            .issues
            .iter()
            .filter(|i| i.severity == Severity::Warning)
            .collect();
        for w in &warnings {
            assert!(
                accepted(w),
                "{}: a warning not explained in docs/FHIR-EXPORT.md: {}: {} [{}]",
                report.path.display(),
                w.location,
                w.message,
                w.id.as_deref().unwrap_or("-")
            );
        }
        total.0 += warnings.len();
        total.1 += report.count(Severity::Information);
        println!(
            "{}: 0 errors, {} warnings, {} information, {} ms",
            report.path.file_name().unwrap().to_string_lossy(),
            warnings.len(),
            report.count(Severity::Information),
            report.millis
        );
    }
    println!(
        "{} files: 0 errors, {} warnings (all explained), {} information",
        reports.len(),
        total.0,
        total.1
    );
}
