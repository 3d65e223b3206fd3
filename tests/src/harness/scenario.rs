//! The paper's setting, ready to use: hospital A (requester) and hospital B (holder of the
//! patient's records), an open channel between their exchange contracts, registered peers,
//! and one patient whose encrypted record is stored on B.

use super::chain::{Chain, ExchangeResult};
use super::peer::{
    open_history, random_id, seal_history, sealed_outcome, sealed_records, Patient, Sealed,
    TestClinician, TestPeer, TEST_MAX_CHUNK,
};
use super::relayer::{Delivery, Link, Relayer, VERSION};
use cosmwasm_std::IbcOrder;
use ehr_protocol::consent::{
    BreakGlass, ConsentDecision, ConsentDirectiveInput, EmergencyReason, RecordCategory,
};
use ehr_protocol::exchange::{Disclosure, ExecuteMsg, PurposeOfUse, SubmitRequestMsg};
use ehr_protocol::limits::PACKET_VERSION;
use ehr_protocol::packet::{RequestBody, SealedOutcome};
use ehr_protocol::registry::{Policy, Role};
use rand_core::{OsRng, RngCore};

pub const REQUEST_TTL: u64 = 1800;

pub struct TwoHospitals {
    pub a: Chain,
    pub b: Chain,
    /// A -> B direction of the channel; `reverse()` for replies.
    pub ab: Link,
    pub requester: TestPeer,
    pub storer: TestPeer,
    pub responder: TestPeer,
    /// B's privacy office (role `privacy`): records and revokes consent directives.
    pub privacy: TestPeer,
    pub patient: Patient,
    /// B's records key (stored records are encrypted to it).
    pub records_key: [u8; 32],
    pub record_id: String,
}

impl TwoHospitals {
    pub fn new() -> Self {
        Self::with_policy(Policy::default())
    }

    pub fn with_policy(policy: Policy) -> Self {
        let mut a = Chain::with_policy("hospa", "hospital-a", policy.clone());
        let mut b = Chain::with_policy("hospb", "hospital-b", policy);
        let ab = link_partners(&mut a, &mut b);
        let requester = a.add_peer("dr-adams", &[Role::Request]);
        let storer = b.add_peer("records-desk", &[Role::Store]);
        let responder = b.add_peer("reply-service", &[Role::Reply]);
        let privacy = b.add_peer("privacy-office", &[Role::Privacy]);
        let patient = Patient::new("Maria", "Gonzalez", "1984-03-12", "219-09-9999");
        let mut records_key = [0u8; 32];
        OsRng.fill_bytes(&mut records_key);
        let record_id = random_id("rec");
        let sealed = seal_history(&records_key, &patient.fhir_bundle(), TEST_MAX_CHUNK);
        let network = b.network_id.clone();
        b.store(
            &storer,
            storer.store_msg(&network, &record_id, &patient, &sealed),
        )
        .accepted();
        TwoHospitals {
            a,
            b,
            ab,
            requester,
            storer,
            responder,
            privacy,
            patient,
            records_key,
            record_id,
        }
    }

    /// Moves both chains' clocks together.
    pub fn advance(&mut self, secs: u64) {
        self.a.advance(secs);
        self.b.advance(secs);
    }

    /// A request from A to B for the patient, signed by `signer`, issued at `issued_at`
    /// and living `ttl` seconds.
    pub fn request_msg(
        &self,
        signer: &TestPeer,
        id: &str,
        issued_at: u64,
        ttl: u64,
    ) -> SubmitRequestMsg {
        signer.request_msg(
            id,
            "hospital-a",
            "hospital-b",
            &self.a.clinician,
            &self.patient,
            issued_at,
            ttl,
        )
    }

    /// A valid, signed request from `peer` on A for the patient; returns its id and result.
    pub fn request_from(&mut self, peer: &TestPeer) -> (String, ExchangeResult) {
        let id = peer.request_id();
        let msg = self.request_msg(peer, &id, self.a.now(), REQUEST_TTL);
        let result = self.a.submit_request(peer, msg);
        (id, result)
    }

    pub fn request(&mut self) -> (String, ExchangeResult) {
        let requester =
            std::mem::replace(&mut self.requester, TestPeer::new(self.a.addr("x"), &[]));
        let out = self.request_from(&requester);
        self.requester = requester;
        out
    }

    /// A break-glass request from `signer` on A, asked by `clinician` for `purpose`, with
    /// the coded `reason` (none: a claim without one).
    pub fn break_glass_msg(
        &self,
        signer: &TestPeer,
        clinician: &TestClinician,
        purpose: PurposeOfUse,
        reason: Option<EmergencyReason>,
    ) -> SubmitRequestMsg {
        let id = signer.request_id();
        let plain = signer.request_msg(
            &id,
            "hospital-a",
            "hospital-b",
            clinician,
            &self.patient,
            self.a.now(),
            REQUEST_TTL,
        );
        let body = RequestBody {
            version: PACKET_VERSION,
            request_id: id,
            source_network: "hospital-a".into(),
            destination_network: "hospital-b".into(),
            requester: signer.address.to_string(),
            requester_role: Role::Request,
            clinician_id: clinician.id.clone(),
            purpose,
            sealed_patient: plain.sealed_patient,
            reply_encryption_key: plain.reply_encryption_key,
            issued_at: plain.issued_at,
            expires_at: plain.expires_at,
            break_glass: Some(BreakGlass { reason }),
        };
        TestPeer::sign_request(&body, clinician)
    }

    /// The requester's break-glass request for emergency treatment, asked by `clinician`;
    /// its id and result.
    pub fn request_break_glass(
        &mut self,
        clinician: &TestClinician,
        reason: Option<EmergencyReason>,
    ) -> (String, ExchangeResult) {
        let msg = self.break_glass_msg(
            &self.requester,
            clinician,
            PurposeOfUse::EmergencyTreatment,
            reason,
        );
        let id = msg.request_id.clone();
        let requester =
            std::mem::replace(&mut self.requester, TestPeer::new(self.a.addr("x"), &[]));
        let result = self.a.submit_request(&requester, msg);
        self.requester = requester;
        (id, result)
    }

    /// A directive for the patient at B, applying to everything until narrowed.
    pub fn directive(&self, decision: ConsentDecision) -> ConsentDirectiveInput {
        ConsentDirectiveInput {
            directive_id: random_id("consent"),
            patient: self.patient.token.clone(),
            decision,
            partners: vec![],
            purposes: vec![],
            categories: vec![],
            valid_from: None,
            valid_until: None,
            break_glass_override: false,
        }
    }

    /// B's privacy office records `directive`.
    pub fn record_consent(&mut self, directive: ConsentDirectiveInput) -> ExchangeResult {
        let office = self.privacy.address.clone();
        self.b
            .execute(&office, &ExecuteMsg::RecordConsent { directive })
    }

    /// B's privacy office revokes a directive of the patient.
    pub fn revoke_consent(&mut self, directive_id: &str) -> ExchangeResult {
        let office = self.privacy.address.clone();
        let patient = self.patient.token.clone();
        self.b.execute(
            &office,
            &ExecuteMsg::RevokeConsent {
                patient,
                directive_id: directive_id.to_string(),
            },
        )
    }

    /// Stores one more record of the patient on B, of `category`; its id.
    pub fn store_record_of(&mut self, category: RecordCategory) -> String {
        let record_id = random_id("rec");
        let sealed = seal_history(
            &self.records_key,
            &self.patient.fhir_bundle(),
            TEST_MAX_CHUNK,
        );
        let network = self.b.network_id.clone();
        let msg = self
            .storer
            .store_msg_as(&network, &record_id, &self.patient, &sealed, category);
        let storer = std::mem::replace(&mut self.storer, TestPeer::new(self.b.addr("x"), &[]));
        let result = self.b.store(&storer, msg);
        self.storer = storer;
        result.accepted();
        record_id
    }

    /// The reply service answers `request_id` with the patient's records, declaring that it
    /// releases `record_ids` (stored on B under the patient's pseudonym).
    pub fn answer_with_disclosure(
        &mut self,
        request_id: &str,
        record_ids: &[String],
    ) -> ExchangeResult {
        let outcome = self.reply_outcome_for(request_id);
        self.answer_sealed_with_disclosure(request_id, outcome, record_ids)
    }

    /// `answer_with_disclosure` with a given sealed outcome.
    pub fn answer_sealed_with_disclosure(
        &mut self,
        request_id: &str,
        outcome: Sealed,
        record_ids: &[String],
    ) -> ExchangeResult {
        let recipient_key = self
            .b
            .incoming("hospital-a", request_id)
            .map(|incoming| incoming.body.reply_encryption_key.to_vec())
            .unwrap_or_default();
        let body = self.responder.reply_body(
            request_id,
            "hospital-a",
            "hospital-b",
            &recipient_key,
            &outcome,
            self.b.now(),
        );
        let mut msg = self.responder.reply_msg(&body, &outcome);
        msg.disclosure = Some(Disclosure {
            patient: self.patient.token.clone(),
            record_ids: record_ids.to_vec(),
        });
        let responder =
            std::mem::replace(&mut self.responder, TestPeer::new(self.b.addr("x"), &[]));
        let result = self.b.submit_reply(&responder, msg);
        self.responder = responder;
        result
    }

    /// A -> B: delivers pending requests, and their acks back to A.
    pub fn relay_requests(&mut self) -> Vec<Delivery> {
        Relayer::relay(&mut self.a, &mut self.b, &self.ab)
    }

    /// B -> A: delivers pending replies, and their acks back to B.
    pub fn relay_replies(&mut self) -> Vec<Delivery> {
        let ba = self.ab.reverse();
        Relayer::relay(&mut self.b, &mut self.a, &ba)
    }

    /// What B's reply service does: open the sealed patient details with B's custodian key,
    /// map them to B's own pseudonym, decrypt the stored record with the records key, and
    /// seal the outcome (records or none) to the requester's reply key.
    pub fn reply_outcome_for(&self, request_id: &str) -> Sealed {
        let incoming = self
            .b
            .incoming_with_details("hospital-a", request_id)
            .expect("incoming request on B");
        let reply_key: [u8; 32] = incoming
            .body
            .reply_encryption_key
            .as_slice()
            .try_into()
            .expect("32-byte reply key");
        let pseudonym = Patient::pseudonym_from_sealed("hospital-b", &incoming.body.sealed_patient)
            .expect("patient details sealed to B");
        match self.b.record_chunks(&pseudonym, &self.record_id) {
            Some(chunks) => sealed_records(
                &reply_key,
                &open_history(&self.records_key, &chunks).expect("records key opens record"),
            ),
            None => sealed_outcome(&reply_key, &SealedOutcome::NoRecords),
        }
    }

    pub fn answer_with(
        &mut self,
        responder: &TestPeer,
        request_id: &str,
        outcome: Sealed,
    ) -> ExchangeResult {
        let recipient_key = self
            .b
            .incoming("hospital-a", request_id)
            .map(|incoming| incoming.body.reply_encryption_key.to_vec())
            .unwrap_or_default();
        let body = responder.reply_body(
            request_id,
            "hospital-a",
            "hospital-b",
            &recipient_key,
            &outcome,
            self.b.now(),
        );
        self.b
            .submit_reply(responder, responder.reply_msg(&body, &outcome))
    }

    pub fn answer(&mut self, request_id: &str) -> ExchangeResult {
        let outcome = self.reply_outcome_for(request_id);
        let responder =
            std::mem::replace(&mut self.responder, TestPeer::new(self.b.addr("x"), &[]));
        let result = self.answer_with(&responder, request_id, outcome);
        self.responder = responder;
        result
    }

    /// The whole happy path for one request; returns its id.
    pub fn full_exchange(&mut self) -> String {
        let (id, result) = self.request();
        result.accepted();
        let acks = self.relay_requests();
        assert!(
            acks.iter().all(|d| d.ack.is_success()),
            "request refused: {acks:?}"
        );
        self.answer(&id).accepted();
        let acks = self.relay_replies();
        assert!(
            acks.iter().all(|d| d.ack.is_success()),
            "reply refused: {acks:?}"
        );
        id
    }
}

impl Default for TwoHospitals {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers each chain as the other's partner and opens the channel between their
/// exchanges, as the devnet script does with Hermes. Returns the `a -> b` link.
pub fn link_partners(a: &mut Chain, b: &mut Chain) -> Link {
    let connections = Relayer::connect(a, b);
    let (a_port, b_port) = (a.port(), b.port());
    let (a_id, b_id) = (a.network_id.clone(), b.network_id.clone());
    a.add_partner(&b_id, &connections.0, &b_port);
    b.add_partner(&a_id, &connections.1, &a_port);
    Relayer::open_channel(a, b, &connections, IbcOrder::Unordered, VERSION).expect("channel opens")
}
