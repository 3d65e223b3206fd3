//! Bounds on every input, shared by both chains and the peer tool so a message the
//! tool accepts is one the contracts accept.

/// IBC channel version both exchange contracts insist on during the handshake.
pub const CHANNEL_VERSION: &str = "ehr-exchange-3";
/// Version number carried in every packet; unknown versions are refused.
pub const PACKET_VERSION: u32 = 3;

/// Request ids and record ids: 16..=64 chars of `[a-z0-9-]` (random, never a signature).
pub const MIN_ID_LEN: usize = 16;
pub const MAX_ID_LEN: usize = 64;
/// A custodian's pseudonym for a patient: hex of an HMAC-SHA-256 output.
pub const PATIENT_TOKEN_HEX_LEN: usize = 64;
/// SHA-256 digests in hex (content hashes, key hashes).
pub const SHA256_HEX_LEN: usize = 64;
/// Compressed secp256k1 public key.
pub const SECP256K1_PUBKEY_LEN: usize = 33;
/// Compact (r || s) secp256k1 signature.
pub const SECP256K1_SIGNATURE_LEN: usize = 64;
/// X25519 public key.
pub const X25519_KEY_LEN: usize = 32;
/// Network ids (chain ids), partner ids, device ids, labels.
pub const MAX_NAME_LEN: usize = 64;
/// Hard ceiling on one chunk of a sealed history; the registry policy may set a lower one.
/// Chunks are stored as raw bytes, and wasmd refuses a storage value over 128 KiB
/// (`MAX_LENGTH_DB_VALUE` in cosmwasm-vm). A reply chunk travels base64 in a JSON packet:
/// 128 KiB is about 171 KiB there, under ibc-go's 256 KiB packet data limit.
/// See docs/PROTOCOL-v2.md section 4 for the measurements.
pub const MAX_CHUNK_BYTES: usize = 128 * 1024;
/// Hard ceiling on the chunks of one history (128 MiB sealed at the largest chunk); the
/// policy's `max_history_chunks` sets the working limit.
pub const MAX_HISTORY_CHUNKS: u32 = 1024;
/// Longest counterparty port: `wasm.` plus a contract address.
pub const MAX_PORT_LEN: usize = 128;
/// What sealing adds to a plaintext: HPKE's 32-byte encapsulated X25519 key and the
/// 16-byte ChaCha20-Poly1305 tag.
pub const SEAL_OVERHEAD: usize = 32 + 16;
/// The padded plaintext of a request's sealed patient details.
pub const SEALED_PATIENT_PLAINTEXT: usize = 1024;
/// Every request's `sealed_patient` is exactly this long, whoever the patient is.
pub const SEALED_PATIENT_LEN: usize = SEALED_PATIENT_PLAINTEXT + SEAL_OVERHEAD;
/// The smallest size bucket of a padded plaintext; the buckets are its powers-of-two
/// multiples (1 KiB, 2 KiB, 4 KiB, ...), so a ciphertext's size says little about what
/// it holds.
pub const MIN_BUCKET: usize = 1024;
/// Page size for every paginated query.
pub const DEFAULT_PAGE: u32 = 20;
pub const MAX_PAGE: u32 = 100;
/// Ceiling on the clock skew a policy may tolerate between a peer's `issued_at` and block
/// time, in seconds (the policy's `max_clock_skew_secs` applies; 30 s by default).
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;
/// Ceiling on the requests one `Sweep` may finalise: one transaction's work stays bounded.
pub const MAX_SWEEP_ITEMS: u32 = 200;

/// Clamps a requested page size into `1..=MAX_PAGE`.
pub fn page_size(limit: Option<u32>) -> usize {
    limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize
}
