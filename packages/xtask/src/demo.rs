//! `xtask demo`: the README's main job (what `scripts/demo.sh` runs). It installs what is
//! missing (`scripts/install-tools.sh`), brings up the two-hospital devnet
//! (`scripts/devnet.sh up`) and walks through the paper's scenario with the `ehrx` peer
//! tool, run as a child process for every peer and admin action, as a user runs it:
//!
//! 1. hospital-b stores a patient's record (`ehrx store`);
//! 2. a clinician at hospital-a gets her own key (`ehrx clinician new`), which the
//!    hospital's admin registers (`ehrx admin register-clinician`, from the message ehrx
//!    printed), and hospital-b's reply service starts (`ehrx reply-service`);
//! 3. she asks hospital-b for the patient's history (`ehrx request`);
//! 4. the paper's attacks, each refused with its reason code;
//! 5. the audit trail (`ehrx audit export`).
//!
//! With `--bundle FILE --out FILE [--demographics FILE]` it runs steps 1-3 on a history the
//! user brings. The devnet is described by `devnet.json` in `$EHRX_DEVNET_DIR` (default
//! `~/.cache/ehrx-devnet`); the demo's files go to `$EHRX_DEMO_DIR` (default
//! `~/.cache/ehrx-demo`). Exit status: 0 done; 1 when a step's check fails (the reason on
//! stderr); a failed command's own status when a tool the demo runs fails.

use std::collections::hash_map::RandomState;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{anyhow, Context};
use clap::Args;
use serde_json::Value;

use crate::clock::{clock, fmt_duration};

const A: &str = "hospital-a";
const B: &str = "hospital-b";

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct DemoArgs {
    /// `--bundle FILE [--demographics FILE] --out FILE` (see scripts/demo.sh --help)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// How the demo ends early: a check of its own failed (`die` of the old script: the
/// message, exit 1), or a command it ran failed (its exit status).
#[derive(Debug)]
enum Fail {
    Die(String),
    Exit { msg: String, code: u8 },
}

type Res<T> = Result<T, Fail>;

fn die<T>(msg: impl Into<String>) -> Res<T> {
    Err(Fail::Die(msg.into()))
}

impl From<anyhow::Error> for Fail {
    fn from(e: anyhow::Error) -> Fail {
        Fail::Die(format!("{e:#}"))
    }
}

pub fn run(args: DemoArgs) -> ExitCode {
    let started = Instant::now();
    let result = parse_args(&args.args).and_then(|opts| demo(&opts, started));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::Die(msg)) => {
            eprintln!("\n[{}] ERROR: {msg}", clock());
            ExitCode::from(1)
        }
        Err(Fail::Exit { msg, code }) => {
            eprintln!("\n[{}] ERROR: {msg}", clock());
            ExitCode::from(code)
        }
    }
}

/// `--bundle FILE --out FILE [--demographics FILE]`, paths made absolute (the demo runs in
/// the repository).
#[derive(Debug, Default, PartialEq)]
struct Opts {
    user: Option<UserRun>,
}

#[derive(Debug, PartialEq)]
struct UserRun {
    bundle: PathBuf,
    demographics: Option<PathBuf>,
    out: PathBuf,
}

fn parse_args(args: &[String]) -> Res<Opts> {
    let (mut bundle, mut demographics, mut out) = (None, None, None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let slot = match arg.as_str() {
            "--bundle" => &mut bundle,
            "--demographics" => &mut demographics,
            "--out" => &mut out,
            _ => {
                return die(format!(
                    "unknown argument '{arg}' (see scripts/demo.sh --help)"
                ))
            }
        };
        match it.next().filter(|v| !v.is_empty()) {
            Some(v) => *slot = Some(PathBuf::from(v)),
            None => return die(format!("{arg} needs a file")),
        }
    }
    if bundle.is_none() && demographics.is_none() && out.is_none() {
        return Ok(Opts::default());
    }
    let (Some(bundle), Some(out)) = (bundle, out) else {
        return die("--bundle FILE and --out FILE go together (--demographics FILE is optional)");
    };
    if !bundle.is_file() {
        return die(format!("--bundle {}: no such file", bundle.display()));
    }
    if let Some(d) = &demographics {
        if !d.is_file() {
            return die(format!("--demographics {}: no such file", d.display()));
        }
    }
    let real = |p: &Path| {
        p.canonicalize()
            .with_context(|| format!("{}: cannot resolve", p.display()))
    };
    Ok(Opts {
        user: Some(UserRun {
            bundle: real(&bundle)?,
            demographics: demographics.as_deref().map(real).transpose()?,
            out: std::path::absolute(&out)
                .with_context(|| format!("--out {}: cannot resolve", out.display()))?,
        }),
    })
}

/// `${NAME:-}` non-empty.
fn env_set(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
}

// ---------------------------------------------------------------------------------------
// devnet.json

/// What the demo reads from the devnet's `devnet.json`.
#[derive(Debug)]
struct Devnet {
    path: PathBuf,
    json: Value,
}

impl Devnet {
    fn dir() -> PathBuf {
        env_set("EHRX_DEVNET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| home().join(".cache/ehrx-devnet"))
    }

    fn load(dir: &Path) -> Res<Devnet> {
        let path = dir.join("devnet.json");
        let Ok(text) = fs::read_to_string(&path) else {
            return die(format!(
                "no {}: is the devnet up? (scripts/devnet.sh up)",
                path.display()
            ));
        };
        let json = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        Ok(Devnet { path, json })
    }

    fn chain(&self, chain: &str) -> Res<&Value> {
        match self.json.get("chains").and_then(|c| c.get(chain)) {
            Some(c) if c.is_object() => Ok(c),
            _ => die(format!(
                "{} describes no chain {chain}",
                self.path.display()
            )),
        }
    }

    /// A string at `chains.CHAIN.<path...>`.
    fn str(&self, chain: &str, path: &[&str]) -> Res<String> {
        let mut v = self.chain(chain)?;
        for key in path {
            v = v.get(*key).unwrap_or(&Value::Null);
        }
        match v.as_str() {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            _ => die(format!(
                "{}: no chains.{chain}.{}",
                self.path.display(),
                path.join(".")
            )),
        }
    }

    fn home(&self, chain: &str) -> Res<String> {
        self.str(chain, &["home"])
    }

    fn contract(&self, chain: &str, name: &str) -> Res<String> {
        self.str(chain, &["contracts", name])
    }

    fn key_addr(&self, chain: &str, key: &str) -> Res<String> {
        self.str(chain, &["keys", key])
            .or_else(|_| die(format!("no account {key} on {chain}")))
    }

    /// The chain's nodes for ehrx: every validator's RPC, comma-separated (the peer tool
    /// fails over between them); the first validator's when `rpcs` is missing.
    fn nodes(&self, chain: &str) -> Res<String> {
        let rpcs: Vec<&str> = self
            .chain(chain)?
            .get("rpcs")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if rpcs.is_empty() {
            self.str(chain, &["rpc"])
        } else {
            Ok(rpcs.join(","))
        }
    }

    fn fee_denom(&self) -> Res<String> {
        match self.json.get("fee_denom").and_then(Value::as_str) {
            Some(d) => Ok(d.to_string()),
            None => die(format!("{}: no fee_denom", self.path.display())),
        }
    }

    /// The devnet's own clinician on CHAIN: its id and key file, when devnet.json names
    /// one whose key file exists.
    fn clinician(&self, chain: &str) -> Option<(String, PathBuf)> {
        let c = self.chain(chain).ok()?.get("clinician")?;
        let id = c.get("id")?.as_str().filter(|s| !s.is_empty())?;
        let key = PathBuf::from(c.get("key_file")?.as_str()?);
        key.is_file().then(|| (id.to_string(), key))
    }

    /// The hospital's custodian keys (records key dir, records key, pseudonym key file).
    fn custodian(&self, chain: &str) -> Res<Custodian> {
        let have = |k: &str| self.str(chain, &["custodian", k]).ok();
        match (
            have("pseudonym_key_file"),
            have("records_key_dir"),
            have("records_key"),
        ) {
            (Some(pseudonym_key_file), Some(records_key_dir), Some(records_key)) => Ok(Custodian {
                pseudonym_key_file,
                records_key_dir,
                records_key,
            }),
            _ => die(format!(
                "devnet.json has no custodian keys for {chain} (a devnet from before sealed \
                 patient details): scripts/devnet.sh reset, then run the demo again"
            )),
        }
    }
}

#[derive(Debug, PartialEq)]
struct Custodian {
    pseudonym_key_file: String,
    records_key_dir: String,
    records_key: String,
}

// ---------------------------------------------------------------------------------------
// Output, as the old script printed it

fn say(msg: &str) {
    println!("\n\x1b[1m{msg}\x1b[0m");
}

fn ok(msg: &str) {
    println!("   \x1b[32mOK\x1b[0m {msg}");
}

fn refused(msg: &str) {
    println!("   \x1b[33mREFUSED\x1b[0m {msg}");
}

fn warn(msg: &str) {
    eprintln!("[{}] WARNING: {msg}", clock());
}

/// The `step` / `step_done` headers of scripts/lib.sh (stderr).
#[derive(Default)]
struct Steps {
    current: Option<(String, Instant)>,
}

impl Steps {
    fn step(&mut self, name: &str) {
        self.done();
        eprintln!("\n==> [{}] {name}", clock());
        self.current = Some((name.to_string(), Instant::now()));
    }

    fn done(&mut self) {
        if let Some((name, start)) = self.current.take() {
            eprintln!(
                "<== [{}] {name}: took {}",
                clock(),
                fmt_duration(start.elapsed().as_secs())
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running commands

/// Runs `cmd` with its output shown; a failure is the demo's (with its status).
fn run_shown(cmd: &mut Command, what: &str) -> Res<()> {
    let status = cmd.status().with_context(|| format!("cannot run {what}"))?;
    check(status.code(), what)
}

fn check(code: Option<i32>, what: &str) -> Res<()> {
    match code {
        Some(0) => Ok(()),
        code => exit_with(code, format!("{what} failed (exit {})", code.unwrap_or(1))),
    }
}

/// Ends the demo with a command's exit status (1 when it was killed) and a message.
fn exit_with<T>(code: Option<i32>, msg: String) -> Res<T> {
    Err(Fail::Exit {
        msg,
        code: code
            .and_then(|c| u8::try_from(c).ok())
            .filter(|c| *c != 0)
            .unwrap_or(1),
    })
}

/// Runs `cmd` and returns its stdout (stderr shown); a failure is the demo's.
fn run_stdout(cmd: &mut Command, what: &str) -> Res<String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    check(out.status.code(), what)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` with stdout and stderr into one pipe (`2>&1`), shown as they come when
/// `tee` is set; returns the exit code (`None`: killed) and everything it printed.
fn run_merged(cmd: &mut Command, tee: bool) -> anyhow::Result<(Option<i32>, String)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two new file descriptors into `fds`, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe");
    }
    // SAFETY: both descriptors are fresh and owned by nothing else.
    let (mut reader, writer) = unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let child = {
        let err = writer.try_clone().context("dup")?;
        cmd.stdout(Stdio::from(writer))
            .stderr(Stdio::from(err))
            .stdin(Stdio::null());
        let child = cmd.spawn();
        // The command holds the write ends; drop them so that the reader sees EOF.
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        child
    };
    let mut child = child.context("cannot start ehrx")?;
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading ehrx's output"),
        };
        if tee {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&buf[..n]);
            let _ = out.flush();
        }
        all.extend_from_slice(&buf[..n]);
    }
    let status = child.wait().context("waiting for ehrx")?;
    Ok((status.code(), String::from_utf8_lossy(&all).into_owned()))
}

/// The `ehrx` binary, and the clinician's code it is given while the demo "types" it.
struct Ehrx {
    bin: PathBuf,
    clinician_code: Option<String>,
}

impl Ehrx {
    /// `ehrx ARGS` in the repository (an ehrx.toml given with --config).
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        match &self.clinician_code {
            Some(code) => c.env("EHRX_CLINICIAN_CODE", code),
            None => c.env_remove("EHRX_CLINICIAN_CODE"),
        };
        c
    }

    /// `ehrx --config DIR/ehrx.toml ARGS`.
    fn site(&self, dir: &Path) -> Command {
        let mut c = self.cmd();
        c.arg("--config").arg(dir.join("ehrx.toml"));
        c
    }

    /// `ehrx admin ARGS` on CHAIN, signed by its `admin` account, run in the chain's home
    /// so that no ehrx.toml of the caller's directory applies.
    fn admin(&self, dn: &Devnet, chain: &str, args: &[&str]) -> Res<Command> {
        let home = dn.home(chain)?;
        let mut c = self.cmd();
        c.current_dir(&home)
            .arg("--node")
            .arg(dn.nodes(chain)?)
            .args(["--chain-id", chain, "--wasmd-home", &home])
            .args(["--keyring-backend", "test", "--key-name", "admin"])
            .arg("--gas-prices")
            .arg(format!("0{}", dn.fee_denom()?))
            .arg("admin")
            .args(args);
        Ok(c)
    }
}

/// The ehrx binary: `$EHRX_BIN`, else `cargo build -q --release -p ehrx` (nothing to do when
/// up to date) and its path in the target directory.
fn ehrx_bin(repo: &Path) -> Res<PathBuf> {
    if let Some(bin) = env_set("EHRX_BIN") {
        let p = PathBuf::from(&bin);
        let exec =
            fs::metadata(&p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if !exec {
            return die(format!("EHRX_BIN={bin} is not an executable file"));
        }
        return Ok(p);
    }
    let status = Command::new("cargo")
        .args(["build", "-q", "-p", "ehrx", "--release"])
        .current_dir(repo)
        .stdout(std::io::stderr())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        return die("cargo build --release -p ehrx failed");
    }
    let target = env_set("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"));
    Ok(target.join("release/ehrx"))
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The JSON object `ehrx keys init` prints after its text (from the first line that starts
/// with `{`).
fn keys_json(shown: &str) -> Res<Value> {
    let start = shown
        .lines()
        .position(|l| l.starts_with('{'))
        .ok_or_else(|| anyhow!("ehrx keys init printed no registry fields"))?;
    let text: Vec<&str> = shown.lines().skip(start).collect();
    Ok(serde_json::from_str(&text.join("\n")).context("ehrx keys init: registry fields")?)
}

/// A JSON value as `jq -r` prints it.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Reading ehrx's messages (the old script's grep -o)

/// The last line of `out` (`tail -n 1` of a `$(...)`).
fn last_line(out: &str) -> String {
    out.trim_end_matches('\n')
        .lines()
        .last()
        .unwrap_or("")
        .to_string()
}

/// `grep -m1 -oE 'PREFIX[^STOPS]*'` with PREFIX one of `prefixes`: the first match in the
/// first line that has one.
fn grep_until(out: &str, prefixes: &[&str], stops: &[char]) -> Option<String> {
    out.lines().find_map(|line| {
        let at = prefixes.iter().filter_map(|p| line.find(p)).min()?;
        let rest = &line[at..];
        let skip = prefixes
            .iter()
            .find(|p| rest.starts_with(**p))
            .map_or(0, |p| p.len());
        let end = rest[skip..].find(stops).map_or(rest.len(), |i| i + skip);
        Some(rest[..end].to_string())
    })
}

/// `grep -m1 -oE 'the key in .* is not the one registered for clinician ID[^(]*\([^)]*\)'`.
fn grep_wrong_key(out: &str, id: &str) -> Option<String> {
    let head = "the key in ";
    let tail = format!(" is not the one registered for clinician {id}");
    out.lines().find_map(|line| {
        let start = line.find(head)?;
        // `.*` is greedy: the last `tail` after which the parenthesis closes.
        let mut cands: Vec<usize> = line[start + head.len()..]
            .match_indices(&tail)
            .map(|(i, _)| i + start + head.len())
            .collect();
        cands.reverse();
        cands.into_iter().find_map(|at| {
            let after = &line[at + tail.len()..];
            let open = after.find('(')?;
            let close = after[open..].find(')')? + open;
            Some(line[start..at + tail.len() + close + 1].to_string())
        })
    })
}

/// The request id in `request <id> sent` (16 to 64 of `[0-9a-f-]`).
fn request_id(out: &str) -> Option<String> {
    out.match_indices("request ").find_map(|(i, m)| {
        let rest = &out[i + m.len()..];
        let len = rest
            .find(|c: char| !(c.is_ascii_digit() || ('a'..='f').contains(&c) || c == '-'))
            .unwrap_or(rest.len());
        ((16..=64).contains(&len) && rest[len..].starts_with(" sent"))
            .then(|| rest[..len].to_string())
    })
}

// ---------------------------------------------------------------------------------------
// The demo

/// The reply service, stopped when the demo ends (however it ends).
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh code for the clinician's key (`demo-code-$RANDOM-$RANDOM`).
fn demo_code() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let n = h.finish();
    format!("demo-code-{}-{}", n % 32768, (n >> 16) % 32768)
}

const BUNDLE: &str = r#"{"resourceType": "Bundle", "type": "collection", "entry": [
  {"fullUrl": "urn:uuid:9c4e1b7a-2f6d-4a83-b5e0-7d1c3f8a2e01",
   "resource": {"resourceType": "Patient", "id": "p1",
    "name": [{"given": ["Amara"], "family": "Okafor"}], "birthDate": "1979-06-21"}},
  {"fullUrl": "urn:uuid:9c4e1b7a-2f6d-4a83-b5e0-7d1c3f8a2e02",
   "resource": {"resourceType": "Condition", "id": "c1",
    "code": {"text": "Type 2 diabetes mellitus"},
    "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
    "subject": {"reference": "urn:uuid:9c4e1b7a-2f6d-4a83-b5e0-7d1c3f8a2e01"}}},
  {"fullUrl": "urn:uuid:9c4e1b7a-2f6d-4a83-b5e0-7d1c3f8a2e03",
   "resource": {"resourceType": "MedicationStatement", "id": "m1", "status": "active",
    "medicationCodeableConcept": {"text": "Metformin 500 mg"},
    "subject": {"reference": "urn:uuid:9c4e1b7a-2f6d-4a83-b5e0-7d1c3f8a2e01"}}}
]}
"#;
const B_PATIENT: &str =
    r#"{"given":"Amara","family":"Okafor","birth_date":"1979-06-21","ssn":"212-45-6701"}"#;
const A_PATIENT: &str =
    r#"{"given":"AMARA","family":"okafor","birth_date":"06/21/1979","ssn":"212456701"}"#;

struct Ctx {
    dn: Devnet,
    ehrx: Ehrx,
    demo: PathBuf,
}

impl Ctx {
    /// A peer on a devnet account: `ehrx keys init` and an ehrx.toml in DEMO/NAME, and,
    /// unless `roles` is `none`, registered by the chain's admin with `roles`. The
    /// hospital's records (custodian) key and pseudonym key are the devnet's.
    fn site(&self, name: &str, chain: &str, key: &str, roles: &str) -> Res<PathBuf> {
        let dir = self.demo.join(name);
        let custodian = self.dn.custodian(chain)?;
        fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        let shown = run_stdout(
            self.ehrx
                .cmd()
                .args(["keys", "init", "--key-dir"])
                .arg(dir.join("keys")),
            "ehrx keys init",
        )?;
        let keys = keys_json(&shown)?;
        let config = format!(
            "node = {}\nchain_id = {}\nexchange = {}\nwasmd_home = {}\nkey_name = {}\n\
             key_dir = \"keys\"\npseudonym_key_file = {}\nrecords_key_dir = {}\n\
             records_key = {}\nstate_file = \"reply-state.json\"\npoll_interval_secs = 1\n",
            toml_str(&self.dn.nodes(chain)?),
            toml_str(chain),
            toml_str(&self.dn.contract(chain, "exchange")?),
            toml_str(&self.dn.home(chain)?),
            toml_str(key),
            toml_str(&custodian.pseudonym_key_file),
            toml_str(&custodian.records_key_dir),
            toml_str(&custodian.records_key),
        );
        fs::write(dir.join("ehrx.toml"), config).context("writing ehrx.toml")?;
        if roles != "none" {
            let registry = self.dn.contract(chain, "registry")?;
            let address = self.dn.key_addr(chain, key)?;
            let sk = plain(&keys["signing_key"]);
            let ek = plain(&keys["encryption_key"]);
            let args = [
                "register-peer",
                "--registry",
                &registry,
                "--address",
                &address,
                "--roles",
                roles,
                "--signing-key",
                &sk,
                "--encryption-key",
                &ek,
                "--device-id",
                name,
            ];
            run_stdout(
                &mut self.ehrx.admin(&self.dn, chain, &args)?,
                "ehrx admin register-peer",
            )?;
        }
        Ok(dir)
    }

    fn reply_service(&self) -> Res<Service> {
        let log_path = self.demo.join("reply-service.log");
        let log = File::create(&log_path).context("reply-service.log")?;
        let err = log.try_clone().context("reply-service.log")?;
        let mut cmd = self.ehrx.site(&self.demo.join("b-reply-service"));
        cmd.arg("reply-service")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        // SAFETY: prctl is async-signal-safe. The service gets SIGTERM when the demo dies
        // without running its Drop (a signal), as the script's EXIT trap stopped it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn().context("cannot start ehrx reply-service")?;
        Ok(Service(child))
    }
}

fn demo(opts: &Opts, started: Instant) -> Res<()> {
    let repo = env_set("EHRX_REPO_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")));
    std::env::set_current_dir(&repo).with_context(|| format!("cd {}", repo.display()))?;
    let demo = env_set("EHRX_DEMO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache/ehrx-demo"));
    let mut steps = Steps::default();

    steps.step("tools (cached after the first run)");
    run_shown(
        &mut Command::new("scripts/install-tools.sh"),
        "scripts/install-tools.sh",
    )?;

    steps.step("peer tool: cargo build --release -p ehrx");
    let bin = ehrx_bin(&repo)?;

    steps.step("two-chain devnet: 4 validators a chain, contracts, IBC channel, two Hermes");
    run_shown(
        Command::new("scripts/devnet.sh")
            .arg("up")
            .env("EHRX_BIN", &bin),
        "scripts/devnet.sh up",
    )?;
    let dn = Devnet::load(&Devnet::dir())?;
    // The devnet's own clinician on hospital-a: the other peers' requests use it.
    let Some((devnet_clinician, devnet_clinician_key)) = dn.clinician(A) else {
        return die(format!(
            "devnet.json names no clinician key for {A} (a devnet from before clinician \
             credentials): scripts/devnet.sh reset, then run the demo again"
        ));
    };
    steps.done();

    if demo.exists() {
        fs::remove_dir_all(&demo).with_context(|| format!("rm -rf {}", demo.display()))?;
    }
    fs::create_dir_all(&demo).with_context(|| format!("mkdir {}", demo.display()))?;
    fs::set_permissions(&demo, fs::Permissions::from_mode(0o700)).context("chmod 700")?;
    let mut cx = Ctx {
        dn,
        ehrx: Ehrx {
            bin,
            clinician_code: None,
        },
        demo: demo.clone(),
    };

    say("Setting up the peers (each with its own secp256k1 signing and X25519 encryption keys)");
    cx.site("b-reply-service", B, "peer2", "reply")?;
    ok("hospital-b reply service registered (role reply); it holds hospital-b's records key and pseudonym key");
    let b_desk = cx.site("b-records-desk", B, "peer1", "store")?;
    ok("hospital-b records desk registered (role store); records are encrypted to hospital-b's records key");
    let b_custodian = cx.dn.custodian(B)?.records_key;
    let a_registry = cx.dn.contract(A, "registry")?;
    let shown = run_stdout(
        &mut cx.ehrx.admin(
            &cx.dn,
            A,
            &["show", "partner", "--registry", &a_registry, "--partner", B],
        )?,
        "ehrx admin show partner",
    )?;
    let a_holds = serde_json::from_str::<Value>(&shown)
        .ok()
        .and_then(|v| {
            v.get("encryption_key")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    if a_holds != b_custodian {
        let held = if a_holds.is_empty() { "none" } else { &a_holds };
        return die(format!(
            "hospital-a's registry does not hold hospital-b's custodian key ({b_custodian}) for \
             partner {B} (it holds '{held}'): scripts/devnet.sh reset && scripts/devnet.sh up"
        ));
    }
    ok("hospital-a's registry holds hospital-b's custodian key (its records key, UpsertPartner encryption_key): requests seal the patient's details to it");
    let adams = cx.site("a-dr-adams", A, "peer1", "request")?;
    ok("hospital-a: Dr Adams' workstation registered (role request)");
    // Dr Adams' own credential: the key stays in her site's key dir, encrypted under a code
    // she types (here given through EHRX_CLINICIAN_CODE, as a script would); the admin
    // registers the RegisterClinician message ehrx prints.
    cx.ehrx.clinician_code = Some(demo_code());
    let register = cx
        .ehrx
        .site(&adams)
        .args([
            "clinician",
            "new",
            "--id",
            "dr-adams",
            "--purpose",
            "treatment",
            "--protect",
        ])
        .stderr(Stdio::null())
        .output()
        .context("cannot run ehrx")?;
    if !register.status.success() {
        return die("ehrx clinician new failed");
    }
    let mut admin = cx.ehrx.admin(
        &cx.dn,
        A,
        &[
            "register-clinician",
            "--registry",
            &a_registry,
            "--message",
            "-",
        ],
    )?;
    let registered = admin
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .and_then(|mut child| {
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(&register.stdout)?;
            }
            child.wait()
        })
        .is_ok_and(|s| s.success());
    if !registered {
        return die("ehrx admin register-clinician failed (details above)");
    }
    ok("clinician dr-adams: key made by ehrx on her workstation (mode 0600, encrypted under her code), public key registered by hospital-a's admin");

    if let Some(user) = &opts.user {
        return user_run(&cx, user, &b_desk, &adams, started);
    }

    let flooder = cx.site("a-flooder", A, "peer2", "request")?;
    let snoop = cx.site("a-snoop", A, "peer3", "request")?;
    let outsider = cx.site("a-outsider", A, "peer6", "none")?;
    ok("hospital-a peers for the attacks: a flooding insider, a snooping insider, an unregistered outsider");

    let write = |name: &str, text: &str| -> Res<PathBuf> {
        let p = demo.join(name);
        fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).context("chmod 600")?;
        Ok(p)
    };
    let bundle = write("bundle.json", BUNDLE)?;
    let b_patient = write("b-patient.json", B_PATIENT)?;
    let a_patient = write("a-patient.json", A_PATIENT)?;

    say("1. hospital-b stores the patient's record (FHIR R4 Bundle, checked, compressed, padded and sealed in chunks; on chain: hospital-b's own pseudonym, the chunks, their signed manifest)");
    run_shown(
        cx.ehrx
            .site(&b_desk)
            .arg("store")
            .arg("--bundle")
            .arg(&bundle)
            .arg("--demographics")
            .arg(&b_patient),
        "ehrx store",
    )?;
    ok("StoreRecord verified on hospital-b: registered peer with role store, content hash, signature");

    say("2. hospital-b's reply service starts watching for partners' requests");
    let _service = cx.reply_service()?;
    ok(&format!(
        "reply service running (log: {})",
        demo.join("reply-service.log").display()
    ));

    say("3. Dr Adams at hospital-a asks hospital-b for the patient's history (typed differently; the details travel sealed to hospital-b, which finds its own pseudonym)");
    let history = demo.join("history.json");
    let (code, out) = run_merged(
        cx.ehrx
            .site(&adams)
            .args(["request", "--partner", B, "--clinician", "dr-adams"])
            .args(["--purpose", "treatment", "--demographics"])
            .arg(&a_patient)
            .arg("--out")
            .arg(&history),
        true,
    )?;
    fs::write(demo.join("request.out"), &out).context("request.out")?;
    if code != Some(0) {
        return exit_with(code, "the request did not complete (see above)".into());
    }
    let request = request_id(&out);
    let kinds = fs::read_to_string(&history)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| {
            v.get("entry")?.as_array().map(|entries| {
                entries
                    .iter()
                    .map(|e| plain(&e["resource"]["resourceType"]))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        })
        .ok_or_else(|| anyhow!("{} is not a Bundle", history.display()))?;
    ok(&format!(
        "decrypted history written to {}: {kinds}",
        history.display()
    ));

    let attack = |site: &Path, out_name: &str, wait: Option<&str>| {
        let mut c = cx.ehrx.site(site);
        c.args(["request", "--partner", B, "--clinician", &devnet_clinician])
            .arg("--clinician-key")
            .arg(&devnet_clinician_key)
            .args(["--purpose", "treatment", "--demographics"])
            .arg(&a_patient)
            .arg("--out")
            .arg(demo.join(out_name));
        if let Some(secs) = wait {
            c.args(["--wait-secs", secs]);
        }
        run_merged(&mut c, false)
    };

    say("4a. An outsider (an account hospital-a never registered) sends a request");
    let (code, out) = attack(&outsider, "outsider.json", None)?;
    if code == Some(0) {
        return die("the outsider's request was accepted");
    }
    refused(
        &grep_until(&out, &["the sender is not a registered peer"], &['.'])
            .map(|m| format!("NotRegistered: {m}"))
            .unwrap_or_else(|| last_line(&out)),
    );

    say("4b. An insider floods requests (policy: 1 request per peer per minute, 3 strikes, then quarantine)");
    for n in 1..=5 {
        let (code, out) = attack(&flooder, "flood.json", Some("1"))?;
        // ehrx exit 5: sent and still pending when the (1 s) wait ended, i.e. accepted.
        if matches!(code, Some(0) | Some(5)) {
            ok(&format!("request {n} accepted and sent"));
        } else {
            let why = grep_until(&out, &["RateLimited", "PeerQuarantined"], &[' '])
                .unwrap_or_else(|| last_line(&out));
            refused(&format!("request {n}: {why}"));
        }
    }
    let flooder_addr = cx.dn.key_addr(A, "peer2")?;
    let peer = run_stdout(
        &mut cx.ehrx.admin(
            &cx.dn,
            A,
            &[
                "show",
                "peer",
                "--registry",
                &a_registry,
                "--address",
                &flooder_addr,
            ],
        )?,
        "ehrx admin show peer",
    )?;
    let peer: Value = serde_json::from_str(&peer).context("ehrx admin show peer: not JSON")?;
    refused(&format!(
        "the flooder is now: status {}, strikes {}; only hospital-a's admin can release it",
        plain(&peer["status"]),
        plain(&peer["strikes"])
    ));

    say("4c. Another insider tries to read the reply Dr Adams asked for");
    match &request {
        Some(id) => {
            let (code, out) = run_merged(
                cx.ehrx
                    .site(&snoop)
                    .args(["request", "--resume", id, "--out"])
                    .arg(demo.join("snoop.json"))
                    .args(["--wait-secs", "5"]),
                false,
            )?;
            if code == Some(0) {
                return die("the snoop got the reply");
            }
            refused(
                &grep_until(&out, &["NotAuthorized"], &['.']).unwrap_or_else(|| last_line(&out)),
            );
        }
        None => warn("could not read the request id from the request output; skipping 4c"),
    }

    say("4d. A colleague names Dr Adams' clinician id (the registry lists every id) with a key of his own");
    cx.ehrx.clinician_code = None;
    let own_key = cx
        .ehrx
        .site(&snoop)
        .args(["clinician", "new", "--id", "dr-adams"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !own_key {
        return die("ehrx clinician new (the snoop's own key) failed");
    }
    let (code, out) = run_merged(
        cx.ehrx
            .site(&snoop)
            .args(["request", "--partner", B, "--clinician", "dr-adams"])
            .args(["--purpose", "treatment", "--demographics"])
            .arg(&a_patient)
            .arg("--out")
            .arg(demo.join("impostor.json")),
        false,
    )?;
    if code == Some(0) {
        return die("a request in Dr Adams' name without her key was accepted");
    }
    refused(&grep_wrong_key(&out, "dr-adams").unwrap_or_else(|| last_line(&out)));
    ok("only her key signs in her name: the contract refuses any other signature (BadSignature); nothing is sent");

    say("5. Audit trail (no PHI: codes, ids, times) exported as FHIR AuditEvent");
    let audit = demo.join("audit-a.json");
    run_shown(
        cx.ehrx
            .site(&adams)
            .args(["audit", "export", "--out"])
            .arg(&audit),
        "ehrx audit export",
    )?;
    ok(&format!(
        "{} AuditEvents from hospital-a in {}",
        entries(&audit)?,
        audit.display()
    ));

    say(&format!(
        "Done in {}. The devnet keeps running: scripts/devnet.sh status | down",
        fmt_duration(started.elapsed().as_secs())
    ));
    Ok(())
}

/// The number of entries of the Bundle in `path` (`jq '.entry | length'`).
fn entries(path: &Path) -> Res<usize> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    Ok(v.get("entry").and_then(Value::as_array).map_or(0, Vec::len))
}

/// Steps 1-3 on the user's history: stored on hospital-b, asked for from hospital-a,
/// written where the user said.
fn user_run(cx: &Ctx, user: &UserRun, desk: &Path, adams: &Path, started: Instant) -> Res<()> {
    let (patient_flag, patient_file, patient_from) = match &user.demographics {
        Some(d) => ("--demographics", d, d.display().to_string()),
        None => (
            "--from-bundle",
            &user.bundle,
            "the Bundle's Patient".to_string(),
        ),
    };
    say(&format!(
        "1. hospital-b stores your history: checked as FHIR R4, compressed, attested, sealed in chunks (the patient: from {patient_from})"
    ));
    let store_start = Instant::now();
    let stored = cx
        .ehrx
        .site(desk)
        .arg("store")
        .arg("--bundle")
        .arg(&user.bundle)
        .arg(patient_flag)
        .arg(patient_file)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run ehrx store")?;
    if !stored.status.success() {
        return die(format!(
            "hospital-b did not store {} (the reason is above); nothing was stored",
            user.bundle.display()
        ));
    }
    let s: Value = serde_json::from_slice(&stored.stdout).context("ehrx store: not JSON")?;
    ok(&format!(
        "stored in {} s: {} bytes of FHIR JSON, {} compressed, {} sealed in {} chunk(s), {} transaction(s)",
        store_start.elapsed().as_secs(),
        plain(&s["json_bytes"]),
        plain(&s["compressed_bytes"]),
        plain(&s["sealed_bytes"]),
        plain(&s["chunks"]),
        s["txhashes"].as_array().map_or(0, Vec::len)
    ));
    ok("StoreRecord and StoreChunks verified on hospital-b: registered peer with role store, signature over the manifest, every chunk against its hash");

    say("2. hospital-b's reply service starts watching for partners' requests");
    let _service = cx.reply_service()?;
    let log = cx.demo.join("reply-service.log");
    ok(&format!("reply service running (log: {})", log.display()));

    say("3. Dr Adams at hospital-a asks hospital-b for the patient's history");
    let request_start = Instant::now();
    let (code, out) = run_merged(
        cx.ehrx
            .site(adams)
            .args(["request", "--partner", B, "--clinician", "dr-adams"])
            .args(["--purpose", "treatment", patient_flag])
            .arg(patient_file)
            .arg("--out")
            .arg(&user.out)
            .args(["--wait-secs", "900"]),
        true,
    )?;
    fs::write(cx.demo.join("request.out"), &out).context("request.out")?;
    if code != Some(0) {
        return exit_with(
            code,
            format!(
                "the exchange did not complete (see above; the reply service's log: {})",
                log.display()
            ),
        );
    }
    let service_log = fs::read_to_string(&log).unwrap_or_default();
    for line in service_log
        .lines()
        .filter(|l| l.contains("answered") || l.contains("chunks sent"))
    {
        println!("   reply service: {line}");
    }
    ok("verified on hospital-a: the responder's signature over the manifest and the key it sealed to, every chunk against its hash, every record against its storer's attestation, the output as FHIR R4");
    let size = fs::metadata(&user.out).map(|m| m.len()).unwrap_or(0);
    ok(&format!(
        "history written to {}: {size} bytes, {} entries, in {} s",
        user.out.display(),
        entries(&user.out)?,
        request_start.elapsed().as_secs()
    ));
    say(&format!(
        "Done in {}. The devnet keeps running: scripts/devnet.sh status | down",
        fmt_duration(started.elapsed().as_secs())
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn die_msg(r: Res<Opts>) -> String {
        match r {
            Err(Fail::Die(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// A scratch directory under the system's temp dir, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let p = std::env::temp_dir().join(format!(
                "xtask-demo-{name}-{}-{}",
                std::process::id(),
                demo_code()
            ));
            fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn no_arguments_is_the_scenario() {
        assert_eq!(parse_args(&[]).ok(), Some(Opts::default()));
    }

    #[test]
    fn bad_arguments_are_refused_as_the_script_did() {
        assert_eq!(
            die_msg(parse_args(&args(&["--frobnicate"]))),
            "unknown argument '--frobnicate' (see scripts/demo.sh --help)"
        );
        assert_eq!(
            die_msg(parse_args(&args(&["--bundle"]))),
            "--bundle needs a file"
        );
        assert_eq!(
            die_msg(parse_args(&args(&["--out", ""]))),
            "--out needs a file"
        );
        assert_eq!(
            die_msg(parse_args(&args(&["--out", "x.json"]))),
            "--bundle FILE and --out FILE go together (--demographics FILE is optional)"
        );
        assert_eq!(
            die_msg(parse_args(&args(&[
                "--bundle",
                "/nonexistent/b.json",
                "--out",
                "o"
            ]))),
            "--bundle /nonexistent/b.json: no such file"
        );
    }

    #[test]
    fn user_files_are_resolved() {
        let s = Scratch::new("args");
        let bundle = s.0.join("b.json");
        let demo = s.0.join("d.json");
        fs::write(&bundle, "{}").unwrap();
        fs::write(&demo, "{}").unwrap();
        let b = bundle.display().to_string();
        let o = s.0.join("sub/out.json").display().to_string();
        let opts = parse_args(&args(&["--out", &o, "--bundle", &b]))
            .ok()
            .unwrap();
        let user = opts.user.unwrap();
        assert_eq!(user.bundle, bundle.canonicalize().unwrap());
        assert_eq!(user.demographics, None);
        assert_eq!(user.out, PathBuf::from(&o));
        let missing = s.0.join("none.json").display().to_string();
        assert_eq!(
            die_msg(parse_args(&args(&[
                "--bundle",
                &b,
                "--out",
                &o,
                "--demographics",
                &missing
            ]))),
            format!("--demographics {missing}: no such file")
        );
        let d = demo.display().to_string();
        let opts = parse_args(&args(&["--bundle", &b, "--demographics", &d, "--out", &o]));
        assert_eq!(opts.ok().unwrap().user.unwrap().demographics, Some(demo));
    }

    const FIXTURE: &str = r#"{
      "schema": 2, "fee_denom": "ufee",
      "chains": {
        "hospital-a": {
          "home": "/dn/hospital-a/accounts",
          "rpc": "http://127.0.0.1:36001",
          "rpcs": ["http://127.0.0.1:36001", "http://127.0.0.1:36011"],
          "keys": {"admin": "wasm1admin", "peer2": "wasm1peer2"},
          "contracts": {"registry": "wasm1reg", "exchange": "wasm1ex"},
          "clinician": {"id": "devnet-clinician-01", "key_file": "@KEY@"},
          "custodian": {"records_key_dir": "/dn/keys", "records_key": "63Qc=",
                        "pseudonym_key_file": "/dn/pseudonym.key"}
        },
        "hospital-b": {
          "home": "/dn/hospital-b/accounts",
          "rpc": "http://127.0.0.1:36101",
          "keys": {}, "contracts": {}
        }
      }
    }"#;

    fn fixture(s: &Scratch) -> Devnet {
        let key = s.0.join("clinician.key");
        fs::write(&key, "secret").unwrap();
        let text = FIXTURE.replace("@KEY@", &key.display().to_string());
        fs::write(s.0.join("devnet.json"), text).unwrap();
        Devnet::load(&s.0).ok().unwrap()
    }

    #[test]
    fn devnet_json_is_read() {
        let s = Scratch::new("devnet");
        let dn = fixture(&s);
        assert_eq!(dn.home(A).ok().unwrap(), "/dn/hospital-a/accounts");
        assert_eq!(
            dn.nodes(A).ok().unwrap(),
            "http://127.0.0.1:36001,http://127.0.0.1:36011"
        );
        // No rpcs list: the one RPC.
        assert_eq!(dn.nodes(B).ok().unwrap(), "http://127.0.0.1:36101");
        assert_eq!(dn.contract(A, "registry").ok().unwrap(), "wasm1reg");
        assert_eq!(dn.key_addr(A, "peer2").ok().unwrap(), "wasm1peer2");
        assert!(
            matches!(dn.key_addr(A, "peer9"), Err(Fail::Die(m)) if m == "no account peer9 on hospital-a")
        );
        assert_eq!(dn.fee_denom().ok().unwrap(), "ufee");
        let (id, key) = dn.clinician(A).unwrap();
        assert_eq!(id, "devnet-clinician-01");
        assert_eq!(key, s.0.join("clinician.key"));
        assert!(dn.clinician(B).is_none());
        assert_eq!(
            dn.custodian(A).ok().unwrap(),
            Custodian {
                pseudonym_key_file: "/dn/pseudonym.key".into(),
                records_key_dir: "/dn/keys".into(),
                records_key: "63Qc=".into(),
            }
        );
        assert!(
            matches!(dn.custodian(B), Err(Fail::Die(m)) if m.contains("no custodian keys for hospital-b"))
        );
        assert!(matches!(dn.chain("hospital-c"), Err(Fail::Die(_))));
    }

    #[test]
    fn a_missing_devnet_json_names_the_fix() {
        let s = Scratch::new("none");
        let msg = match Devnet::load(&s.0) {
            Err(Fail::Die(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(
            msg.ends_with("devnet.json: is the devnet up? (scripts/devnet.sh up)"),
            "{msg}"
        );
    }

    #[test]
    fn ehrx_messages_are_read_as_the_script_read_them() {
        let shown = "new keys in /x/keys\nsigning key (...): AAA\nregistry PeerInput fields:\n{\n  \"signing_key\": \"S\",\n  \"encryption_key\": \"E\"\n}\n";
        let k = keys_json(shown).ok().unwrap();
        assert_eq!(plain(&k["signing_key"]), "S");
        assert_eq!(plain(&k["encryption_key"]), "E");

        let out = "waiting\nrequest 0123456789abcdef-0011 sent to hospital-b\nanswered\n";
        assert_eq!(request_id(out).as_deref(), Some("0123456789abcdef-0011"));
        assert_eq!(request_id("request abc sent"), None);

        let out =
            "error: refused: the sender is not a registered peer of hospital-a. fix it\nlast\n";
        assert_eq!(
            grep_until(out, &["the sender is not a registered peer"], &['.']).as_deref(),
            Some("the sender is not a registered peer of hospital-a")
        );
        assert_eq!(last_line(out), "last");
        let out = "x\nrejected: PeerQuarantined(3 strikes) until released\n";
        assert_eq!(
            grep_until(out, &["RateLimited", "PeerQuarantined"], &[' ']).as_deref(),
            Some("PeerQuarantined(3")
        );
        let out = "error: the key in /d/a-snoop/keys/dr-adams.key is not the one registered for clinician dr-adams on hospital-a (registered: AgX=) so it would fail\n";
        assert_eq!(
            grep_wrong_key(out, "dr-adams").as_deref(),
            Some("the key in /d/a-snoop/keys/dr-adams.key is not the one registered for clinician dr-adams on hospital-a (registered: AgX=)")
        );
        assert_eq!(grep_wrong_key("nothing here", "dr-adams"), None);
    }

    #[test]
    fn toml_strings_are_quoted() {
        assert_eq!(toml_str(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn merged_output_keeps_both_streams() {
        let (code, out) = run_merged(
            Command::new("/bin/sh").args(["-c", "echo one; echo two >&2; exit 5"]),
            false,
        )
        .unwrap();
        assert_eq!(code, Some(5));
        assert_eq!(out, "one\ntwo\n");
    }
}
