//! Talking to a wasmd chain: the `ehrx-chain` crate's client, built from the settings.
//!
//! `ChainClient` is what the rest of the tool uses. `connect` gives the native client
//! (CometBFT RPC, keys from the wasmd keyring files, no `wasmd` binary); tests substitute
//! an in-process chain.

use crate::config::Settings;
use anyhow::Result;
pub use ehrx_chain::{
    contract_data, execute, execute_all, parse_code, query, reduce_log, BlockingChain, ChainClient,
    ChainConfig, ChainError, KeyringKey, TxEvent, TxResult, Watch,
};

/// The environment variable the `file` keyring's password is read from, when not asked.
pub const KEYRING_PASSWORD_ENV: &str = "EHRX_KEYRING_PASSWORD";

/// The native chain client of these settings, with the peer's account key opened.
pub fn connect(settings: &Settings) -> Result<BlockingChain> {
    let (cfg, key) = settings.chain()?;
    let secret = key.open(|| {
        std::env::var(KEYRING_PASSWORD_ENV).ok().or_else(|| {
            rpassword::prompt_password(format!("password of the keyring holding `{}`: ", key.name))
                .ok()
        })
    })?;
    Ok(BlockingChain::new(cfg, Some(secret))?)
}
