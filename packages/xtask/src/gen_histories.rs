//! `xtask gen-histories [--validate] [KIND...]`: the test histories of issue 9 with
//! Synthea (what scripts/gen-histories.sh did in bash): checks that Synthea and the HAPI
//! harness are built, then runs `fhir_histories` of ehr-tests with the arguments, which
//! generates (or finds cached) and prints them.

use std::process::{Command, Stdio};

use anyhow::{bail, Result};

use crate::sh;

pub fn run(args: Vec<String>) -> Result<()> {
    std::env::set_current_dir(sh::repo())?;
    let built = Command::new(std::env::current_exe()?)
        .args(["tools", "--check", "fhir-validator", "synthea"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        bail!("Synthea or the HAPI harness is not built for these sources: run scripts/install-tools.sh fhir-validator synthea");
    }
    sh::run(
        Command::new("cargo")
            .args([
                "run",
                "-q",
                "-p",
                "ehr-tests",
                "--bin",
                "fhir_histories",
                "--",
            ])
            .args(args),
    )
}
