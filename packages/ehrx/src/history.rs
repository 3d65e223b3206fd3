//! A patient's history on its way through the exchange: compressed, attested by the peer
//! that stores it, sealed in chunks (`crypto::seal_chunks`), and moved to and from the chain
//! a few chunks per transaction, with progress.
//!
//! Order on the way in: FHIR JSON → zstd → `frame(attestation, zstd)` → pad → HPKE chunks.
//! The reply service opens a record's chunks, keeps its attestation and compressed bytes as
//! they are, and seals them again to the requester; the requester checks each attestation,
//! then decompresses (bounded) and validates the Bundles.

use crate::chain::{self, ChainClient, TxResult};
use crate::peer::Exchange;
use crate::sign;
use anyhow::{bail, Context, Result};
use cosmwasm_std::Binary;
use ehr_protocol::chunks::Manifest;
use ehr_protocol::exchange::ExecuteMsg;
use ehr_protocol::limits::MAX_CHUNK_BYTES;
use ehr_protocol::packet::Attestation;
use ehr_protocol::registry::{ConfigResponse as RegistryConfig, QueryMsg as RegistryQuery};
use ehr_protocol::signing::{attest_sign_bytes, content_hash};
use k256::ecdsa::SigningKey;
use rand_core::RngCore;
use sha2::{Digest, Sha256};
use std::io::Read;

/// zstd level: 3 is zstd's default, fast on multi-megabyte FHIR JSON (see BENCHMARKS.md
/// for the ratios measured at this level).
pub const ZSTD_LEVEL: i32 = 3;

/// The largest decompressed Bundle the tool accepts from a partner: a bound on what a
/// hostile or broken reply can make it allocate.
pub const MAX_BUNDLE_BYTES: u64 = 256 * 1024 * 1024;

/// Raw chunk bytes per transaction. A transaction carries them base64 in JSON (4/3), and is
/// broadcast base64 again through CometBFT's RPC, whose request body limit is 1,000,000
/// bytes (`max_body_bytes`): 512 KiB of chunks make a body of about 0.94 MB, and a
/// transaction of about 0.70 MB, under the mempool's `max_tx_bytes` of 1 MiB.
pub const MAX_TX_CHUNK_BYTES: usize = 512 * 1024;

pub fn compress(json: &[u8]) -> Result<Vec<u8>> {
    zstd::bulk::compress(json, ZSTD_LEVEL).context("compressing the Bundle")
}

/// Decompresses at most `MAX_BUNDLE_BYTES`; more is refused, not truncated.
pub fn decompress(compressed: &[u8]) -> Result<Vec<u8>> {
    let decoder = zstd::stream::read::Decoder::new(compressed).context("reading zstd")?;
    let mut out = Vec::new();
    decoder
        .take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut out)
        .context("decompressing a history part: not zstd, or corrupt")?;
    if out.len() as u64 > MAX_BUNDLE_BYTES {
        bail!("a history part decompresses to more than {MAX_BUNDLE_BYTES} bytes (TooLarge)");
    }
    Ok(out)
}

/// The storing peer's attestation of `compressed`: a signature over a nonce-keyed
/// commitment, sealed inside the record, so the requester can check that what it reads is
/// what the storer stored.
pub fn attest(
    key: &SigningKey,
    network_id: &str,
    storer: &str,
    compressed: &[u8],
) -> Result<Attestation> {
    let mut nonce = [0u8; 32];
    crate::keys::os_rng().fill_bytes(&mut nonce);
    let commitment = commitment(&nonce, compressed);
    let signature = sign::sign(key, &attest_sign_bytes(network_id, storer, &commitment));
    Ok(Attestation {
        network_id: network_id.to_string(),
        storer: storer.to_string(),
        storer_pubkey: Binary::from(key.verifying_key().to_encoded_point(true).as_bytes()),
        nonce: Binary::from(nonce.to_vec()),
        commitment,
        signature: Binary::from(signature.to_vec()),
    })
}

fn commitment(nonce: &[u8], compressed: &[u8]) -> String {
    hex::encode(
        Sha256::new()
            .chain_update(nonce)
            .chain_update(compressed)
            .finalize(),
    )
}

/// Checks that `compressed` is what the attestation's storer signed.
pub fn verify_attestation(attestation: &Attestation, compressed: &[u8]) -> Result<()> {
    if commitment(&attestation.nonce, compressed) != attestation.commitment {
        bail!(
            "a record's bytes differ from what peer {} of {} stored (its commitment does not \
             match)",
            attestation.storer,
            attestation.network_id
        );
    }
    sign::verify(
        &attestation.storer_pubkey,
        &attest_sign_bytes(
            &attestation.network_id,
            &attestation.storer,
            &attestation.commitment,
        ),
        &attestation.signature,
    )
    .with_context(|| {
        format!(
            "the storing peer's signature ({} of {})",
            attestation.storer, attestation.network_id
        )
    })
}

/// The chunk limits of this chain's registry policy: the largest chunk and the most chunks
/// of one history.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_chunk_bytes: usize,
    pub max_history_chunks: u32,
}

impl Limits {
    pub fn of(exchange: &Exchange) -> Result<Limits> {
        let config: RegistryConfig = chain::query(
            exchange.chain,
            &exchange.registry,
            &RegistryQuery::Config {},
        )
        .context("reading the registry policy")?;
        Ok(Limits {
            max_chunk_bytes: usize::try_from(config.policy.max_chunk_bytes)
                .unwrap_or(usize::MAX)
                .min(MAX_CHUNK_BYTES),
            max_history_chunks: config.policy.max_history_chunks,
        })
    }

    /// `TooLarge`, with the sizes, when a sealed history has more chunks than the policy
    /// allows.
    pub fn check(&self, what: &str, manifest: &Manifest) -> Result<()> {
        if manifest.chunk_count() > self.max_history_chunks {
            bail!(
                "{what} is {} chunks of {} KiB sealed ({} MiB), above this chain's policy of \
                 {} chunks (TooLarge): ask the registry admin to raise max_history_chunks",
                manifest.chunk_count(),
                manifest.chunk_bytes / 1024,
                manifest.total_bytes() / (1024 * 1024),
                self.max_history_chunks
            );
        }
        Ok(())
    }
}

/// Raw chunk bytes per transaction: `MAX_TX_CHUNK_BYTES`, or `$EHRX_TX_CHUNK_BYTES` (for
/// measuring the chain's limits; docs/PROTOCOL-v2.md section 4 has what larger values do).
pub fn tx_chunk_bytes() -> usize {
    std::env::var("EHRX_TX_CHUNK_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MAX_TX_CHUNK_BYTES)
}

/// Chunks in batches that fit one transaction each (at least one chunk per batch).
pub fn batches(chunks: &[Vec<u8>]) -> Vec<&[Vec<u8>]> {
    let per_tx = chunks
        .first()
        .map_or(1, |c| (tx_chunk_bytes() / c.len().max(1)).max(1));
    chunks.chunks(per_tx).collect()
}

pub fn to_binaries(chunks: &[Vec<u8>]) -> Vec<Binary> {
    chunks.iter().map(|c| Binary::from(c.as_slice())).collect()
}

/// Sends a chunked message: `first` with the first batch, then `next(first_index, batch)`
/// for each further batch, reporting progress after each transaction. Returns the
/// transactions' hashes.
pub fn upload(
    client: &dyn ChainClient,
    contract: &str,
    what: &str,
    chunks: &[Vec<u8>],
    first: impl FnOnce(Vec<Binary>) -> ExecuteMsg,
    next: impl Fn(u32, Vec<Binary>) -> ExecuteMsg,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<String>> {
    let batches = batches(chunks);
    let total_bytes: usize = chunks.iter().map(Vec::len).sum();
    let mut sent = 0usize;
    let mut txs = Vec::with_capacity(batches.len());
    let mut first = Some(first);
    for (n, batch) in batches.iter().enumerate() {
        let msg = match first.take() {
            Some(first) => first(to_binaries(batch)),
            None => next(sent as u32, to_binaries(batch)),
        };
        let tx: TxResult = chain::execute(client, contract, &msg).with_context(|| {
            format!(
                "{what}: transaction {} of {} (chunks {}..{} of {})",
                n + 1,
                batches.len(),
                sent,
                sent + batch.len(),
                chunks.len()
            )
        })?;
        sent += batch.len();
        let bytes: usize = chunks[..sent].iter().map(Vec::len).sum();
        progress(&format!(
            "{what}: {sent}/{} chunks, {}/{} KiB, transaction {}/{} ({})",
            chunks.len(),
            bytes / 1024,
            total_bytes / 1024,
            n + 1,
            batches.len(),
            tx.txhash
        ));
        txs.push(tx.txhash);
    }
    Ok(txs)
}

/// Reads `count` chunks with `read(index)` and checks each against `hashes` before keeping
/// it: a missing, altered or misplaced chunk is named.
pub fn download(
    what: &str,
    hashes: &[String],
    read: impl Fn(u32) -> Result<Binary>,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Vec<u8>>> {
    let mut chunks = Vec::with_capacity(hashes.len());
    let mut bytes = 0usize;
    for (index, expected) in hashes.iter().enumerate() {
        let chunk = read(index as u32)
            .with_context(|| format!("{what}: chunk {index} of {} is missing", hashes.len()))?;
        if content_hash(&chunk) != *expected {
            bail!(
                "{what}: chunk {index} of {} does not match its manifest (ChunkMismatch): \
                 altered or out of place",
                hashes.len()
            );
        }
        bytes += chunk.len();
        chunks.push(chunk.to_vec());
        if (index + 1) % 8 == 0 || index + 1 == hashes.len() {
            progress(&format!(
                "{what}: {}/{} chunks, {} KiB",
                index + 1,
                hashes.len(),
                bytes / 1024
            ));
        }
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PeerKeys;

    #[test]
    fn attestations_bind_the_compressed_bytes() {
        let keys = PeerKeys::generate();
        let json = br#"{"resourceType":"Bundle","type":"collection"}"#.repeat(100);
        let compressed = compress(&json).unwrap();
        assert!(compressed.len() * 10 < json.len());
        assert_eq!(decompress(&compressed).unwrap(), json);
        let att = attest(keys.signing_key(), "hospital-b", "wasm1storer", &compressed).unwrap();
        verify_attestation(&att, &compressed).unwrap();
        let mut other = compressed.clone();
        other[3] ^= 1;
        assert!(verify_attestation(&att, &other).is_err());
        let mut forged = att.clone();
        forged.storer = "wasm1someone".into();
        assert!(verify_attestation(&forged, &compressed).is_err());
        assert!(decompress(b"not zstd").is_err());
    }

    #[test]
    fn batches_fit_a_transaction() {
        let chunks = vec![vec![0u8; 128 * 1024]; 10];
        let sizes: Vec<usize> = batches(&chunks).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        let small = vec![vec![0u8; 1024]; 1];
        assert_eq!(batches(&small).len(), 1);
    }

    #[test]
    fn downloads_name_the_bad_chunk() {
        let chunks = [vec![1u8; 1024], vec![2u8; 1024]];
        let hashes: Vec<String> = chunks.iter().map(|c| content_hash(c)).collect();
        let mut log = |_: &str| {};
        let got = download(
            "reply",
            &hashes,
            |i| Ok(Binary::from(chunks[i as usize].clone())),
            &mut log,
        )
        .unwrap();
        assert_eq!(got, chunks.to_vec());
        let err = download(
            "reply",
            &hashes,
            |_| Ok(Binary::from(chunks[0].clone())),
            &mut log,
        )
        .unwrap_err();
        assert!(err.to_string().contains("chunk 1 of 2"), "{err}");
        let err = download(
            "reply",
            &hashes,
            |i| {
                if i == 0 {
                    Ok(Binary::from(chunks[0].clone()))
                } else {
                    bail!("not stored")
                }
            },
            &mut log,
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("chunk 1 of 2 is missing"),
            "{err:#}"
        );
    }
}
