//! Test support: two (or more) in-process chains built on cw-multi-test, a relayer that
//! moves packets, acks and timeouts between them through the exchange contract's IBC entry
//! points, and test peers with real secp256k1 keys.

pub mod bench;
pub mod devnet;
pub mod fhir_tools;
pub mod harness;
pub mod linkage;
pub mod peer_tool;
