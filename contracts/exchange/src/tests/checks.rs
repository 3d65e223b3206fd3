use crate::checks::{ciphertext_with_hash, freshness, signature};
use cosmwasm_std::testing::{mock_env, MockApi};
use cosmwasm_std::Binary;
use ehr_protocol::registry::Policy;
use ehr_protocol::signing::{content_hash, digest};
use ehr_protocol::ErrorCode;
use k256::ecdsa::signature::hazmat::PrehashSigner;
use k256::ecdsa::{Signature, SigningKey};

#[test]
fn signature_check_accepts_the_signer_and_refuses_everything_else() {
    let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
    let pubkey = Binary::from(
        key.verifying_key()
            .to_encoded_point(true)
            .as_bytes()
            .to_vec(),
    );
    let message = b"canonical bytes";
    let sig: Signature = key.sign_prehash(&digest(message)).unwrap();
    let sig = Binary::from(sig.normalize_s().unwrap_or(sig).to_bytes().to_vec());
    let api = MockApi::default();
    assert_eq!(signature(&api, message, &sig, &pubkey), Ok(()));
    assert_eq!(
        signature(&api, b"other bytes", &sig, &pubkey),
        Err(ErrorCode::BadSignature)
    );
    let other = SigningKey::from_slice(&[8u8; 32]).unwrap();
    let other_pub = Binary::from(
        other
            .verifying_key()
            .to_encoded_point(true)
            .as_bytes()
            .to_vec(),
    );
    assert_eq!(
        signature(&api, message, &sig, &other_pub),
        Err(ErrorCode::BadSignature)
    );
    assert_eq!(
        signature(&api, message, &Binary::from(vec![0u8; 64]), &pubkey),
        Err(ErrorCode::BadSignature)
    );
}

#[test]
fn freshness_uses_block_time() {
    let env = mock_env();
    let now = env.block.time.seconds();
    let policy = Policy::default();
    assert_eq!(freshness(&env, &policy, now, now + 60), Ok(()));
    assert_eq!(
        freshness(&env, &policy, now - 120, now - 60),
        Err(ErrorCode::Expired)
    );
    assert_eq!(
        freshness(&env, &policy, now, now),
        Err(ErrorCode::InvalidFormat)
    );
    assert_eq!(
        freshness(&env, &policy, now + 3600, now + 3660),
        Err(ErrorCode::InvalidFormat)
    );
    assert_eq!(
        freshness(&env, &policy, now, now + 7200),
        Err(ErrorCode::InvalidFormat)
    );
}

#[test]
fn ciphertext_hash_size_and_bucket_are_enforced() {
    // The smallest bucket: 1 KiB of padded plaintext behind the sealing overhead.
    let len = ehr_protocol::limits::MIN_BUCKET + ehr_protocol::limits::SEAL_OVERHEAD;
    let data = Binary::from(vec![1u8; len]);
    let hash = content_hash(&data);
    let max = len as u64;
    assert_eq!(ciphertext_with_hash(&data, &hash, max), Ok(()));
    assert_eq!(
        ciphertext_with_hash(&data, &hash, max - 1),
        Err(ErrorCode::TooLarge)
    );
    assert_eq!(
        ciphertext_with_hash(&data, &"00".repeat(32), max),
        Err(ErrorCode::InvalidFormat)
    );
    assert_eq!(
        ciphertext_with_hash(&data, "not-hex", max),
        Err(ErrorCode::InvalidFormat)
    );
    // Not padded to a bucket: its size could tell which history it is.
    let odd = Binary::from(vec![1u8; len - 1]);
    assert_eq!(
        ciphertext_with_hash(&odd, &content_hash(&odd), max),
        Err(ErrorCode::InvalidFormat)
    );
}
