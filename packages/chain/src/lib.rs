//! The one typed client of a wasmd chain, used by the `ehrx` peer tool, the tests and the
//! benchmark. No `wasmd` binary is needed: keys are read from the wasmd keyring files
//! (`keyring`), transactions are built and signed with cosmrs and sent over CometBFT RPC
//! (`client`), and results are typed (`tx`): a failed or soft-rejected transaction carries
//! the chain's code and our `ErrorCode`. Other SDK messages (bank sends, the ICS-20
//! `MsgTransfer`) are built in `msgs` and sent with `Chain::execute_any`.

pub mod blocking;
pub mod client;
pub mod keyring;
pub mod msgs;
pub mod tx;

pub use blocking::BlockingChain;
pub use client::{parse_gas_price, Chain, ChainConfig};
/// Block (BFT) times, and a UTC clock with RFC 3339 formatting for those who report them.
pub use cosmrs::tendermint::Time;
pub use keyring::KeyringKey;
/// CometBFT event queries, for `Chain::tx_search`.
pub use tendermint_rpc::query::Query;
pub use tx::{
    contract_data, execute, execute_all, parse_code, query, reduce_log, ChainClient, ChainError,
    TxEvent, TxResult, Watch,
};
