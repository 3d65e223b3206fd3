//! Driving the `ehrx` peer tool as hospital staff would: a built binary, peer sites with
//! their own keys and config, registered by the admin.

use ehr_protocol::registry::{ExecuteMsg, PeerInput, Role};
use ehr_tests::devnet::{path_with_tools, run_id, Devnet};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::OnceLock;

pub fn ehrx_bin(devnet: &Devnet) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
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
        .env("PATH", path_with_tools())
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
    let key_dir = dir.join("keys");
    let out = ehrx(
        devnet,
        &["keys", "init", "--key-dir", key_dir.to_str().unwrap()],
    );
    assert!(out.status.success(), "keys init: {}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    let public: Value =
        serde_json::from_str(&shown[shown.find('{').expect("PeerInput JSON")..]).unwrap();

    let info = devnet.chain(chain);
    let config = dir.join("ehrx.toml");
    let custodian = devnet.custodian(chain);
    std::fs::write(
        &config,
        format!(
            "node = \"{node}\"\nchain_id = \"{chain}\"\nexchange = \"{exchange}\"\nwasmd_home = \"{home}\"\n\
             key_name = \"{key_name}\"\nkey_dir = \"keys\"\npseudonym_key_file = \"{pseudonym}\"\n\
             records_key_dir = \"{records_dir}\"\nrecords_key = \"{records_key}\"\n\
             state_file = \"reply-state.json\"\npoll_interval_secs = 1\n",
            node = info["node"].as_str().unwrap(),
            exchange = info["contracts"]["exchange"].as_str().unwrap(),
            home = info["home"].as_str().unwrap(),
            pseudonym = custodian["pseudonym_key_file"].as_str().unwrap(),
            records_dir = custodian["records_key_dir"].as_str().unwrap(),
            records_key = custodian["records_key"].as_str().unwrap(),
        ),
    )
    .unwrap();
    let peer = PeerInput {
        address: address.to_string(),
        signing_key: serde_json::from_value(public["signing_key"].clone()).unwrap(),
        encryption_key: serde_json::from_value(public["encryption_key"].clone()).unwrap(),
        device_id: format!("{name}-device"),
        roles: roles.to_vec(),
        valid_from: None,
        valid_until: None,
    };
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

pub struct KillOnDrop(pub Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
