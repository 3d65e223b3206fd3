//! The contracts and the registry of one chain, after `up` made it (issue 11; what
//! `scripts/devnet.sh`'s `deploy_chain`, `pin_codes`, `register_clinician`,
//! `make_custodian`, `upsert_partner` and `partner_channel` did with the `ehrx` CLI):
//!
//! 1. store, instantiate and wire both contracts (`ehrx::admin::deploy`: the codes are
//!    instantiable by the admin only, the admin may migrate the contracts);
//! 2. pin the codes of the `[[contract]]`s with `pin = true` by a gov proposal ([`crate::gov`]);
//! 3. register each `[[registry.clinician]]`, its key made by ehrx's clinician code in
//!    `<dir>/<chain>/accounts/clinicians/<id>.key` (0600);
//! 4. with `[registry] custodian`, the hospital's records (custodian) key pair in
//!    `<dir>/<chain>/accounts/custodian/keys` and its pseudonym key
//!    `<dir>/<chain>/accounts/custodian/pseudonym.key`;
//! 5. register each `[[registry.peer]]`, its keys made by ehrx in
//!    `<dir>/<chain>/accounts/peers/<account>/`;
//! 6. check that the registry's config names the exchange, and write
//!    `<dir>/<chain>/deploy.json` (the fields of `scripts/devnet.sh`'s deploy.json).
//!
//! Everything goes through the typed chain client (`ehrx-chain`) and the protocol's types;
//! no CLI is spawned. A chain with a deploy.json is deployed: `deploy_chain` returns it and
//! sends nothing. Keys found on disk from an attempt that stopped half-way are used again
//! (never overwritten), so running again after a failure deploys afresh with the same keys.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use clap::ValueEnum as _;
use ehr_protocol::exchange::PurposeOfUse;
use ehr_protocol::registry::{ExecuteMsg, PeerInput, Role};
use ehrx::admin::{self, PartnerArgs, Registry};
use ehrx::clinician::{ClinicianKey, Registration};
use ehrx::keys::{KeyDir, PeerKeys};
use ehrx::pseudonym::PseudonymKey;
use ehrx_chain::{BlockingChain, ChainConfig, KeyringKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use ehrx::admin::{CodeIds, Contracts};

use crate::config::{self, Devnet};
use crate::layout;
use crate::progress::Progress;

/// What deploying on one chain made: `<dir>/<chain>/deploy.json`, the fields of
/// `scripts/devnet.sh`'s deploy.json (the chain's entry of devnet.json carries them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployed {
    pub code_ids: CodeIds,
    pub contracts: Contracts,
    /// The exchange's IBC port, `wasm.<exchange>`.
    pub exchange_port: String,
    /// The first `[[registry.clinician]]` (scripts/devnet.sh registered one).
    pub clinician: Option<ClinicianEntry>,
    pub custodian: Option<CustodianEntry>,
    pub artifacts_sha256: Shas,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClinicianEntry {
    pub id: String,
    pub key_file: PathBuf,
    /// Compressed secp256k1 public key, base64, as registered.
    pub signing_key: String,
    pub allowed_purposes: Vec<PurposeOfUse>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodianEntry {
    pub records_key_dir: PathBuf,
    /// The records key's X25519 public half, base64: partners register it as this
    /// hospital's `encryption_key`.
    pub records_key: String,
    pub pseudonym_key_file: PathBuf,
}

/// SHA-256 (hex) of the wasm deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shas {
    pub registry: String,
    pub exchange: String,
}

/// The file that says a chain is deployed.
pub fn deploy_file(dir: &Path, chain_id: &str) -> PathBuf {
    layout::chain_dir(dir, chain_id).join("deploy.json")
}

/// What `deploy_chain` made on `chain_id`, if it did.
pub fn deployed(dir: &Path, chain_id: &str) -> Result<Option<Deployed>> {
    let path = deploy_file(dir, chain_id);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    serde_json::from_str(&text).map(Some).with_context(|| {
        format!(
            "{} is not a deploy.json of this tool: remove it (and the chain: \
             `ehrx-devnet down --clean`) to deploy again",
            path.display()
        )
    })
}

fn deployed_or_fail(dir: &Path, chain_id: &str) -> Result<Deployed> {
    deployed(dir, chain_id)?.ok_or_else(|| {
        anyhow!(
            "{chain_id}: no contracts deployed ({} is missing): deploy the chain first",
            deploy_file(dir, chain_id).display()
        )
    })
}

/// Writes deploy.json whole (a temporary file renamed), so a reader never sees half of it.
fn write_deployed(dir: &Path, chain_id: &str, d: &Deployed) -> Result<()> {
    let path = deploy_file(dir, chain_id);
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(d)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

/// The chain's client settings: zero gas price in its fee denom, as the nodes take it.
fn chain_config(devnet: &Devnet, chain_id: &str, rpc: String) -> Result<ChainConfig> {
    let (_, chain) = devnet
        .chain(chain_id)
        .with_context(|| format!("no chain {chain_id:?} in the devnet file"))?;
    Ok(ChainConfig {
        rpc,
        chain_id: chain_id.to_string(),
        account_prefix: "wasm".into(),
        gas_price: format!("0{}", chain.fee_denom),
        ..ChainConfig::default()
    })
}

/// A client signing with `key`, against the first validator whose RPC answers.
pub(crate) fn client_with_key(
    devnet: &Devnet,
    dir: &Path,
    chain_id: &str,
    key: &KeyringKey,
) -> Result<BlockingChain> {
    let secret = key
        .open(|| None)
        .with_context(|| format!("{chain_id}: opening the key `{}`", key.name))?;
    let mut tried = Vec::new();
    for node in layout::nodes(devnet, dir, chain_id)? {
        let cfg = chain_config(devnet, chain_id, node.ports.rpc_url())?;
        let client = BlockingChain::new(cfg, Some(secret.clone()))?;
        match client.block_on(client.chain().height()) {
            Ok(_) => return Ok(client),
            Err(e) => tried.push(format!("{}: {e}", node.moniker())),
        }
    }
    bail!(
        "{chain_id}: no validator's RPC answers (`ehrx-devnet up` starts them, `ehrx-devnet \
         status` shows them):\n  {}",
        tried.join("\n  ")
    )
}

/// A chain client signing as `account` (an `[[account]]` name) of `chain_id`, against the
/// first validator of the chain whose RPC answers.
pub fn client(devnet: &Devnet, dir: &Path, chain_id: &str, account: &str) -> Result<BlockingChain> {
    if !devnet.accounts_on(chain_id).any(|a| a.name == account) {
        bail!("{chain_id}: no [[account]] named {account:?} on this chain in the devnet file");
    }
    let key = KeyringKey {
        home: layout::accounts_home(dir, chain_id),
        backend: "test".into(),
        name: account.to_string(),
    };
    client_with_key(devnet, dir, chain_id, &key)
}

/// The name of the chain's admin account.
fn admin_account<'a>(devnet: &'a Devnet, chain_id: &'a str) -> Result<&'a str> {
    devnet
        .accounts_on(chain_id)
        .find(|a| a.role == config::Role::Admin)
        .map(|a| a.name.as_str())
        .ok_or_else(|| anyhow!("{chain_id}: no [[account]] with role \"admin\" on this chain"))
}

/// A `[[contract]]`'s wasm (read and checked) and whether to pin it.
fn artifact(devnet: &Devnet, repo_root: &Path, name: &str) -> Result<(Vec<u8>, bool)> {
    let contract = devnet
        .contracts
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| {
            anyhow!(
                "the devnet file has no [[contract]] named {name:?}: add one with \
                 wasm = \"artifacts/{name}.wasm\""
            )
        })?;
    let wasm = admin::read_wasm(&repo_root.join(&contract.wasm))?;
    Ok((wasm, contract.pin))
}

/// The SHA-256 of both artifacts as they are now.
fn artifact_shas(devnet: &Devnet, repo_root: &Path) -> Result<Shas> {
    Ok(Shas {
        registry: sha256_hex(&artifact(devnet, repo_root, "registry")?.0),
        exchange: sha256_hex(&artifact(devnet, repo_root, "exchange")?.0),
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A purpose as the devnet file writes it (`emergency-treatment`, as `ehrx --purpose`).
fn purpose(text: &str) -> Result<PurposeOfUse> {
    ehrx::cli::Purpose::from_str(text, true)
        .map(PurposeOfUse::from)
        .map_err(|_| {
            anyhow!(
                "{text:?} is not a purpose (treatment, emergency-treatment, payment, operations)"
            )
        })
}

/// Store, instantiate and wire both contracts, pin their codes, register the clinicians and
/// peers, make the custodian keys (see the module comment). Returns deploy.json unchanged
/// when the chain was deployed before.
pub fn deploy_chain(
    p: &Progress,
    devnet: &Devnet,
    dir: &Path,
    chain_id: &str,
    repo_root: &Path,
) -> Result<Deployed> {
    if let Some(done) = deployed(dir, chain_id)? {
        p.say(format!(
            "{chain_id}: deployed before (registry {}, exchange {})",
            done.contracts.registry, done.contracts.exchange
        ));
        // Artifacts rebuilt (or gone) since do not matter to a deployed chain; say so.
        let now = artifact_shas(devnet, repo_root);
        if now.as_ref().ok() != Some(&done.artifacts_sha256) {
            p.say(format!(
                "{chain_id}: note: the wasm artifacts changed since; the chain keeps the \
                 contracts it has (`ehrx-devnet down --clean` and `up` to deploy the new ones)"
            ));
        }
        return Ok(done);
    }
    let (registry_wasm, pin_registry) = artifact(devnet, repo_root, "registry")?;
    let (exchange_wasm, pin_exchange) = artifact(devnet, repo_root, "exchange")?;
    let shas = Shas {
        registry: sha256_hex(&registry_wasm),
        exchange: sha256_hex(&exchange_wasm),
    };
    let admin = client(devnet, dir, chain_id, admin_account(devnet, chain_id)?)?;
    p.say(format!(
        "{chain_id}: store, instantiate and wire registry.wasm and exchange.wasm"
    ));
    let made = admin::deploy(
        &admin,
        chain_id,
        &registry_wasm,
        &exchange_wasm,
        "ehrx",
        &mut |m| p.say(format!("{chain_id}: {m}")),
    )
    .with_context(|| format!("{chain_id}: deploying the contracts"))?;
    let pin: Vec<u64> = [
        (pin_registry, made.code_ids.registry),
        (pin_exchange, made.code_ids.exchange),
    ]
    .into_iter()
    .filter_map(|(pin, code)| pin.then_some(code))
    .collect();
    if !pin.is_empty() {
        crate::gov::pin_codes(p, devnet, dir, chain_id, &admin, &pin)?;
    }
    let registry = Registry {
        chain: &admin,
        contract: made.contracts.registry.clone(),
    };
    let accounts = layout::accounts_home(dir, chain_id);
    let mut clinicians = Vec::new();
    for c in &devnet.registry.clinicians {
        clinicians.push(register_clinician(p, chain_id, &registry, &accounts, c)?);
    }
    let custodian = if devnet.registry.custodian {
        Some(make_custodian(p, chain_id, &accounts)?)
    } else {
        None
    };
    for peer in &devnet.registry.peers {
        register_peer(p, dir, chain_id, &registry, peer)?;
    }
    check_wired(chain_id, &registry, &made.contracts.exchange)?;
    let done = Deployed {
        code_ids: made.code_ids,
        exchange_port: made.exchange_port,
        contracts: made.contracts,
        clinician: clinicians.into_iter().next(),
        custodian,
        artifacts_sha256: shas,
    };
    write_deployed(dir, chain_id, &done)?;
    p.say(format!(
        "{chain_id}: deployed ({})",
        deploy_file(dir, chain_id).display()
    ));
    Ok(done)
}

/// The registry's config names the exchange (SetExchange took).
fn check_wired(chain_id: &str, registry: &Registry, exchange: &str) -> Result<()> {
    let config = registry.config()?;
    if config.exchange.as_ref().map(|a| a.as_str()) != Some(exchange) {
        bail!(
            "{chain_id}: the registry {} names exchange {:?}, not {exchange}: SetExchange did \
             not take; `ehrx-devnet down --clean` and `up` again",
            registry.contract,
            config.exchange
        );
    }
    Ok(())
}

/// The clinician's key (made, or the one an earlier attempt made) and its registration.
fn register_clinician(
    p: &Progress,
    chain_id: &str,
    registry: &Registry,
    accounts: &Path,
    c: &config::Clinician,
) -> Result<ClinicianEntry> {
    let key_file = accounts.join("clinicians").join(format!("{}.key", c.id));
    let key = if key_file.exists() {
        ClinicianKey::load(&c.id, &key_file, || {
            bail!("the devnet's clinician keys are not protected by a code")
        })?
    } else {
        ClinicianKey::create(&c.id, &key_file, None)?
    };
    let purposes = c
        .purposes
        .iter()
        .map(|t| purpose(t))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("registry.clinician {}", c.id))?;
    let registration = Registration::new(purposes, None, None)?;
    registry
        .execute(&key.register_msg(&registration))
        .with_context(|| format!("{chain_id}: registering clinician {}", c.id))?;
    let entry = ClinicianEntry {
        id: c.id.clone(),
        key_file,
        signing_key: b64(&key.public_key()),
        allowed_purposes: registration.allowed_purposes,
    };
    p.say(format!(
        "{chain_id}: clinician {} registered (key {})",
        entry.id,
        entry.key_file.display()
    ));
    Ok(entry)
}

/// `dir`'s key pair: made, or the one an earlier attempt made.
fn key_pair(dir: &Path) -> Result<PeerKeys> {
    let keys = KeyDir::new(dir);
    if keys.exists() {
        keys.load()
    } else {
        keys.init()
    }
}

/// The hospital's records (custodian) key pair and its own pseudonym key.
fn make_custodian(p: &Progress, chain_id: &str, accounts: &Path) -> Result<CustodianEntry> {
    let home = accounts.join("custodian");
    ehrx::keys::ensure_private_dir(&home)?;
    let records_key_dir = home.join("keys");
    let records = key_pair(&records_key_dir)?;
    let pseudonym_key_file = home.join("pseudonym.key");
    if pseudonym_key_file.exists() {
        PseudonymKey::load(&pseudonym_key_file)?;
    } else {
        PseudonymKey::create_file(&pseudonym_key_file)?;
    }
    let entry = CustodianEntry {
        records_key_dir,
        records_key: b64(records.encryption_public().as_bytes()),
        pseudonym_key_file,
    };
    p.say(format!(
        "{chain_id}: records (custodian) key {}, pseudonym key {}",
        entry.records_key,
        entry.pseudonym_key_file.display()
    ));
    Ok(entry)
}

/// An account's address, from the chain.json `up` wrote.
fn account_address(dir: &Path, chain_id: &str, account: &str) -> Result<String> {
    let path = layout::chain_dir(dir, chain_id).join("chain.json");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let summary: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    summary["accounts"][account]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("{}: no account {account:?}", path.display()))
}

/// A `[[registry.peer]]`: its keys (in `accounts/peers/<account>/`) and its registration.
fn register_peer(
    p: &Progress,
    dir: &Path,
    chain_id: &str,
    registry: &Registry,
    peer: &config::RegistryPeer,
) -> Result<()> {
    let keys_dir = layout::accounts_home(dir, chain_id)
        .join("peers")
        .join(&peer.account);
    let keys = key_pair(&keys_dir)?;
    let roles = peer
        .roles
        .iter()
        .map(|r| admin::parse_role(r).map_err(|e| anyhow!("registry.peer {}: {e}", peer.account)))
        .collect::<Result<Vec<Role>>>()?;
    let input = PeerInput {
        address: account_address(dir, chain_id, &peer.account)?,
        signing_key: keys.signing_public().into(),
        encryption_key: keys.encryption_public().as_bytes().to_vec().into(),
        device_id: format!("devnet-{}", peer.account),
        roles,
        valid_from: None,
        valid_until: None,
    };
    registry
        .execute(&ExecuteMsg::RegisterPeer { peer: input })
        .with_context(|| format!("{chain_id}: registering peer {}", peer.account))?;
    p.say(format!(
        "{chain_id}: peer {} registered ({}; keys {})",
        peer.account,
        peer.roles.join(", "),
        keys_dir.display()
    ));
    Ok(())
}

/// The admin's view of `on`'s registry.
fn registry_of(devnet: &Devnet, dir: &Path, on: &str) -> Result<(BlockingChain, String)> {
    let deployed = deployed_or_fail(dir, on)?;
    let admin = client(devnet, dir, on, admin_account(devnet, on)?)?;
    Ok((admin, deployed.contracts.registry))
}

/// On `on`'s registry: UpsertPartner for `partner` (connection id, counterparty port,
/// status, the partner's records key as encryption_key when given).
#[allow(clippy::too_many_arguments)]
pub fn upsert_partner(
    devnet: &Devnet,
    dir: &Path,
    on: &str,
    partner: &str,
    connection_id: &str,
    counterparty_port: &str,
    encryption_key: Option<&str>,
    status: &str,
) -> Result<()> {
    let args = PartnerArgs {
        partner: partner.to_string(),
        connection_id: connection_id.to_string(),
        counterparty_port: counterparty_port.to_string(),
        encryption_key: encryption_key.map(str::to_string),
        status: admin::Status::from_str(status, true)
            .map_err(|_| anyhow!("partner status {status:?} is not active or suspended"))?,
        accepted_purposes: Vec::new(),
    };
    let msg = ExecuteMsg::UpsertPartner {
        partner: args
            .input()
            .with_context(|| format!("{on}: partner {partner}"))?,
    };
    let (admin, contract) = registry_of(devnet, dir, on)?;
    let registry = Registry {
        chain: &admin,
        contract,
    };
    registry
        .execute(&msg)
        .with_context(|| format!("{on}: UpsertPartner {partner}"))?;
    Ok(())
}

/// The channel id `on`'s registry has bound for `partner` (None while unbound).
pub fn partner_channel(
    devnet: &Devnet,
    dir: &Path,
    on: &str,
    partner: &str,
) -> Result<Option<String>> {
    let (admin, contract) = registry_of(devnet, dir, on)?;
    let registry = Registry {
        chain: &admin,
        contract,
    };
    let found = registry.partner(partner)?.ok_or_else(|| {
        anyhow!(
            "{on}: the registry {} has no partner {partner}: register it first (upsert_partner)",
            registry.contract
        )
    })?;
    Ok(found.channel_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> Deployed {
        Deployed {
            code_ids: CodeIds {
                registry: 1,
                exchange: 2,
            },
            contracts: Contracts {
                registry: "wasm1reg".into(),
                exchange: "wasm1ex".into(),
            },
            exchange_port: "wasm.wasm1ex".into(),
            clinician: Some(ClinicianEntry {
                id: "devnet-clinician-01".into(),
                key_file: dir.join("c.key"),
                signing_key: "AAAA".into(),
                allowed_purposes: vec![PurposeOfUse::Treatment, PurposeOfUse::EmergencyTreatment],
            }),
            custodian: Some(CustodianEntry {
                records_key_dir: dir.join("keys"),
                records_key: "BBBB".into(),
                pseudonym_key_file: dir.join("pseudonym.key"),
            }),
            artifacts_sha256: Shas {
                registry: "aa".into(),
                exchange: "bb".into(),
            },
        }
    }

    #[test]
    fn deploy_json_round_trips_with_devnet_sh_field_names() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::create_dir_all(dir.join("hospital-a")).unwrap();
        assert!(deployed(dir, "hospital-a").unwrap().is_none());
        let d = sample(dir);
        write_deployed(dir, "hospital-a", &d).unwrap();
        let back = deployed(dir, "hospital-a").unwrap().unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&d).unwrap()
        );
        let v: serde_json::Value =
            serde_json::from_slice(&fs::read(deploy_file(dir, "hospital-a")).unwrap()).unwrap();
        assert_eq!(v["code_ids"]["exchange"], 2);
        assert_eq!(v["contracts"]["registry"], "wasm1reg");
        assert_eq!(v["exchange_port"], "wasm.wasm1ex");
        assert_eq!(
            v["clinician"]["allowed_purposes"],
            serde_json::json!(["treatment", "emergency_treatment"])
        );
        assert_eq!(v["custodian"]["records_key"], "BBBB");
        assert_eq!(v["artifacts_sha256"]["exchange"], "bb");
        assert!(!dir.join("hospital-a/deploy.json.tmp").exists());
    }

    #[test]
    fn a_deployed_chain_is_returned_without_asking_any_chain() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let repo = dir.join("repo");
        fs::create_dir_all(repo.join("artifacts")).unwrap();
        fs::write(repo.join("artifacts/registry.wasm"), b"\0asm-registry").unwrap();
        fs::write(repo.join("artifacts/exchange.wasm"), b"\0asm-exchange").unwrap();
        // Port 1: nothing answers there, so any chain access would fail.
        let devnet = Devnet::parse(
            "version = 1\n[network]\nport_base = 41000\n\
             [[chain]]\nid = \"hospital-a\"\nvalidators = 1\n\
             [[account]]\nname = \"admin\"\nrole = \"admin\"\nfee = 1\nbond = 1\n\
             [[contract]]\nname = \"registry\"\nwasm = \"artifacts/registry.wasm\"\n\
             [[contract]]\nname = \"exchange\"\nwasm = \"artifacts/exchange.wasm\"\n",
        )
        .unwrap();
        fs::create_dir_all(dir.join("hospital-a")).unwrap();
        let d = sample(dir);
        write_deployed(dir, "hospital-a", &d).unwrap();
        let p = Progress::new();
        let again = deploy_chain(&p, &devnet, dir, "hospital-a", &repo).unwrap();
        assert_eq!(
            serde_json::to_value(&again).unwrap(),
            serde_json::to_value(&d).unwrap()
        );
        // Without the artifacts (a clean checkout), a deployed chain is still deployed.
        fs::remove_dir_all(repo.join("artifacts")).unwrap();
        let again = deploy_chain(&p, &devnet, dir, "hospital-a", &repo).unwrap();
        assert_eq!(again.contracts, d.contracts);
        // A damaged deploy.json is an error naming the fix, never a redeployment.
        fs::write(deploy_file(dir, "hospital-a"), b"{").unwrap();
        let err = format!(
            "{:#}",
            deploy_chain(&p, &devnet, dir, "hospital-a", &repo).unwrap_err()
        );
        assert!(err.contains("down --clean"), "{err}");
    }

    #[test]
    fn a_client_tries_every_validator_and_names_them() {
        let tmp = tempfile::tempdir().unwrap();
        // Two validators on ports nothing listens on (41900..).
        let devnet = Devnet::parse(
            "version = 1\n[network]\nport_base = 41900\n\
             [[chain]]\nid = \"hospital-a\"\nvalidators = 2\n\
             [[account]]\nname = \"admin\"\nrole = \"admin\"\nfee = 1\nbond = 1\n",
        )
        .unwrap();
        let key = KeyringKey {
            home: layout::accounts_home(tmp.path(), "hospital-a"),
            backend: "test".into(),
            name: "admin".into(),
        };
        key.create("wasm").unwrap();
        let err = client(&devnet, tmp.path(), "hospital-a", "admin")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no validator's RPC answers"), "{err}");
        assert!(
            err.contains("hospital-a-val0") && err.contains("hospital-a-val1"),
            "{err}"
        );
        let err = client(&devnet, tmp.path(), "hospital-a", "peer9")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no [[account]] named \"peer9\""), "{err}");
    }

    #[test]
    fn purposes_read_as_the_devnet_file_writes_them() {
        assert_eq!(
            purpose("emergency-treatment").unwrap(),
            PurposeOfUse::EmergencyTreatment
        );
        assert_eq!(purpose("treatment").unwrap(), PurposeOfUse::Treatment);
        assert!(purpose("research").is_err());
    }

    #[test]
    fn an_undeployed_chain_has_no_partners_to_set() {
        let tmp = tempfile::tempdir().unwrap();
        let devnet = Devnet::parse(
            "version = 1\n[network]\nport_base = 41000\n\
             [[chain]]\nid = \"hospital-a\"\nvalidators = 1\n\
             [[account]]\nname = \"admin\"\nrole = \"admin\"\nfee = 1\nbond = 1\n",
        )
        .unwrap();
        let upsert = |status: &str| {
            upsert_partner(
                &devnet,
                tmp.path(),
                "hospital-a",
                "hospital-b",
                "connection-0",
                "wasm.wasm1x",
                None,
                status,
            )
            .unwrap_err()
            .to_string()
        };
        let err = upsert("active");
        assert!(err.contains("deploy the chain first"), "{err}");
        let err = upsert("paused");
        assert!(err.contains("not active or suspended"), "{err}");
    }
}
