//! A peer's keys: the secp256k1 key that signs stores, requests and replies, and the X25519
//! key replies (and, for the reply service, stored records) are encrypted to.
//!
//! Layout of a key dir (mode 0700), each file mode 0600 holding the 32 raw secret bytes:
//!
//! ```text
//! signing.key        secp256k1 secret scalar
//! encryption.key     X25519 secret key
//! signing.key.old    previous keys after `keys rotate` (kept so old records stay readable)
//! encryption.key.old
//! ```
//!
//! Secrets live in `Zeroizing` buffers and are never printed; `Debug` shows public parts only.

use crate::crypto::{self, X25519Public, X25519Secret};
use anyhow::{bail, Context, Result};
use base64::Engine as _;
use k256::ecdsa::SigningKey;
use rand_core::TryRngCore;
use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub const SIGNING_FILE: &str = "signing.key";
pub const ENCRYPTION_FILE: &str = "encryption.key";
const OLD_SUFFIX: &str = ".old";
const SECRET_LEN: usize = 32;

/// Fills `buf` from the operating system's CSPRNG.
pub fn os_random(buf: &mut [u8]) {
    rand_core::OsRng
        .try_fill_bytes(buf)
        .expect("the operating system's random number generator failed");
}

/// An RNG handle for APIs that want one (HPKE): the OS CSPRNG, panicking on failure.
pub fn os_rng() -> impl rand_core::CryptoRng {
    rand_core::UnwrapErr(rand_core::OsRng)
}

/// One generation of a peer's keys.
pub struct PeerKeys {
    signing: SigningKey,
    encryption: X25519Secret,
}

impl PeerKeys {
    pub fn generate() -> PeerKeys {
        PeerKeys {
            signing: random_signing_key(),
            encryption: crypto::generate_x25519(),
        }
    }

    pub fn from_secret_bytes(signing: &[u8], encryption: &[u8]) -> Result<PeerKeys> {
        let signing = signing_key_from_bytes(signing)?;
        let encryption = X25519Secret::from_bytes(encryption)?;
        Ok(PeerKeys {
            signing,
            encryption,
        })
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    pub fn encryption_secret(&self) -> &X25519Secret {
        &self.encryption
    }

    /// Compressed (33-byte) secp256k1 public key, as the registry stores it.
    pub fn signing_public(&self) -> Vec<u8> {
        compressed_public(&self.signing)
    }

    pub fn encryption_public(&self) -> X25519Public {
        self.encryption.public()
    }

    /// The `signing_key` / `encryption_key` fields of the registry's `PeerInput`.
    pub fn registry_snippet(&self) -> serde_json::Value {
        serde_json::json!({
            "signing_key": b64(&self.signing_public()),
            "encryption_key": b64(self.encryption_public().as_bytes()),
        })
    }
}

impl fmt::Debug for PeerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerKeys")
            .field("signing_public", &b64(&self.signing_public()))
            .field(
                "encryption_public",
                &b64(self.encryption_public().as_bytes()),
            )
            .finish_non_exhaustive()
    }
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Compressed (33-byte) secp256k1 public key of `key`, as the registry stores keys.
pub fn compressed_public(key: &SigningKey) -> Vec<u8> {
    key.verifying_key()
        .to_encoded_point(true)
        .as_bytes()
        .to_vec()
}

/// A secp256k1 secret key from its 32 raw bytes (the content of a key file).
pub fn signing_key_from_bytes(bytes: &[u8]) -> Result<SigningKey> {
    SigningKey::from_slice(bytes)
        .map_err(|_| anyhow::anyhow!("the signing key is not a valid secp256k1 secret"))
}

/// A new secp256k1 key from the OS CSPRNG.
pub fn random_signing_key() -> SigningKey {
    loop {
        let mut bytes = Zeroizing::new([0u8; SECRET_LEN]);
        os_random(bytes.as_mut());
        // Fails only for zero or values >= the group order (probability ~2^-128).
        if let Ok(key) = SigningKey::from_slice(bytes.as_ref()) {
            return key;
        }
    }
}

/// A key directory on disk.
#[derive(Debug, Clone)]
pub struct KeyDir {
    dir: PathBuf,
}

impl KeyDir {
    pub fn new(dir: impl Into<PathBuf>) -> KeyDir {
        KeyDir { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn old(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{OLD_SUFFIX}"))
    }

    pub fn exists(&self) -> bool {
        self.file(SIGNING_FILE).exists() || self.file(ENCRYPTION_FILE).exists()
    }

    /// Creates the directory (0700) and a fresh key pair; refuses to overwrite keys.
    pub fn init(&self) -> Result<PeerKeys> {
        if self.exists() {
            bail!(
                "keys already exist in {}; use `ehrx keys rotate` to replace them",
                self.dir.display()
            );
        }
        ensure_private_dir(&self.dir)?;
        let keys = PeerKeys::generate();
        self.write(&keys)?;
        Ok(keys)
    }

    fn write(&self, keys: &PeerKeys) -> Result<()> {
        let signing = Zeroizing::new(keys.signing.to_bytes());
        write_secret(&self.file(SIGNING_FILE), &signing[..])?;
        write_secret(
            &self.file(ENCRYPTION_FILE),
            keys.encryption.to_bytes().as_ref(),
        )?;
        Ok(())
    }

    /// Loads the current keys, refusing files other users can read.
    pub fn load(&self) -> Result<PeerKeys> {
        self.load_pair(&self.file(SIGNING_FILE), &self.file(ENCRYPTION_FILE))
    }

    /// Loads the keys `keys rotate` kept, if any.
    pub fn load_old(&self) -> Result<Option<PeerKeys>> {
        let (signing, encryption) = (self.old(SIGNING_FILE), self.old(ENCRYPTION_FILE));
        if !signing.exists() || !encryption.exists() {
            return Ok(None);
        }
        self.load_pair(&signing, &encryption).map(Some)
    }

    /// Current X25519 secret first, then the previous one: what the reply service tries
    /// when it opens stored records.
    pub fn encryption_secrets(&self) -> Result<Vec<X25519Secret>> {
        let mut out = vec![self.load()?.encryption];
        if let Some(old) = self.load_old()? {
            out.push(old.encryption);
        }
        Ok(out)
    }

    fn load_pair(&self, signing: &Path, encryption: &Path) -> Result<PeerKeys> {
        if !signing.exists() {
            bail!(
                "no keys in {}; create them with `ehrx keys init`",
                self.dir.display()
            );
        }
        let s = read_secret(signing)?;
        let e = read_secret(encryption)?;
        PeerKeys::from_secret_bytes(&s, &e)
            .with_context(|| format!("key files in {} are damaged", self.dir.display()))
    }

    /// Keeps the current keys as `*.old` and writes a new pair. Refuses when `*.old`
    /// already exists (it may be the only key that opens older records) unless `force`.
    pub fn rotate(&self, force: bool) -> Result<PeerKeys> {
        self.load()?;
        for name in [SIGNING_FILE, ENCRYPTION_FILE] {
            if self.old(name).exists() && !force {
                bail!(
                    "{} already exists: archive it first (records encrypted to it need it), \
                     or pass --force to overwrite it",
                    self.old(name).display()
                );
            }
        }
        for name in [SIGNING_FILE, ENCRYPTION_FILE] {
            fs::rename(self.file(name), self.old(name))
                .with_context(|| format!("cannot keep the old {name}"))?;
        }
        let keys = PeerKeys::generate();
        self.write(&keys)?;
        Ok(keys)
    }
}

/// Creates `dir` (and parents) with mode 0700 and tightens an existing one.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", dir.display()))?;
    Ok(())
}

/// Writes a secret file with mode 0600 (created new: never follows an existing file).
pub fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a file holding a secret, refusing one readable or writable by group or others.
pub fn read_private_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let meta = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} has mode {:o}; secret files must be 0600 (chmod 600 {})",
            path.display(),
            mode,
            path.display()
        );
    }
    Ok(Zeroizing::new(fs::read(path).with_context(|| {
        format!("cannot read {}", path.display())
    })?))
}

/// A secret text file (e.g. the partner-shared token key as hex).
pub fn read_secret_text(path: &Path) -> Result<Zeroizing<String>> {
    let bytes = read_private_file(path)?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_string())),
        Err(_) => bail!("{} is not a text file", path.display()),
    }
}

/// A 32-byte raw key file.
pub fn read_secret(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let bytes = read_private_file(path)?;
    if bytes.len() != SECRET_LEN {
        bail!(
            "{} is not a key file ({} bytes, expected {SECRET_LEN})",
            path.display(),
            bytes.len()
        );
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_private_files_and_load_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = KeyDir::new(tmp.path().join("keys"));
        let keys = dir.init().unwrap();
        let mode = |p: PathBuf| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path().to_path_buf()), 0o700);
        assert_eq!(mode(dir.file(SIGNING_FILE)), 0o600);
        assert_eq!(mode(dir.file(ENCRYPTION_FILE)), 0o600);

        let loaded = dir.load().unwrap();
        assert_eq!(loaded.signing_public(), keys.signing_public());
        assert_eq!(loaded.encryption_public(), keys.encryption_public());
        assert_eq!(keys.signing_public().len(), 33);
        assert!(matches!(keys.signing_public()[0], 2 | 3));

        // A second init must not overwrite the keys.
        assert!(dir.init().is_err());
    }

    #[test]
    fn debug_and_snippet_show_public_parts_only() {
        let keys = PeerKeys::generate();
        let secret_hex = hex::encode(keys.signing.to_bytes());
        let secret_b64 = b64(&keys.signing.to_bytes());
        let enc_b64 = b64(keys.encryption.to_bytes().as_ref());
        let shown = format!("{keys:?} {}", keys.registry_snippet());
        for secret in [&secret_hex, &secret_b64, &enc_b64] {
            assert!(!shown.contains(secret.as_str()));
        }
        assert!(shown.contains(&b64(&keys.signing_public())));
    }

    #[test]
    fn rotate_keeps_old_keys_and_refuses_to_overwrite_them() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = KeyDir::new(tmp.path());
        let first = dir.init().unwrap();
        let second = dir.rotate(false).unwrap();
        assert_ne!(first.signing_public(), second.signing_public());
        let old = dir.load_old().unwrap().unwrap();
        assert_eq!(old.signing_public(), first.signing_public());
        assert_eq!(dir.encryption_secrets().unwrap().len(), 2);
        assert!(dir.rotate(false).is_err());
        let third = dir.rotate(true).unwrap();
        assert_eq!(
            dir.load_old().unwrap().unwrap().signing_public(),
            second.signing_public()
        );
        assert_eq!(dir.load().unwrap().signing_public(), third.signing_public());
    }

    #[test]
    fn world_readable_secret_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = KeyDir::new(tmp.path());
        dir.init().unwrap();
        fs::set_permissions(dir.file(SIGNING_FILE), fs::Permissions::from_mode(0o644)).unwrap();
        let err = dir.load().unwrap_err().to_string();
        assert!(err.contains("0600"), "{err}");
    }
}
