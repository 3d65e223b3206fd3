//! Test vectors of the signing bytes, for clients in any language
//! (`schema/test-vectors/signing.json`, written by the `signing_vectors` bin through
//! `scripts/schema.sh`; `tests/signing_vectors.rs` fails when the committed file differs).
//!
//! For each domain of `signing` (and the history hash a manifest's signature binds): the
//! inputs as they travel (JSON), the fields in signing order with their encoding, the exact
//! canonical bytes (hex) and their SHA-256. A client encodes `fields` and must get
//! `canonical_hex`; the digest is what secp256k1 signs.

use crate::chunks::{history_hash, Manifest, HISTORY_DOMAIN};
use crate::consent::{BreakGlass, EmergencyReason, RecordCategory};
use crate::exchange::PurposeOfUse;
use crate::limits::{PACKET_VERSION, SEALED_PATIENT_LEN};
use crate::packet::{ReplyBody, RequestBody};
use crate::registry::Role;
use crate::signing::{
    self, StoreSigning, ATTEST_DOMAIN, COSIGN_DOMAIN, REPLY_DOMAIN, REQUEST_DOMAIN, STORE_DOMAIN,
};
use serde_json::{json, Value};

/// How one field is encoded: `text` and `bytes` as a 4-byte big-endian length and the bytes
/// (text as UTF-8, bytes given in hex), `u64` as 8 bytes big-endian, `raw` (hex) as is.
fn text(name: &str, value: &str) -> Value {
    json!({ "name": name, "encoding": "text", "value": value })
}

fn bytes(name: &str, value: &[u8]) -> Value {
    json!({ "name": name, "encoding": "bytes", "value": hex::encode(value) })
}

fn number(name: &str, value: u64) -> Value {
    json!({ "name": name, "encoding": "u64", "value": value })
}

fn raw(name: &str, value: &[u8]) -> Value {
    json!({ "name": name, "encoding": "raw", "value": hex::encode(value) })
}

/// A manifest is signed as its chunk count, chunk size and history hash.
fn manifest_fields(m: &Manifest) -> [Value; 3] {
    [
        number("manifest.chunk_count", m.chunk_hashes.len() as u64),
        number("manifest.chunk_bytes", u64::from(m.chunk_bytes)),
        text("manifest.history_hash", &m.history_hash),
    ]
}

fn vector(
    domain: &str,
    function: &str,
    inputs: Value,
    fields: Vec<Value>,
    canonical: &[u8],
) -> Value {
    json!({
        "domain": domain,
        "function": function,
        "inputs": inputs,
        "fields": fields,
        "canonical_hex": hex::encode(canonical),
        "sha256_hex": hex::encode(signing::digest(canonical)),
    })
}

/// The manifest of the store and reply vectors: two chunks of 1 KiB.
pub fn manifest() -> Manifest {
    let chunk_hashes = vec!["00".repeat(32), "11".repeat(32)];
    Manifest {
        chunk_bytes: 1024,
        history_hash: history_hash(&chunk_hashes),
        chunk_hashes,
    }
}

pub fn request_body() -> RequestBody {
    RequestBody {
        version: PACKET_VERSION,
        request_id: "req-0000000000000001".into(),
        source_network: "hospital-a".into(),
        destination_network: "hospital-b".into(),
        requester: "wasm1req".into(),
        requester_role: Role::Request,
        clinician_id: "dr-adams".into(),
        purpose: PurposeOfUse::Treatment,
        sealed_patient: vec![4u8; SEALED_PATIENT_LEN].into(),
        reply_encryption_key: vec![1u8; 32].into(),
        issued_at: 1_700_000_000,
        expires_at: 1_700_003_600,
        break_glass: None,
    }
}

/// The request vector's break-glass twin: emergency treatment, reason `life_threatening`.
pub fn break_glass_request_body() -> RequestBody {
    RequestBody {
        purpose: PurposeOfUse::EmergencyTreatment,
        break_glass: Some(BreakGlass {
            reason: Some(EmergencyReason::LifeThreatening),
        }),
        ..request_body()
    }
}

pub fn reply_body() -> ReplyBody {
    ReplyBody {
        version: PACKET_VERSION,
        request_id: "req-0000000000000001".into(),
        requester_network: "hospital-a".into(),
        responder_network: "hospital-b".into(),
        responder: "wasm1resp".into(),
        recipient_key_hash: signing::key_hash(&[1u8; 32]),
        manifest: manifest(),
        issued_at: 1_700_000_100,
    }
}

/// An optional text: present as `text`; absent as the raw length `u32::MAX`, no bytes.
fn optional_text(name: &str, value: Option<&str>) -> Value {
    match value {
        Some(value) => text(name, value),
        None => raw(name, &u32::MAX.to_be_bytes()),
    }
}

fn request_vector(b: RequestBody) -> Value {
    let reason = b
        .break_glass
        .as_ref()
        .map(|claim| claim.reason.map_or("", |r| r.as_str()));
    let fields = vec![
        text("domain", REQUEST_DOMAIN),
        number("version", u64::from(b.version)),
        text("request_id", &b.request_id),
        text("source_network", &b.source_network),
        text("destination_network", &b.destination_network),
        text("requester", &b.requester),
        text("requester_role", b.requester_role.as_str()),
        text("clinician_id", &b.clinician_id),
        text("purpose", b.purpose.as_str()),
        bytes("sealed_patient", &b.sealed_patient),
        bytes("reply_encryption_key", &b.reply_encryption_key),
        number("issued_at", b.issued_at),
        number("expires_at", b.expires_at),
        optional_text("break_glass.reason", reason),
    ];
    let canonical = signing::request_sign_bytes(&b);
    vector(
        REQUEST_DOMAIN,
        "signing::request_sign_bytes",
        json!(b),
        fields,
        &canonical,
    )
}

fn request() -> Value {
    request_vector(request_body())
}

fn break_glass_request() -> Value {
    request_vector(break_glass_request_body())
}

fn reply() -> Value {
    let b = reply_body();
    let mut fields = vec![
        text("domain", REPLY_DOMAIN),
        number("version", u64::from(b.version)),
        text("request_id", &b.request_id),
        text("requester_network", &b.requester_network),
        text("responder_network", &b.responder_network),
        text("responder", &b.responder),
        text("recipient_key_hash", &b.recipient_key_hash),
    ];
    fields.extend(manifest_fields(&b.manifest));
    fields.push(number("issued_at", b.issued_at));
    let canonical = signing::reply_sign_bytes(&b);
    vector(
        REPLY_DOMAIN,
        "signing::reply_sign_bytes",
        json!(b),
        fields,
        &canonical,
    )
}

fn store() -> Value {
    let manifest = manifest();
    let s = StoreSigning {
        network_id: "hospital-b",
        storer: "wasm1store",
        record_id: "rec-0000000000000001",
        patient_token: &"ab".repeat(32),
        manifest: &manifest,
        category: RecordCategory::MentalHealth,
    };
    let mut fields = vec![
        text("domain", STORE_DOMAIN),
        text("network_id", s.network_id),
        text("storer", s.storer),
        text("record_id", s.record_id),
        text("patient_token", s.patient_token),
    ];
    fields.extend(manifest_fields(&manifest));
    fields.push(text("category", s.category.as_str()));
    let canonical = signing::store_sign_bytes(&s);
    let inputs = json!({
        "network_id": s.network_id,
        "storer": s.storer,
        "record_id": s.record_id,
        "patient_token": s.patient_token,
        "manifest": manifest,
        "category": s.category,
    });
    vector(
        STORE_DOMAIN,
        "signing::store_sign_bytes",
        inputs,
        fields,
        &canonical,
    )
}

fn attest() -> Value {
    let (network_id, storer, commitment) = ("hospital-b", "wasm1store", "cd".repeat(32));
    let fields = vec![
        text("domain", ATTEST_DOMAIN),
        text("network_id", network_id),
        text("storer", storer),
        text("commitment", &commitment),
    ];
    let canonical = signing::attest_sign_bytes(network_id, storer, &commitment);
    let inputs = json!({ "network_id": network_id, "storer": storer, "commitment": commitment });
    vector(
        ATTEST_DOMAIN,
        "signing::attest_sign_bytes",
        inputs,
        fields,
        &canonical,
    )
}

fn cosign() -> Value {
    let (network_id, request_id, clinician_id) = ("hospital-a", "req-0000000000000001", "dr-baker");
    let fields = vec![
        text("domain", COSIGN_DOMAIN),
        number("version", u64::from(PACKET_VERSION)),
        text("network_id", network_id),
        text("request_id", request_id),
        text("clinician_id", clinician_id),
    ];
    let canonical = signing::cosign_sign_bytes(network_id, request_id, clinician_id);
    let inputs = json!({
        "network_id": network_id, "request_id": request_id, "clinician_id": clinician_id,
    });
    vector(
        COSIGN_DOMAIN,
        "signing::cosign_sign_bytes",
        inputs,
        fields,
        &canonical,
    )
}

/// Not a signature domain, but what `manifest.history_hash` is: a client checks a manifest
/// with it before trusting the signature over it.
fn history() -> Value {
    let m = manifest();
    let mut fields = vec![
        raw("domain", HISTORY_DOMAIN),
        number("chunk_count", m.chunk_hashes.len() as u64),
    ];
    let mut canonical = HISTORY_DOMAIN.to_vec();
    canonical.extend_from_slice(&(m.chunk_hashes.len() as u64).to_be_bytes());
    for (i, h) in m.chunk_hashes.iter().enumerate() {
        let hash = hex::decode(h).expect("the vector's chunk hashes are hex");
        fields.push(raw(&format!("chunk_hashes[{i}]"), &hash));
        canonical.extend_from_slice(&hash);
    }
    let v = vector(
        "ehrx/history/v2",
        "chunks::history_hash",
        json!({ "chunk_hashes": m.chunk_hashes }),
        fields,
        &canonical,
    );
    assert_eq!(v["sha256_hex"], m.history_hash.as_str());
    v
}

/// The whole file, as `schema/test-vectors/signing.json` holds it.
pub fn signing_vectors() -> Value {
    json!({
        "description": "Canonical signing bytes of the EHR exchange (packages/protocol/src/signing.rs). Each vector lists its fields in signing order: 'text' is a 4-byte big-endian length then the UTF-8 bytes, 'bytes' a 4-byte big-endian length then the bytes (value in hex), 'u64' 8 bytes big-endian, 'raw' the bytes as they are (hex; an absent optional field is the raw length ffffffff). canonical_hex is the concatenation; sha256_hex its SHA-256, the 32-byte digest secp256k1 signs (low-S, compact r||s). Inputs are the JSON the chains carry (Binary as base64).",
        "vectors": [request(), break_glass_request(), reply(), store(), attest(), cosign(), history()],
    })
}

/// `signing_vectors` as the file's text: pretty JSON with a final newline.
pub fn signing_vectors_json() -> String {
    let mut text = serde_json::to_string_pretty(&signing_vectors()).expect("JSON of values");
    text.push('\n');
    text
}
