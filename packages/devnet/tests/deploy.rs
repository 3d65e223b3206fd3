//! The deployment stage end to end, on real wasmd nodes (ignored by default: it starts
//! nodes and needs the contracts' artifacts, `scripts/build-wasm.sh`):
//!
//! ```sh
//! PATH=~/.cache/ehrx-tools/bin:$PATH cargo test -p ehrx-devnet --test deploy -- --ignored --test-threads 1
//! ```
//!
//! One chain (1 validator on ports 30000.., 4 validators on 30100..): `up`, then
//! `deploy_chain` twice (the second returns what the first wrote, sending nothing); the
//! registry names the exchange, both codes are pinned, the clinician and the peer are
//! registered, the custodian key files are 0600; `upsert_partner` then the partner shows
//! in the registry, unbound; `down --clean`.
//!
//! ehrx-devnet is a binary crate, so its modules are compiled into this test from their
//! files (the stage is not wired into `up` yet).

#![allow(dead_code)]

#[path = "../src/config.rs"]
mod config;
#[path = "../src/deploy.rs"]
mod deploy;
#[path = "../src/gov.rs"]
mod gov;
#[path = "../src/layout.rs"]
mod layout;
#[path = "../src/ports.rs"]
mod ports;
#[path = "../src/progress.rs"]
mod progress;

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use common::{run, Cleanup};
use ehr_protocol::registry::{Clinician, QueryMsg};
use ehrx::admin::Registry;

const CHAIN: &str = "deploy-test";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn artifacts() -> PathBuf {
    std::env::var_os("EHRX_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("artifacts"))
}

fn devnet_file(base: u16, validators: u8) -> String {
    let a = artifacts();
    format!(
        "version = 1\n[network]\nport_base = {base}\n\
         [[chain]]\nid = \"{CHAIN}\"\nvalidators = {validators}\n\
         [[account]]\nname = \"admin\"\nrole = \"admin\"\nfee = 100000000000000\nbond = 100000000000\n\
         [[account]]\nname = \"peer1\"\nrole = \"peer\"\nfee = 1000000000000\n\
         [[contract]]\nname = \"registry\"\nwasm = \"{}\"\npin = true\n\
         [[contract]]\nname = \"exchange\"\nwasm = \"{}\"\npin = true\n\
         [registry]\ncustodian = true\n\
         [[registry.clinician]]\nid = \"devnet-clinician-01\"\npurposes = [\"treatment\", \"emergency-treatment\"]\n\
         [[registry.peer]]\naccount = \"peer1\"\nroles = [\"store\", \"request\", \"reply\"]\n",
        a.join("registry.wasm").display(),
        a.join("exchange.wasm").display()
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn deploy_on(base: u16, validators: u8) {
    let tmp = tempfile::Builder::new()
        .prefix("deploy-it-")
        .tempdir_in("/tmp")
        .unwrap();
    let file = tmp.path().join("devnet.toml");
    std::fs::write(&file, devnet_file(base, validators)).unwrap();
    let dir = tmp.path().join("net");
    let _cleanup = Cleanup(dir.clone());
    let (c, d) = (file.to_string_lossy(), dir.to_string_lossy());
    assert!(run(&["up", "--chains-only", "--config", &c, "--dir", &d])
        .status
        .success());

    let devnet = config::Devnet::load(&file).unwrap();
    let p = progress::Progress::new();
    let first = deploy::deploy_chain(&p, &devnet, &dir, CHAIN, &repo_root()).unwrap();
    let again = deploy::deploy_chain(&p, &devnet, &dir, CHAIN, &repo_root()).unwrap();
    assert_eq!(
        serde_json::to_value(&first).unwrap(),
        serde_json::to_value(&again).unwrap()
    );
    assert_eq!(
        first.exchange_port,
        format!("wasm.{}", first.contracts.exchange)
    );

    let admin = deploy::client(&devnet, &dir, CHAIN, "admin").unwrap();
    let registry = Registry {
        chain: &admin,
        contract: first.contracts.registry.clone(),
    };
    let config = registry.config().unwrap();
    assert_eq!(
        config.exchange.map(|a| a.to_string()),
        Some(first.contracts.exchange.clone())
    );
    assert_eq!(config.network_id, CHAIN);

    let pinned = gov::pinned_codes(&admin).unwrap();
    assert!(
        pinned.contains(&first.code_ids.registry) && pinned.contains(&first.code_ids.exchange),
        "pinned {pinned:?}, deployed {:?}",
        first.code_ids
    );

    // Only bonded stake votes: the admin's yes weighs nothing, the operators' self-bonds
    // (10,000 power each, the default) carried the proposal.
    let tally = gov::proposal(&admin, 1)
        .unwrap()
        .final_tally_result
        .expect("a tally");
    assert_eq!(
        tally.yes_count,
        (u128::from(validators) * 10_000_000_000).to_string()
    );

    let entry = first.clinician.clone().expect("a clinician");
    let clinician: Option<Clinician> = registry
        .query(&QueryMsg::Clinician {
            clinician_id: entry.id.clone(),
        })
        .unwrap();
    let clinician = clinician.expect("the clinician is registered");
    assert_eq!(clinician.signing_key.to_base64(), entry.signing_key);
    assert_eq!(clinician.allowed_purposes, entry.allowed_purposes);
    assert_eq!(mode(&entry.key_file), 0o600);

    let custodian = first.custodian.clone().expect("custodian keys");
    assert_eq!(mode(&custodian.pseudonym_key_file), 0o600);
    let records: Vec<_> = std::fs::read_dir(&custodian.records_key_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!records.is_empty());
    for f in records {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(CHAIN).join("chain.json")).unwrap())
            .unwrap();
    let peer1 = summary["accounts"]["peer1"].as_str().unwrap();
    assert!(registry.peer(peer1).unwrap().is_some(), "peer1 registered");

    deploy::upsert_partner(
        &devnet,
        &dir,
        CHAIN,
        "hospital-b",
        "connection-0",
        "wasm.wasm14hj2tavq8fpesdwxxcu44rty3hh90vhujrvcmstl4zr3txmfvw9s0phg4d",
        Some(&custodian.records_key),
        "active",
    )
    .unwrap();
    let partner = registry.partner("hospital-b").unwrap().expect("partner");
    assert_eq!(partner.connection_id, "connection-0");
    assert_eq!(
        partner.encryption_key.map(|k| k.to_base64()),
        Some(custodian.records_key.clone())
    );
    assert_eq!(
        deploy::partner_channel(&devnet, &dir, CHAIN, "hospital-b").unwrap(),
        None
    );
    assert!(deploy::partner_channel(&devnet, &dir, CHAIN, "hospital-z").is_err());

    if validators > 1 {
        // Validator 0 down: the client fails over to the next validator.
        let stopped = run(&[
            "stop-node",
            "--dir",
            &d,
            "--chain",
            CHAIN,
            "--validator",
            "0",
        ]);
        assert!(stopped.status.success());
        assert_eq!(
            deploy::partner_channel(&devnet, &dir, CHAIN, "hospital-b").unwrap(),
            None
        );
    }
}

#[test]
#[ignore = "starts a wasmd node; needs wasmd and artifacts/*.wasm (scripts/build-wasm.sh)"]
fn deploy_on_one_validator() {
    deploy_on(30000, 1);
}

#[test]
#[ignore = "starts four wasmd nodes; needs wasmd and artifacts/*.wasm (scripts/build-wasm.sh)"]
fn deploy_on_four_validators() {
    deploy_on(30100, 4);
}
