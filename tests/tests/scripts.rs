//! The project's shell entry points, tested as a user runs them: every script answers
//! `--help` with its usage and does nothing else (no tool, no chain, no build, no file
//! written), and the test command's time budget fails a stage that grows past 1.5x.
//!
//! Run by `scripts/test.sh` in its `unit` stage.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The scripts a user runs, and the libraries (which answer `--help` too).
fn scripts() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(repo().join("scripts"))
        .expect("read scripts/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .collect();
    out.push(repo().join("scripts/devnet/helpers.sh"));
    out.sort();
    assert!(
        out.len() >= 9,
        "expected the project's scripts, found {out:?}"
    );
    out
}

/// Commands that would mean a script did real work. Each stub records its call and fails.
const STUBBED: &[&str] = &[
    "cargo",
    "rustup",
    "rustc",
    "go",
    "npm",
    "node",
    "wasmd",
    "hermes",
    "ehrx",
    "cosmwasm-check",
    "wasm-opt",
    "apt-get",
    "sudo",
    "curl",
];

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let stubs = dir.path().join("stubs");
        fs::create_dir_all(&stubs).expect("mkdir stubs");
        fs::create_dir_all(dir.path().join("home")).expect("mkdir home");
        for name in STUBBED {
            let path = stubs.join(name);
            let log = dir.path().join("called");
            fs::write(
                &path,
                format!(
                    "#!/bin/sh\necho \"{name} $*\" >>'{}'\nexit 97\n",
                    log.display()
                ),
            )
            .expect("write stub");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod stub");
        }
        Sandbox { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `bash SCRIPT ARGS` with only the stubs and the system's base tools on PATH and every
    /// cache and state directory pointed into the sandbox.
    fn run(&self, script: &Path, args: &[&str]) -> Output {
        Command::new("/bin/bash")
            .arg(script)
            .args(args)
            .current_dir(repo())
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.path("stubs").display()),
            )
            .env("HOME", self.path("home"))
            .env("EHRX_TOOLS", self.path("home/tools"))
            .env("EHRX_DEVNET_DIR", self.path("home/devnet"))
            .env("EHRX_DEMO_DIR", self.path("home/demo"))
            .env("CARGO_TARGET_DIR", self.path("home/target"))
            .output()
            .expect("run bash")
    }

    fn calls(&self) -> String {
        fs::read_to_string(self.path("called")).unwrap_or_default()
    }

    fn home_entries(&self) -> Vec<String> {
        fs::read_dir(self.path("home"))
            .expect("read home")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    }
}

/// The first line of a script's header comment (after the shebang and shellcheck lines).
fn header_first_line(script: &Path) -> String {
    fs::read_to_string(script)
        .expect("read script")
        .lines()
        .skip(1)
        .find(|l| l.starts_with('#') && !l.starts_with("# shellcheck"))
        .map(|l| l.trim_start_matches('#').trim().to_string())
        .expect("script has a header comment")
}

#[test]
fn every_script_answers_help_with_its_usage_and_does_nothing_else() {
    for script in scripts() {
        for flag in ["--help", "-h"] {
            let sandbox = Sandbox::new();
            let out = sandbox.run(&script, &[flag]);
            let name = script.strip_prefix(repo()).unwrap_or(&script).display();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{name} {flag} exited {:?}; stderr: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                stdout.lines().next().map(str::trim),
                Some(header_first_line(&script).as_str()),
                "{name} {flag} must print its usage first; got:\n{stdout}"
            );
            assert_eq!(sandbox.calls(), "", "{name} {flag} ran tools");
            assert!(
                sandbox.home_entries().is_empty(),
                "{name} {flag} wrote {:?} under HOME",
                sandbox.home_entries()
            );
        }
    }
}

#[test]
fn help_wins_over_other_arguments() {
    let sandbox = Sandbox::new();
    let out = sandbox.run(
        &repo().join("scripts/install-tools.sh"),
        &["hermes", "--help"],
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("scripts/install-tools.sh"));
    assert_eq!(sandbox.calls(), "");
    assert!(sandbox.home_entries().is_empty());
}

#[test]
fn the_sandbox_does_catch_a_script_that_does_work() {
    // Self-check of the test above: without --help, install-tools.sh reaches for its tools
    // (first cargo, which builds the installer, packages/xtask), and the sandbox sees it.
    let sandbox = Sandbox::new();
    let out = sandbox.run(&repo().join("scripts/install-tools.sh"), &["wasm-opt"]);
    assert!(!out.status.success(), "cargo is a failing stub here");
    assert!(
        sandbox.calls().contains("cargo build -q -p xtask"),
        "calls: {}",
        sandbox.calls()
    );
}

/// Runs `budget_report` of scripts/lib.sh on one stage that took `took` seconds against a
/// warm budget of 100 s.
fn budget(took: u32, factor: &str, enforce: bool) -> Output {
    let sandbox = Sandbox::new();
    let lib = repo().join("scripts/lib.sh");
    let script = format!(
        "source '{}' && B=('unit 100 1000' 'total 100 1000') && \
         declare -A T=([unit]={took} [total]={took}) C=([unit]=0 [total]=0) && \
         budget_report {factor} {} B T C unit total",
        lib.display(),
        u8::from(enforce)
    );
    let path = sandbox.path("budget.sh");
    fs::write(&path, script).expect("write");
    sandbox.run(&path, &[])
}

#[test]
fn a_stage_within_its_budget_passes() {
    let out = budget(100, "1", true);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ok"));
}

#[test]
fn a_stage_over_its_budget_but_within_half_again_passes_with_a_note() {
    let out = budget(150, "1", true);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("over budget (within 1.5x)"));
}

#[test]
fn a_stage_over_one_and_a_half_times_its_budget_fails_naming_stage_and_fix() {
    let out = budget(151, "1", true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must fail: {stderr}");
    assert!(
        stderr.contains("unit took 2m31s, more than 1.5x its warm budget of 1m40s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("raise its budget in scripts/test.sh"),
        "{stderr}"
    );
}

#[test]
fn the_budget_factor_scales_and_no_budget_only_reports() {
    assert!(budget(151, "2", true).status.success());
    let out = budget(151, "1", false);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("OVER 1.5x BUDGET"));
}
