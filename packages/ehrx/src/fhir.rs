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
use ehr_protocol::registry::Role;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};

/// The R4 `bundle-type` value set.
pub use fhir_r4::BUNDLE_TYPES;

pub const PEER_SYSTEM: &str = "urn:ehrx:peer";
/// Registered clinicians, by their registry id (the hospital's staff id, never a name).
pub const CLINICIAN_SYSTEM: &str = "urn:ehrx:clinician";
pub const NETWORK_SYSTEM: &str = "urn:ehrx:network";
pub const REQUEST_SYSTEM: &str = "urn:ehrx:request-id";
/// Consent directives by id, per network: `urn:ehrx:consent-directive:<network>`.
pub const DIRECTIVE_SYSTEM_PREFIX: &str = "urn:ehrx:consent-directive:";
/// Patient pseudonyms, per network (the custodian's key): `urn:ehrx:patient-pseudonym:<network>`.
pub const PSEUDONYM_SYSTEM_PREFIX: &str = "urn:ehrx:patient-pseudonym:";
/// A chain's audit entries: `<network>/<entry id>`.
pub const AUDIT_ENTRY_SYSTEM: &str = "urn:ehrx:audit-entry";
pub const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
pub const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const PROVENANCE_PARTICIPANT: &str =
    "http://terminology.hl7.org/CodeSystem/provenance-participant-type";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
const ISO_21089: &str = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle";
const PARTICIPATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const ROLE_CLASS: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleClass";
const SECURITY_ROLE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/extra-security-role-type";
const RESOURCE_TYPES: &str = "http://hl7.org/fhir/resource-types";
/// IHE BALP's code system of authorization decision subtypes.
pub const BALP_AUTHZ_SUBTYPE: &str = "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType";

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

/// The v3-ActReason code of a purpose of use, and its display.
pub fn purpose_code(purpose: PurposeOfUse) -> (&'static str, &'static str) {
    match purpose {
        PurposeOfUse::Treatment => ("TREAT", "treatment"),
        PurposeOfUse::EmergencyTreatment => ("ETREAT", "Emergency Treatment"),
        PurposeOfUse::Payment => ("HPAYMT", "healthcare payment"),
        PurposeOfUse::Operations => ("HOPERAT", "healthcare operations"),
    }
}

/// The purpose of use of a v3-ActReason code ([`purpose_code`] backwards).
pub fn purpose_from_code(code: &str) -> Option<PurposeOfUse> {
    PURPOSES.into_iter().find(|&p| purpose_code(p).0 == code)
}

/// Every purpose of use, in the order the protocol declares them.
pub const PURPOSES: [PurposeOfUse; 4] = [
    PurposeOfUse::Treatment,
    PurposeOfUse::EmergencyTreatment,
    PurposeOfUse::Payment,
    PurposeOfUse::Operations,
];

/// A coding of a standard code system: system, code, display (the code system's own).
pub type StdCoding = (&'static str, &'static str, &'static str);

const BTG: StdCoding = (ACT_REASON, "BTG", "break the glass");

const EV_APP: StdCoding = (DCM, "110100", "Application Activity");
const EV_EXPORT: StdCoding = (DCM, "110106", "Export");
const EV_IMPORT: StdCoding = (DCM, "110107", "Import");
const EV_RECORD: StdCoding = (DCM, "110110", "Patient Record");
const EV_QUERY: StdCoding = (DCM, "110112", "Query");
const EV_ALERT: StdCoding = (DCM, "110113", "Security Alert");

const SUB_EMERGENCY_START: StdCoding = (DCM, "110127", "Emergency Override Started");
const SUB_NETWORK_CONFIG: StdCoding = (DCM, "110128", "Network Configuration");
const SUB_SECURITY_CONFIG: StdCoding = (DCM, "110129", "Security Configuration");
const SUB_RESTRICTED: StdCoding = (DCM, "110132", "Use of Restricted Function");
const SUB_ROLES: StdCoding = (DCM, "110136", "Security Roles Changed");
const SUB_USER_ATTRS: StdCoding = (DCM, "110137", "User security Attributes Changed");
const SUB_DISCLOSE: StdCoding = (ISO_21089, "disclose", "Disclose Record Lifecycle Event");
const SUB_RECEIVE: StdCoding = (
    ISO_21089,
    "receive",
    "Receive/Retain Record Lifecycle Event",
);
const SUB_ACCESS: StdCoding = (ISO_21089, "access", "Access/View Record Lifecycle Event");
const SUB_ORIGINATE: StdCoding = (
    ISO_21089,
    "originate",
    "Originate/Retain Record Lifecycle Event",
);
const SUB_DEPRECATE: StdCoding = (ISO_21089, "deprecate", "Deprecate Record Lifecycle Event");
const SUB_AUTHZ_CONSENT: StdCoding = (
    BALP_AUTHZ_SUBTYPE,
    "AuthZ-Consent",
    "Authorization Decision using Roles and Consent",
);
const SUB_AUTHZ_ROLE: StdCoding = (
    BALP_AUTHZ_SUBTYPE,
    "AuthZ-Role",
    "Authorization Decision using only Roles",
);

const AGENT_APPLICATION: StdCoding = (DCM, "110150", "Application");
const AGENT_DESTINATION: StdCoding = (DCM, "110152", "Destination Role ID");
const AGENT_SOURCE: StdCoding = (DCM, "110153", "Source Role ID");
const AGENT_USER: StdCoding = (PARTICIPATION_TYPE, "IRCP", "information recipient");
const AGENT_PROVIDER: StdCoding = (ROLE_CLASS, "PROV", "healthcare provider");
const AGENT_AUTHSERVER: StdCoding = (SECURITY_ROLE_TYPE, "authserver", "authorization server");

/// Which way records (or the request) move, seen from the chain that logged the step: the
/// BALP source (DCM 110153) and destination (DCM 110152) agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// This network sends: it is the source, the partner the destination.
    Outbound,
    /// The partner sends: it is the source, this network the destination.
    Inbound,
    /// Neither (registry, configuration, consent, break-glass steps).
    None,
}

/// How one [`AuditAction`] is written as a FHIR AuditEvent: DICOM event type (`type`),
/// standard subtypes, FHIR action (C/R/U/D/E), the BALP pattern's data flow, and whether the
/// step is BALP's consent authorization decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCodes {
    pub event_type: StdCoding,
    pub subtypes: &'static [StdCoding],
    pub action: &'static str,
    pub flow: Flow,
    /// Also a break-glass step: purposeOfUse carries v3-ActReason BTG.
    pub break_glass: bool,
}

/// The code mapping of every step (the table in docs/FHIR-EXPORT.md).
pub fn event_codes(action: AuditAction) -> EventCodes {
    use AuditAction::*;
    let (event_type, subtypes, action_code, flow, break_glass): (
        StdCoding,
        &'static [StdCoding],
        &'static str,
        Flow,
        bool,
    ) = match action {
        RecordStored => (EV_RECORD, &[SUB_ORIGINATE], "C", Flow::None, false),
        RequestSubmitted | RequestDelivered | RequestFailed | RequestTimedOut | RequestExpired => {
            (EV_QUERY, &[], "E", Flow::Outbound, false)
        }
        RequestReceived => (EV_QUERY, &[], "E", Flow::Inbound, false),
        ReplySubmitted | ReplyDelivered | ReplyFailed | ReplyTimedOut => {
            (EV_EXPORT, &[SUB_DISCLOSE], "R", Flow::Outbound, false)
        }
        ReplyReceived => (
            EV_IMPORT,
            &[SUB_DISCLOSE, SUB_RECEIVE],
            "C",
            Flow::Inbound,
            false,
        ),
        Retrieval => (
            EV_IMPORT,
            &[SUB_DISCLOSE, SUB_ACCESS],
            "C",
            Flow::Inbound,
            false,
        ),
        Strike | Quarantine | Release => (EV_ALERT, &[SUB_USER_ATTRS], "E", Flow::None, false),
        PeerRegistered | PeerRevoked | ClinicianChanged | AdminChanged => {
            (EV_ALERT, &[SUB_ROLES], "U", Flow::None, false)
        }
        PeerKeysRotated => (EV_ALERT, &[SUB_USER_ATTRS], "U", Flow::None, false),
        PartnerChanged => (EV_ALERT, &[SUB_NETWORK_CONFIG], "U", Flow::None, false),
        PolicyChanged => (EV_ALERT, &[SUB_SECURITY_CONFIG], "U", Flow::None, false),
        ChannelOpened | ChannelClosed => (EV_APP, &[SUB_NETWORK_CONFIG], "E", Flow::None, false),
        BreakGlass => (EV_ALERT, &[SUB_EMERGENCY_START], "E", Flow::None, true),
        BreakGlassCosigned => (
            EV_ALERT,
            &[SUB_EMERGENCY_START, SUB_AUTHZ_ROLE],
            "E",
            Flow::None,
            true,
        ),
        BreakGlassCosignMissing => (EV_ALERT, &[SUB_RESTRICTED], "E", Flow::None, true),
        ConsentRecorded => (EV_RECORD, &[SUB_ORIGINATE], "C", Flow::None, false),
        ConsentRevoked => (EV_RECORD, &[SUB_DEPRECATE], "U", Flow::None, false),
        ConsentDecision => (EV_ALERT, &[SUB_AUTHZ_CONSENT], "E", Flow::None, false),
    };
    EventCodes {
        event_type,
        subtypes,
        action: action_code,
        flow,
        break_glass,
    }
}

/// The v3-ParticipationType code a peer's registry role is written with (`agent.role`; the
/// role's own name is the CodeableConcept's text).
pub fn role_code(role: Role) -> StdCoding {
    match role {
        Role::Store => (PARTICIPATION_TYPE, "CST", "custodian"),
        Role::Request => (PARTICIPATION_TYPE, "IRCP", "information recipient"),
        Role::Reply => (PARTICIPATION_TYPE, "DIST", "distributor"),
        Role::Admin => (PARTICIPATION_TYPE, "RESP", "responsible party"),
        // The privacy office authors the consent directives it records.
        Role::Privacy => (PARTICIPATION_TYPE, "AUT", "author (originator)"),
    }
}

/// The snake_case name the contracts use for an action (its JSON form).
pub fn action_name(action: AuditAction) -> String {
    serde_json::to_value(action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{action:?}"))
}

/// The identifier system of `network`'s patient pseudonyms (each custodian has its own key,
/// so a pseudonym means something only with its network).
pub fn pseudonym_system(network: &str) -> String {
    format!("{PSEUDONYM_SYSTEM_PREFIX}{network}")
}

/// The identifier system of `network`'s consent directive ids.
pub fn directive_system(network: &str) -> String {
    format!("{DIRECTIVE_SYSTEM_PREFIX}{network}")
}

fn coding((system, code, display): StdCoding) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

fn concept(c: StdCoding) -> Value {
    json!({ "coding": [coding(c)] })
}

fn ident(system: &str, value: &str) -> Value {
    json!({ "identifier": { "system": system, "value": value } })
}

/// One audit entry of `network`'s contract `observer` as a FHIR R4 `AuditEvent` following
/// the IHE BALP patterns (see docs/FHIR-EXPORT.md): a DICOM event type and standard
/// subtypes, the data flow's source and destination agents, the clinician as the human
/// requestor with the purpose of use, the partner network, the patient (the custodian's
/// pseudonym, only when the entry names one), the consent directive, and the request and
/// packet. Every code comes from a standard code system; `urn:ehrx:*` systems only name our
/// own identifiers. The contract's action name is kept as `entity.detail` `ehrx-action` of the
/// audit-entry entity (the last one).
pub fn audit_event(entry: &AuditEntry, network: &str, observer: &str) -> Value {
    let codes = event_codes(entry.action);
    let name = action_name(entry.action);
    let decision = entry.action == AuditAction::ConsentDecision;
    // Registry and configuration steps name a partner or clinician as what they changed.
    let partner_is_object = matches!(
        entry.action,
        AuditAction::PartnerChanged | AuditAction::ChannelOpened | AuditAction::ChannelClosed
    );
    let clinician_is_object = entry.action == AuditAction::ClinicianChanged;
    let clinician = entry.clinician_id.as_ref().filter(|_| !clinician_is_object);

    let mut purposes: Vec<Value> = entry
        .purpose
        .map(|p| {
            let (code, display) = purpose_code(p);
            vec![concept((ACT_REASON, code, display))]
        })
        .unwrap_or_default();
    if codes.break_glass {
        purposes.push(concept(BTG));
    }

    let mut agents: Vec<Value> = Vec::new();
    // This chain's contract, when the pattern names it as an agent: the source or the
    // destination of the data flow, or the authorization server of a consent decision.
    let this_type = match (codes.flow, decision) {
        (Flow::Outbound, _) => Some(AGENT_SOURCE),
        (Flow::Inbound, _) => Some(AGENT_DESTINATION),
        (Flow::None, true) => Some(AGENT_AUTHSERVER),
        (Flow::None, false) => None,
    };
    let observer_ident = ident(PEER_SYSTEM, observer);
    if let Some(t) = this_type {
        let mut who = observer_ident.clone();
        who["display"] = json!(format!("exchange contract of network {network}"));
        agents.push(json!({ "type": concept(t), "who": who, "requestor": false }));
    }
    // The peer account that caused the step; the contract itself when none did (and it is
    // not already there).
    match &entry.agent {
        Some(addr) => {
            let mut agent = json!({
                "type": concept(AGENT_APPLICATION),
                "who": ident(PEER_SYSTEM, addr.as_str()),
                "requestor": clinician.is_none(),
            });
            if let Some(role) = entry.role {
                agent["role"] = json!([{
                    "coding": [coding(role_code(role))],
                    "text": format!("ehrx {} peer", role.as_str()),
                }]);
            }
            if clinician.is_none() && !purposes.is_empty() {
                agent["purposeOfUse"] = Value::Array(purposes.clone());
            }
            agents.push(agent);
        }
        None if this_type.is_none() => {
            let mut agent = json!({
                "type": concept(AGENT_APPLICATION),
                "who": observer_ident.clone(),
                "requestor": false,
            });
            if clinician.is_none() && !purposes.is_empty() {
                agent["purposeOfUse"] = Value::Array(purposes.clone());
            }
            agents.push(agent);
        }
        None => {}
    }
    // The registered clinician who asked (on both chains): the human requestor, the
    // information recipient of BALP's patterns.
    if let Some(clinician) = clinician {
        let mut agent = json!({
            "type": concept(AGENT_USER),
            "who": ident(CLINICIAN_SYSTEM, clinician),
            "requestor": true,
        });
        if !purposes.is_empty() {
            agent["purposeOfUse"] = Value::Array(purposes.clone());
        }
        agents.push(agent);
    }
    // The partner hospital: the other end of the data flow, else the requester's
    // organisation (healthcare provider).
    if let (Some(partner), false) = (&entry.partner_id, partner_is_object) {
        let t = match codes.flow {
            Flow::Outbound => AGENT_DESTINATION,
            Flow::Inbound => AGENT_SOURCE,
            Flow::None => AGENT_PROVIDER,
        };
        let mut who = ident(NETWORK_SYSTEM, partner);
        who["display"] = json!(format!("network {partner}"));
        agents.push(json!({ "type": concept(t), "who": who, "requestor": false }));
    }

    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": format!("{}-{}", sanitize_id(network), entry.id),
        "type": coding(codes.event_type),
        "action": codes.action,
        "recorded": time::rfc3339_nanos(entry.time.nanos()),
        "outcome": match (entry.outcome, decision) {
            (AuditOutcome::Success, _) => "0",
            // BALP: a consent deny terminates the action (serious failure).
            (AuditOutcome::Rejected, true) => "8",
            // A refusal with a reason code: nothing stored or forwarded; the peer may retry.
            (AuditOutcome::Rejected, false) => "4",
        },
        "agent": agents,
        "source": {
            "site": network,
            "observer": {
                "identifier": { "system": PEER_SYSTEM, "value": observer },
                "display": format!("exchange contract of network {network}"),
            },
            "type": [coding(if decision {
                (SOURCE_TYPE, "6", "Security Server")
            } else {
                (SOURCE_TYPE, "4", "Application Server")
            })]
        },
    });
    if !codes.subtypes.is_empty() {
        event["subtype"] = Value::Array(codes.subtypes.iter().map(|&c| coding(c)).collect());
    }
    if !purposes.is_empty() {
        event["purposeOfEvent"] = Value::Array(purposes);
    }
    if let Some(reason) = &entry.reason {
        event["outcomeDesc"] = Value::String(reason.to_string());
    }
    event["text"] = narrative(&format!(
        "Audit entry {} of network {network}: {name} ({}), {}.",
        entry.id,
        codes.event_type.2,
        match &entry.reason {
            None => "success".to_string(),
            Some(reason) => format!("refused: {reason}"),
        }
    ));

    let mut entities = Vec::new();
    if let Some(patient) = &entry.patient {
        entities.push(json!({
            "what": ident(&pseudonym_system(network), patient),
            "type": coding((ENTITY_TYPE, "1", "Person")),
            "role": coding((OBJECT_ROLE, "1", "Patient")),
        }));
    }
    if let Some(directive) = &entry.directive_id {
        entities.push(json!({
            "what": ident(&directive_system(network), directive),
            "type": coding((RESOURCE_TYPES, "Consent", "Consent")),
        }));
    }
    if let Some(request_id) = &entry.request_id {
        let mut entity = json!({
            "what": ident(REQUEST_SYSTEM, request_id),
            "type": coding((ENTITY_TYPE, "2", "System Object")),
        });
        if codes.event_type == EV_QUERY {
            entity["role"] = coding((OBJECT_ROLE, "24", "Query"));
        }
        let mut details = Vec::new();
        if let Some(channel) = &entry.channel_id {
            details.push(json!({ "type": "channel_id", "valueString": channel }));
        }
        if let Some(seq) = entry.packet_sequence {
            details.push(json!({ "type": "packet_sequence", "valueString": seq.to_string() }));
        }
        if !details.is_empty() {
            entity["detail"] = Value::Array(details);
        }
        entities.push(entity);
    }
    if partner_is_object {
        if let Some(partner) = &entry.partner_id {
            let mut entity = json!({
                "what": ident(NETWORK_SYSTEM, partner),
                "type": coding((ENTITY_TYPE, "2", "System Object")),
                "role": coding((OBJECT_ROLE, "16", "Data Destination")),
            });
            if let Some(channel) = &entry.channel_id {
                entity["detail"] = json!([{ "type": "channel_id", "valueString": channel }]);
            }
            entities.push(entity);
        }
    }
    if clinician_is_object {
        if let Some(clinician) = entry.clinician_id.as_ref().or(entry.subject.as_ref()) {
            entities.push(json!({
                "what": ident(CLINICIAN_SYSTEM, clinician),
                "type": coding((ENTITY_TYPE, "1", "Person")),
                "role": coding((OBJECT_ROLE, "6", "User")),
            }));
        }
    } else if let Some(subject) = &entry.subject {
        // A registry change to a peer (or a new admin): the account is what changed.
        entities.push(json!({
            "what": ident(PEER_SYSTEM, subject),
            "type": coding((ENTITY_TYPE, "2", "System Object")),
            "role": coding((OBJECT_ROLE, "11", "Security User Entity")),
        }));
    }
    // The chain's own audit entry, with the contract's name for the step.
    entities.push(json!({
        "what": ident(AUDIT_ENTRY_SYSTEM, &format!("{network}/{}", entry.id)),
        "type": coding((ENTITY_TYPE, "2", "System Object")),
        "detail": [{ "type": "ehrx-action", "valueString": name }],
    }));
    event["entity"] = Value::Array(entities);
    event
}

/// A resource's generated narrative (`text`): one paragraph, escaped. No PHI goes in.
pub fn narrative(paragraph: &str) -> Value {
    let mut escaped = String::with_capacity(paragraph.len());
    for c in paragraph.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            c => escaped.push(c),
        }
    }
    json!({
        "status": "generated",
        "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>{escaped}</p></div>"),
    })
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

/// The custodian's "who accessed my record" report for one patient: a `collection` Bundle of
/// the AuditEvents of `entries` about `patient` (the custodian's pseudonym), in log order:
/// every request received, consent decision, disclosure and break-glass step the custodian's
/// chain logged for them, each with its purpose, requester and outcome. Entries about anyone
/// else (or no one) are left out whatever the caller passed.
pub fn patient_access_report(
    entries: &[AuditEntry],
    network: &str,
    observer: &str,
    patient: &str,
) -> Value {
    audit_bundle(
        entries
            .iter()
            .filter(|e| e.patient.as_deref() == Some(patient))
            .map(|e| audit_event(e, network, observer))
            .collect(),
    )
}

#[cfg(test)]
pub(crate) mod tests {
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
        assert!(ev.get("subtype").is_none(), "a query has no subtype");
        assert_eq!(ev["action"], "E");
        assert_eq!(ev["recorded"], "2023-11-14T22:13:20Z");
        assert_eq!(ev["outcome"], "4");
        assert_eq!(ev["outcomeDesc"], "RateLimited(retry_after=42)");
        assert_eq!(ev["purposeOfEvent"][0]["coding"][0]["code"], "ETREAT");
        // The requesting chain is the query's source; the partner its destination.
        let agents = ev["agent"].as_array().unwrap();
        assert_eq!(agents.len(), 3);
        assert_eq!(agents[0]["type"]["coding"][0]["code"], "110153");
        assert_eq!(agents[0]["who"]["identifier"]["value"], "wasm1exchange");
        assert_eq!(agents[0]["requestor"], false);
        let peer = &agents[1];
        assert_eq!(peer["type"]["coding"][0]["code"], "110150");
        assert_eq!(peer["who"]["identifier"]["value"], "wasm1peer");
        assert_eq!(peer["requestor"], true);
        assert_eq!(peer["role"][0]["coding"][0]["code"], "IRCP");
        assert_eq!(peer["role"][0]["text"], "ehrx request peer");
        assert_eq!(peer["purposeOfUse"][0]["coding"][0]["code"], "ETREAT");
        assert_eq!(peer["purposeOfUse"][0]["coding"][0]["system"], ACT_REASON);
        assert_eq!(agents[2]["type"]["coding"][0]["code"], "110152");
        assert_eq!(
            agents[2]["who"]["identifier"],
            json!({"system": NETWORK_SYSTEM, "value": "hospital-b"})
        );
        assert_eq!(
            ev["source"]["observer"]["identifier"]["value"],
            "wasm1exchange"
        );
        assert_eq!(ev["source"]["site"], "hospital-a");
        let entity = &ev["entity"][0];
        assert_eq!(entity["what"]["identifier"]["system"], REQUEST_SYSTEM);
        assert_eq!(
            entity["what"]["identifier"]["value"],
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(entity["role"]["code"], "24");
        assert_eq!(entity["detail"][0]["valueString"], "channel-0");
        assert_eq!(entity["detail"][1]["valueString"], "3");
        let last = &ev["entity"][1];
        assert_eq!(
            last["what"]["identifier"],
            json!({"system": AUDIT_ENTRY_SYSTEM, "value": "hospital-a/12"})
        );
        assert_eq!(
            last["detail"][0],
            json!({"type": "ehrx-action", "valueString": "request_submitted"})
        );

        // A step without an agent (a timeout): the contract is the only agent, not requestor.
        let timeout = AuditEntry::new(Timestamp::from_seconds(1), AuditAction::PolicyChanged);
        let ev = audit_event(&timeout, "hospital-a", "wasm1exchange");
        assert_eq!(ev["outcome"], "0");
        assert_eq!(ev["agent"].as_array().unwrap().len(), 1);
        assert_eq!(ev["agent"][0]["requestor"], false);
        assert_eq!(
            ev["agent"][0]["who"]["identifier"]["value"],
            "wasm1exchange"
        );
        assert!(ev.get("outcomeDesc").is_none());
        assert_eq!(ev["entity"].as_array().unwrap().len(), 1);

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
            .partner("hospital-a")
            .request("0123456789abcdef0123456789abcdef");
        let ev = audit_event(&entry, "hospital-b", "wasm1exchange");
        // The chain itself received it (the destination); the clinician on the other chain
        // asked, for the partner (the source).
        let agents = ev["agent"].as_array().unwrap();
        assert_eq!(agents[0]["type"]["coding"][0]["code"], "110152");
        assert_eq!(agents[0]["requestor"], false);
        let clinician = &agents[1];
        assert_eq!(clinician["type"]["coding"][0]["code"], "IRCP");
        assert_eq!(clinician["who"]["identifier"]["system"], CLINICIAN_SYSTEM);
        assert_eq!(clinician["who"]["identifier"]["value"], "dr-adams");
        assert_eq!(clinician["requestor"], true);
        assert_eq!(clinician["purposeOfUse"][0]["coding"][0]["code"], "TREAT");
        assert_eq!(agents[2]["type"]["coding"][0]["code"], "110153");
        assert_eq!(agents[2]["who"]["identifier"]["value"], "hospital-a");

        let changed = AuditEntry::new(Timestamp::from_seconds(2), AuditAction::ClinicianChanged)
            .agent(&Addr::unchecked("wasm1admin"))
            .subject("dr-adams")
            .clinician("dr-adams");
        let ev = audit_event(&changed, "hospital-a", "wasm1registry");
        assert_eq!(ev["type"]["code"], "110113");
        assert_eq!(ev["subtype"][0]["code"], "110136");
        assert_eq!(ev["agent"].as_array().unwrap().len(), 1);
        assert_eq!(ev["agent"][0]["who"]["identifier"]["value"], "wasm1admin");
        let entity = &ev["entity"][0];
        assert_eq!(entity["what"]["identifier"]["system"], CLINICIAN_SYSTEM);
        assert_eq!(entity["what"]["identifier"]["value"], "dr-adams");
        assert_eq!(entity["type"]["code"], "1");

        // Without a clinician (a store), the peer is the one agent and the requestor.
        let store = AuditEntry::new(Timestamp::from_seconds(3), AuditAction::RecordStored)
            .agent(&Addr::unchecked("wasm1storer"));
        let ev = audit_event(&store, "hospital-b", "wasm1exchange");
        assert_eq!(ev["agent"].as_array().unwrap().len(), 1);
        assert_eq!(ev["agent"][0]["requestor"], true);
    }

    const PSEUDONYM: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// Every action, with every optional field set (and with none).
    fn every_entry() -> Vec<AuditEntry> {
        use AuditAction::*;
        let actions = [
            RecordStored,
            RequestSubmitted,
            RequestDelivered,
            RequestFailed,
            RequestTimedOut,
            RequestExpired,
            RequestReceived,
            ReplySubmitted,
            ReplyDelivered,
            ReplyFailed,
            ReplyTimedOut,
            ReplyReceived,
            Retrieval,
            Strike,
            Quarantine,
            Release,
            PeerRegistered,
            PeerKeysRotated,
            PeerRevoked,
            ClinicianChanged,
            PartnerChanged,
            PolicyChanged,
            AdminChanged,
            ChannelOpened,
            ChannelClosed,
            BreakGlass,
            BreakGlassCosigned,
            BreakGlassCosignMissing,
            ConsentRecorded,
            ConsentRevoked,
            ConsentDecision,
        ];
        let mut out = Vec::new();
        for (i, action) in actions.into_iter().enumerate() {
            let bare = AuditEntry::new(Timestamp::from_seconds(1_700_000_000 + i as u64), action);
            let full = bare
                .clone()
                .rejected(ErrorCode::ConsentDenied)
                .agent(&Addr::unchecked("wasm1peer"))
                .role(Role::Reply)
                .purpose(PurposeOfUse::EmergencyTreatment)
                .request("0123456789abcdef-0123456789abcdef")
                .partner("hospital-b")
                .packet("channel-0", 9)
                .subject("wasm1subject")
                .clinician("dr-adams")
                .patient(PSEUDONYM)
                .directive("directive-0000000001");
            out.push(bare);
            out.push(full);
        }
        for (i, e) in out.iter_mut().enumerate() {
            e.id = i as u64 + 1;
        }
        out
    }

    /// Every coding in an event (type, subtypes, agent types and roles, purposes, entity types
    /// and roles, source type).
    fn codings(v: &Value, out: &mut Vec<Value>) {
        match v {
            Value::Object(m) => {
                if m.contains_key("code") && m.contains_key("system") {
                    out.push(v.clone());
                }
                m.values().for_each(|x| codings(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| codings(x, out)),
            _ => {}
        }
    }

    #[test]
    fn every_action_is_coded_from_standard_systems_and_validates() {
        let entries = every_entry();
        let events: Vec<Value> = entries
            .iter()
            .map(|e| audit_event(e, "hospital-b", "wasm1exchange"))
            .collect();
        for (entry, ev) in entries.iter().zip(&events) {
            let mut all = Vec::new();
            codings(ev, &mut all);
            assert!(!all.is_empty());
            for c in all {
                let system = c["system"].as_str().unwrap();
                assert!(
                    !system.starts_with("urn:ehrx"),
                    "{:?}: a code of our own: {c}",
                    entry.action
                );
            }
            // The patient only when the entry names one, by the custodian's pseudonym.
            let patient = ev["entity"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["role"]["code"] == "1" && e["role"]["system"] == OBJECT_ROLE);
            match &entry.patient {
                Some(p) => {
                    let patient = patient.expect("a patient entity");
                    assert_eq!(
                        patient["what"]["identifier"],
                        json!({"system": "urn:ehrx:patient-pseudonym:hospital-b", "value": p})
                    );
                    assert_eq!(patient["type"]["code"], "1");
                }
                None => assert!(patient.is_none(), "{:?}", entry.action),
            }
            let text = ev.to_string();
            assert_eq!(
                text.contains("directive-0000000001"),
                entry.directive_id.is_some()
            );
            // The action name is kept once, as the audit entry's detail.
            let name = action_name(entry.action);
            let last = ev["entity"].as_array().unwrap().last().unwrap();
            assert_eq!(last["detail"][0]["valueString"], name.as_str());
        }
        validate_bundle(&audit_bundle(events)).unwrap();
    }

    #[test]
    fn balp_patterns_of_the_exchange_steps() {
        let at = Timestamp::from_seconds(10);
        let full = |action| {
            AuditEntry::new(at, action)
                .agent(&Addr::unchecked("wasm1peer"))
                .purpose(PurposeOfUse::Treatment)
                .request("0123456789abcdef-0123456789abcdef")
                .partner("hospital-a")
                .clinician("dr-adams")
                .patient(PSEUDONYM)
        };
        let agent_types = |ev: &Value| -> Vec<String> {
            ev["agent"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["type"]["coding"][0]["code"].as_str().unwrap().to_string())
                .collect()
        };
        // The disclosure at the custodian: Export, disclose, this chain the source.
        let ev = audit_event(&full(AuditAction::ReplyDelivered), "hospital-b", "wasm1x");
        assert_eq!(ev["type"]["code"], "110106");
        assert_eq!(ev["action"], "R");
        assert_eq!(ev["subtype"][0]["code"], "disclose");
        assert_eq!(agent_types(&ev), ["110153", "110150", "IRCP", "110152"]);
        assert_eq!(
            ev["agent"][0]["who"]["identifier"],
            ev["source"]["observer"]["identifier"]
        );
        assert_eq!(ev["entity"][0]["role"]["code"], "1");
        // The import at the requester: Import, this chain the destination.
        let ev = audit_event(&full(AuditAction::Retrieval), "hospital-a", "wasm1y");
        assert_eq!(ev["type"]["code"], "110107");
        assert_eq!(ev["action"], "C");
        assert_eq!(agent_types(&ev), ["110152", "110150", "IRCP", "110153"]);
        // Break-glass: a security alert, emergency override started, ETREAT + BTG.
        let bg = AuditEntry::new(at, AuditAction::BreakGlass)
            .purpose(PurposeOfUse::EmergencyTreatment)
            .clinician("dr-adams")
            .partner("hospital-a");
        let ev = audit_event(&bg, "hospital-b", "wasm1x");
        assert_eq!(ev["type"]["code"], "110113");
        assert_eq!(ev["subtype"][0]["code"], "110127");
        let purposes: Vec<&str> = ev["purposeOfEvent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["coding"][0]["code"].as_str().unwrap())
            .collect();
        assert_eq!(purposes, ["ETREAT", "BTG"]);
        assert_eq!(ev["agent"][1]["purposeOfUse"], ev["purposeOfEvent"]);
        // A consent decision: BALP AuthZ-Consent; a deny is a serious failure.
        let denied = full(AuditAction::ConsentDecision)
            .rejected(ErrorCode::ConsentDenied)
            .directive("directive-0000000001");
        let ev = audit_event(&denied, "hospital-b", "wasm1x");
        assert_eq!(ev["subtype"][0]["system"], BALP_AUTHZ_SUBTYPE);
        assert_eq!(ev["subtype"][0]["code"], "AuthZ-Consent");
        assert_eq!(ev["outcome"], "8");
        assert_eq!(ev["source"]["type"][0]["code"], "6");
        assert_eq!(agent_types(&ev), ["authserver", "110150", "IRCP", "PROV"]);
        let consent = &ev["entity"][1];
        assert_eq!(consent["type"]["code"], "Consent");
        assert_eq!(
            consent["what"]["identifier"],
            json!({"system": "urn:ehrx:consent-directive:hospital-b", "value": "directive-0000000001"})
        );
    }

    /// A checked-in export (tests/fixtures/fhir/export), validated by the HAPI validator in
    /// `ehr-tests` (`cargo test -p ehr-tests --test fhir_tools -- --ignored export`): it must
    /// be what the code writes now. `EHRX_UPDATE_FIXTURES=1` rewrites it.
    pub(crate) fn check_fixture(name: &str, value: &Value) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/fhir/export")
            .join(name);
        let text = serde_json::to_string_pretty(value).unwrap() + "\n";
        if std::env::var_os("EHRX_UPDATE_FIXTURES").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            return;
        }
        let stored = std::fs::read_to_string(&path).unwrap_or_default();
        let stored: Value = serde_json::from_str(&stored).unwrap_or(Value::Null);
        assert!(
            &stored == value,
            "{} is not what the export writes now: run EHRX_UPDATE_FIXTURES=1 cargo test -p ehrx --lib fixture",
            path.display()
        );
    }

    #[test]
    fn audit_fixture_is_current() {
        let mut events = audit_bundle(
            every_entry()
                .iter()
                .map(|e| audit_event(e, "hospital-b", "wasm1exchange"))
                .collect(),
        );
        events["timestamp"] = json!("2025-01-01T00:00:00Z");
        check_fixture("audit-events.json", &events);
        let mut report =
            patient_access_report(&every_entry(), "hospital-b", "wasm1exchange", PSEUDONYM);
        report["timestamp"] = json!("2025-01-01T00:00:00Z");
        check_fixture("patient-access-report.json", &report);
    }

    #[test]
    fn the_patient_access_report_keeps_only_that_patient() {
        let other = "f".repeat(64);
        let entries = vec![
            AuditEntry::new(Timestamp::from_seconds(1), AuditAction::RequestReceived)
                .patient(PSEUDONYM),
            AuditEntry::new(Timestamp::from_seconds(2), AuditAction::RequestReceived)
                .patient(&other),
            AuditEntry::new(Timestamp::from_seconds(3), AuditAction::ReplyDelivered),
            AuditEntry::new(Timestamp::from_seconds(4), AuditAction::ConsentDecision)
                .patient(PSEUDONYM)
                .rejected(ErrorCode::ConsentDenied),
            AuditEntry::new(Timestamp::from_seconds(5), AuditAction::ReplyDelivered)
                .patient(PSEUDONYM),
        ];
        let entries: Vec<AuditEntry> = entries
            .into_iter()
            .enumerate()
            .map(|(i, mut e)| {
                e.id = i as u64 + 1;
                e
            })
            .collect();
        let report = patient_access_report(&entries, "hospital-b", "wasm1x", PSEUDONYM);
        validate_bundle(&report).unwrap();
        let events = report["entry"].as_array().unwrap();
        assert_eq!(events.len(), 3);
        let types: Vec<&str> = events
            .iter()
            .map(|e| e["resource"]["type"]["code"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["110112", "110113", "110106"]);
        assert!(!report.to_string().contains(&other));
        let none = patient_access_report(&entries, "hospital-b", "wasm1x", &"0".repeat(64));
        assert!(none["entry"].as_array().unwrap().is_empty());
    }

    #[test]
    fn urn_uuids_are_v4() {
        let u = urn_uuid();
        assert_eq!(u.len(), 45);
        assert_eq!(&u[23..24], "4");
        assert!(matches!(&u[28..29], "8" | "9" | "a" | "b"));
    }
}
