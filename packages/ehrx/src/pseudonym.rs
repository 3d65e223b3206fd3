//! The patient pseudonym: how this hospital names a patient's records on its own chain.
//!
//! `hex(HMAC-SHA-256(pseudonym_key, encode(normalised demographics)))` where `encode` is a
//! domain tag and the fields, each with a 4-byte big-endian length. The pseudonym key is this
//! hospital's own and never leaves it (each hospital has a different one), so the same
//! patient has unrelated pseudonyms on different chains and nothing on chain links them;
//! without the key a pseudonym cannot be brute-forced from the small space of SSNs and birth
//! dates, which is why a plain hash is never used. Partners never see a pseudonym: requests
//! carry the patient's details sealed to the custodian, which computes its own.

use crate::crypto::length_prefixed;
use crate::demographics::Demographics;
use crate::keys::read_secret_text;
use anyhow::{bail, Result};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::path::Path;
use zeroize::Zeroizing;

pub const PSEUDONYM_DOMAIN: &str = "ehrx/pseudonym/v1";
pub const MIN_KEY_LEN: usize = 32;

/// This hospital's own pseudonym key (32 bytes or more).
pub struct PseudonymKey(Zeroizing<Vec<u8>>);

impl PseudonymKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<PseudonymKey> {
        if bytes.len() < MIN_KEY_LEN {
            bail!(
                "the pseudonym key is {} bytes; it must be at least {MIN_KEY_LEN}",
                bytes.len()
            );
        }
        Ok(PseudonymKey(Zeroizing::new(bytes.to_vec())))
    }

    /// Reads a key file holding the key as hex or base64 text (one line, mode 0600).
    pub fn load(path: &Path) -> Result<PseudonymKey> {
        let text = read_secret_text(path)?;
        let text = text.trim();
        let bytes = if !text.is_empty()
            && text.len() % 2 == 0
            && text.bytes().all(|b| b.is_ascii_hexdigit())
        {
            Zeroizing::new(hex::decode(text)?)
        } else {
            match base64::engine::general_purpose::STANDARD.decode(text) {
                Ok(bytes) => Zeroizing::new(bytes),
                Err(_) => bail!(
                    "{} must hold this hospital's pseudonym key as hex or base64 text",
                    path.display()
                ),
            }
        };
        PseudonymKey::from_bytes(&bytes)
    }

    /// A new random 32-byte key, as hex text for the key file.
    pub fn generate_hex() -> Zeroizing<String> {
        let mut bytes = Zeroizing::new([0u8; MIN_KEY_LEN]);
        crate::keys::os_random(bytes.as_mut());
        Zeroizing::new(hex::encode(bytes.as_ref()))
    }

    /// Writes a new random key to `path` (0600, hex text) and refuses to replace an
    /// existing one: records are kept under the pseudonyms made with it.
    pub fn create_file(path: &Path) -> Result<()> {
        if path.exists() {
            bail!(
                "{} exists; refusing to overwrite a pseudonym key (records are kept under \
                 pseudonyms made with it)",
                path.display()
            );
        }
        let hex_key = PseudonymKey::generate_hex();
        crate::keys::write_secret(path, format!("{}\n", hex_key.as_str()).as_bytes())
    }
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PseudonymKey(<redacted>)")
    }
}

/// The bytes the HMAC runs over.
fn encode(d: &Demographics) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(length_prefixed(&[
        PSEUDONYM_DOMAIN.as_bytes(),
        d.given().as_bytes(),
        d.family().as_bytes(),
        d.birth_date().as_bytes(),
        d.ssn().as_bytes(),
    ]))
}

/// The 64-hex-char pseudonym (the `patient_token` field of stores and record queries).
pub fn pseudonym(key: &PseudonymKey, d: &Demographics) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes keys of any length");
    mac.update(&encode(d));
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn key() -> PseudonymKey {
        PseudonymKey::from_bytes(&[7u8; 32]).unwrap()
    }

    fn token(given: &str, family: &str, dob: &str, ssn: &str) -> String {
        pseudonym(&key(), &Demographics::new(given, family, dob, ssn).unwrap())
    }

    #[test]
    fn accents_case_and_formats_do_not_change_the_token() {
        let a = token("José", "Álvarez", "1980-01-05", "123-45-6789");
        let b = token("Jose", "Alvarez", "01/05/1980", "123456789");
        let c = token("  JOSE ", "alvarez", "19800105", "123-45-6789");
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.len(), 64);
        assert!(ehr_protocol::validate::patient_token(&a).is_ok());
    }

    #[test]
    fn each_field_matters() {
        let base = token("Jose", "Alvarez", "1980-01-05", "123-45-6789");
        assert_ne!(base, token("Jose", "Alvarez", "1980-01-06", "123-45-6789"));
        assert_ne!(base, token("Jose", "Alvarez", "1980-01-05", "123-45-6780"));
        assert_ne!(base, token("Josef", "Alvarez", "1980-01-05", "123-45-6789"));
        assert_ne!(base, token("Jose", "Alvares", "1980-01-05", "123-45-6789"));
        // Moving text between fields changes the token (length-prefixed encoding).
        assert_ne!(
            token("Ann", "Marie Smith", "1980-01-05", "123-45-6789"),
            token("Ann Marie", "Smith", "1980-01-05", "123-45-6789")
        );
    }

    #[test]
    fn token_depends_on_the_key_and_is_not_a_plain_hash() {
        let d = Demographics::new("Jose", "Alvarez", "1980-01-05", "123-45-6789").unwrap();
        let t = pseudonym(&key(), &d);
        let other = PseudonymKey::from_bytes(&[8u8; 32]).unwrap();
        assert_ne!(t, pseudonym(&other, &d));

        let plain_hashes = [
            hex::encode(sha2::Sha256::digest(b"jose|alvarez|1980-01-05|123456789")),
            hex::encode(sha2::Sha256::digest(b"josealvarez1980-01-05123456789")),
            hex::encode(sha2::Sha256::digest(b"123456789")),
            hex::encode(sha2::Sha256::digest(encode(&d).as_slice())),
        ];
        for h in plain_hashes {
            assert_ne!(t, h);
        }
    }

    #[test]
    fn short_keys_are_refused_and_key_files_parse() {
        assert!(PseudonymKey::from_bytes(&[1u8; 31]).is_err());
        let tmp = tempfile::tempdir().unwrap();
        let hex_path = tmp.path().join("hex.key");
        crate::keys::write_secret(&hex_path, format!("{}\n", "07".repeat(32)).as_bytes()).unwrap();
        let b64_path = tmp.path().join("b64.key");
        crate::keys::write_secret(
            &b64_path,
            base64::engine::general_purpose::STANDARD
                .encode([7u8; 32])
                .as_bytes(),
        )
        .unwrap();
        let d = Demographics::new("Jose", "Alvarez", "1980-01-05", "123-45-6789").unwrap();
        let expected = pseudonym(&key(), &d);
        assert_eq!(
            pseudonym(&PseudonymKey::load(&hex_path).unwrap(), &d),
            expected
        );
        assert_eq!(
            pseudonym(&PseudonymKey::load(&b64_path).unwrap(), &d),
            expected
        );
        let short = tmp.path().join("short.key");
        crate::keys::write_secret(&short, "0707".as_bytes()).unwrap();
        assert!(PseudonymKey::load(&short).is_err());
        assert_eq!(PseudonymKey::generate_hex().len(), 64);
    }
}
