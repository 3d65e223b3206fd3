//! FHIR R4 in and out, as plain JSON.
//!
//! What goes on chain is checked by the `fhir-r4` crate: the R4 resource model, cardinalities,
//! datatypes and the Bundle's references, from the official R4 StructureDefinitions
//! ([`check_bundle`], [`validate_bundle`]). Entries are carried through encryption untouched
//! (`serde_json::Value` loses no field of the hospital's data); the tool adds `Provenance`
//! and `AuditEvent` resources and writes a valid R4 Bundle for the requester.
//!
//! Error messages name the position (`Bundle.entry[3].resource.subject`), never the content
//! (which is PHI).

use crate::time;
use ehr_protocol::audit::{AuditAction, AuditEntry, AuditOutcome};
use ehr_protocol::exchange::PurposeOfUse;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};

/// The R4 `bundle-type` value set.
pub use fhir_r4::BUNDLE_TYPES;

pub const PEER_SYSTEM: &str = "urn:ehrx:peer";
/// Registered clinicians, by their registry id (the hospital's staff id, never a name).
pub const CLINICIAN_SYSTEM: &str = "urn:ehrx:clinician";
pub const NETWORK_SYSTEM: &str = "urn:ehrx:network";
pub const REQUEST_SYSTEM: &str = "urn:ehrx:request-id";
pub const AUDIT_ACTION_SYSTEM: &str = "urn:ehrx:audit-action";
pub const ROLE_SYSTEM: &str = "urn:ehrx:role";
const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const PROVENANCE_PARTICIPANT: &str =
    "http://terminology.hl7.org/CodeSystem/provenance-participant-type";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";

/// Why a Bundle is refused: every issue found (up to `fhir_r4::MAX_ISSUES`), one a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FhirError(pub String);

impl From<fhir_r4::Invalid> for FhirError {
    fn from(invalid: fhir_r4::Invalid) -> Self {
        FhirError(invalid.to_string())
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, FhirError> {
    Err(FhirError(format!(
        "not a valid FHIR R4 Bundle: {}",
        msg.into()
    )))
}

/// Checks a Bundle read from a file (`ehrx store`) against FHIR R4, entry by entry (memory
/// stays near the largest entry, not the document): every error with its FHIRPath location,
/// malformed JSON with its line and column.
pub fn check_bundle(bytes: &[u8]) -> Result<fhir_r4::Summary, FhirError> {
    Ok(fhir_r4::validate_json(bytes)?)
}

/// Checks a parsed Bundle against FHIR R4 (what `ehrx request` writes passes it).
pub fn validate_bundle(bundle: &Value) -> Result<fhir_r4::Summary, FhirError> {
    Ok(fhir_r4::validate(bundle)?)
}

fn is_resource_type(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphanumeric())
        && text.len() <= 64
}

/// FHIR `id`: 1-64 of `[A-Za-z0-9-.]`.
fn is_fhir_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Checks the structure the exchange relies on: `resourceType` Bundle, a `type` from the
/// R4 value set, and entries that each carry a resource with a `resourceType`. Enough for
/// what comes back decrypted (records stored before `ehrx store` checked R4, replies), which
/// [`output_bundle`] turns into valid R4.
fn check_structure(bundle: &Value) -> Result<(), FhirError> {
    let Some(obj) = bundle.as_object() else {
        return err("the document is not a JSON object");
    };
    if obj.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return err("resourceType is not \"Bundle\"");
    }
    match obj.get("type").and_then(Value::as_str) {
        Some(t) if BUNDLE_TYPES.contains(&t) => {}
        Some(_) => return err("type is not in the R4 bundle-type value set"),
        None => return err("type is missing"),
    }
    if let Some(id) = obj.get("id") {
        if !id.as_str().is_some_and(is_fhir_id) {
            return err("id is not a FHIR id");
        }
    }
    let entries = match obj.get("entry") {
        None => return Ok(()),
        Some(Value::Array(entries)) => entries,
        Some(_) => return err("entry is not an array"),
    };
    for (i, entry) in entries.iter().enumerate() {
        let Some(entry) = entry.as_object() else {
            return err(format!("entry[{i}] is not an object"));
        };
        if let Some(url) = entry.get("fullUrl") {
            if url.as_str().is_none_or(str::is_empty) {
                return err(format!("entry[{i}].fullUrl is not a URI"));
            }
        }
        let Some(resource) = entry.get("resource").and_then(Value::as_object) else {
            return err(format!("entry[{i}] has no resource"));
        };
        match resource.get("resourceType").and_then(Value::as_str) {
            Some(t) if is_resource_type(t) => {}
            _ => return err(format!("entry[{i}].resource has no valid resourceType")),
        }
        if let Some(id) = resource.get("id") {
            if !id.as_str().is_some_and(is_fhir_id) {
                return err(format!("entry[{i}].resource.id is not a FHIR id"));
            }
        }
    }
    Ok(())
}

/// Parses a decrypted Bundle from JSON bytes and checks its structure (not all of R4: see
/// [`check_structure`]; [`check_bundle`] checks R4).
pub fn parse_bundle(bytes: &[u8]) -> Result<Value, FhirError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        FhirError(format!(
            "not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    check_structure(&value)?;
    Ok(value)
}

fn entries(bundle: &Value) -> impl Iterator<Item = &Value> {
    bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A random RFC 4122 version-4 UUID as `urn:uuid:...`.
pub fn urn_uuid() -> String {
    let mut b = [0u8; 16];
    crate::keys::os_random(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// One `collection` Bundle holding the entries of all `bundles`, in order, each entry
/// kept as it was (resource, fullUrl, ...) minus bundle-type-specific parts
/// (`request`, `response`, `search`).
pub fn merge_bundles(bundles: &[Value]) -> Value {
    let merged: Vec<Value> = bundles
        .iter()
        .flat_map(entries)
        .map(|entry| {
            let mut entry = entry.clone();
            if let Some(obj) = entry.as_object_mut() {
                for key in ["request", "response", "search"] {
                    obj.remove(key);
                }
            }
            entry
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": time::rfc3339(time::now_unix(), 0),
        "entry": merged,
    })
}

/// Who answered a request, from where: becomes the output's `Provenance`.
#[derive(Debug, Clone)]
pub struct ReplyProvenance {
    pub request_id: String,
    pub responder: String,
    pub responder_network: String,
    pub channel_id: String,
    pub packet_sequence: u64,
    /// When the responder signed the reply (unix seconds).
    pub issued_at: u64,
    /// When it was recorded here (unix seconds).
    pub recorded_at: u64,
    /// The whole-history hash (hex) the responder signed: it binds every chunk of the
    /// sealed reply (`ehr_protocol::chunks`).
    pub history_hash: String,
}

/// The Provenance entity that carries [`ReplyProvenance::history_hash`].
pub const HISTORY_HASH_SYSTEM: &str = "urn:ehrx:history-hash";

/// Output Bundle type of `ehrx request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputBundleType {
    Collection,
    Searchset,
}

/// Every `reference` string in `value` (a resource), for rewriting.
fn for_each_reference(value: &mut Value, f: &mut impl FnMut(&mut String)) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(r) if key == "reference" => f(r),
                    _ => for_each_reference(v, f),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| for_each_reference(v, f)),
        _ => {}
    }
}

/// The reply's entries as a valid R4 Bundle's: bundle-type parts dropped, entries without a
/// resource dropped, one entry per fullUrl (and versionId; the last one of the merged record
/// Bundles wins, in the place of the first), a `urn:uuid` fullUrl for an entry that had none,
/// and every relative reference (`Patient/p1`) that the Bundle's fullUrl rules would not
/// resolve pointed at the fullUrl of the entry with that type and id.
fn output_entries(reply: &Value) -> Vec<Map<String, Value>> {
    let mut out: Vec<Map<String, Value>> = Vec::new();
    let mut seen: HashMap<(String, Option<String>), usize> = HashMap::new();
    for entry in entries(reply) {
        let mut entry = entry.as_object().cloned().unwrap_or_default();
        for key in ["request", "response", "search"] {
            entry.remove(key);
        }
        let Some(resource) = entry.get("resource").filter(|r| r.is_object()) else {
            continue;
        };
        let url = entry.get("fullUrl").and_then(Value::as_str);
        let Some(url) = url.filter(|u| !u.is_empty()).map(str::to_string) else {
            entry.insert("fullUrl".into(), Value::String(urn_uuid()));
            out.push(entry);
            continue;
        };
        let version = resource.pointer("/meta/versionId").and_then(Value::as_str);
        match seen.entry((url, version.map(str::to_string))) {
            std::collections::hash_map::Entry::Occupied(at) => out[*at.get()] = entry,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(out.len());
                out.push(entry);
            }
        }
    }
    let full_urls: HashSet<String> = out
        .iter()
        .filter_map(|e| e.get("fullUrl").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let mut by_type_id: HashMap<String, String> = HashMap::new();
    for e in &out {
        let resource = &e["resource"];
        if let (Some(t), Some(id), Some(url)) = (
            resource.get("resourceType").and_then(Value::as_str),
            resource.get("id").and_then(Value::as_str),
            e.get("fullUrl").and_then(Value::as_str),
        ) {
            by_type_id
                .entry(format!("{t}/{id}"))
                .or_insert_with(|| url.to_string());
        }
    }
    for e in &mut out {
        let url = e["fullUrl"].as_str().unwrap_or_default().to_string();
        let base = fhir_r4::restful(&url).map(|(base, _, _)| base.to_string());
        let Some(resource) = e.get_mut("resource") else {
            continue;
        };
        for_each_reference(resource, &mut |r: &mut String| {
            let Some(("", ty, id)) = fhir_r4::restful(r) else {
                return;
            };
            let key = format!("{ty}/{id}");
            let resolves = base
                .as_ref()
                .is_some_and(|b| !b.is_empty() && full_urls.contains(&format!("{b}/{key}")));
            if !resolves {
                if let Some(target) = by_type_id.get(&key) {
                    *r = target.clone();
                }
            }
        });
    }
    out
}

/// The patient's history as written by `ehrx request`: the decrypted reply's entries, a valid
/// R4 Bundle (original fullUrls and ids kept, every reference resolving: [`output_entries`]),
/// plus a `Provenance` naming who answered, from which network, channel and packet, and the
/// whole-history hash.
pub fn output_bundle(reply: &Value, p: &ReplyProvenance, kind: OutputBundleType) -> Value {
    let searchset = kind == OutputBundleType::Searchset;
    let mut out_entries = Vec::new();
    let mut targets = Vec::new();
    for mut entry in output_entries(reply) {
        targets.push(json!({ "reference": entry["fullUrl"] }));
        if searchset {
            entry.insert("search".into(), json!({ "mode": "match" }));
        }
        out_entries.push(Value::Object(entry));
    }
    let matches = out_entries.len();
    let provenance = provenance(targets, p);
    let mut provenance_entry = Map::new();
    provenance_entry.insert("fullUrl".into(), Value::String(urn_uuid()));
    provenance_entry.insert("resource".into(), provenance);
    if searchset {
        provenance_entry.insert("search".into(), json!({ "mode": "include" }));
    }
    out_entries.push(Value::Object(provenance_entry));
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": match kind {
            OutputBundleType::Collection => "collection",
            OutputBundleType::Searchset => "searchset",
        },
        "timestamp": time::rfc3339(p.recorded_at, 0),
        "entry": out_entries,
    });
    if searchset {
        bundle["total"] = json!(matches);
    }
    bundle
}

/// The output's `Provenance`: who answered, from which network, channel and packet, the
/// whole-history hash, and the entries it covers (`targets`: references to their fullUrls).
fn provenance(targets: Vec<Value>, p: &ReplyProvenance) -> Value {
    json!({
        "resourceType": "Provenance",
        "target": targets,
        "occurredDateTime": time::rfc3339(p.issued_at, 0),
        "recorded": time::rfc3339(p.recorded_at, 0),
        "policy": [format!("urn:ehrx:request:{}", p.request_id)],
        "activity": {
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                "code": "CREATE",
                "display": "create"
            }],
            "text": "records disclosed in reply to a cross-network request"
        },
        "agent": [{
            "type": { "coding": [{
                "system": PROVENANCE_PARTICIPANT,
                "code": "author",
                "display": "Author"
            }]},
            "who": {
                "identifier": { "system": PEER_SYSTEM, "value": p.responder },
                "display": format!("peer {} of network {}", p.responder, p.responder_network)
            },
            "onBehalfOf": {
                "identifier": { "system": NETWORK_SYSTEM, "value": p.responder_network }
            }
        }],
        "entity": [{
            "role": "source",
            "what": {
                "identifier": {
                    "system": "urn:ehrx:ibc-packet",
                    "value": format!("{}/{}", p.channel_id, p.packet_sequence)
                },
                "display": format!(
                    "reply packet {} on channel {} for request {}",
                    p.packet_sequence, p.channel_id, p.request_id
                )
            }
        }, {
            "role": "source",
            "what": {
                "identifier": { "system": HISTORY_HASH_SYSTEM, "value": p.history_hash },
                "display": "whole-history hash (SHA-256, hex)"
            }
        }]
    })
}

/// One entry of a received record Bundle as its JSON text: only what the output needs is
/// parsed, the resource stays the bytes it came as.
#[derive(serde::Deserialize)]
struct RawBundle<'a> {
    #[serde(borrow, default)]
    entry: Vec<RawEntry<'a>>,
}

#[derive(serde::Deserialize)]
struct RawEntry<'a> {
    #[serde(rename = "fullUrl")]
    full_url: Option<String>,
    #[serde(borrow)]
    resource: Option<&'a serde_json::value::RawValue>,
}

#[derive(serde::Deserialize)]
struct ResourceHead {
    meta: Option<MetaHead>,
}

#[derive(serde::Deserialize)]
struct MetaHead {
    #[serde(rename = "versionId")]
    version_id: Option<String>,
}

/// The patient's history as `ehrx request` writes it, built from the received record
/// Bundles' JSON without holding them as trees: the entries as they came (one per fullUrl and
/// versionId, the last one of the records winning, in the place of the first), then the
/// Provenance. `None` when an entry has no fullUrl: [`output_bundle`] then mends the Bundle
/// (it needs the parsed tree). What it returns is checked as R4 by the caller.
pub fn output_bundle_json(
    records: &[impl AsRef<[u8]>],
    p: &ReplyProvenance,
    kind: OutputBundleType,
) -> Result<Option<Vec<u8>>, FhirError> {
    let mut bundles = Vec::with_capacity(records.len());
    for (n, record) in records.iter().enumerate() {
        let bundle: RawBundle = serde_json::from_slice(record.as_ref()).map_err(|e| {
            FhirError(format!(
                "record {n} of the reply is not a Bundle (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        bundles.push(bundle);
    }
    let mut kept: Vec<(&str, &serde_json::value::RawValue)> = Vec::new();
    let mut seen: HashMap<(&str, Option<String>), usize> = HashMap::new();
    for entry in bundles.iter().flat_map(|b| &b.entry) {
        let Some(resource) = entry.resource else {
            continue;
        };
        let Some(url) = entry.full_url.as_deref().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let head: ResourceHead = serde_json::from_str(resource.get())
            .map_err(|_| FhirError("an entry's resource is not a JSON object".into()))?;
        let version = head.meta.and_then(|m| m.version_id);
        match seen.entry((url, version)) {
            std::collections::hash_map::Entry::Occupied(at) => kept[*at.get()] = (url, resource),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(kept.len());
                kept.push((url, resource));
            }
        }
    }
    let searchset = kind == OutputBundleType::Searchset;
    let targets = kept
        .iter()
        .map(|(url, _)| json!({ "reference": url }))
        .collect();
    let mut provenance_entry = json!({
        "fullUrl": urn_uuid(),
        "resource": provenance(targets, p),
    });
    if searchset {
        provenance_entry["search"] = json!({ "mode": "include" });
    }
    let size: usize = kept.iter().map(|(u, r)| u.len() + r.get().len() + 64).sum();
    let mut out = Vec::with_capacity(size + 4096);
    let text = |v: &Value| serde_json::to_vec(v).unwrap_or_default();
    out.extend_from_slice(br#"{"resourceType":"Bundle","type":"#);
    out.extend(text(&json!(if searchset {
        "searchset"
    } else {
        "collection"
    })));
    out.extend_from_slice(br#","timestamp":"#);
    out.extend(text(&json!(time::rfc3339(p.recorded_at, 0))));
    if searchset {
        out.extend_from_slice(br#","total":"#);
        out.extend(kept.len().to_string().into_bytes());
    }
    out.extend_from_slice(br#","entry":["#);
    for (url, resource) in &kept {
        out.extend_from_slice(br#"{"fullUrl":"#);
        out.extend(text(&json!(url)));
        out.extend_from_slice(br#","resource":"#);
        out.extend_from_slice(resource.get().as_bytes());
        if searchset {
            out.extend_from_slice(br#","search":{"mode":"match"}"#);
        }
        out.extend_from_slice(b"},");
    }
    out.extend(text(&provenance_entry));
    out.extend_from_slice(b"]}");
    Ok(Some(out))
}

fn purpose_code(purpose: PurposeOfUse) -> (&'static str, &'static str) {
    match purpose {
        PurposeOfUse::Treatment => ("TREAT", "treatment"),
        PurposeOfUse::EmergencyTreatment => ("ETREAT", "Emergency Treatment"),
        PurposeOfUse::Payment => ("HPAYMT", "healthcare payment"),
        PurposeOfUse::Operations => ("HOPERAT", "healthcare operations"),
    }
}

/// DICOM audit event type and FHIR action (C/R/U/D/E) of each step.
fn event_type(action: AuditAction) -> ((&'static str, &'static str), &'static str) {
    use AuditAction::*;
    const QUERY: (&str, &str) = ("110112", "Query");
    const EXPORT: (&str, &str) = ("110106", "Export");
    const IMPORT: (&str, &str) = ("110107", "Import");
    const RECORD: (&str, &str) = ("110110", "Patient Record");
    const ALERT: (&str, &str) = ("110113", "Security Alert");
    const ROLES: (&str, &str) = ("110136", "Security Roles Changed");
    const APP: (&str, &str) = ("110100", "Application Activity");
    match action {
        RecordStored => (RECORD, "C"),
        RequestSubmitted | RequestDelivered | RequestFailed | RequestTimedOut | RequestExpired
        | RequestReceived => (QUERY, "E"),
        ReplySubmitted | ReplyDelivered | ReplyFailed | ReplyTimedOut => (EXPORT, "R"),
        ReplyReceived => (IMPORT, "C"),
        Retrieval => (EXPORT, "R"),
        Strike | Quarantine | Release => (ALERT, "E"),
        PeerRegistered | PeerKeysRotated | PeerRevoked | ClinicianChanged | AdminChanged => {
            (ROLES, "U")
        }
        PartnerChanged | PolicyChanged => (APP, "U"),
        ChannelOpened | ChannelClosed => (APP, "E"),
        BreakGlass | BreakGlassCosigned | BreakGlassCosignMissing => (ALERT, "E"),
        ConsentRecorded | ConsentRevoked => (RECORD, "U"),
        ConsentDecision => (APP, "E"),
    }
}

/// The snake_case name the contracts use for an action (its JSON form).
pub fn action_name(action: AuditAction) -> String {
    serde_json::to_value(action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{action:?}"))
}

/// One audit entry of `network`'s contract `observer` as a FHIR R4 `AuditEvent`.
pub fn audit_event(entry: &AuditEntry, network: &str, observer: &str) -> Value {
    let ((type_code, type_display), action) = event_type(entry.action);
    let name = action_name(entry.action);
    let mut agent = Map::new();
    match &entry.agent {
        Some(addr) => {
            agent.insert(
                "who".into(),
                json!({ "identifier": { "system": PEER_SYSTEM, "value": addr.as_str() } }),
            );
            agent.insert("requestor".into(), Value::Bool(true));
        }
        None => {
            // Steps the chain takes itself (timeouts, packets): the contract is the agent.
            agent.insert(
                "who".into(),
                json!({ "identifier": { "system": PEER_SYSTEM, "value": observer } }),
            );
            agent.insert("requestor".into(), Value::Bool(false));
        }
    }
    if let Some(role) = entry.role {
        agent.insert(
            "role".into(),
            json!([{ "coding": [{ "system": ROLE_SYSTEM, "code": role.as_str() }] }]),
        );
    }
    let purpose_of_use = entry.purpose.map(|purpose| {
        let (code, display) = purpose_code(purpose);
        json!([{ "coding": [{ "system": ACT_REASON, "code": code, "display": display }] }])
    });
    if let Some(purpose) = &purpose_of_use {
        agent.insert("purposeOfUse".into(), purpose.clone());
    }
    let mut agents = vec![Value::Object(agent)];
    // The registered clinician who asked, on both chains: a second agent, the human
    // requestor (the peer above is the account that sent it). A registry change to a
    // clinician names them as its entity instead (the admin is the agent).
    let changed_clinician = entry.action == AuditAction::ClinicianChanged;
    if let (Some(clinician), false) = (&entry.clinician_id, changed_clinician) {
        let mut who = json!({
            "who": { "identifier": { "system": CLINICIAN_SYSTEM, "value": clinician } },
            "requestor": true,
        });
        if let Some(purpose) = purpose_of_use {
            who["purposeOfUse"] = purpose;
        }
        agents.push(who);
    }
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": format!("{}-{}", sanitize_id(network), entry.id),
        "type": { "system": DCM, "code": type_code, "display": type_display },
        "subtype": [{ "system": AUDIT_ACTION_SYSTEM, "code": name, "display": name.replace('_', " ") }],
        "action": action,
        "recorded": time::rfc3339_nanos(entry.time.nanos()),
        "outcome": match entry.outcome {
            AuditOutcome::Success => "0",
            AuditOutcome::Rejected => "4",
        },
        "agent": agents,
        "source": {
            "site": network,
            "observer": { "identifier": { "system": PEER_SYSTEM, "value": observer } },
            "type": [{ "system": SOURCE_TYPE, "code": "4", "display": "Application Server" }]
        },
    });
    if let Some(reason) = &entry.reason {
        event["outcomeDesc"] = Value::String(reason.to_string());
    }
    let mut entities = Vec::new();
    if let Some(request_id) = &entry.request_id {
        let mut details = Vec::new();
        if let Some(partner) = &entry.partner_id {
            details.push(json!({ "type": "partner_id", "valueString": partner }));
        }
        if let Some(channel) = &entry.channel_id {
            details.push(json!({ "type": "channel_id", "valueString": channel }));
        }
        if let Some(seq) = entry.packet_sequence {
            details.push(json!({ "type": "packet_sequence", "valueString": seq.to_string() }));
        }
        let mut entity = json!({
            "what": { "identifier": { "system": REQUEST_SYSTEM, "value": request_id } },
            "type": { "system": ENTITY_TYPE, "code": "2", "display": "System Object" },
        });
        if !details.is_empty() {
            entity["detail"] = Value::Array(details);
        }
        entities.push(entity);
    } else if entry.partner_id.is_some() || entry.channel_id.is_some() {
        let mut details = Vec::new();
        if let Some(channel) = &entry.channel_id {
            details.push(json!({ "type": "channel_id", "valueString": channel }));
        }
        let partner = entry.partner_id.as_deref().unwrap_or("");
        let mut entity = json!({
            "what": { "identifier": { "system": NETWORK_SYSTEM, "value": partner } },
            "type": { "system": ENTITY_TYPE, "code": "2", "display": "System Object" },
        });
        if !details.is_empty() {
            entity["detail"] = Value::Array(details);
        }
        entities.push(entity);
    }
    if changed_clinician {
        if let Some(clinician) = entry.clinician_id.as_ref().or(entry.subject.as_ref()) {
            entities.push(json!({
                "what": { "identifier": { "system": CLINICIAN_SYSTEM, "value": clinician } },
                "type": { "system": ENTITY_TYPE, "code": "1", "display": "Person" },
                "role": { "system": OBJECT_ROLE, "code": "6", "display": "User" },
            }));
        }
    }
    if !entities.is_empty() {
        event["entity"] = Value::Array(entities);
    }
    event
}

fn sanitize_id(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect()
}

/// A `collection` Bundle of AuditEvents.
pub fn audit_bundle(events: Vec<Value>) -> Value {
    let entry: Vec<Value> = events
        .into_iter()
        .map(|e| {
            let url = format!("urn:ehrx:audit:{}", e["id"].as_str().unwrap_or_default());
            json!({ "fullUrl": url, "resource": e })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": time::rfc3339(time::now_unix(), 0),
        "entry": entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::{Addr, Timestamp};
    use ehr_protocol::registry::Role;
    use ehr_protocol::ErrorCode;

    const PATIENT: &str = "https://a.example/fhir/Patient/p1";

    /// Valid R4: RESTful fullUrls, a relative reference resolving against them.
    fn good() -> Value {
        json!({
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                { "fullUrl": PATIENT, "resource": { "resourceType": "Patient", "id": "p1" } },
                { "fullUrl": "https://a.example/fhir/Observation/o.1-x",
                  "resource": { "resourceType": "Observation", "id": "o.1-x", "status": "final",
                                "code": { "text": "HbA1c" }, "subject": { "reference": "Patient/p1" } } }
            ]
        })
    }

    /// What records stored before `ehrx store` checked R4 may hold: an entry without a
    /// fullUrl, references by type and id next to a urn fullUrl.
    fn legacy() -> Value {
        json!({
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                { "fullUrl": "urn:uuid:7f1c3a52-5b8e-4c1a-9d3e-2a4b6c8d0e1f",
                  "resource": { "resourceType": "Patient", "id": "p1" } },
                { "resource": { "resourceType": "Condition", "id": "c1",
                                "subject": { "reference": "Patient/p1" } },
                  "search": { "mode": "match" } }
            ]
        })
    }

    #[test]
    fn good_bundles_validate() {
        validate_bundle(&good()).unwrap();
        validate_bundle(&json!({"resourceType": "Bundle", "type": "searchset"})).unwrap();
        let summary = check_bundle(serde_json::to_vec(&good()).unwrap().as_slice()).unwrap();
        assert_eq!(summary.entries, 2);
        assert!(parse_bundle(serde_json::to_vec(&good()).unwrap().as_slice()).is_ok());
        // What comes back decrypted only needs the structure; what is stored needs R4.
        let legacy = serde_json::to_vec(&legacy()).unwrap();
        assert!(parse_bundle(&legacy).is_ok());
        let refused = check_bundle(&legacy).unwrap_err().to_string();
        assert!(
            refused.contains(
                "Bundle.entry[1].resource.subject: The relative reference cannot be resolved"
            ),
            "{refused}"
        );
    }

    #[test]
    fn bad_bundles_are_refused_with_a_position_not_content() {
        let cases = [
            (json!([1, 2]), "Bundle: Error parsing JSON: the document must be a JSON object, not an array"),
            (
                json!({"resourceType": "Patient", "type": "collection"}),
                "Bundle: The resource is a Patient, not a Bundle",
            ),
            (json!({"resourceType": "Bundle"}), "Bundle: Bundle.type: minimum required = 1, but only found 0"),
            (
                json!({"resourceType": "Bundle", "type": "bag"}),
                "Bundle.type: The value provided was not found in the value set 'BundleType'",
            ),
            (
                json!({"resourceType": "Bundle", "type": "collection", "entry": {}}),
                "Bundle.entry: The property entry must be a JSON Array, not an object",
            ),
            (
                json!({"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "x"}]}),
                "Bundle.entry[0]: Constraint failed: bdl-5",
            ),
            (
                json!({"resourceType": "Bundle", "type": "collection",
                       "entry": [{"fullUrl": PATIENT, "resource": {"resourceType": "Patient", "id": "p1"}},
                                 {"fullUrl": "urn:uuid:1", "resource": {"name": "Jose Alvarez"}}]}),
                "Bundle.entry[1].resource: Unable to find resourceType property",
            ),
            (
                json!({"resourceType": "Bundle", "type": "collection",
                       "entry": [{"fullUrl": "urn:uuid:1", "resource": {"resourceType": "patient lower"}}]}),
                "Bundle.entry[0].resource: This does not appear to be a FHIR resource (unknown name '(not a FHIR name)')",
            ),
            (
                json!({"resourceType": "Bundle", "type": "collection",
                       "entry": [{"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "id": "has space"}}]}),
                "Bundle.entry[0].resource.id: id value is not valid",
            ),
        ];
        for (bundle, expected) in cases {
            let e = validate_bundle(&bundle).unwrap_err().to_string();
            assert!(e.contains(expected), "{e} / {expected}");
            assert!(!e.contains("Jose"));
            let streamed = check_bundle(&serde_json::to_vec(&bundle).unwrap()).unwrap_err();
            assert_eq!(streamed.to_string(), e);
        }
        let e = parse_bundle(b"{not json").unwrap_err();
        assert!(e.to_string().contains("line 1"));
        let e = check_bundle(b"{\"resourceType\": \"Bundle\",\n \"type\": ").unwrap_err();
        assert_eq!(
            e.to_string(),
            "not a valid FHIR R4 Bundle (1 error)\n  line 2, column 9: Error parsing JSON: EOF while parsing a value"
        );
    }

    #[test]
    fn merge_keeps_every_entry_in_one_collection() {
        let other = json!({"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": {"resourceType": "Condition"}, "search": {"mode": "match"}}
        ]});
        let merged = merge_bundles(&[legacy(), other]);
        check_structure(&merged).unwrap();
        assert_eq!(merged["type"], "collection");
        let e = merged["entry"].as_array().unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[0]["fullUrl"],
            "urn:uuid:7f1c3a52-5b8e-4c1a-9d3e-2a4b6c8d0e1f"
        );
        assert!(e[1].get("search").is_none());
        assert!(e[2].get("search").is_none());
        assert_eq!(e[2]["resource"]["resourceType"], "Condition");
    }

    fn provenance() -> ReplyProvenance {
        ReplyProvenance {
            request_id: "0123456789abcdef0123456789abcdef".into(),
            responder: "wasm1responder".into(),
            responder_network: "hospital-b".into(),
            channel_id: "channel-0".into(),
            packet_sequence: 7,
            issued_at: 1_700_000_000,
            recorded_at: 1_700_000_060,
            history_hash: "ab".repeat(32),
        }
    }

    #[test]
    fn the_output_is_built_from_the_records_json_and_validates() {
        let good = serde_json::to_vec(&good()).unwrap();
        // Two records sharing the Patient: one entry per fullUrl, in the place of the first.
        for kind in [OutputBundleType::Collection, OutputBundleType::Searchset] {
            let json = output_bundle_json(&[&good, &good], &provenance(), kind)
                .unwrap()
                .expect("every entry has a fullUrl");
            let summary = check_bundle(&json).unwrap();
            assert_eq!(summary.entries, 3, "two resources and the Provenance");
            let out: Value = serde_json::from_slice(&json).unwrap();
            let e = out["entry"].as_array().unwrap();
            assert_eq!(e[0]["fullUrl"], PATIENT);
            assert_eq!(e[2]["resource"]["resourceType"], "Provenance");
            assert_eq!(e[2]["resource"]["target"].as_array().unwrap().len(), 2);
            assert!(e[2].to_string().contains(HISTORY_HASH_SYSTEM));
            if kind == OutputBundleType::Searchset {
                assert_eq!(out["total"], 2);
                assert_eq!(e[0]["search"]["mode"], "match");
            }
        }
        // An entry without a fullUrl: the tree-based mending is needed.
        let legacy = serde_json::to_vec(&legacy()).unwrap();
        assert_eq!(
            output_bundle_json(&[legacy], &provenance(), OutputBundleType::Collection).unwrap(),
            None
        );
        assert!(
            output_bundle_json(&[b"[1]"], &provenance(), OutputBundleType::Collection).is_err()
        );
    }

    #[test]
    fn output_bundle_carries_provenance_of_the_responder() {
        let out = output_bundle(&good(), &provenance(), OutputBundleType::Collection);
        validate_bundle(&out).unwrap();
        let e = out["entry"].as_array().unwrap();
        assert_eq!(e.len(), 3);
        // Original fullUrls, ids and references kept.
        assert_eq!(e[0]["fullUrl"], PATIENT);
        assert_eq!(e[1]["resource"]["subject"]["reference"], "Patient/p1");
        let prov = &e[2]["resource"];
        assert_eq!(prov["resourceType"], "Provenance");
        assert_eq!(prov["target"].as_array().unwrap().len(), 2);
        assert_eq!(prov["target"][0]["reference"], PATIENT);
        assert_eq!(prov["target"][1]["reference"], e[1]["fullUrl"]);
        assert_eq!(prov["recorded"], "2023-11-14T22:14:20Z");
        assert_eq!(
            prov["agent"][0]["who"]["identifier"]["value"],
            "wasm1responder"
        );
        assert_eq!(
            prov["agent"][0]["onBehalfOf"]["identifier"]["value"],
            "hospital-b"
        );
        assert_eq!(
            prov["entity"][0]["what"]["identifier"]["value"],
            "channel-0/7"
        );
        assert_eq!(
            prov["entity"][1]["what"]["identifier"],
            json!({"system": HISTORY_HASH_SYSTEM, "value": "ab".repeat(32)})
        );
        assert_eq!(
            prov["policy"][0],
            "urn:ehrx:request:0123456789abcdef0123456789abcdef"
        );

        let search = output_bundle(&good(), &provenance(), OutputBundleType::Searchset);
        validate_bundle(&search).unwrap();
        assert_eq!(search["type"], "searchset");
        assert_eq!(search["total"], 2);
        assert_eq!(search["entry"][0]["search"]["mode"], "match");
        assert_eq!(search["entry"][2]["search"]["mode"], "include");
    }

    #[test]
    fn output_bundle_is_valid_r4_with_every_reference_resolving() {
        // Two record Bundles of the same patient, merged by the reply service: one stored
        // before R4 was checked, one that repeats the patient under the same fullUrl.
        let later = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            { "fullUrl": "urn:uuid:7f1c3a52-5b8e-4c1a-9d3e-2a4b6c8d0e1f",
              "resource": { "resourceType": "Patient", "id": "p1", "gender": "female" } },
            { "fullUrl": "urn:uuid:0b6e2f4a-8c1d-4e3f-a5b7-c9d1e3f5a7b9",
              "resource": { "resourceType": "Encounter", "id": "e1", "status": "finished",
                            "class": { "code": "AMB" },
                            "subject": { "reference": "Patient/p1/_history/1" } } }
        ]});
        let merged = merge_bundles(&[legacy(), later]);
        let out = output_bundle(&merged, &provenance(), OutputBundleType::Collection);
        validate_bundle(&out).unwrap();
        let e = out["entry"].as_array().unwrap();
        assert_eq!(
            e.len(),
            4,
            "the patient once, the condition, the encounter, the Provenance"
        );
        let patient = "urn:uuid:7f1c3a52-5b8e-4c1a-9d3e-2a4b6c8d0e1f";
        assert_eq!(e[0]["fullUrl"], patient);
        assert_eq!(
            e[0]["resource"]["gender"], "female",
            "the later record wins"
        );
        assert!(e[1]["fullUrl"].as_str().unwrap().starts_with("urn:uuid:"));
        assert_eq!(e[1]["resource"]["id"], "c1");
        assert_eq!(e[1]["resource"]["subject"]["reference"], patient);
        assert_eq!(e[2]["resource"]["subject"]["reference"], patient);
        let search = output_bundle(&merged, &provenance(), OutputBundleType::Searchset);
        validate_bundle(&search).unwrap();
        assert_eq!(search["total"], 3);
    }

    #[test]
    fn audit_event_has_the_r4_shape() {
        let entry = AuditEntry::new(
            Timestamp::from_nanos(1_700_000_000_000_000_000),
            AuditAction::RequestSubmitted,
        )
        .rejected(ErrorCode::RateLimited { retry_after: 42 })
        .agent(&Addr::unchecked("wasm1peer"))
        .role(Role::Request)
        .purpose(PurposeOfUse::EmergencyTreatment)
        .request("0123456789abcdef0123456789abcdef")
        .partner("hospital-b")
        .packet("channel-0", 3);
        let mut entry = entry;
        entry.id = 12;
        let ev = audit_event(&entry, "hospital-a", "wasm1exchange");
        assert_eq!(ev["resourceType"], "AuditEvent");
        assert_eq!(ev["id"], "hospital-a-12");
        assert_eq!(ev["type"]["system"], DCM);
        assert_eq!(ev["type"]["code"], "110112");
        assert_eq!(ev["subtype"][0]["code"], "request_submitted");
        assert_eq!(ev["action"], "E");
        assert_eq!(ev["recorded"], "2023-11-14T22:13:20Z");
        assert_eq!(ev["outcome"], "4");
        assert_eq!(ev["outcomeDesc"], "RateLimited(retry_after=42)");
        let agent = &ev["agent"][0];
        assert_eq!(agent["who"]["identifier"]["value"], "wasm1peer");
        assert_eq!(agent["requestor"], true);
        assert_eq!(agent["role"][0]["coding"][0]["code"], "request");
        assert_eq!(agent["purposeOfUse"][0]["coding"][0]["code"], "ETREAT");
        assert_eq!(agent["purposeOfUse"][0]["coding"][0]["system"], ACT_REASON);
        assert_eq!(
            ev["source"]["observer"]["identifier"]["value"],
            "wasm1exchange"
        );
        let entity = &ev["entity"][0];
        assert_eq!(entity["what"]["identifier"]["system"], REQUEST_SYSTEM);
        assert_eq!(
            entity["what"]["identifier"]["value"],
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(entity["detail"][2]["valueString"], "3");

        // A step without an agent (a timeout) names the contract, not as requestor.
        let timeout = AuditEntry::new(Timestamp::from_seconds(1), AuditAction::RequestTimedOut);
        let ev = audit_event(&timeout, "hospital-a", "wasm1exchange");
        assert_eq!(ev["outcome"], "0");
        assert_eq!(ev["agent"][0]["requestor"], false);
        assert!(ev.get("outcomeDesc").is_none());
        assert!(ev.get("entity").is_none());

        let bundle = audit_bundle(vec![audit_event(&entry, "hospital-a", "wasm1exchange")]);
        validate_bundle(&bundle).unwrap();
        assert_eq!(
            bundle["entry"][0]["fullUrl"],
            "urn:ehrx:audit:hospital-a-12"
        );
    }

    #[test]
    fn audit_event_names_the_clinician() {
        let entry = AuditEntry::new(Timestamp::from_seconds(1), AuditAction::RequestReceived)
            .purpose(PurposeOfUse::Treatment)
            .clinician("dr-adams")
            .request("0123456789abcdef0123456789abcdef");
        let ev = audit_event(&entry, "hospital-b", "wasm1exchange");
        // The chain itself received it; the clinician on the other chain asked.
        assert_eq!(ev["agent"][0]["requestor"], false);
        let clinician = &ev["agent"][1];
        assert_eq!(clinician["who"]["identifier"]["system"], CLINICIAN_SYSTEM);
        assert_eq!(clinician["who"]["identifier"]["value"], "dr-adams");
        assert_eq!(clinician["requestor"], true);
        assert_eq!(clinician["purposeOfUse"][0]["coding"][0]["code"], "TREAT");

        let changed = AuditEntry::new(Timestamp::from_seconds(2), AuditAction::ClinicianChanged)
            .agent(&Addr::unchecked("wasm1admin"))
            .subject("dr-adams")
            .clinician("dr-adams");
        let ev = audit_event(&changed, "hospital-a", "wasm1registry");
        assert_eq!(ev["type"]["code"], "110136");
        assert_eq!(ev["subtype"][0]["code"], "clinician_changed");
        assert_eq!(ev["agent"].as_array().unwrap().len(), 1);
        assert_eq!(ev["agent"][0]["who"]["identifier"]["value"], "wasm1admin");
        let entity = &ev["entity"][0];
        assert_eq!(entity["what"]["identifier"]["system"], CLINICIAN_SYSTEM);
        assert_eq!(entity["what"]["identifier"]["value"], "dr-adams");
        assert_eq!(entity["type"]["code"], "1");

        // Without a clinician (a store), one agent as before.
        let store = AuditEntry::new(Timestamp::from_seconds(3), AuditAction::RecordStored)
            .agent(&Addr::unchecked("wasm1storer"));
        let ev = audit_event(&store, "hospital-b", "wasm1exchange");
        assert_eq!(ev["agent"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn urn_uuids_are_v4() {
        let u = urn_uuid();
        assert_eq!(u.len(), 45);
        assert_eq!(&u[23..24], "4");
        assert!(matches!(&u[28..29], "8" | "9" | "a" | "b"));
    }
}
