//! Shared protocol of the EHR exchange: messages of both contracts, IBC packets and acks,
//! error codes, limits, format checks, the audit log and canonical signing bytes. Used by
//! the `registry` and `exchange` contracts and by the `ehrx` peer tool.

pub mod audit;
pub mod chunks;
pub mod consent;
pub mod error_code;
pub mod exchange;
pub mod limits;
pub mod packet;
pub mod padding;
pub mod registry;
pub mod registry_layout;
pub mod signing;
#[cfg(not(target_arch = "wasm32"))]
pub mod test_vectors;
pub mod unix_time;
pub mod upgrade;
pub mod validate;

pub use error_code::ErrorCode;
