//! A FHIR R4 Bundle validator whose rules come from the official R4 StructureDefinitions.
//!
//! `scripts/fhir-r4-table.sh` runs `fhir-r4-gen` over `profiles-types.xml` and
//! `profiles-resources.xml` (FHIR 4.0.1, from HAPI's `hapi-fhir-validation-resources-r4` on
//! Maven Central) and writes `r4.table`: every element of every resource and datatype with its
//! cardinality and types, and the regex of every primitive type. The table is committed and
//! compiled in; it is parsed once, on first use.
//!
//! What is checked, in the style and at the locations of the HL7 (HAPI) validator:
//! * the resource model: known `resourceType`, no unknown property, choice types
//!   (`valueQuantity`), content references (`Bundle.entry.link`), contained resources and
//!   every `Resource`-typed element, primitive extensions (`_birthDate`);
//! * cardinalities: minimum, maximum, JSON arrays exactly where max > 1, no empty arrays or
//!   objects, no `null`;
//! * datatypes: the JSON type of each primitive, its R4 regex (dates also by the calendar),
//!   integer ranges, complex datatypes recursively;
//! * references: `urn:` references and relative `Type/id` ones resolve to an entry by the
//!   Bundle's fullUrl rules (relative to a RESTful fullUrl), `#id` to a contained resource,
//!   reference target types; absolute `http(s)` references outside the Bundle are allowed;
//! * the Bundle's rules: fullUrl on every entry (except in transactions and batches),
//!   absolute and matching the resource's type and id, bdl-1, 2, 3, 4, 5, 7, 8, 9, 10, 11,
//!   12, and dom-2, 3, 4 of contained resources.
//!
//! Not checked: terminology bindings other than `Bundle.type`, FHIRPath invariants of
//! individual resources other than those above, profiles, XHTML beyond being a `<div>`,
//! duplicate JSON keys (the last one wins).
//!
//! Messages never quote a value of the document (it is patient data): they name the location
//! (FHIRPath, `Bundle.entry[3].resource.code.coding[0].system`), the rule and, for an unknown
//! property, its name when it looks like one.
//!
//! [`validate_json`] reads the Bundle entry by entry, so memory stays near the size of the
//! largest entry, not of the whole document.

mod table;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize as _;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use table::{Defs, Element, Kind, Max, TypeDef, TypeRef};

/// At most this many issues are kept; the rest are counted.
pub const MAX_ISSUES: usize = 50;

/// The R4 `bundle-type` value set (a required binding).
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

const SD: &str = "http://hl7.org/fhir/StructureDefinition/";

/// One error: where (a FHIRPath location) and what rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub location: String,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// The Bundle is not valid R4: the first [`MAX_ISSUES`] issues and how many there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub issues: Vec<Issue>,
    pub total: usize,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.total == 1 { "" } else { "s" };
        write!(
            f,
            "not a valid FHIR R4 Bundle ({} error{plural})",
            self.total
        )?;
        for issue in &self.issues {
            write!(f, "\n  {issue}")?;
        }
        if self.total > self.issues.len() {
            write!(f, "\n  and {} more", self.total - self.issues.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

/// What a valid Bundle holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub bundle_type: String,
    pub entries: usize,
}

/// Validates a Bundle given as JSON bytes, reading it entry by entry. Malformed JSON is
/// reported with its line and column.
pub fn validate_json(bytes: &[u8]) -> Result<Summary, Invalid> {
    let mut checker = Checker::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let root = RootSeed(&mut checker)
        .deserialize(&mut de)
        .and_then(|root| de.end().map(|()| root));
    match root {
        Err(e) => Err(json_error(&e)),
        Ok(Root::NotObject(kind)) => Err(not_an_object(kind)),
        Ok(Root::Object(map, entries_streamed)) => checker.finish(&map, entries_streamed),
    }
}

/// Validates a Bundle already parsed.
pub fn validate(bundle: &Value) -> Result<Summary, Invalid> {
    let Some(map) = bundle.as_object() else {
        return Err(not_an_object(kind_of(bundle)));
    };
    let mut checker = Checker::new();
    let streamed = match map.get("entry") {
        Some(Value::Array(entries)) => {
            for (i, entry) in entries.iter().enumerate() {
                checker.entry(i, entry);
            }
            true
        }
        _ => false,
    };
    checker.finish(map, streamed)
}

fn single(location: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        issues: vec![Issue {
            location: location.into(),
            message: message.into(),
        }],
        total: 1,
    }
}

fn json_error(e: &serde_json::Error) -> Invalid {
    use serde_json::error::Category;
    let location = format!("line {}, column {}", e.line(), e.column());
    let what = match e.classify() {
        // serde_json's syntax messages name the fault, never the input ("expected `,` or
        // `}`", "trailing comma"): keep the text before its own " at line ...".
        Category::Syntax | Category::Eof => {
            let text = e.to_string();
            let cut = text.find(" at line ").unwrap_or(text.len());
            text[..cut].to_string()
        }
        Category::Data | Category::Io => "invalid value".into(),
    };
    single(&location, format!("Error parsing JSON: {what}"))
}

fn not_an_object(kind: &str) -> Invalid {
    single(
        "Bundle",
        format!("Error parsing JSON: the document must be a JSON object, not {kind}"),
    )
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A property or type name as it may appear in a message: the names of FHIR are short ASCII
/// identifiers; anything else might be data typed in the wrong place.
fn safe_name(name: &str) -> &str {
    let fhir_like = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if fhir_like {
        name
    } else {
        "(not a FHIR name)"
    }
}

/// A RESTful URL or relative reference, `[base/]Type/id[/_history/v]`, as (base, type, id)
/// (`base` empty for a relative one); `None` when it does not end in a known resource type
/// and a FHIR id.
pub fn restful(url: &str) -> Option<(&str, &str, &str)> {
    let url = strip_history(url);
    let (rest, id) = url.rsplit_once('/')?;
    let (base, ty) = rest.rsplit_once('/').unwrap_or(("", rest));
    let defs = table::defs();
    (defs.resource(ty).is_some() && is_id(id)).then_some((base, ty, id))
}

fn strip_history(url: &str) -> &str {
    url.find("/_history/").map_or(url, |i| &url[..i])
}

fn is_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn is_absolute(url: &str) -> bool {
    match url.split_once(':') {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                && !scheme.contains('/')
        }
        None => false,
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Whether `YYYY-MM-DD...` names a day of the calendar (the R4 regex allows 2021-02-31).
fn calendar_ok(text: &str) -> bool {
    let (Some(y), Some(m), Some(d)) = (text.get(0..4), text.get(5..7), text.get(8..10)) else {
        return true;
    };
    match (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) {
        (Ok(y), Ok(m), Ok(d)) => d <= days_in_month(y, m),
        _ => true,
    }
}

/// What the Bundle-level rules need to know of an entry.
#[derive(Debug, Default)]
struct EntryFacts {
    full_url: Option<String>,
    resource_type: Option<String>,
    id: Option<String>,
    version_id: Option<String>,
    has_resource: bool,
    has_request: bool,
    has_response: bool,
    has_search: bool,
}

impl EntryFacts {
    fn of(entry: &Value) -> Self {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let resource = entry.get("resource").filter(|r| r.is_object());
        EntryFacts {
            full_url: text(entry.get("fullUrl")),
            resource_type: text(resource.and_then(|r| r.get("resourceType"))),
            id: text(resource.and_then(|r| r.get("id"))),
            version_id: text(resource.and_then(|r| r.pointer("/meta/versionId"))),
            has_resource: resource.is_some(),
            has_request: entry.get("request").is_some(),
            has_response: entry.get("response").is_some(),
            has_search: entry.get("search").is_some(),
        }
    }
}

/// A reference to resolve once every entry is known.
struct PendingRef {
    entry: usize,
    location: String,
    reference: String,
    targets: &'static [&'static str],
}

/// The `#id` references and contained resources of one entry's resource.
#[derive(Default)]
struct Frame {
    contained: Vec<(Option<String>, String)>,
    local_refs: Vec<(String, String)>,
}

struct Checker {
    defs: &'static Defs,
    issues: Vec<Issue>,
    total: usize,
    entries: Vec<EntryFacts>,
    refs: Vec<PendingRef>,
    frame: Frame,
    entry: usize,
    /// Resources being walked (0 outside an entry's resource).
    depth: usize,
    /// Bundles inside an entry: their references are theirs, not resolved against ours.
    nested_bundles: usize,
}

impl Checker {
    fn new() -> Self {
        Checker {
            defs: table::defs(),
            issues: Vec::new(),
            total: 0,
            entries: Vec::new(),
            refs: Vec::new(),
            frame: Frame::default(),
            entry: 0,
            depth: 0,
            nested_bundles: 0,
        }
    }

    fn issue(&mut self, location: &str, message: impl Into<String>) {
        self.total += 1;
        if self.issues.len() < MAX_ISSUES {
            self.issues.push(Issue {
                location: location.to_string(),
                message: message.into(),
            });
        }
    }

    fn bundle_def(&self) -> &'static TypeDef {
        self.defs
            .resource("Bundle")
            .expect("Bundle is in the table")
    }

    /// Bundle.entry[i], walked as soon as it is read.
    fn entry(&mut self, i: usize, entry: &Value) {
        let bundle = self.bundle_def();
        let element = &bundle.elements[bundle.children[""]["entry"].element];
        self.entry = i;
        self.entries.push(EntryFacts::of(entry));
        self.value(
            entry,
            bundle,
            element,
            element.types.first(),
            &format!("Bundle.entry[{i}]"),
        );
    }

    /// The Bundle itself, once every entry has been walked, then the Bundle's rules.
    fn finish(
        mut self,
        root: &Map<String, Value>,
        entries_streamed: bool,
    ) -> Result<Summary, Invalid> {
        match root.get("resourceType") {
            Some(Value::String(t)) if t == "Bundle" => {}
            Some(Value::String(t)) => {
                let t = safe_name(t).to_string();
                return Err(single(
                    "Bundle",
                    format!("The resource is a {t}, not a Bundle"),
                ));
            }
            _ => return Err(single("Bundle", "Unable to find resourceType property")),
        }
        let bundle = self.bundle_def();
        let skip = entries_streamed.then_some("entry");
        self.object(root, bundle, "", "Bundle", true, skip);
        let bundle_type = root.get("type").and_then(Value::as_str).unwrap_or("");
        self.bundle_rules(root, bundle_type);
        self.resolve_references(bundle_type);
        if self.total > 0 {
            return Err(Invalid {
                issues: self.issues,
                total: self.total,
            });
        }
        Ok(Summary {
            bundle_type: bundle_type.to_string(),
            entries: self.entries.len(),
        })
    }

    fn resource(&mut self, v: &Value, loc: &str, contained: bool) {
        let Some(obj) = v.as_object() else {
            return self.issue(
                loc,
                format!("This property must be an object, not {}", kind_of(v)),
            );
        };
        let rt = match obj.get("resourceType") {
            Some(Value::String(rt)) => rt,
            Some(_) => {
                return self.issue(
                    loc,
                    "The JSON element 'resourceType' has the wrong JSON type",
                )
            }
            None => return self.issue(loc, "Unable to find resourceType property"),
        };
        let Some(def) = self.defs.resource(rt) else {
            let name = safe_name(rt).to_string();
            return self.issue(
                loc,
                format!("This does not appear to be a FHIR resource (unknown name '{name}')"),
            );
        };
        let top = self.depth == 0;
        if top {
            self.frame = Frame::default();
        }
        let bundle = rt == "Bundle";
        self.depth += 1;
        self.nested_bundles += usize::from(bundle);
        self.object(obj, def, "", loc, true, None);
        self.nested_bundles -= usize::from(bundle);
        self.depth -= 1;
        if contained {
            self.contained_rules(obj, loc);
        }
        if top {
            self.close_frame();
        }
    }

    fn contained_rules(&mut self, obj: &Map<String, Value>, loc: &str) {
        if obj.contains_key("contained") {
            self.issue(loc, "Constraint failed: dom-2: 'If the resource is contained in another resource, it SHALL NOT contain nested Resources'");
        }
        let meta = obj.get("meta");
        if meta.is_some_and(|m| m.get("versionId").is_some() || m.get("lastUpdated").is_some()) {
            self.issue(loc, "Constraint failed: dom-4: 'If a resource is contained in another resource, it SHALL NOT have a meta.versionId or a meta.lastUpdated'");
        }
        let id = obj.get("id").and_then(Value::as_str).map(str::to_string);
        self.frame.contained.push((id, loc.to_string()));
    }

    /// `#id` references of one entry's resource resolve to its contained resources, and each
    /// contained resource is referenced (dom-3).
    fn close_frame(&mut self) {
        let frame = std::mem::take(&mut self.frame);
        let refers_to_container = frame.local_refs.iter().any(|(_, id)| id.is_empty());
        for (loc, id) in &frame.local_refs {
            let found = id.is_empty()
                || frame
                    .contained
                    .iter()
                    .any(|(c, _)| c.as_deref() == Some(id));
            if !found {
                self.issue(loc, "Bundled or contained reference not found within the bundle/resource (ref-1: a local reference needs a contained resource)");
            }
        }
        for (id, loc) in &frame.contained {
            let referenced = id
                .as_deref()
                .is_some_and(|id| frame.local_refs.iter().any(|(_, r)| r == id));
            if !referenced && !refers_to_container {
                self.issue(loc, "The contained resource is not referenced to from elsewhere in the containing resource nor does it refer to the containing resource (dom-3)");
            }
        }
    }

    /// An object of type `def` at `path` within it (`""` its root).
    fn object(
        &mut self,
        obj: &Map<String, Value>,
        def: &'static TypeDef,
        path: &str,
        loc: &str,
        resource_root: bool,
        skip: Option<&str>,
    ) {
        if obj.is_empty() {
            return self.issue(loc, "Object must have some content");
        }
        let Some(names) = def.children.get(path) else {
            return;
        };
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for (key, value) in obj {
            if (resource_root && key == "resourceType") || skip == Some(key.as_str()) {
                continue;
            }
            let (name, extension) = match key.strip_prefix('_') {
                Some(name) => (name, true),
                None => (key.as_str(), false),
            };
            let Some(child) = names.get(name) else {
                let key = safe_name(key).to_string();
                self.issue(loc, format!("Unrecognized property '{key}'"));
                continue;
            };
            let element = &def.elements[child.element];
            let ty = element.types.get(child.type_index);
            let n = if extension {
                if !ty.is_some_and(|t| self.defs.primitives.contains_key(t.code)) {
                    let key = safe_name(key).to_string();
                    self.issue(loc, format!("Unrecognized property '{key}'"));
                    continue;
                }
                let n = self.primitive_extension(value, element, ty, loc);
                if obj.contains_key(name) {
                    0
                } else {
                    n
                }
            } else {
                self.element(value, def, element, ty, loc)
            };
            *counts.entry(child.element).or_default() += n;
        }
        for &i in def
            .element_lists
            .get(path)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let e = &def.elements[i];
            let found = counts.get(&i).copied().unwrap_or(0);
            let from = format!("(from {SD}{}|4.0.1)", def.name);
            if found < e.min as usize {
                self.issue(
                    loc,
                    format!(
                        "{}.{}: minimum required = {}, but only found {found} {from}",
                        def.name, e.path, e.min
                    ),
                );
            }
            if let Max::N(max) = e.max {
                // A second value of a max-1 element is already refused as an array, except
                // across the types of a choice.
                if found > max as usize && (max > 1 || e.is_choice()) {
                    self.issue(
                        loc,
                        format!(
                            "{}.{}: max allowed = {max}, but found {found} {from}",
                            def.name, e.path
                        ),
                    );
                }
            }
        }
    }

    /// The location segment of an element: `code`, `value.ofType(Quantity)`.
    fn segment(element: &Element, ty: Option<&TypeRef>) -> String {
        match ty {
            Some(ty) if element.is_choice() => format!("{}.ofType({})", element.name, ty.code),
            _ => element.name.to_string(),
        }
    }

    /// One property's value, an array where the element repeats. Returns how many values.
    fn element(
        &mut self,
        v: &Value,
        def: &'static TypeDef,
        element: &'static Element,
        ty: Option<&'static TypeRef>,
        parent: &str,
    ) -> usize {
        let loc = format!("{parent}.{}", Self::segment(element, ty));
        match (element.max.is_array(), v) {
            (true, Value::Array(items)) => {
                if items.is_empty() {
                    self.issue(&loc, "Array cannot be empty - the property should not be present if it has no values");
                }
                for (i, item) in items.iter().enumerate() {
                    self.value(item, def, element, ty, &format!("{loc}[{i}]"));
                }
                items.len()
            }
            (true, other) => {
                let name = element.name;
                self.issue(
                    &loc,
                    format!(
                        "The property {name} must be a JSON Array, not {}",
                        kind_of(other)
                    ),
                );
                1
            }
            (false, Value::Array(items)) => {
                let primitive = ty.is_some_and(|t| self.defs.primitives.contains_key(t.code));
                let what = if primitive {
                    "a simple value"
                } else {
                    "an object"
                };
                self.issue(&loc, format!("This property must be {what}, not an array"));
                items.len()
            }
            (false, other) => {
                self.value(other, def, element, ty, &loc);
                1
            }
        }
    }

    /// `_name`: the id and extensions of a primitive, an object or, where the element
    /// repeats, an array of objects and nulls.
    fn primitive_extension(
        &mut self,
        v: &Value,
        element: &'static Element,
        ty: Option<&'static TypeRef>,
        parent: &str,
    ) -> usize {
        let loc = format!("{parent}.{}", Self::segment(element, ty));
        let def = &self.defs.types["Element"];
        match (element.max.is_array(), v) {
            (true, Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Object(obj) = item {
                        self.object(obj, def, "", &format!("{loc}[{i}]"), false, None);
                    } else if !item.is_null() {
                        self.issue(
                            &format!("{loc}[{i}]"),
                            format!("This property must be an object, not {}", kind_of(item)),
                        );
                    }
                }
                items.len()
            }
            (false, Value::Object(obj)) => {
                self.object(obj, def, "", &loc, false, None);
                1
            }
            (_, other) => {
                self.issue(&loc, format!("The extensions of a primitive must be an object or an array of objects, not {}", kind_of(other)));
                1
            }
        }
    }

    /// One value of an element (an array item, or the value of a max-1 element).
    fn value(
        &mut self,
        v: &Value,
        def: &'static TypeDef,
        element: &'static Element,
        ty: Option<&'static TypeRef>,
        loc: &str,
    ) {
        if v.is_null() {
            return self.issue(loc, "The element is not allowed to be 'null'");
        }
        if let Some(target) = element.content_ref {
            return self.complex(v, def, target, loc);
        }
        let Some(ty) = ty else { return };
        match ty.code {
            "Resource" => {
                let contained = def.kind == Kind::Resource && element.path == "contained";
                self.resource(v, loc, contained);
            }
            "Element" | "BackboneElement" => self.complex(v, def, element.path, loc),
            code if self.defs.primitives.contains_key(code) => self.primitive(v, code, loc),
            code => {
                let Some(datatype) = self.defs.types.get(code) else {
                    return;
                };
                self.complex(v, datatype, "", loc);
                if code == "Reference" {
                    self.reference(v, ty, loc);
                }
            }
        }
    }

    fn complex(&mut self, v: &Value, def: &'static TypeDef, path: &str, loc: &str) {
        match v.as_object() {
            Some(obj) => self.object(obj, def, path, loc, false, None),
            None => self.issue(
                loc,
                format!("This property must be an object, not {}", kind_of(v)),
            ),
        }
    }

    fn primitive(&mut self, v: &Value, code: &str, loc: &str) {
        match code {
            "boolean" => {
                if !v.is_boolean() {
                    self.issue(
                        loc,
                        "Error parsing JSON: the primitive value must be a boolean",
                    );
                }
            }
            "integer" | "positiveInt" | "unsignedInt" | "decimal" => {
                let Value::Number(n) = v else {
                    return self.issue(
                        loc,
                        "Error parsing JSON: the primitive value must be a number",
                    );
                };
                if code == "decimal" {
                    return;
                }
                let Some(n) = n.as_i64() else {
                    return self.issue(loc, "The value is not a valid integer");
                };
                let min = match code {
                    "positiveInt" => 1,
                    "unsignedInt" => 0,
                    _ => i64::from(i32::MIN),
                };
                if n < min {
                    self.issue(
                        loc,
                        format!("value is less than permitted minimum value of {min}"),
                    );
                } else if n > i64::from(i32::MAX) {
                    self.issue(
                        loc,
                        format!(
                            "integer value is greater than permitted maximum value of {}",
                            i32::MAX
                        ),
                    );
                }
            }
            _ => {
                let Value::String(s) = v else {
                    return self.issue(
                        loc,
                        "Error parsing JSON: the primitive value must be a string",
                    );
                };
                self.text(s, code, loc);
            }
        }
    }

    fn text(&mut self, s: &str, code: &str, loc: &str) {
        if s.is_empty() {
            return self.issue(loc, "value cannot be empty");
        }
        if code == "xhtml" {
            if !s.trim_start().starts_with("<div") {
                self.issue(loc, "The narrative must be an XHTML div element");
            }
            return;
        }
        if matches!(code, "string" | "markdown") && s.len() > 1024 * 1024 {
            return self.issue(
                loc,
                "value is longer than permitted maximum length of 1 MB (1048576 bytes)",
            );
        }
        let regex = self.defs.primitives.get(code).and_then(Option::as_ref);
        let calendar = !matches!(code, "date" | "dateTime" | "instant") || calendar_ok(s);
        if regex.is_none_or(|r| r.is_match(s.as_bytes())) && calendar {
            return;
        }
        let message = match code {
            "date" => "Not a valid date format".to_string(),
            "dateTime" => "Not a valid date/time format".into(),
            "instant" => "Not a valid instant".into(),
            "time" => "The time is not a valid time".into(),
            "id" => "id value is not valid".into(),
            "uuid" => "UUIDs must be valid and lowercase".into(),
            "oid" => "OIDs must be valid".into(),
            "base64Binary" => "The value is not a valid Base64 value".into(),
            "uri" | "url" | "canonical" => "URI values cannot have whitespace".into(),
            "code" => "The code is not valid (whitespace rules)".into(),
            other => format!("Element value does not meet the {other} regex"),
        };
        self.issue(loc, message);
    }

    fn reference(&mut self, v: &Value, ty: &'static TypeRef, loc: &str) {
        let Some(reference) = v.get("reference").and_then(Value::as_str) else {
            return;
        };
        if let Some(id) = reference.strip_prefix('#') {
            self.frame
                .local_refs
                .push((loc.to_string(), id.to_string()));
            return;
        }
        if self.nested_bundles > 0 || reference.is_empty() {
            return;
        }
        self.refs.push(PendingRef {
            entry: self.entry,
            location: loc.to_string(),
            reference: reference.to_string(),
            targets: &ty.targets,
        });
    }

    /// Every reference between entries, by the Bundle's fullUrl rules (R4 §2.36.4):
    /// absolute ones match an entry's fullUrl (`urn:` ones must), relative ones are
    /// resolved against the RESTful base of their entry's fullUrl. A transaction or batch may
    /// refer to what the server holds.
    fn resolve_references(&mut self, bundle_type: &str) {
        let server_side = matches!(bundle_type, "transaction" | "batch");
        let entries = std::mem::take(&mut self.entries);
        let mut by_url: HashMap<&str, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if let Some(url) = &e.full_url {
                by_url.entry(strip_history(url)).or_insert(i);
            }
        }
        let refs = std::mem::take(&mut self.refs);
        let mut found = Vec::new();
        for r in &refs {
            let reference = r.reference.as_str();
            let loc = r.location.as_str();
            if is_absolute(reference) {
                match by_url.get(strip_history(reference)) {
                    Some(&j) => found.push((loc, j, r.targets)),
                    None if reference.starts_with("urn:") => self.issue(
                        loc,
                        "URN reference is not locally contained within the bundle",
                    ),
                    None => {} // a resource on another server
                }
                continue;
            }
            let Some((_, ty, id)) = restful(reference).filter(|(base, _, _)| base.is_empty())
            else {
                if !(server_side && reference.contains('?')) {
                    self.issue(
                        loc,
                        "Relative URLs must be of the format [ResourceName]/[id]",
                    );
                }
                continue;
            };
            if !r.targets.is_empty() && !r.targets.iter().any(|t| *t == ty || *t == "Resource") {
                let allowed = r.targets.join(", ");
                self.issue(loc, format!("The type '{ty}' implied by the reference URL is not a valid Target for this element (must be one of {allowed})"));
                continue;
            }
            let base = entries[r.entry]
                .full_url
                .as_deref()
                .and_then(restful)
                .map(|(b, _, _)| b);
            let target = base.and_then(|b| by_url.get(format!("{b}/{ty}/{id}").as_str()).copied());
            match (target, base) {
                (Some(j), _) => found.push((loc, j, r.targets)),
                (None, _) if server_side => {}
                (None, Some(_)) => {
                    self.issue(loc, "Can't find the referenced resource in the bundle")
                }
                (None, None) => {
                    let same = entries.iter().any(|e| {
                        e.resource_type.as_deref() == Some(ty) && e.id.as_deref() == Some(id)
                    });
                    let note = if same {
                        ". Note that there is a resource in the bundle with the same type and id, but it does not match because of the fullUrl based rules"
                    } else {
                        ""
                    };
                    self.issue(loc, format!("The relative reference cannot be resolved unless the entry's fullUrl is a RESTful base URL{note}"));
                }
            }
        }
        for (loc, j, targets) in found {
            let Some(rt) = entries[j].resource_type.clone() else {
                continue;
            };
            if !targets.is_empty() && !targets.iter().any(|t| *t == rt || *t == "Resource") {
                let allowed = targets.join(", ");
                let rt = safe_name(&rt).to_string();
                self.issue(
                    loc,
                    format!(
                        "Invalid Resource target type. Found {rt}, but expected one of ({allowed})"
                    ),
                );
            }
        }
        drop(by_url);
        self.entries = entries;
    }

    fn bundle_rules(&mut self, root: &Map<String, Value>, bundle_type: &str) {
        if root.get("type").is_some_and(Value::is_string) && !BUNDLE_TYPES.contains(&bundle_type) {
            self.issue("Bundle.type", "The value provided was not found in the value set 'BundleType' (http://hl7.org/fhir/ValueSet/bundle-type|4.0.1), and a code is required from this value set");
        }
        let bdl = |n: &str, text: &str| {
            format!("Constraint failed: {n}: '{text}' (defined in {SD}Bundle)")
        };
        let entries = std::mem::take(&mut self.entries);
        let search = matches!(bundle_type, "searchset" | "history");
        if root.contains_key("total") && !search {
            self.issue(
                "Bundle",
                bdl("bdl-1", "total only when a search or history"),
            );
        }
        if bundle_type != "searchset" && entries.iter().any(|e| e.has_search) {
            self.issue("Bundle", bdl("bdl-2", "entry.search only when a search"));
        }
        let requests = matches!(bundle_type, "batch" | "transaction" | "history");
        if entries.iter().any(|e| e.has_request != requests) {
            self.issue(
                "Bundle",
                bdl(
                    "bdl-3",
                    "entry.request mandatory for batch/transaction/history, otherwise prohibited",
                ),
            );
        }
        let responses = matches!(
            bundle_type,
            "batch-response" | "transaction-response" | "history"
        );
        if entries.iter().any(|e| e.has_response != responses) {
            self.issue("Bundle", bdl("bdl-4", "entry.response mandatory for batch-response/transaction-response/history, otherwise prohibited"));
        }
        let mut seen: HashMap<&str, Vec<Option<&str>>> = HashMap::new();
        let mut duplicate = false;
        for e in &entries {
            if let Some(url) = &e.full_url {
                let versions = seen.entry(url.as_str()).or_default();
                let version = e.version_id.as_deref();
                duplicate |= versions
                    .iter()
                    .any(|v| v.is_none() || version.is_none() || *v == version);
                versions.push(version);
            }
        }
        if duplicate && bundle_type != "history" {
            self.issue("Bundle", bdl("bdl-7", "FullUrl must be unique in a bundle, or else entries with the same fullUrl must have different meta.versionId (except in history bundles)"));
        }
        if bundle_type == "document" {
            let identifier = root.get("identifier");
            if !identifier.is_some_and(|i| i.get("system").is_some() && i.get("value").is_some()) {
                self.issue(
                    "Bundle",
                    bdl(
                        "bdl-9",
                        "A document must have an identifier with a system and a value",
                    ),
                );
            }
            if !root.contains_key("timestamp") {
                self.issue("Bundle", bdl("bdl-10", "A document must have a date"));
            }
        }
        let first = entries.first().and_then(|e| e.resource_type.as_deref());
        if bundle_type == "document" && first != Some("Composition") {
            self.issue(
                "Bundle",
                bdl(
                    "bdl-11",
                    "A document must have a Composition as the first resource",
                ),
            );
        }
        if bundle_type == "message" && first != Some("MessageHeader") {
            self.issue(
                "Bundle",
                bdl(
                    "bdl-12",
                    "A message must have a MessageHeader as it's first resource",
                ),
            );
        }
        let full_url_optional = matches!(
            bundle_type,
            "transaction" | "batch" | "transaction-response" | "batch-response"
        );
        for (i, e) in entries.iter().enumerate() {
            let loc = format!("Bundle.entry[{i}]");
            if !e.has_resource && !e.has_request && !e.has_response {
                self.issue(
                    &loc,
                    bdl(
                        "bdl-5",
                        "must be a resource unless there's a request or response",
                    ),
                );
            }
            let Some(url) = &e.full_url else {
                if e.has_resource && !full_url_optional {
                    self.issue(&loc, "Except for transactions and batches, each entry in a Bundle must have a fullUrl which is the identity of the resource in the entry");
                }
                continue;
            };
            if url.contains("/_history/") {
                self.issue(
                    &loc,
                    bdl("bdl-8", "fullUrl cannot be a version specific reference"),
                );
            }
            if !is_absolute(url) {
                self.issue(&loc, "The fullUrl must be an absolute URL");
            } else if let (Some((_, ty, id)), true) = (restful(url), e.has_resource) {
                if e.id.is_none() {
                    self.issue(
                        &loc,
                        "The fullUrl looks like a RESTful server URL, but the resource has no id",
                    );
                } else if e.resource_type.as_deref() != Some(ty) || e.id.as_deref() != Some(id) {
                    self.issue(&loc, "The fullUrl looks like a RESTful server URL, so it must end with the correct type and id");
                }
            }
        }
        self.entries = entries;
    }
}

/// The top-level object: its properties, with `entry` walked item by item as it is read.
enum Root {
    Object(Map<String, Value>, bool),
    NotObject(&'static str),
}

struct RootSeed<'c>(&'c mut Checker);

impl<'de> DeserializeSeed<'de> for RootSeed<'_> {
    type Value = Root;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Root, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RootSeed<'_> {
    type Value = Root;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a FHIR Bundle")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Root, A::Error> {
        let mut root = Map::new();
        let mut streamed = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "entry" {
                match map.next_value_seed(EntrySeed(&mut *self.0))? {
                    Some(other) => {
                        root.insert(key, other);
                    }
                    None => streamed = true,
                }
            } else {
                let value: Value = map.next_value()?;
                root.insert(key, value);
            }
        }
        Ok(Root::Object(root, streamed))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Root, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Root::NotObject("an array"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Root, E> {
        Ok(Root::NotObject("a string"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Root, E> {
        Ok(Root::NotObject("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Root, E> {
        Ok(Root::NotObject("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Root, E> {
        Ok(Root::NotObject("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Root, E> {
        Ok(Root::NotObject("a number"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Root, E> {
        Ok(Root::NotObject("null"))
    }
}

/// `Bundle.entry`: an array is walked entry by entry (`None`); anything else is returned to
/// be refused by the generic rules.
struct EntrySeed<'c>(&'c mut Checker);

impl<'de> DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = Option<Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Bundle entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Value>, A::Error> {
        let mut i = 0;
        while let Some(entry) = seq.next_element::<Value>()? {
            self.0.entry(i, &entry);
            i += 1;
        }
        if i == 0 {
            return Ok(Some(Value::Array(Vec::new())));
        }
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<Value>, A::Error> {
        let value = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Some(value))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<Value>, E> {
        Ok(Some(Value::String(v.into())))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<Value>, E> {
        Ok(Some(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<Value>, E> {
        Ok(Some(Value::Null))
    }
}

#[cfg(test)]
mod tests;
