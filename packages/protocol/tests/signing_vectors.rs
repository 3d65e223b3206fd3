//! The published signing test vectors (`schema/test-vectors/signing.json`): the committed
//! file is what the code produces, and every vector re-encodes, field by field, to its
//! canonical bytes and digest without the protocol's own encoder.

use ehr_protocol::packet::{ReplyBody, RequestBody};
use ehr_protocol::signing::{digest, reply_sign_bytes, request_sign_bytes};
use ehr_protocol::test_vectors::signing_vectors_json;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schema/test-vectors/signing.json")
}

fn committed() -> Value {
    let text = std::fs::read_to_string(committed_path()).expect("schema/test-vectors/signing.json");
    serde_json::from_str(&text).expect("the committed vectors are JSON")
}

#[test]
fn the_committed_vectors_are_what_the_code_produces() {
    let text = std::fs::read_to_string(committed_path()).expect("schema/test-vectors/signing.json");
    assert!(
        text == signing_vectors_json(),
        "schema/test-vectors/signing.json differs from ehr_protocol::test_vectors: run scripts/schema.sh and commit it"
    );
}

/// An encoder of the field list written from the file's own description.
fn encode(fields: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        let value = &field["value"];
        match field["encoding"].as_str().expect("an encoding") {
            "text" => {
                let text = value.as_str().expect("text");
                out.extend_from_slice(&(text.len() as u32).to_be_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            "bytes" => {
                let data = hex::decode(value.as_str().expect("hex")).expect("hex");
                out.extend_from_slice(&(data.len() as u32).to_be_bytes());
                out.extend_from_slice(&data);
            }
            "u64" => out.extend_from_slice(&value.as_u64().expect("u64").to_be_bytes()),
            "raw" => out.extend(hex::decode(value.as_str().expect("hex")).expect("hex")),
            other => panic!("unknown encoding {other}"),
        }
    }
    out
}

#[test]
fn every_vector_re_encodes_to_its_bytes_and_digest() {
    let file = committed();
    let vectors = file["vectors"].as_array().expect("vectors");
    let domains: Vec<&str> = vectors
        .iter()
        .map(|v| v["domain"].as_str().unwrap())
        .collect();
    assert_eq!(
        domains,
        [
            "ehrx/request/v3",
            "ehrx/request/v3",
            "ehrx/reply/v2",
            "ehrx/store/v3",
            "ehrx/attest/v2",
            "ehrx/cosign/v1",
            "ehrx/history/v2"
        ]
    );
    for v in vectors {
        let bytes = encode(v["fields"].as_array().expect("fields"));
        assert_eq!(hex::encode(&bytes), v["canonical_hex"], "{}", v["domain"]);
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            v["sha256_hex"],
            "{}",
            v["domain"]
        );
    }
}

#[test]
fn the_request_and_reply_inputs_are_the_wire_json_of_what_was_signed() {
    let file = committed();
    let request: RequestBody =
        serde_json::from_value(file["vectors"][0]["inputs"].clone()).unwrap();
    assert_eq!(
        hex::encode(digest(&request_sign_bytes(&request))),
        file["vectors"][0]["sha256_hex"]
    );
    // The same input as wire_format.rs pins: published and pinned digests are one.
    assert_eq!(
        file["vectors"][0]["sha256_hex"],
        "9c61113e8190c266702fc5b9a3927a2ab08f10efb6ef9ba37d69acffdf131085"
    );
    // The break-glass twin: its claim is in the inputs and signed last.
    let claimed: RequestBody =
        serde_json::from_value(file["vectors"][1]["inputs"].clone()).unwrap();
    assert!(claimed.break_glass.is_some());
    assert_eq!(
        hex::encode(digest(&request_sign_bytes(&claimed))),
        file["vectors"][1]["sha256_hex"]
    );
    assert_eq!(
        file["vectors"][1]["sha256_hex"],
        "1c0384b556e6e6499f0aff2b3de2ad7bd3bfd1dbc9e89dbc6395c1c1342951ca"
    );
    let reply: ReplyBody = serde_json::from_value(file["vectors"][2]["inputs"].clone()).unwrap();
    assert_eq!(
        hex::encode(digest(&reply_sign_bytes(&reply))),
        file["vectors"][2]["sha256_hex"]
    );
}

#[test]
fn a_changed_field_no_longer_matches() {
    let file = committed();
    let mut fields = file["vectors"][0]["fields"].as_array().unwrap().clone();
    fields[2]["value"] = Value::from("req-0000000000000002");
    assert_ne!(
        hex::encode(encode(&fields)),
        file["vectors"][0]["canonical_hex"]
    );
}
