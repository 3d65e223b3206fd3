//! Pins the exact JSON of every packet and ack, and the canonical signing bytes: both
//! chains and the peer tool must agree byte for byte.

use cosmwasm_std::{Binary, StdAck};
use ehr_protocol::chunks::{history_hash, Manifest};
use ehr_protocol::limits::SEALED_PATIENT_LEN;
use ehr_protocol::packet::*;
use ehr_protocol::signing::*;
// The fixtures of the published signing vectors (schema/test-vectors/signing.json).
use ehr_protocol::consent::{BreakGlass, EmergencyReason, RecordCategory};
use ehr_protocol::exchange::SubmitRequestMsg;
use ehr_protocol::test_vectors::{
    break_glass_request_body, manifest as sealed, reply_body, request_body,
};
use ehr_protocol::ErrorCode;

#[test]
fn request_packet_json_is_pinned() {
    let packet = ExchangePacket::Request(RequestPacket {
        body: request_body(),
        signer_pubkey: Binary::from(vec![2u8; 33]),
        signature: Binary::from(vec![3u8; 64]),
    });
    let json = serde_json::to_string(&packet).unwrap();
    let expected = format!(
        concat!(
            r#"{{"request":{{"body":{{"version":3,"request_id":"req-0000000000000001","#,
            r#""source_network":"hospital-a","destination_network":"hospital-b","#,
            r#""requester":"wasm1req","requester_role":"request","clinician_id":"dr-adams","#,
            r#""purpose":"treatment","sealed_patient":"{}","reply_encryption_key":"{}","#,
            r#""issued_at":1700000000,"expires_at":1700003600}},"#,
            r#""signer_pubkey":"{}","signature":"{}"}}}}"#
        ),
        Binary::from(vec![4u8; SEALED_PATIENT_LEN]).to_base64(),
        Binary::from(vec![1u8; 32]).to_base64(),
        Binary::from(vec![2u8; 33]).to_base64(),
        Binary::from(vec![3u8; 64]).to_base64(),
    );
    assert_eq!(json, expected);
    let back: ExchangePacket = serde_json::from_str(&json).unwrap();
    assert_eq!(back, packet);
}

#[test]
fn a_break_glass_claim_travels_in_the_request_body_and_only_when_made() {
    // Without a claim the body's JSON has no `break_glass` key (pinned above); with one, it
    // is the last field of the body.
    let json = serde_json::to_string(&break_glass_request_body()).unwrap();
    assert!(
        json.ends_with(
            r#""issued_at":1700000000,"expires_at":1700003600,"break_glass":{"reason":"life_threatening"}}"#
        ),
        "{json}"
    );
    assert!(json.contains(r#""purpose":"emergency_treatment""#));
    // A claim without its reason still parses (so that it is refused with a code).
    let claim: BreakGlass = serde_json::from_str(r#"{"reason":null}"#).unwrap();
    assert_eq!(claim, BreakGlass { reason: None });
    let claim: BreakGlass = serde_json::from_str("{}").unwrap();
    assert_eq!(claim, BreakGlass { reason: None });
    // The peer's message: the same optional field.
    let msg = SubmitRequestMsg {
        request_id: "req-0000000000000001".into(),
        partner_id: "hospital-b".into(),
        clinician_id: "dr-adams".into(),
        purpose: ehr_protocol::exchange::PurposeOfUse::EmergencyTreatment,
        sealed_patient: Binary::from(vec![4u8; 2]),
        reply_encryption_key: Binary::from(vec![1u8; 2]),
        issued_at: 1,
        expires_at: 2,
        signature: Binary::from(vec![3u8; 2]),
        break_glass: None,
    };
    let plain = serde_json::to_string(&msg).unwrap();
    assert!(!plain.contains("break_glass"), "{plain}");
    let claimed = SubmitRequestMsg {
        break_glass: Some(BreakGlass {
            reason: Some(EmergencyReason::PatientUnableToConsent),
        }),
        ..msg
    };
    assert!(serde_json::to_string(&claimed)
        .unwrap()
        .ends_with(r#""signature":"AwM=","break_glass":{"reason":"patient_unable_to_consent"}}"#));
    // An unknown reason is a parse error, not a silent default.
    assert!(serde_json::from_str::<BreakGlass>(r#"{"reason":"boredom"}"#).is_err());
}

#[test]
fn reply_packet_json_is_pinned_with_its_manifest_and_one_chunk() {
    let packet = ExchangePacket::Reply(ReplyPacket {
        body: reply_body(),
        signer_pubkey: Binary::from(vec![2u8; 33]),
        signature: Binary::from(vec![3u8; 64]),
        chunk_index: 1,
        chunk: Binary::from(b"ct".to_vec()),
    });
    let json = serde_json::to_string(&packet).unwrap();
    assert!(json.starts_with(
        r#"{"reply":{"body":{"version":3,"request_id":"req-0000000000000001","requester_network":"hospital-a","responder_network":"hospital-b","responder":"wasm1resp","recipient_key_hash":"72cd6e8422c407fb6d098690f1130b7ded7ec2f7f5e1d30bd9d521f015363793","manifest":{"chunk_bytes":1024,"chunk_hashes":["0000"#
    ));
    assert!(json.ends_with(r#""issued_at":1700000100},"signer_pubkey":"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC","signature":"AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw==","chunk_index":1,"chunk":"Y3Q="}}"#), "{json}");
    // What only the requester reads inside.
    assert_eq!(
        serde_json::to_string(&SealedOutcome::NoRecords).unwrap(),
        r#""no_records""#
    );
    assert_eq!(
        serde_json::to_string(&SealedOutcome::Declined {
            code: ErrorCode::NotAuthorized
        })
        .unwrap(),
        r#"{"declined":{"code":"not_authorized"}}"#
    );
    assert_eq!(
        serde_json::to_string(&SealedOutcome::Records { parts: vec![] }).unwrap(),
        r#"{"records":{"parts":[]}}"#
    );
    // The frame: a 4-byte header length, the header, the parts' bytes.
    assert_eq!(frame(b"{}", b"zz"), b"\x00\x00\x00\x02{}zz".to_vec());
    let framed = frame(br#""no_records""#, b"");
    let (outcome, rest): (SealedOutcome, &[u8]) = unframe(&framed).unwrap();
    assert_eq!((outcome, rest), (SealedOutcome::NoRecords, &b""[..]));
    assert!(unframe::<SealedOutcome>(b"\x00\x00\x00\x09{}").is_none());
}

/// Two chunks of 1 KiB with the hashes 00..00 and 11..11.
#[test]
fn acks_are_std_acks_with_pinned_payloads() {
    let ok = StdAck::success(serde_json::to_vec(&ExchangeAck::RequestAccepted {}).unwrap());
    assert_eq!(
        ok.to_binary().as_slice(),
        br#"{"result":"eyJyZXF1ZXN0X2FjY2VwdGVkIjp7fX0="}"#
    );
    assert_eq!(
        serde_json::to_string(&ExchangeAck::ReplyAccepted {}).unwrap(),
        r#"{"reply_accepted":{}}"#
    );
    let err = StdAck::error(ErrorCode::BadSignature.to_ack_error());
    assert_eq!(
        err.to_binary().as_slice(),
        br#"{"error":"ehrx:BadSignature"}"#
    );
}

#[test]
fn signing_bytes_are_domain_separated_and_deterministic() {
    let body = request_body();
    let a = request_sign_bytes(&body);
    assert_eq!(a, request_sign_bytes(&body.clone()));
    // Starts with the length-prefixed domain tag.
    assert_eq!(&a[..4], &(REQUEST_DOMAIN.len() as u32).to_be_bytes());
    assert_eq!(&a[4..4 + REQUEST_DOMAIN.len()], REQUEST_DOMAIN.as_bytes());
    // Every signed field changes the bytes.
    let mut other = body.clone();
    other.destination_network = "hospital-c".into();
    assert_ne!(request_sign_bytes(&other), a);
    let mut other = body.clone();
    other.sealed_patient = Binary::from(vec![5u8; SEALED_PATIENT_LEN]);
    assert_ne!(request_sign_bytes(&other), a);
    let mut other = body;
    other.expires_at += 1;
    assert_ne!(request_sign_bytes(&other), a);
}

#[test]
fn signing_digest_test_vector_is_pinned() {
    // A change here breaks every deployed peer tool: bump the domain tags instead.
    let digest = digest(&request_sign_bytes(&request_body()));
    assert_eq!(
        hex::encode(digest),
        hex::encode(digest_of_known_vector()),
        "request digest drifted"
    );
    let reply = reply_sign_bytes(&reply_body());
    assert_ne!(reply, request_sign_bytes(&request_body()));
    let manifest = sealed();
    let store = store_sign_bytes(&store_fields(&manifest));
    assert_eq!(&store[4..4 + STORE_DOMAIN.len()], STORE_DOMAIN.as_bytes());
}

/// Recomputes the vector independently of `Canonical`, field by field.
fn digest_of_known_vector() -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut bytes = Vec::new();
    let mut field = |data: &[u8]| {
        bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
        bytes.extend_from_slice(data);
    };
    field(b"ehrx/request/v3");
    let mut rest = Vec::new();
    rest.extend_from_slice(&3u64.to_be_bytes());
    let mut f = |data: &[u8]| {
        rest.extend_from_slice(&(data.len() as u32).to_be_bytes());
        rest.extend_from_slice(data);
    };
    f(b"req-0000000000000001");
    f(b"hospital-a");
    f(b"hospital-b");
    f(b"wasm1req");
    f(b"request");
    f(b"dr-adams");
    f(b"treatment");
    f(&[4u8; SEALED_PATIENT_LEN]);
    f(&[1u8; 32]);
    rest.extend_from_slice(&1_700_000_000u64.to_be_bytes());
    rest.extend_from_slice(&1_700_003_600u64.to_be_bytes());
    // v3: no break-glass claim, the absent optional text.
    rest.extend_from_slice(&u32::MAX.to_be_bytes());
    bytes.extend_from_slice(&rest);
    Sha256::digest(&bytes).into()
}

fn store_fields(manifest: &Manifest) -> StoreSigning<'_> {
    StoreSigning {
        network_id: "hospital-b",
        storer: "wasm1store",
        record_id: "rec-0000000000000001",
        patient_token: "abababababababababababababababababababababababababababababababab",
        manifest,
        category: RecordCategory::MentalHealth,
    }
}

#[test]
fn signing_digests_are_pinned_as_hex_literals() {
    // Literal digests of the v3 request (with and without a break-glass claim), reply,
    // store and co-sign bytes (computed outside the crate): a change to any encoding fails
    // here, whatever the encoder above does.
    assert_eq!(
        hex::encode(digest(&request_sign_bytes(&request_body()))),
        "9c61113e8190c266702fc5b9a3927a2ab08f10efb6ef9ba37d69acffdf131085"
    );
    assert_eq!(
        hex::encode(digest(&request_sign_bytes(&break_glass_request_body()))),
        "1c0384b556e6e6499f0aff2b3de2ad7bd3bfd1dbc9e89dbc6395c1c1342951ca"
    );
    // A claim without a reason (refused before any signature check) encodes as empty text:
    // neither absent nor any reason's bytes.
    let mut no_reason = break_glass_request_body();
    no_reason.break_glass = Some(BreakGlass { reason: None });
    let bytes = request_sign_bytes(&no_reason);
    assert!(bytes.ends_with(&[0, 0, 0, 0]));
    assert_ne!(bytes, request_sign_bytes(&break_glass_request_body()));
    assert_eq!(
        hex::encode(digest(&reply_sign_bytes(&reply_body()))),
        "6e812a64d4a35d18732ee281653aef34f0d7a39193b9af86c4afb4b3e00d94ac"
    );
    assert_eq!(
        hex::encode(digest(&cosign_sign_bytes(
            "hospital-a",
            "req-0000000000000001",
            "dr-baker"
        ))),
        "44b3dcf8f1cafd185c98c92bff84473fef519fdb6f6693fcfc91b3540afe4f7b"
    );
    let manifest = sealed();
    assert_eq!(
        hex::encode(digest(&store_sign_bytes(&store_fields(&manifest)))),
        "5890b519f3739e18d930fd0d4da34c7db69ce082e5767540a59b2cd7fce170c3"
    );
    // The category is signed: another category, other bytes.
    let general = StoreSigning {
        category: RecordCategory::General,
        ..store_fields(&manifest)
    };
    assert_ne!(
        store_sign_bytes(&general),
        store_sign_bytes(&store_fields(&manifest))
    );
    assert_eq!(
        hex::encode(digest(&attest_sign_bytes(
            "hospital-b",
            "wasm1store",
            &"cd".repeat(32)
        ))),
        "0257ed80107970e068e3fc0246185d16d2455fb75def953c13ebcac6d9a268e7"
    );
    assert_eq!(
        sealed().history_hash,
        "853342325bfc98e10bc607a3f3980df786a09b49f266df7d5452a5db4b9d4054"
    );
    assert_eq!(
        key_hash(&[1u8; 32]),
        "72cd6e8422c407fb6d098690f1130b7ded7ec2f7f5e1d30bd9d521f015363793"
    );
}

#[test]
fn versions_one_and_two_are_gone() {
    assert_eq!(ehr_protocol::limits::PACKET_VERSION, 3);
    assert_eq!(ehr_protocol::limits::CHANNEL_VERSION, "ehr-exchange-3");
    assert_eq!(REQUEST_DOMAIN, "ehrx/request/v3");
    assert_eq!(REPLY_DOMAIN, "ehrx/reply/v2");
    assert_eq!(STORE_DOMAIN, "ehrx/store/v3");
    assert_eq!(ATTEST_DOMAIN, "ehrx/attest/v2");
    assert_eq!(COSIGN_DOMAIN, "ehrx/cosign/v1");
}

/// ibc-go refuses packet data over 256 KiB (`MaximumPayloadsSize` = 262144 in
/// modules/core/04-channel/types/packet.go, `Packet::ValidateBasic`): the largest reply packet, a 128 KiB chunk with the manifest of
/// the largest history (`MAX_HISTORY_CHUNKS` hashes) and the longest names, stays under it.
#[test]
fn the_largest_reply_packet_fits_ibc_gos_packet_data_limit() {
    use ehr_protocol::limits::{MAX_CHUNK_BYTES, MAX_HISTORY_CHUNKS, MAX_ID_LEN, MAX_NAME_LEN};
    const IBC_MAX_PACKET_DATA: usize = 256 * 1024;
    let chunk_hashes = vec!["ab".repeat(32); MAX_HISTORY_CHUNKS as usize];
    let packet = ExchangePacket::Reply(ReplyPacket {
        body: ReplyBody {
            version: 3,
            request_id: "r".repeat(MAX_ID_LEN),
            requester_network: "n".repeat(MAX_NAME_LEN),
            responder_network: "n".repeat(MAX_NAME_LEN),
            responder: "wasm1".to_string() + &"q".repeat(123),
            recipient_key_hash: "cd".repeat(32),
            manifest: Manifest {
                chunk_bytes: MAX_CHUNK_BYTES as u32,
                history_hash: history_hash(&chunk_hashes),
                chunk_hashes,
            },
            issued_at: u64::MAX,
        },
        signer_pubkey: Binary::from(vec![2u8; 33]),
        signature: Binary::from(vec![3u8; 64]),
        chunk_index: MAX_HISTORY_CHUNKS - 1,
        chunk: Binary::from(vec![0u8; MAX_CHUNK_BYTES]),
    });
    let len = serde_json::to_vec(&packet).unwrap().len();
    assert!(len < IBC_MAX_PACKET_DATA, "{len} bytes");
    // Pinned: what a change to the packet costs in headroom shows here.
    assert_eq!(len, 244_251);
}
