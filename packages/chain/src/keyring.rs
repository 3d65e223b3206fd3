//! The account key of a peer, read from the `wasmd` keyring it was created in
//! (`wasmd keys add <name> --keyring-backend test|file`), so that nothing but this crate
//! needs the `wasmd` binary at run time.
//!
//! Both backends store one file per key, `<home>/keyring-<backend>/<name>.info`: a compact
//! JWE (RFC 7516) written by 99designs/keyring's file backend, with
//! `PBES2-HS256+A128KW` key wrapping and `A256GCM` content encryption. The `test` backend's
//! password is the fixed string `test`; the `file` backend's is the operator's. The
//! plaintext is a JSON item whose `Data` is the SDK's protobuf `cosmos.crypto.keyring.v1.Record`.
//!
//! The OS backend (Secret Service, macOS Keychain) is not read here: the error says so and
//! names the two that are.

use crate::tx::ChainError as Error;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine as _;
use std::path::PathBuf;
use zeroize::Zeroizing;

/// The password the SDK's `test` keyring backend encrypts with.
const TEST_BACKEND_PASSWORD: &str = "test";
const SECP256K1_PRIV_KEY: &str = "/cosmos.crypto.secp256k1.PrivKey";
const JWE_ALG: &str = "PBES2-HS256+A128KW";
const JWE_ENC: &str = "A256GCM";
/// A bound on the PBES2 iteration count, so a crafted file cannot stall the tool.
const MAX_PBES2_ITERATIONS: u32 = 1_000_000;

/// Where a key is kept and how to open it.
#[derive(Debug, Clone)]
pub struct KeyringKey {
    /// The wasmd home (`--home`), the folder holding `keyring-<backend>/`.
    pub home: PathBuf,
    /// `test` or `file`.
    pub backend: String,
    pub name: String,
}

impl KeyringKey {
    pub fn path(&self) -> PathBuf {
        self.home
            .join(format!("keyring-{}", self.backend))
            .join(format!("{}.info", self.name))
    }

    /// Opens the key; `password` is asked for only by the `file` backend.
    pub fn open(
        &self,
        password: impl FnOnce() -> Option<String>,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let password = match self.backend.as_str() {
            "test" => Zeroizing::new(TEST_BACKEND_PASSWORD.to_string()),
            "file" => Zeroizing::new(password().ok_or_else(|| {
                self.error("the `file` keyring needs its password (set EHRX_KEYRING_PASSWORD or run interactively)")
            })?),
            other => {
                return Err(Error::Key(format!(
                    "keyring backend `{other}` cannot be read by ehrx: use `test` or `file` \
                     (wasmd keys add <name> --keyring-backend file), or export the key into one"
                )))
            }
        };
        let path = self.path();
        let token = std::fs::read_to_string(&path).map_err(|e| {
            self.error(&format!(
                "cannot read {}: {e}; create the key with `wasmd keys add {} --keyring-backend {} --home {}`",
                path.display(),
                self.name,
                self.backend,
                self.home.display()
            ))
        })?;
        let item = jwe_decrypt(token.trim(), &password).map_err(|why| self.error(&why))?;
        secret_from_item(&item).map_err(|why| self.error(&why))
    }

    fn error(&self, why: &str) -> Error {
        Error::Key(format!(
            "key `{}` in the {} keyring at {}: {why}",
            self.name,
            self.backend,
            self.home.display()
        ))
    }
}

/// Seals a keyring item (`Key`, and `Data` as base64) the way 99designs/keyring's file
/// backend does: the reverse of `jwe_decrypt`.
fn seal_item(key: &str, data: &[u8], password: &str) -> String {
    use aes_gcm::aead::rand_core::RngCore;
    use aes_gcm::aead::OsRng;
    let item = serde_json::json!({
        "Key": key,
        "Data": base64::engine::general_purpose::STANDARD.encode(data),
        "Label": "", "Description": "",
        "KeychainNotTrustApplication": false, "KeychainNotSynchronizable": false,
    });
    let url = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let mut p2s = [0u8; 12];
    OsRng.fill_bytes(&mut p2s);
    const ITERATIONS: u32 = 8192;
    let header = url(
        serde_json::json!({"alg": JWE_ALG, "enc": JWE_ENC, "p2c": ITERATIONS, "p2s": url(&p2s)})
            .to_string()
            .as_bytes(),
    );
    let mut salt = JWE_ALG.as_bytes().to_vec();
    salt.push(0);
    salt.extend(p2s);
    let mut kek = Zeroizing::new([0u8; 16]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &salt, ITERATIONS, &mut *kek);
    let mut cek = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut *cek);
    let wrapped = aes_kw::KekAes128::from(*kek)
        .wrap_vec(&*cek)
        .expect("a 32-byte key wraps");
    let mut iv = [0u8; 12];
    OsRng.fill_bytes(&mut iv);
    let sealed = aes_gcm::Aes256Gcm::new_from_slice(&*cek)
        .expect("a 256-bit key")
        .encrypt(
            &aes_gcm::Nonce::from(iv),
            Payload {
                msg: item.to_string().as_bytes(),
                aad: header.as_bytes(),
            },
        )
        .expect("AES-GCM seals");
    let (ct, tag) = sealed.split_at(sealed.len() - 16);
    format!(
        "{header}.{}.{}.{}.{}",
        url(&wrapped),
        url(&iv),
        url(ct),
        url(tag)
    )
}

/// The sealed `<name>.info` item of a local secp256k1 key.
fn seal_record(
    name: &str,
    secret: &[u8],
    public: Option<prost_types_any::Any>,
    password: &str,
) -> String {
    use prost::Message as _;
    let any = prost_types_any::Any {
        type_url: SECP256K1_PRIV_KEY.into(),
        value: Secp256k1PrivKey {
            key: secret.to_vec(),
        }
        .encode_to_vec(),
    };
    let record = Record {
        name: name.into(),
        pub_key: public,
        local: Some(Local {
            priv_key: Some(any),
        }),
    };
    seal_item(&format!("{name}.info"), &record.encode_to_vec(), password)
}

impl KeyringKey {
    /// Creates the key with a fresh secret, as `wasmd keys add NAME --keyring-backend test`
    /// does (`<name>.info` and the `<address hex>.address` index): only the `test` backend,
    /// whose password is known. Refuses to replace an existing key. Returns the address.
    pub fn create(&self, account_prefix: &str) -> Result<String, Error> {
        use aes_gcm::aead::rand_core::RngCore;
        use aes_gcm::aead::OsRng;
        if self.backend != "test" {
            return Err(self.error("only keys of the `test` backend can be created here"));
        }
        let mut secret = Zeroizing::new(vec![0u8; 32]);
        let key = loop {
            OsRng.fill_bytes(&mut secret);
            if let Ok(key) = cosmrs::crypto::secp256k1::SigningKey::from_slice(&secret) {
                break key;
            }
        };
        let public = key.public_key();
        let address = public
            .account_id(account_prefix)
            .map_err(|e| self.error(&format!("address of the new key: {e}")))?;
        let public_any = public
            .to_any()
            .map_err(|e| self.error(&format!("public key: {e}")))?;
        let public_any = prost_types_any::Any {
            type_url: public_any.type_url,
            value: public_any.value,
        };
        let ring = self.home.join(format!("keyring-{}", self.backend));
        std::fs::create_dir_all(&ring)
            .map_err(|e| self.error(&format!("{}: {e}", ring.display())))?;
        let write = |file: &str, token: String| -> Result<(), Error> {
            use std::io::Write as _;
            #[cfg(unix)]
            use std::os::unix::fs::OpenOptionsExt as _;
            let path = ring.join(file);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            options.mode(0o600);
            options
                .open(&path)
                .and_then(|mut f| f.write_all(token.as_bytes()))
                .map_err(|e| self.error(&format!("{}: {e}", path.display())))
        };
        write(
            &format!("{}.info", self.name),
            seal_record(&self.name, &secret, Some(public_any), TEST_BACKEND_PASSWORD),
        )?;
        let index = format!("{}.address", hex::encode(address.to_bytes()));
        write(
            &index,
            seal_item(&index, self.name.as_bytes(), TEST_BACKEND_PASSWORD),
        )?;
        Ok(address.to_string())
    }

    /// Deletes the key and its address index, as `wasmd keys delete NAME -y` does.
    pub fn remove(&self, account_prefix: &str) -> Result<(), Error> {
        let secret = self.open(|| None)?;
        let address = cosmrs::crypto::secp256k1::SigningKey::from_slice(&secret)
            .map_err(|e| self.error(&e.to_string()))?
            .public_key()
            .account_id(account_prefix)
            .map_err(|e| self.error(&e.to_string()))?;
        let ring = self.home.join(format!("keyring-{}", self.backend));
        let index = ring.join(format!("{}.address", hex::encode(address.to_bytes())));
        // The index may be missing (a key another tool wrote); the key file may not.
        let _ = std::fs::remove_file(index);
        std::fs::remove_file(self.path())
            .map_err(|e| self.error(&format!("{}: {e}", self.path().display())))
    }
}

fn b64url(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| format!("the key file is not a JWE (base64url: {e})"))
}

#[derive(serde::Deserialize)]
struct JweHeader {
    alg: String,
    enc: String,
    p2c: u32,
    p2s: String,
}

/// Decrypts a compact JWE with PBES2-HS256+A128KW / A256GCM.
fn jwe_decrypt(token: &str, password: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, wrapped_b64, iv_b64, ciphertext_b64, tag_b64] = parts[..] else {
        return Err(format!(
            "the key file is not a compact JWE ({} parts, expected 5)",
            parts.len()
        ));
    };
    let header: JweHeader = serde_json::from_slice(&b64url(header_b64)?)
        .map_err(|e| format!("the key file's JWE header is not readable: {e}"))?;
    if header.alg != JWE_ALG || header.enc != JWE_ENC {
        return Err(format!(
            "the key file uses {}/{}, expected {JWE_ALG}/{JWE_ENC}",
            header.alg, header.enc
        ));
    }
    if header.p2c == 0 || header.p2c > MAX_PBES2_ITERATIONS {
        return Err(format!(
            "the key file asks for {} PBES2 iterations",
            header.p2c
        ));
    }
    // RFC 7518 §4.8.1.1: salt = UTF8(alg) || 0x00 || p2s.
    let mut salt = JWE_ALG.as_bytes().to_vec();
    salt.push(0);
    salt.extend(b64url(&header.p2s)?);
    let mut kek = Zeroizing::new([0u8; 16]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &salt, header.p2c, &mut *kek);
    let cek = Zeroizing::new(
        aes_kw::KekAes128::from(*kek)
            .unwrap_vec(&b64url(wrapped_b64)?)
            .map_err(|_| "wrong keyring password, or the key file is damaged".to_string())?,
    );
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&cek)
        .map_err(|_| "the key file's content key is not 256 bits".to_string())?;
    let iv: [u8; 12] = b64url(iv_b64)?
        .try_into()
        .map_err(|_| "the key file's IV is not 96 bits".to_string())?;
    let mut sealed = b64url(ciphertext_b64)?;
    sealed.extend(b64url(tag_b64)?);
    let plain = cipher
        .decrypt(
            &aes_gcm::Nonce::from(iv),
            Payload {
                msg: &sealed,
                aad: header_b64.as_bytes(),
            },
        )
        .map_err(|_| "the key file does not decrypt (damaged?)".to_string())?;
    Ok(Zeroizing::new(plain))
}

/// 99designs/keyring's item: `Data` is the SDK's protobuf Record (Go `[]byte`, base64 JSON).
#[derive(serde::Deserialize)]
struct Item {
    #[serde(rename = "Data")]
    data: String,
}

/// `cosmos.crypto.keyring.v1.Record` (only what a local key needs).
#[derive(Clone, PartialEq, prost::Message)]
struct Record {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    pub_key: Option<prost_types_any::Any>,
    #[prost(message, optional, tag = "3")]
    local: Option<Local>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Local {
    #[prost(message, optional, tag = "1")]
    priv_key: Option<prost_types_any::Any>,
}

/// `cosmos.crypto.secp256k1.PrivKey`.
#[derive(Clone, PartialEq, prost::Message)]
struct Secp256k1PrivKey {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
}

mod prost_types_any {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }
}

fn secret_from_item(item_json: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    use prost::Message as _;
    let item: Item = serde_json::from_slice(item_json)
        .map_err(|e| format!("the decrypted key is not a keyring item: {e}"))?;
    let data = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(item.data.as_bytes())
            .map_err(|e| format!("the keyring item's data is not base64: {e}"))?,
    );
    let record = Record::decode(data.as_slice())
        .map_err(|e| format!("the keyring item is not an SDK key record: {e}"))?;
    let any = record.local.and_then(|l| l.priv_key).ok_or_else(|| {
        "it is not a local key (a Ledger, offline or multisig key cannot sign here)".to_string()
    })?;
    if any.type_url != SECP256K1_PRIV_KEY {
        return Err(format!(
            "it is a {} key; only secp256k1 keys are supported",
            any.type_url
        ));
    }
    let key = Secp256k1PrivKey::decode(any.value.as_slice())
        .map_err(|e| format!("the secp256k1 key does not decode: {e}"))?;
    let secret = Zeroizing::new(key.key);
    cosmrs::crypto::secp256k1::SigningKey::from_slice(&secret)
        .map_err(|e| format!("not a valid secp256k1 secret: {e}"))?;
    Ok(secret)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;

    fn seal_key_file(secret: &[u8; 32], name: &str, password: &str) -> String {
        seal_record(name, secret, None, password)
    }

    fn key_in(dir: &Path, backend: &str, token: &str) -> KeyringKey {
        let ring = dir.join(format!("keyring-{backend}"));
        std::fs::create_dir_all(&ring).unwrap();
        std::fs::write(ring.join("peer1.info"), token).unwrap();
        KeyringKey {
            home: dir.to_path_buf(),
            backend: backend.into(),
            name: "peer1".into(),
        }
    }

    #[test]
    fn a_test_keyring_file_opens_to_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let secret = [7u8; 32];
        let key = key_in(dir.path(), "test", &seal_key_file(&secret, "peer1", "test"));
        let opened = key.open(|| None).unwrap();
        assert_eq!(opened.as_slice(), secret);
    }

    #[test]
    fn a_created_key_opens_and_is_removed_with_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyringKey {
            home: dir.path().into(),
            backend: "test".into(),
            name: "bench-1".into(),
        };
        let address = key.create("wasm").unwrap();
        assert!(address.starts_with("wasm1"));
        assert_eq!(key.open(|| None).unwrap().len(), 32);
        let ring = dir.path().join("keyring-test");
        assert_eq!(std::fs::read_dir(&ring).unwrap().count(), 2);
        assert!(
            key.create("wasm").is_err(),
            "an existing key is not replaced"
        );
        key.remove("wasm").unwrap();
        assert_eq!(std::fs::read_dir(&ring).unwrap().count(), 0);
        let file = KeyringKey {
            backend: "file".into(),
            ..key
        };
        assert!(file.create("wasm").is_err());
    }

    #[test]
    fn a_file_keyring_needs_the_right_password() {
        let dir = tempfile::tempdir().unwrap();
        let key = key_in(
            dir.path(),
            "file",
            &seal_key_file(&[9u8; 32], "peer1", "s3cret"),
        );
        let err = key.open(|| Some("wrong".into())).unwrap_err().to_string();
        assert!(err.contains("wrong keyring password"), "{err}");
        let err = key.open(|| None).unwrap_err().to_string();
        assert!(err.contains("EHRX_KEYRING_PASSWORD"), "{err}");
        assert_eq!(
            key.open(|| Some("s3cret".into())).unwrap().as_slice(),
            [9u8; 32]
        );
    }

    #[test]
    fn a_missing_key_names_the_command_that_creates_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyringKey {
            home: dir.path().into(),
            backend: "test".into(),
            name: "nobody".into(),
        };
        let err = key.open(|| None).unwrap_err().to_string();
        assert!(
            err.contains("wasmd keys add nobody --keyring-backend test"),
            "{err}"
        );
    }

    #[test]
    fn an_os_keyring_is_refused_with_the_backends_that_work() {
        let key = KeyringKey {
            home: "/nonexistent".into(),
            backend: "os".into(),
            name: "peer1".into(),
        };
        let err = key.open(|| None).unwrap_err().to_string();
        assert!(err.contains("use `test` or `file`"), "{err}");
    }

    #[test]
    fn a_damaged_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut token = seal_key_file(&[3u8; 32], "peer1", "test");
        let last = token.pop().unwrap();
        token.push(if last == 'A' { 'B' } else { 'A' });
        let key = key_in(dir.path(), "test", &token);
        assert!(key.open(|| None).is_err());
        let key = key_in(dir.path(), "test", "not a jwe");
        let err = key.open(|| None).unwrap_err().to_string();
        assert!(err.contains("not a compact JWE"), "{err}");
    }
}
