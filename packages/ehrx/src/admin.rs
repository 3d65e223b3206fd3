//! `ehrx admin`: the registry and exchange administration a hospital's IT does, signed by
//! the registry admin's account (`key_name`): deploying the two contracts, registering and
//! revoking peers and clinicians, the partner lookup table, the policy, and reading them
//! back. Every message is a type of `ehr_protocol::registry` (or `exchange`); nothing here
//! writes protocol JSON by hand.
//!
//! Before it sends anything, a command reads the registry's config and stops when the
//! signing account is not its admin (`AdminError::NotAdmin`): the contract would refuse
//! too, but with a less helpful error. Input is checked before that (keys' lengths and
//! kinds, roles, policy field names), so bad input sends nothing.

use crate::chain::{self, ChainClient, TxResult};
use crate::cli::{print_json, progress, read_input, ChainFactory, Purpose};
use crate::config::Settings;
use crate::error::AdminError;
use crate::peer::Exchange;
use crate::time;
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use clap::{Args, Subcommand, ValueEnum};
use cosmwasm_std::{Binary, Timestamp};
use ehr_protocol::exchange::{InstantiateMsg as ExchangeInstantiate, PurposeOfUse};
use ehr_protocol::registry::{
    default_accepted_purposes, ClinicianInput, ConfigResponse, ExecuteMsg, InstantiateMsg, Partner,
    PartnerInput, PartnerStatus, PartnersResponse, Peer, PeerInput, Policy, QueryMsg, Role,
};
use ehrx_chain::msgs;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Upload the registry and exchange wasm (instantiable by this account only),
    /// instantiate both and point the registry at the exchange (SetExchange).
    Deploy(DeployArgs),
    /// Register a peer (or re-register it: keys, roles and window are replaced).
    RegisterPeer(PeerArgs),
    /// Register a clinician from the message `ehrx clinician new` (or `show`, `rotate`)
    /// printed on the clinician's machine.
    RegisterClinician {
        /// File holding that message (`-` reads stdin).
        #[arg(long, default_value = "-")]
        message: PathBuf,
    },
    /// Add or update a partner network in the lookup table (UpsertPartner).
    UpsertPartner(PartnerArgs),
    /// Change the policy (UpdatePolicy): the current one with the fields of --file and
    /// --set replaced.
    SetPolicy(PolicyArgs),
    /// Release a quarantined peer and clear its strikes.
    ReleasePeer {
        #[arg(long)]
        address: String,
    },
    /// Revoke a peer: it can no longer store, request, reply or retrieve.
    RevokePeer {
        #[arg(long)]
        address: String,
    },
    /// Replace a peer's keys at once (the output of `ehrx keys rotate` on the peer).
    RotatePeerKeys {
        #[arg(long)]
        address: String,
        #[command(flatten)]
        keys: PeerKeyArgs,
    },
    /// Revoke a clinician at once, also for their requests in flight.
    RevokeClinician {
        #[arg(long)]
        id: String,
    },
    /// Print the registry's config, a peer, a clinician or the partners (JSON).
    Show {
        #[command(subcommand)]
        what: ShowCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ShowCommand {
    /// Admin, exchange, network id and policy.
    Config,
    /// A peer (`null` when the address is not registered).
    Peer {
        #[arg(long)]
        address: String,
    },
    /// A clinician (`null` when the id is not registered).
    Clinician {
        #[arg(long)]
        id: String,
    },
    /// A partner network (`null` when it is not in the lookup table).
    Partner {
        #[arg(long)]
        partner: String,
    },
    /// Every partner network.
    Partners,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The registry contract's wasm.
    #[arg(long)]
    pub registry_wasm: PathBuf,
    /// The exchange contract's wasm.
    #[arg(long)]
    pub exchange_wasm: PathBuf,
    /// This network's id in the protocol [default: the chain id].
    #[arg(long)]
    pub network_id: Option<String>,
    /// Contract labels are <prefix>-registry and <prefix>-exchange.
    #[arg(long, default_value = "ehrx")]
    pub label_prefix: String,
    /// Print the result as one JSON object (for scripts).
    #[arg(long)]
    pub json: bool,
}

/// A peer's two public keys, base64, as `ehrx keys show` prints them.
#[derive(Debug, Args)]
pub struct PeerKeyArgs {
    /// Compressed secp256k1 public key (base64, 33 bytes): signs stores, requests, replies.
    #[arg(long)]
    pub signing_key: String,
    /// X25519 public key (base64, 32 bytes): replies are sealed to it.
    #[arg(long)]
    pub encryption_key: String,
}

impl PeerKeyArgs {
    fn keys(&self) -> Result<(Binary, Binary)> {
        Ok((
            signing_public_key(&self.signing_key, "--signing-key")?,
            x25519_public_key(&self.encryption_key, "--encryption-key")?,
        ))
    }
}

#[derive(Debug, Args)]
pub struct PeerArgs {
    /// The peer's chain account (bech32).
    #[arg(long)]
    pub address: String,
    /// What it may do (repeat, or separate with commas).
    #[arg(long = "roles", alias = "role", value_delimiter = ',', value_parser = parse_role, required = true)]
    pub roles: Vec<Role>,
    #[command(flatten)]
    pub keys: PeerKeyArgs,
    /// Informational device id, e.g. the paper's MAC address (never an authentication
    /// factor; 1-64 of A-Z a-z 0-9 . _ -).
    #[arg(long)]
    pub device_id: String,
    /// Valid from (unix seconds, YYYY-MM-DD or RFC 3339) [default: at once].
    #[arg(long)]
    pub valid_from: Option<String>,
    /// Valid until [default: never].
    #[arg(long)]
    pub valid_until: Option<String>,
}

impl PeerArgs {
    pub fn input(&self) -> Result<PeerInput> {
        let (signing_key, encryption_key) = self.keys.keys()?;
        ehr_protocol::validate::name(&self.device_id).map_err(|_| {
            anyhow!(
                "--device-id `{}` is not a device id (1-64 of A-Z a-z 0-9 . _ -)",
                self.device_id
            )
        })?;
        Ok(PeerInput {
            address: self.address.clone(),
            signing_key,
            encryption_key,
            device_id: self.device_id.clone(),
            roles: self.roles.clone(),
            valid_from: moment(self.valid_from.as_deref())?,
            valid_until: moment(self.valid_until.as_deref())?,
        })
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Status {
    Active,
    Suspended,
}

#[derive(Debug, Args)]
pub struct PartnerArgs {
    /// The partner's network id (its chain id), e.g. hospital-b.
    #[arg(long)]
    pub partner: String,
    /// Our IBC connection to the partner chain, e.g. connection-0.
    #[arg(long)]
    pub connection_id: String,
    /// The partner exchange contract's port, wasm.<address>.
    #[arg(long)]
    pub counterparty_port: String,
    /// The partner's custodian (records) key, X25519 base64: requests seal the patient's
    /// details to it. Without it, requests to the partner cannot be sent.
    #[arg(long)]
    pub encryption_key: Option<String>,
    #[arg(long, value_enum, default_value = "active")]
    pub status: Status,
    /// Purposes we answer this partner's requests for (repeat, or commas) [default:
    /// treatment, emergency-treatment].
    #[arg(long = "accept", value_enum, value_delimiter = ',')]
    pub accepted_purposes: Vec<Purpose>,
}

impl PartnerArgs {
    pub fn input(&self) -> Result<PartnerInput> {
        if !self.counterparty_port.starts_with("wasm.") {
            bail!(
                "--counterparty-port `{}` is not a wasm port: it is `wasm.` and the partner's \
                 exchange contract address",
                self.counterparty_port
            );
        }
        Ok(PartnerInput {
            partner_id: self.partner.clone(),
            connection_id: self.connection_id.clone(),
            counterparty_port: self.counterparty_port.clone(),
            encryption_key: self
                .encryption_key
                .as_deref()
                .map(|k| x25519_public_key(k, "--encryption-key"))
                .transpose()?,
            status: match self.status {
                Status::Active => PartnerStatus::Active,
                Status::Suspended => PartnerStatus::Suspended,
            },
            accepted_purposes: if self.accepted_purposes.is_empty() {
                default_accepted_purposes()
            } else {
                self.accepted_purposes
                    .iter()
                    .map(|p| PurposeOfUse::from(*p))
                    .collect()
            },
        })
    }
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Policy fields to change: JSON, or TOML by the .toml extension (`-` reads JSON from
    /// stdin); a whole policy or some of its fields.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// One field to change, e.g. --set rate_limit_count=5 (repeatable; after --file).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub set: Vec<String>,
}

impl PolicyArgs {
    /// `current` with the fields of the file and the flags replaced.
    pub fn apply(&self, current: &Policy) -> Result<Policy> {
        if self.file.is_none() && self.set.is_empty() {
            bail!("nothing to change: give --file <policy.json|toml> or --set FIELD=VALUE");
        }
        let mut policy = serde_json::to_value(current)?;
        let fields = policy
            .as_object_mut()
            .ok_or_else(|| anyhow!("the policy is not an object"))?;
        let mut changes = serde_json::Map::new();
        if let Some(path) = &self.file {
            let text = String::from_utf8(read_input(path)?)
                .with_context(|| format!("{} is not text", path.display()))?;
            let value: Value = if path.extension().is_some_and(|e| e == "toml") {
                toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?
            } else {
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", path.display()))?
            };
            // A file may hold the policy itself or an `update_policy` message's body.
            let value = value.get("policy").cloned().unwrap_or(value);
            let Value::Object(map) = value else {
                bail!("{} must hold an object of policy fields", path.display());
            };
            changes.extend(map);
        }
        for set in &self.set {
            let (name, value) = set
                .split_once('=')
                .ok_or_else(|| anyhow!("--set `{set}` is not FIELD=VALUE"))?;
            let value: Value = serde_json::from_str(value.trim())
                .map_err(|_| anyhow!("--set {name}: `{value}` is not a number"))?;
            changes.insert(name.trim().to_string(), value);
        }
        for (name, value) in changes {
            let Some(slot) = fields.get_mut(&name) else {
                let known: Vec<&str> = fields.keys().map(String::as_str).collect();
                bail!(
                    "`{name}` is not a policy field (the fields: {})",
                    known.join(", ")
                );
            };
            *slot = value;
        }
        serde_json::from_value(policy).context("the new policy's values do not fit its fields")
    }
}

/// Parses a role (`store`, `request`, `reply`, `admin`), ignoring spaces around it.
pub fn parse_role(text: &str) -> Result<Role, String> {
    let text = text.trim();
    [Role::Store, Role::Request, Role::Reply, Role::Admin]
        .into_iter()
        .find(|r| r.as_str() == text)
        .ok_or_else(|| format!("`{text}` is not a role (store, request, reply, admin)"))
}

fn moment(text: Option<&str>) -> Result<Option<Timestamp>> {
    Ok(text
        .map(time::parse_moment)
        .transpose()?
        .map(Timestamp::from_seconds))
}

fn base64_key(text: &str, flag: &str, len: usize, what: &str) -> Result<Binary> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| {
            anyhow!("{flag} is not base64 (give the {what} as `ehrx keys show` prints it)")
        })?;
    if bytes.len() != len {
        bail!(
            "{flag} is {} bytes, not the {len} of a {what} (`ehrx keys show` prints it)",
            bytes.len()
        );
    }
    Ok(Binary::from(bytes))
}

fn signing_public_key(text: &str, flag: &str) -> Result<Binary> {
    let key = base64_key(text, flag, 33, "compressed secp256k1 public key")?;
    k256::PublicKey::from_sec1_bytes(&key)
        .map_err(|_| anyhow!("{flag} is not a point of secp256k1"))?;
    Ok(key)
}

fn x25519_public_key(text: &str, flag: &str) -> Result<Binary> {
    base64_key(text, flag, 32, "X25519 public key")
}

/// The `RegisterClinician` message `ehrx clinician new` printed, read back as its type.
pub fn clinician_registration(text: &str) -> Result<ClinicianInput> {
    let msg: ExecuteMsg = serde_json::from_str(text.trim()).map_err(|e| {
        anyhow!(
            "the clinician's registration is not the message `ehrx clinician new` prints \
             ({e}); pass that message as it is"
        )
    })?;
    match msg {
        ExecuteMsg::RegisterClinician { clinician } => {
            ehr_protocol::validate::name(&clinician.clinician_id).map_err(|_| {
                anyhow!(
                    "`{}` is not a clinician id (1-64 of A-Z a-z 0-9 . _ -)",
                    clinician.clinician_id
                )
            })?;
            ehr_protocol::validate::secp256k1_pubkey(&clinician.signing_key).map_err(|_| {
                anyhow!("the clinician's signing_key is not a compressed secp256k1 key")
            })?;
            Ok(clinician)
        }
        _ => bail!(
            "the message is not a register_clinician message (`ehrx clinician new` prints one)"
        ),
    }
}

/// The registry of this chain, as its admin sees it.
pub struct Registry<'a> {
    pub chain: &'a dyn ChainClient,
    pub contract: String,
}

impl<'a> Registry<'a> {
    /// The registry named by `registry` (setting or flag), else the one the exchange names.
    pub fn locate(chain: &'a dyn ChainClient, settings: &Settings) -> Result<Registry<'a>> {
        let contract = match settings.registry.as_deref().filter(|r| !r.is_empty()) {
            Some(registry) => registry.to_string(),
            None => {
                let exchange = settings.exchange().map_err(|_| {
                    anyhow!(
                        "no registry contract address: set `registry` (or `exchange`, whose \
                         registry is then used) in ehrx.toml or pass --registry"
                    )
                })?;
                Exchange::connect(chain, exchange)?.registry
            }
        };
        Ok(Registry { chain, contract })
    }

    pub fn query<T: serde::de::DeserializeOwned>(&self, msg: &QueryMsg) -> Result<T> {
        chain::query(self.chain, &self.contract, msg).with_context(|| {
            format!(
                "cannot read the registry contract {} (is `registry` / --registry right?)",
                self.contract
            )
        })
    }

    pub fn config(&self) -> Result<ConfigResponse> {
        self.query(&QueryMsg::Config {})
    }

    pub fn peer(&self, address: &str) -> Result<Option<Peer>> {
        self.query(&QueryMsg::Peer {
            address: address.to_string(),
        })
    }

    pub fn partner(&self, partner_id: &str) -> Result<Option<Partner>> {
        self.query(&QueryMsg::Partner {
            partner_id: partner_id.to_string(),
        })
    }

    /// Every partner, page by page.
    pub fn partners(&self) -> Result<Vec<Partner>> {
        let mut all: Vec<Partner> = Vec::new();
        loop {
            let page: PartnersResponse = self.query(&QueryMsg::Partners {
                start_after: all.last().map(|p| p.partner_id.clone()),
                limit: Some(30),
            })?;
            let done = page.partners.is_empty();
            all.extend(page.partners);
            if done {
                return Ok(all);
            }
        }
    }

    /// Stops unless this chain client's account is the registry's admin.
    pub fn ensure_admin(&self) -> Result<ConfigResponse> {
        let config = self.config()?;
        let account = self
            .chain
            .address()
            .context("cannot find the signing account's address")?;
        if config.admin.as_str() != account {
            return Err(AdminError::NotAdmin {
                account,
                registry: self.contract.clone(),
                admin: config.admin.to_string(),
            }
            .into());
        }
        Ok(config)
    }

    /// Executes an admin message, after checking that this account is the admin.
    pub fn execute(&self, msg: &ExecuteMsg) -> Result<TxResult> {
        self.ensure_admin()?;
        chain::execute(self.chain, &self.contract, msg).with_context(|| {
            format!(
                "the registry {} did not take the admin's message",
                self.contract
            )
        })
    }
}

/// What `deploy` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Deployed {
    pub network_id: String,
    pub code_ids: CodeIds,
    pub contracts: Contracts,
    pub exchange_port: String,
    pub txhashes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodeIds {
    pub registry: u64,
    pub exchange: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Contracts {
    pub registry: String,
    pub exchange: String,
}

/// Reads a contract's wasm, refusing what is not wasm before anything is sent.
pub fn read_wasm(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !bytes.starts_with(b"\0asm") {
        bail!(
            "{} is not a wasm module (build the contracts with scripts/build-wasm.sh)",
            path.display()
        );
    }
    Ok(bytes)
}

fn first_attr(tx: &TxResult, kind: &str, key: &str) -> Result<String> {
    tx.event_values(kind, key)
        .next()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("transaction {} has no {kind}.{key} event", tx.txhash))
}

fn send_any(chain: &dyn ChainClient, any: msgs::Any, what: &str) -> Result<TxResult> {
    let tx = chain
        .execute_any(&[any])
        .with_context(|| format!("{what} failed"))?;
    tx.ensure_accepted("")
        .with_context(|| format!("{what} failed"))?;
    Ok(tx)
}

/// Uploads both contracts (instantiable by this account only), instantiates them (this
/// account may migrate them) and sets the registry's exchange.
pub fn deploy(
    chain: &dyn ChainClient,
    network_id: &str,
    registry_wasm: &[u8],
    exchange_wasm: &[u8],
    label_prefix: &str,
    log: &mut dyn FnMut(&str),
) -> Result<Deployed> {
    let admin = chain
        .address()
        .context("cannot find the signing account's address")?;
    let mut txhashes = Vec::new();
    let mut upload = |wasm: &[u8], name: &str| -> Result<u64> {
        let tx = send_any(
            chain,
            msgs::store_code(&admin, wasm, &[&admin])?,
            &format!("uploading the {name} wasm"),
        )?;
        txhashes.push(tx.txhash.clone());
        let id = first_attr(&tx, "store_code", "code_id")?;
        id.parse()
            .map_err(|_| anyhow!("the chain answered code id `{id}` for the {name}"))
    };
    let registry_code = upload(registry_wasm, "registry")?;
    log(&format!("registry code {registry_code}"));
    let exchange_code = upload(exchange_wasm, "exchange")?;
    log(&format!("exchange code {exchange_code}"));
    let mut instantiate = |code: u64, name: &str, msg: Vec<u8>| -> Result<String> {
        let label = format!("{label_prefix}-{name}");
        let tx = send_any(
            chain,
            msgs::instantiate_contract(&admin, Some(&admin), code, &label, &msg)?,
            &format!("instantiating the {name} (code {code})"),
        )?;
        txhashes.push(tx.txhash.clone());
        first_attr(&tx, "instantiate", "_contract_address")
    };
    let registry = instantiate(
        registry_code,
        "registry",
        serde_json::to_vec(&InstantiateMsg {
            admin: None,
            network_id: network_id.to_string(),
            policy: None,
        })?,
    )?;
    log(&format!("registry {registry}"));
    let exchange = instantiate(
        exchange_code,
        "exchange",
        serde_json::to_vec(&ExchangeInstantiate {
            registry: registry.clone(),
        })?,
    )?;
    log(&format!("exchange {exchange} (IBC port wasm.{exchange})"));
    let registry_admin = Registry {
        chain,
        contract: registry.clone(),
    };
    let tx = registry_admin.execute(&ExecuteMsg::SetExchange {
        exchange: exchange.clone(),
    })?;
    txhashes.push(tx.txhash);
    Ok(Deployed {
        network_id: network_id.to_string(),
        code_ids: CodeIds {
            registry: registry_code,
            exchange: exchange_code,
        },
        exchange_port: format!("wasm.{exchange}"),
        contracts: Contracts { registry, exchange },
        txhashes,
    })
}

/// The registry message of an admin command that changes the registry (`None` for
/// `deploy` and `show`). `current` reads the registry's config (for `set-policy`).
pub fn message(
    command: &AdminCommand,
    current: &dyn Fn() -> Result<ConfigResponse>,
) -> Result<Option<ExecuteMsg>> {
    Ok(Some(match command {
        AdminCommand::Deploy(_) | AdminCommand::Show { .. } => return Ok(None),
        AdminCommand::RegisterPeer(args) => ExecuteMsg::RegisterPeer {
            peer: args.input()?,
        },
        AdminCommand::RegisterClinician { message } => {
            let text = String::from_utf8(read_input(message)?)
                .context("the clinician's registration is not text")?;
            ExecuteMsg::RegisterClinician {
                clinician: clinician_registration(&text)?,
            }
        }
        AdminCommand::UpsertPartner(args) => ExecuteMsg::UpsertPartner {
            partner: args.input()?,
        },
        AdminCommand::SetPolicy(args) => ExecuteMsg::UpdatePolicy {
            policy: args.apply(&current()?.policy)?,
        },
        AdminCommand::ReleasePeer { address } => ExecuteMsg::ReleasePeer {
            address: address.clone(),
        },
        AdminCommand::RevokePeer { address } => ExecuteMsg::RevokePeer {
            address: address.clone(),
        },
        AdminCommand::RotatePeerKeys { address, keys } => {
            let (signing_key, encryption_key) = keys.keys()?;
            ExecuteMsg::RotatePeerKeys {
                address: address.clone(),
                signing_key,
                encryption_key,
            }
        }
        AdminCommand::RevokeClinician { id } => ExecuteMsg::RevokeClinician {
            clinician_id: id.clone(),
        },
    }))
}

/// What the registry holds, after a change, for the thing the change was about.
fn changed(registry: &Registry, msg: &ExecuteMsg) -> Result<Value> {
    Ok(match msg {
        ExecuteMsg::RegisterPeer { peer } => json!({ "peer": registry.peer(&peer.address)? }),
        ExecuteMsg::RotatePeerKeys { address, .. }
        | ExecuteMsg::RevokePeer { address }
        | ExecuteMsg::ReleasePeer { address } => json!({ "peer": registry.peer(address)? }),
        ExecuteMsg::RegisterClinician { clinician } => {
            json!({ "clinician": registry.query::<Value>(&QueryMsg::Clinician {
                clinician_id: clinician.clinician_id.clone(),
            })? })
        }
        ExecuteMsg::RevokeClinician { clinician_id } => {
            json!({ "clinician": registry.query::<Value>(&QueryMsg::Clinician {
                clinician_id: clinician_id.clone(),
            })? })
        }
        ExecuteMsg::UpsertPartner { partner } => {
            json!({ "partner": registry.partner(&partner.partner_id)? })
        }
        _ => json!({ "policy": registry.config()?.policy }),
    })
}

/// Runs `ehrx admin <command>`.
pub fn run(settings: &Settings, make_chain: ChainFactory, command: AdminCommand) -> Result<()> {
    if let AdminCommand::Deploy(args) = &command {
        let registry_wasm = read_wasm(&args.registry_wasm)?;
        let exchange_wasm = read_wasm(&args.exchange_wasm)?;
        let network_id = match &args.network_id {
            Some(id) => id.clone(),
            None => settings
                .chain_id
                .clone()
                .ok_or_else(|| anyhow!("no network id: pass --network-id or --chain-id"))?,
        };
        let chain = make_chain(settings)?;
        let deployed = deploy(
            chain.as_ref(),
            &network_id,
            &registry_wasm,
            &exchange_wasm,
            &args.label_prefix,
            &mut |m| progress(m),
        )?;
        if args.json {
            return print_json(&serde_json::to_value(&deployed)?);
        }
        println!("network id      {}", deployed.network_id);
        println!("registry code   {}", deployed.code_ids.registry);
        println!("exchange code   {}", deployed.code_ids.exchange);
        println!("registry        {}", deployed.contracts.registry);
        println!("exchange        {}", deployed.contracts.exchange);
        println!("exchange port   {}", deployed.exchange_port);
        return Ok(());
    }
    // Input is checked before any chain is asked (a policy's field names against the
    // default policy; its values against the chain's below).
    let prepared = match &command {
        AdminCommand::Show { .. } => None,
        AdminCommand::SetPolicy(args) => {
            args.apply(&Policy::default())?;
            None
        }
        _ => message(&command, &|| bail!("no chain asked yet"))?,
    };
    let chain = make_chain(settings)?;
    let registry = Registry::locate(chain.as_ref(), settings)?;
    if let AdminCommand::Show { what } = &command {
        let shown = match what {
            ShowCommand::Config => serde_json::to_value(registry.config()?)?,
            ShowCommand::Peer { address } => serde_json::to_value(registry.peer(address)?)?,
            ShowCommand::Clinician { id } => registry.query(&QueryMsg::Clinician {
                clinician_id: id.clone(),
            })?,
            ShowCommand::Partner { partner } => serde_json::to_value(registry.partner(partner)?)?,
            ShowCommand::Partners => json!({ "partners": registry.partners()? }),
        };
        return print_json(&shown);
    }
    let msg = match prepared {
        Some(msg) => msg,
        None => {
            message(&command, &|| registry.config())?.ok_or_else(|| anyhow!("nothing to send"))?
        }
    };
    let tx = registry.execute(&msg)?;
    let mut out = changed(&registry, &msg)?;
    out["txhash"] = json!(tx.txhash);
    out["registry"] = json!(registry.contract);
    print_json(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> AdminCommand {
        let mut all = vec!["ehrx", "admin"];
        all.extend_from_slice(args);
        match Cli::try_parse_from(all).unwrap().command {
            Command::Admin { command } => command,
            _ => panic!("admin"),
        }
    }

    fn no_config() -> Result<ConfigResponse> {
        bail!("no chain here")
    }

    fn encryption() -> String {
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    }

    fn signing() -> String {
        let key = crate::keys::random_signing_key();
        base64::engine::general_purpose::STANDARD.encode(crate::keys::compressed_public(&key))
    }

    #[test]
    fn register_peer_builds_the_registry_message() {
        let (sk, ek) = (signing(), encryption());
        let cmd = parse(&[
            "register-peer",
            "--address",
            "wasm1peer",
            "--roles",
            "store, request",
            "--roles",
            "reply",
            "--signing-key",
            &sk,
            "--encryption-key",
            &ek,
            "--valid-until",
            "2030-01-01",
            "--device-id",
            "ws-12",
        ]);
        let Some(ExecuteMsg::RegisterPeer { peer }) = message(&cmd, &no_config).unwrap() else {
            panic!("register_peer");
        };
        assert_eq!(peer.roles, vec![Role::Store, Role::Request, Role::Reply]);
        assert_eq!(peer.signing_key.to_base64(), sk);
        assert_eq!(peer.encryption_key.to_base64(), ek);
        assert_eq!(
            peer.valid_until,
            Some(Timestamp::from_seconds(1_893_456_000))
        );
        assert_eq!(peer.valid_from, None);
        // Unknown roles and wrong keys are refused before any chain is asked.
        let bad_role = Cli::try_parse_from([
            "ehrx",
            "admin",
            "register-peer",
            "--address",
            "a",
            "--roles",
            "boss",
            "--signing-key",
            &sk,
            "--encryption-key",
            &ek,
            "--device-id",
            "d",
        ]);
        assert!(bad_role.unwrap_err().to_string().contains("not a role"));
        let peer_with = |signing_key: &str| {
            parse(&[
                "register-peer",
                "--address",
                "a",
                "--roles",
                "store",
                "--signing-key",
                signing_key,
                "--encryption-key",
                &ek,
                "--device-id",
                "d",
            ])
        };
        let err = message(&peer_with(&ek), &no_config)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--signing-key is 32 bytes"), "{err}");
        let not_a_point = base64::engine::general_purpose::STANDARD.encode([5u8; 33]);
        let bad = peer_with(&not_a_point);
        assert!(message(&bad, &no_config).is_err());
    }

    #[test]
    fn a_clinician_registers_from_what_clinician_new_printed() {
        let text = format!(
            r#"{{"register_clinician":{{"clinician":{{"clinician_id":"dr-adams","signing_key":"{}","allowed_purposes":["treatment"],"valid_from":null,"valid_until":null}}}}}}"#,
            signing()
        );
        let clinician = clinician_registration(&text).unwrap();
        assert_eq!(clinician.clinician_id, "dr-adams");
        assert_eq!(clinician.allowed_purposes, vec![PurposeOfUse::Treatment]);
        let err = clinician_registration(r#"{"revoke_peer":{"address":"a"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("register_clinician"), "{err}");
        assert!(clinician_registration("dr-adams").is_err());
    }

    fn partner_cmd(port: &str, more: &[&str]) -> AdminCommand {
        let mut args = vec![
            "upsert-partner",
            "--partner",
            "hospital-b",
            "--connection-id",
            "connection-0",
            "--counterparty-port",
            port,
        ];
        args.extend_from_slice(more);
        parse(&args)
    }

    #[test]
    fn upsert_partner_defaults_and_checks() {
        let ek = encryption();
        let cmd = partner_cmd("wasm.wasm1x", &["--encryption-key", &ek]);
        let Some(ExecuteMsg::UpsertPartner { partner }) = message(&cmd, &no_config).unwrap() else {
            panic!("upsert_partner");
        };
        assert_eq!(partner.status, PartnerStatus::Active);
        assert_eq!(partner.accepted_purposes, default_accepted_purposes());
        assert_eq!(partner.encryption_key.unwrap().to_base64(), ek);
        let cmd = partner_cmd(
            "wasm.wasm1x",
            &["--status", "suspended", "--accept", "payment"],
        );
        let Some(ExecuteMsg::UpsertPartner { partner }) = message(&cmd, &no_config).unwrap() else {
            panic!("upsert_partner");
        };
        assert_eq!(partner.status, PartnerStatus::Suspended);
        assert_eq!(partner.accepted_purposes, vec![PurposeOfUse::Payment]);
        assert_eq!(partner.encryption_key, None);
        let err = message(&partner_cmd("wasm1x", &[]), &no_config)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a wasm port"), "{err}");
    }

    #[test]
    fn set_policy_changes_only_the_fields_given() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("policy.toml");
        std::fs::write(&file, "rate_limit_count = 5\nmax_request_ttl_secs = 900\n").unwrap();
        let cmd = parse(&[
            "set-policy",
            "--file",
            file.to_str().unwrap(),
            "--set",
            "rate_limit_count=7",
        ]);
        let current = || {
            Ok(ConfigResponse {
                admin: cosmwasm_std::Addr::unchecked("wasm1admin"),
                exchange: None,
                network_id: "hospital-a".into(),
                policy: Policy::default(),
            })
        };
        let Some(ExecuteMsg::UpdatePolicy { policy }) = message(&cmd, &current).unwrap() else {
            panic!("update_policy");
        };
        assert_eq!(policy.rate_limit_count, 7);
        assert_eq!(policy.max_request_ttl_secs, 900);
        assert_eq!(
            Policy {
                rate_limit_count: 1,
                max_request_ttl_secs: 3600,
                ..policy
            },
            Policy::default()
        );
        let unknown = parse(&["set-policy", "--set", "rate=1"]);
        let err = message(&unknown, &current).unwrap_err().to_string();
        assert!(err.contains("`rate` is not a policy field"), "{err}");
        let negative = parse(&["set-policy", "--set", "rate_limit_count=-1"]);
        assert!(message(&negative, &current).is_err());
        assert!(message(&parse(&["set-policy"]), &current).is_err());
    }

    #[test]
    fn simple_messages_name_their_subject() {
        let msg = message(
            &parse(&["revoke-clinician", "--id", "dr-adams"]),
            &no_config,
        );
        assert_eq!(
            msg.unwrap(),
            Some(ExecuteMsg::RevokeClinician {
                clinician_id: "dr-adams".into()
            })
        );
        let msg = message(&parse(&["release-peer", "--address", "wasm1p"]), &no_config);
        assert_eq!(
            msg.unwrap(),
            Some(ExecuteMsg::ReleasePeer {
                address: "wasm1p".into()
            })
        );
        assert_eq!(
            message(&parse(&["show", "partners"]), &no_config).unwrap(),
            None
        );
    }

    #[test]
    fn deploy_refuses_what_is_not_wasm() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("registry.wasm");
        std::fs::write(&path, b"{}").unwrap();
        let err = read_wasm(&path).unwrap_err().to_string();
        assert!(err.contains("not a wasm module"), "{err}");
    }
}
