//! The `registry` contract: who may do what on one hospital chain.
//!
//! It keeps the peers (addresses, keys, roles, status, validity), the clinicians (ids,
//! public keys, purposes, validity), the partner lookup table (connection, counterparty port, bound channel)
//! and the policy the `exchange` contract enforces. Only the admin changes it; only the
//! configured exchange contract may record strikes (which can quarantine a peer) and bind
//! or unbind channels. Every change is an audit entry. See DESIGN.md §3.

pub mod contract;
mod error;
mod execute;
mod query;
pub mod state;

#[cfg(test)]
mod tests;

pub use error::ContractError;
