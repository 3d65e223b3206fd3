//! No PHI in clear on any ledger: after full exchanges (and refusals), the test patients'
//! names, dates of birth and SSNs appear nowhere in contract state, events, packets or acks.

use ehr_tests::harness::relayer::Relayer;
use ehr_tests::harness::{Patient, TwoHospitals};

fn phi_of(patient: &Patient) -> Vec<String> {
    let ssn_digits: String = patient.ssn.chars().filter(|c| c.is_ascii_digit()).collect();
    vec![
        patient.given.to_string(),
        patient.family.to_string(),
        patient.given.to_lowercase(),
        patient.family.to_lowercase(),
        patient.birth_date.to_string(),
        patient.birth_date.replace('-', ""),
        patient.ssn.to_string(),
        ssn_digits,
    ]
}

fn assert_clean(haystack: &[u8], what: &str, patients: &[&Patient]) {
    let text = String::from_utf8_lossy(haystack);
    for patient in patients {
        for needle in phi_of(patient) {
            assert!(!text.contains(&needle), "PHI {needle:?} found in {what}");
            // Binary fields travel base64 in JSON: look for the encoded form too.
            let b64 = cosmwasm_std::Binary::from(needle.as_bytes()).to_base64();
            let b64 = b64.trim_end_matches('=');
            assert!(
                b64.len() < 4 || !text.contains(b64),
                "PHI {needle:?} (base64) found in {what}"
            );
        }
    }
}

#[test]
fn no_phi_in_state_events_packets_or_acks_after_full_exchanges() {
    let mut net = TwoHospitals::new();
    let id = net.full_exchange();
    let requester = std::mem::replace(&mut net.requester, net.a.outsider("x"));
    net.a.retrieve(&requester, &id).accepted();

    // A request for a patient B does not know, answered "no records", adds to the mix.
    let stranger = Patient::new("Jürgen", "Müller-Lüdenscheidt", "1955-11-30", "123-45-6780");
    net.advance(61);
    let original = std::mem::replace(&mut net.patient, stranger);
    let (unknown, result) = net.request_from(&requester);
    result.accepted();
    let acks = net.relay_requests();
    assert!(acks[0].ack.is_success());
    net.answer(&unknown).accepted();
    net.relay_replies();
    let stranger = std::mem::replace(&mut net.patient, original);

    // Sanity: the scan finds PHI where it is (the decrypted bundle), so it can fail.
    let bundle = net.patient.fhir_bundle();
    let caught = std::panic::catch_unwind(|| assert_clean(&bundle, "bundle", &[&net.patient]));
    assert!(caught.is_err(), "scanner must detect PHI in clear");

    let patients = [&net.patient, &stranger];
    for chain in [&net.a, &net.b] {
        assert_clean(
            &chain.dump_state(),
            &format!("{} contract state", chain.network_id),
            &patients,
        );
        let events = serde_json::to_vec(&chain.events).unwrap();
        assert_clean(&events, &format!("{} events", chain.network_id), &patients);
        for packet in chain.outbox.borrow().history.iter() {
            assert_clean(&packet.data, "packet", &patients);
        }
        let audit = serde_json::to_vec(&chain.audit()).unwrap();
        assert_clean(&audit, "audit log", &patients);
    }
    for ack in acks {
        assert_clean(&ack.ack.to_binary(), "ack", &patients);
    }
    assert!(Relayer::pending(&net.a, &net.ab).is_empty());
}
