//! Padding of a request's patient details before sealing: a plaintext becomes a 4-byte
//! big-endian length, the bytes and zeros up to the next bucket (`MIN_BUCKET` times a power
//! of two): 1 KiB for any patient's details, so `sealed_patient` is always one size. Records
//! and replies are padded as sealed histories (`chunks::Layout`).

use crate::limits::MIN_BUCKET;

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
        }
        assert_eq!(bucket_for(1020), 1024);
        assert_eq!(bucket_for(1021), 2048);
        assert_eq!(unpad(&[0, 0, 0, 9, 1]), None);
        assert_eq!(unpad(&[0, 0, 0, 1, 1, 7]), None, "non-zero padding");
    }
}
