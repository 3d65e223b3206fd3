//! The network as data: the devnet file (TOML) and its validation.
//!
//! One file describes the whole dev network: the hospital chains and their validators,
//! the accounts funded at genesis, the contracts and the registry set-up, the partners,
//! the IBC channels and the relayer instances. `relayer-config/devnet.toml` is the
//! example for today's two-chain network; `relayer-config/DEVNET.md` ("The Rust devnet
//! tool") documents the format. Every table refuses unknown keys, so a typo is an error
//! that names the key, not a silently ignored setting.
//!
//! This slice of the tool acts on `[[chain]]` and `[[account]]` only; the other tables
//! are parsed and cross-checked so that the format is settled before the code that
//! uses them lands.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::ports::{self, Service};

/// The version of the file format this tool reads.
pub const FORMAT_VERSION: u32 = 1;

/// The whole devnet file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Devnet {
    /// Format version: 1.
    pub version: u32,
    #[serde(default)]
    pub network: Network,
    #[serde(rename = "chain", default)]
    pub chains: Vec<Chain>,
    #[serde(rename = "account", default)]
    pub accounts: Vec<Account>,
    #[serde(rename = "contract", default)]
    pub contracts: Vec<Contract>,
    #[serde(default)]
    pub registry: Registry,
    #[serde(rename = "channel", default)]
    pub channels: Vec<Channel>,
    #[serde(rename = "partner", default)]
    pub partners: Vec<Partner>,
    #[serde(rename = "relayer", default)]
    pub relayers: Vec<Relayer>,
}

/// `[network]`: what all chains share.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Ports: chain i (its place in the file) uses `port_base + 100*i` unless it sets its
    /// own `port_base`; see [`crate::ports`].
    #[serde(default = "default_port_base")]
    pub port_base: u16,
    /// CometBFT log level of every node (`info` is ~350 MB a day a node).
    #[serde(default = "default_log_level")]
    pub log_level: String,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            port_base: default_port_base(),
            log_level: default_log_level(),
        }
    }
}

/// One `[[chain]]`: a hospital's wasmd chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chain {
    /// Chain id, also the name of its directory.
    pub id: String,
    /// Validators (nodes) of this chain, each with its own home, keys and ports.
    #[serde(default = "default_validators")]
    pub validators: u8,
    /// Made only by `ehrx-devnet add-chain ID` (a partner that joins later), not by `up`.
    #[serde(default)]
    pub on_demand: bool,
    /// First port of this chain (default: `network.port_base + 100 * index`).
    pub port_base: Option<u16>,
    /// CometBFT `timeout_commit` (the block time, roughly).
    #[serde(default = "default_timeout_commit")]
    pub timeout_commit: String,
    /// CometBFT `timeout_propose`.
    #[serde(default = "default_timeout_propose")]
    pub timeout_propose: String,
    /// The staking (bonding) denom: held only by the admin and the validator operators.
    #[serde(default = "default_bond_denom")]
    pub bond_denom: String,
    /// The denom everybody pays fees in; it cannot be bonded.
    #[serde(default = "default_fee_denom")]
    pub fee_denom: String,
    /// Each validator's self-bond at genesis, in `bond_denom` (1e6 = 1 voting power).
    #[serde(default = "default_self_bond")]
    pub self_bond: u128,
    /// Each validator operator's fee balance at genesis, in `fee_denom`.
    #[serde(default = "default_operator_fee")]
    pub operator_fee: u128,
    /// Staking unbonding time (Hermes' trusting period must stay below it).
    #[serde(default = "default_unbonding")]
    pub unbonding_time: String,
    /// Governance voting periods (pinning the contracts' codes is a proposal).
    #[serde(default = "default_voting_period")]
    pub voting_period: String,
    #[serde(default = "default_expedited_voting_period")]
    pub expedited_voting_period: String,
    #[serde(default)]
    pub slashing: Slashing,
    /// Code upload and instantiation: `admin` (AnyOfAddresses [admin], as production
    /// would) or `everybody` (experiments only).
    #[serde(default)]
    pub upload: UploadAccess,
}

/// `[chain.slashing]`: downtime rules for a small private network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slashing {
    /// Blocks over which liveness is counted.
    #[serde(default = "default_signed_blocks_window")]
    pub signed_blocks_window: u64,
    /// Share of the window a validator must sign, in percent: it is jailed once it has
    /// missed more than `signed_blocks_window * (100 - min_signed_percent) / 100` blocks.
    #[serde(default = "default_min_signed_percent")]
    pub min_signed_percent: u8,
    /// How long a jailed validator stays jailed before it may unjail.
    #[serde(default = "default_downtime_jail_duration")]
    pub downtime_jail_duration: String,
    /// Share of the stake burnt for downtime, in percent (0: none, a hospital's own node).
    #[serde(default)]
    pub slash_downtime_percent: u8,
    /// Share burnt for double signing, in percent.
    #[serde(default = "default_slash_double_sign_percent")]
    pub slash_double_sign_percent: u8,
    /// The maintenance window a validator may be down without being jailed; checked
    /// against the window at the fastest block rate (one block per `timeout_commit`).
    #[serde(default = "default_maintenance_window")]
    pub maintenance_window: String,
}

impl Default for Slashing {
    fn default() -> Self {
        Slashing {
            signed_blocks_window: default_signed_blocks_window(),
            min_signed_percent: default_min_signed_percent(),
            downtime_jail_duration: default_downtime_jail_duration(),
            slash_downtime_percent: 0,
            slash_double_sign_percent: default_slash_double_sign_percent(),
            maintenance_window: default_maintenance_window(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadAccess {
    #[default]
    Admin,
    Everybody,
}

/// One `[[account]]`, made on every chain (or the chains listed) and funded at genesis.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub name: String,
    pub role: Role,
    /// Genesis balance in the chain's fee denom.
    #[serde(default)]
    pub fee: u128,
    /// Genesis balance in the bonding denom: the admin only.
    #[serde(default)]
    pub bond: u128,
    /// The chains it exists on (default: all).
    pub chains: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The hospital's administrator: uploads and instantiates code, circuit super admin.
    Admin,
    /// Hermes' account.
    Relayer,
    /// A peer (a hospital application instance) of the exchange.
    Peer,
}

/// One `[[contract]]` deployed on every chain by `ehrx admin deploy` (not yet in this tool).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// `registry` or `exchange` (the names `ehrx admin deploy` knows).
    pub name: String,
    /// The wasm artifact, relative to the repository root.
    pub wasm: String,
    /// Pin the code in the VM cache by a governance proposal.
    #[serde(default)]
    pub pin: bool,
}

/// `[registry]`: what each chain's registry holds after deployment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// Make the hospital's records (custodian) and pseudonym keys.
    #[serde(default)]
    pub custodian: bool,
    #[serde(rename = "clinician", default)]
    pub clinicians: Vec<Clinician>,
    /// Peer accounts registered with their roles (`ehrx admin register-peer`).
    #[serde(rename = "peer", default)]
    pub peers: Vec<RegistryPeer>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clinician {
    pub id: String,
    pub purposes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryPeer {
    /// An `[[account]]` with role `peer`.
    pub account: String,
    pub roles: Vec<String>,
}

/// One `[[channel]]`: an IBC channel between the exchange contracts of two chains.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub name: String,
    /// The a-side chain (Hermes' `--a-chain`).
    pub a: String,
    pub b: String,
    /// The contract whose IBC port (`wasm.<address>`) both ends use.
    #[serde(default = "default_channel_contract")]
    pub contract: String,
    #[serde(default = "default_channel_version")]
    pub version: String,
    #[serde(default = "default_ordering")]
    pub ordering: String,
}

/// One `[[partner]]`: chain `chain` registers `partner` as an active partner, reached
/// over `channel`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partner {
    pub chain: String,
    pub partner: String,
    pub channel: String,
    #[serde(default = "default_partner_status")]
    pub status: String,
}

/// One `[[relayer]]`: a Hermes instance relaying the channels listed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relayer {
    pub name: String,
    pub channels: Vec<String>,
    /// Hermes REST port; telemetry is the next port.
    pub rest_port: u16,
    /// Which validator's RPC and gRPC it uses at first (it is moved to another one when
    /// that node dies).
    #[serde(default)]
    pub validator: u8,
    /// The `[[account]]` (role relayer) whose key signs its transactions. Each instance
    /// needs its own: two Hermes processes on one account race on its sequence.
    #[serde(default = "default_relayer_account")]
    pub account: String,
}

fn default_port_base() -> u16 {
    26000
}
fn default_log_level() -> String {
    "warn".into()
}
fn default_validators() -> u8 {
    4
}
fn default_timeout_commit() -> String {
    "500ms".into()
}
fn default_timeout_propose() -> String {
    "1s".into()
}
fn default_bond_denom() -> String {
    "stake".into()
}
fn default_fee_denom() -> String {
    "ufee".into()
}
fn default_self_bond() -> u128 {
    10_000_000_000
}
fn default_operator_fee() -> u128 {
    1_000_000_000_000
}
fn default_unbonding() -> String {
    "14d".into()
}
fn default_voting_period() -> String {
    "3s".into()
}
fn default_expedited_voting_period() -> String {
    "2s".into()
}
fn default_signed_blocks_window() -> u64 {
    10_000
}
fn default_min_signed_percent() -> u8 {
    50
}
fn default_downtime_jail_duration() -> String {
    "10m".into()
}
fn default_slash_double_sign_percent() -> u8 {
    5
}
fn default_maintenance_window() -> String {
    "10m".into()
}
fn default_channel_contract() -> String {
    "exchange".into()
}
fn default_channel_version() -> String {
    "ehr-exchange-3".into()
}
fn default_ordering() -> String {
    "unordered".into()
}
fn default_relayer_account() -> String {
    "relayer".into()
}
fn default_partner_status() -> String {
    "active".into()
}

/// The roles `ehrx admin register-peer --roles` takes.
const PEER_ROLES: [&str; 4] = ["store", "request", "reply", "admin"];

/// A problem in the file: where (a field path such as `chain[1].validators`), what, and
/// the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// All the problems of a file, one a line.
#[derive(Debug)]
pub struct Invalid(pub Vec<Problem>);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

impl Devnet {
    /// Every chain with `validators` validators (`up --validators N`: 1 for a fast inner
    /// loop); chains made on demand keep theirs.
    pub fn with_validators(mut self, n: u8) -> anyhow::Result<Devnet> {
        for c in self.chains.iter_mut().filter(|c| !c.on_demand) {
            c.validators = n;
        }
        for r in &mut self.relayers {
            r.validator = r.validator.min(n.saturating_sub(1));
        }
        self.validate().map_err(anyhow::Error::new)?;
        Ok(self)
    }

    /// Reads and validates a devnet file.
    pub fn load(path: &Path) -> anyhow::Result<Devnet> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        Devnet::parse(&text).map_err(|e| anyhow::anyhow!("{}:\n{e}", path.display()))
    }

    /// Parses and validates the text of a devnet file.
    pub fn parse(text: &str) -> anyhow::Result<Devnet> {
        let devnet: Devnet = toml::from_str(text).map_err(|e| anyhow::anyhow!("  {e}"))?;
        devnet.validate()?;
        Ok(devnet)
    }

    pub fn chain(&self, id: &str) -> Option<(usize, &Chain)> {
        self.chains.iter().enumerate().find(|(_, c)| c.id == id)
    }

    /// The first port of chain `index`.
    pub fn chain_port_base(&self, index: usize) -> u16 {
        let chain = &self.chains[index];
        chain.port_base.unwrap_or_else(|| {
            // Validation keeps this in range.
            (u32::from(self.network.port_base) + 100 * index as u32).min(u16::MAX.into()) as u16
        })
    }

    /// The accounts that exist on `chain`.
    pub fn accounts_on<'a>(&'a self, chain: &'a str) -> impl Iterator<Item = &'a Account> + 'a {
        self.accounts.iter().filter(move |a| match &a.chains {
            None => true,
            Some(list) => list.iter().any(|c| c == chain),
        })
    }

    /// Every problem of the file, or Ok.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut out = Vec::new();
        let mut bad = |field: String, message: String| out.push(Problem { field, message });

        if self.version != FORMAT_VERSION {
            bad(
                "version".into(),
                format!(
                    "format version {} is not known to this tool; write `version = {FORMAT_VERSION}`",
                    self.version
                ),
            );
        }
        if self.chains.is_empty() {
            bad(
                "chain".into(),
                "no [[chain]] table: describe at least one chain (id = \"hospital-a\")".into(),
            );
        }

        // Chains.
        let mut ids = BTreeSet::new();
        for (i, c) in self.chains.iter().enumerate() {
            let at = |f: &str| format!("chain[{i}] ({}).{f}", c.id);
            if !valid_chain_id(&c.id) {
                bad(
                    format!("chain[{i}].id"),
                    format!(
                        "{:?} is not a usable chain id: use lowercase letters, digits and '-', \
                         starting with a letter (e.g. \"hospital-a\")",
                        c.id
                    ),
                );
            }
            if !ids.insert(c.id.as_str()) {
                bad(
                    format!("chain[{i}].id"),
                    format!(
                        "{:?} is used by another [[chain]]; chain ids must be unique",
                        c.id
                    ),
                );
            }
            if c.validators == 0 || usize::from(c.validators) > ports::MAX_VALIDATORS {
                bad(
                    at("validators"),
                    format!(
                        "{} validators: use 1 to {} (4 tolerates one crashed validator: n >= 3f+1)",
                        c.validators,
                        ports::MAX_VALIDATORS
                    ),
                );
            }
            for (field, value) in [
                ("timeout_commit", &c.timeout_commit),
                ("timeout_propose", &c.timeout_propose),
                ("unbonding_time", &c.unbonding_time),
                ("voting_period", &c.voting_period),
                ("expedited_voting_period", &c.expedited_voting_period),
                (
                    "slashing.downtime_jail_duration",
                    &c.slashing.downtime_jail_duration,
                ),
                (
                    "slashing.maintenance_window",
                    &c.slashing.maintenance_window,
                ),
            ] {
                if let Err(e) = parse_duration(value) {
                    bad(at(field), e);
                }
            }
            for (field, denom) in [("bond_denom", &c.bond_denom), ("fee_denom", &c.fee_denom)] {
                if !valid_denom(denom) {
                    bad(
                        at(field),
                        format!(
                            "{denom:?} is not a valid denom: 3 to 128 characters, a letter first, \
                             then letters, digits or /:._- (e.g. \"ufee\")"
                        ),
                    );
                }
            }
            if c.bond_denom == c.fee_denom {
                bad(
                    at("fee_denom"),
                    format!(
                        "the fee denom must differ from the bonding denom {:?}: peers are funded in \
                         the fee denom, and a peer holding the bonding denom could bond a validator",
                        c.bond_denom
                    ),
                );
            }
            if c.self_bond < 1_000_000 {
                bad(
                    at("self_bond"),
                    format!(
                        "{} is below 1 voting power (1000000 {}); a validator with no power signs nothing",
                        c.self_bond, c.bond_denom
                    ),
                );
            }
            let s = &c.slashing;
            if s.min_signed_percent > 100 {
                bad(
                    at("slashing.min_signed_percent"),
                    format!("{} is not a percentage: use 0 to 100", s.min_signed_percent),
                );
            }
            for (field, v) in [
                ("slashing.slash_downtime_percent", s.slash_downtime_percent),
                (
                    "slashing.slash_double_sign_percent",
                    s.slash_double_sign_percent,
                ),
            ] {
                if v > 100 {
                    bad(at(field), format!("{v} is not a percentage: use 0 to 100"));
                }
            }
            if s.signed_blocks_window == 0 {
                bad(
                    at("slashing.signed_blocks_window"),
                    "0 blocks: use a window of at least the blocks of a maintenance window".into(),
                );
            }
            if let (Ok(block), Ok(window)) = (
                parse_duration(&c.timeout_commit),
                parse_duration(&s.maintenance_window),
            ) {
                let tolerated = downtime_tolerance(s, block);
                if tolerated < window {
                    let need = window.as_millis() / block.as_millis().max(1) * 100
                        / u128::from(100 - s.min_signed_percent.min(99))
                        + 1;
                    bad(
                        at("slashing.signed_blocks_window"),
                        format!(
                            "a validator would be jailed after {}s down at one block per {}, less \
                             than the maintenance window {}: raise signed_blocks_window to at \
                             least {need} or lower min_signed_percent",
                            tolerated.as_secs(),
                            c.timeout_commit,
                            s.maintenance_window
                        ),
                    );
                }
            }
        }

        // Ports: every derived port distinct, in range, and clear of today's devnet.sh.
        let mut used: BTreeMap<u32, String> = BTreeMap::new();
        for (i, c) in self.chains.iter().enumerate() {
            let base = u32::from(c.port_base.unwrap_or(self.network.port_base))
                + if c.port_base.is_some() {
                    0
                } else {
                    100 * i as u32
                };
            let field = if c.port_base.is_some() {
                format!("chain[{i}] ({}).port_base", c.id)
            } else {
                "network.port_base".to_string()
            };
            let n = c.validators.clamp(1, ports::MAX_VALIDATORS as u8);
            let top = base + ports::port_offset(n - 1, Service::LAST);
            if base < 1024 || top > u32::from(u16::MAX) {
                bad(
                    field,
                    format!(
                        "chain {} would use ports {base}..={top}: keep them within 1024..=65535 \
                         (e.g. port_base = 26000)",
                        c.id
                    ),
                );
                continue;
            }
            for v in 0..n {
                for s in Service::ALL {
                    let p = base + ports::port_offset(v, s);
                    let who = format!("{} validator {v} {}", c.id, s.name());
                    if let Some(r) = ports::RESERVED.iter().find(|r| u32::from(r.0) == p) {
                        bad(
                            field.clone(),
                            format!(
                                "{who} would take port {p}, which {}; move the port base \
                                 (e.g. port_base = 26000)",
                                r.1
                            ),
                        );
                    } else if let Some(other) = used.insert(p, who.clone()) {
                        bad(
                            field.clone(),
                            format!(
                                "{who} and {other} would share port {p}; give the chains port \
                                 bases at least 100 apart"
                            ),
                        );
                    }
                }
            }
        }

        // Accounts.
        let mut names = BTreeSet::new();
        let mut admins = 0;
        for (i, a) in self.accounts.iter().enumerate() {
            let at = |f: &str| format!("account[{i}] ({}).{f}", a.name);
            if !valid_key_name(&a.name) {
                bad(
                    format!("account[{i}].name"),
                    format!(
                        "{:?} is not a usable key name: letters, digits, '-' and '_'",
                        a.name
                    ),
                );
            }
            if !names.insert(a.name.as_str()) {
                bad(
                    format!("account[{i}].name"),
                    format!("{:?} is used by another [[account]]", a.name),
                );
            }
            if a.role == Role::Admin {
                admins += 1;
            } else if a.bond > 0 {
                bad(
                    at("bond"),
                    format!(
                        "a {} account must not hold the bonding denom (it could bond a validator \
                         and halt or take over the chain, issue 11); remove `bond` and fund it \
                         with `fee`",
                        format!("{:?}", a.role).to_lowercase()
                    ),
                );
            }
            for c in a.chains.iter().flatten() {
                if !ids.contains(c.as_str()) {
                    bad(at("chains"), unknown_chain(c));
                }
            }
        }
        if admins != 1 {
            bad(
                "account".into(),
                format!(
                    "{admins} accounts with role = \"admin\": exactly one is needed (it uploads \
                     code and is the circuit breaker's super admin)"
                ),
            );
        }

        // Contracts.
        let mut contracts = BTreeSet::new();
        for (i, c) in self.contracts.iter().enumerate() {
            if !matches!(c.name.as_str(), "registry" | "exchange") {
                bad(
                    format!("contract[{i}].name"),
                    format!(
                        "{:?}: `ehrx admin deploy` deploys \"registry\" and \"exchange\"",
                        c.name
                    ),
                );
            }
            if !contracts.insert(c.name.as_str()) {
                bad(
                    format!("contract[{i}].name"),
                    format!("{:?} is listed twice", c.name),
                );
            }
            if !c.wasm.ends_with(".wasm") {
                bad(
                    format!("contract[{i}] ({}).wasm", c.name),
                    format!("{:?} is not a .wasm file", c.wasm),
                );
            }
        }

        // Registry set-up.
        for (i, c) in self.registry.clinicians.iter().enumerate() {
            if c.id.trim().is_empty() {
                bad(
                    format!("registry.clinician[{i}].id"),
                    "empty: give the clinician an id (e.g. \"devnet-clinician-01\")".into(),
                );
            }
            if c.purposes.is_empty() {
                bad(
                    format!("registry.clinician[{i}] ({}).purposes", c.id),
                    "no purpose: list at least one (e.g. [\"treatment\"])".into(),
                );
            }
        }
        for (i, p) in self.registry.peers.iter().enumerate() {
            for r in &p.roles {
                if !PEER_ROLES.contains(&r.as_str()) {
                    bad(
                        format!("registry.peer[{i}] ({}).roles", p.account),
                        format!("{r:?} is not a role: use {}", PEER_ROLES.join(", ")),
                    );
                }
            }
            match self.accounts.iter().find(|a| a.name == p.account) {
                Some(a) if a.role == Role::Peer => {}
                Some(_) => bad(
                    format!("registry.peer[{i}].account"),
                    format!("{:?} is not an account with role = \"peer\"", p.account),
                ),
                None => bad(
                    format!("registry.peer[{i}].account"),
                    format!(
                        "no [[account]] named {:?}; add it with role = \"peer\"",
                        p.account
                    ),
                ),
            }
        }

        // Channels.
        let mut channels = BTreeMap::new();
        for (i, ch) in self.channels.iter().enumerate() {
            let at = |f: &str| format!("channel[{i}] ({}).{f}", ch.name);
            if channels.insert(ch.name.as_str(), ch).is_some() {
                bad(
                    format!("channel[{i}].name"),
                    format!("{:?} is used by another [[channel]]", ch.name),
                );
            }
            for (f, c) in [("a", &ch.a), ("b", &ch.b)] {
                if !ids.contains(c.as_str()) {
                    bad(at(f), unknown_chain(c));
                }
            }
            if ch.a == ch.b {
                bad(at("b"), "a channel joins two different chains".into());
            }
            if !contracts.contains(ch.contract.as_str()) {
                bad(
                    at("contract"),
                    format!("no [[contract]] named {:?}", ch.contract),
                );
            }
            if ch.version.trim().is_empty() {
                bad(
                    at("version"),
                    "empty: the exchange's channel version is \"ehr-exchange-3\"".into(),
                );
            }
            if !matches!(ch.ordering.as_str(), "unordered" | "ordered") {
                bad(
                    at("ordering"),
                    format!("{:?}: use \"unordered\" or \"ordered\"", ch.ordering),
                );
            }
        }

        // Partners.
        for (i, p) in self.partners.iter().enumerate() {
            let at = |f: &str| format!("partner[{i}] ({} -> {}).{f}", p.chain, p.partner);
            for (f, c) in [("chain", &p.chain), ("partner", &p.partner)] {
                if !ids.contains(c.as_str()) {
                    bad(at(f), unknown_chain(c));
                }
            }
            match channels.get(p.channel.as_str()) {
                None => bad(
                    at("channel"),
                    format!("no [[channel]] named {:?}", p.channel),
                ),
                Some(ch) => {
                    let joins = (ch.a == p.chain && ch.b == p.partner)
                        || (ch.b == p.chain && ch.a == p.partner);
                    if !joins {
                        bad(
                            at("channel"),
                            format!(
                                "channel {:?} joins {} and {}, not {} and {}",
                                p.channel, ch.a, ch.b, p.chain, p.partner
                            ),
                        );
                    }
                }
            }
            if !matches!(p.status.as_str(), "active" | "suspended") {
                bad(
                    at("status"),
                    format!("{:?}: use \"active\" or \"suspended\"", p.status),
                );
            }
        }

        // Relayers.
        let mut relayers = BTreeSet::new();
        // (chain, account) -> the relayer signing with it there.
        let mut signers: BTreeMap<(&str, &str), &str> = BTreeMap::new();
        for (i, r) in self.relayers.iter().enumerate() {
            let at = |f: &str| format!("relayer[{i}] ({}).{f}", r.name);
            if !relayers.insert(r.name.as_str()) {
                bad(
                    format!("relayer[{i}].name"),
                    format!("{:?} is used by another [[relayer]]", r.name),
                );
            }
            if r.channels.is_empty() {
                bad(
                    at("channels"),
                    "no channel: list the [[channel]] names it relays".into(),
                );
            }
            let account = self.accounts.iter().find(|a| a.name == r.account);
            match account {
                None => bad(
                    at("account"),
                    format!(
                        "no [[account]] named {:?}; add one with role = \"relayer\" and a `fee` \
                         balance (each Hermes instance signs with its own account)",
                        r.account
                    ),
                ),
                Some(a) if a.role != Role::Relayer => bad(
                    at("account"),
                    format!(
                        "{:?} has role = \"{}\"; a relayer signs with an [[account]] of role = \
                         \"relayer\" (add one, e.g. name = \"{}-key\")",
                        r.account,
                        format!("{:?}", a.role).to_lowercase(),
                        r.name
                    ),
                ),
                Some(_) => {}
            }
            for ch in &r.channels {
                match channels.get(ch.as_str()) {
                    None => bad(at("channels"), format!("no [[channel]] named {ch:?}")),
                    Some(ch) => {
                        for c in [&ch.a, &ch.b] {
                            let on_chain = account.is_none_or(|a| match &a.chains {
                                None => true,
                                Some(list) => list.iter().any(|x| x == c),
                            });
                            if !on_chain {
                                bad(
                                    at("account"),
                                    format!(
                                        "account {:?} does not exist on {c} (channel {:?}); add \
                                         {c} to its `chains` or remove `chains`",
                                        r.account, ch.name
                                    ),
                                );
                            }
                            if let Some(owner) =
                                signers.insert((c.as_str(), r.account.as_str()), r.name.as_str())
                            {
                                if owner != r.name {
                                    bad(
                                        at("account"),
                                        format!(
                                            "relayer {owner} also signs with {:?} on {c}: two \
                                             Hermes instances on one account race on its sequence; \
                                             give this one its own [[account]] (role = \
                                             \"relayer\") and `account = \"...\"`",
                                            r.account
                                        ),
                                    );
                                }
                            }
                            // On a chain with fewer validators, the choice wraps around.
                            if let Some((_, chain)) = self.chain(c).filter(|(_, c)| !c.on_demand) {
                                if r.validator >= chain.validators {
                                    bad(
                                        at("validator"),
                                        format!(
                                            "chain {c} has validators 0..{}; pick one of them",
                                            chain.validators
                                        ),
                                    );
                                }
                            }
                        }
                    }
                }
            }
            for (what, port) in [
                ("rest_port", u32::from(r.rest_port)),
                ("rest_port + 1 (telemetry)", u32::from(r.rest_port) + 1),
            ] {
                if let Some(res) = ports::RESERVED.iter().find(|x| u32::from(x.0) == port) {
                    bad(
                        at("rest_port"),
                        format!("{what} {port} {}; pick another", res.1),
                    );
                } else if let Some(other) = used.insert(port, format!("relayer {} {what}", r.name))
                {
                    bad(
                        at("rest_port"),
                        format!("{what} {port} is also {other}; pick another"),
                    );
                }
            }
        }

        if out.is_empty() {
            Ok(())
        } else {
            Err(Invalid(out))
        }
    }
}

/// How long a validator may be down before it is jailed, at one block per `block`.
pub fn downtime_tolerance(s: &Slashing, block: Duration) -> Duration {
    let missable = s.signed_blocks_window * u64::from(100 - s.min_signed_percent.min(100)) / 100;
    block * u32::try_from(missable).unwrap_or(u32::MAX)
}

fn unknown_chain(c: &str) -> String {
    format!("no [[chain]] with id {c:?}")
}

fn valid_chain_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('a'..='z'))
        && id.len() <= 48
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
}

fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The SDK's denom rule: `[a-zA-Z][a-zA-Z0-9/:._-]{2,127}`.
fn valid_denom(d: &str) -> bool {
    let mut chars = d.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && (3..=128).contains(&d.len())
        && chars.all(|c| c.is_ascii_alphanumeric() || "/:._-".contains(c))
}

/// A duration such as `500ms`, `1s`, `10m`, `2h`, `14d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let fix = "write a whole number and a unit: ms, s, m, h or d (e.g. \"500ms\", \"14d\")";
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; {fix}"))?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{text:?} has no known unit; {fix}")),
    };
    if n == 0 {
        return Err(format!("{text:?} is zero; {fix}"));
    }
    Ok(Duration::from_millis(n.saturating_mul(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../relayer-config/devnet.toml");

    fn problems(text: &str) -> Vec<Problem> {
        let d: Devnet = toml::from_str(text).expect("parses");
        d.validate().err().map(|e| e.0).unwrap_or_default()
    }

    /// The example with `from` replaced by `to` (which must occur).
    fn edited(from: &str, to: &str) -> String {
        assert!(EXAMPLE.contains(from), "example has no {from:?}");
        EXAMPLE.replacen(from, to, 1)
    }

    fn assert_problem(text: &str, field: &str, needle: &str) {
        let ps = problems(text);
        assert!(
            ps.iter()
                .any(|p| p.field == field && p.message.contains(needle)),
            "expected a problem at {field} containing {needle:?}, got {ps:#?}"
        );
    }

    #[test]
    fn example_is_valid_with_two_chains_of_four() {
        let d = Devnet::parse(EXAMPLE).unwrap();
        let base: Vec<&Chain> = d.chains.iter().filter(|c| !c.on_demand).collect();
        assert_eq!(base.len(), 2);
        assert!(base.iter().all(|c| c.validators == 4));
        // hospital-c, made by add-chain: one validator.
        assert_eq!(d.chains[2].id, "hospital-c");
        assert_eq!(d.chains[2].validators, 1);
        assert_eq!(d.chain_port_base(0), 26000);
        assert_eq!(d.chain_port_base(1), 26100);
        assert_eq!(d.accounts_on("hospital-a").count(), 9);
        assert_eq!(d.relayers[0].account, "relayer");
        assert_eq!(d.relayers[1].account, "relayer-2");
        let admin = d.accounts.iter().find(|a| a.role == Role::Admin).unwrap();
        assert!(admin.bond > 0);
        assert_eq!(d.relayers.len(), 2);
    }

    #[test]
    fn defaults_fill_a_minimal_file() {
        let d = Devnet::parse(
            "version = 1\n[[chain]]\nid = \"x-a\"\n[[account]]\nname = \"admin\"\nrole = \"admin\"\n",
        )
        .unwrap();
        let c = &d.chains[0];
        assert_eq!(c.validators, 4);
        assert_eq!(c.timeout_commit, "500ms");
        assert_eq!(c.bond_denom, "stake");
        assert_eq!(c.fee_denom, "ufee");
        assert_eq!(c.slashing.signed_blocks_window, 10_000);
        assert_eq!(c.upload, UploadAccess::Admin);
    }

    #[test]
    fn unknown_key_is_named() {
        let text = edited("validators = 4", "validator = 4");
        let err = Devnet::parse(&text).unwrap_err().to_string();
        assert!(err.contains("unknown field `validator`"), "{err}");
        assert!(err.contains("validators"), "lists the known fields: {err}");
    }

    #[test]
    fn zero_validators_refused() {
        assert_problem(
            &edited("validators = 4", "validators = 0"),
            "chain[0] (hospital-a).validators",
            "use 1 to 10",
        );
    }

    #[test]
    fn peer_with_bonding_denom_refused() {
        let text = format!(
            "{EXAMPLE}\n[[account]]\nname = \"insider\"\nrole = \"peer\"\nfee = 1\nbond = 5\n"
        );
        assert_problem(
            &text,
            "account[9] (insider).bond",
            "must not hold the bonding denom",
        );
    }

    #[test]
    fn same_fee_and_bond_denom_refused() {
        assert_problem(
            &edited("fee_denom = \"ufee\"", "fee_denom = \"stake\""),
            "chain[0] (hospital-a).fee_denom",
            "must differ",
        );
    }

    #[test]
    fn default_devnet_ports_refused() {
        assert_problem(
            &edited("port_base = 26000", "port_base = 26653"),
            "network.port_base",
            "scripts/devnet.sh",
        );
    }

    #[test]
    fn clashing_chain_port_bases_refused() {
        let text = edited(
            "id = \"hospital-b\"",
            "id = \"hospital-b\"\nport_base = 26020",
        );
        assert_problem(&text, "chain[1] (hospital-b).port_base", "share port");
    }

    #[test]
    fn ports_out_of_range_refused() {
        assert_problem(
            &edited("port_base = 26000", "port_base = 65500"),
            "network.port_base",
            "within 1024..=65535",
        );
    }

    #[test]
    fn short_slashing_window_refused_with_the_needed_size() {
        let text = edited("signed_blocks_window = 10000", "signed_blocks_window = 100");
        assert_problem(
            &text,
            "chain[0] (hospital-a).slashing.signed_blocks_window",
            "at least 2401",
        );
    }

    #[test]
    fn bad_duration_names_the_fix() {
        assert_problem(
            &edited(
                "timeout_commit = \"500ms\"",
                "timeout_commit = \"half a second\"",
            ),
            "chain[0] (hospital-a).timeout_commit",
            "whole number and a unit",
        );
    }

    #[test]
    fn references_are_checked() {
        assert_problem(
            &edited("channel = \"a-b\"", "channel = \"a-z\""),
            "partner[0] (hospital-a -> hospital-b).channel",
            "no [[channel]] named \"a-z\"",
        );
        assert_problem(
            &edited("b = \"hospital-b\"", "b = \"hospital-z\""),
            "channel[0] (a-b).b",
            "no [[chain]] with id \"hospital-z\"",
        );
        assert_problem(
            &edited("\"reply\"]", "\"answer\"]"),
            "registry.peer[0] (peer1).roles",
            "\"answer\" is not a role",
        );
        assert_problem(
            &edited("account = \"peer1\"", "account = \"relayer\""),
            "registry.peer[0].account",
            "role = \"peer\"",
        );
    }

    #[test]
    fn relayer_port_clash_and_validator_range() {
        assert_problem(
            &edited("rest_port = 26902", "rest_port = 26900"),
            "relayer[1] (hermes-2).rest_port",
            "is also relayer hermes-1",
        );
        assert_problem(
            &edited("rest_port = 26900", "rest_port = 3700"),
            "relayer[0] (hermes-1).rest_port",
            "Hermes",
        );
        assert_problem(
            &edited("validator = 1", "validator = 4"),
            "relayer[1] (hermes-2).validator",
            "validators 0..4",
        );
    }

    #[test]
    fn relayer_accounts_checked() {
        let only_on_a = edited(
            "name = \"relayer-2\"\nrole = \"relayer\"",
            "name = \"relayer-2\"\nrole = \"relayer\"\nchains = [\"hospital-a\"]",
        );
        // (file, what the problem at relayer[1] (hermes-2).account says)
        let cases = [
            (
                edited("account = \"relayer-2\"", "account = \"relayer-9\""),
                "no [[account]] named \"relayer-9\"; add one with role = \"relayer\"",
            ),
            (
                edited("account = \"relayer-2\"", "account = \"peer1\""),
                "has role = \"peer\"",
            ),
            (
                edited("account = \"relayer-2\"", "account = \"relayer\""),
                "relayer hermes-1 also signs with \"relayer\" on hospital-a",
            ),
            // Without the field, the second instance would share "relayer" too.
            (
                edited("account = \"relayer-2\"", ""),
                "race on its sequence",
            ),
            (only_on_a, "does not exist on hospital-b"),
        ];
        for (text, needle) in &cases {
            assert_problem(text, "relayer[1] (hermes-2).account", needle);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse_duration("14d").unwrap(),
            Duration::from_secs(14 * 86400)
        );
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10").is_err());
    }

    #[test]
    fn default_slashing_tolerates_ten_minutes_down() {
        let s = Slashing::default();
        let t = downtime_tolerance(&s, Duration::from_millis(500));
        assert!(t >= Duration::from_secs(600), "{t:?}");
    }
}
