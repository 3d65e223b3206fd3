//! Padding to size buckets, before sealing: a plaintext becomes a 4-byte big-endian length,
//! the bytes and zeros up to the next bucket (`MIN_BUCKET` times a power of two). The chains
//! check that every sealed value has a bucket size, so a history's size does not identify it.

use crate::limits::{MIN_BUCKET, SEAL_OVERHEAD};

/// The bucket a plaintext of `len` bytes is padded to.
pub fn bucket_for(len: usize) -> usize {
    len.saturating_add(4).max(MIN_BUCKET).next_power_of_two()
}

/// `plaintext` with its length and zeros up to its bucket.
pub fn pad(plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bucket_for(plaintext.len()));
    out.extend_from_slice(&(plaintext.len() as u32).to_be_bytes());
    out.extend_from_slice(plaintext);
    out.resize(bucket_for(plaintext.len()), 0);
    out
}

/// `pad` undone; `None` when `padded` is not a padded plaintext.
pub fn unpad(padded: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(padded.get(..4)?.try_into().ok()?) as usize;
    let body = padded.get(4..4usize.checked_add(len)?)?;
    padded[4 + len..].iter().all(|b| *b == 0).then_some(body)
}

/// Whether a sealed value of `len` bytes holds a padded plaintext: its plaintext is a bucket.
pub fn is_bucketed(len: usize) -> bool {
    len.checked_sub(SEAL_OVERHEAD)
        .is_some_and(|plain| plain >= MIN_BUCKET && plain.is_power_of_two())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_to_buckets_and_back() {
        for len in [0usize, 1, 1020, 1021, 5000, 70_000] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
            let padded = pad(&data);
            assert!(padded.len().is_power_of_two() && padded.len() >= MIN_BUCKET);
            assert_eq!(padded.len(), bucket_for(len));
            assert_eq!(unpad(&padded), Some(data.as_slice()));
            assert!(is_bucketed(padded.len() + SEAL_OVERHEAD));
        }
        assert_eq!(bucket_for(1020), 1024);
        assert_eq!(bucket_for(1021), 2048);
        assert!(!is_bucketed(1024));
        assert!(!is_bucketed(1500 + SEAL_OVERHEAD));
        assert_eq!(unpad(&[0, 0, 0, 9, 1]), None);
        assert_eq!(unpad(&[0, 0, 0, 1, 1, 7]), None, "non-zero padding");
    }
}
