//! Writes the compact R4 definitions table that `fhir-r4` compiles in, from the official
//! R4 StructureDefinitions (`profiles-types.xml` and `profiles-resources.xml`, as shipped in
//! HAPI's `hapi-fhir-validation-resources-r4` jar). Run by `scripts/fhir-r4-table.sh`.
//!
//! Usage: `fhir-r4-gen <source-label> <profiles-types.xml> <profiles-resources.xml> > table`
//!
//! The table is text, one record a line, fields separated by tabs:
//!
//! * `#...` a comment (the source);
//! * `P name regex` a primitive type and the regex of its value (empty when it has none);
//! * `T name kind` a complex type (`C`), a resource (`R`) or an abstract one (`A`); the
//!   `E` lines that follow are its elements;
//! * `E path min max types` one element of the snapshot, its path relative to the type (the
//!   type's own root element is left out), `max` a number or `*`, `types` comma-separated
//!   type codes (`Reference(Patient|Group)` with the targets' names), or `=path` for a
//!   content reference to another element of the same type.

use roxmltree::{Document, Node};
use std::fmt::Write as _;

const FHIR_TYPE_EXT: &str = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type";
const REGEX_EXT: &str = "http://hl7.org/fhir/StructureDefinition/regex";
const SD_PREFIX: &str = "http://hl7.org/fhir/StructureDefinition/";

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(name))
}

fn children<'a, 'i: 'a>(node: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(move |c| c.has_tag_name(name))
}

/// The `value` attribute of the child `name`.
fn value<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(node, name).and_then(|c| c.attribute("value"))
}

/// The `value[x]` attribute of the extension with `url` directly under `node`.
fn extension<'a>(node: Node<'a, '_>, url: &str) -> Option<&'a str> {
    children(node, "extension")
        .find(|e| e.attribute("url") == Some(url))
        .and_then(|e| e.children().find(|c| c.is_element()))
        .and_then(|v| v.attribute("value"))
}

/// One `<type>` of an element as the table writes it.
fn type_code(ty: Node, path: &str, resource: bool) -> Result<String, String> {
    let code = value(ty, "code").ok_or_else(|| format!("{path}: a type without a code"))?;
    let mut code = if code.starts_with("http://hl7.org/fhirpath/System.") {
        extension(ty, FHIR_TYPE_EXT)
            .ok_or_else(|| format!("{path}: a system type without its FHIR type"))?
            .to_string()
    } else {
        code.to_string()
    };
    // R4 writes a resource's id as a FHIRPath String; the specification's type is `id`
    // (an element's id, in a datatype or backbone element, is a `string`).
    if resource && path.split('.').count() == 2 && path.ends_with(".id") && code == "string" {
        code = "id".to_string();
    }
    let targets: Vec<&str> = children(ty, "targetProfile")
        .filter_map(|t| t.attribute("value"))
        .map(|t| t.strip_prefix(SD_PREFIX).unwrap_or(t))
        .collect();
    if code == "Reference" && !targets.is_empty() {
        code = format!("Reference({})", targets.join("|"));
    }
    Ok(code)
}

fn write_definitions(xml: &str, out: &mut String, resources: bool) -> Result<(), String> {
    let doc = Document::parse(xml).map_err(|e| e.to_string())?;
    for sd in doc
        .descendants()
        .filter(|n| n.has_tag_name("StructureDefinition"))
    {
        let (Some(name), Some(kind)) = (value(sd, "name"), value(sd, "kind")) else {
            continue;
        };
        if value(sd, "derivation") == Some("constraint") || kind == "logical" {
            continue;
        }
        let Some(ty) = value(sd, "type") else {
            continue;
        };
        if ty != name {
            continue;
        }
        let snapshot = child(sd, "snapshot").ok_or_else(|| format!("{name}: no snapshot"))?;
        if kind == "primitive-type" {
            let regex = children(snapshot, "element")
                .find(|e| value(*e, "path") == Some(&format!("{name}.value")))
                .and_then(|e| child(e, "type"))
                .and_then(|t| extension(t, REGEX_EXT))
                .unwrap_or("");
            writeln!(out, "P\t{name}\t{regex}").unwrap();
            continue;
        }
        let letter = match (kind, value(sd, "abstract")) {
            (_, Some("true")) => 'A',
            ("resource", _) => 'R',
            ("complex-type", _) => 'C',
            _ => continue,
        };
        if resources != (kind == "resource") {
            return Err(format!("{name}: a {kind} in the wrong file"));
        }
        writeln!(out, "T\t{name}\t{letter}").unwrap();
        for element in children(snapshot, "element") {
            let path = value(element, "path").ok_or("an element without a path")?;
            let Some(rel) = path.strip_prefix(name).and_then(|p| p.strip_prefix('.')) else {
                continue;
            };
            let min = value(element, "min").ok_or_else(|| format!("{path}: no min"))?;
            let max = value(element, "max").ok_or_else(|| format!("{path}: no max"))?;
            let types = if let Some(reference) = value(element, "contentReference") {
                let target = reference.trim_start_matches('#');
                let target = target
                    .strip_prefix(name)
                    .and_then(|p| p.strip_prefix('.'))
                    .ok_or_else(|| format!("{path}: a content reference to another type"))?;
                format!("={target}")
            } else {
                let types = children(element, "type")
                    .map(|t| type_code(t, path, resources))
                    .collect::<Result<Vec<_>, _>>()?;
                if types.is_empty() {
                    return Err(format!("{path}: no type"));
                }
                types.join(",")
            };
            writeln!(out, "E\t{rel}\t{min}\t{max}\t{types}").unwrap();
        }
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [label, types, resources] = args.as_slice() else {
        eprintln!(
            "usage: fhir-r4-gen <source-label> <profiles-types.xml> <profiles-resources.xml>"
        );
        std::process::exit(2);
    };
    let mut out = format!("#\tFHIR R4 definitions from {label}; written by fhir-r4-gen\n");
    for (file, resources) in [(types, false), (resources, true)] {
        let xml = std::fs::read_to_string(file).unwrap_or_else(|e| {
            eprintln!("fhir-r4-gen: {file}: {e}");
            std::process::exit(1);
        });
        if let Err(e) = write_definitions(&xml, &mut out, resources) {
            eprintln!("fhir-r4-gen: {file}: {e}");
            std::process::exit(1);
        }
    }
    print!("{out}");
}
