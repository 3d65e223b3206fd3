//! `ehrx clinician` as a process: the message on stdout, notes on stderr, and a key file
//! protected by a code (given through `$EHRX_CLINICIAN_CODE`, or asked on the terminal).

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn ehrx(key_dir: &Path, code: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ehrx"));
    cmd.arg("--key-dir")
        .arg(key_dir)
        .arg("clinician")
        .args(args)
        .current_dir(key_dir.parent().unwrap())
        .env_remove("EHRX_CONFIG")
        .env_remove("EHRX_CLINICIAN_CODE")
        .stdin(Stdio::null());
    if let Some(code) = code {
        cmd.env("EHRX_CLINICIAN_CODE", code);
    }
    cmd.output().expect("run ehrx")
}

fn message(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is the RegisterClinician message alone")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn new_prints_the_message_on_stdout_and_show_repeats_it() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    let created = ehrx(
        &keys,
        None,
        &["new", "--id", "dr-adams", "--purpose", "treatment"],
    );
    let msg = message(&created);
    let clinician = &msg["register_clinician"]["clinician"];
    assert_eq!(clinician["clinician_id"], "dr-adams");
    let notes = stderr(&created);
    assert!(
        notes.contains("keys/clinicians/dr-adams.key (mode 0600"),
        "{notes}"
    );
    assert!(
        notes.contains(clinician["signing_key"].as_str().unwrap()),
        "{notes}"
    );
    let shown = message(&ehrx(&keys, None, &["show", "--id", "dr-adams"]));
    assert_eq!(shown, msg);
    let again = ehrx(&keys, None, &["new", "--id", "dr-adams"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn a_protected_key_needs_its_code_for_every_use() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    let code = "correct horse battery";
    let short = ehrx(&keys, Some("short"), &["new", "--id", "dr-b", "--protect"]);
    assert!(!short.status.success());
    assert!(stderr(&short).contains("at least 8 characters"));
    assert!(!keys.join("clinicians/dr-b.key").exists());

    let msg = message(&ehrx(
        &keys,
        Some(code),
        &["new", "--id", "dr-b", "--protect"],
    ));
    let file = std::fs::read(keys.join("clinicians/dr-b.key")).unwrap();
    assert_eq!(file.len(), 84, "magic, salt, nonce, sealed key and tag");
    assert_eq!(
        message(&ehrx(&keys, Some(code), &["show", "--id", "dr-b"])),
        msg
    );
    let wrong = ehrx(
        &keys,
        Some("wrong horse battery"),
        &["show", "--id", "dr-b"],
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).contains("the code does not open the key of clinician dr-b"),
        "{}",
        stderr(&wrong)
    );
    // Without the variable and without a terminal (a new session has none), ehrx says how
    // to give the code instead of hanging.
    if Path::new("/usr/bin/setsid").exists() {
        let out = Command::new("/usr/bin/setsid")
            .arg("--wait")
            .arg(env!("CARGO_BIN_EXE_ehrx"))
            .arg("--key-dir")
            .arg(&keys)
            .args(["clinician", "show", "--id", "dr-b"])
            .env_remove("EHRX_CLINICIAN_CODE")
            .env_remove("EHRX_CONFIG")
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("set EHRX_CLINICIAN_CODE"),
            "{}",
            stderr(&out)
        );
    }
    // Rotation opens the current key with the code and protects the new one.
    let rotated = message(&ehrx(
        &keys,
        Some(code),
        &["rotate", "--id", "dr-b", "--protect"],
    ));
    assert_ne!(
        rotated["register_clinician"]["clinician"]["signing_key"],
        msg["register_clinician"]["clinician"]["signing_key"]
    );
    assert_eq!(
        std::fs::read(keys.join("clinicians/dr-b.key.old")).unwrap(),
        file
    );
    assert_eq!(
        message(&ehrx(&keys, Some(code), &["show", "--id", "dr-b"])),
        rotated
    );
}
