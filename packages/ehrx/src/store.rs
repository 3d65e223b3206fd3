//! `ehrx store`: a FHIR Bundle enters the ledger, compressed, attested, padded and sealed
//! in chunks to the hospital's records key, under the hospital's own pseudonym for the
//! patient.

use crate::crypto::{self, Context as CryptoContext, X25519Public};
use crate::fhir;
use crate::history::{self, Limits};
use crate::peer::{random_id, Peer};
use crate::sign;
use anyhow::{bail, Context, Result};
use ehr_protocol::consent::RecordCategory;
use ehr_protocol::exchange::{ExecuteMsg, StoreChunksMsg, StoreRecordMsg};
use ehr_protocol::packet::frame;
use ehr_protocol::validate;
use zeroize::Zeroizing;

/// What was stored (ids, hashes and sizes only).
#[derive(Debug, Clone)]
pub struct Stored {
    pub record_id: String,
    /// The hash the storer signed over the record's chunks.
    pub history_hash: String,
    /// The Bundle's JSON, its zstd form, and the sealed total.
    pub json_bytes: usize,
    pub compressed_bytes: usize,
    pub sealed_bytes: usize,
    pub chunks: usize,
    pub txhashes: Vec<String>,
}

/// A Bundle's JSON that passed the FHIR R4 check: what `store` takes, so that the check
/// runs once, before the caller reads keys or asks a chain.
pub struct CheckedBundle<'a>(&'a [u8]);

impl<'a> CheckedBundle<'a> {
    pub fn new(bundle_json: &'a [u8]) -> Result<CheckedBundle<'a>, fhir::FhirError> {
        fhir::check_bundle(bundle_json)?;
        Ok(CheckedBundle(bundle_json))
    }
}

/// Compresses the checked Bundle, attests it, seals it in chunks to `records_key` bound to
/// (network, record id, pseudonym), signs the manifest (`store_sign_bytes`) and submits
/// `StoreRecord` then `StoreChunks`, a few chunks per transaction. `pseudonym` is this
/// hospital's own (`pseudonym::pseudonym` under its local key). Nothing goes on chain before
/// every check passed.
pub fn store(
    peer: &Peer,
    bundle: &CheckedBundle,
    record_id: Option<String>,
    pseudonym: &str,
    records_key: &X25519Public,
    category: RecordCategory,
    progress: &mut dyn FnMut(&str),
) -> Result<Stored> {
    let bundle_json = bundle.0;
    let record_id = record_id.unwrap_or_else(random_id);
    if validate::id(&record_id).is_err() {
        bail!("the record id must be 16-64 characters of a-z, 0-9 and '-' (InvalidFormat)");
    }
    if validate::patient_token(pseudonym).is_err() {
        bail!("the pseudonym must be 64 lowercase hex characters (InvalidFormat)");
    }
    let limits = Limits::of(&peer.exchange)?;
    let compressed = Zeroizing::new(history::compress(bundle_json)?);
    let attestation = history::attest(
        peer.keys.signing_key(),
        peer.network(),
        &peer.address,
        &compressed,
    )?;
    let plaintext = Zeroizing::new(frame(&serde_json::to_vec(&attestation)?, &compressed));
    let context = CryptoContext::Record {
        network: peer.network(),
        record_id: &record_id,
        patient_token: pseudonym,
    };
    let (manifest, chunks) =
        crypto::seal_chunks(records_key, &context, &plaintext, limits.max_chunk_bytes)?;
    limits.check("the record", &manifest)?;
    progress(&format!(
        "record {record_id}: {} KiB of FHIR JSON, {} KiB compressed, sealed as {} chunk(s) of \
         {} KiB",
        bundle_json.len() / 1024,
        compressed.len() / 1024,
        manifest.chunk_count(),
        manifest.chunk_bytes / 1024
    ));
    let history_hash = manifest.history_hash.clone();
    let msg = sign::store_record(
        peer.keys.signing_key(),
        peer.network(),
        &peer.address,
        &record_id,
        pseudonym,
        manifest,
        category,
    );
    let txhashes = history::upload(
        peer.chain(),
        peer.contract(),
        &format!("storing record {record_id}"),
        &chunks,
        |first| {
            ExecuteMsg::StoreRecord(StoreRecordMsg {
                chunks: first,
                ..msg
            })
        },
        |first_index, chunks| {
            ExecuteMsg::StoreChunks(StoreChunksMsg {
                patient_token: pseudonym.to_string(),
                record_id: record_id.clone(),
                first_index,
                chunks,
            })
        },
        progress,
    )
    .with_context(|| format!("storing record {record_id}"))?;
    Ok(Stored {
        history_hash,
        json_bytes: bundle_json.len(),
        compressed_bytes: compressed.len(),
        sealed_bytes: chunks.iter().map(Vec::len).sum(),
        chunks: chunks.len(),
        txhashes,
        record_id,
    })
}
