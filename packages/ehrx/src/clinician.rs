//! Clinician credentials (issue 8): the key a health worker signs requests with.
//!
//! The registry holds each clinician by id (the hospital's staff identifier or a handle,
//! never a name) with the public half of a secp256k1 key, the purposes of use they may
//! request for and a validity window. The secret half is created here and never leaves
//! this machine: `<key_dir>/clinicians/<id>.key` (directory 0700, file 0600, the 32 raw
//! secret bytes, as the peer's own `signing.key`). `ehrx request --clinician <id>` signs
//! the request body with it; the contracts verify that signature with the registered key,
//! so knowing a clinician's id (the registry's `Clinicians` query shows every id) is not
//! enough to ask in their name.
//!
//! `ehrx clinician new` prints the registry's `RegisterClinician` message for the admin;
//! `show` prints it again; `rotate` replaces the key (the registry's `RegisterClinician`
//! with the same id replaces the registered key too).
//!
//! With `--protect` the file holds the key encrypted under a code the clinician types, so
//! that on a workstation account several clinicians share, the file alone signs nothing:
//!
//! ```text
//! "ehrxck1\0" (8) | salt (16) | nonce (12) | ChaCha20-Poly1305(secret) with tag (48)
//! ```
//!
//! The key-encryption key is Argon2id(code, salt) with m = 19 MiB, t = 2, p = 1 (the
//! `argon2` crate's defaults, OWASP's recommended minimum), pinned here so that a file
//! written now opens with any later ehrx; the AEAD's associated data is the magic and the
//! clinician id, so a file renamed to another clinician does not open.

use crate::chain;
use crate::keys::{self, b64};
use crate::peer::Exchange;
use anyhow::{anyhow, bail, Context, Result};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use cosmwasm_std::{Binary, Timestamp};
use ehr_protocol::exchange::PurposeOfUse;
use ehr_protocol::registry::{
    Clinician, ClinicianInput, ClinicianStatus, ExecuteMsg as RegistryMsg,
    QueryMsg as RegistryQuery,
};
use ehr_protocol::validate;
use k256::ecdsa::SigningKey;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Sub-directory of the key dir holding clinicians' keys.
pub const CLINICIANS_DIR: &str = "clinicians";

/// Where a script can give the code that protects a clinician's key (instead of typing it).
pub const CODE_ENV: &str = "EHRX_CLINICIAN_CODE";
/// Shortest code accepted.
pub const MIN_CODE_LEN: usize = 8;

const MAGIC: &[u8; 8] = b"ehrxck1\0";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const SECRET_LEN: usize = 32;
const TAG_LEN: usize = 16;
const PROTECTED_LEN: usize = MAGIC.len() + SALT_LEN + NONCE_LEN + SECRET_LEN + TAG_LEN;
/// Argon2id memory (KiB), passes and lanes: pinned, part of the file format.
const ARGON2_M_KIB: u32 = 19 * 1024;
const ARGON2_T: u32 = 2;
const ARGON2_P: u32 = 1;

/// The code a clinician types to unlock their key file.
pub struct Code(Zeroizing<String>);

impl Code {
    pub fn new(text: &str) -> Result<Code> {
        if text.chars().count() < MIN_CODE_LEN {
            bail!("a clinician's code has at least {MIN_CODE_LEN} characters");
        }
        Ok(Code(Zeroizing::new(text.to_string())))
    }

    /// The code from `$EHRX_CLINICIAN_CODE` when set, otherwise typed on the terminal (not
    /// echoed); twice when `confirm` (a new code).
    pub fn ask(clinician_id: &str, confirm: bool) -> Result<Code> {
        if let Ok(text) = std::env::var(CODE_ENV) {
            return Code::new(&Zeroizing::new(text));
        }
        let prompt = |text: &str| {
            rpassword::prompt_password(text)
                .map(Zeroizing::new)
                .map_err(|e| {
                    anyhow!(
                    "the key of clinician {clinician_id} is protected by a code and no terminal \
                     can ask for it ({e}): run ehrx in a terminal, or set {CODE_ENV}"
                )
                })
        };
        let first = prompt(&format!("code of clinician {clinician_id}: "))?;
        if confirm {
            let again = prompt(&format!("code of clinician {clinician_id}, again: "))?;
            if *again != *first {
                bail!("the two codes differ; nothing was written");
            }
        }
        Code::new(&first)
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(<redacted>)")
    }
}

fn key_encryption(code: &Code, salt: &[u8]) -> Result<ChaCha20Poly1305> {
    let params = argon2::Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, Some(32))
        .map_err(|e| anyhow!("argon2 parameters: {e}"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut kek = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(code.0.as_bytes(), salt, kek.as_mut())
        .map_err(|e| anyhow!("argon2: {e}"))?;
    Ok(ChaCha20Poly1305::new(kek.as_ref().into()))
}

fn associated_data(clinician_id: &str) -> Vec<u8> {
    [MAGIC.as_slice(), clinician_id.as_bytes()].concat()
}

/// The protected file content for `secret`.
fn seal_secret(clinician_id: &str, code: &Code, secret: &[u8]) -> Result<Vec<u8>> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    keys::os_random(&mut salt);
    keys::os_random(&mut nonce);
    let sealed = key_encryption(code, &salt)?
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: secret,
                aad: &associated_data(clinician_id),
            },
        )
        .map_err(|_| anyhow!("cannot encrypt the clinician's key"))?;
    Ok([MAGIC.as_slice(), &salt, &nonce, &sealed].concat())
}

/// The secret in a protected file's content, with the code.
fn open_secret(
    clinician_id: &str,
    path: &Path,
    code: &Code,
    content: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let (salt, rest) = content[MAGIC.len()..].split_at(SALT_LEN);
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let plain = key_encryption(code, salt)?
        .decrypt(
            nonce.into(),
            Payload {
                msg: sealed,
                aad: &associated_data(clinician_id),
            },
        )
        .map_err(|_| {
            anyhow!(
                "the code does not open the key of clinician {clinician_id} in {} (a wrong \
                 code, or a file made for another clinician id)",
                path.display()
            )
        })?;
    Ok(Zeroizing::new(plain))
}

/// Where a clinician's key lives unless `--clinician-key` says otherwise.
pub fn default_key_file(key_dir: &Path, clinician_id: &str) -> PathBuf {
    key_dir
        .join(CLINICIANS_DIR)
        .join(format!("{clinician_id}.key"))
}

fn check_id(clinician_id: &str) -> Result<()> {
    if validate::name(clinician_id).is_err() {
        bail!(
            "a clinician id is 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-' \
             (the hospital's staff id or a handle, never a name)"
        );
    }
    Ok(())
}

/// A clinician's signing key, loaded from (or written to) its key file.
pub struct ClinicianKey {
    id: String,
    path: PathBuf,
    signing: SigningKey,
}

impl ClinicianKey {
    /// Creates a new key for `clinician_id` at `path` (its directory 0700, the file 0600),
    /// encrypted under `protect` when given; refuses to overwrite an existing key.
    pub fn create(clinician_id: &str, path: &Path, protect: Option<&Code>) -> Result<ClinicianKey> {
        check_id(clinician_id)?;
        if path.exists() {
            bail!(
                "a key for clinician {clinician_id} already exists at {}: \
                 `ehrx clinician show --id {clinician_id}` prints its registration, \
                 `ehrx clinician rotate --id {clinician_id}` replaces it",
                path.display()
            );
        }
        Self::write_new(clinician_id, path, protect)
    }

    fn write_new(clinician_id: &str, path: &Path, protect: Option<&Code>) -> Result<ClinicianKey> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            keys::ensure_private_dir(dir)?;
        }
        let signing = keys::random_signing_key();
        let secret = Zeroizing::new(signing.to_bytes());
        match protect {
            Some(code) => keys::write_secret(path, &seal_secret(clinician_id, code, &secret)?)?,
            None => keys::write_secret(path, &secret[..])?,
        }
        Ok(ClinicianKey {
            id: clinician_id.to_string(),
            path: path.to_path_buf(),
            signing,
        })
    }

    /// Loads the key of `clinician_id` from `path`, refusing a file others can read; asks
    /// `unlock` for the code when the file is protected (only then).
    pub fn load(
        clinician_id: &str,
        path: &Path,
        unlock: impl FnOnce() -> Result<Code>,
    ) -> Result<ClinicianKey> {
        check_id(clinician_id)?;
        if !path.exists() {
            bail!(
                "no key for clinician {clinician_id} at {}: create it with \
                 `ehrx clinician new --id {clinician_id}` and have the admin register it \
                 (or pass --clinician-key with the file that holds it)",
                path.display()
            );
        }
        let content = keys::read_private_file(path)?;
        let secret = match content.len() {
            SECRET_LEN => content,
            PROTECTED_LEN if content.starts_with(MAGIC) => {
                open_secret(clinician_id, path, &unlock()?, &content)?
            }
            n => bail!(
                "{} is not a clinician key file ({n} bytes; expected {SECRET_LEN}, or \
                 {PROTECTED_LEN} protected by a code)",
                path.display()
            ),
        };
        let signing = keys::signing_key_from_bytes(&secret)
            .with_context(|| format!("{} is damaged", path.display()))?;
        Ok(ClinicianKey {
            id: clinician_id.to_string(),
            path: path.to_path_buf(),
            signing,
        })
    }

    /// A new key in place of `current` (loaded, so it opens), which is kept as
    /// `<file>.old` (refused when that exists, unless `force`); the new one is encrypted
    /// under `protect` when given. Until the admin registers the new key, requests signed
    /// with it are refused `BadSignature`; the old file is what to go back to.
    pub fn rotate(
        current: &ClinicianKey,
        force: bool,
        protect: Option<&Code>,
    ) -> Result<ClinicianKey> {
        let path = current.path();
        let old = PathBuf::from(format!("{}.old", path.display()));
        if old.exists() && !force {
            bail!(
                "{} already exists (the key before the last rotation): remove it, \
                 or pass --force to overwrite it",
                old.display()
            );
        }
        fs::rename(path, &old)
            .with_context(|| format!("cannot keep the current key as {}", old.display()))?;
        Self::write_new(current.id(), path, protect)
    }

    /// A key held in memory only (tests).
    pub fn from_signing_key(clinician_id: &str, signing: SigningKey) -> Result<ClinicianKey> {
        check_id(clinician_id)?;
        Ok(ClinicianKey {
            id: clinician_id.to_string(),
            path: PathBuf::new(),
            signing,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// Compressed (33-byte) secp256k1 public key, as the registry stores it.
    pub fn public_key(&self) -> Vec<u8> {
        keys::compressed_public(&self.signing)
    }

    /// The registry's `ClinicianInput` for this key.
    pub fn input(&self, registration: &Registration) -> ClinicianInput {
        ClinicianInput {
            clinician_id: self.id.clone(),
            signing_key: Binary::from(self.public_key()),
            allowed_purposes: registration.allowed_purposes.clone(),
            valid_from: registration.valid_from.map(Timestamp::from_seconds),
            valid_until: registration.valid_until.map(Timestamp::from_seconds),
            break_glass: registration.break_glass,
        }
    }

    /// The message the registry admin submits: `RegisterClinician` (also a key rotation).
    pub fn register_msg(&self, registration: &Registration) -> RegistryMsg {
        RegistryMsg::RegisterClinician {
            clinician: self.input(registration),
        }
    }
}

impl fmt::Debug for ClinicianKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClinicianKey")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("public_key", &b64(&self.public_key()))
            .finish_non_exhaustive()
    }
}

/// What the registration grants, beyond the key: purposes and validity (unix seconds).
#[derive(Debug, Clone)]
pub struct Registration {
    pub allowed_purposes: Vec<PurposeOfUse>,
    pub valid_from: Option<u64>,
    pub valid_until: Option<u64>,
    /// The credential allows break-glass (emergency) requests and co-signatures.
    pub break_glass: bool,
}

impl Registration {
    pub fn new(
        allowed_purposes: Vec<PurposeOfUse>,
        valid_from: Option<u64>,
        valid_until: Option<u64>,
    ) -> Result<Registration> {
        let mut purposes = Vec::new();
        for p in allowed_purposes {
            if !purposes.contains(&p) {
                purposes.push(p);
            }
        }
        if purposes.is_empty() {
            purposes.push(PurposeOfUse::Treatment);
        }
        if let (Some(from), Some(until)) = (valid_from, valid_until) {
            if from >= until {
                bail!("--valid-until must be after --valid-from");
            }
        }
        Ok(Registration {
            allowed_purposes: purposes,
            valid_from,
            valid_until,
            break_glass: false,
        })
    }
}

fn purposes_text(purposes: &[PurposeOfUse]) -> String {
    purposes
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks, before anything is signed or sent, that the registry of this chain holds
/// `key` for its clinician, active, valid at `now` and allowed `purpose`. The contract
/// would refuse such a request anyway, but as a soft rejection, most of these with a strike
/// on this peer; here the clinician learns the cause and the fix instead.
pub fn check_registered(
    exchange: &Exchange,
    key: &ClinicianKey,
    purpose: PurposeOfUse,
    now: u64,
) -> Result<Clinician> {
    let id = key.id();
    let registered: Option<Clinician> = chain::query(
        exchange.chain,
        &exchange.registry,
        &RegistryQuery::Clinician {
            clinician_id: id.to_string(),
        },
    )
    .with_context(|| format!("reading clinician {id} from the registry"))?;
    let show = format!("`ehrx clinician show --id {id}`");
    let clinician = registered.ok_or_else(|| {
        anyhow!(
            "clinician {id} is not registered on {} (UnknownClinician): have the registry \
             admin submit the RegisterClinician message {show} prints",
            exchange.network
        )
    })?;
    if clinician.signing_key.as_slice() != key.public_key().as_slice() {
        bail!(
            "the key in {} is not the one registered for clinician {id} on {} \
             (the request would be refused BadSignature): use the key file that was \
             registered (--clinician-key), or have the admin register this one with the \
             message {show} prints",
            key.path().display(),
            exchange.network
        );
    }
    if clinician.status == ClinicianStatus::Revoked {
        bail!(
            "clinician {id} is revoked on {} (KeyRevoked): only the registry admin can \
             register them again",
            exchange.network
        );
    }
    if let Err(code) = clinician.may_request(purpose, Timestamp::from_seconds(now)) {
        let window = match (clinician.valid_from, clinician.valid_until) {
            (None, None) => String::new(),
            (from, until) => format!(
                ", valid {} to {}",
                from.map_or("-".into(), |t| crate::time::rfc3339(t.seconds(), 0)),
                until.map_or("-".into(), |t| crate::time::rfc3339(t.seconds(), 0)),
            ),
        };
        bail!(
            "clinician {id} may not request for {} now ({code}): registered for {}{window}; \
             the registry admin changes that with RegisterClinician",
            purpose.as_str(),
            purposes_text(&clinician.allowed_purposes)
        );
    }
    Ok(clinician)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// For files that are not protected: never asked.
    fn no_code() -> Result<Code> {
        panic!("an unprotected key file asks for no code")
    }

    #[test]
    fn new_key_is_private_loads_and_is_never_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let path = default_key_file(&tmp.path().join("keys"), "dr-adams");
        assert!(path.ends_with("keys/clinicians/dr-adams.key"));
        let key = ClinicianKey::create("dr-adams", &path, None).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(fs::metadata(&path).unwrap().len(), 32);
        let loaded = ClinicianKey::load("dr-adams", &path, no_code).unwrap();
        assert_eq!(loaded.public_key(), key.public_key());
        assert_eq!(key.public_key().len(), 33);
        let err = ClinicianKey::create("dr-adams", &path, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(
            ClinicianKey::load("dr-adams", &path, no_code)
                .unwrap()
                .public_key(),
            key.public_key()
        );
    }

    #[test]
    fn a_missing_key_names_the_cause_and_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let path = default_key_file(tmp.path(), "nurse-7");
        let err = ClinicianKey::load("nurse-7", &path, no_code)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no key for clinician nurse-7 at"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(
            err.contains("`ehrx clinician new --id nurse-7`") && err.contains("admin register"),
            "{err}"
        );
    }

    #[test]
    fn ids_are_registry_names() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["", "Dr Adams", "../x", &"a".repeat(65)] {
            let err = ClinicianKey::create(bad, &tmp.path().join("k"), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains("clinician id"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_readable_key_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c.key");
        ClinicianKey::create("c-1", &path, None).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = ClinicianKey::load("c-1", &path, no_code)
            .unwrap_err()
            .to_string();
        assert!(err.contains("0600"), "{err}");
    }

    #[test]
    fn rotate_keeps_the_previous_key() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c.key");
        let first = ClinicianKey::create("c-1", &path, None).unwrap();
        let second = ClinicianKey::rotate(&first, false, None).unwrap();
        assert_ne!(first.public_key(), second.public_key());
        let old = tmp.path().join("c.key.old");
        assert_eq!(
            ClinicianKey::load("c-1", &old, no_code)
                .unwrap()
                .public_key(),
            first.public_key()
        );
        assert!(ClinicianKey::rotate(&second, false, None).is_err());
        let code = Code::new("correct horse").unwrap();
        let third = ClinicianKey::rotate(&second, true, Some(&code)).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::metadata(&path).unwrap().len() as usize, PROTECTED_LEN);
        let opened = ClinicianKey::load("c-1", &path, || Code::new("correct horse")).unwrap();
        assert_eq!(opened.public_key(), third.public_key());
    }

    #[test]
    fn a_protected_key_opens_only_with_its_code_and_for_its_clinician() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("dr-adams.key");
        let code = Code::new("correct horse battery").unwrap();
        let key = ClinicianKey::create("dr-adams", &path, Some(&code)).unwrap();
        assert_eq!(mode(&path), 0o600);
        let content = fs::read(&path).unwrap();
        assert_eq!(content.len(), PROTECTED_LEN);
        assert!(content.starts_with(MAGIC));
        let secret = key.signing_key().to_bytes();
        assert!(!content.windows(secret.len()).any(|w| w == &secret[..]));

        let opened =
            ClinicianKey::load("dr-adams", &path, || Code::new("correct horse battery")).unwrap();
        assert_eq!(opened.public_key(), key.public_key());
        let wrong = ClinicianKey::load("dr-adams", &path, || Code::new("wrong horse battery"))
            .unwrap_err()
            .to_string();
        assert!(
            wrong.contains("the code does not open the key of clinician dr-adams"),
            "{wrong}"
        );
        // The same file under another clinician's id does not open, even with the code.
        let moved = tmp.path().join("dr-brown.key");
        fs::copy(&path, &moved).unwrap();
        assert!(
            ClinicianKey::load("dr-brown", &moved, || Code::new("correct horse battery")).is_err()
        );
        // Asking fails: the error says so, nothing else happens.
        let err = ClinicianKey::load("dr-adams", &path, || bail!("no terminal"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no terminal"), "{err}");
        // Two salts, two files: a code never gives the same file twice.
        let again = tmp.path().join("again.key");
        ClinicianKey::create("dr-adams", &again, Some(&code)).unwrap();
        assert_ne!(fs::read(&again).unwrap()[8..24], content[8..24]);
        // Too short a code, or a damaged file, is refused.
        assert!(Code::new("short").is_err());
        let damaged = tmp.path().join("damaged.key");
        keys::write_secret(&damaged, &content[..40]).unwrap();
        let err = ClinicianKey::load("dr-adams", &damaged, no_code)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a clinician key file"), "{err}");
        assert_eq!(format!("{code:?}"), "Code(<redacted>)");
    }

    #[test]
    fn register_message_is_the_registry_type_and_shows_no_secret() {
        let key = ClinicianKey::from_signing_key("dr-adams", keys::random_signing_key()).unwrap();
        let registration = Registration::new(
            vec![
                PurposeOfUse::Treatment,
                PurposeOfUse::EmergencyTreatment,
                PurposeOfUse::Treatment,
            ],
            None,
            Some(1_800_000_000),
        )
        .unwrap();
        let json = serde_json::to_value(key.register_msg(&registration)).unwrap();
        let c = &json["register_clinician"]["clinician"];
        assert_eq!(c["clinician_id"], "dr-adams");
        assert_eq!(c["signing_key"], b64(&key.public_key()));
        assert_eq!(
            c["allowed_purposes"],
            serde_json::json!(["treatment", "emergency_treatment"])
        );
        assert_eq!(c["valid_until"], "1800000000000000000");
        let back: RegistryMsg = serde_json::from_value(json.clone()).unwrap();
        assert!(matches!(back, RegistryMsg::RegisterClinician { .. }));
        let secret = b64(&key.signing_key().to_bytes());
        let shown = format!("{json} {key:?}");
        assert!(!shown.contains(&secret));
        assert!(!shown.contains(&hex::encode(key.signing_key().to_bytes())));

        let default = Registration::new(vec![], None, None).unwrap();
        assert_eq!(default.allowed_purposes, vec![PurposeOfUse::Treatment]);
        assert!(Registration::new(vec![], Some(5), Some(5)).is_err());
    }
}
