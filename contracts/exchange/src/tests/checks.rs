use crate::checks::{freshness, next_chunks, signature};
use cosmwasm_std::testing::{mock_env, MockApi};
use cosmwasm_std::Binary;
use ehr_protocol::chunks::Manifest;
use ehr_protocol::registry::Policy;
use ehr_protocol::signing::digest;
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
fn chunks_come_in_order_each_with_its_listed_hash() {
    let chunks: Vec<Binary> = (0..4u8).map(|i| Binary::from(vec![i; 1024])).collect();
    let manifest = Manifest::of(&chunks.iter().map(|c| c.to_vec()).collect::<Vec<_>>());
    assert_eq!(next_chunks(&manifest, 0, 0, &chunks[..2]), Ok(()));
    assert_eq!(next_chunks(&manifest, 2, 2, &chunks[2..]), Ok(()));
    // Sent again, sent past a gap, past the end, swapped.
    assert_eq!(
        next_chunks(&manifest, 2, 1, &chunks[1..2]),
        Err(ErrorCode::ChunkDuplicate)
    );
    assert_eq!(
        next_chunks(&manifest, 2, 3, &chunks[3..]),
        Err(ErrorCode::ChunkMissing)
    );
    assert_eq!(
        next_chunks(&manifest, 3, 3, &chunks[2..]),
        Err(ErrorCode::InvalidFormat)
    );
    let swapped = vec![chunks[3].clone(), chunks[2].clone()];
    assert_eq!(
        next_chunks(&manifest, 2, 2, &swapped),
        Err(ErrorCode::ChunkMismatch)
    );
}
