//! Test peers with freshly generated keys, test patients, and signed messages built the way
//! the peer tool builds them (through `ehr_protocol::signing`).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use cosmwasm_std::{Addr, Binary};
use ehr_protocol::chunks::{chunk_aad, Layout, Manifest};
use ehr_protocol::consent::RecordCategory;
use ehr_protocol::exchange::{PurposeOfUse, StoreRecordMsg, SubmitReplyMsg, SubmitRequestMsg};
use ehr_protocol::limits::PACKET_VERSION;
use ehr_protocol::limits::SEAL_OVERHEAD;
use ehr_protocol::packet::{
    frame, unframe, Attestation, RecordPart, ReplyBody, RequestBody, SealedOutcome,
};
use ehr_protocol::padding;
use ehr_protocol::registry::{ClinicianInput, PeerInput, Role};
use ehr_protocol::signing::{
    content_hash, digest, reply_sign_bytes, request_sign_bytes, store_sign_bytes, StoreSigning,
};
use hmac::{Hmac, Mac};
use k256::ecdsa::signature::hazmat::PrehashSigner;
use k256::ecdsa::{Signature, SigningKey};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

/// A registered (or would-be) peer: its chain address and its own signing key.
pub struct TestPeer {
    pub address: Addr,
    pub signing_key: SigningKey,
    pub encryption_key: [u8; 32],
    pub roles: Vec<Role>,
}

/// 64-byte compact, low-S signature over the canonical bytes' digest, as the peer tool signs.
fn sign_low_s(key: &SigningKey, sign_bytes: &[u8]) -> Binary {
    let signature: Signature = key
        .sign_prehash(&digest(sign_bytes))
        .expect("signing a 32-byte digest");
    let signature = signature.normalize_s().unwrap_or(signature);
    Binary::from(signature.to_bytes().to_vec())
}

fn compressed(key: &SigningKey) -> Binary {
    Binary::from(
        key.verifying_key()
            .to_encoded_point(true)
            .as_bytes()
            .to_vec(),
    )
}

/// A health worker with their own key, as the admin registers them (`RegisterClinician`).
/// Only they can sign requests in their name.
pub struct TestClinician {
    pub id: String,
    pub signing_key: SigningKey,
}

impl TestClinician {
    pub fn new(id: &str) -> Self {
        TestClinician {
            id: id.to_string(),
            signing_key: SigningKey::random(&mut OsRng),
        }
    }

    pub fn pubkey(&self) -> Binary {
        compressed(&self.signing_key)
    }

    pub fn sign(&self, sign_bytes: &[u8]) -> Binary {
        sign_low_s(&self.signing_key, sign_bytes)
    }

    pub fn input(&self, allowed_purposes: &[PurposeOfUse]) -> ClinicianInput {
        ClinicianInput {
            clinician_id: self.id.clone(),
            signing_key: self.pubkey(),
            allowed_purposes: allowed_purposes.to_vec(),
            valid_from: None,
            valid_until: None,
            break_glass: false,
        }
    }

    /// What this clinician signs to co-sign break-glass request `request_id` sent from
    /// `network_id`.
    pub fn cosign(&self, network_id: &str, request_id: &str) -> Binary {
        self.sign(&ehr_protocol::signing::cosign_sign_bytes(
            network_id, request_id, &self.id,
        ))
    }
}

impl TestPeer {
    pub fn new(address: Addr, roles: &[Role]) -> Self {
        let mut encryption_key = [0u8; 32];
        OsRng.fill_bytes(&mut encryption_key);
        TestPeer {
            address,
            signing_key: SigningKey::random(&mut OsRng),
            encryption_key,
            roles: roles.to_vec(),
        }
    }

    pub fn pubkey(&self) -> Binary {
        compressed(&self.signing_key)
    }

    pub fn peer_input(&self) -> PeerInput {
        PeerInput {
            address: self.address.to_string(),
            signing_key: self.pubkey(),
            encryption_key: Binary::from(self.encryption_key.to_vec()),
            device_id: "00-1B-44-11-3A-B7".replace('-', ""),
            roles: self.roles.clone(),
            valid_from: None,
            valid_until: None,
        }
    }

    /// 64-byte compact, low-S signature over the canonical bytes' digest.
    pub fn sign(&self, sign_bytes: &[u8]) -> Binary {
        sign_low_s(&self.signing_key, sign_bytes)
    }

    /// The high-S twin (r, n - s) of a low-S signature: it verifies under the same key, so
    /// only a low-S rule refuses it.
    pub fn high_s(signature: &Binary) -> Binary {
        let sig = Signature::from_slice(signature.as_slice()).expect("a compact signature");
        let (r, s) = sig.split_scalars();
        let twin = Signature::from_scalars(r, -s).expect("n - s is a valid scalar");
        Binary::from(twin.to_bytes().to_vec())
    }

    /// A signed `StoreRecord` with every chunk of `sealed`.
    pub fn store_msg(
        &self,
        network_id: &str,
        record_id: &str,
        patient: &Patient,
        sealed: &Sealed,
    ) -> StoreRecordMsg {
        self.store_msg_as(
            network_id,
            record_id,
            patient,
            sealed,
            RecordCategory::General,
        )
    }

    /// A signed `StoreRecord` of a record of `category`.
    pub fn store_msg_as(
        &self,
        network_id: &str,
        record_id: &str,
        patient: &Patient,
        sealed: &Sealed,
        category: RecordCategory,
    ) -> StoreRecordMsg {
        let pseudonym = patient.pseudonym_at(network_id);
        let signature = self.sign(&store_sign_bytes(&StoreSigning {
            network_id,
            storer: self.address.as_str(),
            record_id,
            patient_token: &pseudonym,
            manifest: &sealed.manifest,
            category,
        }));
        StoreRecordMsg {
            record_id: record_id.to_string(),
            patient_token: pseudonym,
            manifest: sealed.manifest.clone(),
            signature,
            chunks: sealed.binaries(),
            category,
        }
    }

    /// A fresh request id in this peer's scope (`ehr_protocol::validate::request_scope`).
    pub fn request_id(&self) -> String {
        let mut bytes = [0u8; 8];
        OsRng.fill_bytes(&mut bytes);
        ehr_protocol::validate::scoped_request_id(self.address.as_str(), &hex::encode(bytes))
    }

    /// The request body the contract will rebuild from a `SubmitRequestMsg` and this sender.
    #[allow(clippy::too_many_arguments)]
    pub fn request_msg(
        &self,
        request_id: &str,
        source_network: &str,
        partner_id: &str,
        clinician: &TestClinician,
        patient: &Patient,
        now: u64,
        ttl: u64,
    ) -> SubmitRequestMsg {
        let body = RequestBody {
            version: PACKET_VERSION,
            request_id: request_id.to_string(),
            source_network: source_network.to_string(),
            destination_network: partner_id.to_string(),
            requester: self.address.to_string(),
            requester_role: Role::Request,
            clinician_id: clinician.id.clone(),
            purpose: PurposeOfUse::Treatment,
            sealed_patient: Binary::from(seal(&custodian_key(partner_id), &patient.details())),
            reply_encryption_key: Binary::from(self.encryption_key.to_vec()),
            issued_at: now,
            expires_at: now + ttl,
            break_glass: None,
        };
        Self::sign_request(&body, clinician)
    }

    /// The message a peer submits for `body`, signed by the clinician.
    pub fn sign_request(body: &RequestBody, clinician: &TestClinician) -> SubmitRequestMsg {
        SubmitRequestMsg {
            request_id: body.request_id.clone(),
            partner_id: body.destination_network.clone(),
            clinician_id: body.clinician_id.clone(),
            purpose: body.purpose,
            sealed_patient: body.sealed_patient.clone(),
            reply_encryption_key: body.reply_encryption_key.clone(),
            issued_at: body.issued_at,
            expires_at: body.expires_at,
            signature: clinician.sign(&request_sign_bytes(body)),
            break_glass: body.break_glass.clone(),
        }
    }

    /// A reply to `request_id`, encrypted (as the responder signs) to `recipient_key`: the
    /// reply key the request named, the requester's registered encryption key.
    pub fn reply_body(
        &self,
        request_id: &str,
        requester_network: &str,
        responder_network: &str,
        recipient_key: &[u8],
        outcome: &Sealed,
        now: u64,
    ) -> ReplyBody {
        ReplyBody {
            version: PACKET_VERSION,
            request_id: request_id.to_string(),
            requester_network: requester_network.to_string(),
            responder_network: responder_network.to_string(),
            responder: self.address.to_string(),
            recipient_key_hash: ehr_protocol::signing::key_hash(recipient_key),
            manifest: outcome.manifest.clone(),
            issued_at: now,
        }
    }

    /// A signed `SubmitReply` for `body` with the chunks of `outcome`.
    pub fn reply_msg(&self, body: &ReplyBody, outcome: &Sealed) -> SubmitReplyMsg {
        SubmitReplyMsg {
            partner_id: body.requester_network.clone(),
            request_id: body.request_id.clone(),
            manifest: body.manifest.clone(),
            issued_at: body.issued_at,
            signature: self.sign(&reply_sign_bytes(body)),
            chunks: outcome.binaries(),
            disclosure: None,
        }
    }
}

/// A test patient: the demographics stay in the test. On chain, each custodian keeps the
/// patient's records under its own pseudonym (`pseudonym_at`); requests carry the details
/// sealed to the custodian, never a comparable value.
#[derive(Clone)]
pub struct Patient {
    pub given: &'static str,
    pub family: &'static str,
    pub birth_date: &'static str,
    pub ssn: &'static str,
    /// The pseudonym at hospital-b, the default custodian.
    pub token: String,
}

/// A custodian's local pseudonym key: it never leaves that hospital (here: derived from its
/// network id, so tests on every chain agree).
pub fn pseudonym_key(network: &str) -> [u8; 32] {
    Sha256::digest([b"test-pseudonym-key/".as_slice(), network.as_bytes()].concat()).into()
}

/// The key requests seal patient details to for `network` (a stand-in for its registered
/// X25519 custodian key).
pub fn custodian_key(network: &str) -> [u8; 32] {
    Sha256::digest([b"test-custodian-key/".as_slice(), network.as_bytes()].concat()).into()
}

/// The custodian `network`'s pseudonym for a patient with these details.
pub fn pseudonym(network: &str, fields: [&str; 4]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&pseudonym_key(network)).expect("any key length");
    for field in fields {
        mac.update(&(field.len() as u32).to_be_bytes());
        mac.update(field.to_lowercase().as_bytes());
    }
    hex::encode(mac.finalize().into_bytes())
}

impl Patient {
    pub fn new(
        given: &'static str,
        family: &'static str,
        birth_date: &'static str,
        ssn: &'static str,
    ) -> Self {
        Patient {
            given,
            family,
            birth_date,
            ssn,
            token: pseudonym("hospital-b", [given, family, birth_date, ssn]),
        }
    }

    /// This patient's pseudonym at the custodian `network`.
    pub fn pseudonym_at(&self, network: &str) -> String {
        pseudonym(
            network,
            [self.given, self.family, self.birth_date, self.ssn],
        )
    }

    /// The details a request seals to the custodian.
    pub fn details(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "given": self.given, "family": self.family,
            "birth_date": self.birth_date, "ssn": self.ssn,
        }))
        .expect("static JSON")
    }

    /// What the custodian `network` does with sealed details: open them and compute its
    /// pseudonym. `None` when they are not sealed to it.
    pub fn pseudonym_from_sealed(network: &str, sealed: &[u8]) -> Option<String> {
        let details: serde_json::Value =
            serde_json::from_slice(&open(&custodian_key(network), sealed)?).ok()?;
        let field = |name: &str| details[name].as_str().map(str::to_string);
        let fields = [
            field("given")?,
            field("family")?,
            field("birth_date")?,
            field("ssn")?,
        ];
        Some(pseudonym(
            network,
            [&fields[0], &fields[1], &fields[2], &fields[3]],
        ))
    }

    /// A FHIR R4 Bundle holding the patient's demographics and one observation: the PHI
    /// the privacy test looks for.
    pub fn fhir_bundle(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"fullUrl": "urn:uuid:3b0f6c2e-8a41-4d6b-9f27-5c1e0a9d4b01",
                 "resource": {"resourceType": "Patient",
                    "name": [{"given": [self.given], "family": self.family}],
                    "birthDate": self.birth_date,
                    "identifier": [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": self.ssn}]}},
                {"fullUrl": "urn:uuid:3b0f6c2e-8a41-4d6b-9f27-5c1e0a9d4b02",
                 "resource": {"resourceType": "Observation", "status": "final",
                    "code": {"text": "Hemoglobin A1c"},
                    "subject": {"reference": "urn:uuid:3b0f6c2e-8a41-4d6b-9f27-5c1e0a9d4b01"},
                    "valueQuantity": {"value": 6.1, "unit": "%"}}}
            ]
        }))
        .expect("static JSON")
    }
}

/// Test sealing of a payload to a 32-byte key, shaped like the peer tool's HPKE: 32 bytes
/// in front (the encapsulated key's place; its first 12 are the nonce), the plaintext padded
/// to its size bucket, ChaCha20-Poly1305's 16-byte tag. The contracts only ever see opaque,
/// bucket-sized ciphertext.
pub fn seal(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(key.into());
    let mut head = [0u8; 32];
    OsRng.fill_bytes(&mut head);
    let nonce: [u8; 12] = head[..12].try_into().expect("12 bytes");
    let mut out = head.to_vec();
    out.extend(
        cipher
            .encrypt(&Nonce::from(nonce), padding::pad(plaintext).as_slice())
            .expect("encrypt"),
    );
    out
}

pub fn open(key: &[u8; 32], sealed: &[u8]) -> Option<Vec<u8>> {
    let (head, ciphertext) = sealed.split_at_checked(32)?;
    let nonce: [u8; 12] = head[..12].try_into().ok()?;
    let padded = ChaCha20Poly1305::new(key.into())
        .decrypt(&Nonce::from(nonce), ciphertext)
        .ok()?;
    padding::unpad(&padded).map(<[u8]>::to_vec)
}

/// A sealed history as the chains see it: its manifest and its chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub manifest: Manifest,
    pub chunks: Vec<Vec<u8>>,
}

impl Sealed {
    pub fn binaries(&self) -> Vec<Binary> {
        self.chunks
            .iter()
            .map(|c| Binary::from(c.as_slice()))
            .collect()
    }
}

/// The largest chunk the default policy allows.
pub const TEST_MAX_CHUNK: usize = ehr_protocol::limits::MAX_CHUNK_BYTES;

fn chunk_nonce(head: &[u8], index: usize) -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&head[..8]);
    nonce[8..].copy_from_slice(&(index as u32).to_be_bytes());
    Nonce::from(nonce)
}

/// Test sealing of a history to a 32-byte key, shaped like the peer tool's chunked HPKE
/// (`ehr_protocol::chunks`): 32 bytes in front of chunk 0 (the encapsulated key's place;
/// its first 8 are the nonce prefix), one ChaCha20-Poly1305 message per chunk with the
/// chunk's index and count as associated data, every chunk the layout's size.
pub fn seal_history(key: &[u8; 32], plaintext: &[u8], max_chunk: usize) -> Sealed {
    let cipher = ChaCha20Poly1305::new(key.into());
    let layout = Layout::for_plaintext(plaintext.len(), max_chunk);
    let mut head = [0u8; 32];
    OsRng.fill_bytes(&mut head);
    let chunks: Vec<Vec<u8>> = layout
        .pad_and_cut(plaintext)
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let sealed = cipher
                .encrypt(
                    &chunk_nonce(&head, i),
                    Payload {
                        msg: part,
                        aad: &chunk_aad(i, layout.chunks),
                    },
                )
                .expect("encrypt");
            if i == 0 {
                [head.as_slice(), &sealed].concat()
            } else {
                sealed
            }
        })
        .collect();
    Sealed {
        manifest: Manifest::of(&chunks),
        chunks,
    }
}

/// `seal_history` undone; `None` for another key, or chunks altered, moved or missing.
pub fn open_history(key: &[u8; 32], chunks: &[Vec<u8>]) -> Option<Vec<u8>> {
    let cipher = ChaCha20Poly1305::new(key.into());
    let head = chunks.first()?.get(..32)?.to_vec();
    let parts = chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let body = if i == 0 { &chunk[32..] } else { &chunk[..] };
            cipher
                .decrypt(
                    &chunk_nonce(&head, i),
                    Payload {
                        msg: body,
                        aad: &chunk_aad(i, chunks.len()),
                    },
                )
                .ok()
        })
        .collect::<Option<Vec<_>>>()?;
    Layout::join_and_unpad(&parts)
}

/// A bucket-sized history that stands for an opaque one: `bytes` padded and cut, not
/// encrypted (the contracts only ever see opaque chunks).
pub fn opaque(bytes: &[u8]) -> Sealed {
    let layout = Layout::for_plaintext(bytes.len(), TEST_MAX_CHUNK);
    let chunks: Vec<Vec<u8>> = layout
        .pad_and_cut(bytes)
        .into_iter()
        .enumerate()
        .map(|(i, mut part)| {
            let lead = if i == 0 { SEAL_OVERHEAD } else { 16 };
            part.resize(part.len() + lead, 0);
            part
        })
        .collect();
    Sealed {
        manifest: Manifest::of(&chunks),
        chunks,
    }
}

/// A sealed reply outcome to the requester's key, as a reply service builds it (an outcome
/// without parts: no records, declined).
pub fn sealed_outcome(requester_key: &[u8; 32], outcome: &SealedOutcome) -> Sealed {
    let header = serde_json::to_vec(outcome).expect("outcome JSON");
    seal_history(requester_key, &frame(&header, &[]), TEST_MAX_CHUNK)
}

/// A sealed records outcome: one part holding `bundle` (in tests: as it is, with a stand-in
/// attestation; the peer tool compresses and attests it).
pub fn sealed_records(requester_key: &[u8; 32], bundle: &[u8]) -> Sealed {
    let outcome = SealedOutcome::Records {
        parts: vec![RecordPart {
            bytes: bundle.len() as u64,
            attestation: Attestation {
                network_id: "hospital-b".into(),
                storer: "test-storer".into(),
                storer_pubkey: Binary::default(),
                nonce: Binary::default(),
                commitment: content_hash(bundle),
                signature: Binary::default(),
            },
        }],
    };
    let header = serde_json::to_vec(&outcome).expect("outcome JSON");
    seal_history(requester_key, &frame(&header, bundle), TEST_MAX_CHUNK)
}

/// What the requester reads in a sealed outcome, if it is sealed to `key`: the outcome and
/// the bytes of its parts.
pub fn open_outcome(key: &[u8; 32], chunks: &[Vec<u8>]) -> Option<(SealedOutcome, Vec<u8>)> {
    let plain = open_history(key, chunks)?;
    let (outcome, body): (SealedOutcome, &[u8]) = unframe(&plain)?;
    Some((outcome, body.to_vec()))
}

/// A fresh random request or record id in the protocol's format.
pub fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}-{}", hex::encode(bytes))
}
