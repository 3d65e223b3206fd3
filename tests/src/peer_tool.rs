//! Driving the `ehrx` peer tool as hospital staff would: a built binary, peer sites with
//! their own keys and config, registered by the admin. Used by the e2e suite and the
//! history benchmark.

use crate::devnet::{path_without_wasmd, run_id, Devnet};
use ehr_protocol::registry::{ExecuteMsg, PeerInput, Role};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

/// The ehrx binary: `$EHRX_BIN` when set (the benchmark passes a release build), else a
/// debug build made with cargo on first use.
pub fn ehrx_bin(devnet: &Devnet) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(bin) = std::env::var_os("EHRX_BIN") {
                return PathBuf::from(bin);
            }
            let status = Command::new("cargo")
                .args(["build", "-q", "-p", "ehrx"])
                .current_dir(&devnet.repo)
                .status()
                .expect("cargo build -p ehrx");
            assert!(status.success());
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| devnet.repo.join("target"));
            target.join("debug/ehrx")
        })
        .clone()
}

pub struct Site {
    pub dir: PathBuf,
    pub config: PathBuf,
}

pub fn ehrx(devnet: &Devnet, args: &[&str]) -> Output {
    Command::new(ehrx_bin(devnet))
        .args(args)
        .env("PATH", path_without_wasmd())
        .output()
        .expect("run ehrx")
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `ehrx keys init` in `key_dir`: the public keys it shows (`signing_key`, `encryption_key`).
pub fn keys_init(devnet: &Devnet, key_dir: &Path) -> Value {
    let out = ehrx(
        devnet,
        &["keys", "init", "--key-dir", key_dir.to_str().unwrap()],
    );
    assert!(out.status.success(), "keys init: {}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    serde_json::from_str(&shown[shown.find('{').expect("PeerInput JSON")..]).unwrap()
}

/// Writes `dir/ehrx.toml` for keyring key `key_name` of `chain`, keys in `dir/keys`; the
/// hospital's records (custodian) key and pseudonym key are the devnet's.
pub fn write_config(
    devnet: &Devnet,
    chain: &str,
    dir: &Path,
    key_name: &str,
    poll_secs: u64,
) -> PathBuf {
    let info = devnet.chain(chain);
    let config = dir.join("ehrx.toml");
    let custodian = devnet.custodian(chain);
    std::fs::write(
        &config,
        format!(
            "node = \"{node}\"\nchain_id = \"{chain}\"\nexchange = \"{exchange}\"\nwasmd_home = \"{home}\"\n\
             key_name = \"{key_name}\"\nkey_dir = \"keys\"\npseudonym_key_file = \"{pseudonym}\"\n\
             records_key_dir = \"{records_dir}\"\nrecords_key = \"{records_key}\"\n\
             state_file = \"reply-state.json\"\npoll_interval_secs = {poll_secs}\n",
            node = devnet.rpcs(chain).join(","),
            exchange = info["contracts"]["exchange"].as_str().unwrap(),
            home = info["home"].as_str().unwrap(),
            pseudonym = custodian["pseudonym_key_file"].as_str().unwrap(),
            records_dir = custodian["records_key_dir"].as_str().unwrap(),
            records_key = custodian["records_key"].as_str().unwrap(),
        ),
    )
    .unwrap();
    config
}

/// The registry's `PeerInput` for `address` with the keys `keys init` showed (`public`).
pub fn peer_input(address: &str, public: &Value, device_id: &str, roles: &[Role]) -> PeerInput {
    PeerInput {
        address: address.to_string(),
        signing_key: serde_json::from_value(public["signing_key"].clone()).unwrap(),
        encryption_key: serde_json::from_value(public["encryption_key"].clone()).unwrap(),
        device_id: device_id.to_string(),
        roles: roles.to_vec(),
        valid_from: None,
        valid_until: None,
    }
}

/// A peer site: a fresh funded account, `ehrx keys init`, registered with `roles`; the
/// hospital's records (custodian) key and pseudonym key are the devnet's.
pub fn site(
    devnet: &Devnet,
    root: &Path,
    chain: &str,
    name: &str,
    roles: &[Role],
) -> (Site, Value) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let key_name = format!("{name}-{}", run_id());
    let address = devnet.new_account(chain, &key_name);
    let public = keys_init(devnet, &dir.join("keys"));
    let config = write_config(devnet, chain, &dir, &key_name, 1);
    let peer = peer_input(address.as_str(), &public, &format!("{name}-device"), roles);
    devnet
        .exec(
            chain,
            "admin",
            &devnet.contract(chain, "registry"),
            &ExecuteMsg::RegisterPeer { peer },
        )
        .accepted();
    (Site { dir, config }, public)
}

/// `ehrx store --bundle BUNDLE --demographics DETAILS` on `site`; asserts it succeeded.
pub fn store(devnet: &Devnet, site: &Site, bundle: &Path, details: &Path) -> Output {
    let path = |p: &Path| p.to_str().expect("a UTF-8 path").to_string();
    let (config, bundle, details) = (path(&site.config), path(bundle), path(details));
    let stored = ehrx(
        devnet,
        &[
            "--config",
            &config,
            "store",
            "--bundle",
            &bundle,
            "--demographics",
            &details,
        ],
    );
    assert!(stored.status.success(), "store: {}", text(&stored));
    stored
}

/// `ehrx reply-service` of `site` in the background, its output in `log`; stopped when
/// dropped.
pub fn reply_service(devnet: &Devnet, site: &Site, log: &Path) -> KillOnDrop {
    let log = std::fs::File::create(log).unwrap();
    KillOnDrop(
        Command::new(ehrx_bin(devnet))
            .args(["--config", site.config.to_str().unwrap(), "reply-service"])
            .env("PATH", path_without_wasmd())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start reply service"),
    )
}

pub struct KillOnDrop(pub Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The arguments of `ehrx request` as a requesting site runs it: partner, clinician,
/// purpose treatment, the patient's details from a file, the history written to `out`.
pub fn request_args(
    config: &Path,
    partner: &str,
    clinician_id: &str,
    details: &Path,
    out: &Path,
    wait_secs: u64,
) -> Vec<String> {
    let path = |p: &Path| p.to_str().expect("a UTF-8 path").to_string();
    vec![
        "--config".into(),
        path(config),
        "request".into(),
        "--partner".into(),
        partner.into(),
        "--clinician".into(),
        clinician_id.into(),
        "--purpose".into(),
        "treatment".into(),
        "--demographics".into(),
        path(details),
        "--out".into(),
        path(out),
        "--wait-secs".into(),
        wait_secs.to_string(),
    ]
}

/// What one history's trip through the exchange left: the files, what the tool printed and
/// reported, and, when measured, wall times and peak RSS (`/usr/bin/time -v`).
pub struct HistoryRun {
    pub input: PathBuf,
    pub output: PathBuf,
    /// `ehrx store`'s JSON report (sizes, chunks, transaction hashes).
    pub store_report: Value,
    pub store_text: String,
    pub request_text: String,
    pub request_ok: bool,
    pub service_log: String,
    pub store_ms: u128,
    pub request_ms: u128,
    /// Peak RSS in KiB of `ehrx store`, `ehrx request` and the reply service, if measured:
    /// of ehrx itself, and of it with the `wasmd` processes it runs (GNU time).
    pub store_rss_kib: Option<u64>,
    pub request_rss_kib: Option<u64>,
    pub service_rss_kib: Option<u64>,
    pub store_own_rss_kib: Option<u64>,
    pub request_own_rss_kib: Option<u64>,
    pub service_own_rss_kib: Option<u64>,
}

/// `ehrx ARGS`, under `/usr/bin/time -v` when `measure`.
fn ehrx_command(devnet: &Devnet, measure: bool, args: &[&str]) -> Command {
    let mut command = if measure {
        let mut time = Command::new("/usr/bin/time");
        time.arg("-v")
            .arg(ehrx_bin(devnet))
            .env("EHRX_REPORT_PEAK_RSS", "1");
        time
    } else {
        Command::new(ehrx_bin(devnet))
    };
    command.args(args).env("PATH", path_without_wasmd());
    command
}

/// The peak RSS `/usr/bin/time -v` reported in `text` (ehrx and the `wasmd` processes it
/// runs, the largest of them), in KiB.
pub fn peak_rss_kib(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|n| n.trim().parse().ok())
}

/// The peak RSS of ehrx itself (`EHRX_REPORT_PEAK_RSS`) in `text`, in KiB.
pub fn own_peak_rss_kib(text: &str) -> Option<u64> {
    // The last report: the reply service logs one after each pass that answered.
    text.lines()
        .rev()
        .find_map(|l| l.split_once("peak RSS of ehrx itself: ").map(|(_, n)| n))
        .and_then(|n| n.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Stores the history at `input` on B, asks for it from A with the reply service of B
/// running, and writes what comes back: everything as hospital staff would with the peer
/// tool, on fresh peers and a fresh patient (`details`: given, family, birth_date, ssn).
pub fn exchange_history(
    devnet: &Devnet,
    label: &str,
    input: &Path,
    details: &Value,
    measure: bool,
) -> HistoryRun {
    const A: &str = "hospital-a";
    const B: &str = "hospital-b";
    let root = std::env::temp_dir().join(format!("ehrx-history-{label}-{}", run_id()));
    std::fs::create_dir_all(&root).unwrap();
    // Keyring names are unique per run: one set of sites per history.
    let name = |role: &str| format!("{role}-{label}");
    let (store_site, _) = site(devnet, &root, B, &name("b-store"), &[Role::Store]);
    let (reply_site, _) = site(devnet, &root, B, &name("b-reply"), &[Role::Reply]);
    let (request_site, _) = site(devnet, &root, A, &name("a-request"), &[Role::Request]);
    let details_file = root.join("patient.json");
    std::fs::write(&details_file, details.to_string()).unwrap();
    let config = |s: &Site| s.config.to_str().unwrap().to_string();

    let started = std::time::Instant::now();
    let stored = ehrx_command(
        devnet,
        measure,
        &[
            "--config",
            &config(&store_site),
            "store",
            "--bundle",
            input.to_str().unwrap(),
            "--demographics",
            details_file.to_str().unwrap(),
        ],
    )
    .output()
    .expect("run ehrx store");
    let store_ms = started.elapsed().as_millis();
    let store_text = text(&stored);
    assert!(stored.status.success(), "store: {store_text}");
    let store_report: Value = serde_json::from_slice(&stored.stdout).expect("store report JSON");

    let log_path = reply_site.dir.join("reply-service.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut service = ehrx_command(
        devnet,
        measure,
        &["--config", &config(&reply_site), "reply-service"],
    )
    .stdout(Stdio::from(log.try_clone().unwrap()))
    .stderr(Stdio::from(log))
    .spawn()
    .expect("start reply service");

    let clinician_id = format!("dr-{label}-{}", run_id());
    let created = ehrx(
        devnet,
        &[
            "--config",
            &config(&request_site),
            "clinician",
            "new",
            "--id",
            &clinician_id,
        ],
    );
    assert!(created.status.success(), "clinician: {}", text(&created));
    let register: Value = serde_json::from_slice(&created.stdout).unwrap();
    devnet
        .exec(A, "admin", &devnet.contract(A, "registry"), &register)
        .accepted();

    let output = request_site.dir.join("history.json");
    let started = std::time::Instant::now();
    let args = request_args(
        &request_site.config,
        B,
        &clinician_id,
        &details_file,
        &output,
        900,
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let requested = ehrx_command(devnet, measure, &args)
        .output()
        .expect("run ehrx request");
    let request_ms = started.elapsed().as_millis();

    // Stop the reply service: under `time`, signal ehrx itself so `time` reports.
    if measure {
        let _ = Command::new("pkill")
            .args(["-TERM", "-P", &service.id().to_string()])
            .status();
        let _ = service.wait();
    } else {
        let _ = service.kill();
        let _ = service.wait();
    }
    let service_log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let request_text = text(&requested);
    HistoryRun {
        input: input.to_path_buf(),
        output,
        store_rss_kib: measure.then(|| peak_rss_kib(&store_text)).flatten(),
        request_rss_kib: measure.then(|| peak_rss_kib(&request_text)).flatten(),
        service_rss_kib: measure.then(|| peak_rss_kib(&service_log)).flatten(),
        store_own_rss_kib: measure.then(|| own_peak_rss_kib(&store_text)).flatten(),
        request_own_rss_kib: measure.then(|| own_peak_rss_kib(&request_text)).flatten(),
        service_own_rss_kib: measure.then(|| own_peak_rss_kib(&service_log)).flatten(),
        store_report,
        store_text,
        request_ok: requested.status.success(),
        request_text,
        service_log,
        store_ms,
        request_ms,
    }
}

/// A clinician made with `ehrx clinician new --id ID EXTRA…` on `site` (their key stays in
/// the site's key dir) and registered on A by its admin with the message ehrx printed: the
/// id, the key file and that message.
pub fn register_clinician(
    devnet: &Devnet,
    site: &Site,
    id: &str,
    extra: &[&str],
) -> (String, PathBuf, Value) {
    let mut args = vec![
        "--config",
        site.config.to_str().expect("a UTF-8 path"),
        "clinician",
        "new",
        "--id",
        id,
    ];
    args.extend_from_slice(extra);
    let created = ehrx(devnet, &args);
    assert!(
        created.status.success(),
        "clinician new: {}",
        text(&created)
    );
    let register: Value = serde_json::from_slice(&created.stdout).expect("RegisterClinician JSON");
    devnet
        .exec(
            "hospital-a",
            "admin",
            &devnet.contract("hospital-a", "registry"),
            &register,
        )
        .accepted();
    let key = site.dir.join(format!("keys/clinicians/{id}.key"));
    (id.to_string(), key, register)
}
