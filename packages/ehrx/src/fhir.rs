//! FHIR R4 in and out, as plain JSON.
//!
//! No FHIR crate is used: the maintained one (`fhir-model`/`fhir-sdk`) covers STU3, R4B and
//! R5 but not R4, and generates a very large type tree; `fhirbolt` (R4) has had no release
//! since 2023. What the tool needs is structural: check that a Bundle is a Bundle, carry its
//! entries through encryption untouched, and add `Provenance` and `AuditEvent` resources.
//! `serde_json::Value` does that without losing any field of the hospital's data.
//!
//! Error messages name the position (`entry[3]`), never the content (which is PHI).

use crate::time;
use ehr_protocol::audit::{AuditAction, AuditEntry, AuditOutcome};
use ehr_protocol::exchange::PurposeOfUse;
use serde_json::{json, Map, Value};

/// The R4 `bundle-type` value set.
pub const BUNDLE_TYPES: [&str; 9] = [
    "document",
    "message",
    "transaction",
    "transaction-response",
    "batch",
    "batch-response",
    "history",
    "searchset",
    "collection",
];

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid FHIR R4 Bundle: {0}")]
pub struct FhirError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, FhirError> {
    Err(FhirError(msg.into()))
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
/// R4 value set, and entries that each carry a resource with a `resourceType`.
pub fn validate_bundle(bundle: &Value) -> Result<(), FhirError> {
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

/// Parses and validates a Bundle from JSON bytes.
pub fn parse_bundle(bytes: &[u8]) -> Result<Value, FhirError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        FhirError(format!(
            "not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    validate_bundle(&value)?;
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
}

/// Output Bundle type of `ehrx request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputBundleType {
    Collection,
    Searchset,
}

/// The patient's history as written by `ehrx request`: the decrypted reply's entries (each
/// with a `fullUrl`) plus a `Provenance` naming who answered, from which network, channel
/// and packet.
pub fn output_bundle(reply: &Value, p: &ReplyProvenance, kind: OutputBundleType) -> Value {
    let searchset = kind == OutputBundleType::Searchset;
    let mut out_entries = Vec::new();
    let mut targets = Vec::new();
    for entry in entries(reply) {
        let mut entry = entry.as_object().cloned().unwrap_or_default();
        for key in ["request", "response", "search"] {
            entry.remove(key);
        }
        let full_url = match entry.get("fullUrl").and_then(Value::as_str) {
            Some(url) => url.to_string(),
            None => {
                let url = urn_uuid();
                entry.insert("fullUrl".into(), Value::String(url.clone()));
                url
            }
        };
        targets.push(json!({ "reference": full_url }));
        if searchset {
            entry.insert("search".into(), json!({ "mode": "match" }));
        }
        out_entries.push(Value::Object(entry));
    }
    let provenance = json!({
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
        }]
    });
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
        bundle["total"] = json!(entries(reply).count());
    }
    bundle
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

    fn good() -> Value {
        json!({
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                { "fullUrl": "urn:uuid:1", "resource": { "resourceType": "Patient", "id": "p1" } },
                { "resource": { "resourceType": "Observation", "id": "o.1-x" },
                  "request": { "method": "POST", "url": "Observation" } }
            ]
        })
    }

    #[test]
    fn good_bundles_validate() {
        validate_bundle(&good()).unwrap();
        validate_bundle(&json!({"resourceType": "Bundle", "type": "searchset"})).unwrap();
        validate_bundle(&json!({"resourceType": "Bundle", "type": "transaction", "entry": []}))
            .unwrap();
        assert!(parse_bundle(serde_json::to_vec(&good()).unwrap().as_slice()).is_ok());
    }

    #[test]
    fn bad_bundles_are_refused_with_a_position_not_content() {
        let cases = [
            (json!([1, 2]), "not a JSON object"),
            (
                json!({"resourceType": "Patient", "type": "collection"}),
                "resourceType",
            ),
            (json!({"resourceType": "Bundle"}), "type is missing"),
            (
                json!({"resourceType": "Bundle", "type": "bag"}),
                "value set",
            ),
            (
                json!({"resourceType": "Bundle", "type": "collection", "entry": {}}),
                "not an array",
            ),
            (
                json!({"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "x"}]}),
                "entry[0] has no resource",
            ),
            (
                json!({"resourceType": "Bundle", "type": "collection",
                       "entry": [{"resource": {"resourceType": "Patient"}}, {"resource": {"name": "Jose Alvarez"}}]}),
                "entry[1].resource has no valid resourceType",
            ),
            (
                json!({"resourceType": "Bundle", "type": "collection",
                       "entry": [{"resource": {"resourceType": "patient lower"}}]}),
                "resourceType",
            ),
            (
                json!({"resourceType": "Bundle", "type": "collection",
                       "entry": [{"resource": {"resourceType": "Patient", "id": "has space"}}]}),
                "id is not a FHIR id",
            ),
        ];
        for (bundle, expected) in cases {
            let e = validate_bundle(&bundle).unwrap_err().to_string();
            assert!(e.contains(expected), "{e} / {expected}");
            assert!(!e.contains("Jose"));
        }
        let e = parse_bundle(b"{not json").unwrap_err();
        assert!(e.to_string().contains("line 1"));
    }

    #[test]
    fn merge_keeps_every_entry_in_one_collection() {
        let other = json!({"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": {"resourceType": "Condition"}, "search": {"mode": "match"}}
        ]});
        let merged = merge_bundles(&[good(), other]);
        validate_bundle(&merged).unwrap();
        assert_eq!(merged["type"], "collection");
        let e = merged["entry"].as_array().unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0]["fullUrl"], "urn:uuid:1");
        assert!(e[1].get("request").is_none());
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
        }
    }

    #[test]
    fn output_bundle_carries_provenance_of_the_responder() {
        let out = output_bundle(&good(), &provenance(), OutputBundleType::Collection);
        validate_bundle(&out).unwrap();
        let e = out["entry"].as_array().unwrap();
        assert_eq!(e.len(), 3);
        assert!(e.iter().all(|x| x["fullUrl"].is_string()));
        let prov = &e[2]["resource"];
        assert_eq!(prov["resourceType"], "Provenance");
        assert_eq!(prov["target"].as_array().unwrap().len(), 2);
        assert_eq!(prov["target"][0]["reference"], "urn:uuid:1");
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
            prov["policy"][0],
            "urn:ehrx:request:0123456789abcdef0123456789abcdef"
        );

        let search = output_bundle(&good(), &provenance(), OutputBundleType::Searchset);
        assert_eq!(search["type"], "searchset");
        assert_eq!(search["total"], 2);
        assert_eq!(search["entry"][0]["search"]["mode"], "match");
        assert_eq!(search["entry"][2]["search"]["mode"], "include");
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
