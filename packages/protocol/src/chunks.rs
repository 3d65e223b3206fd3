//! Sealed histories in chunks: the one definition of how a stored record or a reply of any
//! size is cut, bound and checked.
//!
//! A sealed history is `n` chunks of `chunk_bytes` each. Its total, `n * chunk_bytes`, is a
//! power of two of at least `MIN_BUCKET`: the size buckets of protocol v2, so a history's
//! size says little about the patient. A history larger than the largest chunk is several
//! chunks of the largest size; `n` is then a power of two too.
//!
//! The sender seals with one HPKE context: the 32-byte encapsulated key leads chunk 0, and
//! each chunk is one AEAD message of its own (a 16-byte tag each, sealed in order with the
//! chunk's index and the count as associated data), so every chunk is exactly `chunk_bytes`
//! long and a chunk moved to another place does not open.
//!
//! A [`Manifest`] lists each chunk's SHA-256 in order and binds them with one
//! `history_hash` = SHA-256(`ehrx/history/v2` ‖ u64 n ‖ h_0 ‖ … ‖ h_{n-1}), which the storing
//! peer signs for a record and the responder signs for a reply. The chains check every chunk
//! against its hash before they keep it: a missing, reordered, duplicated or altered chunk is
//! named and refused, never stored as part of a history.

use crate::error_code::ErrorCode;
use crate::limits::{MAX_CHUNK_BYTES, MAX_HISTORY_CHUNKS, MIN_BUCKET, SHA256_HEX_LEN};
use cosmwasm_schema::cw_serde;
use sha2::{Digest, Sha256};

pub const HISTORY_DOMAIN: &[u8] = b"ehrx/history/v2";
/// The encapsulated key in front of chunk 0.
pub const ENCAPPED_LEN: usize = 32;
/// The AEAD tag at the end of every chunk.
pub const TAG_LEN: usize = 16;
/// The length prefix of a padded plaintext.
const LEN_PREFIX: usize = 8;

/// What binds the chunks of one sealed history.
#[cw_serde]
#[derive(Eq)]
pub struct Manifest {
    /// Length of every chunk: a power of two, at least `MIN_BUCKET`, at most the receiving
    /// chain's `policy.max_chunk_bytes`.
    pub chunk_bytes: u32,
    /// Lowercase hex SHA-256 of each chunk, in order. Their number is a power of two.
    pub chunk_hashes: Vec<String>,
    /// `history_hash(chunk_hashes)`, lowercase hex: what the storer or responder signs.
    pub history_hash: String,
}

impl Manifest {
    /// The manifest of `chunks`, which must all have one length.
    pub fn of(chunks: &[impl AsRef<[u8]>]) -> Manifest {
        let chunk_bytes = chunks.first().map_or(0, |c| c.as_ref().len()) as u32;
        let chunk_hashes: Vec<String> = chunks
            .iter()
            .map(|c| hex::encode(Sha256::digest(c.as_ref())))
            .collect();
        Manifest {
            chunk_bytes,
            history_hash: history_hash(&chunk_hashes),
            chunk_hashes,
        }
    }

    pub fn chunk_count(&self) -> u32 {
        self.chunk_hashes.len() as u32
    }

    /// Total sealed size in bytes.
    pub fn total_bytes(&self) -> u64 {
        u64::from(self.chunk_bytes) * self.chunk_hashes.len() as u64
    }

    /// The shape every chain checks before it keeps anything: sizes within `max_chunk_bytes`
    /// and `max_chunks` (`TooLarge`), powers of two, well-formed hashes bound by
    /// `history_hash` (`InvalidFormat`).
    pub fn check(&self, max_chunk_bytes: u64, max_chunks: u32) -> Result<(), ErrorCode> {
        let chunk = self.chunk_bytes as usize;
        let count = self.chunk_hashes.len();
        if !chunk.is_power_of_two() || chunk < MIN_BUCKET || count == 0 {
            return Err(ErrorCode::InvalidFormat);
        }
        if chunk > MAX_CHUNK_BYTES
            || u64::from(self.chunk_bytes) > max_chunk_bytes
            || count > MAX_HISTORY_CHUNKS as usize
            || count > max_chunks as usize
        {
            return Err(ErrorCode::TooLarge);
        }
        if !count.is_power_of_two()
            || !self.chunk_hashes.iter().all(|h| is_lower_hex64(h))
            || !is_lower_hex64(&self.history_hash)
            || history_hash(&self.chunk_hashes) != self.history_hash
        {
            return Err(ErrorCode::InvalidFormat);
        }
        Ok(())
    }

    /// Chunk `index` as the manifest lists it: in range and `chunk_bytes` long
    /// (`InvalidFormat`), with the listed hash (`ChunkMismatch`: altered, or in the wrong
    /// place).
    pub fn check_chunk(&self, index: u32, data: &[u8]) -> Result<(), ErrorCode> {
        let expected = self
            .chunk_hashes
            .get(index as usize)
            .ok_or(ErrorCode::InvalidFormat)?;
        if data.len() != self.chunk_bytes as usize {
            return Err(ErrorCode::InvalidFormat);
        }
        if hex::encode(Sha256::digest(data)) != *expected {
            return Err(ErrorCode::ChunkMismatch);
        }
        Ok(())
    }
}

fn is_lower_hex64(text: &str) -> bool {
    text.len() == SHA256_HEX_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// SHA-256(`ehrx/history/v2` ‖ u64 n ‖ raw h_0 ‖ … ‖ raw h_{n-1}), hex. A hash that is not
/// hex contributes its text bytes, so a malformed list never equals a well-formed one's hash.
pub fn history_hash(chunk_hashes: &[String]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(HISTORY_DOMAIN);
    hasher.update((chunk_hashes.len() as u64).to_be_bytes());
    for hash in chunk_hashes {
        match hex::decode(hash) {
            Ok(raw) if raw.len() == 32 => hasher.update(raw),
            _ => hasher.update(hash.as_bytes()),
        }
    }
    hex::encode(hasher.finalize())
}

/// How a plaintext is cut: `chunks` chunks of `chunk_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub chunk_bytes: usize,
    pub chunks: usize,
}

impl Layout {
    /// The smallest layout whose chunks hold `plaintext_len` bytes (with their length
    /// prefix), with chunks of at most `max_chunk_bytes` (a power of two, at least
    /// `MIN_BUCKET`, at most `MAX_CHUNK_BYTES`).
    pub fn for_plaintext(plaintext_len: usize, max_chunk_bytes: usize) -> Layout {
        let max_chunk = max_chunk_bytes.clamp(MIN_BUCKET, MAX_CHUNK_BYTES);
        let max_chunk = if max_chunk.is_power_of_two() {
            max_chunk
        } else {
            max_chunk.next_power_of_two() / 2
        };
        let mut total = MIN_BUCKET;
        loop {
            let layout = Layout {
                chunk_bytes: total.min(max_chunk),
                chunks: (total / max_chunk).max(1),
            };
            if layout.capacity() >= plaintext_len.saturating_add(LEN_PREFIX) {
                return layout;
            }
            total = total.saturating_mul(2);
        }
    }

    pub fn total(&self) -> usize {
        self.chunk_bytes * self.chunks
    }

    /// Plaintext bytes sealed into chunk `index`.
    pub fn plaintext_of(&self, index: usize) -> usize {
        let lead = if index == 0 { ENCAPPED_LEN } else { 0 };
        self.chunk_bytes - TAG_LEN - lead
    }

    /// Plaintext bytes the layout holds, the length prefix included.
    pub fn capacity(&self) -> usize {
        self.total() - ENCAPPED_LEN - TAG_LEN * self.chunks
    }

    /// `plaintext` behind its 8-byte big-endian length, zero-padded to the capacity and cut
    /// into the plaintexts of each chunk (no padded copy of the whole is made). The plaintext
    /// must fit: use [`Layout::for_plaintext`].
    pub fn pad_and_cut(&self, plaintext: &[u8]) -> Vec<Vec<u8>> {
        assert!(
            plaintext.len().saturating_add(LEN_PREFIX) <= self.capacity(),
            "a plaintext larger than its layout"
        );
        let prefix = (plaintext.len() as u64).to_be_bytes();
        let mut source = prefix.iter().chain(plaintext.iter()).copied();
        (0..self.chunks)
            .map(|index| {
                let mut part = Vec::with_capacity(self.plaintext_of(index));
                part.extend(source.by_ref().take(self.plaintext_of(index)));
                part.resize(self.plaintext_of(index), 0);
                part
            })
            .collect()
    }

    /// `pad_and_cut` undone: the chunks' plaintexts joined, the length read and the zeros
    /// checked; `None` when they do not form a padded plaintext (what was joined is wiped).
    pub fn join_and_unpad(parts: &[impl AsRef<[u8]>]) -> Option<Vec<u8>> {
        let mut joined = Vec::with_capacity(parts.iter().map(|p| p.as_ref().len()).sum());
        for part in parts {
            joined.extend_from_slice(part.as_ref());
        }
        let len = joined
            .get(..LEN_PREFIX)
            .and_then(|p| p.try_into().ok())
            .map(u64::from_be_bytes)
            .and_then(|len| usize::try_from(len).ok())
            .and_then(|len| LEN_PREFIX.checked_add(len));
        match len {
            Some(end) if end <= joined.len() && joined[end..].iter().all(|b| *b == 0) => {
                joined.truncate(end);
                joined.drain(..LEN_PREFIX);
                Some(joined)
            }
            _ => {
                zeroize::Zeroize::zeroize(&mut joined);
                None
            }
        }
    }
}

/// The associated data of chunk `index` of `count`: both as u64 big-endian.
pub fn chunk_aad(index: usize, count: usize) -> [u8; 16] {
    let mut aad = [0u8; 16];
    aad[..8].copy_from_slice(&(index as u64).to_be_bytes());
    aad[8..].copy_from_slice(&(count as u64).to_be_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_power_of_two_buckets_cut_at_the_largest_chunk() {
        let max = 128 * 1024;
        let small = Layout::for_plaintext(10, max);
        assert_eq!((small.chunk_bytes, small.chunks), (1024, 1));
        assert_eq!(small.capacity(), 1024 - 48);
        // The capacity edge: 1024 - 48 - 8 bytes still fit one KiB.
        assert_eq!(Layout::for_plaintext(968, max).total(), 1024);
        assert_eq!(Layout::for_plaintext(969, max).total(), 2048);
        let one = Layout::for_plaintext(100_000, max);
        assert_eq!((one.chunk_bytes, one.chunks), (128 * 1024, 1));
        let many = Layout::for_plaintext(400_000, max);
        assert_eq!((many.chunk_bytes, many.chunks), (128 * 1024, 4));
        assert_eq!(many.capacity(), 4 * 128 * 1024 - 32 - 4 * 16);
        let small_chunks = Layout::for_plaintext(400_000, 64 * 1024);
        assert_eq!((small_chunks.chunk_bytes, small_chunks.chunks), (65536, 8));
        // A ceiling that is not a power of two rounds down.
        assert_eq!(Layout::for_plaintext(100_000, 100_000).chunk_bytes, 65536);
    }

    #[test]
    fn cut_and_join_round_trip_and_refuse_bad_padding() {
        for len in [0usize, 1, 968, 969, 200_000, 300_001] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
            let layout = Layout::for_plaintext(len, 64 * 1024);
            let parts = layout.pad_and_cut(&data);
            assert_eq!(parts.len(), layout.chunks);
            for (i, part) in parts.iter().enumerate() {
                assert_eq!(part.len(), layout.plaintext_of(i));
            }
            assert_eq!(Layout::join_and_unpad(&parts).as_deref(), Some(&data[..]));
        }
        let layout = Layout::for_plaintext(5, 1024);
        let mut parts = layout.pad_and_cut(b"hello");
        *parts[0].last_mut().unwrap() = 1;
        assert_eq!(Layout::join_and_unpad(&parts), None, "non-zero padding");
        let mut long = layout.pad_and_cut(b"hello");
        long[0][4] = 0xff;
        assert_eq!(Layout::join_and_unpad(&long), None, "length past the end");
    }

    fn chunks(n: usize, size: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i as u8 + 1; size]).collect()
    }

    #[test]
    fn manifests_bind_every_chunk_in_its_place() {
        let parts = chunks(4, 2048);
        let manifest = Manifest::of(&parts);
        assert_eq!(manifest.check(2048, 4), Ok(()));
        for (i, part) in parts.iter().enumerate() {
            assert_eq!(manifest.check_chunk(i as u32, part), Ok(()));
        }
        // Swapped, altered, out of range, short.
        assert_eq!(
            manifest.check_chunk(1, &parts[0]),
            Err(ErrorCode::ChunkMismatch)
        );
        let mut altered = parts[2].clone();
        altered[9] ^= 1;
        assert_eq!(
            manifest.check_chunk(2, &altered),
            Err(ErrorCode::ChunkMismatch)
        );
        assert_eq!(
            manifest.check_chunk(4, &parts[0]),
            Err(ErrorCode::InvalidFormat)
        );
        assert_eq!(
            manifest.check_chunk(0, &parts[0][1..]),
            Err(ErrorCode::InvalidFormat)
        );
        // Limits from the policy.
        assert_eq!(manifest.check(1024, 4), Err(ErrorCode::TooLarge));
        assert_eq!(manifest.check(2048, 2), Err(ErrorCode::TooLarge));
        // A reordered list no longer matches the signed history hash.
        let mut reordered = manifest.clone();
        reordered.chunk_hashes.swap(0, 1);
        assert_eq!(reordered.check(2048, 4), Err(ErrorCode::InvalidFormat));
        // A dropped chunk: the count is no longer a power of two, and the hash differs.
        let mut dropped = manifest.clone();
        dropped.chunk_hashes.pop();
        assert_eq!(dropped.check(2048, 4), Err(ErrorCode::InvalidFormat));
        let three = Manifest::of(&chunks(3, 2048));
        assert_eq!(three.check(2048, 4), Err(ErrorCode::InvalidFormat));
        // Sizes off the buckets.
        assert_eq!(
            Manifest::of(&chunks(1, 1500)).check(4096, 4),
            Err(ErrorCode::InvalidFormat)
        );
        assert_eq!(
            Manifest::of(&chunks(1, 512)).check(4096, 4),
            Err(ErrorCode::InvalidFormat)
        );
    }

    #[test]
    fn history_hash_is_pinned() {
        let hashes = vec![hex::encode([0u8; 32]), hex::encode([0xffu8; 32])];
        // SHA-256("ehrx/history/v2" || 00..02 || 32 x 00 || 32 x ff).
        let mut data = HISTORY_DOMAIN.to_vec();
        data.extend(2u64.to_be_bytes());
        data.extend([0u8; 32]);
        data.extend([0xffu8; 32]);
        assert_eq!(history_hash(&hashes), hex::encode(Sha256::digest(&data)));
        assert_eq!(
            chunk_aad(1, 4),
            [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 4]
        );
    }
}
