//! `ehrx store`: a FHIR Bundle enters the ledger, padded and encrypted to the hospital's
//! records key, under the hospital's own pseudonym for the patient.

use crate::chain;
use crate::crypto::{self, Context as CryptoContext, X25519Public};
use crate::fhir;
use crate::peer::{random_id, Peer};
use crate::sign;
use anyhow::{bail, Context, Result};
use ehr_protocol::exchange::ExecuteMsg;
use ehr_protocol::limits::MAX_CIPHERTEXT_BYTES;
use ehr_protocol::padding;
use ehr_protocol::validate;
use zeroize::Zeroizing;

/// What was stored (ids and hashes only).
#[derive(Debug, Clone)]
pub struct Stored {
    pub record_id: String,
    pub content_hash: String,
    pub size: usize,
    pub txhash: String,
}

/// Validates the Bundle, pads it to its size bucket, encrypts it to `records_key` bound to
/// (network, record id, pseudonym), signs `store_sign_bytes` and submits `StoreRecord`.
/// `pseudonym` is this hospital's own (`pseudonym::pseudonym` under its local key).
pub fn store(
    peer: &Peer,
    bundle_json: &[u8],
    record_id: Option<String>,
    pseudonym: &str,
    records_key: &X25519Public,
) -> Result<Stored> {
    fhir::check_bundle(bundle_json)?;
    let record_id = record_id.unwrap_or_else(random_id);
    if validate::id(&record_id).is_err() {
        bail!("the record id must be 16-64 characters of a-z, 0-9 and '-' (InvalidFormat)");
    }
    if validate::patient_token(pseudonym).is_err() {
        bail!("the pseudonym must be 64 lowercase hex characters (InvalidFormat)");
    }
    let plaintext = Zeroizing::new(bundle_json.to_vec());
    // Padded to a size bucket: the chain refuses any other size, and a record's size then
    // says little about what it holds.
    let plaintext = Zeroizing::new(padding::pad(&plaintext));
    let context = CryptoContext::Record {
        network: peer.network(),
        record_id: &record_id,
        patient_token: pseudonym,
    };
    let ciphertext = crypto::seal(records_key, &context, &plaintext)?;
    if ciphertext.len() > MAX_CIPHERTEXT_BYTES {
        bail!(
            "the encrypted record is {} bytes (padded to its size bucket), above the protocol \
             limit of {MAX_CIPHERTEXT_BYTES} (TooLarge); split the Bundle",
            ciphertext.len()
        );
    }
    let size = ciphertext.len();
    let msg = sign::store_record(
        peer.keys.signing_key(),
        peer.network(),
        &peer.address,
        &record_id,
        pseudonym,
        ciphertext,
    );
    let content_hash = msg.content_hash.clone();
    let tx = chain::execute(peer.chain(), peer.contract(), &ExecuteMsg::StoreRecord(msg))
        .with_context(|| format!("storing record {record_id}"))?;
    Ok(Stored {
        record_id,
        content_hash,
        size,
        txhash: tx.txhash,
    })
}
