//! Checks shared by the verification pipelines.

use cosmwasm_std::{Api, Binary, Env};
use ehr_protocol::chunks::Manifest;
use ehr_protocol::registry::Policy;
use ehr_protocol::signing::{digest, is_low_s};
use ehr_protocol::ErrorCode;

/// `Ok` when `signature` over the canonical `sign_bytes` is low-S and verifies under
/// `pubkey`. A high-S signature is refused like a wrong one: `secp256k1_verify` accepts it.
pub fn signature(
    api: &dyn Api,
    sign_bytes: &[u8],
    signature: &Binary,
    pubkey: &Binary,
) -> Result<(), ErrorCode> {
    if !is_low_s(signature) {
        return Err(ErrorCode::BadSignature);
    }
    match api.secp256k1_verify(&digest(sign_bytes), signature, pubkey) {
        Ok(true) => Ok(()),
        _ => Err(ErrorCode::BadSignature),
    }
}

/// A message's own validity window against block time (never the client's clock) and the
/// policy's bounds. Shape problems (future-dated beyond the policy's skew, inverted, shorter
/// or longer than the policy allows) are format errors; a past expiry is `Expired`.
/// No arithmetic here can overflow, whatever the input.
pub fn freshness(
    env: &Env,
    policy: &Policy,
    issued_at: u64,
    expires_at: u64,
) -> Result<(), ErrorCode> {
    lifetime(policy, issued_at, expires_at)?;
    let latest_issue = env
        .block
        .time
        .seconds()
        .saturating_add(policy.max_clock_skew_secs);
    if issued_at > latest_issue {
        return Err(ErrorCode::InvalidFormat);
    }
    not_expired(env, expires_at)
}

/// The lifetime a message asks for (expires_at - issued_at) lies within the policy's
/// shortest and longest; an inverted or empty one is a format error too.
pub fn lifetime(policy: &Policy, issued_at: u64, expires_at: u64) -> Result<(), ErrorCode> {
    let lifetime = expires_at
        .checked_sub(issued_at)
        .ok_or(ErrorCode::InvalidFormat)?;
    if lifetime == 0
        || lifetime < policy.min_request_ttl_secs
        || lifetime > policy.max_request_ttl_secs
    {
        return Err(ErrorCode::InvalidFormat);
    }
    Ok(())
}

/// A partner's request on arrival: fresh by our own policy, and with at least the policy's
/// minimum lifetime left, so our reply service is never handed a request that expires under
/// it (and never struck for answering one too late).
pub fn arriving_freshness(
    env: &Env,
    policy: &Policy,
    issued_at: u64,
    expires_at: u64,
) -> Result<(), ErrorCode> {
    freshness(env, policy, issued_at, expires_at)?;
    let remaining = expires_at.saturating_sub(env.block.time.seconds());
    if remaining < policy.min_remaining_lifetime_secs {
        return Err(ErrorCode::Expired);
    }
    Ok(())
}

pub fn not_expired(env: &Env, expires_at: u64) -> Result<(), ErrorCode> {
    if env.block.time.seconds() >= expires_at {
        Err(ErrorCode::Expired)
    } else {
        Ok(())
    }
}

/// Chunks `first_index..` of `manifest`, as the next ones after `kept`: in order (a chunk
/// already kept is `ChunkDuplicate`, one past a gap `ChunkMissing`), within the manifest's
/// count, each with its listed length and hash (`ChunkMismatch`).
pub fn next_chunks(
    manifest: &Manifest,
    kept: u32,
    first_index: u32,
    chunks: &[Binary],
) -> Result<(), ErrorCode> {
    if first_index < kept {
        return Err(ErrorCode::ChunkDuplicate);
    }
    if first_index > kept {
        return Err(ErrorCode::ChunkMissing);
    }
    let end = u64::from(first_index) + chunks.len() as u64;
    if end > u64::from(manifest.chunk_count()) {
        return Err(ErrorCode::InvalidFormat);
    }
    for (offset, chunk) in chunks.iter().enumerate() {
        manifest.check_chunk(first_index + offset as u32, chunk)?;
    }
    Ok(())
}
