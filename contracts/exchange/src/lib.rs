//! The exchange contract: the paper's verification pipeline (Algorithms 1-3), the record
//! index, the request/reply state machine, the IBC entry points and the audit log.

pub mod checks;
pub mod consent;
pub mod contract;
pub mod error;
pub mod execute;
pub mod handshake;
pub mod ibc;
pub mod packets;
pub mod query;
pub mod quota;
pub mod registry_client;
pub mod rejection;
pub mod state;
pub mod sweep;

pub use error::ContractError;

#[cfg(test)]
mod tests;
