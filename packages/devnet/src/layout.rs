//! Where things live under the devnet directory, and the nodes of a chain.
//!
//! ```text
//! DIR/devnet.toml                 the file `up` was given (status, down, start-node read it)
//! DIR/<chain>/accounts/           wasmd home holding the accounts' keyring (test backend),
//!                                 client.toml pointing at validator 0, mnemonics/ (0600)
//! DIR/<chain>/val<v>/             validator v's wasmd home: config/, data/, its operator
//!                                 key `operator` (keyring-test), wasmd.log, wasmd.pid
//! DIR/<chain>/extra-validators    validators added after genesis by `add-validator` (a
//!                                 number; absent = 0): the chain has the file's
//!                                 `validators` plus these, val<validators>.. onwards
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::config::Devnet;
use crate::ports::NodePorts;

/// The copy of the devnet file kept in the directory.
pub fn saved_config(dir: &Path) -> PathBuf {
    dir.join("devnet.toml")
}

/// The devnet file of `dir`: `--config` if given, else the copy `up` saved there.
pub fn load(dir: &Path, config: Option<&Path>) -> Result<Devnet> {
    let path = config.map_or_else(|| saved_config(dir), Path::to_path_buf);
    if !path.exists() && config.is_none() {
        anyhow::bail!(
            "{} has no devnet.toml: it is not a directory made by `ehrx-devnet up` \
             (or pass --config FILE)",
            dir.display()
        );
    }
    let devnet = Devnet::load(&path)?;
    match std::fs::read_to_string(validators_override(dir)) {
        Ok(n) if config.is_none() => {
            let n: u8 = n
                .trim()
                .parse()
                .with_context(|| format!("{}", validators_override(dir).display()))?;
            devnet.with_validators(n)
        }
        _ => Ok(devnet),
    }
}

/// `up --validators N` keeps N here: every command reads the devnet with that count.
pub fn validators_override(dir: &Path) -> PathBuf {
    dir.join("validators")
}

/// Holds `DIR.lock` (flock) until dropped: the commands that start or stop nodes of one
/// directory run one at a time; a second waits.
pub struct DirLock(#[allow(dead_code)] std::fs::File);

pub fn lock(dir: &Path) -> Result<DirLock> {
    use std::os::fd::AsRawFd as _;
    let path = PathBuf::from(format!("{}.lock", dir.display()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock(2) on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        eprintln!(
            "waiting for {} (another ehrx-devnet command works on {})",
            path.display(),
            dir.display()
        );
        // SAFETY: as above, blocking this time.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            anyhow::bail!(
                "flock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(DirLock(file))
}

/// One validator node of a chain.
#[derive(Debug, Clone)]
pub struct Node {
    pub chain: String,
    pub index: u8,
    pub home: PathBuf,
    pub ports: NodePorts,
}

impl Node {
    pub fn moniker(&self) -> String {
        format!("{}-val{}", self.chain, self.index)
    }
    pub fn pid_file(&self) -> PathBuf {
        self.home.join("wasmd.pid")
    }
    pub fn log_file(&self) -> PathBuf {
        self.home.join("wasmd.log")
    }
    pub fn genesis(&self) -> PathBuf {
        self.home.join("config/genesis.json")
    }
    /// The node's P2P id, from its `config/node_key.json`.
    pub fn node_id(&self) -> Result<String> {
        let path = self.home.join("config/node_key.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        node_id_of(&text).with_context(|| format!("{}", path.display()))
    }
}

/// A chain's directory.
pub fn chain_dir(dir: &Path, chain: &str) -> PathBuf {
    dir.join(chain)
}

/// The wasmd home that holds a chain's accounts.
pub fn accounts_home(dir: &Path, chain: &str) -> PathBuf {
    chain_dir(dir, chain).join("accounts")
}

/// The file counting the validators `add-validator` added to chain `chain`.
pub fn extra_validators_file(dir: &Path, chain: &str) -> PathBuf {
    chain_dir(dir, chain).join("extra-validators")
}

/// The validators added to chain `chain` after genesis (0 without the file).
pub fn extra_validators(dir: &Path, chain: &str) -> Result<u8> {
    let path = extra_validators_file(dir, chain);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().with_context(|| {
            format!(
                "{}: not a number ({:?}); it counts the validators add-validator added",
                path.display(),
                text.trim()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Validator `v` of chain `id` (it need not exist yet).
pub fn node(devnet: &Devnet, dir: &Path, id: &str, v: u8) -> Result<Node> {
    let (index, _) = devnet
        .chain(id)
        .with_context(|| format!("no chain {id:?} in the devnet file"))?;
    Ok(Node {
        chain: id.to_string(),
        index: v,
        home: chain_dir(dir, id).join(format!("val{v}")),
        ports: NodePorts::of(devnet.chain_port_base(index), v),
    })
}

/// The nodes of chain `id`, in validator order: the file's `validators`, then those
/// `add-validator` added.
pub fn nodes(devnet: &Devnet, dir: &Path, id: &str) -> Result<Vec<Node>> {
    let (_, chain) = devnet
        .chain(id)
        .with_context(|| format!("no chain {id:?} in the devnet file"))?;
    let count = chain.validators.saturating_add(extra_validators(dir, id)?);
    anyhow::ensure!(
        usize::from(count) <= crate::ports::MAX_VALIDATORS,
        "{id}: {count} validators ({} in the devnet file + {}) exceed the port layout's {}",
        chain.validators,
        extra_validators_file(dir, id).display(),
        crate::ports::MAX_VALIDATORS
    );
    (0..count).map(|v| node(devnet, dir, id, v)).collect()
}

/// CometBFT's node id: the first 20 bytes of SHA-256 of the Ed25519 public key, in hex.
/// `node_key.json` holds the 64-byte private key (seed, then public key) in base64.
pub fn node_id_of(node_key_json: &str) -> Result<String> {
    let v: serde_json::Value = serde_json::from_str(node_key_json)?;
    let b64 = v["priv_key"]["value"]
        .as_str()
        .context("no priv_key.value")?;
    let key = base64::engine::general_purpose::STANDARD.decode(b64)?;
    anyhow::ensure!(
        key.len() == 64,
        "an Ed25519 key has 64 bytes, not {}",
        key.len()
    );
    let hash = Sha256::digest(&key[32..]);
    Ok(hex::encode(&hash[..20]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_as_cometbft_computes_it() {
        // `wasmd comet show-node-id` printed this id for the fixture's key.
        let id = node_id_of(include_str!("testdata/node_key.json")).unwrap();
        assert_eq!(id, "646a085c9fb5177f5f212bb982bc7466f9ca7735");
    }

    #[test]
    fn lock_is_exclusive_per_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("net");
        let held = lock(&dir).unwrap();
        let file = std::fs::File::open(format!("{}.lock", dir.display())).unwrap();
        use std::os::fd::AsRawFd as _;
        // SAFETY: flock on a descriptor of this test.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_ne!(rc, 0, "a second lock must wait while the first is held");
        drop(held);
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(rc, 0);
    }

    #[test]
    fn nodes_of_the_example() {
        let d = Devnet::parse(include_str!("../../../relayer-config/devnet.toml")).unwrap();
        let ns = nodes(&d, Path::new("/x"), "hospital-b").unwrap();
        assert_eq!(ns.len(), 4);
        assert_eq!(ns[3].home, Path::new("/x/hospital-b/val3"));
        assert_eq!(ns[3].ports.rpc, 26131);
        assert_eq!(ns[3].moniker(), "hospital-b-val3");
        assert!(nodes(&d, Path::new("/x"), "hospital-z").is_err());
    }

    #[test]
    fn added_validators_count() {
        let d = Devnet::parse(include_str!("../../../relayer-config/devnet.toml")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(nodes(&d, tmp.path(), "hospital-a").unwrap().len(), 4);
        std::fs::create_dir_all(chain_dir(tmp.path(), "hospital-a")).unwrap();
        std::fs::write(extra_validators_file(tmp.path(), "hospital-a"), "2\n").unwrap();
        let ns = nodes(&d, tmp.path(), "hospital-a").unwrap();
        assert_eq!(ns.len(), 6);
        assert_eq!(ns[5].ports.rpc, 26051);
        assert_eq!(nodes(&d, tmp.path(), "hospital-b").unwrap().len(), 4);
        std::fs::write(extra_validators_file(tmp.path(), "hospital-a"), "7").unwrap();
        let err = nodes(&d, tmp.path(), "hospital-a").unwrap_err().to_string();
        assert!(err.contains("exceed"), "{err}");
    }
}
