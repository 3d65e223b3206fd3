//! The one definition of what stores, requests and replies are signed over.
//!
//! Encoding: a domain tag, then each field as a 4-byte big-endian length and its bytes;
//! integers as 8-byte big-endian. It is
//! deterministic and unambiguous, and the domain tag stops a signature for one kind of
//! message being replayed as another. The digest given to secp256k1 is SHA-256 of it.

use crate::chunks::Manifest;
use crate::consent::RecordCategory;
use crate::packet::{ReplyBody, RequestBody};
use sha2::{Digest, Sha256};

pub const STORE_DOMAIN: &str = "ehrx/store/v3";
pub const ATTEST_DOMAIN: &str = "ehrx/attest/v2";
pub const REQUEST_DOMAIN: &str = "ehrx/request/v3";
pub const REPLY_DOMAIN: &str = "ehrx/reply/v2";
pub const COSIGN_DOMAIN: &str = "ehrx/cosign/v1";

struct Canonical(Vec<u8>);

impl Canonical {
    fn new(domain: &str) -> Self {
        let mut out = Canonical(Vec::with_capacity(256));
        out.bytes(domain.as_bytes());
        out
    }

    fn bytes(&mut self, data: &[u8]) -> &mut Self {
        // Lengths are bounded by the protocol limits, far below u32::MAX.
        self.0.extend_from_slice(&(data.len() as u32).to_be_bytes());
        self.0.extend_from_slice(data);
        self
    }

    fn text(&mut self, text: &str) -> &mut Self {
        self.bytes(text.as_bytes())
    }

    /// An optional field: absent is the length `u32::MAX` with no bytes.
    fn optional_text(&mut self, text: Option<&str>) -> &mut Self {
        match text {
            Some(text) => self.text(text),
            None => {
                self.0.extend_from_slice(&u32::MAX.to_be_bytes());
                self
            }
        }
    }

    fn number(&mut self, n: u64) -> &mut Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    /// A manifest is signed as its chunk count, chunk size and history hash: the hash
    /// binds every chunk hash in order, so the list itself need not be repeated.
    fn manifest(&mut self, m: &Manifest) -> &mut Self {
        self.number(m.chunk_hashes.len() as u64)
            .number(u64::from(m.chunk_bytes))
            .text(&m.history_hash)
    }
}

/// The fields a storing peer signs: which record, and the one hash that binds its chunks.
pub struct StoreSigning<'a> {
    pub network_id: &'a str,
    pub storer: &'a str,
    pub record_id: &'a str,
    pub patient_token: &'a str,
    pub manifest: &'a Manifest,
    /// The record's category (v3): signed last, so the storer's signature binds what
    /// consent directives are checked against.
    pub category: RecordCategory,
}

pub fn store_sign_bytes(s: &StoreSigning) -> Vec<u8> {
    let mut c = Canonical::new(STORE_DOMAIN);
    c.text(s.network_id)
        .text(s.storer)
        .text(s.record_id)
        .text(s.patient_token);
    c.manifest(s.manifest);
    c.text(s.category.as_str());
    c.0
}

/// What a second clinician signs to co-sign a break-glass request (`CosignBreakGlass`):
/// the protocol version, the requesting network, the request and the co-signer's id.
pub fn cosign_sign_bytes(network_id: &str, request_id: &str, clinician_id: &str) -> Vec<u8> {
    let mut c = Canonical::new(COSIGN_DOMAIN);
    c.number(u64::from(crate::limits::PACKET_VERSION))
        .text(network_id)
        .text(request_id)
        .text(clinician_id);
    c.0
}

/// What a storing peer signs inside the sealed record (`packet::Attestation`).
pub fn attest_sign_bytes(network_id: &str, storer: &str, commitment: &str) -> Vec<u8> {
    let mut c = Canonical::new(ATTEST_DOMAIN);
    c.text(network_id).text(storer).text(commitment);
    c.0
}

pub fn request_sign_bytes(b: &RequestBody) -> Vec<u8> {
    let mut c = Canonical::new(REQUEST_DOMAIN);
    c.number(u64::from(b.version))
        .text(&b.request_id)
        .text(&b.source_network)
        .text(&b.destination_network)
        .text(&b.requester)
        .text(b.requester_role.as_str())
        .text(&b.clinician_id)
        .text(b.purpose.as_str())
        .bytes(&b.sealed_patient)
        .bytes(&b.reply_encryption_key)
        .number(b.issued_at)
        .number(b.expires_at);
    // v3: the break-glass claim's coded reason, absent for an ordinary request. A claim
    // without a reason is refused before any signature check; it is encoded as empty text.
    let reason = b
        .break_glass
        .as_ref()
        .map(|claim| claim.reason.map_or("", |reason| reason.as_str()));
    c.optional_text(reason);
    c.0
}

pub fn reply_sign_bytes(b: &ReplyBody) -> Vec<u8> {
    let mut c = Canonical::new(REPLY_DOMAIN);
    c.number(u64::from(b.version))
        .text(&b.request_id)
        .text(&b.requester_network)
        .text(&b.responder_network)
        .text(&b.responder)
        .text(&b.recipient_key_hash);
    c.manifest(&b.manifest);
    c.number(b.issued_at);
    c.0
}

/// Half the order of secp256k1 (n / 2, rounded down), big-endian.
const SECP256K1_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// `true` when a 64-byte compact (r || s) signature is in low-S form (s <= n / 2), the only
/// form accepted. For every valid (r, s), (r, n - s) verifies too; accepting both would make
/// signatures malleable. The peer tool signs low-S (and refuses high-S); the contracts check
/// this before `secp256k1_verify`, which accepts either.
pub fn is_low_s(signature: &[u8]) -> bool {
    // Equal-length big-endian byte strings compare like the numbers they encode.
    signature.len() == 64 && signature[32..] <= SECP256K1_HALF_ORDER[..]
}

/// The 32-byte digest handed to `secp256k1_verify` / signed by the peer tool.
pub fn digest(sign_bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(sign_bytes).into()
}

/// Hex SHA-256 of some bytes.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hex SHA-256 of a registered public key: how a request binds the reply to the key the
/// requester registered, and how a later reply is checked against the current one.
pub fn key_hash(key: &[u8]) -> String {
    sha256_hex(key)
}

/// Lowercase hex SHA-256: what a chain keeps of bytes it need not store (a request's
/// sealed patient details) to check them when they are read back from the packet.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_s_means_at_most_half_the_order() {
        let mut sig = [0u8; 64];
        sig[32..].copy_from_slice(&SECP256K1_HALF_ORDER);
        assert!(is_low_s(&sig), "n / 2 itself is low");
        sig[63] += 1;
        assert!(!is_low_s(&sig), "n / 2 + 1 is high");
        assert!(is_low_s(&[0u8; 64]));
        assert!(!is_low_s(&[0xff; 64]));
        assert!(!is_low_s(&[0u8; 63]), "not a compact signature");
    }
}
