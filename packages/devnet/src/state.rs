//! `devnet.json`: what a devnet directory holds, for the tests, the benchmark, the demo and
//! the peer tool. The same shape `scripts/devnet.sh` wrote (schema 1), with the validators
//! of each chain and the relayer instances added (schema 2). Written atomically (a
//! temporary file renamed), and `complete` only once everything in it runs.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::deploy::Deployed;
use crate::hermes::Side;

pub const SCHEMA: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub schema: u32,
    /// Everything below was made and ran at least once; `up` restarts such a devnet.
    pub complete: bool,
    pub devnet_dir: PathBuf,
    pub created_at: String,
    pub bond_denom: String,
    pub fee_denom: String,
    pub keyring_backend: String,
    pub channel_version: String,
    pub wasmd: Tool,
    pub artifacts_dir: PathBuf,
    /// The first relayer instance (what schema 1 had), and every instance.
    pub hermes: Hermes,
    pub chain_ids: Vec<String>,
    pub chains: BTreeMap<String, ChainEntry>,
    pub links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<Transfer>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    pub bin: PathBuf,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hermes {
    pub bin: PathBuf,
    pub version: String,
    pub config: PathBuf,
    pub log: PathBuf,
    pub pid_file: PathBuf,
    pub rest: String,
    pub telemetry: String,
    pub event_source: String,
    pub instances: Vec<HermesInstance>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HermesInstance {
    pub name: String,
    pub account: String,
    pub config: PathBuf,
    pub log: PathBuf,
    pub pid_file: PathBuf,
    pub rest: String,
    pub telemetry: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainEntry {
    pub chain_id: String,
    /// The accounts' wasmd home (keyring-backend test): `wasmd --home` for keys and txs.
    pub home: PathBuf,
    /// Validator 0's RPC as the wasmd CLI takes it (tcp://...) and as URLs.
    pub node: String,
    pub rpc: String,
    pub grpc: String,
    pub api: String,
    pub p2p: String,
    /// Every validator's RPC, for clients that fail over.
    pub rpcs: Vec<String>,
    pub log: PathBuf,
    pub pid_file: PathBuf,
    pub keyring_backend: String,
    pub mnemonics_dir: PathBuf,
    /// Account name -> address.
    pub keys: BTreeMap<String, String>,
    pub partners: BTreeMap<String, PartnerEntry>,
    pub validators: Vec<ValidatorEntry>,
    #[serde(flatten)]
    pub deployed: Deployed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidatorEntry {
    pub index: u8,
    pub moniker: String,
    pub home: PathBuf,
    pub node_id: String,
    pub operator: String,
    pub rpc: String,
    pub grpc: String,
    pub p2p: String,
    pub log: PathBuf,
    pub pid_file: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartnerEntry {
    pub connection_id: String,
    pub channel_id: String,
    pub client_id: String,
    pub counterparty_port: String,
    pub counterparty_channel_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Link {
    /// The `[[channel]]` of the devnet file.
    pub name: String,
    pub a: String,
    pub b: String,
    pub version: String,
    pub order: String,
    pub a_side: Side,
    pub b_side: Side,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transfer {
    pub a: String,
    pub b: String,
    pub port: String,
    pub version: String,
    pub a_connection: String,
    pub a_channel: String,
    pub b_channel: String,
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join("devnet.json")
}

impl State {
    /// The devnet.json of `dir`, if there is one.
    pub fn load(dir: &Path) -> Result<Option<State>> {
        let file = path(dir);
        let text = match fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        };
        let state: State = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a devnet description of this version (made by an older \
                 scripts/devnet.sh?); run `scripts/devnet.sh reset` and `up` again",
                file.display()
            )
        })?;
        Ok(Some(state))
    }

    /// Writes devnet.json atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let file = path(dir);
        let tmp = file.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &file).with_context(|| format!("renaming to {}", file.display()))?;
        Ok(())
    }

    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    /// Records a channel's two ends and each chain's partner entry for the other.
    pub fn add_link(&mut self, link: Link) {
        let (a, b) = (&link.a_side, &link.b_side);
        for (me, other) in [(a, b), (b, a)] {
            if let Some(chain) = self.chains.get_mut(&me.chain_id) {
                chain.partners.insert(
                    other.chain_id.clone(),
                    PartnerEntry {
                        connection_id: me.connection_id.clone(),
                        channel_id: me.channel_id.clone(),
                        client_id: me.client_id.clone(),
                        counterparty_port: other.port_id.clone(),
                        counterparty_channel_id: other.channel_id.clone(),
                    },
                );
            }
        }
        self.links.retain(|l| l.name != link.name);
        self.links.push(link);
    }
}
