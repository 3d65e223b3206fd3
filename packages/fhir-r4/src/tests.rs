use super::*;
use serde_json::json;

const PATIENT: &str = "urn:uuid:7f1c3a52-5b8e-4c1a-9d3e-2a4b6c8d0e1f";
const ENCOUNTER: &str = "urn:uuid:0b6e2f4a-8c1d-4e3f-a5b7-c9d1e3f5a7b9";

/// A valid history of many resource types (Synthea's shape: urn:uuid fullUrls).
fn history() -> Value {
    json!({
        "resourceType": "Bundle",
        "id": "history-1",
        "type": "collection",
        "timestamp": "2024-05-01T10:00:00Z",
        "entry": [
            { "fullUrl": PATIENT, "resource": {
                "resourceType": "Patient", "id": "p1",
                "meta": { "lastUpdated": "2024-05-01T09:00:00.123+02:00" },
                "text": { "status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Jose</div>" },
                "identifier": [{ "system": "http://hl7.org/fhir/sid/us-ssn", "value": "123-45-6789" }],
                "name": [{ "use": "official", "family": "Alvarez", "given": ["Jose", "Maria"] }],
                "_birthDate": { "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1970-01-02T03:04:05Z" }] },
                "birthDate": "1970-01-02", "gender": "male", "deceasedBoolean": false,
                "multipleBirthInteger": 1,
                "address": [{ "line": ["1 Main St"], "city": "Springfield", "postalCode": "01101" }],
                "communication": [{ "language": { "coding": [{ "system": "urn:ietf:bcp:47", "code": "es" }] } }]
            }},
            { "fullUrl": ENCOUNTER, "resource": {
                "resourceType": "Encounter", "id": "e1", "status": "finished",
                "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB" },
                "subject": { "reference": PATIENT },
                "period": { "start": "2024-04-30T08:00:00-05:00", "end": "2024-04-30T09:00:00-05:00" }
            }},
            { "fullUrl": "urn:uuid:1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "resource": {
                "resourceType": "Condition", "id": "c1",
                "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
                "code": { "coding": [{ "system": "http://snomed.info/sct", "code": "44054006" }], "text": "Diabetes" },
                "subject": { "reference": PATIENT }, "encounter": { "reference": ENCOUNTER },
                "onsetDateTime": "2019-03", "recordedDate": "2019-03-04"
            }},
            { "fullUrl": "urn:uuid:2e3f4051-6b7c-4d8e-9fa0-1b2c3d4e5f60", "resource": {
                "resourceType": "Observation", "id": "o1", "status": "final",
                "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory" }] }],
                "code": { "coding": [{ "system": "http://loinc.org", "code": "4548-4" }] },
                "subject": { "reference": PATIENT },
                "effectiveDateTime": "2024-04-30T08:30:00Z", "issued": "2024-04-30T09:00:00.000Z",
                "valueQuantity": { "value": 6.3, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%" },
                "referenceRange": [{ "high": { "value": 5.7, "unit": "%" } }],
                "component": [{ "code": { "text": "x" }, "valueString": "y" }]
            }},
            { "fullUrl": "urn:uuid:3f405162-7c8d-4e9f-a0b1-2c3d4e5f6071", "resource": {
                "resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
                "contained": [{ "resourceType": "Medication", "id": "med",
                                "code": { "coding": [{ "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "860975" }] } }],
                "medicationReference": { "reference": "#med" },
                "subject": { "reference": PATIENT },
                "dosageInstruction": [{ "timing": { "repeat": { "frequency": 2, "period": 1, "periodUnit": "d" } },
                                        "doseAndRate": [{ "doseQuantity": { "value": 500, "unit": "mg" } }] }]
            }},
            { "fullUrl": "urn:uuid:40516273-8d9e-4fa0-b1c2-3d4e5f607182", "resource": {
                "resourceType": "Immunization", "id": "i1", "status": "completed",
                "vaccineCode": { "coding": [{ "system": "http://hl7.org/fhir/sid/cvx", "code": "140" }] },
                "patient": { "reference": PATIENT }, "occurrenceDateTime": "2023-10-01", "primarySource": true
            }},
            { "fullUrl": "urn:uuid:51627384-9eaf-40b1-82d3-4e5f60718293", "resource": {
                "resourceType": "Procedure", "id": "pr1", "status": "completed",
                "code": { "text": "x" }, "subject": { "reference": PATIENT },
                "performedPeriod": { "start": "2022-01-01" }
            }},
            { "fullUrl": "urn:uuid:62738495-afb0-41c2-93e4-5f60718293a4", "resource": {
                "resourceType": "DiagnosticReport", "id": "d1", "status": "final", "code": { "text": "x" },
                "subject": { "reference": PATIENT },
                "result": [{ "reference": "urn:uuid:2e3f4051-6b7c-4d8e-9fa0-1b2c3d4e5f60" }],
                "presentedForm": [{ "contentType": "text/plain", "data": "aGVsbG8gd29ybGQ=" }]
            }},
            { "fullUrl": "urn:uuid:738495a6-b0c1-42d3-a4f5-60718293a4b5", "resource": {
                "resourceType": "Claim", "id": "cl1", "status": "active",
                "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional" }] },
                "use": "claim", "patient": { "reference": PATIENT }, "created": "2024-04-30T09:00:00Z",
                "provider": { "display": "Hospital A" },
                "priority": { "coding": [{ "code": "normal" }] },
                "insurance": [{ "sequence": 1, "focal": true, "coverage": { "display": "Self pay" } }],
                "item": [{ "sequence": 1, "productOrService": { "text": "x" },
                           "net": { "value": 12.5, "currency": "USD" } }]
            }}
        ]
    })
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap()
}

/// Both entry points, which must agree; returns the issues.
fn issues(v: &Value) -> Vec<String> {
    let streamed = validate_json(&bytes(v));
    assert_eq!(streamed, validate(v), "validate_json and validate disagree");
    match streamed {
        Ok(_) => Vec::new(),
        Err(e) => e.issues.iter().map(ToString::to_string).collect(),
    }
}

fn with(mut bundle: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let slot = bundle.pointer_mut(parent).unwrap();
    match slot {
        Value::Object(m) if value.is_null() => {
            m.remove(key);
        }
        Value::Object(m) => {
            m.insert(key.to_string(), value);
        }
        _ => panic!("{pointer}"),
    }
    bundle
}

const NONE: Value = Value::Null;

#[test]
fn a_history_of_many_resource_types_is_valid() {
    let summary = validate_json(&bytes(&history())).unwrap();
    assert_eq!(summary.entries, 9);
    assert_eq!(summary.bundle_type, "collection");
    assert_eq!(issues(&history()), Vec::<String>::new());
}

#[test]
fn restful_full_urls_resolve_relative_references() {
    let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "https://a.example/fhir/Patient/p1", "resource": {"resourceType": "Patient", "id": "p1"}},
        {"fullUrl": "https://a.example/fhir/Condition/c1", "resource": {"resourceType": "Condition", "id": "c1",
            "subject": {"reference": "Patient/p1"},
            "asserter": {"reference": "https://elsewhere.example/fhir/Practitioner/x"}}}
    ]});
    assert_eq!(issues(&b), Vec::<String>::new());
    // A transaction may leave fullUrl out and refer to what the server holds.
    let t = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Condition", "subject": {"reference": "Patient/p9"}},
         "request": {"method": "POST", "url": "Condition"}}
    ]});
    assert_eq!(issues(&t), Vec::<String>::new());
}

#[test]
fn a_missing_required_element_is_named_at_its_parent() {
    let b = with(history(), "/entry/2/resource/subject", NONE);
    assert_eq!(
        issues(&b),
        ["Bundle.entry[2].resource: Condition.subject: minimum required = 1, but only found 0 (from http://hl7.org/fhir/StructureDefinition/Condition|4.0.1)"]
    );
    let b = with(
        history(),
        "/entry/2/resource/clinicalStatus",
        json!({"text": "active"}),
    );
    assert_eq!(
        issues(&b),
        Vec::<String>::new(),
        "a CodeableConcept's coding is optional"
    );
    let b = with(
        history(),
        "/entry/0/resource/communication/0/preferred",
        json!(true),
    );
    let b = with(b, "/entry/0/resource/communication/0/language", NONE);
    assert_eq!(
        issues(&b),
        ["Bundle.entry[0].resource.communication[0]: Patient.communication.language: minimum required = 1, but only found 0 (from http://hl7.org/fhir/StructureDefinition/Patient|4.0.1)"]
    );
    let b = with(history(), "/type", NONE);
    assert_eq!(
        issues(&b)[0],
        "Bundle: Bundle.type: minimum required = 1, but only found 0 (from http://hl7.org/fhir/StructureDefinition/Bundle|4.0.1)"
    );
}

#[test]
fn a_wrong_cardinality_is_refused() {
    let b = with(
        history(),
        "/entry/3/resource/code",
        json!([{"text": "a"}, {"text": "b"}]),
    );
    assert_eq!(
        issues(&b),
        ["Bundle.entry[3].resource.code: This property must be an object, not an array"]
    );
    let b = with(
        history(),
        "/entry/0/resource/name",
        json!({"family": "Alvarez"}),
    );
    assert_eq!(
        issues(&b),
        ["Bundle.entry[0].resource.name: The property name must be a JSON Array, not an object"]
    );
    let b = with(
        history(),
        "/entry/0/resource/birthDate",
        json!(["1970-01-02"]),
    );
    assert_eq!(
        issues(&b),
        ["Bundle.entry[0].resource.birthDate: This property must be a simple value, not an array"]
    );
    let b = with(history(), "/entry/3/resource/category", json!([]));
    assert_eq!(
        issues(&b),
        ["Bundle.entry[3].resource.category: Array cannot be empty - the property should not be present if it has no values"]
    );
    // Two types of one choice.
    let b = with(history(), "/entry/3/resource/valueString", json!("6.3 %"));
    assert_eq!(
        issues(&b),
        ["Bundle.entry[3].resource: Observation.value[x]: max allowed = 1, but found 2 (from http://hl7.org/fhir/StructureDefinition/Observation|4.0.1)"]
    );
}

#[test]
fn a_wrong_type_is_refused() {
    let cases = [
        ("/entry/0/resource/birthDate", json!("1970-13-02"), "Bundle.entry[0].resource.birthDate: Not a valid date format"),
        ("/entry/0/resource/birthDate", json!("1970-02-30"), "Bundle.entry[0].resource.birthDate: Not a valid date format"),
        ("/entry/0/resource/birthDate", json!(19700102), "Bundle.entry[0].resource.birthDate: Error parsing JSON: the primitive value must be a string"),
        ("/entry/3/resource/effectiveDateTime", json!("2024-04-30T08:30:00"), "Bundle.entry[3].resource.effective.ofType(dateTime): Not a valid date/time format"),
        ("/entry/3/resource/issued", json!("2024-04-30"), "Bundle.entry[3].resource.issued: Not a valid instant"),
        ("/entry/0/resource/deceasedBoolean", json!("no"), "Bundle.entry[0].resource.deceased.ofType(boolean): Error parsing JSON: the primitive value must be a boolean"),
        ("/entry/0/resource/multipleBirthInteger", json!(1.5), "Bundle.entry[0].resource.multipleBirth.ofType(integer): The value is not a valid integer"),
        ("/entry/8/resource/insurance/0/sequence", json!(0), "Bundle.entry[8].resource.insurance[0].sequence: value is less than permitted minimum value of 1"),
        ("/entry/3/resource/valueQuantity/value", json!("6.3"), "Bundle.entry[3].resource.value.ofType(Quantity).value: Error parsing JSON: the primitive value must be a number"),
        ("/entry/3/resource/status", json!("final "), "Bundle.entry[3].resource.status: The code is not valid (whitespace rules)"),
        ("/entry/3/resource/id", json!("o_1"), "Bundle.entry[3].resource.id: id value is not valid"),
        ("/entry/3/resource/code/coding/0/system", json!("http://loinc .org"), "Bundle.entry[3].resource.code.coding[0].system: URI values cannot have whitespace"),
        ("/entry/7/resource/presentedForm/0/data", json!("not base64!"), "Bundle.entry[7].resource.presentedForm[0].data: The value is not a valid Base64 value"),
        ("/entry/0/resource/gender", json!(""), "Bundle.entry[0].resource.gender: value cannot be empty"),
        ("/entry/1/resource/class", json!("AMB"), "Bundle.entry[1].resource.class: This property must be an object, not a string"),
        ("/entry/3/resource/subject", json!({}), "Bundle.entry[3].resource.subject: Object must have some content"),
    ];
    for (pointer, value, expected) in cases {
        let b = with(history(), pointer, value);
        assert_eq!(issues(&b), [expected], "{pointer}");
    }
    let mut b = history();
    b["entry"][0]["resource"]["gender"] = Value::Null;
    assert_eq!(
        issues(&b),
        ["Bundle.entry[0].resource.gender: The element is not allowed to be 'null'"]
    );
}

#[test]
fn an_unknown_element_or_resource_type_is_refused() {
    let b = with(history(), "/entry/3/resource/statuss", json!("final"));
    assert_eq!(
        issues(&b),
        ["Bundle.entry[3].resource: Unrecognized property 'statuss'"]
    );
    let b = with(
        history(),
        "/entry/3/resource/valueQuantity/Jose Alvarez",
        json!(1),
    );
    assert_eq!(
        issues(&b),
        ["Bundle.entry[3].resource.value.ofType(Quantity): Unrecognized property '(not a FHIR name)'"]
    );
    let b = with(history(), "/entry/3/resource/valueFoo", json!(1));
    assert_eq!(
        issues(&b),
        ["Bundle.entry[3].resource: Unrecognized property 'valueFoo'"]
    );
    let b = with(history(), "/entry/3/resource/_code", json!({}));
    assert_eq!(
        issues(&b),
        ["Bundle.entry[3].resource: Unrecognized property '_code'"]
    );
    let b = with(
        history(),
        "/entry/3/resource/resourceType",
        json!("Observaton"),
    );
    let found = issues(&b);
    assert_eq!(
        found[0],
        "Bundle.entry[3].resource: This does not appear to be a FHIR resource (unknown name 'Observaton')"
    );
    let b = with(history(), "/entry/3/resource/resourceType", NONE);
    assert_eq!(
        issues(&b)[0],
        "Bundle.entry[3].resource: Unable to find resourceType property"
    );
}

#[test]
fn an_unresolvable_reference_is_refused() {
    let b = with(
        history(),
        "/entry/2/resource/encounter",
        json!({"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}),
    );
    assert_eq!(
        issues(&b),
        ["Bundle.entry[2].resource.encounter: URN reference is not locally contained within the bundle"]
    );
    // What ehrx request wrote before: urn:uuid fullUrls, references by type and id.
    let b = with(
        history(),
        "/entry/2/resource/subject",
        json!({"reference": "Patient/p1"}),
    );
    assert_eq!(
        issues(&b),
        ["Bundle.entry[2].resource.subject: The relative reference cannot be resolved unless the entry's fullUrl is a RESTful base URL. Note that there is a resource in the bundle with the same type and id, but it does not match because of the fullUrl based rules"]
    );
    let b = with(
        history(),
        "/entry/2/resource/subject",
        json!({"reference": "Encounter/e1"}),
    );
    assert_eq!(
        issues(&b),
        ["Bundle.entry[2].resource.subject: The type 'Encounter' implied by the reference URL is not a valid Target for this element (must be one of Patient, Group)"]
    );
    let b = with(
        history(),
        "/entry/2/resource/subject",
        json!({"reference": ENCOUNTER}),
    );
    assert_eq!(
        issues(&b),
        ["Bundle.entry[2].resource.subject: Invalid Resource target type. Found Encounter, but expected one of (Patient, Group)"]
    );
    let b = with(
        history(),
        "/entry/4/resource/medicationReference",
        json!({"reference": "#other"}),
    );
    let found = issues(&b);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("Bundle.entry[4].resource.medication.ofType(Reference): Bundled or contained reference not found"));
    assert!(found[1].starts_with(
        "Bundle.entry[4].resource.contained[0]: The contained resource is not referenced"
    ));
    let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "https://a.example/fhir/Condition/c1", "resource": {"resourceType": "Condition", "id": "c1",
            "subject": {"reference": "Patient/p1"}}}
    ]});
    assert_eq!(
        issues(&b),
        ["Bundle.entry[0].resource.subject: Can't find the referenced resource in the bundle"]
    );
}

#[test]
fn the_bundle_rules_are_checked() {
    let b = with(history(), "/entry/1/fullUrl", NONE);
    assert_eq!(
        issues(&b),
        ["Bundle.entry[1]: Except for transactions and batches, each entry in a Bundle must have a fullUrl which is the identity of the resource in the entry",
         "Bundle.entry[2].resource.encounter: URN reference is not locally contained within the bundle"]
    );
    let b = with(history(), "/entry/1/fullUrl", json!(PATIENT));
    assert!(issues(&b).contains(&"Bundle: Constraint failed: bdl-7: 'FullUrl must be unique in a bundle, or else entries with the same fullUrl must have different meta.versionId (except in history bundles)' (defined in http://hl7.org/fhir/StructureDefinition/Bundle)".to_string()));
    let b = with(history(), "/type", json!("bag"));
    assert_eq!(
        issues(&b),
        ["Bundle.type: The value provided was not found in the value set 'BundleType' (http://hl7.org/fhir/ValueSet/bundle-type|4.0.1), and a code is required from this value set"]
    );
    let b = with(history(), "/total", json!(9));
    assert_eq!(
        issues(&b),
        ["Bundle: Constraint failed: bdl-1: 'total only when a search or history' (defined in http://hl7.org/fhir/StructureDefinition/Bundle)"]
    );
    let b = with(
        history(),
        "/entry/0/fullUrl",
        json!("https://a.example/fhir/Patient/p2"),
    );
    assert!(issues(&b).contains(&"Bundle.entry[0]: The fullUrl looks like a RESTful server URL, so it must end with the correct type and id".to_string()));
    let b = with(history(), "/resourceType", json!("Patient"));
    assert_eq!(
        issues(&b),
        ["Bundle: The resource is a Patient, not a Bundle"]
    );
}

#[test]
fn malformed_json_names_line_and_column_not_content() {
    let text =
        b"{\n  \"resourceType\": \"Bundle\",\n  \"type\": \"collection\" \"Jose Alvarez\"\n}";
    let e = validate_json(text).unwrap_err();
    assert_eq!(e.issues.len(), 1);
    assert_eq!(e.issues[0].location, "line 3, column 24");
    assert_eq!(
        e.issues[0].message,
        "Error parsing JSON: expected `,` or `}`"
    );
    let e = validate_json(b"{\"resourceType\": \"Bundle\", \"entry\": [").unwrap_err();
    assert_eq!(e.to_string(), "not a valid FHIR R4 Bundle (1 error)\n  line 1, column 37: Error parsing JSON: EOF while parsing a list");
    let e = validate_json(b"[1]").unwrap_err();
    assert_eq!(
        e.issues[0].to_string(),
        "Bundle: Error parsing JSON: the document must be a JSON object, not an array"
    );
    let e = validate_json(b"{\"resourceType\": \"Bundle\"} x").unwrap_err();
    assert_eq!(e.issues[0].location, "line 1, column 28");
}

#[test]
fn every_error_is_collected_up_to_a_cap_and_no_value_is_quoted() {
    let mut b = history();
    for i in 0..60 {
        b["entry"][0]["resource"][format!("bad{i}")] = json!("Jose Alvarez 123-45-6789");
    }
    b["entry"][0]["resource"]["birthDate"] = json!("Jose Alvarez");
    b["entry"][3]["resource"]["code"] = json!("Jose Alvarez");
    let e = validate_json(&bytes(&b)).unwrap_err();
    assert_eq!(e.total, 62);
    assert_eq!(e.issues.len(), MAX_ISSUES);
    let text = e.to_string();
    assert!(text.starts_with("not a valid FHIR R4 Bundle (62 errors)"));
    assert!(text.ends_with("\n  and 12 more"));
    assert!(!text.contains("Jose") && !text.contains("6789"));
}
