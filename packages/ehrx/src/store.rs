//! `ehrx store`: a FHIR Bundle enters the ledger, encrypted to the hospital's records key.

use crate::chain;
use crate::crypto::{self, Context as CryptoContext, X25519Public};
use crate::fhir;
use crate::peer::{random_id, Peer};
use crate::sign;
use anyhow::{bail, Context, Result};
use ehr_protocol::exchange::ExecuteMsg;
use ehr_protocol::limits::MAX_CIPHERTEXT_BYTES;
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

/// Validates the Bundle, encrypts it to `records_key` bound to (network, record id,
/// patient token), signs `store_sign_bytes` and submits `StoreRecord`.
pub fn store(
    peer: &Peer,
    bundle_json: &[u8],
    record_id: Option<String>,
    patient_token: &str,
    records_key: &X25519Public,
) -> Result<Stored> {
    let bundle = fhir::parse_bundle(bundle_json)?;
    let record_id = record_id.unwrap_or_else(random_id);
    if validate::id(&record_id).is_err() {
        bail!("the record id must be 16-64 characters of a-z, 0-9 and '-' (InvalidFormat)");
    }
    if validate::patient_token(patient_token).is_err() {
        bail!("the patient token must be 64 lowercase hex characters (InvalidFormat)");
    }
    let plaintext = Zeroizing::new(serde_json::to_vec(&bundle)?);
    let context = CryptoContext::Record {
        network: peer.network(),
        record_id: &record_id,
        patient_token,
    };
    let ciphertext = crypto::seal(records_key, &context, &plaintext)?;
    if ciphertext.len() > MAX_CIPHERTEXT_BYTES {
        bail!(
            "the encrypted record is {} bytes, above the protocol limit of {MAX_CIPHERTEXT_BYTES} \
             (TooLarge); split the Bundle",
            ciphertext.len()
        );
    }
    let size = ciphertext.len();
    let msg = sign::store_record(
        peer.keys.signing_key(),
        peer.network(),
        &peer.address,
        &record_id,
        patient_token,
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
