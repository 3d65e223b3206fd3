//! Builds the protocol bodies and signs them. The bytes signed are always the ones
//! `ehr_protocol::signing` defines; this module only adds the secp256k1 step: sign the
//! 32-byte `signing::digest` as a prehash and emit the 64-byte compact, low-S signature the
//! contracts check with `secp256k1_verify(digest, signature, compressed_pubkey)`.

use anyhow::{anyhow, Result};
use cosmwasm_std::Binary;
use ehr_protocol::chunks::Manifest;
use ehr_protocol::consent::{BreakGlass, RecordCategory};
use ehr_protocol::exchange::{PurposeOfUse, StoreRecordMsg, SubmitReplyMsg, SubmitRequestMsg};
use ehr_protocol::limits::PACKET_VERSION;
use ehr_protocol::packet::{ReplyBody, RequestBody};
use ehr_protocol::registry::Role;
use ehr_protocol::signing::{
    self, digest, is_low_s, reply_sign_bytes, request_sign_bytes, store_sign_bytes, StoreSigning,
};
use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};

/// Signs SHA-256(`sign_bytes`) as a prehash: 64 bytes `r || s`, `s` normalised to low-S.
pub fn sign(key: &SigningKey, sign_bytes: &[u8]) -> [u8; 64] {
    let signature: Signature = key
        .sign_prehash(&digest(sign_bytes))
        .expect("a 32-byte prehash always signs");
    let signature = signature.normalize_s().unwrap_or(signature);
    signature.to_bytes().into()
}

/// Checks a signature the way the contracts do (compressed key, prehashed digest, low-S).
pub fn verify(pubkey: &[u8], sign_bytes: &[u8], signature: &[u8]) -> Result<()> {
    let key =
        VerifyingKey::from_sec1_bytes(pubkey).map_err(|_| anyhow!("not a secp256k1 public key"))?;
    let signature =
        Signature::from_slice(signature).map_err(|_| anyhow!("not a 64-byte signature"))?;
    // The contracts' own rule (one definition in the protocol crate).
    if !is_low_s(&signature.to_bytes()) {
        return Err(anyhow!("signature is not in low-S form"));
    }
    key.verify_prehash(&digest(sign_bytes), &signature)
        .map_err(|_| anyhow!("signature does not verify (BadSignature)"))
}

/// A signed `StoreRecord` for a record's `manifest`, without chunks (the caller adds the
/// first batch).
pub fn store_record(
    key: &SigningKey,
    network_id: &str,
    storer: &str,
    record_id: &str,
    patient_token: &str,
    manifest: Manifest,
    category: RecordCategory,
) -> StoreRecordMsg {
    let bytes = store_sign_bytes(&StoreSigning {
        network_id,
        storer,
        record_id,
        patient_token,
        manifest: &manifest,
        category,
    });
    StoreRecordMsg {
        record_id: record_id.to_string(),
        patient_token: patient_token.to_string(),
        manifest,
        signature: Binary::from(sign(key, &bytes).to_vec()),
        chunks: Vec::new(),
        category,
    }
}

/// What a requester fills in; the rest of the `RequestBody` comes from the chain context.
pub struct RequestFields {
    pub request_id: String,
    pub partner_id: String,
    /// The registered clinician who asks (and signs).
    pub clinician_id: String,
    pub purpose: PurposeOfUse,
    /// The patient's details sealed to the partner's custodian key (`SEALED_PATIENT_LEN`).
    pub sealed_patient: Vec<u8>,
    pub reply_encryption_key: Vec<u8>,
    pub issued_at: u64,
    pub expires_at: u64,
    /// A break-glass claim (its coded reason), signed with the request.
    pub break_glass: Option<BreakGlass>,
}

/// The body the exchange contract rebuilds from a `SubmitRequest` and verifies.
pub fn request_body(source_network: &str, requester: &str, f: &RequestFields) -> RequestBody {
    RequestBody {
        version: PACKET_VERSION,
        request_id: f.request_id.clone(),
        source_network: source_network.to_string(),
        destination_network: f.partner_id.clone(),
        requester: requester.to_string(),
        requester_role: Role::Request,
        clinician_id: f.clinician_id.clone(),
        purpose: f.purpose,
        sealed_patient: Binary::from(f.sealed_patient.clone()),
        reply_encryption_key: Binary::from(f.reply_encryption_key.clone()),
        issued_at: f.issued_at,
        expires_at: f.expires_at,
        break_glass: f.break_glass.clone(),
    }
}

/// A `SubmitRequest` for `body` (built with `request_body`), signed with the key of the
/// clinician `body.clinician_id` names (the registry holds its public half).
pub fn submit_request(clinician_key: &SigningKey, body: &RequestBody) -> SubmitRequestMsg {
    SubmitRequestMsg {
        request_id: body.request_id.clone(),
        partner_id: body.destination_network.clone(),
        clinician_id: body.clinician_id.clone(),
        purpose: body.purpose,
        sealed_patient: body.sealed_patient.clone(),
        reply_encryption_key: body.reply_encryption_key.clone(),
        issued_at: body.issued_at,
        expires_at: body.expires_at,
        signature: Binary::from(sign(clinician_key, &request_sign_bytes(body)).to_vec()),
        break_glass: body.break_glass.clone(),
    }
}

/// Who answers which request, and to which key: the fields of a `ReplyBody` besides the
/// outcome and the time.
pub struct ReplyParties<'a> {
    pub request_id: &'a str,
    pub requester_network: &'a str,
    pub responder_network: &'a str,
    pub responder: &'a str,
    /// The X25519 key the outcome is encrypted to: the request's `reply_encryption_key`.
    pub recipient_key: &'a [u8],
}

/// The body a responder signs for an incoming request from `requester_network`. It names
/// the key the reply is encrypted to by its hash (`signing::key_hash`): the requesting
/// chain stores the reply only while that is still the requester's registered key.
pub fn reply_body(parties: &ReplyParties, manifest: Manifest, issued_at: u64) -> ReplyBody {
    ReplyBody {
        version: PACKET_VERSION,
        request_id: parties.request_id.to_string(),
        requester_network: parties.requester_network.to_string(),
        responder_network: parties.responder_network.to_string(),
        responder: parties.responder.to_string(),
        recipient_key_hash: signing::key_hash(parties.recipient_key),
        manifest,
        issued_at,
    }
}

/// A signed `SubmitReply` for `body`, without chunks (the caller adds the first batch).
pub fn submit_reply(key: &SigningKey, body: &ReplyBody) -> SubmitReplyMsg {
    SubmitReplyMsg {
        partner_id: body.requester_network.clone(),
        request_id: body.request_id.clone(),
        manifest: body.manifest.clone(),
        issued_at: body.issued_at,
        signature: Binary::from(sign(key, &reply_sign_bytes(body)).to_vec()),
        chunks: Vec::new(),
        disclosure: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PeerKeys;
    use cosmwasm_std::testing::MockApi;
    use cosmwasm_std::Api;

    fn fields() -> RequestFields {
        RequestFields {
            request_id: "0123456789abcdef0123456789abcdef".into(),
            partner_id: "hospital-b".into(),
            clinician_id: "dr-adams".into(),
            purpose: PurposeOfUse::Treatment,
            sealed_patient: vec![3u8; ehr_protocol::limits::SEALED_PATIENT_LEN],
            reply_encryption_key: vec![9u8; 32],
            issued_at: 1_700_000_000,
            expires_at: 1_700_000_600,
            break_glass: None,
        }
    }

    #[test]
    fn request_signature_is_the_clinicians_and_verifies_with_k256_and_cosmwasm() {
        let clinician = crate::keys::random_signing_key();
        let public = crate::keys::compressed_public(&clinician);
        let body = request_body("hospital-a", "wasm1requester", &fields());
        assert_eq!(body.clinician_id, "dr-adams");
        assert_eq!(body.requester_role, Role::Request);
        let msg = submit_request(&clinician, &body);
        assert_eq!(msg.signature.len(), 64);
        assert_eq!(msg.clinician_id, "dr-adams");

        let bytes = request_sign_bytes(&body);
        verify(&public, &bytes, &msg.signature).unwrap();

        let api = MockApi::default();
        let d = digest(&bytes);
        assert!(api.secp256k1_verify(&d, &msg.signature, &public).unwrap());
        // Another key (the peer's own, another clinician's) does not verify it.
        let peer = PeerKeys::generate();
        assert!(!api
            .secp256k1_verify(&d, &msg.signature, &peer.signing_public())
            .unwrap());

        // The contract rebuilds the body from the message: a changed field must not verify.
        for change in [
            |b: &mut RequestBody| b.destination_network = "hospital-c".into(),
            |b: &mut RequestBody| b.clinician_id = "dr-brown".into(),
            |b: &mut RequestBody| b.requester = "wasm1colleague".into(),
            |b: &mut RequestBody| b.sealed_patient = vec![4u8; 1072].into(),
        ] {
            let mut other = body.clone();
            change(&mut other);
            let d2 = digest(&request_sign_bytes(&other));
            assert!(!api.secp256k1_verify(&d2, &msg.signature, &public).unwrap());
            assert!(verify(&public, &request_sign_bytes(&other), &msg.signature).is_err());
        }
    }

    #[test]
    fn store_and_reply_signatures_verify_with_cosmwasm() {
        let keys = PeerKeys::generate();
        let api = MockApi::default();
        let token = "ab".repeat(32);
        let msg = store_record(
            keys.signing_key(),
            "hospital-b",
            "wasm1storer",
            "rec-0000000000000001",
            &token,
            Manifest::of(&[vec![1u8; 1024]]),
            RecordCategory::General,
        );
        let bytes = store_sign_bytes(&StoreSigning {
            network_id: "hospital-b",
            storer: "wasm1storer",
            record_id: "rec-0000000000000001",
            patient_token: &token,
            manifest: &msg.manifest,
            category: msg.category,
        });
        assert!(api
            .secp256k1_verify(&digest(&bytes), &msg.signature, &keys.signing_public())
            .unwrap());

        {
            let outcome = Manifest::of(&[vec![5u8; 1024], vec![6u8; 1024]]);
            let recipient = [7u8; 32];
            let parties = ReplyParties {
                request_id: "0123456789abcdef0123456789abcdef",
                requester_network: "hospital-a",
                responder_network: "hospital-b",
                responder: "wasm1responder",
                recipient_key: &recipient,
            };
            let body = reply_body(&parties, outcome, 1_700_000_100);
            assert_eq!(body.recipient_key_hash, signing::key_hash(&recipient));
            let msg = submit_reply(keys.signing_key(), &body);
            assert_eq!(msg.partner_id, "hospital-a");
            let d = digest(&reply_sign_bytes(&body));
            assert!(api
                .secp256k1_verify(&d, &msg.signature, &keys.signing_public())
                .unwrap());
            // The recipient key is signed: a reply re-addressed to another key fails.
            let other = reply_body(
                &ReplyParties {
                    recipient_key: &[8u8; 32],
                    ..parties
                },
                body.manifest.clone(),
                body.issued_at,
            );
            let d2 = digest(&reply_sign_bytes(&other));
            assert!(!api
                .secp256k1_verify(&d2, &msg.signature, &keys.signing_public())
                .unwrap());
        }
    }

    #[test]
    fn signatures_are_low_s() {
        let keys = PeerKeys::generate();
        for i in 0..32u8 {
            let sig = sign(keys.signing_key(), &[i]);
            let parsed = Signature::from_slice(&sig).unwrap();
            assert!(parsed.normalize_s().is_none());
        }
    }
}
