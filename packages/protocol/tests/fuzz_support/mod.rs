//! What the fuzz targets share: the run configuration, strategies for arbitrary text, JSON and
//! error codes, structure-aware mutation of JSON, and panic catching. Used by
//! `packages/protocol/tests/fuzz.rs` (the decoders) and, included by path, by
//! `tests/tests/fuzz.rs` (the exchange contract's IBC entry points).
#![allow(dead_code)] // each of the two targets uses part of it

use cosmwasm_std::Binary;
use ehr_protocol::chunks::Manifest;
use ehr_protocol::exchange::PurposeOfUse;
use ehr_protocol::packet::{ReplyBody, RequestBody};
use ehr_protocol::registry::Role;
use ehr_protocol::ErrorCode;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{Map, Number, Value};
use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Cases per target in a plain `cargo test`; `PROPTEST_CASES` overrides it for a long run.
pub const CASES: u32 = 1000;

/// proptest's default configuration (which reads `PROPTEST_CASES` and the other `PROPTEST_*`
/// variables), with `CASES` cases unless `PROPTEST_CASES` is set. No regression files: a
/// failure prints its shrunk input, and a bug it finds gets a named repro test instead.
pub fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = CASES;
    }
    config.failure_persistence = None;
    config
}

/// Runs `test` on `config()` cases of `strategy`; panics with the shrunk failing input.
pub fn fuzz<S>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let mut runner = TestRunner::new(config());
    if let Err(err) = runner.run(&strategy, test) {
        panic!("fuzz target {name}: {err}");
    }
}

/// Runs `f`; a panic is a test failure that names `what` and carries the panic message.
pub fn no_panic<R>(what: &str, f: impl FnOnce() -> R) -> Result<R, TestCaseError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        TestCaseError::fail(format!("{what} panicked: {}", panic_text(&*payload)))
    })
}

pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a non-string panic payload)".to_string())
}

/// Field and variant names of the wire types: keys a structure-aware mutation uses.
pub const WIRE_KEYS: &[&str] = &[
    "request",
    "reply",
    "body",
    "signer_pubkey",
    "signature",
    "version",
    "request_id",
    "source_network",
    "destination_network",
    "requester",
    "requester_role",
    "clinician_id",
    "purpose",
    "sealed_patient",
    "reply_encryption_key",
    "issued_at",
    "expires_at",
    "requester_network",
    "responder_network",
    "responder",
    "recipient_key_hash",
    "manifest",
    "chunk_bytes",
    "chunk_hashes",
    "history_hash",
    "chunk_index",
    "chunk",
    "no_records",
    "declined",
    "code",
    "request_accepted",
    "reply_accepted",
    "result",
    "error",
    "rate_limited",
    "retry_after",
];

/// JSON fragments spliced into serialised packets.
const JSON_FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "null",
    "true",
    "-0",
    "1e999",
    "-1",
    "0.5",
    "18446744073709551616",
    "\\u0000",
    "\\ud800",
    "\"body\":",
    "\"request\":{}",
    "\"\":",
    " ",
    "AA==",
    "====",
    "\u{0}",
    "\u{ffff}",
];

/// Arbitrary text: any chars (control chars included), the id alphabet, hex, printable
/// ASCII, JSON-ish fragments. Short: see `huge_text` for the oversized kind.
pub fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
        2 => "[a-z0-9-]{0,80}",
        1 => "[0-9a-fA-F]{60,68}",
        1 => Just(String::new()),
        1 => "[ -~]{0,300}",
        1 => prop::collection::vec(select(JSON_FRAGMENTS), 0..8).prop_map(|v| v.concat()),
    ]
    .boxed()
}

/// A string past 64 KiB: longer than a storage key component may be (`0xFFFF` bytes).
pub fn huge_text() -> BoxedStrategy<String> {
    (0x1_0000usize..0x1_0400)
        .prop_map(|n| "a".repeat(n))
        .boxed()
}

pub fn bytes(max: usize) -> BoxedStrategy<Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max).boxed()
}

const INTERESTING_U64: &[u64] = &[
    0,
    1,
    63,
    64,
    65,
    300,
    u32::MAX as u64,
    u64::MAX - 1,
    u64::MAX,
];

pub fn interesting_u64() -> BoxedStrategy<u64> {
    prop_oneof![3 => any::<u64>(), 1 => select(INTERESTING_U64)].boxed()
}

/// Powers of two around the chunk sizes, their neighbours, and anything.
pub fn interesting_u32() -> BoxedStrategy<u32> {
    prop_oneof![
        2 => any::<u32>(),
        2 => (0u32..20).prop_map(|k| 1u32 << k),
        1 => (0u32..20).prop_map(|k| (1u32 << k) + 1),
    ]
    .boxed()
}

/// Any JSON value, a few levels deep, with the wire types' keys more likely than others.
pub fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        interesting_u64().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
    .boxed()
}

fn json_key() -> BoxedStrategy<String> {
    prop_oneof![3 => select(WIRE_KEYS).prop_map(str::to_string), 1 => text()].boxed()
}

/// One edit of a valid message. Tree edits address a node by its index in a pre-order walk
/// (modulo the node count); byte edits act on the serialised JSON after the tree edits.
#[derive(Clone, Debug)]
pub enum Mutation {
    Replace(usize, Value),
    Remove(usize),
    Insert(usize, String, Value),
    Rename(usize, String),
    FlipByte(usize, u8),
    Truncate(usize),
    Splice(usize, String),
    Cut(usize, usize),
}

pub fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        4 => (any::<usize>(), json_value()).prop_map(|(at, v)| Mutation::Replace(at, v)),
        2 => any::<usize>().prop_map(Mutation::Remove),
        1 => (any::<usize>(), json_key(), json_value())
            .prop_map(|(at, k, v)| Mutation::Insert(at, k, v)),
        1 => (any::<usize>(), json_key()).prop_map(|(at, k)| Mutation::Rename(at, k)),
        2 => (any::<usize>(), 1..=u8::MAX).prop_map(|(at, mask)| Mutation::FlipByte(at, mask)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), prop::collection::vec(select(JSON_FRAGMENTS), 1..4))
            .prop_map(|(at, v)| Mutation::Splice(at, v.concat())),
        1 => (any::<usize>(), 1usize..16).prop_map(|(at, n)| Mutation::Cut(at, n)),
    ]
    .boxed()
}

pub fn mutations() -> BoxedStrategy<Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4).boxed()
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn walk(value: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(path.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                path.push(Step::Key(key.clone()));
                walk(child, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(Step::Index(i));
                walk(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn node_path(value: &Value, at: usize) -> Vec<Step> {
    let mut all = Vec::new();
    walk(value, &mut Vec::new(), &mut all);
    all.swap_remove(at % all.len())
}

fn node_mut<'a>(mut value: &'a mut Value, path: &[Step]) -> &'a mut Value {
    for step in path {
        value = match (value, step) {
            (Value::Object(map), Step::Key(key)) => map.get_mut(key).expect("walked path"),
            (Value::Array(items), Step::Index(i)) => &mut items[*i],
            _ => unreachable!("walked path"),
        };
    }
    value
}

/// Takes the node at `path` out of its parent (the root is replaced by null).
fn take_node(value: &mut Value, path: &[Step]) -> (Option<Step>, Value) {
    let Some((last, parent)) = path.split_last() else {
        return (None, std::mem::take(value));
    };
    let taken = match (node_mut(value, parent), last) {
        (Value::Object(map), Step::Key(key)) => map.remove(key),
        (Value::Array(items), Step::Index(i)) => Some(items.remove(*i)),
        _ => None,
    };
    (Some(last.clone()), taken.unwrap_or_default())
}

/// The JSON of `value` with `mutations` applied.
pub fn mutate(mut value: Value, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        match m {
            Mutation::Replace(at, new) => {
                let path = node_path(&value, *at);
                *node_mut(&mut value, &path) = new.clone();
            }
            Mutation::Remove(at) => {
                let path = node_path(&value, *at);
                take_node(&mut value, &path);
            }
            Mutation::Insert(at, key, new) => {
                let path = node_path(&value, *at);
                match node_mut(&mut value, &path) {
                    Value::Object(map) => {
                        map.insert(key.clone(), new.clone());
                    }
                    Value::Array(items) => items.insert(key.len() % (items.len() + 1), new.clone()),
                    other => *other = new.clone(),
                }
            }
            Mutation::Rename(at, key) => {
                let path = node_path(&value, *at);
                if let Some(Step::Key(_)) = path.last() {
                    let (_, taken) = take_node(&mut value, &path);
                    if let Value::Object(map) = node_mut(&mut value, &path[..path.len() - 1]) {
                        map.insert(key.clone(), taken);
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = serde_json::to_vec(&value).expect("a Value serialises");
    for m in mutations {
        match m {
            Mutation::FlipByte(at, mask) if !out.is_empty() => {
                let i = at % out.len();
                out[i] ^= mask;
            }
            Mutation::Truncate(at) => out.truncate(at % (out.len() + 1)),
            Mutation::Splice(at, text) => {
                let i = at % (out.len() + 1);
                out.splice(i..i, text.bytes());
            }
            Mutation::Cut(at, n) if !out.is_empty() => {
                let i = at % out.len();
                out.drain(i..(i + n).min(out.len()));
            }
            _ => {}
        }
    }
    out
}

/// Names of the codes without a detail, and of those with a `retry_after`. Codes are built
/// by `ErrorCode::parse`, so a name this list has and the crate lacks (or not yet) is skipped.
const SIMPLE_CODE_NAMES: &[&str] = &[
    "InvalidFormat",
    "UnknownPartner",
    "PartnerUnavailable",
    "NotRegistered",
    "BadSignature",
    "KeyRevoked",
    "NotAuthorized",
    "UnknownClinician",
    "PeerQuarantined",
    "Replay",
    "Expired",
    "NoRecords",
    "AlreadyAnswered",
    "UnknownRequest",
    "WrongChannel",
    "TooLarge",
    "UnsupportedVersion",
    "RecipientKeyMismatch",
    "RequesterRevoked",
    "CapReached",
    "Internal",
];
const RETRY_CODE_NAMES: &[&str] = &["RateLimited", "QuotaExceeded"];

pub fn simple_codes() -> Vec<ErrorCode> {
    SIMPLE_CODE_NAMES
        .iter()
        .filter_map(|name| ErrorCode::parse(name))
        .collect()
}

pub fn error_code() -> BoxedStrategy<ErrorCode> {
    let retry = RETRY_CODE_NAMES
        .iter()
        .filter(|name| ErrorCode::parse(&format!("{name}(retry_after=0)")).is_some())
        .copied()
        .collect::<Vec<_>>();
    prop_oneof![
        4 => select(simple_codes()),
        1 => (select(retry), interesting_u64()).prop_map(|(name, secs)| {
            ErrorCode::parse(&format!("{name}(retry_after={secs})")).expect("checked name")
        }),
    ]
    .boxed()
}

/// The code an error acknowledgement's text carries, parsed strictly: `None` for any text
/// that is not `ehrx:<Code>` (where `ErrorCode::from_ack_error` would say `Internal`).
pub fn strict_ack_code(text: &str) -> Option<ErrorCode> {
    text.strip_prefix("ehrx:").and_then(ErrorCode::parse)
}

// ------------------------------------------------------------ typed strategies

pub fn binary(max: usize) -> BoxedStrategy<Binary> {
    bytes(max).prop_map(Binary::from).boxed()
}

pub fn role() -> BoxedStrategy<Role> {
    select(&[Role::Store, Role::Request, Role::Reply, Role::Admin][..]).boxed()
}

pub fn purpose() -> BoxedStrategy<PurposeOfUse> {
    select(
        &[
            PurposeOfUse::Treatment,
            PurposeOfUse::EmergencyTreatment,
            PurposeOfUse::Payment,
            PurposeOfUse::Operations,
        ][..],
    )
    .boxed()
}

/// Any manifest: any sizes, any hash texts.
pub fn manifest() -> BoxedStrategy<Manifest> {
    (
        interesting_u32(),
        prop::collection::vec(text(), 0..5),
        text(),
    )
        .prop_map(|(chunk_bytes, chunk_hashes, history_hash)| Manifest {
            chunk_bytes,
            chunk_hashes,
            history_hash,
        })
        .boxed()
}

/// One strategy per field of a `RequestBody`; `default()` takes any value in each, and a
/// target replaces the ones it wants closer to valid.
pub struct RequestFields {
    pub version: BoxedStrategy<u32>,
    pub request_id: BoxedStrategy<String>,
    pub source_network: BoxedStrategy<String>,
    pub destination_network: BoxedStrategy<String>,
    pub requester: BoxedStrategy<String>,
    pub requester_role: BoxedStrategy<Role>,
    pub clinician_id: BoxedStrategy<String>,
    pub purpose: BoxedStrategy<PurposeOfUse>,
    pub sealed_patient: BoxedStrategy<Binary>,
    pub reply_encryption_key: BoxedStrategy<Binary>,
    pub issued_at: BoxedStrategy<u64>,
    pub expires_at: BoxedStrategy<u64>,
}

impl Default for RequestFields {
    fn default() -> Self {
        RequestFields {
            version: any::<u32>().boxed(),
            request_id: text(),
            source_network: text(),
            destination_network: text(),
            requester: text(),
            requester_role: role(),
            clinician_id: text(),
            purpose: purpose(),
            sealed_patient: binary(48),
            reply_encryption_key: binary(48),
            issued_at: interesting_u64(),
            expires_at: interesting_u64(),
        }
    }
}

impl RequestFields {
    pub fn body(self) -> BoxedStrategy<RequestBody> {
        let head = (
            self.version,
            self.request_id,
            self.source_network,
            self.destination_network,
            self.requester,
            self.requester_role,
            self.clinician_id,
        );
        let tail = (
            self.purpose,
            self.sealed_patient,
            self.reply_encryption_key,
            self.issued_at,
            self.expires_at,
        );
        (head, tail)
            .prop_map(
                |(
                    (v, id, src, dst, requester, role, clinician),
                    (purpose, sealed, key, at, exp),
                )| {
                    RequestBody {
                        version: v,
                        request_id: id,
                        source_network: src,
                        destination_network: dst,
                        requester,
                        requester_role: role,
                        clinician_id: clinician,
                        purpose,
                        sealed_patient: sealed,
                        reply_encryption_key: key,
                        issued_at: at,
                        expires_at: exp,
                        break_glass: None,
                    }
                },
            )
            .boxed()
    }
}

/// One strategy per field of a `ReplyBody`, as `RequestFields`.
pub struct ReplyFields {
    pub version: BoxedStrategy<u32>,
    pub request_id: BoxedStrategy<String>,
    pub requester_network: BoxedStrategy<String>,
    pub responder_network: BoxedStrategy<String>,
    pub responder: BoxedStrategy<String>,
    pub recipient_key_hash: BoxedStrategy<String>,
    pub manifest: BoxedStrategy<Manifest>,
    pub issued_at: BoxedStrategy<u64>,
}

impl Default for ReplyFields {
    fn default() -> Self {
        ReplyFields {
            version: any::<u32>().boxed(),
            request_id: text(),
            requester_network: text(),
            responder_network: text(),
            responder: text(),
            recipient_key_hash: text(),
            manifest: manifest(),
            issued_at: interesting_u64(),
        }
    }
}

impl ReplyFields {
    pub fn body(self) -> BoxedStrategy<ReplyBody> {
        let fields = (
            self.version,
            self.request_id,
            self.requester_network,
            self.responder_network,
            self.responder,
            self.recipient_key_hash,
            self.manifest,
            self.issued_at,
        );
        fields
            .prop_map(
                |(v, id, requester_net, responder_net, responder, key_hash, manifest, at)| {
                    ReplyBody {
                        version: v,
                        request_id: id,
                        requester_network: requester_net,
                        responder_network: responder_net,
                        responder,
                        recipient_key_hash: key_hash,
                        manifest,
                        issued_at: at,
                    }
                },
            )
            .boxed()
    }
}
