//! Generates the test histories of issue 9 (Synthea, fixed seed; see ehr_tests::fhir_tools)
//! into their cache, and prints one line per history: kind, path, bytes, resources, then the
//! resource counts by type. With --validate, also validates them with the HAPI harness and
//! prints the errors, warnings and time of each.
//!
//!   fhir_histories [--validate] [KIND...]    KIND: small-10k mid-1m large-5m attachments-5m

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use ehr_tests::fhir_tools::{bundle_resources, hapi_validate, history, HistoryKind, Severity};

fn main() -> Result<()> {
    let mut kinds = Vec::new();
    let mut validate = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--validate" => validate = true,
            "-h" | "--help" => {
                println!("usage: fhir_histories [--validate] [KIND...]  (KIND: small-10k mid-1m large-5m attachments-5m)");
                return Ok(());
            }
            name => match HistoryKind::from_name(name) {
                Some(k) => kinds.push(k),
                None => bail!(
                    "unknown history {name:?} (known: small-10k mid-1m large-5m attachments-5m)"
                ),
            },
        }
    }
    if kinds.is_empty() {
        kinds = HistoryKind::ALL.to_vec();
    }
    let mut paths = Vec::new();
    for k in kinds {
        let t = Instant::now();
        let path = history(k)?;
        let bytes = std::fs::read(&path)?;
        let resources = bundle_resources(&bytes)?;
        let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
        for (ty, _) in &resources {
            *by_type.entry(ty.as_str()).or_default() += 1;
        }
        let types: Vec<String> = by_type.iter().map(|(t, n)| format!("{t}={n}")).collect();
        println!(
            "{} {} bytes={} resources={} ({:.1} s) {}",
            k.name(),
            path.display(),
            bytes.len(),
            resources.len(),
            t.elapsed().as_secs_f64(),
            types.join(" ")
        );
        paths.push(path);
    }
    if validate {
        let t = Instant::now();
        let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        let reports = hapi_validate(&refs)?;
        let mut errors = 0;
        for r in &reports {
            println!(
                "validated {} errors={} warnings={} information={} ({} ms in the JVM)",
                r.path.display(),
                r.errors().count(),
                r.count(Severity::Warning),
                r.count(Severity::Information),
                r.millis
            );
            print!("{}", r.error_lines());
            errors += r.errors().count();
        }
        println!(
            "validation took {:.1} s in all (JVM start included)",
            t.elapsed().as_secs_f64()
        );
        if errors > 0 {
            bail!("{errors} validator errors");
        }
    }
    Ok(())
}
