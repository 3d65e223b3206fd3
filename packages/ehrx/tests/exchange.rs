//! ehrx against the real registry and exchange contracts, in process: two cw-multi-test
//! chains from the `ehr-tests` harness, its test relayer between them, and a `ChainClient`
//! that executes and queries as the wasmd CLI would. Everything ehrx signs is verified by
//! the contracts themselves; everything it decrypts was encrypted by ehrx on the other side.
//! B keeps records under its own pseudonyms (B's local pseudonym key); A seals the patient's
//! details to B's custodian key (B's records key, registered in A's registry as B's
//! `encryption_key`).

mod common;

use clap::Parser;
use common::{InProcess, Side, World};
use cosmwasm_std::Addr;
use ehr_protocol::exchange::{PurposeOfUse, RequestStatus};
use ehr_protocol::packet::ExchangePacket;
use ehr_protocol::registry::{self as rmsg, PeerInput, Role};
use ehr_protocol::ErrorCode;
use ehrx::chain::{ChainClient, ChainError};
use ehrx::cli::{self, Cli};
use ehrx::clinician::{ClinicianKey, Registration};
use ehrx::demographics::Demographics;
use ehrx::error::{exit_code, EXIT_NO_RECORDS, EXIT_REFUSED};
use ehrx::fhir::{self, OutputBundleType};
use ehrx::keys::{KeyDir, PeerKeys};
use ehrx::peer::{Exchange, Peer};
use ehrx::pseudonym::{pseudonym, PseudonymKey};
use ehrx::reply_service::{Handled, PassReport, ReplyService, ReplyState};
use ehrx::request::{self, ReplyContent, RequestInput};
use ehrx::{audit_export, store};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

// ------------------------------------------------------------------ the hospitals

const GIVEN: &str = "José";
const FAMILY: &str = "Álvarez-Núñez";
const DOB: &str = "1984-03-12";
const SSN: &str = "219-09-9999";
/// Hospital B's own pseudonym key (never on A).
const B_PSEUDONYM_KEY: [u8; 32] = [42u8; 32];

fn b_pseudonym_key() -> PseudonymKey {
    PseudonymKey::from_bytes(&B_PSEUDONYM_KEY).unwrap()
}

/// Has A's admin register `key` as partner hospital-b's custodian key (`encryption_key` of
/// the partner entry; the route and channel stay as they are).
fn set_custodian_key(world: &Rc<RefCell<World>>, key: Option<&ehrx::crypto::X25519Public>) {
    let mut w = world.borrow_mut();
    let partner: Option<rmsg::Partner> =
        w.a.app
            .wrap()
            .query_wasm_smart(
                w.a.registry.to_string(),
                &rmsg::QueryMsg::Partner {
                    partner_id: "hospital-b".into(),
                },
            )
            .unwrap();
    let partner = partner.expect("hospital-b is A's partner");
    w.a.admin_exec(&rmsg::ExecuteMsg::UpsertPartner {
        partner: rmsg::PartnerInput {
            partner_id: partner.partner_id,
            connection_id: partner.connection_id,
            counterparty_port: partner.counterparty_port,
            encryption_key: key.map(|k| k.as_bytes().to_vec().into()),
            status: partner.status,
            accepted_purposes: partner.accepted_purposes,
        },
    })
    .expect("upsert partner");
}

fn bundle() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:7d3c1a52-1c3e-4b9e-9a36-1f0b7f1c2a01",
             "resource": {"resourceType": "Patient", "id": "p1",
                "name": [{"given": [GIVEN], "family": FAMILY}],
                "birthDate": DOB,
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": SSN}]}},
            {"fullUrl": "urn:uuid:7d3c1a52-1c3e-4b9e-9a36-1f0b7f1c2a02",
             "resource": {"resourceType": "Observation", "status": "final",
                "code": {"text": "Hemoglobin A1c"},
                "subject": {"reference": "urn:uuid:7d3c1a52-1c3e-4b9e-9a36-1f0b7f1c2a01"},
                "valueQuantity": {"value": 6.1, "unit": "%"}}}
        ]
    }))
    .unwrap()
}

struct Hospitals {
    world: Rc<RefCell<World>>,
    /// B's own pseudonym key.
    pseudonym_key: PseudonymKey,
    requester: (Addr, PeerKeys),
    /// Registered on A; signs the requests `requester` sends.
    clinician: ClinicianKey,
    storer: (Addr, PeerKeys),
    responder: (Addr, PeerKeys),
    tmp: tempfile::TempDir,
}

fn register(
    world: &Rc<RefCell<World>>,
    side: Side,
    name: &str,
    roles: &[Role],
) -> (Addr, PeerKeys) {
    let mut w = world.borrow_mut();
    let chain = w.chain(side);
    let address = chain.addr(name);
    let keys = PeerKeys::generate();
    let snippet = keys.registry_snippet();
    let peer = PeerInput {
        address: address.to_string(),
        signing_key: serde_json::from_value(snippet["signing_key"].clone()).unwrap(),
        encryption_key: serde_json::from_value(snippet["encryption_key"].clone()).unwrap(),
        device_id: "001B44113AB7".into(),
        roles: roles.to_vec(),
        valid_from: None,
        valid_until: None,
    };
    chain
        .admin_exec(&rmsg::ExecuteMsg::RegisterPeer { peer })
        .expect("register peer");
    (address, keys)
}

/// Has A's (or B's) admin register `key` for `purposes`.
fn register_clinician(
    world: &Rc<RefCell<World>>,
    side: Side,
    key: &ClinicianKey,
    purposes: &[PurposeOfUse],
) {
    let registration = Registration::new(purposes.to_vec(), None, None).unwrap();
    world
        .borrow_mut()
        .chain(side)
        .admin_exec(&key.register_msg(&registration))
        .expect("register clinician");
}

fn new_clinician(id: &str) -> ClinicianKey {
    ClinicianKey::from_signing_key(id, ehrx::keys::random_signing_key()).unwrap()
}

/// PeerKeys is deliberately not Clone (it holds secrets); tests copy it explicitly.
fn same_keys(keys: &PeerKeys) -> PeerKeys {
    PeerKeys::from_secret_bytes(
        &keys.signing_key().to_bytes(),
        keys.encryption_secret().to_bytes().as_ref(),
    )
    .unwrap()
}

fn save(dir: &KeyDir, keys: &PeerKeys) {
    ehrx::keys::ensure_private_dir(dir.path()).unwrap();
    ehrx::keys::write_secret(
        &dir.path().join(ehrx::keys::SIGNING_FILE),
        &keys.signing_key().to_bytes(),
    )
    .unwrap();
    ehrx::keys::write_secret(
        &dir.path().join(ehrx::keys::ENCRYPTION_FILE),
        keys.encryption_secret().to_bytes().as_ref(),
    )
    .unwrap();
}

impl Hospitals {
    fn new() -> Hospitals {
        let world = World::new();
        let requester = register(&world, Side::A, "dr-adams", &[Role::Request]);
        let storer = register(&world, Side::B, "records-desk", &[Role::Store]);
        let responder = register(&world, Side::B, "reply-service", &[Role::Reply]);
        let clinician = new_clinician("dr-adams");
        register_clinician(&world, Side::A, &clinician, &[PurposeOfUse::Treatment]);
        // B's records key is its custodian key: A's admin registers it for partner B.
        set_custodian_key(&world, Some(&responder.1.encryption_public()));
        Hospitals {
            world,
            pseudonym_key: b_pseudonym_key(),
            requester,
            clinician,
            storer,
            responder,
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn peer<'c>(&self, client: &'c InProcess, side: Side, who: &(Addr, PeerKeys)) -> Peer<'c> {
        Peer::connect(client, &self.exchange_addr(side), same_keys(&who.1)).unwrap()
    }

    fn client(&self, side: Side, who: &(Addr, PeerKeys)) -> InProcess {
        InProcess::new(&self.world, side, &who.0)
    }

    fn exchange_addr(&self, side: Side) -> String {
        self.world.borrow_mut().chain(side).exchange.to_string()
    }

    fn records_key(&self) -> ehrx::crypto::X25519Public {
        self.responder.1.encryption_public()
    }

    fn store_record(&self, given: &str, family: &str) -> store::Stored {
        let client = self.client(Side::B, &self.storer);
        let peer = self.peer(&client, Side::B, &self.storer);
        let d = Demographics::new(given, family, DOB, SSN).unwrap();
        let pseudonym = pseudonym(&self.pseudonym_key, &d);
        store::store(
            &peer,
            &store::CheckedBundle::new(&bundle()).unwrap(),
            None,
            &pseudonym,
            &self.records_key(),
            ehr_protocol::consent::RecordCategory::General,
            &mut |_| {},
        )
        .unwrap()
    }

    fn submit(
        &self,
        client: &InProcess,
        given: &str,
        family: &str,
    ) -> Result<request::Submitted, anyhow::Error> {
        self.submit_as(
            client,
            &self.clinician,
            PurposeOfUse::Treatment,
            given,
            family,
        )
    }

    fn submit_as(
        &self,
        client: &InProcess,
        clinician: &ClinicianKey,
        purpose: PurposeOfUse,
        given: &str,
        family: &str,
    ) -> Result<request::Submitted, anyhow::Error> {
        let peer = self.peer(client, Side::A, &self.requester);
        let d = Demographics::new(given, family, "03/12/1984", "219099999").unwrap();
        request::submit(
            &peer,
            &RequestInput {
                partner_id: "hospital-b",
                clinician,
                purpose,
                patient: &d.attributes(),
                ttl_secs: 900,
                emergency: None,
            },
        )
    }

    fn state_path(&self) -> PathBuf {
        self.tmp.path().join("reply-state.json")
    }

    /// Hospitals where B holds the patient's record and A's request is pending on B.
    fn with_pending_request() -> (Hospitals, request::Submitted) {
        let h = Hospitals::new();
        h.store_record(GIVEN, FAMILY);
        let client_a = h.client(Side::A, &h.requester);
        let submitted = h.submit(&client_a, GIVEN, FAMILY).unwrap();
        h.world.borrow_mut().relay_requests();
        (h, submitted)
    }

    /// One reply-service pass on B; returns its report and the log lines.
    fn reply_pass(&self) -> (PassReport, Vec<String>) {
        reply_pass(
            &self.world,
            &self.responder,
            &self.exchange_addr(Side::B),
            &self.state_path(),
        )
    }
}

fn reply_pass(
    world: &Rc<RefCell<World>>,
    responder: &(Addr, PeerKeys),
    exchange: &str,
    state: &Path,
) -> (PassReport, Vec<String>) {
    let client = InProcess::new(world, Side::B, &responder.0);
    let peer = Peer::connect(&client, exchange, same_keys(&responder.1)).unwrap();
    let secret = responder.1.encryption_secret().to_bytes();
    let secrets = vec![ehrx::crypto::X25519Secret::from_bytes(secret.as_ref()).unwrap()];
    // The patient index beside the reply state (none yet: exact details still match).
    let index = state.with_extension("patient-index.jsonl");
    let mut service = ReplyService::new(
        &peer,
        secrets,
        b_pseudonym_key(),
        index,
        state.to_path_buf(),
    )
    .unwrap();
    let mut logs = Vec::new();
    let report = service.run_pass(&mut |m| logs.push(m.to_string())).unwrap();
    // The counters the service serves on --metrics-addr, as a scraper reads them.
    logs.push(service.metrics().render());
    (report, logs)
}

fn assert_no_phi(haystack: &[u8], what: &str) {
    let text = String::from_utf8_lossy(haystack).to_lowercase();
    for phi in [
        "josé",
        "jose",
        "álvarez",
        "alvarez",
        "núñez",
        "nunez",
        "219-09-9999",
        "219099999",
        "1984-03-12",
    ] {
        assert!(!text.contains(phi), "{what} contains PHI `{phi}`");
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn full_exchange_store_request_reply_retrieve_decrypt() {
    let h = Hospitals::new();
    let stored = h.store_record(GIVEN, FAMILY);
    assert_eq!(
        h.world.borrow().b.record_count(&pseudonym(
            &h.pseudonym_key,
            &Demographics::new(GIVEN, FAMILY, DOB, SSN).unwrap()
        )),
        1
    );

    // Hospital A types the name without accents and the dates/SSN in other formats:
    // B opens the sealed details and computes the same pseudonym, so it finds the record.
    let client_a = h.client(Side::A, &h.requester);
    let submitted = h.submit(&client_a, "Jose", "ALVAREZ-Nunez").unwrap();

    assert_eq!(h.world.borrow_mut().relay_requests(), 1);
    let (report, logs) = h.reply_pass();
    assert_eq!(report.answered, 1, "{logs:?}");
    assert_eq!(report.failed, 0);
    // A second pass has nothing to do.
    let (again, _) = h.reply_pass();
    assert_eq!(again.answered, 0);
    let state = ReplyState::load(&h.state_path()).unwrap();
    assert_eq!(
        state.handled[&ReplyState::key("hospital-a", &submitted.request_id)].outcome,
        "records"
    );
    assert_eq!(h.world.borrow_mut().relay_replies(), 1);

    let peer = h.peer(&client_a, Side::A, &h.requester);
    let mut progress = Vec::new();
    let answered = request::wait(
        &peer,
        &submitted.request_id,
        Duration::ZERO,
        Duration::from_secs(5),
        &mut |m| progress.push(m.to_string()),
    )
    .unwrap();
    assert_eq!(answered.status, RequestStatus::Answered);
    assert!(progress[0].contains("answered"), "{progress:?}");

    let reply = request::retrieve(&peer, &submitted.request_id).unwrap();
    assert_eq!(reply.responder, h.responder.0.to_string());
    let secrets = vec![ehrx::crypto::X25519Secret::from_bytes(
        h.requester.1.encryption_secret().to_bytes().as_ref(),
    )
    .unwrap()];
    let content =
        request::open_reply(&peer, &secrets, &submitted.request_id, &reply, &mut |_| {}).unwrap();
    let ReplyContent::Records(history) = &content else {
        panic!("expected records");
    };
    assert_eq!(history.len(), 1, "one stored record");
    assert_eq!(
        history[0].as_slice(),
        bundle().as_slice(),
        "the stored bytes"
    );
    let (out, resources) = request::history_bundle(
        &submitted.request_id,
        &reply,
        content,
        OutputBundleType::Collection,
    )
    .unwrap();
    assert_eq!(resources, 2);
    fhir::check_bundle(&out).unwrap();
    let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let entries = out["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let provenance = &entries[2]["resource"];
    assert_eq!(provenance["resourceType"], "Provenance");
    assert_eq!(
        provenance["agent"][0]["who"]["identifier"]["value"],
        h.responder.0.to_string()
    );
    assert_eq!(
        provenance["agent"][0]["onBehalfOf"]["identifier"]["value"],
        "hospital-b"
    );
    assert_eq!(
        provenance["entity"][0]["what"]["identifier"]["value"],
        format!("{}/{}", reply.channel_id, reply.packet_sequence)
    );

    // Someone else's key cannot open the reply: the responder signed the hash of the key
    // it encrypted to, and it is not theirs.
    let stranger = vec![ehrx::crypto::generate_x25519()];
    let Err(err) =
        request::open_reply(&peer, &stranger, &submitted.request_id, &reply, &mut |_| {})
    else {
        panic!("a stranger's key opened the reply");
    };
    assert!(
        format!("{err:#}").contains("RecipientKeyMismatch"),
        "{err:#}"
    );
    // After a key rotation the reply is opened with the key it names (the older one).
    let rotated = vec![
        ehrx::crypto::generate_x25519(),
        ehrx::crypto::X25519Secret::from_bytes(
            h.requester.1.encryption_secret().to_bytes().as_ref(),
        )
        .unwrap(),
    ];
    assert!(matches!(
        request::open_reply(&peer, &rotated, &submitted.request_id, &reply, &mut |_| {}).unwrap(),
        ReplyContent::Records(_)
    ));
    // The request names its clinician on both chains.
    assert_eq!(answered.clinician_id, "dr-adams");
    let received = h
        .world
        .borrow()
        .b
        .app
        .wrap()
        .query_wasm_smart::<ehr_protocol::exchange::IncomingRequest>(
            h.world.borrow().b.exchange.to_string(),
            &ehr_protocol::exchange::QueryMsg::IncomingRequest {
                partner_id: "hospital-a".into(),
                request_id: submitted.request_id.clone(),
            },
        )
        .unwrap();
    assert_eq!(received.body.clinician_id, "dr-adams");
    assert_eq!(
        received.signer_pubkey.as_slice(),
        h.clinician.public_key().as_slice()
    );

    // No PHI on either chain (state, events, packets) or in the tool's logs.
    let w = h.world.borrow();
    for chain in [&w.a, &w.b] {
        assert_no_phi(&chain.dump_state(), "contract state");
        assert_no_phi(format!("{:?}", chain.events).as_bytes(), "events");
        let packets: Vec<u8> = chain
            .outbox
            .borrow()
            .history
            .iter()
            .flat_map(|p| p.data.to_vec())
            .collect();
        assert_no_phi(&packets, "packets");
    }
    assert_no_phi(logs.join("\n").as_bytes(), "reply-service log and metrics");
    assert_no_phi(progress.join("\n").as_bytes(), "progress");
    assert!(stored.record_id.len() == 32);
    assert!(
        logs.iter()
            .any(|l| l.contains("\nehrx_reply_answered_total 1\n")),
        "the reply service counts its answer: {logs:?}"
    );
}

#[test]
fn soft_rejection_is_an_error_with_the_reason_code() {
    let h = Hospitals::new();
    let client_a = h.client(Side::A, &h.requester);
    h.submit(&client_a, GIVEN, FAMILY).unwrap();
    // Policy: one request per minute. The contract records the attempt and refuses it.
    let err = h.submit(&client_a, GIVEN, FAMILY).unwrap_err();
    let chain_err = err
        .chain()
        .find_map(|c| c.downcast_ref::<ChainError>())
        .expect("a chain error");
    assert!(
        matches!(
            chain_err,
            ChainError::SoftRejected {
                code: ErrorCode::RateLimited { .. },
                ..
            }
        ),
        "{chain_err}"
    );
    assert_eq!(exit_code(&err), EXIT_REFUSED);
    assert!(format!("{err:#}").contains("RateLimited(retry_after="));
}

#[test]
fn outsider_is_refused_not_registered_and_told_to_ask_the_admin() {
    let h = Hospitals::new();
    let outsider = (h.world.borrow().b.addr("mallory"), PeerKeys::generate());
    let client = h.client(Side::B, &outsider);
    let peer = h.peer(&client, Side::B, &outsider);
    let token = "ab".repeat(32);
    let err = store::store(
        &peer,
        &store::CheckedBundle::new(&bundle()).unwrap(),
        None,
        &token,
        &h.records_key(),
        ehr_protocol::consent::RecordCategory::General,
        &mut |_| {},
    )
    .unwrap_err();
    let chain_err = err
        .chain()
        .find_map(|c| c.downcast_ref::<ChainError>())
        .unwrap();
    match chain_err {
        ChainError::SoftRejected { code, .. } => assert_eq!(code, &ErrorCode::NotRegistered),
        other => panic!("expected a refusal, got {other}"),
    }
    assert!(chain_err
        .to_string()
        .contains("ask the hospital's admin to register it"));
    assert_eq!(h.world.borrow().b.record_count(&token), 0);
}

/// The peer's standing in A's registry: (status, strikes).
fn standing(h: &Hospitals) -> (String, u32) {
    let w = h.world.borrow();
    let peer: Option<rmsg::Peer> =
        w.a.app
            .wrap()
            .query_wasm_smart(
                w.a.registry.to_string(),
                &rmsg::QueryMsg::Peer {
                    address: h.requester.0.to_string(),
                },
            )
            .unwrap();
    let peer = peer.unwrap();
    (format!("{:?}", peer.status), peer.strikes)
}

fn outgoing_count(h: &Hospitals) -> usize {
    h.world.borrow().a.outbox.borrow().history.len()
}

#[test]
fn a_clinician_the_registry_does_not_hold_as_given_is_stopped_before_anything_is_sent() {
    let h = Hospitals::new();
    h.store_record(GIVEN, FAMILY);
    let client_a = h.client(Side::A, &h.requester);
    let before = (standing(&h), outgoing_count(&h), client_a.txs.get());
    let message = |clinician: &ClinicianKey, purpose| {
        let err = h
            .submit_as(&client_a, clinician, purpose, GIVEN, FAMILY)
            .unwrap_err();
        format!("{err:#}")
    };

    // Never registered.
    let err = message(&new_clinician("dr-nobody"), PurposeOfUse::Treatment);
    assert!(
        err.contains("clinician dr-nobody is not registered on hospital-a (UnknownClinician)"),
        "{err}"
    );
    assert!(
        err.contains("`ehrx clinician show --id dr-nobody`"),
        "{err}"
    );
    // A registered id with another key: what someone who only knows the id holds.
    let impostor = new_clinician("dr-adams");
    let err = message(&impostor, PurposeOfUse::Treatment);
    assert!(
        err.contains("is not the one registered for clinician dr-adams"),
        "{err}"
    );
    assert!(err.contains("BadSignature"), "{err}");
    // A purpose the registration does not allow.
    let err = message(&h.clinician, PurposeOfUse::Payment);
    assert!(err.contains("may not request for payment"), "{err}");
    assert!(err.contains("registered for treatment"), "{err}");
    // Revoked.
    h.world
        .borrow_mut()
        .a
        .admin_exec(&rmsg::ExecuteMsg::RevokeClinician {
            clinician_id: "dr-adams".into(),
        })
        .unwrap();
    let err = message(&h.clinician, PurposeOfUse::Treatment);
    assert!(
        err.contains("clinician dr-adams is revoked on hospital-a (KeyRevoked)"),
        "{err}"
    );

    // Nothing was submitted: no transaction, no packet, no strike.
    assert_eq!(
        (standing(&h), outgoing_count(&h), client_a.txs.get()),
        before
    );
}

#[test]
fn a_request_signed_with_another_key_for_a_real_clinician_id_is_refused_bad_signature() {
    // What a colleague who read the id from the registry's `Clinicians` query could send,
    // bypassing ehrx's own check: the contract refuses it and nothing leaves A.
    let h = Hospitals::new();
    h.store_record(GIVEN, FAMILY);
    let client_a = h.client(Side::A, &h.requester);
    let peer = h.peer(&client_a, Side::A, &h.requester);
    let listed: rmsg::CliniciansResponse = ehrx::chain::query(
        &client_a,
        &peer.exchange.registry,
        &rmsg::QueryMsg::Clinicians {
            start_after: None,
            limit: None,
        },
    )
    .unwrap();
    let id = listed.clinicians[0].clinician_id.clone();
    assert_eq!(id, "dr-adams");
    let forged_key = ehrx::keys::random_signing_key();
    let now = ehrx::time::now_unix();
    let body = ehrx::sign::request_body(
        peer.network(),
        &peer.address,
        &ehrx::sign::RequestFields {
            request_id: ehr_protocol::validate::scoped_request_id(
                &peer.address,
                &ehrx::peer::random_id(),
            ),
            partner_id: "hospital-b".into(),
            clinician_id: id,
            purpose: PurposeOfUse::Treatment,
            sealed_patient: request::seal_patient(
                &h.records_key(),
                &ehrx::sealed_patient::SealedDetails::new(
                    Demographics::new(GIVEN, FAMILY, DOB, SSN)
                        .unwrap()
                        .attributes(),
                    None,
                ),
                "0123456789abcdef",
                "hospital-a",
                "hospital-b",
            )
            .unwrap(),
            reply_encryption_key: peer.keys.encryption_public().as_bytes().to_vec(),
            issued_at: now,
            expires_at: now + 600,
            break_glass: None,
        },
    );
    let msg = ehrx::sign::submit_request(&forged_key, &body);
    let err = ehrx::chain::execute(
        &client_a,
        peer.contract(),
        &ehr_protocol::exchange::ExecuteMsg::SubmitRequest(msg),
    )
    .unwrap_err();
    match &err {
        ChainError::SoftRejected { code, .. } => assert_eq!(code, &ErrorCode::BadSignature),
        other => panic!("expected BadSignature, got {other}"),
    }
    assert_eq!(outgoing_count(&h), 0, "nothing was sent");
    // The real clinician's request still goes through (past the rate limit's minute).
    h.world.borrow_mut().a.advance(61);
    h.submit(&client_a, GIVEN, FAMILY).unwrap();
    assert_eq!(outgoing_count(&h), 1);
}

/// Relays A's request, runs B's reply service (as `responder`), relays the reply, waits on
/// A and opens what came back.
fn answer_and_open(
    h: &Hospitals,
    client_a: &InProcess,
    request_id: &str,
    responder: &(Addr, PeerKeys),
) -> (
    request::ReplyContent,
    ehr_protocol::exchange::RetrievedReply,
    Vec<String>,
) {
    h.world.borrow_mut().relay_requests();
    let (report, logs) = reply_pass(
        &h.world,
        responder,
        &h.exchange_addr(Side::B),
        &h.state_path(),
    );
    assert_eq!(report.answered, 1, "{logs:?}");
    h.world.borrow_mut().relay_replies();
    let peer = h.peer(client_a, Side::A, &h.requester);
    let mut progress = Vec::new();
    let answered = request::wait(
        &peer,
        request_id,
        Duration::ZERO,
        Duration::from_secs(1),
        &mut |m| progress.push(m.to_string()),
    )
    .unwrap();
    // Whatever B answered, A's chain only knows that it answered.
    assert_eq!(answered.status, RequestStatus::Answered, "{progress:?}");
    let reply = request::retrieve(&peer, request_id).unwrap();
    let secrets = vec![ehrx::crypto::X25519Secret::from_bytes(
        h.requester.1.encryption_secret().to_bytes().as_ref(),
    )
    .unwrap()];
    let content = request::open_reply(&peer, &secrets, request_id, &reply, &mut |_| {}).unwrap();
    (content, reply, logs)
}

#[test]
fn unknown_patient_gets_no_records_and_exit_status_3() {
    let h = Hospitals::new();
    let stored = h.store_record(GIVEN, FAMILY);
    let client_a = h.client(Side::A, &h.requester);
    let submitted = h.submit(&client_a, "Ann", "Other").unwrap();
    // B's chain takes the request without looking at records (no existence oracle); B's
    // reply service finds none under its pseudonym and says so inside the sealed reply.
    let (content, reply, logs) =
        answer_and_open(&h, &client_a, &submitted.request_id, &h.responder);
    assert!(
        logs.iter().any(|l| l.contains("answered no_records")),
        "{logs:?}"
    );
    assert!(matches!(content, ReplyContent::NoRecords));
    // The reply has the shape of one with records: one chunk of the smallest bucket.
    assert_eq!(reply.manifest.check(128 * 1024, 1), Ok(()));
    assert_eq!(reply.manifest.total_bytes(), 1024);
    let err = request::history_bundle(
        &submitted.request_id,
        &reply,
        content,
        OutputBundleType::Collection,
    )
    .unwrap_err();
    assert_eq!(exit_code(&err), EXIT_NO_RECORDS, "{err:#}");
    // The stored record is bucket-sized too.
    let w = h.world.borrow();
    let record: ehr_protocol::exchange::StoredRecord =
        w.b.app
            .wrap()
            .query_wasm_smart(
                w.b.exchange.to_string(),
                &ehr_protocol::exchange::QueryMsg::Record {
                    patient_token: pseudonym(
                        &h.pseudonym_key,
                        &Demographics::new(GIVEN, FAMILY, DOB, SSN).unwrap(),
                    ),
                    record_id: stored.record_id.clone(),
                },
            )
            .unwrap();
    assert_eq!(record.manifest.check(128 * 1024, 1), Ok(()));
    assert!(record.meta.complete());
}

#[test]
fn declined_reply_ends_the_request_as_refused() {
    let h = Hospitals::new();
    h.store_record(GIVEN, FAMILY);
    let client_a = h.client(Side::A, &h.requester);
    let submitted = h.submit(&client_a, GIVEN, FAMILY).unwrap();
    // A reply service with another records key than the one A's registry holds for B
    // cannot open the patient's details: it declines, coded, inside the sealed reply.
    let wrong = register(&h.world, Side::B, "misconfigured-service", &[Role::Reply]);
    let (content, reply, logs) = answer_and_open(&h, &client_a, &submitted.request_id, &wrong);
    assert!(
        logs.iter().any(|l| l.contains("declined:InvalidFormat")),
        "{logs:?}"
    );
    assert_no_phi(logs.join("\n").as_bytes(), "reply-service log");
    assert!(matches!(
        content,
        ReplyContent::Declined(ErrorCode::InvalidFormat)
    ));
    let err = request::history_bundle(
        &submitted.request_id,
        &reply,
        content,
        OutputBundleType::Collection,
    )
    .unwrap_err();
    assert_eq!(exit_code(&err), EXIT_REFUSED);
    assert!(format!("{err:#}").contains("InvalidFormat"));
}

#[test]
fn records_the_reply_service_cannot_open_are_declined_internal() {
    let h = Hospitals::new();
    // Stored to a key that is not B's records key.
    let client = h.client(Side::B, &h.storer);
    let peer = h.peer(&client, Side::B, &h.storer);
    let d = Demographics::new(GIVEN, FAMILY, DOB, SSN).unwrap();
    store::store(
        &peer,
        &store::CheckedBundle::new(&bundle()).unwrap(),
        None,
        &pseudonym(&h.pseudonym_key, &d),
        &ehrx::crypto::generate_x25519().public(),
        ehr_protocol::consent::RecordCategory::General,
        &mut |_| {},
    )
    .unwrap();
    let client_a = h.client(Side::A, &h.requester);
    let submitted = h.submit(&client_a, GIVEN, FAMILY).unwrap();
    let (content, _, logs) = answer_and_open(&h, &client_a, &submitted.request_id, &h.responder);
    assert!(
        logs.iter().any(|l| l.contains("declined:Internal")),
        "{logs:?}"
    );
    assert!(matches!(
        content,
        ReplyContent::Declined(ErrorCode::Internal)
    ));
}

#[test]
fn a_partner_without_a_custodian_key_stops_the_request_before_anything_is_sent() {
    let h = Hospitals::new();
    set_custodian_key(&h.world, None);
    let client_a = h.client(Side::A, &h.requester);
    let before = (outgoing_count(&h), client_a.txs.get());
    let err = format!("{:#}", h.submit(&client_a, GIVEN, FAMILY).unwrap_err());
    assert!(
        err.contains("partner hospital-b has no custodian key"),
        "{err}"
    );
    assert!(err.contains("UpsertPartner"), "{err}");
    assert_no_phi(err.as_bytes(), "error");
    assert_eq!((outgoing_count(&h), client_a.txs.get()), before);
}

#[test]
fn each_request_seals_the_patient_afresh_to_one_size() {
    let h = Hospitals::new();
    let client_a = h.client(Side::A, &h.requester);
    h.submit(&client_a, GIVEN, FAMILY).unwrap();
    h.world.borrow_mut().a.advance(61);
    h.submit(&client_a, "A", "B").unwrap();
    let w = h.world.borrow();
    let packets: Vec<Vec<u8>> =
        w.a.outbox
            .borrow()
            .history
            .iter()
            .map(|p| p.data.to_vec())
            .collect();
    assert_eq!(packets.len(), 2);
    // A long name and a short one give packets of the same size.
    assert_eq!(packets[0].len(), packets[1].len());
    // B's pseudonym appears nowhere on A.
    let b_pseudonym = pseudonym(
        &h.pseudonym_key,
        &Demographics::new(GIVEN, FAMILY, DOB, SSN).unwrap(),
    );
    let state = String::from_utf8_lossy(&w.a.dump_state()).to_string();
    assert!(!state.contains(&b_pseudonym));
}

/// B's chain keeps the hash of the sealed patient details, not the details (30 gas a byte):
/// the reply service reads them from the packet in B's blocks, and answers only when they
/// match that hash. Details swapped in the node's index are not answered, and retried.
#[test]
fn the_reply_service_reads_the_patient_details_from_the_packet_and_checks_their_hash() {
    let (h, submitted) = Hospitals::with_pending_request();
    let incoming = h
        .world
        .borrow()
        .b
        .incoming("hospital-a", &submitted.request_id)
        .unwrap();
    assert!(incoming.body.sealed_patient.is_empty());
    let (channel, sequence) = (incoming.channel_id.clone(), incoming.packet_sequence);
    let genuine = h
        .world
        .borrow()
        .b
        .received_packet(&channel, sequence)
        .unwrap();
    let Ok(ExchangePacket::Request(mut packet)) = cosmwasm_std::from_json(&genuine) else {
        panic!("a request packet");
    };
    assert_eq!(
        incoming.sealed_patient_sha256,
        Some(ehr_protocol::signing::sha256_hex(
            &packet.body.sealed_patient
        ))
    );
    let redeliver = |data: cosmwasm_std::Binary| {
        for p in h.world.borrow_mut().b.received.iter_mut() {
            if p.dest.channel_id == channel && p.sequence == sequence {
                p.data = data.clone();
            }
        }
    };

    // The node's index gives other details than those the chain checked and hashed.
    let mut sealed = packet.body.sealed_patient.to_vec();
    sealed[100] ^= 1;
    packet.body.sealed_patient = sealed.into();
    redeliver(cosmwasm_std::to_json_binary(&ExchangePacket::Request(packet)).unwrap());
    let (report, logs) = h.reply_pass();
    assert_eq!(report.answered, 0, "{logs:?}");
    assert_eq!(report.failed, 1, "{logs:?}");
    assert!(
        logs.iter().any(|l| l.contains("do not match the hash")),
        "{logs:?}"
    );
    assert_eq!(h.world.borrow().b.pending_incoming().len(), 1);

    // With the block's own packet, the same request is answered.
    redeliver(genuine);
    let (report, logs) = h.reply_pass();
    assert_eq!(report.answered, 1, "{logs:?}");
}

#[test]
fn reply_service_never_answers_twice_across_restarts() {
    let (h, submitted) = Hospitals::with_pending_request();
    // A previous run answered it but crashed before the chain showed it: the state says so.
    let mut state = ReplyState::default();
    state.handled.insert(
        ReplyState::key("hospital-a", &submitted.request_id),
        Handled {
            outcome: "records".into(),
            txhash: Some("00".into()),
            at: 1,
        },
    );
    state.save(&h.state_path()).unwrap();
    let (report, _) = h.reply_pass();
    assert_eq!(report, PassReport::default());
    // The request is still pending on B: nothing was sent.
    assert_eq!(h.world.borrow().b.pending_incoming().len(), 1);
}

#[test]
fn a_second_responder_is_refused_already_answered_and_not_retried() {
    let h = Hospitals::new();
    h.store_record(GIVEN, FAMILY);
    let second = register(&h.world, Side::B, "reply-service-2", &[Role::Reply]);
    let client_a = h.client(Side::A, &h.requester);
    let submitted = h.submit(&client_a, GIVEN, FAMILY).unwrap();
    h.world.borrow_mut().relay_requests();

    // Both services saw the request pending; the second submits after the first won.
    let exchange_b = h.exchange_addr(Side::B);
    let client2 = h.client(Side::B, &second);
    let peer2 = h.peer(&client2, Side::B, &second);
    let incoming = h.world.borrow().b.pending_incoming();
    assert_eq!(incoming.len(), 1);
    let (report, _) = h.reply_pass();
    assert_eq!(report.answered, 1);
    let body = ehrx::sign::reply_body(
        &ehrx::sign::ReplyParties {
            request_id: &submitted.request_id,
            requester_network: "hospital-a",
            responder_network: "hospital-b",
            responder: &peer2.address,
            recipient_key: &incoming[0].body.reply_encryption_key,
        },
        ehr_protocol::chunks::Manifest::of(&[vec![0u8; 1024]]),
        ehrx::time::now_unix(),
    );
    let msg = ehrx::sign::submit_reply(peer2.keys.signing_key(), &body);
    let err = ehrx::chain::execute(
        &client2,
        &exchange_b,
        &ehr_protocol::exchange::ExecuteMsg::SubmitReply(msg),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ChainError::SoftRejected {
                code: ErrorCode::AlreadyAnswered,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn audit_log_exports_as_fhir_audit_events() {
    let h = Hospitals::new();
    let client_a = h.client(Side::A, &h.requester);
    let submitted = h.submit(&client_a, GIVEN, FAMILY).unwrap();
    let rejected = h.submit(&client_a, GIVEN, FAMILY);
    assert!(rejected.is_err());

    let exchange = Exchange::connect(&client_a, &h.exchange_addr(Side::A)).unwrap();
    let all = audit_export::collect(
        &exchange,
        audit_export::AuditSource::Exchange,
        &Default::default(),
    )
    .unwrap();
    assert!(all.len() >= 2);
    let filter = audit_export::AuditFilter {
        request_id: Some(submitted.request_id.clone()),
        ..Default::default()
    };
    let mine =
        audit_export::collect(&exchange, audit_export::AuditSource::Exchange, &filter).unwrap();
    assert_eq!(mine.len(), 1);
    let bundle = audit_export::to_fhir(&exchange, audit_export::AuditSource::Exchange, &all);
    fhir::validate_bundle(&bundle).unwrap();
    let events: Vec<&Value> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .collect();
    let submitted_ev = events
        .iter()
        .find(|e| e["entity"][0]["what"]["identifier"]["value"] == submitted.request_id.as_str())
        .expect("an event for the request");
    assert_eq!(submitted_ev["resourceType"], "AuditEvent");
    assert_eq!(submitted_ev["type"]["code"], "110112");
    let action = |ev: &Value| {
        ev["entity"].as_array().unwrap().last().unwrap()["detail"][0]["valueString"].clone()
    };
    assert_eq!(action(submitted_ev), "request_submitted");
    assert_eq!(submitted_ev["outcome"], "0");
    assert_eq!(
        submitted_ev["purposeOfEvent"][0]["coding"][0]["code"],
        "TREAT"
    );
    // The clinician who asked is the agent typed information recipient, the requestor.
    let clinician = submitted_ev["agent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"]["coding"][0]["code"] == "IRCP")
        .expect("the clinician");
    assert_eq!(
        clinician["who"]["identifier"],
        json!({"system": fhir::CLINICIAN_SYSTEM, "value": "dr-adams"})
    );
    assert_eq!(clinician["requestor"], true);
    assert_eq!(clinician["purposeOfUse"][0]["coding"][0]["code"], "TREAT");
    let theirs = audit_export::AuditFilter {
        clinician_id: Some("dr-adams".into()),
        ..Default::default()
    };
    let theirs =
        audit_export::collect(&exchange, audit_export::AuditSource::Exchange, &theirs).unwrap();
    assert!(theirs
        .iter()
        .any(|e| e.request_id.as_ref() == Some(&submitted.request_id)));
    assert!(events.iter().any(|e| e["outcome"] == "4"
        && e["outcomeDesc"]
            .as_str()
            .is_some_and(|d| d.starts_with("RateLimited"))));
    let registry = audit_export::collect(
        &exchange,
        audit_export::AuditSource::Registry,
        &Default::default(),
    )
    .unwrap();
    assert!(!registry.is_empty());
    // The clinician's registration, with the clinician as its entity.
    let registered =
        audit_export::to_fhir(&exchange, audit_export::AuditSource::Registry, &registry);
    assert!(registered["entry"].as_array().unwrap().iter().any(|e| {
        action(&e["resource"]) == "clinician_changed"
            && e["resource"]["subtype"][0]["code"] == "110136"
            && e["resource"]["entity"][0]["what"]["identifier"]["value"] == "dr-adams"
    }));
}

// ------------------------------------------------------------------ through the CLI

fn run_cli(
    args: &[&str],
    factory: &dyn Fn(&ehrx::config::Settings) -> anyhow::Result<Box<dyn ChainClient>>,
) -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(args).expect("arguments parse");
    cli::run(cli, factory)
}

#[test]
fn cli_store_then_request_writes_history_with_provenance() {
    let h = Hospitals::new();
    let tmp = h.tmp.path();
    // Files as a hospital would have them.
    // B's own pseudonym key (the reply service uses the same one).
    let pseudonym_file = tmp.join("pseudonym.key");
    ehrx::keys::write_secret(
        &pseudonym_file,
        format!("{}\n", hex::encode(B_PSEUDONYM_KEY)).as_bytes(),
    )
    .unwrap();
    let storer_dir = KeyDir::new(tmp.join("storer-keys"));
    save(&storer_dir, &h.storer.1);
    let requester_dir = KeyDir::new(tmp.join("requester-keys"));
    save(&requester_dir, &h.requester.1);
    // The clinician's key, made with `ehrx clinician new` in the requester's key dir and
    // registered by A's admin.
    run_cli(
        &[
            "ehrx",
            "--key-dir",
            requester_dir.path().to_str().unwrap(),
            "clinician",
            "new",
            "--id",
            "dr-cli",
        ],
        &|_| anyhow::bail!("no chain needed"),
    )
    .unwrap();
    let cli_clinician = ClinicianKey::load(
        "dr-cli",
        &ehrx::clinician::default_key_file(requester_dir.path(), "dr-cli"),
        || anyhow::bail!("not protected"),
    )
    .unwrap();
    register_clinician(
        &h.world,
        Side::A,
        &cli_clinician,
        &[PurposeOfUse::Treatment],
    );
    let bundle_file = tmp.join("bundle.json");
    std::fs::write(&bundle_file, bundle()).unwrap();
    let demo_file = tmp.join("patient.json");
    std::fs::write(
        &demo_file,
        json!({"given": GIVEN, "family": FAMILY, "birth_date": DOB, "ssn": SSN}).to_string(),
    )
    .unwrap();
    let records_key = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(h.records_key().as_bytes())
    };

    let storer_client = h.client(Side::B, &h.storer);
    let exchange_b = h.exchange_addr(Side::B);
    run_cli(
        &[
            "ehrx",
            "--key-dir",
            storer_dir.path().to_str().unwrap(),
            "--pseudonym-key-file",
            pseudonym_file.to_str().unwrap(),
            "--records-key",
            &records_key,
            "--exchange",
            &exchange_b,
            "store",
            "--bundle",
            bundle_file.to_str().unwrap(),
            "--demographics",
            demo_file.to_str().unwrap(),
        ],
        &|_| Ok(Box::new(storer_client.clone())),
    )
    .unwrap();

    // A's client relays and lets B's reply service run whenever ehrx polls the status.
    let mut requester_client = h.client(Side::A, &h.requester);
    let (world, responder, state) = (
        h.world.clone(),
        (h.responder.0.clone(), same_keys(&h.responder.1)),
        h.state_path(),
    );
    let exchange_b2 = exchange_b.clone();
    requester_client.on_status_poll = Some(Rc::new(move || {
        world.borrow_mut().relay_requests();
        reply_pass(&world, &responder, &exchange_b2, &state);
        world.borrow_mut().relay_replies();
    }));
    let out = tmp.join("history.json");
    run_cli(
        &[
            "ehrx",
            "--key-dir",
            requester_dir.path().to_str().unwrap(),
            "--exchange",
            &h.exchange_addr(Side::A),
            "--poll-interval-secs",
            "0",
            "request",
            "--partner",
            "hospital-b",
            "--clinician",
            "dr-cli",
            "--purpose",
            "treatment",
            "--given",
            "jose",
            "--family",
            "alvarez-nunez",
            "--birth-date",
            "19840312",
            "--ssn",
            "219099999",
            "--out",
            out.to_str().unwrap(),
            "--wait-secs",
            "5",
            "--bundle-type",
            "searchset",
        ],
        &|_| Ok(Box::new(requester_client.clone())),
    )
    .unwrap();
    let history: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    fhir::validate_bundle(&history).unwrap();
    assert_eq!(history["type"], "searchset");
    assert_eq!(history["total"], 2);
    assert_eq!(
        history["entry"][0]["resource"]["identifier"][0]["value"],
        SSN
    );
    assert_eq!(
        history["entry"][2]["resource"]["resourceType"],
        "Provenance"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // And the audit export of hospital A, filtered to nothing older than a day ago.
    let audit_out = tmp.join("audit.json");
    let since = (ehrx::time::now_unix() - 86_400).to_string();
    let client_a = h.client(Side::A, &h.requester);
    run_cli(
        &[
            "ehrx",
            "--exchange",
            &h.exchange_addr(Side::A),
            "audit",
            "export",
            "--since",
            &since,
            "--out",
            audit_out.to_str().unwrap(),
        ],
        &|_| Ok(Box::new(client_a.clone())),
    )
    .unwrap();
    let audit: Value = serde_json::from_slice(&std::fs::read(&audit_out).unwrap()).unwrap();
    // The contract's action name travels as the `ehrx-action` detail of an entity (every
    // code of the event is a standard one, BALP / DICOM).
    let kinds: Vec<&str> = audit["entry"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["resource"]["entity"].as_array().into_iter().flatten())
        .flat_map(|entity| entity["detail"].as_array().into_iter().flatten())
        .filter(|d| d["type"] == "ehrx-action")
        .filter_map(|d| d["valueString"].as_str())
        .collect();
    for expected in ["request_submitted", "reply_received", "retrieval"] {
        assert!(
            kinds.contains(&expected),
            "{expected} missing from {kinds:?}"
        );
    }
    assert_no_phi(&std::fs::read(&audit_out).unwrap(), "audit export");
}

/// A history of about 900 KiB that does not compress (a scanned document), for `family`.
fn scanned_bundle(family: &str) -> Vec<u8> {
    use base64::Engine as _;
    use rand_core::RngCore as _;
    let mut scan = vec![0u8; 700 * 1024];
    ehrx::keys::os_rng().fill_bytes(&mut scan);
    serde_json::to_vec(&json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:7d3c1a52-1c3e-4b9e-9a36-1f0b7f1c2b01",
             "resource": {"resourceType": "Patient", "id": "p2",
                "name": [{"given": [GIVEN], "family": family}]}},
            {"fullUrl": "urn:uuid:7d3c1a52-1c3e-4b9e-9a36-1f0b7f1c2b02",
             "resource": {"resourceType": "DocumentReference", "id": "scan1", "status": "current",
                "subject": {"reference": "urn:uuid:7d3c1a52-1c3e-4b9e-9a36-1f0b7f1c2b01"},
                "content": [{"attachment": {"contentType": "application/pdf",
                    "data": base64::engine::general_purpose::STANDARD.encode(&scan)}}]}}
        ]
    }))
    .unwrap()
}

#[test]
fn a_large_reply_does_not_hold_up_a_small_one_and_survives_a_restart() {
    let h = Hospitals::new();
    // A large history for one patient (1 MiB sealed: 8 chunks, two transactions) and a
    // small one for another.
    let client_b = h.client(Side::B, &h.storer);
    let peer_b = h.peer(&client_b, Side::B, &h.storer);
    let big = Demographics::new(GIVEN, "Largefile", DOB, SSN).unwrap();
    let stored = store::store(
        &peer_b,
        &store::CheckedBundle::new(&scanned_bundle("Largefile")).unwrap(),
        None,
        &pseudonym(&h.pseudonym_key, &big),
        &h.records_key(),
        ehr_protocol::consent::RecordCategory::General,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(stored.chunks, 8);
    h.store_record(GIVEN, FAMILY);

    let client_a = h.client(Side::A, &h.requester);
    let large = h.submit(&client_a, GIVEN, "Largefile").unwrap();
    // The policy lets a peer ask once a minute.
    h.world
        .borrow_mut()
        .a
        .app
        .update_block(|b| b.time = b.time.plus_seconds(61));
    let small = h.submit(&client_a, GIVEN, FAMILY).unwrap();
    h.world.borrow_mut().relay_requests();

    // The first pass answers the small request and sends the large reply's first batch;
    // the second batch waits for the next pass, after whatever new request comes in.
    let (report, logs) = h.reply_pass();
    assert_eq!((report.answered, report.uploading), (1, 1), "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.contains(&small.request_id) && l.contains("answered")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains(&large.request_id) && l.contains("4/8 chunks sent")),
        "{logs:?}"
    );
    // The service stops here; a new one (from the same state file) goes on where it stopped.
    let state = ehrx::reply_service::ReplyState::load(&h.state_path()).unwrap();
    assert_eq!(state.in_flight.len(), 1);
    let (report, logs) = h.reply_pass();
    assert_eq!((report.answered, report.uploading), (1, 0), "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.contains(&large.request_id) && l.contains("answered records in 8")),
        "{logs:?}"
    );
    let state = ehrx::reply_service::ReplyState::load(&h.state_path()).unwrap();
    assert!(state.in_flight.is_empty(), "nothing left in flight");
    assert_eq!(
        std::fs::read_dir(h.state_path().with_extension("uploads"))
            .unwrap()
            .count(),
        0,
        "the sealed chunks are gone once sent"
    );

    h.world.borrow_mut().relay_replies();
    let peer_a = h.peer(&client_a, Side::A, &h.requester);
    let secrets = vec![ehrx::crypto::X25519Secret::from_bytes(
        h.requester.1.encryption_secret().to_bytes().as_ref(),
    )
    .unwrap()];
    let reply = request::retrieve(&peer_a, &large.request_id).unwrap();
    assert_eq!(reply.manifest.chunk_count(), 8);
    let mut progress = Vec::new();
    let ReplyContent::Records(bundles) =
        request::open_reply(&peer_a, &secrets, &large.request_id, &reply, &mut |m| {
            progress.push(m.to_string())
        })
        .unwrap()
    else {
        panic!("records");
    };
    assert!(bundles[0].len() > 900_000);
    assert!(
        progress.iter().any(|l| l.contains("8/8 chunks")),
        "{progress:?}"
    );
}
