//! Break-glass (issue 12): a clinician's emergency claim, signed in the request, checked on
//! the requesting chain (reason, purpose, the credential's permission) and on the custodian's
//! (reason, purpose, its policy's time box), audited as its own step on both; an optional
//! co-signature by a second clinician, whose absence a sweep audits once.

use cosmwasm_std::{to_json_binary, IbcTimeout, StdAck, Timestamp};
use ehr_protocol::audit::{AuditAction, AuditEntry, AuditOutcome};
use ehr_protocol::consent::{BreakGlass, EmergencyReason};
use ehr_protocol::exchange::{BreakGlassGrant, CosignMsg, ExecuteMsg, PurposeOfUse, RequestStatus};
use ehr_protocol::limits::PACKET_VERSION;
use ehr_protocol::packet::{ExchangePacket, RequestBody, RequestPacket};
use ehr_protocol::registry::{Policy, Role};
use ehr_protocol::signing::request_sign_bytes;
use ehr_protocol::ErrorCode;
use ehr_tests::harness::peer::{custodian_key, seal, TestClinician};
use ehr_tests::harness::relayer::Relayer;
use ehr_tests::harness::scenario::REQUEST_TTL;
use ehr_tests::harness::{ExchangeResult, TwoHospitals};

const REASON: EmergencyReason = EmergencyReason::LifeThreatening;

fn break_glass_entries(audit: &[AuditEntry], id: &str) -> Vec<AuditEntry> {
    audit
        .iter()
        .filter(|e| e.action == AuditAction::BreakGlass && e.request_id.as_deref() == Some(id))
        .cloned()
        .collect()
}

#[test]
fn an_emergency_request_with_a_reason_is_accepted_and_audited_on_both_chains_with_its_time_box() {
    let mut net = TwoHospitals::new();
    let doctor = net.a.add_break_glass_clinician("dr-emergency");
    let (id, result) = net.request_break_glass(&doctor, Some(REASON));
    result.accepted();
    let sent = net.a.request(&id);
    assert_eq!(sent.break_glass, Some(REASON));
    assert_eq!(sent.purpose, PurposeOfUse::EmergencyTreatment);
    assert_eq!(sent.cosign_due, None, "no co-signature asked by default");

    // A: the request and, apart, the emergency access with its coded reason.
    let audit = net.a.audit();
    assert!(
        audit
            .iter()
            .any(|e| e.action == AuditAction::RequestSubmitted
                && e.request_id.as_deref() == Some(&id))
    );
    let on_a = break_glass_entries(&audit, &id);
    assert_eq!(on_a.len(), 1);
    assert_eq!(on_a[0].outcome, AuditOutcome::Success);
    assert_eq!(on_a[0].clinician_id.as_deref(), Some("dr-emergency"));
    assert_eq!(on_a[0].purpose, Some(PurposeOfUse::EmergencyTreatment));
    assert_eq!(on_a[0].partner_id.as_deref(), Some("hospital-b"));
    assert_eq!(on_a[0].subject.as_deref(), Some("life_threatening"));

    // B: accepted, with a time box of its own policy from receipt.
    let received_at = net.b.now();
    let acks = net.relay_requests();
    assert!(acks[0].ack.is_success(), "{acks:?}");
    let incoming = net.b.incoming("hospital-a", &id).unwrap();
    assert_eq!(
        incoming.break_glass,
        Some(BreakGlassGrant {
            reason: REASON,
            window_ends: received_at + Policy::default().break_glass_window_secs,
        })
    );
    assert_eq!(Policy::default().break_glass_window_secs, 900);
    let on_b = break_glass_entries(&net.b.audit(), &id);
    assert_eq!(on_b.len(), 1);
    assert_eq!(on_b[0].clinician_id.as_deref(), Some("dr-emergency"));
    assert_eq!(on_b[0].partner_id.as_deref(), Some("hospital-a"));
    assert_eq!(on_b[0].subject.as_deref(), Some("life_threatening"));
}

#[test]
fn a_claim_without_a_reason_is_refused_reason_required_struck_and_nothing_is_stored_or_sent() {
    let mut net = TwoHospitals::new();
    let doctor = net.a.add_break_glass_clinician("dr-emergency");
    let (id, result) = net.request_break_glass(&doctor, None);
    assert_eq!(result.rejection(), "ReasonRequired");
    assert!(!net.a.has_request(&id));
    assert!(net.a.outbox.borrow().history.is_empty(), "no packet left");
    assert!(break_glass_entries(&net.a.audit(), &id).is_empty());
    let last = net.a.audit();
    assert!(last
        .iter()
        .any(|e| e.action == AuditAction::RequestSubmitted
            && e.reason == Some(ErrorCode::ReasonRequired)));
    assert_eq!(net.a.peer(&net.requester.address).unwrap().strikes, 1);
}

#[test]
fn break_glass_needs_the_credentials_permission_and_the_emergency_purpose() {
    let mut net = TwoHospitals::new();
    // dr-adams may ask for every purpose, but holds no break-glass permission.
    let ordinary = std::mem::replace(&mut net.a.clinician, TestClinician::new("x"));
    let (id, result) = net.request_break_glass(&ordinary, Some(REASON));
    assert_eq!(result.rejection(), "BreakGlassNotAllowed");
    assert!(!net.a.has_request(&id));
    // A clinician allowed break-glass, but for ordinary treatment.
    let doctor = net.a.add_break_glass_clinician("dr-emergency");
    let msg = net.break_glass_msg(
        &net.requester,
        &doctor,
        PurposeOfUse::Treatment,
        Some(REASON),
    );
    let id = msg.request_id.clone();
    assert_eq!(
        net.a.submit_request(&net.requester, msg).rejection(),
        "BreakGlassNotAllowed"
    );
    assert!(!net.a.has_request(&id));
    assert!(net.a.outbox.borrow().history.is_empty());
    assert_eq!(net.a.peer(&net.requester.address).unwrap().strikes, 2);
}

/// A request packet as A would send it, signed by `clinician` (crafted, delivered to B).
fn packet(clinician: &TestClinician, body: RequestBody) -> cosmwasm_std::Binary {
    let signature = clinician.sign(&request_sign_bytes(&body));
    to_json_binary(&ExchangePacket::Request(RequestPacket {
        body,
        signer_pubkey: clinician.pubkey(),
        signature,
    }))
    .unwrap()
}

fn body(net: &TwoHospitals, purpose: PurposeOfUse, claim: Option<BreakGlass>) -> RequestBody {
    let now = net.b.now();
    RequestBody {
        version: PACKET_VERSION,
        request_id: net.requester.request_id(),
        source_network: "hospital-a".into(),
        destination_network: "hospital-b".into(),
        requester: net.requester.address.to_string(),
        requester_role: Role::Request,
        clinician_id: net.a.clinician.id.clone(),
        purpose,
        sealed_patient: seal(&custodian_key("hospital-b"), &net.patient.details()).into(),
        reply_encryption_key: net.requester.encryption_key.to_vec().into(),
        issued_at: now,
        expires_at: now + REQUEST_TTL,
        break_glass: claim,
    }
}

fn deliver(net: &mut TwoHospitals, data: cosmwasm_std::Binary, sequence: u64) -> StdAck {
    let link = net.ab.clone();
    let timeout = IbcTimeout::with_timestamp(Timestamp::from_seconds(net.b.now() + 600));
    Relayer::inject(&mut net.b, &link, data, sequence, timeout)
}

#[test]
fn the_custodian_checks_the_claim_itself_before_any_write() {
    let mut net = TwoHospitals::new();
    let clinician = std::mem::replace(&mut net.a.clinician, TestClinician::new("x"));
    let claim = |reason| Some(BreakGlass { reason });
    let cases = [
        (
            body(&net, PurposeOfUse::EmergencyTreatment, claim(None)),
            "ReasonRequired",
        ),
        (
            body(&net, PurposeOfUse::Treatment, claim(Some(REASON))),
            "BreakGlassNotAllowed",
        ),
    ];
    for (n, (body, code)) in cases.into_iter().enumerate() {
        let id = body.request_id.clone();
        let ack = deliver(&mut net, packet(&clinician, body), 70 + n as u64);
        assert_eq!(ack, StdAck::error(format!("ehrx:{code}")));
        assert!(net.b.incoming("hospital-a", &id).is_none());
        let last = net.b.audit().pop().unwrap();
        assert_eq!(last.action, AuditAction::RequestReceived);
        assert_eq!(last.reason.as_ref().map(ErrorCode::name), Some(code));
    }
    assert!(net.b.pending_incoming().is_empty());
    // A v2 packet is refused as such.
    let mut old = body(&net, PurposeOfUse::Treatment, None);
    old.version = 2;
    let ack = deliver(&mut net, packet(&clinician, old), 80);
    assert_eq!(ack, StdAck::error("ehrx:UnsupportedVersion"));
}

#[test]
fn a_custodian_whose_policy_accepts_no_break_glass_answers_with_an_error_ack() {
    let mut net = TwoHospitals::with_policy(Policy {
        break_glass_window_secs: 0,
        ..Policy::default()
    });
    let doctor = net.a.add_break_glass_clinician("dr-emergency");
    let (id, result) = net.request_break_glass(&doctor, Some(REASON));
    result.accepted();
    let acks = net.relay_requests();
    assert_eq!(acks[0].ack, StdAck::error("ehrx:BreakGlassNotAllowed"));
    assert!(net.b.incoming("hospital-a", &id).is_none());
    assert!(break_glass_entries(&net.b.audit(), &id).is_empty());
    let request = net.a.request(&id);
    assert_eq!(request.status, RequestStatus::Rejected);
    assert_eq!(request.reason, Some(ErrorCode::BreakGlassNotAllowed));
    // Nothing received over IBC strikes anyone.
    assert_eq!(net.a.peer(&net.requester.address).unwrap().strikes, 0);
}

fn cosigning() -> (TwoHospitals, TestClinician, TestClinician) {
    let mut net = TwoHospitals::with_policy(Policy {
        break_glass_cosign_secs: 300,
        ..Policy::default()
    });
    let doctor = net.a.add_break_glass_clinician("dr-emergency");
    let second = net.a.add_break_glass_clinician("dr-second");
    (net, doctor, second)
}

fn cosign(net: &mut TwoHospitals, id: &str, by: &TestClinician) -> ExchangeResult {
    let msg = ExecuteMsg::CosignBreakGlass(CosignMsg {
        request_id: id.to_string(),
        clinician_id: by.id.clone(),
        signature: by.cosign("hospital-a", id),
    });
    let sender = net.requester.address.clone();
    net.a.execute(&sender, &msg)
}

#[test]
fn a_second_clinician_co_signs_in_time_and_the_requesting_clinician_cannot_co_sign() {
    let (mut net, doctor, second) = cosigning();
    let (id, result) = net.request_break_glass(&doctor, Some(REASON));
    result.accepted();
    assert_eq!(net.a.request(&id).cosign_due, Some(net.a.now() + 300));

    assert_eq!(cosign(&mut net, &id, &doctor).rejection(), "NotAuthorized");
    // A signature over another request's bytes does not co-sign this one.
    let forged = ExecuteMsg::CosignBreakGlass(CosignMsg {
        request_id: id.clone(),
        clinician_id: second.id.clone(),
        signature: second.cosign("hospital-a", "some-other-request-0001"),
    });
    let sender = net.requester.address.clone();
    assert_eq!(net.a.execute(&sender, &forged).rejection(), "BadSignature");
    assert_eq!(net.a.request(&id).cosigned_by, None);

    net.advance(299);
    cosign(&mut net, &id, &second).accepted();
    assert_eq!(net.a.request(&id).cosigned_by.as_deref(), Some("dr-second"));
    let audit = net.a.audit();
    let cosigned: Vec<_> = audit
        .iter()
        .filter(|e| e.action == AuditAction::BreakGlassCosigned)
        .collect();
    assert_eq!(cosigned.len(), 3, "two refusals and the co-signature");
    let ok = cosigned.last().unwrap();
    assert_eq!(ok.outcome, AuditOutcome::Success);
    assert_eq!(ok.request_id.as_deref(), Some(id.as_str()));
    assert_eq!(ok.subject.as_deref(), Some("dr-second"));

    // Co-signed: a sweep past the due time finds nothing missing.
    net.advance(10);
    let keeper = net.a.addr("keeper");
    net.a.sweep(&keeper, None);
    assert!(!net
        .a
        .audit()
        .iter()
        .any(|e| e.action == AuditAction::BreakGlassCosignMissing));
}

#[test]
fn a_late_co_signature_is_refused_expired_without_a_strike() {
    let (mut net, doctor, second) = cosigning();
    let (id, result) = net.request_break_glass(&doctor, Some(REASON));
    result.accepted();
    // An ordinary request has nothing to co-sign.
    net.advance(61);
    let (plain, result) = net.request();
    result.accepted();
    assert_eq!(
        cosign(&mut net, &plain, &second).rejection(),
        "UnknownRequest"
    );

    net.advance(300);
    assert_eq!(
        cosign(&mut net, &id, &second).rejection(),
        "BreakGlassExpired"
    );
    assert_eq!(net.a.request(&id).cosigned_by, None);
    // Neither a request without a co-signature nor a late one is the peer's offence.
    assert_eq!(net.a.peer(&net.requester.address).unwrap().strikes, 0);
}

#[test]
fn a_missing_co_signature_is_audited_once_by_the_sweep() {
    let (mut net, doctor, _second) = cosigning();
    let (id, result) = net.request_break_glass(&doctor, Some(REASON));
    result.accepted();
    let keeper = net.a.addr("keeper");
    let missing = |net: &TwoHospitals| -> Vec<AuditEntry> {
        net.a
            .audit()
            .into_iter()
            .filter(|e| e.action == AuditAction::BreakGlassCosignMissing)
            .collect()
    };
    // Not yet due.
    net.advance(299);
    net.a.sweep(&keeper, None);
    assert!(missing(&net).is_empty());
    net.advance(1);
    let response = net.a.sweep(&keeper, None);
    assert_eq!(
        ehr_tests::harness::chain::wasm_attr(&response, "cosign_missing").as_deref(),
        Some("1")
    );
    let entries = missing(&net);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].outcome, AuditOutcome::Rejected);
    assert_eq!(entries[0].request_id.as_deref(), Some(id.as_str()));
    assert_eq!(entries[0].clinician_id.as_deref(), Some("dr-emergency"));
    // Once: later sweeps do not repeat it; the request itself goes on.
    net.advance(60);
    net.a.sweep(&keeper, None);
    assert_eq!(missing(&net).len(), 1);
    assert_eq!(net.a.request(&id).status, RequestStatus::Pending);
}
