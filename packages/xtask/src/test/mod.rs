//! `xtask test [--no-e2e] [--no-budget]`: every test, in timed stages (what
//! scripts/test.sh did in bash; it now builds this binary and runs it).
//!
//! Stages: tools, lints, unit, in-process, fhir, wasm, schema, ts, e2e. A failing stage
//! ends the run with its command's exit status, as under `set -e`. At the end a table
//! gives each stage's time against its cold or warm budget (`budget.rs`); a stage over
//! 1.5x its budget fails the run. A stage is cold when its cache was empty at the start:
//! the tool cache (`xtask tools --check`), cargo's target dir (`debug/deps`,
//! `wasm32-unknown-unknown/wasm/deps`), the npm packages of tests/ts-client, a devnet not
//! yet deployed with these contracts.
//!
//! The e2e stage: a devnet.json of another schema than 2 (the old bash devnet) is stopped
//! and removed; a devnet whose contracts differ from artifacts/ is reset
//! (`scripts/devnet.sh reset`); a devnet that is not running is started and, being this
//! run's, stopped again at the end whatever happens (the trap of the bash script).

pub mod budget;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Result};

use crate::clock::fmt_duration;
use crate::sh::{self, log, Exit, Steps};
use budget::Ran;

#[derive(Debug, PartialEq, Eq)]
pub struct Opts {
    pub e2e: bool,
    pub enforce_budget: bool,
}

pub fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        e2e: true,
        enforce_budget: true,
    };
    for a in args {
        match a.as_str() {
            "--no-e2e" => o.e2e = false,
            "--no-budget" => o.enforce_budget = false,
            _ => bail!("unknown argument '{a}' (see --help)"),
        }
    }
    Ok(o)
}

/// The tool pieces the run needs: the devnet's (wasmd, Hermes) only with e2e.
pub fn tool_pieces(e2e: bool) -> Vec<&'static str> {
    use crate::tools::piece::Piece;
    Piece::ALL
        .into_iter()
        .filter(|p| e2e || !matches!(p, Piece::Wasmd | Piece::Hermes))
        .map(Piece::name)
        .collect()
}

/// The test targets with stages of their own, left out of `unit`.
const OWN_STAGE: &[&str] = &[
    "in_process",
    "e2e",
    "fhir_tools",
    "store_refuses_invalid_fhir",
];

/// A test target's name from its path under a `tests/` directory: `x.rs`, or `x/` with a
/// `main.rs`; None for anything else.
pub fn test_target(path: &Path, is_file: bool, has_main: bool) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with('.') {
        return None;
    }
    match name.strip_suffix(".rs") {
        Some(stem) if is_file => Some(stem.to_string()),
        _ if has_main => Some(name.to_string()),
        _ => None,
    }
}

/// `--test NAME` for every integration test target except those with a stage of their own.
fn unit_targets(root: &Path) -> Vec<String> {
    let mut dirs = Vec::new();
    for group in ["packages", "contracts"] {
        let mut pkgs: Vec<_> = fs::read_dir(root.join(group))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("tests"))
            .collect();
        pkgs.sort();
        dirs.extend(pkgs);
    }
    dirs.push(root.join("tests/tests"));
    let mut args = Vec::new();
    for dir in dirs {
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            if let Some(name) = test_target(&p, p.is_file(), p.join("main.rs").is_file()) {
                if !OWN_STAGE.contains(&name.as_str()) {
                    args.extend(["--test".to_string(), name]);
                }
            }
        }
    }
    args
}

/// The stages as they run, timed.
#[derive(Default)]
struct Stages {
    steps: Steps,
    ran: Vec<Ran>,
    open: bool,
}

impl Stages {
    fn start(&mut self, name: &str, cold: bool, what: &str) {
        self.end();
        self.ran.push(Ran {
            stage: name.into(),
            took: 0,
            cold,
        });
        self.open = true;
        self.steps.step(format!("{name}: {what}"));
    }

    fn end(&mut self) {
        if self.open {
            let secs = self.steps.done();
            if let Some(r) = self.ran.last_mut() {
                r.took = secs;
            }
            self.open = false;
        }
    }

    fn mark_cold(&mut self) {
        if let Some(r) = self.ran.last_mut() {
            r.cold = true;
        }
    }
}

fn cargo(args: &[&str]) -> Command {
    let mut c = Command::new("cargo");
    c.args(args);
    c
}

pub fn run(args: Vec<String>) -> Result<()> {
    let opts = parse(&args)?;
    let root = sh::repo();
    std::env::set_current_dir(&root)?;
    let mut devnet_started = false;
    let result = stages(&opts, &root, &mut devnet_started);
    if devnet_started {
        // The trap: a devnet this run started is stopped (its state stays).
        let _ = Command::new("scripts/devnet.sh")
            .arg("down")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    result
}

fn stages(opts: &Opts, root: &Path, devnet_started: &mut bool) -> Result<()> {
    let xtask = std::env::current_exe()?;
    let pieces = tool_pieces(opts.e2e);
    let tools_cold = !Command::new(&xtask)
        .arg("tools")
        .arg("--check")
        .args(&pieces)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let target = sh::target_dir();
    let build_cold = !target.join("debug/deps").is_dir();
    let wasm_cold = !target.join("wasm32-unknown-unknown/wasm/deps").is_dir();
    let ts_cold = !crate::ts_client::cached();

    let total_start = Instant::now();
    let mut st = Stages::default();
    st.start(
        "tools",
        tools_cold,
        &format!("install tools ({}; cached)", pieces.join(" ")),
    );
    sh::run(
        Command::new(&xtask)
            .arg("tools")
            .args(&pieces)
            .env("EHRX_INSTALL_CMD", "scripts/install-tools.sh"),
    )?;

    st.start(
        "lints",
        build_cold,
        "cargo fmt --check; cargo clippy --all-targets -- -D warnings",
    );
    sh::run(&mut cargo(&["fmt", "--all", "--", "--check"]))?;
    sh::run(&mut cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;

    // The unit stage runs every test target except the two-chain suites, which get stages
    // of their own. Every cargo command selects --workspace, so features resolve the same
    // way each time. (Selecting the contracts' lib target builds them as cdylib+rlib, as a
    // dependency only as rlib: cargo recompiles the two contracts and ehr-tests, a few
    // seconds, when the selection switches between stages.)
    let targets = unit_targets(root);
    st.start(
        "unit",
        build_cold,
        "unit tests of every package, and of the scripts",
    );
    sh::run(cargo(&["test", "--workspace", "--lib", "--bins"]).args(&targets))?;
    sh::run(&mut cargo(&["test", "--workspace", "--doc"]))?;

    st.start(
        "in-process",
        build_cold,
        "two-chain in-process tests (cw-multi-test + test relayer)",
    );
    sh::run(&mut cargo(&["test", "--workspace", "--test", "in_process"]))?;

    st.start("fhir", build_cold, "FHIR R4: the HL7 reference validator (HAPI) on the test histories, and ehrx store refusing what it refuses");
    sh::run(&mut cargo(&[
        "test",
        "--workspace",
        "--test",
        "fhir_tools",
        "--test",
        "store_refuses_invalid_fhir",
        "--",
        "--include-ignored",
    ]))?;

    st.start(
        "wasm",
        wasm_cold,
        "wasm build, bulk-memory lowering, cosmwasm-check",
    );
    crate::build_wasm::run(Vec::new())?;

    st.start("schema", build_cold, "schema freshness");
    crate::schema::run(vec!["--check".into()])?;

    st.start(
        "ts",
        ts_cold,
        "typed TypeScript client: ts-codegen from schema/, tsc --strict, usage.ts",
    );
    crate::ts_client::run(Vec::new())?;

    if opts.e2e {
        e2e(&mut st, root, devnet_started)?;
    }
    st.end();
    let total = total_start.elapsed().as_secs();
    let any_cold = st.ran.iter().any(|r| r.cold);
    st.ran.push(Ran {
        stage: "total".into(),
        took: total,
        cold: any_cold,
    });

    let factor = budget::factor(sh::env_set("EHRX_BUDGET_FACTOR").as_deref());
    let (table, failed) = budget::report(factor, opts.enforce_budget, budget::BUDGETS, &st.ran);
    eprint!("{table}");
    if failed {
        return Err(Exit(1).into());
    }
    log(format!("all checks passed in {}", fmt_duration(total)));
    Ok(())
}

/// Whether a devnet.json is of the schema ehrx-devnet writes (2); `jq -r '.schema // 0'`.
pub fn current_schema(json: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return false;
    };
    match v.get("schema") {
        Some(serde_json::Value::Number(n)) => n.as_f64() == Some(2.0),
        Some(serde_json::Value::String(s)) => s == "2",
        _ => false,
    }
}

/// The sha256 of a contract deployed on hospital-a, as devnet.json records it ("" when
/// it does not).
pub fn deployed_sha(json: &str, contract: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| {
            v.pointer(&format!("/chains/hospital-a/artifacts_sha256/{contract}"))
                .and_then(|s| s.as_str().map(str::to_string))
        })
        .unwrap_or_default()
}

fn e2e(st: &mut Stages, root: &Path, devnet_started: &mut bool) -> Result<()> {
    // The suite must test the contracts just built: a devnet deployed from other artifacts
    // is wiped and brought up again (a cold e2e stage).
    let json_path = sh::devnet_dir().join("devnet.json");
    st.start(
        "e2e",
        !json_path.is_file(),
        "end-to-end suite on the devnet (starts it if it is not up)",
    );
    // A devnet.json of another schema (scripts/devnet.sh in bash wrote 1; ehrx-devnet
    // writes 2, with the validators and relayer instances) is replaced.
    if json_path.is_file() && !current_schema(&fs::read_to_string(&json_path)?) {
        log("devnet was made by the older bash devnet.sh: stopping it and making it again");
        let old_dir = json_path.parent().unwrap_or(Path::new("."));
        let mut pid_files: Vec<_> = fs::read_dir(old_dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("wasmd.pid"))
            .collect();
        pid_files.sort();
        pid_files.push(old_dir.join("hermes/hermes.pid"));
        for f in pid_files {
            let pid = fs::read_to_string(&f)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            if let Some(pid) = pid {
                // SAFETY: kill with a pid from the devnet's own pid file.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        crate::tools::sys::rm_rf(old_dir)?;
        st.mark_cold();
    }
    if json_path.is_file() {
        let json = fs::read_to_string(&json_path)?;
        for contract in ["registry", "exchange"] {
            let built = sh::sha256_file(&root.join(format!("artifacts/{contract}.wasm")))?;
            if deployed_sha(&json, contract) != built {
                log(format!(
                    "devnet runs an older {contract}.wasm: resetting it"
                ));
                sh::run(Command::new("scripts/devnet.sh").arg("reset"))?;
                st.mark_cold();
                break;
            }
        }
    }
    // A devnet this run starts is stopped again at the end (its state stays for a warm
    // restart next time); one that was already running is left running.
    let up = Command::new("scripts/devnet.sh")
        .arg("status")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !up {
        *devnet_started = true;
        sh::run(Command::new("scripts/devnet.sh").arg("up"))?;
    }
    sh::run(&mut cargo(&[
        "test",
        "--workspace",
        "--test",
        "e2e",
        "--",
        "--ignored",
        "--test-threads=1",
    ]))?;
    // The membership tests of the devnet tool, each on a chain of its own (own ports): a
    // stranger's node refused by the P2P allowlist, and the admin procedure that adds one
    // of the hospital's own validators under the staking lock.
    sh::run(&mut cargo(&[
        "test",
        "-p",
        "ehrx-devnet",
        "--test",
        "p2p",
        "--test",
        "add_validator",
        "--",
        "--ignored",
        "--test-threads=1",
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sh::args;

    #[test]
    fn flags_and_unknown_arguments() {
        assert_eq!(
            parse(&args(&[])).unwrap(),
            Opts {
                e2e: true,
                enforce_budget: true
            }
        );
        assert_eq!(
            parse(&args(&["--no-budget", "--no-e2e"])).unwrap(),
            Opts {
                e2e: false,
                enforce_budget: false
            }
        );
        let e = parse(&args(&["--no-e2e", "--fast"])).unwrap_err();
        assert_eq!(e.to_string(), "unknown argument '--fast' (see --help)");
    }

    #[test]
    fn without_e2e_no_devnet_tools() {
        assert_eq!(tool_pieces(true).len(), 8);
        assert_eq!(
            tool_pieces(false),
            [
                "apt",
                "rust-target",
                "cosmwasm-check",
                "wasm-opt",
                "fhir-validator",
                "synthea"
            ]
        );
    }

    #[test]
    fn test_targets_are_rs_files_or_directories_with_a_main() {
        let t = |p: &str, f, m| test_target(Path::new(p), f, m);
        assert_eq!(t("tests/tests/e2e.rs", true, false).as_deref(), Some("e2e"));
        assert_eq!(
            t("tests/tests/suite", false, true).as_deref(),
            Some("suite")
        );
        assert_eq!(t("tests/tests/common", false, false), None);
        assert_eq!(t("tests/tests/data.json", true, false), None);
        assert_eq!(t("tests/tests/.x.rs", true, false), None);
    }

    #[test]
    fn the_unit_stage_leaves_out_the_suites_with_their_own_stage() {
        let root = sh::repo();
        let t = unit_targets(&root);
        assert!(t.contains(&"scripts".to_string()), "{t:?}");
        for own in OWN_STAGE {
            assert!(!t.contains(&own.to_string()), "{own} in {t:?}");
        }
    }

    #[test]
    fn a_devnet_of_another_schema_is_replaced() {
        assert!(current_schema(r#"{"schema": 2, "chains": {}}"#));
        assert!(!current_schema(r#"{"schema": 1}"#));
        assert!(!current_schema(r#"{"chains": {}}"#));
        assert!(!current_schema("not json"));
    }

    #[test]
    fn the_deployed_contracts_are_read_from_hospital_a() {
        let j = r#"{"chains": {"hospital-a": {"artifacts_sha256": {"registry": "ab"}}}}"#;
        assert_eq!(deployed_sha(j, "registry"), "ab");
        assert_eq!(deployed_sha(j, "exchange"), "");
        assert_eq!(deployed_sha("{}", "registry"), "");
    }
}
