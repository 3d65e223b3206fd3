//! HPKE (RFC 9180) in base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
//!
//! Every ciphertext is bound to its context through HPKE's `info`: the purpose tag and the
//! ids and networks it belongs to (and, for replies, the recipient key). Opening it under any
//! other context derives a different key and fails authentication, so a ciphertext copied
//! into another request, network or record does not open.
//!
//! Wire form: the 32-byte encapsulated key, then the AEAD ciphertext (with its 16-byte tag).

use anyhow::{anyhow, bail, Result};
use ehr_protocol::chunks::{chunk_aad, Layout, Manifest};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use std::fmt;
use zeroize::Zeroizing;

type Kem = X25519HkdfSha256;
type Aead = ChaCha20Poly1305;
type Kdf = HkdfSha256;

pub const REPLY_CONTEXT: &str = "ehrx/reply/v2";
pub const RECORD_CONTEXT: &str = "ehrx/record/v2";
pub const DEMOGRAPHICS_CONTEXT: &str = "ehrx/demographics/v1";

/// Length of the encapsulated key in front of every ciphertext.
pub const ENCAPPED_LEN: usize = 32;
/// AEAD tag length.
pub const TAG_LEN: usize = 16;

/// An X25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct X25519Public([u8; 32]);

impl X25519Public {
    pub fn from_bytes(bytes: &[u8]) -> Result<X25519Public> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow!("an X25519 public key is 32 bytes, got {}", bytes.len()))?;
        // Reject keys HPKE cannot use (e.g. low-order points are caught at encapsulation).
        <Kem as hpke::Kem>::PublicKey::from_bytes(&arr)
            .map_err(|_| anyhow!("not a valid X25519 public key"))?;
        Ok(X25519Public(arr))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn hpke(&self) -> <Kem as hpke::Kem>::PublicKey {
        <Kem as hpke::Kem>::PublicKey::from_bytes(&self.0).expect("checked at construction")
    }
}

impl fmt::Debug for X25519Public {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X25519Public({})", hex::encode(self.0))
    }
}

/// An X25519 secret key (zeroized on drop by the underlying type).
pub struct X25519Secret(<Kem as hpke::Kem>::PrivateKey);

impl X25519Secret {
    pub fn from_bytes(bytes: &[u8]) -> Result<X25519Secret> {
        <Kem as hpke::Kem>::PrivateKey::from_bytes(bytes)
            .map(X25519Secret)
            .map_err(|_| anyhow!("not a valid X25519 secret key"))
    }

    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.0.to_bytes());
        out
    }

    pub fn public(&self) -> X25519Public {
        let pk = <Kem as hpke::Kem>::sk_to_pk(&self.0);
        let mut arr = [0u8; 32];
        arr.copy_from_slice(&pk.to_bytes());
        X25519Public(arr)
    }
}

impl fmt::Debug for X25519Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("X25519Secret(<redacted>)")
    }
}

pub fn generate_x25519() -> X25519Secret {
    let (sk, _) = Kem::gen_keypair(&mut crate::keys::os_rng());
    X25519Secret(sk)
}

/// What a ciphertext belongs to; encoded into HPKE's `info`.
#[derive(Debug, Clone, Copy)]
pub enum Context<'a> {
    /// A reply's records, encrypted to the requester's reply key.
    Reply {
        request_id: &'a str,
        requester_network: &'a str,
        responder_network: &'a str,
        recipient: &'a X25519Public,
    },
    /// A stored record, encrypted to the hospital's records key.
    Record {
        network: &'a str,
        record_id: &'a str,
        patient_token: &'a str,
    },
    /// A request's patient details (`sealed_patient`), sealed to the custodian's key: the
    /// partner's registered `encryption_key`, its records key.
    Demographics {
        request_id: &'a str,
        source_network: &'a str,
        destination_network: &'a str,
    },
}

impl Context<'_> {
    /// Domain tag, then each field as a 4-byte big-endian length and its bytes.
    pub fn info(&self) -> Vec<u8> {
        let fields: Vec<&[u8]> = match self {
            Context::Reply {
                request_id,
                requester_network,
                responder_network,
                recipient,
            } => vec![
                REPLY_CONTEXT.as_bytes(),
                request_id.as_bytes(),
                requester_network.as_bytes(),
                responder_network.as_bytes(),
                recipient.as_bytes(),
            ],
            Context::Record {
                network,
                record_id,
                patient_token,
            } => vec![
                RECORD_CONTEXT.as_bytes(),
                network.as_bytes(),
                record_id.as_bytes(),
                patient_token.as_bytes(),
            ],
            Context::Demographics {
                request_id,
                source_network,
                destination_network,
            } => vec![
                DEMOGRAPHICS_CONTEXT.as_bytes(),
                request_id.as_bytes(),
                source_network.as_bytes(),
                destination_network.as_bytes(),
            ],
        };
        length_prefixed(&fields)
    }
}

/// Each part as a 4-byte big-endian length and its bytes.
pub fn length_prefixed(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        let len = u32::try_from(part.len()).expect("context fields are short");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// Encrypts `plaintext` to `recipient` under `context`: encapsulated key || ciphertext.
pub fn seal(recipient: &X25519Public, context: &Context, plaintext: &[u8]) -> Result<Vec<u8>> {
    let (encapped, ciphertext) = hpke::single_shot_seal::<Aead, Kdf, Kem, _>(
        &OpModeS::Base,
        &recipient.hpke(),
        &context.info(),
        plaintext,
        b"",
        &mut crate::keys::os_rng(),
    )
    .map_err(|e| anyhow!("encryption failed: {e}"))?;
    let mut out = Vec::with_capacity(ENCAPPED_LEN + ciphertext.len());
    out.extend_from_slice(&encapped.to_bytes());
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Decrypts what `seal` produced. Fails for a wrong key, a changed context or changed bytes.
pub fn open(secret: &X25519Secret, context: &Context, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < ENCAPPED_LEN + TAG_LEN {
        bail!("ciphertext too short to be an HPKE message");
    }
    let (encapped, ciphertext) = sealed.split_at(ENCAPPED_LEN);
    let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(encapped)
        .map_err(|_| anyhow!("ciphertext has an invalid encapsulated key"))?;
    hpke::single_shot_open::<Aead, Kdf, Kem>(
        &OpModeR::Base,
        &secret.0,
        &encapped,
        &context.info(),
        ciphertext,
        b"",
    )
    .map(Zeroizing::new)
    .map_err(|_| {
        anyhow!(
            "decryption failed: wrong key, or the ciphertext does not belong to this context \
             or was altered"
        )
    })
}

/// Seals `plaintext` to `recipient` under `context` as a chunked history
/// (`ehr_protocol::chunks`): padded to the smallest power-of-two layout with chunks of at
/// most `max_chunk_bytes`, one HPKE context, one AEAD message per chunk with its index and
/// the count as associated data, the encapsulated key in front of chunk 0.
pub fn seal_chunks(
    recipient: &X25519Public,
    context: &Context,
    plaintext: &[u8],
    max_chunk_bytes: usize,
) -> Result<(Manifest, Vec<Vec<u8>>)> {
    let layout = Layout::for_plaintext(plaintext.len(), max_chunk_bytes);
    let parts = Zeroizing::new(layout.pad_and_cut(plaintext));
    let (encapped, mut sender) = hpke::setup_sender::<Aead, Kdf, Kem, _>(
        &OpModeS::Base,
        &recipient.hpke(),
        &context.info(),
        &mut crate::keys::os_rng(),
    )
    .map_err(|e| anyhow!("encryption failed: {e}"))?;
    let mut chunks = Vec::with_capacity(layout.chunks);
    for (index, part) in parts.iter().enumerate() {
        let sealed = sender
            .seal(part, &chunk_aad(index, layout.chunks))
            .map_err(|e| anyhow!("encryption failed: {e}"))?;
        let mut chunk = Vec::with_capacity(layout.chunk_bytes);
        if index == 0 {
            chunk.extend_from_slice(&encapped.to_bytes());
        }
        chunk.extend_from_slice(&sealed);
        debug_assert_eq!(chunk.len(), layout.chunk_bytes);
        chunks.push(chunk);
    }
    Ok((Manifest::of(&chunks), chunks))
}

/// Opens what `seal_chunks` produced, trying each secret (current key first). The chunks
/// must be checked against their manifest first; a chunk out of place fails here too.
pub fn open_chunks(
    secrets: &[X25519Secret],
    context: &Context,
    chunks: &[Vec<u8>],
) -> Result<Zeroizing<Vec<u8>>> {
    let first = chunks
        .first()
        .ok_or_else(|| anyhow!("a sealed history has no chunks"))?;
    if first.len() < ENCAPPED_LEN + TAG_LEN {
        bail!("chunk 0 is too short to hold a sealed history");
    }
    let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(&first[..ENCAPPED_LEN])
        .map_err(|_| anyhow!("chunk 0 has an invalid encapsulated key"))?;
    let mut last = anyhow!("no decryption key available");
    'keys: for secret in secrets {
        let Ok(mut receiver) = hpke::setup_receiver::<Aead, Kdf, Kem>(
            &OpModeR::Base,
            &secret.0,
            &encapped,
            &context.info(),
        ) else {
            continue;
        };
        let mut parts = Vec::with_capacity(chunks.len());
        for (index, chunk) in chunks.iter().enumerate() {
            let body = if index == 0 {
                &chunk[ENCAPPED_LEN..]
            } else {
                &chunk[..]
            };
            match receiver.open(body, &chunk_aad(index, chunks.len())) {
                Ok(part) => parts.push(Zeroizing::new(part)),
                Err(_) => {
                    last = anyhow!(
                        "decryption of chunk {index} of {} failed: wrong key, or the history \
                         does not belong to this context, or a chunk was altered or moved",
                        chunks.len()
                    );
                    continue 'keys;
                }
            }
        }
        return Layout::join_and_unpad(&parts)
            .map(Zeroizing::new)
            .ok_or_else(|| anyhow!("the decrypted history is not padded as the protocol pads"));
    }
    Err(last)
}

/// Tries each secret in turn (current key first, then a rotated one).
pub fn open_with_any(
    secrets: &[X25519Secret],
    context: &Context,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let mut last = None;
    for secret in secrets {
        match open(secret, context, sealed) {
            Ok(plain) => return Ok(plain),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("no decryption key available")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_ctx<'a>(id: &'a str, recipient: &'a X25519Public) -> Context<'a> {
        Context::Reply {
            request_id: id,
            requester_network: "hospital-a",
            responder_network: "hospital-b",
            recipient,
        }
    }

    #[test]
    fn round_trip() {
        let sk = generate_x25519();
        let pk = sk.public();
        let ctx = reply_ctx("0123456789abcdef0123456789abcdef", &pk);
        let sealed = seal(&pk, &ctx, b"{\"resourceType\":\"Bundle\"}").unwrap();
        assert_eq!(sealed.len(), ENCAPPED_LEN + 25 + TAG_LEN);
        assert_eq!(
            open(&sk, &ctx, &sealed).unwrap().as_slice(),
            b"{\"resourceType\":\"Bundle\"}"
        );
        // Fresh encapsulation each time: same plaintext, different ciphertext.
        assert_ne!(
            sealed,
            seal(&pk, &ctx, b"{\"resourceType\":\"Bundle\"}").unwrap()
        );
    }

    #[test]
    fn ciphertext_moved_to_another_context_fails() {
        let sk = generate_x25519();
        let pk = sk.public();
        let id = "0123456789abcdef0123456789abcdef";
        let sealed = seal(&pk, &reply_ctx(id, &pk), b"history").unwrap();

        let other_request = reply_ctx("ffffffffffffffffffffffffffffffff", &pk);
        assert!(open(&sk, &other_request, &sealed).is_err());

        let other_network = Context::Reply {
            request_id: id,
            requester_network: "hospital-c",
            responder_network: "hospital-b",
            recipient: &pk,
        };
        assert!(open(&sk, &other_network, &sealed).is_err());

        let swapped = Context::Reply {
            request_id: id,
            requester_network: "hospital-b",
            responder_network: "hospital-a",
            recipient: &pk,
        };
        assert!(open(&sk, &swapped, &sealed).is_err());

        // Bound to the recipient key named in the context, even with the right secret.
        let other_pk = generate_x25519().public();
        assert!(open(&sk, &reply_ctx(id, &other_pk), &sealed).is_err());

        // Another purpose with the same ids.
        let demographics = Context::Demographics {
            request_id: id,
            source_network: "hospital-a",
            destination_network: "hospital-b",
        };
        assert!(open(&sk, &demographics, &sealed).is_err());

        // Another recipient cannot open it at all.
        let stranger = generate_x25519();
        assert!(open(&stranger, &reply_ctx(id, &pk), &sealed).is_err());

        // Flipping one byte breaks authentication.
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(open(&sk, &reply_ctx(id, &pk), &tampered).is_err());
        assert!(open(&sk, &reply_ctx(id, &pk), &sealed).is_ok());
    }

    #[test]
    fn record_context_binds_record_id_and_token() {
        let sk = generate_x25519();
        let pk = sk.public();
        let token = "ab".repeat(32);
        let ctx = Context::Record {
            network: "hospital-b",
            record_id: "rec-0000000000000001",
            patient_token: &token,
        };
        let sealed = seal(&pk, &ctx, b"record").unwrap();
        let other_token = "cd".repeat(32);
        let moved = Context::Record {
            network: "hospital-b",
            record_id: "rec-0000000000000001",
            patient_token: &other_token,
        };
        assert!(open(&sk, &moved, &sealed).is_err());
        let old = generate_x25519();
        assert_eq!(
            open_with_any(&[old, sk], &ctx, &sealed).unwrap().as_slice(),
            b"record"
        );
    }

    #[test]
    fn chunked_histories_round_trip_and_refuse_moved_or_altered_chunks() {
        let sk = generate_x25519();
        let pk = sk.public();
        let ctx = reply_ctx("0123456789abcdef0123456789abcdef", &pk);
        let history: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let (manifest, chunks) = seal_chunks(&pk, &ctx, &history, 64 * 1024).unwrap();
        assert_eq!((chunks.len(), manifest.chunk_bytes), (8, 65536));
        assert!(chunks.iter().all(|c| c.len() == 65536));
        assert_eq!(manifest.check(65536, 8), Ok(()));
        assert_eq!(
            open_chunks(&[sk], &ctx, &chunks).unwrap().as_slice(),
            &history[..]
        );

        let sk = X25519Secret::from_bytes(&[7u8; 32]).unwrap();
        let pk = sk.public();
        let ctx = reply_ctx("0123456789abcdef0123456789abcdef", &pk);
        let (_, chunks) = seal_chunks(&pk, &ctx, &history, 64 * 1024).unwrap();
        let mut swapped = chunks.clone();
        swapped.swap(2, 3);
        assert!(open_chunks(
            &[X25519Secret::from_bytes(&[7u8; 32]).unwrap()],
            &ctx,
            &swapped
        )
        .is_err());
        let mut altered = chunks.clone();
        altered[5][100] ^= 1;
        let err = open_chunks(
            &[X25519Secret::from_bytes(&[7u8; 32]).unwrap()],
            &ctx,
            &altered,
        )
        .unwrap_err();
        assert!(err.to_string().contains("chunk 5 of 8"), "{err}");
        let short = &chunks[..4];
        assert!(open_chunks(
            &[X25519Secret::from_bytes(&[7u8; 32]).unwrap()],
            &ctx,
            short
        )
        .is_err());
        // A small history is one chunk of the smallest bucket.
        let (small, one) = seal_chunks(&pk, &ctx, b"{}", 128 * 1024).unwrap();
        assert_eq!((one.len(), small.chunk_bytes), (1, 1024));
    }

    #[test]
    fn info_is_length_prefixed_and_unambiguous() {
        let pk = generate_x25519().public();
        let a = Context::Reply {
            request_id: "ab",
            requester_network: "c",
            responder_network: "d",
            recipient: &pk,
        };
        let b = Context::Reply {
            request_id: "a",
            requester_network: "bc",
            responder_network: "d",
            recipient: &pk,
        };
        assert_ne!(a.info(), b.info());
        assert!(a.info().starts_with(&[0, 0, 0, 13]));
        assert_eq!(&a.info()[4..17], REPLY_CONTEXT.as_bytes());
    }
}
