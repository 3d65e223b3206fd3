//! The paper's setting, ready to use: hospital A (requester) and hospital B (holder of the
//! patient's records), an open channel between their exchange contracts, registered peers,
//! and one patient whose encrypted record is stored on B.

use super::chain::{Chain, ExchangeResult};
use super::peer::{
    open_history, random_id, seal_history, sealed_outcome, sealed_records, Patient, Sealed,
    TestPeer, TEST_MAX_CHUNK,
};
use super::relayer::{Delivery, Link, Relayer, VERSION};
use cosmwasm_std::IbcOrder;
use ehr_protocol::exchange::SubmitRequestMsg;
use ehr_protocol::packet::SealedOutcome;
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
