pub mod chain;
pub mod ibc_module;
pub mod peer;
pub mod relayer;
pub mod scenario;

pub use chain::{Chain, ExchangeResult};
pub use peer::{Patient, TestPeer};
pub use relayer::{Link, Relayer};
pub use scenario::TwoHospitals;
