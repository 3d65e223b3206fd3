//! `xtask schema [--check]`: generates schema/ (what scripts/schema.sh did in bash): the
//! JSON schemas of the registry and the exchange (their IDL files), of the exchange's
//! execute response data (exchange-data/), of the IBC wire types (packets/), and the
//! signing-bytes test vectors (test-vectors/signing.json). With `--check` (the first
//! argument) it fails when schema/ is stale; other arguments are ignored, as before.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Result;

use crate::sh::{self, Exit, TempDir};

pub fn run(args: Vec<String>) -> Result<()> {
    let check = args.first().is_some_and(|a| a == "--check");
    let root = sh::repo();
    std::env::set_current_dir(&root)?;
    let work = TempDir::new("ehrx-schema")?;
    let w = |p: &str| work.0.join(p);
    let bin = sh::target_dir().join("debug");

    sh::run(Command::new("cargo").args([
        "build",
        "-q",
        "-p",
        "registry",
        "-p",
        "exchange",
        "-p",
        "ehr-protocol",
        "--bins",
    ]))?;
    for contract in ["registry", "exchange"] {
        fs::create_dir_all(w(contract))?;
        sh::run(
            Command::new(bin.join(format!("{contract}_schema")))
                .current_dir(w(contract))
                .stdout(Stdio::null()),
        )?;
    }
    sh::run(
        Command::new(bin.join("packet_schema"))
            .arg(w("packets"))
            .stdout(Stdio::null()),
    )?;
    sh::run(Command::new(bin.join("signing_vectors")).arg(w("test-vectors/signing.json")))?;

    // write_api! writes to ./schema under the working directory.
    fs::create_dir_all(w("out"))?;
    for contract in ["registry", "exchange"] {
        sh::mv(
            &w(&format!("{contract}/schema")),
            &w(&format!("out/{contract}")),
        )?;
    }
    sh::mv(&w("exchange/exchange-data"), &w("out/exchange-data"))?;
    sh::mv(&w("packets"), &w("out/packets"))?;
    sh::mv(&w("test-vectors"), &w("out/test-vectors"))?;
    // The one hand-written file: kept as it is.
    fs::copy("schema/README.md", w("out/README.md"))?;

    if check {
        let diff = Command::new("diff")
            .arg("-r")
            .arg(w("out"))
            .arg("schema")
            .stderr(Stdio::null())
            .output()?;
        if !diff.status.success() {
            let text = String::from_utf8_lossy(&diff.stdout);
            for line in text.lines().take(40) {
                println!("{line}");
            }
            eprintln!("schema/ is stale: run scripts/schema.sh and commit the result");
            return Err(Exit(1).into());
        }
        println!("schema/ is fresh");
    } else {
        crate::tools::sys::rm_rf(Path::new("schema"))?;
        sh::mv(&w("out"), Path::new("schema"))?;
        println!(
            "schema/ regenerated: {} files",
            count_json(Path::new("schema"))
        );
    }
    Ok(())
}

/// `find DIR -name '*.json' | wc -l`.
fn count_json(dir: &Path) -> usize {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                count_json(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "json"))
            }
        })
        .sum()
}
