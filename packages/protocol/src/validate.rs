//! Format checks used on both chains and in the peer tool. Each returns the code the
//! verification pipeline reports, so a malformed field is `InvalidFormat` everywhere.

use crate::error_code::ErrorCode;
use crate::limits::*;
use cosmwasm_std::Binary;

fn check(ok: bool) -> Result<(), ErrorCode> {
    if ok {
        Ok(())
    } else {
        Err(ErrorCode::InvalidFormat)
    }
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Request and record ids: random, `[a-z0-9-]`, 16..=64 chars.
pub fn id(text: &str) -> Result<(), ErrorCode> {
    check(
        (MIN_ID_LEN..=MAX_ID_LEN).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
    )
}

/// Network, partner, device ids and labels: 1..=64 chars of `[A-Za-z0-9._-]`.
pub fn name(text: &str) -> Result<(), ErrorCode> {
    check(
        (1..=MAX_NAME_LEN).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'),
    )
}

/// A patient token: 64 lowercase hex chars (HMAC-SHA-256).
pub fn patient_token(text: &str) -> Result<(), ErrorCode> {
    check(is_lower_hex(text, PATIENT_TOKEN_HEX_LEN))
}

/// A SHA-256 digest: 64 lowercase hex chars.
pub fn sha256_hex(text: &str) -> Result<(), ErrorCode> {
    check(is_lower_hex(text, SHA256_HEX_LEN))
}

pub fn secp256k1_pubkey(key: &Binary) -> Result<(), ErrorCode> {
    check(key.len() == SECP256K1_PUBKEY_LEN && matches!(key[0], 2 | 3))
}

pub fn secp256k1_signature(sig: &Binary) -> Result<(), ErrorCode> {
    check(sig.len() == SECP256K1_SIGNATURE_LEN)
}

pub fn x25519_key(key: &Binary) -> Result<(), ErrorCode> {
    check(key.len() == X25519_KEY_LEN)
}

/// Ciphertext must be non-empty and no larger than `max` bytes.
pub fn ciphertext(data: &Binary, max: usize) -> Result<(), ErrorCode> {
    check(!data.is_empty())?;
    if data.len() > max.min(MAX_CIPHERTEXT_BYTES) {
        return Err(ErrorCode::TooLarge);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_random_lowercase_and_refuse_others() {
        assert!(id("0f3c9a7e-1b2d-4e5f").is_ok());
        assert_eq!(id("short"), Err(ErrorCode::InvalidFormat));
        assert_eq!(id("UPPERCASE-ID-12345"), Err(ErrorCode::InvalidFormat));
        assert_eq!(id(&"a".repeat(65)), Err(ErrorCode::InvalidFormat));
    }

    #[test]
    fn tokens_must_be_lower_hex_of_exact_length() {
        assert!(patient_token(&"ab".repeat(32)).is_ok());
        assert_eq!(
            patient_token(&"AB".repeat(32)),
            Err(ErrorCode::InvalidFormat)
        );
        assert_eq!(patient_token("John Smith"), Err(ErrorCode::InvalidFormat));
    }

    #[test]
    fn ciphertext_over_limit_is_too_large() {
        let data = Binary::from(vec![1u8; 11]);
        assert_eq!(ciphertext(&data, 10), Err(ErrorCode::TooLarge));
        assert!(ciphertext(&data, 11).is_ok());
        assert_eq!(
            ciphertext(&Binary::default(), 10),
            Err(ErrorCode::InvalidFormat)
        );
    }

    #[test]
    fn keys_are_length_checked() {
        let mut key = vec![2u8];
        key.extend([7u8; 32]);
        assert!(secp256k1_pubkey(&Binary::from(key)).is_ok());
        assert_eq!(
            secp256k1_pubkey(&Binary::from(vec![4u8; 65])),
            Err(ErrorCode::InvalidFormat)
        );
        assert!(x25519_key(&Binary::from(vec![0u8; 32])).is_ok());
    }
}
