//! `xtask fhir-r4-table [--check]`: regenerates packages/fhir-r4/src/r4.table from the
//! official R4 StructureDefinitions (FHIR 4.0.1) that HAPI ships in
//! ca.uhn.hapi.fhir:hapi-fhir-validation-resources-r4 on Maven Central (what
//! scripts/fhir-r4-table.sh did in bash). The jar is downloaded once (pinned version and
//! SHA-256) into `${XDG_CACHE_HOME:-~/.cache}/ehrx-fhir`.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Result;

use crate::sh::{self, Exit, TempDir};

const VERSION: &str = "8.12.1";
const SHA256: &str = "e3be14db8922f74dd554dfffb04e1d66fa0e10b84c7e1c65e25410a865fe161f";
const ARTIFACT: &str = "hapi-fhir-validation-resources-r4";
const TABLE: &str = "packages/fhir-r4/src/r4.table";
const PROFILES: &str = "org/hl7/fhir/r4/model/profile";

fn sha_ok(path: &Path) -> bool {
    sh::sha256_file(path).is_ok_and(|s| s == SHA256)
}

pub fn run(args: Vec<String>) -> Result<()> {
    let check = args.first().is_some_and(|a| a == "--check");
    let root = sh::repo();
    std::env::set_current_dir(&root)?;
    let url = format!(
        "https://repo1.maven.org/maven2/ca/uhn/hapi/fhir/{ARTIFACT}/{VERSION}/{ARTIFACT}-{VERSION}.jar"
    );
    let cache = sh::cache_home().join("ehrx-fhir");
    let jar = cache.join(format!("{ARTIFACT}-{VERSION}.jar"));
    fs::create_dir_all(&cache)?;
    if !jar.is_file() || !sha_ok(&jar) {
        let part = cache.join(format!("{ARTIFACT}-{VERSION}.jar.part"));
        sh::run(
            Command::new("curl")
                .args(["-fsSL", "-o"])
                .arg(&part)
                .arg(&url),
        )?;
        if !sha_ok(&part) {
            eprintln!("{}: FAILED", part.display());
            eprintln!("sha256sum: WARNING: 1 computed checksum did NOT match");
            return Err(Exit(1).into());
        }
        fs::rename(&part, &jar)?;
    }
    let work = TempDir::new("ehrx-fhir-r4")?;
    let types = format!("{PROFILES}/profiles-types.xml");
    let resources = format!("{PROFILES}/profiles-resources.xml");
    sh::run(
        Command::new("unzip")
            .args(["-q", "-o"])
            .arg(&jar)
            .args([&types, &resources])
            .arg("-d")
            .arg(&work.0),
    )?;
    let fresh = work.0.join("r4.table");
    sh::run(
        Command::new("cargo")
            .args(["run", "-q", "-p", "fhir-r4-gen", "--"])
            .arg(format!(
                "ca.uhn.hapi.fhir:{ARTIFACT}:{VERSION} (FHIR 4.0.1)"
            ))
            .arg(work.0.join(&types))
            .arg(work.0.join(&resources))
            .stdout(Stdio::from(fs::File::create(&fresh)?)),
    )?;

    if check {
        if fs::read(&fresh)? != fs::read(TABLE).unwrap_or_default() {
            eprintln!("{TABLE} is stale: run scripts/fhir-r4-table.sh and commit the result");
            return Err(Exit(1).into());
        }
        println!("{TABLE} is up to date");
    } else {
        sh::mv(&fresh, Path::new(TABLE))?;
        println!("wrote {TABLE} ({} bytes)", fs::metadata(TABLE)?.len());
    }
    Ok(())
}
