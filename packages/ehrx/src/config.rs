//! Settings: an `ehrx.toml` (or `.json`) file, overridden field by field by command-line
//! flags. One struct serves both, so every setting has the same name in the file
//! (`chain_id`) and on the command line (`--chain-id`).
//!
//! Relative paths in the file are taken relative to the file's directory.

use crate::chain::{ChainConfig, KeyringKey};
use crate::crypto::X25519Public;
use anyhow::{anyhow, Context, Result};
use base64::Engine as _;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_CONFIG_FILE: &str = "ehrx.toml";

#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// CometBFT RPC endpoint of the local chain [default: http://127.0.0.1:26657].
    #[arg(long, global = true)]
    pub node: Option<String>,
    /// Chain id of the local chain, e.g. hospital-a.
    #[arg(long, global = true)]
    pub chain_id: Option<String>,
    /// Address of the exchange contract on the local chain.
    #[arg(long, global = true)]
    pub exchange: Option<String>,
    /// Address of the registry contract on the local chain (`ehrx admin`) [default: the
    /// one the exchange contract names].
    #[arg(long, global = true)]
    pub registry: Option<String>,
    /// Not used any more: ehrx talks to the node itself and needs no `wasmd` binary.
    /// Accepted so that older settings files still load.
    #[arg(long, global = true, hide = true)]
    pub wasmd_bin: Option<String>,
    /// wasmd home holding the keyring (`keyring-test/` or `keyring-file/`) [default: ~/.wasmd].
    #[arg(long, global = true)]
    pub wasmd_home: Option<PathBuf>,
    /// Keyring key that signs this peer's transactions.
    #[arg(long, global = true)]
    pub key_name: Option<String>,
    /// Keyring backend: `test` or `file` (password from EHRX_KEYRING_PASSWORD or asked)
    /// [default: test].
    #[arg(long, global = true)]
    pub keyring_backend: Option<String>,
    /// Gas prices [default: 0ufee, the devnet's fee denom].
    #[arg(long, global = true)]
    pub gas_prices: Option<String>,
    /// Gas limit, or `auto` to simulate (once per kind and size of message) [default: auto].
    #[arg(long, global = true)]
    pub gas: Option<String>,
    /// Multiplier on simulated gas [default: 1.4].
    #[arg(long, global = true)]
    pub gas_adjustment: Option<f64>,
    /// Seconds to wait for a transaction to be included [default: 60].
    #[arg(long, global = true)]
    pub tx_timeout_secs: Option<u64>,
    /// Directory of this peer's signing and encryption keys [default: ./keys].
    #[arg(long, global = true)]
    pub key_dir: Option<PathBuf>,
    /// File with this hospital's own pseudonym key (hex or base64; it never leaves the
    /// hospital): records are kept under the patient's pseudonym. `token_key_file` is an
    /// older name for it.
    #[arg(long, global = true, alias = "token-key-file")]
    #[serde(alias = "token_key_file")]
    pub pseudonym_key_file: Option<PathBuf>,
    /// Directory whose X25519 key is this hospital's records and custodian key: the reply
    /// service opens stored records and requests' sealed patient details with it (its
    /// public half is `records_key`, and partners register it as our `encryption_key`)
    /// [default: key_dir].
    #[arg(long, global = true)]
    pub records_key_dir: Option<PathBuf>,
    /// Public X25519 key (base64) of the hospital's records service: stores encrypt to it.
    #[arg(long, global = true)]
    pub records_key: Option<String>,
    /// The hospital's index of its patients (JSON lines, PHI, mode 0600): `ehrx store`
    /// adds each stored record's patient, the reply service matches requests against it
    /// [default: patient-index.jsonl beside the pseudonym key file].
    #[arg(long, global = true)]
    pub patient_index_file: Option<PathBuf>,
    /// Reply service: file of requests already answered [default: ./ehrx-reply-state.json].
    #[arg(long, global = true)]
    pub state_file: Option<PathBuf>,
    /// Seconds to wait for an event from the chain before reading it anyway (the safety
    /// net under the websocket subscription) [default: 3].
    #[arg(long, global = true)]
    pub poll_interval_secs: Option<u64>,
}

macro_rules! overlay {
    ($base:expr, $top:expr, $($field:ident),*) => {
        Settings { $($field: $top.$field.or($base.$field),)* }
    };
}

impl Settings {
    /// Reads a TOML or JSON settings file (by extension).
    pub fn from_file(path: &Path) -> Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        let mut settings: Settings = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid", path.display()))?
        } else {
            toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?
        };
        if let Some(dir) = path.parent() {
            for p in [
                &mut settings.wasmd_home,
                &mut settings.key_dir,
                &mut settings.pseudonym_key_file,
                &mut settings.patient_index_file,
                &mut settings.records_key_dir,
                &mut settings.state_file,
            ]
            .into_iter()
            .flatten()
            {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
        }
        Ok(settings)
    }

    /// Settings from `path` (or `./ehrx.toml` if present), overridden by `cli`.
    pub fn load(path: Option<&Path>, cli: &Settings) -> Result<Settings> {
        let file = match path {
            Some(path) => Settings::from_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                Settings::from_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => Settings::default(),
        };
        Ok(file.overridden_by(cli))
    }

    pub fn overridden_by(self, top: &Settings) -> Settings {
        let top = top.clone();
        overlay!(
            self,
            top,
            node,
            chain_id,
            exchange,
            registry,
            wasmd_bin,
            wasmd_home,
            key_name,
            keyring_backend,
            gas_prices,
            gas,
            gas_adjustment,
            tx_timeout_secs,
            key_dir,
            pseudonym_key_file,
            patient_index_file,
            records_key_dir,
            records_key,
            state_file,
            poll_interval_secs
        )
    }

    fn required<'a>(value: &'a Option<String>, name: &str, flag: &str) -> Result<&'a str> {
        value.as_deref().filter(|v| !v.is_empty()).ok_or_else(|| {
            anyhow!(
                "no {name} configured: set `{}` in {DEFAULT_CONFIG_FILE} or pass --{flag}",
                flag.replace('-', "_")
            )
        })
    }

    pub fn exchange(&self) -> Result<&str> {
        Self::required(&self.exchange, "exchange contract address", "exchange")
    }

    pub fn key_dir(&self) -> PathBuf {
        self.key_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("keys"))
    }

    pub fn pseudonym_key_file(&self) -> Result<&Path> {
        self.pseudonym_key_file.as_deref().ok_or_else(|| {
            anyhow!(
                "no pseudonym key: set `pseudonym_key_file` in {DEFAULT_CONFIG_FILE} or pass \
                 --pseudonym-key-file (create this hospital's own key once with `ehrx keys \
                 new-pseudonym-key --out <file>`; every peer of the hospital that stores or \
                 answers uses the same file, and it never leaves the hospital)"
            )
        })
    }

    /// The key dir holding the records (custodian) key: `records_key_dir`, else `key_dir`.
    pub fn records_key_dir(&self) -> PathBuf {
        self.records_key_dir
            .clone()
            .unwrap_or_else(|| self.key_dir())
    }

    pub fn records_key(&self) -> Result<X25519Public> {
        let text = Self::required(&self.records_key, "records key", "records-key")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| anyhow!("the records key is not base64"))?;
        X25519Public::from_bytes(&bytes).context("the records key is not an X25519 public key")
    }

    /// The patient index: `patient_index_file`, else beside the pseudonym key file.
    pub fn patient_index_file(&self) -> Result<PathBuf> {
        match &self.patient_index_file {
            Some(path) => Ok(path.clone()),
            None => Ok(crate::patient_index::default_path(
                self.pseudonym_key_file()?,
            )),
        }
    }

    pub fn state_file(&self) -> PathBuf {
        self.state_file
            .clone()
            .unwrap_or_else(|| PathBuf::from("ehrx-reply-state.json"))
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_interval_secs.unwrap_or(3))
    }

    /// How to reach the chain, and the key that signs; chain id and key name must be set.
    pub fn chain(&self) -> Result<(ChainConfig, KeyringKey)> {
        let d = ChainConfig::default();
        let fixed_gas = match self.gas.as_deref() {
            None | Some("auto") => None,
            Some(limit) => Some(limit.parse::<u64>().map_err(|_| {
                anyhow!("gas `{limit}` is neither `auto` nor a number: fix `gas` or --gas")
            })?),
        };
        let cfg = ChainConfig {
            rpc: self.node.clone().unwrap_or(d.rpc),
            chain_id: Self::required(&self.chain_id, "chain id", "chain-id")?.to_string(),
            gas_price: self.gas_prices.clone().unwrap_or(d.gas_price),
            gas_adjustment: self.gas_adjustment.unwrap_or(d.gas_adjustment),
            fixed_gas,
            tx_timeout: self
                .tx_timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(d.tx_timeout),
            ..d
        };
        let home = match &self.wasmd_home {
            Some(home) => home.clone(),
            None => std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".wasmd"))
                .ok_or_else(|| anyhow!("no wasmd home: set `wasmd_home` or --wasmd-home"))?,
        };
        let key = KeyringKey {
            home,
            backend: self
                .keyring_backend
                .clone()
                .unwrap_or_else(|| "test".into()),
            name: Self::required(&self.key_name, "account key name", "key-name")?.to_string(),
        };
        Ok((cfg, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_flags() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ehrx.toml");
        std::fs::write(
            &path,
            r#"
node = "http://127.0.0.1:26757"
chain_id = "hospital-b"
exchange = "wasm1exchange"
key_name = "peer1"
key_dir = "keys"
token_key_file = "/etc/ehrx/token.key"
records_key_dir = "records"
gas_adjustment = 1.5
"#,
        )
        .unwrap();
        let cli = Settings {
            chain_id: Some("hospital-c".into()),
            ..Settings::default()
        };
        let s = Settings::load(Some(&path), &cli).unwrap();
        assert_eq!(s.chain_id.as_deref(), Some("hospital-c"));
        assert_eq!(s.exchange().unwrap(), "wasm1exchange");
        assert_eq!(s.key_dir(), tmp.path().join("keys"));
        // The older name still reads.
        assert_eq!(
            s.pseudonym_key_file().unwrap(),
            Path::new("/etc/ehrx/token.key")
        );
        assert_eq!(s.records_key_dir(), tmp.path().join("records"));
        assert_eq!(Settings::default().records_key_dir(), PathBuf::from("keys"));
        let (w, key) = s.chain().unwrap();
        assert_eq!(w.rpc, "http://127.0.0.1:26757");
        assert_eq!(w.gas_adjustment, 1.5);
        assert_eq!(w.gas_price, "0ufee");
        assert_eq!(w.fixed_gas, None);
        assert_eq!(key.name, "peer1");
        assert_eq!(key.backend, "test");
        let bad = Settings {
            gas: Some("lots".into()),
            ..s.clone()
        };
        assert!(bad.chain().unwrap_err().to_string().contains("--gas"));
        assert!(s
            .records_key()
            .unwrap_err()
            .to_string()
            .contains("records_key"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ehrx.toml");
        std::fs::write(&path, "chainid = \"x\"\n").unwrap();
        assert!(Settings::from_file(&path).is_err());
    }
}
