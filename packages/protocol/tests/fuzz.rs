//! Fuzz targets for every decoder of the protocol (issue 8, property 13): packets and acks
//! from arbitrary bytes and from mutated valid JSON, the `ehrx:<Code>` ack text, the
//! canonical signing bytes (no panic, injective), `is_low_s`, and the format checks
//! (`validate`, `limits::page_size`).
//!
//! Each target runs `fuzz_support::CASES` cases; `PROPTEST_CASES=100000 cargo test -p
//! ehr-protocol --test fuzz` runs a long campaign. Decoding is tried with both JSON
//! libraries in use: `cosmwasm_std::from_json` (serde-json-wasm, what the contracts run)
//! and `serde_json` (what the peer tool and the tests use).

mod fuzz_support;

use cosmwasm_std::{from_json, to_json_vec, Binary, StdAck};
use ehr_protocol::chunks::{history_hash, Layout, Manifest};
use ehr_protocol::exchange as xmsg;
use ehr_protocol::limits::{self, MAX_CHUNK_BYTES, MAX_PAGE, MIN_BUCKET, SEALED_PATIENT_LEN};
use ehr_protocol::packet::{
    ExchangeAck, ExchangePacket, ReplyBody, ReplyPacket, RequestBody, RequestPacket, SealedOutcome,
};
use ehr_protocol::registry as rmsg;
use ehr_protocol::signing::{
    content_hash, digest, is_low_s, key_hash, reply_sign_bytes, request_sign_bytes,
    store_sign_bytes, StoreSigning, REPLY_DOMAIN, REQUEST_DOMAIN, STORE_DOMAIN,
};
use ehr_protocol::{audit::AuditEntry, validate, ErrorCode};
use fuzz_support::*;
use proptest::prelude::*;
use proptest::sample::select;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Debug;

// ------------------------------------------------------------------ decoding

/// Decodes `data` as `T` with both JSON libraries; whatever decodes must encode and decode
/// back to the same value.
fn decode<T>(name: &str, data: &[u8]) -> Result<(), TestCaseError>
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    if let Some(value) = no_panic(name, || from_json::<T>(data).ok())? {
        let again = to_json_vec(&value).map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
        prop_assert_eq!(
            from_json::<T>(&again).ok(),
            Some(value),
            "{} round trip",
            name
        );
    }
    if let Some(value) = no_panic(name, || serde_json::from_slice::<T>(data).ok())? {
        let again = serde_json::to_vec(&value).expect("encodes");
        let back = serde_json::from_slice::<T>(&again).ok();
        prop_assert_eq!(back, Some(value), "{} round trip (serde_json)", name);
    }
    Ok(())
}

/// Every type decoded from outside: packets, acks, codes, and the contracts' messages.
fn decode_all(data: &[u8]) -> Result<(), TestCaseError> {
    decode::<ExchangePacket>("ExchangePacket", data)?;
    decode::<RequestPacket>("RequestPacket", data)?;
    decode::<ReplyPacket>("ReplyPacket", data)?;
    decode::<RequestBody>("RequestBody", data)?;
    decode::<ReplyBody>("ReplyBody", data)?;
    decode::<Manifest>("Manifest", data)?;
    decode::<SealedOutcome>("SealedOutcome", data)?;
    decode::<ExchangeAck>("ExchangeAck", data)?;
    decode::<StdAck>("StdAck", data)?;
    decode::<ErrorCode>("ErrorCode", data)?;
    decode::<xmsg::InstantiateMsg>("exchange InstantiateMsg", data)?;
    decode::<xmsg::ExecuteMsg>("exchange ExecuteMsg", data)?;
    decode::<xmsg::QueryMsg>("exchange QueryMsg", data)?;
    decode::<rmsg::InstantiateMsg>("registry InstantiateMsg", data)?;
    decode::<rmsg::ExecuteMsg>("registry ExecuteMsg", data)?;
    decode::<rmsg::QueryMsg>("registry QueryMsg", data)?;
    decode::<AuditEntry>("AuditEntry", data)?;
    Ok(())
}

// --------------------------------------------------------- typed strategies

fn request_body() -> BoxedStrategy<RequestBody> {
    RequestFields::default().body()
}

fn reply_body() -> BoxedStrategy<ReplyBody> {
    ReplyFields::default().body()
}

fn exchange_packet() -> BoxedStrategy<ExchangePacket> {
    prop_oneof![
        (request_body(), binary(40), binary(70)).prop_map(|(body, signer_pubkey, signature)| {
            ExchangePacket::Request(RequestPacket {
                body,
                signer_pubkey,
                signature,
            })
        }),
        (
            reply_body(),
            binary(40),
            binary(70),
            any::<u32>(),
            binary(70)
        )
            .prop_map(|(body, signer_pubkey, signature, chunk_index, chunk)| {
                ExchangePacket::Reply(ReplyPacket {
                    body,
                    signer_pubkey,
                    signature,
                    chunk_index,
                    chunk,
                })
            }),
    ]
    .boxed()
}

/// Acknowledgements as a chain writes them: ours (success or coded error), wasmd's redacted
/// error, and anything else a partner's contract could write.
fn std_ack() -> BoxedStrategy<StdAck> {
    prop_oneof![
        Just(StdAck::success(
            to_json_vec(&ExchangeAck::RequestAccepted {}).unwrap()
        )),
        Just(StdAck::success(
            to_json_vec(&ExchangeAck::ReplyAccepted {}).unwrap()
        )),
        bytes(64).prop_map(StdAck::success),
        error_code().prop_map(|code| StdAck::error(code.to_ack_error())),
        ack_text().prop_map(StdAck::error),
    ]
    .boxed()
}

/// Text for an error ack: arbitrary, prefixed, near-miss codes, malformed `RateLimited`.
fn ack_text() -> BoxedStrategy<String> {
    prop_oneof![
        2 => text(),
        1 => text().prop_map(|t| format!("ehrx:{t}")),
        2 => (error_code(), text(), any::<bool>()).prop_map(|(code, noise, before)| if before {
            format!("ehrx:{noise}{code}")
        } else {
            format!("ehrx:{code}{noise}")
        }),
        2 => "(ehrx:)?(RateLimited|QuotaExceeded)\\(retry_after=[-+ 0-9a-zA-Z_.]{0,25}\\)?",
        1 => Just("ABCI code: 5: error handling packet: see events for details".to_string()),
    ]
    .boxed()
}

/// Names the decoders switch on, to wrap arbitrary JSON in.
const ENVELOPES: &[&str] = &[
    "request",
    "reply",
    "records",
    "declined",
    "request_accepted",
    "reply_accepted",
    "result",
    "error",
    "rate_limited",
    "store_record",
    "submit_request",
    "submit_reply",
    "retrieve_reply",
    "register_peer",
    "upsert_partner",
    "bind_channel",
    "record_strike",
];

// ------------------------------------------------------------ canonical bytes

/// Reads the canonical signing encoding back (test-side): a value decoded from it proves the
/// encoding is injective for that value.
struct Canonical<'a>(&'a [u8]);

impl<'a> Canonical<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TestCaseError> {
        prop_assert!(self.0.len() >= n, "canonical bytes end early");
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn number(&mut self) -> Result<u64, TestCaseError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }

    fn optional(&mut self) -> Result<Option<&'a [u8]>, TestCaseError> {
        let len = u32::from_be_bytes(self.take(4)?.try_into().unwrap());
        if len == u32::MAX {
            return Ok(None);
        }
        self.take(len as usize).map(Some)
    }

    fn bytes(&mut self) -> Result<&'a [u8], TestCaseError> {
        self.optional()?
            .ok_or_else(|| TestCaseError::fail("absent marker where a field is required"))
    }

    fn text(&mut self) -> Result<&'a str, TestCaseError> {
        std::str::from_utf8(self.bytes()?).map_err(|e| TestCaseError::fail(e.to_string()))
    }

    fn end(&self) -> Result<(), TestCaseError> {
        prop_assert!(self.0.is_empty(), "{} trailing bytes", self.0.len());
        Ok(())
    }
}

fn decode_request(bytes: &[u8], b: &RequestBody) -> Result<(), TestCaseError> {
    let mut c = Canonical(bytes);
    prop_assert_eq!(c.text()?, REQUEST_DOMAIN);
    prop_assert_eq!(c.number()?, u64::from(b.version));
    prop_assert_eq!(c.text()?, b.request_id.as_str());
    prop_assert_eq!(c.text()?, b.source_network.as_str());
    prop_assert_eq!(c.text()?, b.destination_network.as_str());
    prop_assert_eq!(c.text()?, b.requester.as_str());
    prop_assert_eq!(c.text()?, b.requester_role.as_str());
    prop_assert_eq!(c.text()?, b.clinician_id.as_str());
    prop_assert_eq!(c.text()?, b.purpose.as_str());
    prop_assert_eq!(c.bytes()?, b.sealed_patient.as_slice());
    prop_assert_eq!(c.bytes()?, b.reply_encryption_key.as_slice());
    prop_assert_eq!(c.number()?, b.issued_at);
    prop_assert_eq!(c.number()?, b.expires_at);
    let reason = b
        .break_glass
        .as_ref()
        .map(|claim| claim.reason.map_or("", |r| r.as_str()).as_bytes());
    prop_assert_eq!(c.optional()?, reason);
    c.end()
}

fn decode_reply(bytes: &[u8], b: &ReplyBody) -> Result<(), TestCaseError> {
    let mut c = Canonical(bytes);
    prop_assert_eq!(c.text()?, REPLY_DOMAIN);
    prop_assert_eq!(c.number()?, u64::from(b.version));
    prop_assert_eq!(c.text()?, b.request_id.as_str());
    prop_assert_eq!(c.text()?, b.requester_network.as_str());
    prop_assert_eq!(c.text()?, b.responder_network.as_str());
    prop_assert_eq!(c.text()?, b.responder.as_str());
    prop_assert_eq!(c.text()?, b.recipient_key_hash.as_str());
    prop_assert_eq!(c.number()?, b.manifest.chunk_hashes.len() as u64);
    prop_assert_eq!(c.number()?, u64::from(b.manifest.chunk_bytes));
    prop_assert_eq!(c.text()?, b.manifest.history_hash.as_str());
    prop_assert_eq!(c.number()?, b.issued_at);
    c.end()
}

/// Moves one char across the boundary between `fields[i]` and `fields[i + 1]` (the last
/// char of the first to the front of the second, or the reverse); `None` if there is none.
fn shift_char(fields: &mut [String], i: usize, forward: bool) -> Option<()> {
    let (left, right) = fields.split_at_mut(i + 1);
    let (left, right) = (&mut left[i], &mut right[0]);
    if forward {
        let c = left.pop()?;
        right.insert(0, c);
    } else {
        let c = right.chars().next()?;
        right.remove(0);
        left.push(c);
    }
    Some(())
}

/// secp256k1's group order n, big-endian (SEC 2), written out independently of the crate.
const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

fn half_order() -> [u8; 32] {
    let mut half = [0u8; 32];
    let mut carry = 0u8;
    for (out, byte) in half.iter_mut().zip(ORDER) {
        *out = (byte >> 1) | (carry << 7);
        carry = byte & 1;
    }
    half
}

/// n - s for 0 < s < n.
fn negate(s: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(ORDER[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    out
}

// -------------------------------------------------------------------- targets

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes: no decoder panics, and whatever decodes round-trips.
    #[test]
    fn decoders_survive_arbitrary_bytes(data in bytes(512)) {
        decode_all(&data)?;
    }

    /// Arbitrary JSON, bare and inside each variant name the decoders switch on.
    #[test]
    fn decoders_survive_arbitrary_json(value in json_value(), envelope in select(ENVELOPES)) {
        decode_all(&serde_json::to_vec(&value).unwrap())?;
        let wrapped = serde_json::json!({ envelope: value });
        decode_all(&serde_json::to_vec(&wrapped).unwrap())?;
    }

    /// Valid packets with arbitrary field values round-trip exactly (both libraries, which
    /// agree on the bytes); mutated, they never make a decoder panic.
    #[test]
    fn packets_round_trip_and_survive_mutation(packet in exchange_packet(), edits in mutations()) {
        let wire = to_json_vec(&packet).unwrap();
        prop_assert_eq!(&serde_json::to_vec(&packet).unwrap(), &wire);
        prop_assert_eq!(from_json::<ExchangePacket>(&wire).unwrap(), packet.clone());
        prop_assert_eq!(serde_json::from_slice::<ExchangePacket>(&wire).unwrap(), packet);
        let value: Value = serde_json::from_slice(&wire).unwrap();
        decode_all(&mutate(value, &edits))?;
    }

    /// Acks round-trip; mutated, they never make a decoder panic; an error ack's text maps to
    /// its code or, for anything but `ehrx:<Code>`, to `Internal`.
    #[test]
    fn acks_round_trip_and_survive_mutation(ack in std_ack(), edits in mutations()) {
        let wire = to_json_vec(&ack).unwrap();
        prop_assert_eq!(from_json::<StdAck>(&wire).unwrap(), ack.clone());
        if let StdAck::Error(text) = &ack {
            let code = no_panic("from_ack_error", || ErrorCode::from_ack_error(text))?;
            prop_assert_eq!(code, strict_ack_code(text).unwrap_or(ErrorCode::Internal));
        }
        let value: Value = serde_json::from_slice(&wire).unwrap();
        decode_all(&mutate(value, &edits))?;
    }

    /// `ErrorCode::parse` / `from_ack_error` on arbitrary and near-miss text: no panic, and a
    /// text that parses names a code whose own text parses to it again.
    #[test]
    fn ack_text_parses_only_to_known_codes(text in ack_text()) {
        let parsed = no_panic("ErrorCode::parse", || ErrorCode::parse(&text))?;
        let from_ack = no_panic("ErrorCode::from_ack_error", || ErrorCode::from_ack_error(&text))?;
        prop_assert_eq!(from_ack, strict_ack_code(&text).unwrap_or(ErrorCode::Internal));
        if let Some(code) = parsed {
            prop_assert_eq!(ErrorCode::parse(&code.to_string()), Some(code.clone()));
            // The one leniency: a `retry_after` is read by `u64::from_str`, which also takes
            // a leading `+` and leading zeros (a non-canonical text of the same code).
            if text != code.to_string() {
                let digits = text
                    .strip_prefix(code.name())
                    .and_then(|t| t.strip_prefix("(retry_after="))
                    .and_then(|t| t.strip_suffix(')'));
                prop_assert!(
                    digits.is_some_and(|d| d.parse::<u64>().is_ok()),
                    "{text:?} parsed to {code:?}"
                );
            }
        }
    }

    /// Every code's text and JSON forms round-trip.
    #[test]
    fn every_code_round_trips(code in error_code()) {
        prop_assert_eq!(ErrorCode::parse(&code.to_string()), Some(code.clone()));
        prop_assert_eq!(ErrorCode::from_ack_error(&code.to_ack_error()), code.clone());
        prop_assert_eq!(from_json::<ErrorCode>(&to_json_vec(&code).unwrap()).unwrap(), code);
    }

    /// Request signing bytes: any field values, no panic, and the bytes decode back to exactly
    /// the fields (so distinct bodies never share bytes); distinct bodies, distinct bytes.
    #[test]
    fn request_sign_bytes_are_injective(a in request_body(), b in request_body()) {
        let bytes = no_panic("request_sign_bytes", || request_sign_bytes(&a))?;
        decode_request(&bytes, &a)?;
        prop_assert_eq!(digest(&bytes), digest(&request_sign_bytes(&a)));
        prop_assert_eq!(a == b, bytes == request_sign_bytes(&b));
    }

    /// Moving one char between two adjacent text fields of a request changes its bytes.
    #[test]
    fn request_sign_bytes_see_a_char_move_between_fields(
        body in request_body(), boundary in 0usize..3, forward in any::<bool>()
    ) {
        let mut fields = vec![
            body.request_id.clone(),
            body.source_network.clone(),
            body.destination_network.clone(),
            body.requester.clone(),
        ];
        if shift_char(&mut fields, boundary, forward).is_some() {
            let mut moved = body.clone();
            [moved.request_id, moved.source_network, moved.destination_network, moved.requester] =
                fields.try_into().unwrap();
            prop_assert_ne!(request_sign_bytes(&body), request_sign_bytes(&moved));
        }
        // And a byte moved from the sealed patient into the reply key (both binary).
        let mut moved = body.clone();
        let mut sealed = moved.sealed_patient.to_vec();
        if let Some(byte) = sealed.pop() {
            let mut key = moved.reply_encryption_key.to_vec();
            key.insert(0, byte);
            moved.sealed_patient = sealed.into();
            moved.reply_encryption_key = key.into();
            prop_assert_ne!(request_sign_bytes(&body), request_sign_bytes(&moved));
        }
    }

    /// Reply signing bytes: no panic, decode back to the fields. The chunk hashes are
    /// signed through the history hash (which binds them, `Manifest::check`), so bodies
    /// that differ only in the list sign the same bytes, and no others do.
    #[test]
    fn reply_sign_bytes_are_injective(a in reply_body(), b in reply_body()) {
        let bytes = no_panic("reply_sign_bytes", || reply_sign_bytes(&a))?;
        decode_reply(&bytes, &a)?;
        let signed = |body: &ReplyBody| {
            let mut body = body.clone();
            let count = body.manifest.chunk_hashes.len();
            body.manifest.chunk_hashes = vec![String::new(); count];
            body
        };
        prop_assert_eq!(signed(&a) == signed(&b), bytes == reply_sign_bytes(&b));
    }

    /// Manifest checks: never a panic; accepted only with power-of-two sizes within the
    /// limits and hashes that give the history hash; a chunk only with its listed hash.
    #[test]
    fn manifest_checks_match_their_rules(
        manifest in prop_oneof![
            manifest(),
            (0usize..4, 0u32..12).prop_map(|(n, k)| {
                Manifest::of(&vec![vec![7u8; 1usize << k]; 1usize << n])
            }),
        ],
        max_chunk in prop_oneof![any::<u64>(), Just(MAX_CHUNK_BYTES as u64), Just(2048u64)],
        max_chunks in prop_oneof![any::<u32>(), Just(4u32), Just(1u32)],
        index in 0u32..10,
        chunk in bytes(64),
    ) {
        let verdict = no_panic("Manifest::check", || manifest.check(max_chunk, max_chunks))?;
        if verdict.is_ok() {
            let size = manifest.chunk_bytes as usize;
            let count = manifest.chunk_hashes.len();
            prop_assert!(size.is_power_of_two() && size >= MIN_BUCKET);
            prop_assert!(size <= MAX_CHUNK_BYTES && manifest.chunk_bytes as u64 <= max_chunk);
            prop_assert!(count.is_power_of_two() && count as u64 <= u64::from(max_chunks));
            prop_assert_eq!(&history_hash(&manifest.chunk_hashes), &manifest.history_hash);
        }
        let chunk_verdict = no_panic("check_chunk", || manifest.check_chunk(index, &chunk))?;
        if chunk_verdict.is_ok() {
            prop_assert_eq!(
                Some(&content_hash(&chunk)),
                manifest.chunk_hashes.get(index as usize)
            );
        }
    }

    /// Layouts: every plaintext fits its layout, which is a power-of-two bucket of chunks
    /// within the ceiling; cutting and joining give it back; joining arbitrary parts never
    /// panics.
    #[test]
    fn layouts_hold_their_plaintext_and_join_back(
        len in prop_oneof![0usize..3000, 100_000usize..600_000],
        max_chunk in prop_oneof![any::<usize>(), Just(MAX_CHUNK_BYTES), Just(1024usize)],
        parts in prop::collection::vec(bytes(40), 0..4),
    ) {
        let layout = no_panic("Layout::for_plaintext", || Layout::for_plaintext(len, max_chunk))?;
        prop_assert!(layout.total().is_power_of_two() && layout.total() >= MIN_BUCKET);
        prop_assert!(layout.chunk_bytes <= MAX_CHUNK_BYTES && layout.chunks.is_power_of_two());
        prop_assert!(layout.capacity() >= len + 8);
        let data: Vec<u8> = (0..len).map(|i| (i % 241) as u8).collect();
        let cut = layout.pad_and_cut(&data);
        prop_assert_eq!(Layout::join_and_unpad(&cut), Some(data));
        no_panic("join_and_unpad", || Layout::join_and_unpad(&parts))?;
    }

    /// Moving one char between two adjacent text fields of a reply changes its bytes.
    #[test]
    fn reply_sign_bytes_see_a_char_move_between_fields(
        body in reply_body(), boundary in 0usize..3, forward in any::<bool>()
    ) {
        let mut fields = vec![
            body.request_id.clone(),
            body.requester_network.clone(),
            body.responder_network.clone(),
            body.responder.clone(),
        ];
        if shift_char(&mut fields, boundary, forward).is_some() {
            let mut moved = body.clone();
            [moved.request_id, moved.requester_network, moved.responder_network, moved.responder] =
                fields.try_into().unwrap();
            prop_assert_ne!(reply_sign_bytes(&body), reply_sign_bytes(&moved));
        }
    }

    /// Store signing bytes: decode back to the fields and the manifest's count, size and
    /// history hash; a char moved across any boundary changes them; never equal to a
    /// request's or a reply's bytes (domain tags).
    #[test]
    fn store_sign_bytes_are_injective(
        fields in prop::collection::vec(text(), 5),
        manifest in manifest(),
        boundary in 0usize..4,
        forward in any::<bool>(),
        request in request_body(),
        reply in reply_body(),
    ) {
        let sign = |f: &[String]| {
            let manifest = Manifest { history_hash: f[4].clone(), ..manifest.clone() };
            store_sign_bytes(&StoreSigning {
                network_id: &f[0],
                storer: &f[1],
                record_id: &f[2],
                patient_token: &f[3],
                manifest: &manifest,
                category: ehr_protocol::consent::RecordCategory::Hiv,
            })
        };
        let bytes = no_panic("store_sign_bytes", || sign(&fields))?;
        let mut c = Canonical(&bytes);
        prop_assert_eq!(c.text()?, STORE_DOMAIN);
        for field in &fields[..4] {
            prop_assert_eq!(c.text()?, field.as_str());
        }
        prop_assert_eq!(c.number()?, manifest.chunk_hashes.len() as u64);
        prop_assert_eq!(c.number()?, u64::from(manifest.chunk_bytes));
        prop_assert_eq!(c.text()?, fields[4].as_str());
        prop_assert_eq!(c.text()?, "hiv");
        c.end()?;
        let mut moved = fields.clone();
        if shift_char(&mut moved, boundary, forward).is_some() {
            prop_assert_ne!(&bytes, &sign(&moved));
        }
        prop_assert_ne!(&bytes, &request_sign_bytes(&request));
        prop_assert_ne!(&bytes, &reply_sign_bytes(&reply));
    }

    /// Key and content hashes: 64 lowercase hex for any input, and different inputs differ.
    #[test]
    fn key_and_content_hashes_are_hex_and_distinct(a in bytes(80), b in bytes(80)) {
        let hash = no_panic("key_hash", || key_hash(&a))?;
        prop_assert!(validate::sha256_hex(&hash).is_ok());
        prop_assert!(validate::sha256_hex(&content_hash(&a)).is_ok());
        prop_assert_eq!(a == b, hash == key_hash(&b));
    }

    /// `is_low_s` on any bytes: no panic, false unless 64 bytes; on 64 bytes, exactly
    /// s <= n / 2, and of s and n - s (0 < s < n) exactly one is low.
    #[test]
    fn is_low_s_is_exactly_s_at_most_half_the_order(
        any_bytes in bytes(100),
        r in any::<[u8; 32]>(),
        s in prop_oneof![
            any::<[u8; 32]>(),
            Just(half_order()),
            Just({ let mut h = half_order(); h[31] += 1; h }),
            Just(ORDER),
            Just([0u8; 32]),
        ],
    ) {
        let low = no_panic("is_low_s", || is_low_s(&any_bytes))?;
        prop_assert!(!low || any_bytes.len() == 64);
        let sig = [r, s].concat();
        prop_assert_eq!(is_low_s(&sig), s <= half_order());
        if s != [0u8; 32] && s < ORDER {
            let twin = [r, negate(&s)].concat();
            prop_assert_ne!(is_low_s(&sig), is_low_s(&twin));
        }
    }

    /// The text format checks accept exactly their rules and refuse with `InvalidFormat`.
    #[test]
    fn text_checks_match_their_rules(
        t in prop_oneof![text(), "[a-z0-9-]{14,66}", "[A-Za-z0-9._-]{0,66}"]
    ) {
        let coded = |r: &Result<(), ErrorCode>| {
            r.as_ref().err().is_none_or(|c| *c == ErrorCode::InvalidFormat)
        };
        let id = no_panic("validate::id", || validate::id(&t))?;
        let name = no_panic("validate::name", || validate::name(&t))?;
        let token = no_panic("validate::patient_token", || validate::patient_token(&t))?;
        let hash = no_panic("validate::sha256_hex", || validate::sha256_hex(&t))?;
        prop_assert!(coded(&id) && coded(&name) && coded(&token) && coded(&hash));
        let n = t.len();
        let all = |f: fn(char) -> bool| t.chars().all(f);
        prop_assert_eq!(
            id.is_ok(),
            (16..=64).contains(&n)
                && all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        prop_assert_eq!(
            name.is_ok(),
            (1..=64).contains(&n) && all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        );
        let lower_hex = n == 64 && all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        prop_assert_eq!(token.is_ok(), lower_hex);
        prop_assert_eq!(hash.is_ok(), lower_hex);
    }

    /// Request ids are scoped to their requester: `request_id_of` takes any text and any
    /// requester without panicking, accepts exactly a valid id that starts with the
    /// requester's scope, a dash and at least 8 more chars, and accepts the ids
    /// `scoped_request_id` makes.
    #[test]
    fn request_ids_are_scoped_to_their_requester(
        requester in prop_oneof![text(), "wasm1[a-z0-9]{38,58}"],
        other in text(),
        suffix in "[a-z0-9]{8,47}",
        t in text(),
    ) {
        let scope = no_panic("request_scope", || validate::request_scope(&requester))?;
        prop_assert_eq!(scope.len(), validate::REQUEST_SCOPE_HEX_LEN);
        let id = validate::scoped_request_id(&requester, &suffix);
        prop_assert_eq!(validate::request_id_of(&id, &requester), Ok(()));
        if validate::request_scope(&other) != scope {
            prop_assert_eq!(validate::request_id_of(&id, &other), Err(ErrorCode::InvalidFormat));
        }
        for candidate in [t.clone(), format!("{scope}{t}"), format!("{scope}-{t}")] {
            let result =
                no_panic("request_id_of", || validate::request_id_of(&candidate, &requester))?;
            let expected = validate::id(&candidate).is_ok()
                && candidate.len() > scope.len() + 8
                && candidate.strip_prefix(&scope).is_some_and(|rest| rest.starts_with('-'));
            prop_assert_eq!(result.is_ok(), expected, "{:?}", candidate);
            prop_assert!(result.err().is_none_or(|c| c == ErrorCode::InvalidFormat));
        }
    }

    /// The binary format checks: lengths and the key prefix.
    #[test]
    fn binary_checks_match_their_rules(
        data in prop_oneof![
            bytes(100),
            (select(&[2u8, 3, 4][..]), prop::collection::vec(any::<u8>(), 32))
                .prop_map(|(prefix, rest)| [vec![prefix], rest].concat()),
        ],
    ) {
        let bin = Binary::from(data.clone());
        let pubkey = no_panic("secp256k1_pubkey", || validate::secp256k1_pubkey(&bin))?;
        prop_assert_eq!(pubkey.is_ok(), data.len() == 33 && matches!(data[0], 2 | 3));
        prop_assert_eq!(validate::secp256k1_signature(&bin).is_ok(), data.len() == 64);
        prop_assert_eq!(validate::x25519_key(&bin).is_ok(), data.len() == 32);
        prop_assert_eq!(validate::sealed_patient(&bin).is_ok(), data.len() == SEALED_PATIENT_LEN);
    }

    /// Page sizes are clamped into 1..=MAX_PAGE.
    #[test]
    fn page_size_is_clamped(limit in prop::option::of(any::<u32>())) {
        let size = no_panic("page_size", || limits::page_size(limit))?;
        prop_assert!((1..=MAX_PAGE as usize).contains(&size));
        if let Some(l) = limit.filter(|l| (1..=MAX_PAGE).contains(l)) {
            prop_assert_eq!(size, l as usize);
        }
    }
}
