//! Phase 0: a quiet, healthy devnet with an ICS-20 channel; wasm sizes; fresh accounts and
//! ehrx sites, funded and registered by each chain's admin in a few transactions; a record
//! stored on B; the reply service on B. Also the tool install times (phase 7), the patient
//! histories (phase 6, `bench_histories`) and the cleanup of the keyring keys.

use super::report::Wasm;
use super::{now_ms, Options, Progress};
use crate::devnet::{path_without_wasmd, Devnet};
use crate::peer_tool::{ehrx, ehrx_bin, keys_init, peer_input, text, write_config};
use anyhow::{anyhow, bail, Context, Result};
use ehr_protocol::exchange::{IncomingCursor, IncomingRequestsResponse, QueryMsg};
use ehr_protocol::registry::{ConfigResponse, ExecuteMsg, Policy, Role};
use ehrx_chain::{msgs, TxResult};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const A: &str = "hospital-a";
pub const B: &str = "hospital-b";

/// Each fresh account gets this much of the fee denom.
const FUNDS: u128 = 100_000_000;
/// RegisterPeer / RegisterClinician messages per admin transaction.
const MSGS_PER_TX: usize = 50;

/// A synthetic patient, as the custodian on B keeps it and as the requesting hospital
/// writes it its own way (the custodian normalises the details before its pseudonym). The
/// SSN's last four digits are the run's own (`serial`), so each run's patient has the one
/// record it stores: a reply's size, and so its packets' gas, does not grow with every run
/// on the same devnet.
fn patients(serial: u64) -> (String, String) {
    let serial = serial % 10_000;
    (
        format!(
            r#"{{"given": "Ilse", "family": "Brandt-Nowak", "birth_date": "1968-03-09", "ssn": "318-42-{serial:04}"}}"#
        ),
        format!(
            r#"{{"given": "ILSE", "family": "brandt-nowak ", "birth_date": "03/09/1968", "ssn": "31842{serial:04}"}}"#
        ),
    )
}
const BUNDLE: &str = r#"{"resourceType": "Bundle", "type": "collection", "entry": [
 {"fullUrl": "urn:uuid:1a7d5e3c-9b2f-4c60-8e4a-6f0b2d9c5a01", "resource": {"resourceType": "Patient", "id": "p1", "name": [{"given": ["Ilse"], "family": "Brandt-Nowak"}], "birthDate": "1968-03-09"}},
 {"fullUrl": "urn:uuid:1a7d5e3c-9b2f-4c60-8e4a-6f0b2d9c5a02", "resource": {"resourceType": "Condition", "id": "c1", "code": {"text": "Essential hypertension"}, "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}, "subject": {"reference": "urn:uuid:1a7d5e3c-9b2f-4c60-8e4a-6f0b2d9c5a01"}}},
 {"fullUrl": "urn:uuid:1a7d5e3c-9b2f-4c60-8e4a-6f0b2d9c5a03", "resource": {"resourceType": "MedicationStatement", "id": "m1", "status": "active", "medicationCodeableConcept": {"text": "Lisinopril 10 mg"}, "subject": {"reference": "urn:uuid:1a7d5e3c-9b2f-4c60-8e4a-6f0b2d9c5a01"}}}
]}"#;

/// One ehrx site: a keyring key of its chain and a folder with ehrx.toml and ehrx keys.
#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    pub chain: String,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub address: String,
    /// The clinician it asks as: its own (throughput requesters) or the devnet's.
    pub clinician: (String, PathBuf),
}

/// Everything the phases share.
pub struct Bench {
    pub opts: Options,
    pub devnet: Devnet,
    /// `20261206T182319Z`: names the report, the JSON and the raw-material folder.
    pub ts: String,
    /// The run's id in key names: `bench-<rid>-<site>`.
    pub rid: String,
    pub work: PathBuf,
    pub root: PathBuf,
    pub ch_a: String,
    pub ch_b: String,
    pub xch_a: String,
    pub xch_b: String,
    pub registry_a: String,
    pub exchange_a: String,
    pub exchange_b: String,
    pub fee_denom: String,
    pub policy: Policy,
    pub hermes_pid0: Option<String>,
    pub wasm: Vec<Wasm>,
    pub reply: Site,
    pub store: Site,
    pub req: Vec<Site>,
    pub tp: Vec<Site>,
    /// The ICS-20 sender (key name, address on A) and receiver (address on B).
    pub xfer_from: (String, String),
    pub xfer_to: String,
    /// (chain, key name) of every key made, for the cleanup.
    pub keys: Vec<(String, String)>,
    pub register_tx: Option<TxResult>,
    pub h0_a: u64,
    pub h0_b: u64,
    pub store_hash: String,
    pub ciphertext_bytes: u64,
}

impl Bench {
    pub fn path_arg(path: &Path) -> &str {
        path.to_str().expect("a UTF-8 path")
    }

    /// The patient details file of the requesting side.
    pub fn patient_a(&self) -> PathBuf {
        self.root.join("patient-a.json")
    }

    pub fn hermes_pid(&self) -> Option<String> {
        let file = self.devnet.json()["hermes"]["pid_file"]
            .as_str()
            .map(PathBuf::from)?;
        std::fs::read_to_string(file)
            .ok()
            .map(|p| p.trim().to_string())
    }
}

/// The command lines of other users of the devnet (the e2e suite, scripts/test.sh,
/// scripts/demo.sh and the `xtask demo` it runs, other reply services), read from /proc; nothing is signalled.
pub fn others() -> Vec<String> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).to_string())
            .collect();
        if is_other_user(&args) {
            let line: String = args.join(" ").chars().take(160).collect();
            found.push(format!("{pid} {line}"));
        }
    }
    found
}

/// Whether a command line is one of the devnet's other users.
fn is_other_user(args: &[String]) -> bool {
    let line = args.join(" ");
    let ehrx_service = args.first().is_some_and(|a| {
        Path::new(a)
            .file_name()
            .is_some_and(|n| n == "ehrx" || n.to_string_lossy().starts_with("ehrx-"))
    }) && args.iter().any(|a| a == "reply-service");
    ehrx_service
        || line.contains("deps/e2e-")
        || line.contains("scripts/test.sh")
        || line.contains("scripts/demo.sh")
        || line.contains("xtask demo")
}

/// `scripts/devnet.sh ARGS`, its output on our stderr.
fn devnet_sh(devnet: &Devnet, args: &[&str]) -> Result<()> {
    let status = Command::new(devnet.repo.join("scripts/devnet.sh"))
        .args(args)
        .env("EHRX_DEVNET_DIR", &devnet.dir)
        .stdout(std::io::stderr())
        .status()
        .with_context(|| format!("running scripts/devnet.sh {}", args.join(" ")))?;
    if !status.success() {
        bail!("scripts/devnet.sh {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn healthy(devnet: &Devnet) -> bool {
    devnet.script(&["status"]).status.success()
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Result<&'a str> {
    let mut v = value;
    for key in path {
        v = &v[*key];
    }
    v.as_str()
        .ok_or_else(|| anyhow!("devnet.json has no {}", path.join(".")))
}

/// Waits for a quiet devnet, brings it up when unhealthy, adds the ICS-20 channel.
fn devnet_ready(devnet: &Devnet, opts: &Options, progress: &Progress) -> Result<()> {
    progress.step(&format!(
        "quiet devnet (other e2e/demo/reply-service processes; up to {}s)",
        opts.quiet_wait
    ));
    let start = Instant::now();
    let mut last_said = None;
    while !others().is_empty() && start.elapsed().as_secs() < opts.quiet_wait {
        let minute = start.elapsed().as_secs() / 60;
        if last_said != Some(minute) {
            progress.log(&format!("waiting for: {}", others()[..].join("; ")));
            last_said = Some(minute);
        }
        std::thread::sleep(Duration::from_secs(5));
    }
    let busy = others();
    if !busy.is_empty() {
        progress.note(format!(
            "started while other devnet users were running: {}",
            busy.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
        ));
    } else if start.elapsed().as_secs() >= 5 {
        progress.log(&format!(
            "waited {} for the devnet to be quiet",
            fmt_duration(start.elapsed().as_secs())
        ));
    }

    progress.step("devnet");
    if !healthy(devnet) {
        let complete = std::fs::read_to_string(devnet.dir.join("devnet.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|j| j["complete"] == true);
        if complete && devnet.height(A) > 0 && devnet.height(B) > 0 {
            // Chains up, Hermes down: most likely someone's stop-relayer; give it back.
            progress.log(
                "chains up but the devnet is not healthy (Hermes stopped by another session?): waiting up to 3 min",
            );
            let start = Instant::now();
            while !healthy(devnet) && start.elapsed() < Duration::from_secs(180) {
                std::thread::sleep(Duration::from_secs(5));
            }
        }
        if !healthy(devnet) {
            progress.log("devnet not healthy: scripts/devnet.sh up");
            devnet_sh(devnet, &["up"])?;
            progress
                .note("the devnet was not healthy at the start: ran scripts/devnet.sh up".into());
        }
    }
    let json = devnet.json();
    if json["complete"] != true {
        bail!("devnet.json is not complete");
    }
    for chain in [A, B] {
        if json["chains"][chain]["home"].is_null() {
            bail!("{chain} is not in devnet.json");
        }
    }
    if json["transfer"]["a_channel"].as_str().is_none() {
        progress.log("no ICS-20 channel yet: scripts/devnet.sh add-transfer-channel");
        let start = Instant::now();
        devnet_sh(devnet, &["add-transfer-channel"])?;
        progress.note(format!(
            "created the ICS-20 transfer channel in this run ({})",
            fmt_duration(start.elapsed().as_secs())
        ));
    }
    Ok(())
}

/// `4m13s`, `1h02m03s` (scripts/lib.sh's fmt_duration).
pub fn fmt_duration(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}h{:02}m{:02}s", secs / 3600, secs % 3600 / 60, secs % 60)
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// Sizes and hashes of artifacts/{registry,exchange}.wasm, and of the code deployed on A.
fn wasm_sizes(devnet: &Devnet, progress: &Progress) -> Result<Vec<Wasm>> {
    use sha2::Digest as _;
    progress.step("wasm artifacts");
    let art = devnet.repo.join("artifacts");
    let reader = devnet.reader(A);
    let code_ids = devnet.chain(A)["code_ids"].clone();
    let mut all = Vec::new();
    for name in ["registry", "exchange"] {
        let path = art.join(format!("{name}.wasm"));
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "{} is missing: build the contracts with scripts/build-wasm.sh",
                path.display()
            )
        })?;
        let gzip = Command::new("gzip")
            .args(["-9c", Bench::path_arg(&path)])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| o.stdout.len() as u64);
        let sha = hex::encode(sha2::Sha256::digest(&bytes))[..16].to_string();
        // The code the gas figures are measured against: what is deployed on hospital-a.
        let deployed = code_ids[name]
            .as_u64()
            .or_else(|| code_ids[name].as_str().and_then(|s| s.parse().ok()))
            .and_then(|id| reader.block_on(reader.chain().wasm_code(id)).ok())
            .map(|code| {
                (
                    code.len() as u64,
                    hex::encode(sha2::Sha256::digest(&code))[..16].to_string(),
                )
            });
        progress.log(&format!(
            "{name}.wasm: {} bytes (gzip -9: {})",
            bytes.len(),
            gzip.map_or("-".into(), |g| g.to_string())
        ));
        if deployed.as_ref().map(|d| d.1.as_str()) != Some(sha.as_str()) {
            progress.note(format!(
                "artifacts/{name}.wasm ({sha}) differs from the code deployed on the devnet ({}): rebuilt since the devnet was deployed; gas figures are for the deployed code",
                deployed.as_ref().map_or("-", |d| d.1.as_str())
            ));
        }
        all.push(Wasm {
            name: name.into(),
            bytes: bytes.len() as u64,
            gzip,
            sha,
            deployed,
        });
    }
    Ok(all)
}

/// A fresh keyring key `bench-<rid>-<name>` on `chain`: its address.
fn new_key(devnet: &Devnet, keys: &mut Vec<(String, String)>, chain: &str, name: &str) -> String {
    let address = devnet.new_key(chain, name);
    keys.push((chain.to_string(), name.to_string()));
    address.to_string()
}

/// A site: keyring key, `ehrx keys init`, ehrx.toml; its RegisterPeer message.
#[allow(clippy::too_many_arguments)]
fn make_site(
    devnet: &Devnet,
    root: &Path,
    keys: &mut Vec<(String, String)>,
    rid: &str,
    poll: u64,
    chain: &str,
    name: &str,
    role: Role,
) -> (Site, Value) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let key_name = format!("bench-{rid}-{name}");
    let address = new_key(devnet, keys, chain, &key_name);
    let public = keys_init(devnet, &dir.join("keys"));
    let config = write_config(devnet, chain, &dir, &key_name, poll);
    let register = ExecuteMsg::RegisterPeer {
        peer: peer_input(&address, &public, &key_name, &[role]),
    };
    let clinician = devnet.chain(A)["clinician"].clone();
    let site = Site {
        name: name.into(),
        chain: chain.into(),
        dir,
        config,
        address,
        clinician: (
            clinician["id"].as_str().unwrap_or_default().to_string(),
            PathBuf::from(clinician["key_file"].as_str().unwrap_or_default()),
        ),
    };
    (site, serde_json::to_value(register).unwrap())
}

/// Funds `addresses` and executes `register` (registry messages) from `chain`'s admin, in
/// transactions of up to MSGS_PER_TX messages.
fn fund_and_register(
    devnet: &Devnet,
    chain: &str,
    addresses: &[String],
    register: &[Value],
) -> Result<()> {
    let admin = devnet.key_address(chain, "admin").to_string();
    let registry = devnet.contract(chain, "registry");
    let client = devnet.client(chain, "admin");
    let mut anys = vec![msgs::multi_send(
        &admin,
        addresses,
        FUNDS,
        &devnet.fee_denom(),
    )];
    for msg in register {
        anys.push(msgs::execute_contract(
            &admin,
            &registry,
            &serde_json::to_vec(msg)?,
        )?);
    }
    for batch in anys.chunks(MSGS_PER_TX) {
        let tx = client.block_on(client.chain().execute_any(batch))?;
        if tx.code != 0 {
            bail!(
                "setup tx on {chain} failed: {} (code {})",
                tx.raw_log,
                tx.code
            );
        }
    }
    Ok(())
}

/// Phase 0 up to the stored record.
pub fn prepare(opts: &Options, progress: &Progress) -> Result<Bench> {
    let devnet = Devnet::local();
    devnet_ready(&devnet, opts, progress)?;
    let json = devnet.json();
    let chain_a = &json["chains"][A];
    let chain_b = &json["chains"][B];
    let ch_a = str_at(chain_a, &["partners", B, "channel_id"])?.to_string();
    let ch_b = str_at(chain_b, &["partners", A, "channel_id"])?.to_string();
    let xch_a = str_at(&json, &["transfer", "a_channel"])?.to_string();
    let xch_b = str_at(&json, &["transfer", "b_channel"])?.to_string();
    if chain_a["clinician"]["id"].as_str().is_none() {
        bail!("devnet.json names no clinician key for {A} (a devnet from before clinician credentials): scripts/devnet.sh reset && scripts/devnet.sh up");
    }
    let registry_b = devnet.contract(B, "registry");
    let config: ConfigResponse = devnet
        .query(B, &registry_b, &json!({"config": {}}))
        .map_err(|e| anyhow!("the config query on {B}'s registry failed: {e}"))?;
    progress.log(&format!(
        "exchange channel {A} {ch_a} <-> {B} {ch_b}; ICS-20 channel {A} {xch_a} <-> {B} {xch_b}"
    ));

    let wasm = wasm_sizes(&devnet, progress)?;

    progress.step("ehrx binary");
    let bin = ehrx_bin(&devnet);
    if !bin.is_file() {
        bail!("no ehrx binary at {} (set EHRX_BIN)", bin.display());
    }
    progress.log(&format!("ehrx: {}", bin.display()));

    let now = ehrx_chain::Time::now().to_rfc3339();
    let ts: String = now[..19]
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect::<String>()
        + "Z";
    let rid = format!("{:x}", (now_ms() / 1000) % 0xff_ffff);
    let work = devnet.dir.join("bench").join(format!("run-{ts}"));
    let root = work.join("sites");
    std::fs::create_dir_all(&root)?;
    let (patient_b, patient_a) = patients(now_ms().unsigned_abs() / 1000);
    std::fs::write(root.join("patient-b.json"), patient_b)?;
    std::fs::write(root.join("patient-a.json"), patient_a)?;
    std::fs::write(root.join("bundle.json"), BUNDLE)?;

    let total = opts.runs + opts.parallel_total();
    progress.step(&format!(
        "fresh accounts: {total} requesters on {A}, reply + store sites on {B}"
    ));
    let mut keys = Vec::new();
    let poll = opts.poll;
    let site = |chain: &str, name: &str, role: Role, keys: &mut Vec<(String, String)>| {
        make_site(&devnet, &root, keys, &rid, poll, chain, name, role)
    };
    let (reply, reg_reply) = site(B, "reply", Role::Reply, &mut keys);
    let (store, reg_store) = site(B, "store", Role::Store, &mut keys);
    let mut register_a = Vec::new();
    let mut req = Vec::new();
    for i in 1..=opts.runs {
        let (s, msg) = site(A, &format!("req{i}"), Role::Request, &mut keys);
        req.push(s);
        register_a.push(msg);
    }
    // The last latency requester is registered in a tx of its own: its gas is the
    // RegisterPeer figure.
    let last_register = register_a.pop().expect("--runs is at least 1");
    let mut tp = Vec::new();
    for i in 1..=opts.parallel_total() {
        let (mut s, msg) = site(A, &format!("tp{i}"), Role::Request, &mut keys);
        register_a.push(msg);
        // Each throughput requester asks as a clinician of its own: the partner's
        // incoming quota allows one remote clinician 60 requests per window, so one
        // shared clinician would be refused QuotaExceeded at high load, a policy refusal
        // rather than a limit of the system.
        let id = format!("bench-{rid}-{}", s.name);
        let key = s.dir.join("clinician.key");
        let out = Command::new(&bin)
            .args(["clinician", "new", "--id", &id, "--clinician-key"])
            .arg(&key)
            .args(["--purpose", "treatment"])
            .current_dir(&s.dir)
            .env("PATH", path_without_wasmd())
            .output()?;
        if !out.status.success() {
            bail!("ehrx clinician new for {}: {}", s.name, text(&out));
        }
        register_a.push(serde_json::from_slice(&out.stdout)?);
        s.clinician = (id, key);
        tp.push(s);
    }
    let xfer_key = format!("bench-{rid}-xfer");
    let xfer_addr = new_key(&devnet, &mut keys, A, &xfer_key);
    let xfer_to = new_key(&devnet, &mut keys, B, &format!("bench-{rid}-xfer-rcv"));
    progress.log(&format!("{} keys made", keys.len()));

    progress.step("fund and register: admin txs per chain (MsgMultiSend + RegisterPeer x n)");
    let mut addrs_a = vec![xfer_addr.clone()];
    addrs_a.extend(req.iter().chain(&tp).map(|s| s.address.clone()));
    let addrs_b = vec![reply.address.clone(), store.address.clone()];
    let (on_a, on_b) = std::thread::scope(|scope| {
        let b = scope.spawn(|| fund_and_register(&devnet, B, &addrs_b, &[reg_reply, reg_store]));
        let a = fund_and_register(&devnet, A, &addrs_a, &register_a);
        (a, b.join().expect("setup thread"))
    });
    on_a.context(format!("setup on {A}"))?;
    on_b.context(format!("setup on {B}"))?;
    let admin_a = devnet.client(A, "admin");
    let registry_a = devnet.contract(A, "registry");
    let register_tx = ehrx_chain::execute(&*admin_a, &registry_a, &last_register)
        .map_err(|e| anyhow!("RegisterPeer of the last requester: {e}"))?;
    let h0_a = devnet.height(A);
    let h0_b = devnet.height(B);

    progress.step(&format!("store a record on {B} (ehrx store)"));
    let stored = ehrx(
        &devnet,
        &[
            "--config",
            Bench::path_arg(&store.config),
            "store",
            "--bundle",
            Bench::path_arg(&root.join("bundle.json")),
            "--demographics",
            Bench::path_arg(&root.join("patient-b.json")),
        ],
    );
    std::fs::write(work.join("store.json"), &stored.stdout)?;
    if !stored.status.success() {
        bail!("ehrx store failed: {}", text(&stored));
    }
    let report: Value = serde_json::from_slice(&stored.stdout)?;
    let store_hash = report["txhashes"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ciphertext_bytes = report["sealed_bytes"].as_u64().unwrap_or(0);
    progress.log(&format!(
        "record stored (ciphertext {ciphertext_bytes} bytes, tx {store_hash})"
    ));

    let hermes_pid0 = std::fs::read_to_string(str_at(&json, &["hermes", "pid_file"])?)
        .ok()
        .map(|p| p.trim().to_string());
    Ok(Bench {
        opts: opts.clone(),
        ts,
        rid,
        work,
        root,
        ch_a,
        ch_b,
        xch_a,
        xch_b,
        registry_a,
        exchange_a: devnet.contract(A, "exchange"),
        exchange_b: devnet.contract(B, "exchange"),
        fee_denom: devnet.fee_denom(),
        policy: config.policy,
        hermes_pid0,
        wasm,
        reply,
        store,
        req,
        tp,
        xfer_from: (xfer_key, xfer_addr),
        xfer_to,
        keys,
        register_tx: Some(register_tx),
        h0_a,
        h0_b,
        store_hash,
        ciphertext_bytes,
        devnet,
    })
}

/// The reply service the bench runs on B; stopped (killed: it is ours) by `stop` or drop.
pub struct ReplyService {
    child: Option<Child>,
    pub log: PathBuf,
}

impl ReplyService {
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ReplyService {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The state file that makes the reply service leave `pending` (`<partner>/<request id>`)
/// to their owners: the format of ehrx's `ReplyState`.
pub fn seeded_state(pending: &[(String, String)], now: u64) -> Value {
    let handled: serde_json::Map<String, Value> = pending
        .iter()
        .map(|(partner, id)| {
            (
                format!("{partner}/{id}"),
                json!({"outcome": "bench-skip", "txhash": null, "at": now}),
            )
        })
        .collect();
    json!({ "handled": handled })
}

/// Starts `ehrx reply-service` on B with its state file seeded with every request already
/// pending there (other sessions' requests), so it never answers those.
pub fn start_reply_service(bench: &mut Bench, progress: &Progress) -> Result<ReplyService> {
    progress.step(&format!(
        "reply service on {B} (poll {}s, {})",
        bench.opts.poll,
        super::report::reply_in_flight(bench.opts.reply_in_flight)
    ));
    let mut pending = Vec::new();
    let mut after: Option<IncomingCursor> = None;
    loop {
        let page: IncomingRequestsResponse = bench
            .devnet
            .query(
                B,
                &bench.exchange_b,
                &QueryMsg::PendingIncoming {
                    start_after: after.clone(),
                    limit: Some(100),
                },
            )
            .map_err(|e| anyhow!("PendingIncoming query on {B} failed: {e}"))?;
        pending.extend(
            page.requests
                .iter()
                .map(|r| (r.partner_id.clone(), r.body.request_id.clone())),
        );
        match page.requests.last() {
            Some(last) if page.requests.len() >= 100 => {
                after = Some(IncomingCursor {
                    partner_id: last.partner_id.clone(),
                    request_id: last.body.request_id.clone(),
                })
            }
            _ => break,
        }
    }
    let state = bench.reply.dir.join("reply-state.json");
    std::fs::write(
        &state,
        seeded_state(&pending, (now_ms() / 1000) as u64).to_string(),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o600))?;
    }
    progress.log(&format!(
        "{} request(s) already pending on {B}: left to their owners",
        pending.len()
    ));
    let log = bench.work.join("reply-service.log");
    let file = std::fs::File::create(&log)?;
    let mut args = vec![
        "--config".to_string(),
        Bench::path_arg(&bench.reply.config).to_string(),
        "reply-service".to_string(),
    ];
    if let Some(n) = bench.opts.reply_in_flight {
        args.extend(["--max-in-flight".to_string(), n.to_string()]);
    }
    let mut child = Command::new(ehrx_bin(&bench.devnet))
        .args(&args)
        .env("PATH", path_without_wasmd())
        .stdout(Stdio::from(file.try_clone()?))
        .stderr(Stdio::from(file))
        .spawn()
        .context("starting ehrx reply-service")?;
    let start = Instant::now();
    // Its first line says it is answering: the service's own readiness signal.
    while start.elapsed() < Duration::from_secs(20) {
        if std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("answering requests")
        {
            return Ok(ReplyService {
                child: Some(child),
                log,
            });
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "the reply service exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    bail!("the reply service did not start (log: {})", log.display())
}

/// Phase 7: the last build of each tool (`$EHRX_TOOLS/logs/<piece>.took`), and a warm
/// `scripts/install-tools.sh` unless --skip-install.
pub fn install_times(
    bench: &Bench,
    progress: &Progress,
) -> (Vec<(String, String)>, Option<String>) {
    progress.step("tool install time");
    let tools = std::env::var("EHRX_TOOLS").unwrap_or_else(|_| {
        format!(
            "{}/.cache/ehrx-tools",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let cold = [
        "apt",
        "rust-target",
        "wasmd",
        "hermes",
        "cosmwasm-check",
        "wasm-opt",
    ]
    .iter()
    .map(|piece| {
        let took = std::fs::read_to_string(format!("{tools}/logs/{piece}.took"))
            .ok()
            .and_then(|t| parse_took(&t))
            .unwrap_or_else(|| "-".into());
        (piece.to_string(), took)
    })
    .collect();
    let mut warm = None;
    if !bench.opts.skip_install {
        let start = Instant::now();
        let log = bench.work.join("install-tools-warm.log");
        let ran = std::fs::File::create(&log).ok().and_then(|f| {
            Command::new(bench.devnet.repo.join("scripts/install-tools.sh"))
                .stdout(Stdio::from(f.try_clone().ok()?))
                .stderr(Stdio::from(f))
                .status()
                .ok()
        });
        if ran.is_some_and(|s| s.success()) {
            let took = format!("{:.2} s", start.elapsed().as_secs_f64());
            progress.log(&format!("install-tools.sh (warm): {took}"));
            warm = Some(took);
        } else {
            progress.note(format!(
                "scripts/install-tools.sh failed (log {})",
                log.display()
            ));
        }
    }
    (cold, warm)
}

/// `<secs> <how> <when>` of a `.took` file → `4m13s (cold 2026-12-01)`.
pub fn parse_took(text: &str) -> Option<String> {
    let mut parts = text.split_whitespace();
    let secs: u64 = parts.next()?.parse().ok()?;
    let how = parts.next()?;
    let when = parts.next()?;
    let day = when.split('T').next().unwrap_or(when);
    Some(format!("{} ({how} {day})", fmt_duration(secs)))
}

/// Phase 6: `bench_histories` (built beside this binary), its Markdown section.
pub fn histories(bench: &Bench, progress: &Progress) -> Option<String> {
    let kinds = bench.opts.histories()?;
    progress.step(&format!(
        "patient histories ({kinds}): one exchange each, sizes, gas, peak RSS (bench_histories)"
    ));
    if !Path::new("/usr/bin/time").is_file() {
        progress.note("/usr/bin/time (GNU time) is needed for the peak RSS: apt-get install time; histories skipped".into());
        return None;
    }
    let md = bench.work.join("histories.md");
    let log = bench.work.join("histories.log");
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("bench_histories")))
        .filter(|p| p.is_file());
    let Some(bin) = sibling else {
        progress.note("the histories phase failed: no bench_histories binary beside bench (scripts/bench.sh builds both)".into());
        return None;
    };
    let status = std::fs::File::create(&log).ok().and_then(|f| {
        Command::new(bin)
            .args(["--kinds", kinds, "--out", Bench::path_arg(&md)])
            .env("EHRX_BIN", ehrx_bin(&bench.devnet))
            .stdout(Stdio::null())
            .stderr(Stdio::from(f))
            .status()
            .ok()
    });
    if status.is_some_and(|s| s.success()) {
        std::fs::read_to_string(&md).ok()
    } else {
        let tail: Vec<String> = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(3)
            .map(str::to_string)
            .collect();
        progress.note(format!("the histories phase failed: {}", tail.join(" ")));
        None
    }
}

/// Deletes the bench's keyring keys (unless --keep-keys); notes a Hermes restart.
pub fn cleanup(bench: &Bench, progress: &Progress) {
    if !bench.opts.keep_keys {
        for (chain, name) in &bench.keys {
            if let Err(e) = bench.devnet.keyring_key(chain, name).remove("wasm") {
                progress.log(&format!("key {name} on {chain}: {e}"));
            }
        }
    }
    let now = bench.hermes_pid();
    if now != bench.hermes_pid0 {
        progress.note(format!(
            "Hermes was restarted during the run (pid {} -> {}): figures may include a relayer outage",
            bench.hermes_pid0.as_deref().unwrap_or("none"),
            now.as_deref().unwrap_or("none")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_has_a_patient_of_its_own_written_each_hospital_s_way() {
        let (b1, a1) = patients(1_733_500_001);
        let (b2, _) = patients(1_733_500_002);
        assert_ne!(b1, b2);
        let b: serde_json::Value = serde_json::from_str(&b1).unwrap();
        let a: serde_json::Value = serde_json::from_str(&a1).unwrap();
        assert_eq!(b["ssn"], "318-42-0001");
        assert_eq!(a["ssn"], "318420001");
        assert_eq!(a["birth_date"], "03/09/1968");
    }

    #[test]
    fn other_devnet_users_are_recognised() {
        let args = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert!(is_other_user(&args(
            "/x/target/release/ehrx --config c reply-service"
        )));
        assert!(is_other_user(&args("/t/debug/deps/e2e-0a1b --nocapture")));
        assert!(is_other_user(&args("bash scripts/test.sh")));
        assert!(is_other_user(&args(
            "/t/debug/xtask demo --bundle b.json --out o.json"
        )));
        assert!(!is_other_user(&args("/x/ehrx --config c request")));
        assert!(!is_other_user(&args("bash scripts/bench.sh")));
    }

    #[test]
    fn the_seeded_state_has_ehrx_s_shape() {
        let state = seeded_state(&[("net-a".into(), "r1".into())], 7);
        assert_eq!(state["handled"]["net-a/r1"]["outcome"], "bench-skip");
        assert_eq!(state["handled"]["net-a/r1"]["at"], 7);
        assert!(state["handled"]["net-a/r1"]["txhash"].is_null());
    }

    #[test]
    fn durations_and_took_files_read_as_bench_sh_wrote_them() {
        assert_eq!(fmt_duration(253), "4m13s");
        assert_eq!(fmt_duration(3723), "1h02m03s");
        assert_eq!(
            parse_took("253 cold 2026-12-01T10:00:00Z\n").as_deref(),
            Some("4m13s (cold 2026-12-01)")
        );
        assert_eq!(parse_took("x"), None);
    }
}
