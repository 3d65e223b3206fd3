//! The chain as one peer sees it: its exchange contract, its network id, its keys.

use crate::chain::{self, ChainClient};
use crate::keys::PeerKeys;
use anyhow::{Context, Result};
use ehr_protocol::exchange::{ConfigResponse, QueryMsg};

/// The local chain's exchange contract and network (no keys needed: audit export).
pub struct Exchange<'a> {
    pub chain: &'a dyn ChainClient,
    pub contract: String,
    pub registry: String,
    pub network: String,
}

impl<'a> Exchange<'a> {
    /// Reads the contract's config (its network id and registry).
    pub fn connect(chain: &'a dyn ChainClient, contract: &str) -> Result<Exchange<'a>> {
        let config: ConfigResponse = chain::query(chain, contract, &QueryMsg::Config {})
            .with_context(|| format!("cannot read the exchange contract {contract}"))?;
        Ok(Exchange {
            chain,
            contract: contract.to_string(),
            registry: config.registry.to_string(),
            network: config.network_id,
        })
    }
}

/// A peer: the exchange, the account that signs transactions and the peer's keys.
pub struct Peer<'a> {
    pub exchange: Exchange<'a>,
    pub address: String,
    pub keys: PeerKeys,
}

impl<'a> Peer<'a> {
    pub fn connect(chain: &'a dyn ChainClient, contract: &str, keys: PeerKeys) -> Result<Peer<'a>> {
        let address = chain
            .address()
            .context("cannot find this peer's chain address")?;
        Ok(Peer {
            exchange: Exchange::connect(chain, contract)?,
            address,
            keys,
        })
    }

    pub fn chain(&self) -> &'a dyn ChainClient {
        self.exchange.chain
    }

    pub fn contract(&self) -> &str {
        &self.exchange.contract
    }

    pub fn network(&self) -> &str {
        &self.exchange.network
    }
}

/// A fresh random id for requests and records: 16 random bytes as 32 hex chars
/// (matches `ehr_protocol::validate::id`).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    crate::keys::os_random(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_ids_are_valid_and_distinct() {
        let a = super::random_id();
        assert!(ehr_protocol::validate::id(&a).is_ok());
        assert_ne!(a, super::random_id());
    }
}
