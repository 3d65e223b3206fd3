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

/// Hex characters of a request id's scope: 64 bits, so nobody can grind an address that
/// shares another requester's scope.
pub const REQUEST_SCOPE_HEX_LEN: usize = 16;
const REQUEST_SCOPE_DOMAIN: &[u8] = b"ehrx/request-scope/v1";

/// The scope every request id of `requester` (its address) starts with: a request id is
/// unique per requester, so nobody can take or burn another requester's id.
pub fn request_scope(requester: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(REQUEST_SCOPE_DOMAIN)
        .chain_update(requester.as_bytes())
        .finalize();
    hex::encode(digest)[..REQUEST_SCOPE_HEX_LEN].to_string()
}

/// A request id in `requester`'s scope: `<scope>-<suffix>`, where `suffix` is random.
pub fn scoped_request_id(requester: &str, suffix: &str) -> String {
    format!("{}-{suffix}", request_scope(requester))
}

/// A valid id that lies in `requester`'s scope, with at least 8 characters of its own.
pub fn request_id_of(text: &str, requester: &str) -> Result<(), ErrorCode> {
    id(text)?;
    let scope = request_scope(requester);
    check(
        text.len() >= REQUEST_SCOPE_HEX_LEN + 1 + 8
            && text.starts_with(&scope)
            && text.as_bytes()[REQUEST_SCOPE_HEX_LEN] == b'-',
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

/// A request's sealed patient details: exactly `SEALED_PATIENT_LEN` bytes, whoever the
/// patient is.
pub fn sealed_patient(data: &[u8]) -> Result<(), ErrorCode> {
    check(data.len() == SEALED_PATIENT_LEN)
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

#[cfg(test)]
mod scope_tests {
    use super::*;

    #[test]
    fn request_ids_are_scoped_to_their_requester() {
        let id = scoped_request_id("wasm1alice", "0123456789abcdef");
        assert_eq!(request_id_of(&id, "wasm1alice"), Ok(()));
        assert_eq!(
            request_id_of(&id, "wasm1bob"),
            Err(ErrorCode::InvalidFormat)
        );
        // Too short a suffix, or no separator.
        let scope = request_scope("wasm1alice");
        assert!(request_id_of(&format!("{scope}-1234567"), "wasm1alice").is_err());
        assert!(request_id_of(&format!("{scope}x12345678"), "wasm1alice").is_err());
        // The scope is pinned: a change here is a wire change.
        assert_eq!(request_scope("wasm1alice"), "d28238c8f58ee83a");
        assert_ne!(request_scope("wasm1alice"), request_scope("wasm1alicf"));
    }
}
