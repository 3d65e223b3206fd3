//! Consent on the custodian's chain (issue 12): the privacy office records a patient's
//! directives under the custodian's pseudonym; a reply that declares what it releases is
//! decided against them at `SubmitReply` and again at every later chunk. A refusal stays on
//! the custodian's chain (the requester learns it only sealed in the reply), and the
//! requesting chain never holds the pseudonym.

use ehr_protocol::audit::{AuditAction, AuditEntry, AuditOutcome};
use ehr_protocol::consent::{
    ConsentDecision, ConsentDirectiveInput, ConsentOutcome, DirectiveStatus, EmergencyReason,
    RecordCategory,
};
use ehr_protocol::exchange::{
    ConsentDirectivesResponse, Disclosure, IncomingStatus, PurposeOfUse, QueryMsg, RequestStatus,
    SubmitReplyChunksMsg,
};
use ehr_protocol::packet::{frame, SealedOutcome};
use ehr_protocol::registry::{AuditLogResponse, Policy, Role};
use ehr_protocol::ErrorCode;
use ehr_tests::harness::peer::{open_outcome, seal_history, sealed_outcome, sealed_records};
use ehr_tests::harness::relayer::Relayer;
use ehr_tests::harness::scenario::{link_partners, REQUEST_TTL};
use ehr_tests::harness::{Chain, TwoHospitals};

/// A request from A pending on B; its id.
fn pending(net: &mut TwoHospitals) -> String {
    let (id, result) = net.request();
    result.accepted();
    assert!(net.relay_requests()[0].ack.is_success());
    id
}

/// A break-glass request from A pending on B; its id.
fn pending_break_glass(net: &mut TwoHospitals) -> String {
    let doctor = net.a.add_break_glass_clinician("dr-emergency");
    let (id, result) = net.request_break_glass(&doctor, Some(EmergencyReason::LifeThreatening));
    result.accepted();
    assert!(net.relay_requests()[0].ack.is_success());
    id
}

fn decisions(net: &TwoHospitals, id: &str) -> Vec<AuditEntry> {
    net.b
        .audit()
        .into_iter()
        .filter(|e| e.action == AuditAction::ConsentDecision && e.request_id.as_deref() == Some(id))
        .collect()
}

fn directives(net: &TwoHospitals, patient: &str) -> ConsentDirectivesResponse {
    net.b
        .query_exchange(&QueryMsg::ConsentDirectives {
            patient: patient.to_string(),
            start_after: None,
            limit: None,
        })
        .unwrap()
}

fn strikes(net: &TwoHospitals, peer: &cosmwasm_std::Addr) -> u32 {
    net.b.peer(peer).unwrap().strikes
}

/// A denied release: soft-rejected `ConsentDenied` without a strike, nothing sent, the
/// request still pending on B, the decision audited with the directive that decided.
fn assert_denied(net: &TwoHospitals, id: &str, directive_id: &str) {
    assert!(
        Relayer::pending(&net.b, &net.ab.reverse()).is_empty(),
        "nothing left B"
    );
    let incoming = net.b.incoming("hospital-a", id).unwrap();
    assert_eq!(incoming.status, IncomingStatus::Pending);
    assert_eq!(strikes(net, &net.responder.address), 0);
    let decision = decisions(net, id).pop().expect("a consent decision");
    assert_eq!(decision.outcome, AuditOutcome::Rejected);
    assert_eq!(decision.reason, Some(ErrorCode::ConsentDenied));
    assert_eq!(decision.directive_id.as_deref(), Some(directive_id));
    assert_eq!(
        decision.patient.as_deref(),
        Some(net.patient.token.as_str())
    );
    assert_eq!(decision.partner_id.as_deref(), Some("hospital-a"));
    let incoming = net.b.incoming("hospital-a", id).unwrap();
    assert_eq!(decision.clinician_id, Some(incoming.body.clinician_id));
    assert_eq!(decision.purpose, Some(incoming.body.purpose));
    assert_eq!(decision.request_id.as_deref(), Some(id));
}

#[test]
fn a_deny_for_one_partner_refuses_it_and_a_third_partner_stays_permitted() {
    let mut net = TwoHospitals::new();
    // Hospital C asks B too (B opens the channel: the lower network id).
    let mut c = Chain::new("hospc", "hospital-c");
    let bc = link_partners(&mut net.b, &mut c);
    let c_requester = c.add_peer("c-req", &[Role::Request]);

    let mut deny_a = net.directive(ConsentDecision::Deny);
    deny_a.partners = vec!["hospital-a".into()];
    net.record_consent(deny_a.clone()).accepted();

    let from_a = pending(&mut net);
    let record = net.record_id.clone();
    let result = net.answer_with_disclosure(&from_a, std::slice::from_ref(&record));
    assert_eq!(result.rejection(), "ConsentDenied");
    assert_denied(&net, &from_a, &deny_a.directive_id);

    // The reply service still answers A, sealed: declined, releasing nothing.
    let declined = sealed_outcome(
        &net.requester.encryption_key,
        &SealedOutcome::Declined {
            code: ErrorCode::ConsentDenied,
        },
    );
    net.answer_sealed_with_disclosure(&from_a, declined, &[])
        .accepted();
    assert!(net.relay_replies()[0].ack.is_success());
    let retrieved = net.a.retrieve(&net.requester, &from_a).accepted();
    let reply = Chain::retrieved_reply(&retrieved);
    let (outcome, _) =
        open_outcome(&net.requester.encryption_key, &net.a.reply_chunks(&reply)).unwrap();
    assert_eq!(
        outcome,
        SealedOutcome::Declined {
            code: ErrorCode::ConsentDenied
        }
    );

    // C is not named by the directive: its request is answered with the records.
    let from_c = c_requester.request_id();
    let msg = c_requester.request_msg(
        &from_c,
        "hospital-c",
        "hospital-b",
        &c.clinician,
        &net.patient,
        c.now(),
        REQUEST_TTL,
    );
    c.submit_request(&c_requester, msg).accepted();
    assert!(Relayer::relay(&mut c, &mut net.b, &bc.reverse())[0]
        .ack
        .is_success());
    let outcome = sealed_records(&c_requester.encryption_key, b"{\"for\":\"c\"}");
    let body = net.responder.reply_body(
        &from_c,
        "hospital-c",
        "hospital-b",
        &c_requester.encryption_key,
        &outcome,
        net.b.now(),
    );
    let mut reply = net.responder.reply_msg(&body, &outcome);
    reply.disclosure = Some(Disclosure {
        patient: net.patient.token.clone(),
        record_ids: vec![record],
    });
    net.b.submit_reply(&net.responder, reply).accepted();
    let decision = net
        .b
        .audit()
        .into_iter()
        .rfind(|e| e.action == AuditAction::ConsentDecision)
        .unwrap();
    assert_eq!(decision.outcome, AuditOutcome::Success);
    assert_eq!(decision.partner_id.as_deref(), Some("hospital-c"));
    assert!(Relayer::relay(&mut net.b, &mut c, &bc)[0].ack.is_success());
    assert_eq!(c.request(&from_c).status, RequestStatus::Answered);
}

#[test]
fn a_deny_per_purpose_refuses_only_that_purpose() {
    let mut net = TwoHospitals::new();
    let mut deny = net.directive(ConsentDecision::Deny);
    deny.purposes = vec![PurposeOfUse::Treatment];
    net.record_consent(deny.clone()).accepted();
    let treatment = pending(&mut net);
    let record = net.record_id.clone();
    let result = net.answer_with_disclosure(&treatment, std::slice::from_ref(&record));
    assert_eq!(result.rejection(), "ConsentDenied");
    assert_denied(&net, &treatment, &deny.directive_id);
    // Emergency treatment is another purpose: the directive does not speak to it.
    net.advance(61);
    let emergency = pending_break_glass(&mut net);
    net.answer_with_disclosure(&emergency, &[record]).accepted();
    let decision = decisions(&net, &emergency).pop().unwrap();
    assert_eq!(decision.outcome, AuditOutcome::Success);
    assert_eq!(
        decision.directive_id, None,
        "permitted by the policy's default"
    );
    assert_eq!(decision.subject, None);
}

#[test]
fn a_deny_per_category_refuses_only_releases_that_hold_that_category() {
    let mut net = TwoHospitals::new();
    let mental = net.store_record_of(RecordCategory::MentalHealth);
    let general = net.record_id.clone();
    let mut deny = net.directive(ConsentDecision::Deny);
    deny.categories = vec![RecordCategory::MentalHealth];
    net.record_consent(deny.clone()).accepted();
    // What the reply service asks before it builds a reply.
    let check = |net: &TwoHospitals, categories: Vec<RecordCategory>| -> ConsentOutcome {
        net.b
            .query_exchange(&QueryMsg::ConsentCheck {
                patient: net.patient.token.clone(),
                partner_id: "hospital-a".into(),
                purpose: PurposeOfUse::Treatment,
                categories,
                break_glass: false,
            })
            .unwrap()
    };
    assert_eq!(
        check(
            &net,
            vec![RecordCategory::General, RecordCategory::MentalHealth]
        ),
        ConsentOutcome::Denied {
            directive_id: Some(deny.directive_id.clone())
        }
    );
    assert_eq!(
        check(&net, vec![RecordCategory::General]),
        ConsentOutcome::PermittedByDefault
    );

    let id = pending(&mut net);
    let result = net.answer_with_disclosure(&id, &[general.clone(), mental]);
    assert_eq!(result.rejection(), "ConsentDenied");
    assert_denied(&net, &id, &deny.directive_id);
    net.answer_with_disclosure(&id, &[general]).accepted();
    assert_eq!(
        net.b.incoming("hospital-a", &id).unwrap().status,
        IncomingStatus::Answered
    );
}

#[test]
fn a_disclosure_of_records_not_stored_under_the_pseudonym_is_invalid_format_and_struck() {
    let mut net = TwoHospitals::new();
    let id = pending(&mut net);
    let unknown = ehr_tests::harness::peer::random_id("rec");
    let result = net.answer_with_disclosure(&id, &[unknown]);
    assert_eq!(result.rejection(), "InvalidFormat");
    let record = net.record_id.clone();
    let twice = net.answer_with_disclosure(&id, &[record.clone(), record]);
    assert_eq!(twice.rejection(), "InvalidFormat");
    assert_eq!(strikes(&net, &net.responder.address), 2);
    assert_eq!(
        net.b.incoming("hospital-a", &id).unwrap().status,
        IncomingStatus::Pending
    );
}

#[test]
fn a_deny_without_override_is_not_lifted_by_break_glass() {
    let mut net = TwoHospitals::new();
    let deny = net.directive(ConsentDecision::Deny);
    net.record_consent(deny.clone()).accepted();
    let id = pending_break_glass(&mut net);
    let record = net.record_id.clone();
    assert_eq!(
        net.answer_with_disclosure(&id, &[record]).rejection(),
        "ConsentDenied"
    );
    assert_denied(&net, &id, &deny.directive_id);
}

fn overridable_deny(net: &mut TwoHospitals) -> ConsentDirectiveInput {
    let mut deny = net.directive(ConsentDecision::Deny);
    deny.break_glass_override = true;
    net.record_consent(deny.clone()).accepted();
    deny
}

#[test]
fn break_glass_overrides_an_overridable_deny_within_its_time_box() {
    let mut net = TwoHospitals::new();
    let deny = overridable_deny(&mut net);
    let id = pending_break_glass(&mut net);
    net.advance(899);
    let record = net.record_id.clone();
    net.answer_with_disclosure(&id, &[record]).accepted();
    let decision = decisions(&net, &id).pop().unwrap();
    assert_eq!(decision.outcome, AuditOutcome::Success);
    assert_eq!(
        decision.directive_id.as_deref(),
        Some(deny.directive_id.as_str())
    );
    assert_eq!(decision.subject.as_deref(), Some("break_glass_override"));
    assert!(net.relay_replies()[0].ack.is_success());
    assert_eq!(net.a.request(&id).status, RequestStatus::Answered);
}

#[test]
fn a_reply_after_the_time_box_is_refused_break_glass_expired_without_a_strike() {
    let mut net = TwoHospitals::new();
    let deny = overridable_deny(&mut net);
    let id = pending_break_glass(&mut net);
    net.advance(900);
    let record = net.record_id.clone();
    let result = net.answer_with_disclosure(&id, &[record]);
    assert_eq!(result.rejection(), "BreakGlassExpired");
    assert_eq!(strikes(&net, &net.responder.address), 0);
    assert_eq!(
        net.b.incoming("hospital-a", &id).unwrap().status,
        IncomingStatus::Pending
    );
    let decision = decisions(&net, &id).pop().unwrap();
    assert_eq!(decision.outcome, AuditOutcome::Rejected);
    assert_eq!(decision.reason, Some(ErrorCode::BreakGlassExpired));
    assert_eq!(
        decision.directive_id.as_deref(),
        Some(deny.directive_id.as_str())
    );
    // An ordinary request is simply denied by the same directive.
    net.advance(61);
    let plain = pending(&mut net);
    let record = net.record_id.clone();
    assert_eq!(
        net.answer_with_disclosure(&plain, &[record]).rejection(),
        "ConsentDenied"
    );
}

const CHUNK: usize = 1024;

#[test]
fn consent_revoked_mid_flight_stops_the_reply_and_the_requester_never_completes_it() {
    let mut net = TwoHospitals::with_policy(Policy {
        max_chunk_bytes: CHUNK as u64,
        ..Policy::default()
    });
    let id = pending(&mut net);
    let sealed = seal_history(
        &net.requester.encryption_key,
        &frame(br#""no_records""#, &[7u8; 6000]),
        CHUNK,
    );
    assert_eq!(sealed.chunks.len(), 8);
    let body = net.responder.reply_body(
        &id,
        "hospital-a",
        "hospital-b",
        &net.requester.encryption_key,
        &sealed,
        net.b.now(),
    );
    let mut first = net.responder.reply_msg(&body, &sealed);
    first.chunks.truncate(1);
    first.disclosure = Some(Disclosure {
        patient: net.patient.token.clone(),
        record_ids: vec![net.record_id.clone()],
    });
    net.b.submit_reply(&net.responder, first).accepted();
    assert_eq!(
        decisions(&net, &id).pop().unwrap().outcome,
        AuditOutcome::Success
    );

    // The patient withdraws consent while the reply is on its way.
    let deny = net.directive(ConsentDecision::Deny);
    net.record_consent(deny.clone()).accepted();
    let rest = SubmitReplyChunksMsg {
        partner_id: "hospital-a".into(),
        request_id: id.clone(),
        first_index: 1,
        chunks: sealed.binaries()[1..].to_vec(),
    };
    let result = net.b.submit_reply_chunks(&net.responder, rest.clone());
    assert_eq!(result.rejection(), "ConsentDenied");
    assert_eq!(strikes(&net, &net.responder.address), 0);
    let incoming = net.b.incoming("hospital-a", &id).unwrap();
    assert_eq!(incoming.status, IncomingStatus::Failed);
    assert_eq!(incoming.reason, Some(ErrorCode::ConsentDenied));
    let audit = net.b.audit();
    assert!(audit.iter().any(|e| e.action == AuditAction::ReplyFailed
        && e.reason == Some(ErrorCode::ConsentDenied)
        && e.request_id.as_deref() == Some(id.as_str())));
    let decision = decisions(&net, &id).pop().unwrap();
    assert_eq!(decision.outcome, AuditOutcome::Rejected);
    assert_eq!(
        decision.directive_id.as_deref(),
        Some(deny.directive_id.as_str())
    );
    // No more chunks leave, whatever is sent again.
    assert_eq!(
        net.b.submit_reply_chunks(&net.responder, rest).rejection(),
        "AlreadyAnswered"
    );

    // Only chunk 0 ever left B: A never completes the reply; its sweep ends it.
    let delivered = net.relay_replies();
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].ack.is_success());
    assert_eq!(net.a.request(&id).status, RequestStatus::Receiving);
    assert!(net
        .a
        .retrieve(&net.requester, &id)
        .failure()
        .contains("ReplyNotReady"));
    net.advance(REQUEST_TTL + Policy::default().finalise_grace_secs + 1);
    let keeper = net.a.addr("keeper");
    net.a.sweep(&keeper, None);
    let request = net.a.request(&id);
    assert_eq!(request.status, RequestStatus::Expired);
    assert_eq!(request.reason, Some(ErrorCode::ChunkMissing));
}

#[test]
fn a_revoked_directive_is_kept_as_history_and_no_longer_applies() {
    let mut net = TwoHospitals::new();
    let deny = net.directive(ConsentDecision::Deny);
    net.record_consent(deny.clone()).accepted();
    net.advance(5);
    net.revoke_consent(&deny.directive_id).accepted();
    let kept = directives(&net, &net.patient.token).directives;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].status, DirectiveStatus::Revoked { at: net.b.now() });
    assert_eq!(net.revoke_consent(&deny.directive_id).rejection(), "Replay");
    let id = pending(&mut net);
    let record = net.record_id.clone();
    net.answer_with_disclosure(&id, &[record]).accepted();
}

#[test]
fn only_the_privacy_office_records_well_formed_new_directives() {
    let mut net = TwoHospitals::new();
    let patient = net.patient.token.clone();
    // Malformed: a bad id, a validity that ends before it starts, duplicate purposes.
    let mut bad_id = net.directive(ConsentDecision::Deny);
    bad_id.directive_id = "Not An Id".into();
    let mut inverted = net.directive(ConsentDecision::Deny);
    (inverted.valid_from, inverted.valid_until) = (Some(200), Some(100));
    let mut twice = net.directive(ConsentDecision::Deny);
    twice.purposes = vec![PurposeOfUse::Payment, PurposeOfUse::Payment];
    for directive in [bad_id, inverted, twice] {
        assert_eq!(net.record_consent(directive).rejection(), "InvalidFormat");
    }
    assert!(directives(&net, &patient).directives.is_empty());
    assert_eq!(strikes(&net, &net.privacy.address), 3);

    // Another peer of B (the reply service) may not.
    let directive = net.directive(ConsentDecision::Deny);
    let sender = net.responder.address.clone();
    let result = net.b.execute(
        &sender,
        &ehr_protocol::exchange::ExecuteMsg::RecordConsent {
            directive: directive.clone(),
        },
    );
    assert_eq!(result.rejection(), "NotAuthorized");
    assert_eq!(strikes(&net, &sender), 1);
    assert!(directives(&net, &patient).directives.is_empty());

    // The same id twice is a replay.
    let mut office = TwoHospitals::new();
    let directive = office.directive(ConsentDecision::Deny);
    office.record_consent(directive.clone()).accepted();
    assert_eq!(office.record_consent(directive).rejection(), "Replay");
    assert_eq!(directives(&office, &patient).directives.len(), 1);
}

#[test]
fn an_unknown_purpose_in_a_directive_does_not_parse_and_changes_nothing() {
    let mut net = TwoHospitals::new();
    let mut json = serde_json::to_value(ehr_protocol::exchange::ExecuteMsg::RecordConsent {
        directive: net.directive(ConsentDecision::Deny),
    })
    .unwrap();
    json["record_consent"]["directive"]["purposes"] = serde_json::json!(["marketing"]);
    let audit_before = net.b.audit().len();
    let office = net.privacy.address.clone();
    let exchange = net.b.exchange.clone();
    use cw_multi_test::Executor;
    assert!(net
        .b
        .app
        .execute_contract(office, exchange, &json, &[])
        .is_err());
    assert!(directives(&net, &net.patient.token).directives.is_empty());
    assert_eq!(net.b.audit().len(), audit_before);
    assert_eq!(strikes(&net, &net.privacy.address), 0);
}

#[test]
fn the_patient_audit_lists_consent_and_releases_and_the_requesting_chain_never_holds_the_pseudonym()
{
    let mut net = TwoHospitals::new();
    let mut deny = net.directive(ConsentDecision::Deny);
    deny.purposes = vec![PurposeOfUse::Payment];
    net.record_consent(deny.clone()).accepted();
    let id = pending(&mut net);
    let record = net.record_id.clone();
    net.answer_with_disclosure(&id, &[record]).accepted();
    assert!(net.relay_replies()[0].ack.is_success());
    net.a.retrieve(&net.requester, &id).accepted();

    let by_patient = |net: &TwoHospitals, patient: &str| -> Vec<AuditEntry> {
        net.b
            .query_exchange::<AuditLogResponse>(&QueryMsg::AuditByPatient {
                patient: patient.to_string(),
                start_after: None,
                limit: None,
            })
            .unwrap()
            .entries
    };
    let steps: Vec<AuditAction> = by_patient(&net, &net.patient.token)
        .iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        steps,
        [
            AuditAction::ConsentRecorded,
            AuditAction::ConsentDecision,
            AuditAction::ReplySubmitted
        ]
    );
    assert!(by_patient(&net, &"ab".repeat(32)).is_empty());

    // The requesting chain: no state, event or audit entry holds the pseudonym.
    let token = net.patient.token.as_bytes();
    assert!(!net.a.dump_state().windows(token.len()).any(|w| w == token));
    assert!(!net
        .a
        .events
        .iter()
        .flat_map(|e| e.attributes.iter())
        .any(|a| a.value.contains(&net.patient.token)));
    assert!(net.a.audit().iter().all(|e| e.patient.is_none()));
}
