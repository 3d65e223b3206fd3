//! The R4 definitions, read once from the committed table `r4.table` (written by
//! `fhir-r4-gen` from the official StructureDefinitions; format in that crate's docs).

use regex::bytes::{Regex, RegexBuilder};
use std::collections::HashMap;
use std::sync::OnceLock;

const TABLE: &str = include_str!("r4.table");

/// Upper bound of an element's cardinality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Max {
    N(u32),
    Many,
}

impl Max {
    /// Whether the JSON form is an array (any max other than 1).
    pub fn is_array(self) -> bool {
        self != Max::N(1)
    }
}

#[derive(Debug)]
pub struct TypeRef {
    pub code: &'static str,
    /// `Reference(...)` targets (resource type names; `Resource` = any).
    pub targets: Vec<&'static str>,
}

#[derive(Debug)]
pub struct Element {
    /// Path relative to the type (`entry.resource`); choices end in `[x]`.
    pub path: &'static str,
    /// Name in FHIRPath (`value` for `value[x]`).
    pub name: &'static str,
    pub min: u32,
    pub max: Max,
    pub types: Vec<TypeRef>,
    /// A content reference: the element whose children this one has.
    pub content_ref: Option<&'static str>,
}

impl Element {
    pub fn is_choice(&self) -> bool {
        self.path.ends_with("[x]")
    }
}

/// A property name that may appear in the JSON of an object: an element, or one type of a
/// choice element (`valueQuantity`).
#[derive(Debug, Clone, Copy)]
pub struct Child {
    pub element: usize,
    /// Index into the element's `types` (a choice names one; others have one type or are
    /// inline backbone elements).
    pub type_index: usize,
}

#[derive(Debug)]
pub struct TypeDef {
    pub name: &'static str,
    pub kind: Kind,
    pub elements: Vec<Element>,
    /// Per parent path (`""` for the root), its JSON property names.
    pub children: HashMap<&'static str, HashMap<String, Child>>,
    /// Per parent path, its elements (for the minimum cardinalities), in definition order.
    pub element_lists: HashMap<&'static str, Vec<usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Complex,
    Resource,
    Abstract,
}

#[derive(Debug)]
pub struct Defs {
    pub source: &'static str,
    /// Primitive types and the anchored regex of their value (none for xhtml).
    pub primitives: HashMap<&'static str, Option<Regex>>,
    pub types: HashMap<&'static str, TypeDef>,
}

impl Defs {
    pub fn resource(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name).filter(|t| t.kind == Kind::Resource)
    }
}

/// The definitions, parsed on first use.
pub fn defs() -> &'static Defs {
    static DEFS: OnceLock<Defs> = OnceLock::new();
    DEFS.get_or_init(|| parse(TABLE).expect("the committed r4.table parses"))
}

fn upper_first(code: &str) -> String {
    let mut chars = code.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn parse_types(field: &'static str) -> Vec<TypeRef> {
    field
        .split(',')
        .map(|t| match t.split_once('(') {
            Some((code, rest)) => TypeRef {
                code,
                targets: rest.trim_end_matches(')').split('|').collect(),
            },
            None => TypeRef {
                code: t,
                targets: Vec::new(),
            },
        })
        .collect()
}

fn finish(t: &mut TypeDef) {
    for (i, e) in t.elements.iter().enumerate() {
        let (parent, _) = e.path.rsplit_once('.').unwrap_or(("", e.path));
        t.element_lists.entry(parent).or_default().push(i);
        let names = t.children.entry(parent).or_default();
        if e.is_choice() {
            for (k, ty) in e.types.iter().enumerate() {
                let name = format!("{}{}", e.name, upper_first(ty.code));
                names.insert(
                    name,
                    Child {
                        element: i,
                        type_index: k,
                    },
                );
            }
        } else {
            names.insert(
                e.name.to_string(),
                Child {
                    element: i,
                    type_index: 0,
                },
            );
        }
    }
}

fn parse(text: &'static str) -> Result<Defs, String> {
    let mut defs = Defs {
        source: "",
        primitives: HashMap::new(),
        types: HashMap::new(),
    };
    let mut current: Option<TypeDef> = None;
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&'static str> = line.split('\t').collect();
        let bad = || format!("r4.table line {}", n + 1);
        match fields.as_slice() {
            ["#", source] => defs.source = source,
            ["P", name, regex] => {
                let regex = if regex.is_empty() {
                    None
                } else {
                    // Java's regex classes (\s, \S) are ASCII: match bytes without Unicode.
                    let anchored = format!("^(?:{regex})$");
                    let built = RegexBuilder::new(&anchored)
                        .unicode(false)
                        .build()
                        .map_err(|e| format!("{}: {e}", bad()))?;
                    Some(built)
                };
                defs.primitives.insert(name, regex);
            }
            ["T", name, kind] => {
                if let Some(mut t) = current.take() {
                    finish(&mut t);
                    defs.types.insert(t.name, t);
                }
                current = Some(TypeDef {
                    name,
                    kind: match *kind {
                        "R" => Kind::Resource,
                        "C" => Kind::Complex,
                        _ => Kind::Abstract,
                    },
                    elements: Vec::new(),
                    children: HashMap::new(),
                    element_lists: HashMap::new(),
                });
            }
            ["E", path, min, max, types] => {
                let t = current.as_mut().ok_or_else(bad)?;
                let last = path.rsplit('.').next().unwrap_or(path);
                let (types, content_ref) = match types.strip_prefix('=') {
                    Some(target) => (Vec::new(), Some(target)),
                    None => (parse_types(types), None),
                };
                t.elements.push(Element {
                    path,
                    name: last.trim_end_matches("[x]"),
                    min: min.parse().map_err(|_| bad())?,
                    max: match *max {
                        "*" => Max::Many,
                        n => Max::N(n.parse().map_err(|_| bad())?),
                    },
                    types,
                    content_ref,
                });
            }
            _ => return Err(bad()),
        }
    }
    if let Some(mut t) = current.take() {
        finish(&mut t);
        defs.types.insert(t.name, t);
    }
    Ok(defs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_r4() {
        let d = defs();
        assert!(d.source.contains("4.0.1"));
        assert_eq!(
            d.types
                .values()
                .filter(|t| t.kind == Kind::Resource)
                .count(),
            146
        );
        let obs = d.resource("Observation").unwrap();
        let child = obs.children[""]["valueQuantity"];
        let e = &obs.elements[child.element];
        assert_eq!(e.name, "value");
        assert_eq!(e.types[child.type_index].code, "Quantity");
        let cond = d.resource("Condition").unwrap();
        let subject = &cond.elements[cond.children[""]["subject"].element];
        assert_eq!((subject.min, subject.max), (1, Max::N(1)));
        assert_eq!(subject.types[0].targets, ["Patient", "Group"]);
        let bundle = d.resource("Bundle").unwrap();
        let link = &bundle.elements[bundle.children["entry"]["link"].element];
        assert_eq!(link.content_ref, Some("link"));
        assert_eq!(
            bundle.elements[bundle.children[""]["id"].element].types[0].code,
            "id"
        );
        let date = d.primitives["date"].as_ref().unwrap();
        assert!(date.is_match(b"2020-02"));
        assert!(!date.is_match(b"2020-13-01"));
        assert!(d.primitives["xhtml"].is_none());
    }
}
