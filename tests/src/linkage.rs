//! What a linkability check compares: every value long enough to link two records, as an
//! observer would extract it from state, events or packets.

use std::collections::BTreeSet;

/// Runs of at least 20 hex, base64 or id characters in `bytes`.
pub fn tokens(bytes: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(bytes)
        .split(|c: char| !(c.is_ascii_alphanumeric() || "+/=_-".contains(c)))
        .filter(|t| t.len() >= 20)
        .map(str::to_string)
        .collect()
}

/// Field names and storage namespaces (`max_request_ttl_secs`, `quota_partner…`): the same
/// on every chain by design, and no value.
pub fn is_a_name(token: &str) -> bool {
    token.contains('_')
        && token
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c))
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Tokens found on both sides that are neither names nor inside (or around) an `allowed`
/// token: the values that could link what the two sides hold.
pub fn linking(a: &[u8], b: &[u8], allowed: &BTreeSet<String>) -> Vec<String> {
    tokens(a)
        .intersection(&tokens(b))
        .filter(|t| !is_a_name(t))
        .filter(|t| {
            !allowed
                .iter()
                .any(|a| a.contains(t.as_str()) || t.contains(a.as_str()))
        })
        .cloned()
        .collect()
}
