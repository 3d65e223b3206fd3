//! The project's shell entry points, tested as a user runs them: every script answers
//! `--help` with its usage and does nothing else (no tool, no chain, no build, no file
//! written), and the scripts whose logic is packages/xtask build it and hand over to it.
//! (The time budget of `xtask test`, which fails a stage that grows past 1.5x, is tested
//! by xtask's unit tests: packages/xtask/src/test/budget.rs.)
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

/// The scripts that are thin entry points of `xtask SUBCOMMAND`.
const XTASK_SCRIPTS: &[(&str, &str)] = &[
    ("install-tools.sh", "tools"),
    ("test.sh", "test"),
    ("build-wasm.sh", "build-wasm"),
    ("schema.sh", "schema"),
    ("ts-client.sh", "ts-client"),
    ("fhir-r4-table.sh", "fhir-r4-table"),
    ("gen-histories.sh", "gen-histories"),
    ("cold-rehearsal.sh", "cold-rehearsal"),
];

#[test]
fn the_ported_scripts_build_xtask_and_run_their_subcommand() {
    for (script, sub) in XTASK_SCRIPTS {
        let path = repo().join("scripts").join(script);
        let text = fs::read_to_string(&path).expect("read script");
        assert!(
            text.contains(&format!("xtask_exec {sub} \"$@\"")),
            "{script} must hand over to `xtask {sub}`"
        );
        // Without --help, the first thing it runs is the build of xtask (a failing stub
        // here, so the script stops with the build's error and runs nothing else).
        let sandbox = Sandbox::new();
        let out = sandbox.run(&path, &["--no-such-flag"]);
        assert!(
            !out.status.success(),
            "{script}: cargo is a failing stub here"
        );
        assert_eq!(
            sandbox.calls().lines().collect::<Vec<_>>(),
            [format!(
                "cargo build -q -p xtask --target-dir {}/xtask --manifest-path {}/Cargo.toml",
                sandbox.path("home/target").display(),
                repo().display()
            )],
            "{script}"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("building packages/xtask failed"),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
