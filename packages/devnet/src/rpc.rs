//! A node's state, read over CometBFT RPC (tendermint-rpc, CometBFT 0.38).

use std::str::FromStr as _;
use std::time::Duration;

use anyhow::{anyhow, Result};
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::{Client as _, HttpClient, HttpClientUrl, Paging};

/// What one node says of itself.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub height: u64,
    pub catching_up: bool,
    pub peers: u64,
    /// This node's own voting power (0: not a validator, or jailed).
    pub power: u64,
}

/// The chain's validator set as one node sees it.
#[derive(Debug, Clone)]
pub struct ValidatorSet {
    pub count: usize,
    pub total_power: u64,
}

const TIMEOUT: Duration = Duration::from_secs(2);

fn client(url: &str) -> Result<HttpClient> {
    let url = HttpClientUrl::from_str(url).map_err(|e| anyhow!("{url}: {e}"))?;
    Ok(HttpClient::builder(url)
        .compat_mode(CompatMode::V0_38)
        .build()?)
}

async fn timed<T, E: std::fmt::Display>(
    url: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T> {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(anyhow!("{url}: {}", short(&e.to_string()))),
        Err(_) => Err(anyhow!("{url}: no answer within {}s", TIMEOUT.as_secs())),
    }
}

/// The cause of a tendermint-rpc error, without the backtrace its text carries when
/// RUST_BACKTRACE is set: "Connection refused (os error 111)".
fn short(text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("error").to_string();
    let cause = text
        .split("Caused by:")
        .nth(1)
        .and_then(|rest| rest.lines().map(str::trim).find(|l| !l.is_empty()));
    match cause {
        Some(c) => c.rsplit(": ").next().unwrap_or(c).to_string(),
        None => first,
    }
}

/// `/status` and `/net_info` of the node at `url`.
pub async fn node_status(url: &str) -> Result<NodeStatus> {
    let c = client(url)?;
    let status = timed(url, c.status()).await?;
    let net = timed(url, c.net_info()).await?;
    Ok(NodeStatus {
        height: status.sync_info.latest_block_height.value(),
        catching_up: status.sync_info.catching_up,
        peers: net.n_peers,
        power: status.validator_info.power.value(),
    })
}

/// `/validators` at the latest height.
pub async fn validator_set(url: &str) -> Result<ValidatorSet> {
    let c = client(url)?;
    let status = timed(url, c.status()).await?;
    let vs = timed(
        url,
        c.validators(status.sync_info.latest_block_height, Paging::All),
    )
    .await?;
    Ok(ValidatorSet {
        count: vs.validators.len(),
        total_power: vs.validators.iter().map(|v| v.power.value()).sum(),
    })
}

/// A single-threaded runtime for the RPC calls.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_error_text() {
        let text = "HTTP error\n\nCaused by:\n    error sending request for url (http://127.0.0.1:1/): \
                    tcp connect error: Connection refused (os error 111)\n\nLocation:\n    x.rs:10\n\n\
                    Stack backtrace:\n   0: eyre";
        assert_eq!(super::short(text), "Connection refused (os error 111)");
        assert_eq!(super::short("no route"), "no route");
    }
}
