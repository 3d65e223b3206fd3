//! A validator's `config.toml` and `app.toml`, edited in place (comments kept).
//!
//! config.toml: every listener on 127.0.0.1 at the node's own ports; P2P among the
//! chain's own validators only (below); the chain's block timing; the kv tx indexer
//! (Hermes needs it); room for the peers' websocket subscriptions. app.toml: zero gas
//! price in the fee denom, gRPC and REST on the node's ports, no gRPC-web.
//!
//! ## Who may connect: the node allowlist
//!
//! CometBFT 0.38 has no allowlist setting, but its switch acts as one when configured so
//! (read in cometbft v0.38.21, the version wasmd 0.61 links):
//!
//! - `p2p/switch.go` `acceptRoutine`: an authenticated inbound peer whose node id is not
//!   in `unconditional_peer_ids` is dropped ("Ignoring inbound connection: already have
//!   enough inbound peers") when the inbound count is `>= max_num_inbound_peers`; with
//!   `max_num_inbound_peers = 0` that is always, so **only the ids listed in
//!   `unconditional_peer_ids` are ever accepted** (the id is the one proven in the
//!   SecretConnection handshake: a stranger cannot claim another node's id without its
//!   key). Unconditional peers are not counted (`NumPeers`).
//! - `max_num_outbound_peers` is read only by the PEX reactor (`pex_reactor.go`
//!   `ensurePeers`); dialing `persistent_peers` (`DialPeersAsync`, `reconnectToPeer`)
//!   never checks it. With `pex = false` nothing else dials, so 0 changes nothing for the
//!   chain's own mesh and states the intent: no peers beyond the listed ones.
//! - `node/setup.go` `createTransport` limits simultaneous incoming TCP connections to
//!   `max_num_inbound_peers + len(unconditional_peer_ids)`: the chain's own nodes.
//! - `filter_peers = true` would ask the app (`/p2p/filter/id/<id>` ABCI query), but
//!   wasmd sets no peer filter (baseapp `SetIDPeerFilter` is never called), so every id
//!   would pass: it stays false.
//!
//! So: `persistent_peers` = the chain's other validators (dialed and redialed),
//! `unconditional_peer_ids` = the same ids (the allowlist), `max_num_inbound_peers = 0`,
//! `max_num_outbound_peers = 0`, `pex = false` (no peer exchange: addresses are never
//! learnt from others or given to them); `addr_book_strict = false` and
//! `allow_duplicate_ip = true` because all the nodes share 127.0.0.1. Adding a node to the
//! allowlist means editing every validator's config and restarting it
//! (`ehrx-devnet add-validator`, [`add_peer`]).

use anyhow::{bail, Context, Result};
use toml_edit::{value, DocumentMut, Item};

use crate::config::Chain;
use crate::layout::Node;

/// A peer of a node: its id and P2P port on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct Peer {
    pub id: String,
    pub p2p: u16,
}

impl Peer {
    /// `node` as a peer: its id (from its node key) and P2P port.
    pub fn of(node: &Node) -> Result<Peer> {
        Ok(Peer {
            id: node.node_id()?,
            p2p: node.ports.p2p,
        })
    }
}

/// The edited config.toml of `node` (given the text wasmd init wrote).
pub fn config_toml(
    text: &str,
    node: &Node,
    chain: &Chain,
    peers: &[Peer],
    log_level: &str,
) -> Result<String> {
    let mut doc: DocumentMut = text.parse().context("config.toml does not parse")?;
    let others: Vec<&Peer> = peers.iter().filter(|p| p.p2p != node.ports.p2p).collect();
    let persistent = others
        .iter()
        .map(|p| format!("{}@127.0.0.1:{}", p.id, p.p2p))
        .collect::<Vec<_>>()
        .join(",");
    let ids = others
        .iter()
        .map(|p| p.id.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let p = &node.ports;
    set(&mut doc, "", "moniker", value(node.moniker()))?;
    set(&mut doc, "", "log_level", value(log_level))?;
    // wasmd has no peer filter: asking it would let every id through (module comment).
    set(&mut doc, "", "filter_peers", value(false))?;
    set(
        &mut doc,
        "rpc",
        "laddr",
        value(format!("tcp://127.0.0.1:{}", p.rpc)),
    )?;
    set(
        &mut doc,
        "rpc",
        "pprof_laddr",
        value(format!("127.0.0.1:{}", p.pprof)),
    )?;
    // Each `ehrx request` waiting for its reply holds one websocket subscription.
    set(&mut doc, "rpc", "max_subscription_clients", value(1000))?;
    set(
        &mut doc,
        "p2p",
        "laddr",
        value(format!("tcp://127.0.0.1:{}", p.p2p)),
    )?;
    set(&mut doc, "p2p", "persistent_peers", value(persistent))?;
    set(&mut doc, "p2p", "unconditional_peer_ids", value(ids))?;
    set(&mut doc, "p2p", "max_num_inbound_peers", value(0))?;
    set(&mut doc, "p2p", "max_num_outbound_peers", value(0))?;
    set(&mut doc, "p2p", "pex", value(false))?;
    set(&mut doc, "p2p", "addr_book_strict", value(false))?;
    set(&mut doc, "p2p", "allow_duplicate_ip", value(true))?;
    set(
        &mut doc,
        "consensus",
        "timeout_commit",
        value(&chain.timeout_commit),
    )?;
    set(
        &mut doc,
        "consensus",
        "timeout_propose",
        value(&chain.timeout_propose),
    )?;
    set(&mut doc, "tx_index", "indexer", value("kv"))?;
    Ok(doc.to_string())
}

/// `text` (a node's config.toml made by [`config_toml`]) with `peer` added to its
/// `persistent_peers` and to the allowlist `unconditional_peer_ids`; unchanged if there
/// already.
pub fn add_peer(text: &str, peer: &Peer) -> Result<String> {
    let mut doc: DocumentMut = text.parse().context("config.toml does not parse")?;
    let p2p = doc
        .get("p2p")
        .and_then(Item::as_table)
        .context("no [p2p] table")?;
    let list = |key: &str| -> Result<Vec<String>> {
        let text = p2p
            .get(key)
            .and_then(Item::as_str)
            .with_context(|| format!("no key {key} in [p2p]"))?;
        Ok(text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect())
    };
    let mut persistent = list("persistent_peers")?;
    let mut ids = list("unconditional_peer_ids")?;
    if !persistent
        .iter()
        .any(|p| p.starts_with(&format!("{}@", peer.id)))
    {
        persistent.push(format!("{}@127.0.0.1:{}", peer.id, peer.p2p));
    }
    if !ids.contains(&peer.id) {
        ids.push(peer.id.clone());
    }
    set(
        &mut doc,
        "p2p",
        "persistent_peers",
        value(persistent.join(",")),
    )?;
    set(
        &mut doc,
        "p2p",
        "unconditional_peer_ids",
        value(ids.join(",")),
    )?;
    Ok(doc.to_string())
}

/// The edited app.toml of `node`.
pub fn app_toml(text: &str, node: &Node, chain: &Chain) -> Result<String> {
    let mut doc: DocumentMut = text.parse().context("app.toml does not parse")?;
    let p = &node.ports;
    set(
        &mut doc,
        "",
        "minimum-gas-prices",
        value(format!("0{}", chain.fee_denom)),
    )?;
    set(&mut doc, "api", "enable", value(true))?;
    set(
        &mut doc,
        "api",
        "address",
        value(format!("tcp://127.0.0.1:{}", p.api)),
    )?;
    set(&mut doc, "grpc", "enable", value(true))?;
    set(
        &mut doc,
        "grpc",
        "address",
        value(format!("127.0.0.1:{}", p.grpc)),
    )?;
    set(&mut doc, "grpc-web", "enable", value(false))?;
    Ok(doc.to_string())
}

/// The edited client.toml: `wasmd --home HOME tx|query ...` uses this chain, the test
/// keyring and the node at RPC port `rpc`.
pub fn client_toml(text: &str, chain_id: &str, rpc: u16) -> Result<String> {
    let mut doc: DocumentMut = text.parse().context("client.toml does not parse")?;
    set(&mut doc, "", "chain-id", value(chain_id))?;
    set(&mut doc, "", "keyring-backend", value("test"))?;
    set(
        &mut doc,
        "",
        "node",
        value(format!("tcp://127.0.0.1:{rpc}")),
    )?;
    Ok(doc.to_string())
}

/// Sets `key` of `[section]` (`""`: the top level), which must exist already: a key wasmd
/// no longer writes is an error, not a setting silently added where nothing reads it.
fn set(doc: &mut DocumentMut, section: &str, key: &str, item: Item) -> Result<()> {
    let table = if section.is_empty() {
        doc.as_table_mut()
    } else {
        match doc.get_mut(section).and_then(Item::as_table_mut) {
            Some(t) => t,
            None => bail!("no [{section}] table"),
        }
    };
    match table.get_mut(key) {
        Some(slot) => {
            // Keep the comment above the key.
            let decor = slot.as_value().map(|v| v.decor().clone());
            *slot = item;
            if let (Some(decor), Some(v)) = (decor, slot.as_value_mut()) {
                *v.decor_mut() = decor;
            }
            Ok(())
        }
        None => bail!("no key {key} in [{section}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Devnet;
    use crate::layout::nodes;
    use std::path::Path;

    fn setup() -> (Devnet, Vec<Node>, Vec<Peer>) {
        let d = Devnet::parse(include_str!("../../../relayer-config/devnet.toml")).unwrap();
        let ns = nodes(&d, Path::new("/x"), "hospital-a").unwrap();
        let peers = ns
            .iter()
            .map(|n| Peer {
                id: format!("{:040}", n.index),
                p2p: n.ports.p2p,
            })
            .collect();
        (d, ns, peers)
    }

    #[test]
    fn config_toml_of_validator_two() {
        let (d, ns, peers) = setup();
        let out = config_toml(
            include_str!("testdata/config.toml"),
            &ns[2],
            &d.chains[0],
            &peers,
            "warn",
        )
        .unwrap();
        let t: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(t["moniker"].as_str(), Some("hospital-a-val2"));
        assert_eq!(t["rpc"]["laddr"].as_str(), Some("tcp://127.0.0.1:26021"));
        assert_eq!(t["rpc"]["pprof_laddr"].as_str(), Some("127.0.0.1:26024"));
        assert_eq!(t["p2p"]["laddr"].as_str(), Some("tcp://127.0.0.1:26020"));
        let persistent = t["p2p"]["persistent_peers"].as_str().unwrap();
        let want = format!(
            "{:040}@127.0.0.1:26000,{:040}@127.0.0.1:26010,{:040}@127.0.0.1:26030",
            0, 1, 3
        );
        assert_eq!(persistent, want, "the other three, not itself");
        assert_eq!(t["p2p"]["pex"].as_bool(), Some(false));
        let allowed = t["p2p"]["unconditional_peer_ids"].as_str().unwrap();
        let want = format!("{:040},{:040},{:040}", 0, 1, 3);
        assert_eq!(allowed, want, "the allowlist: the other three");
        assert_eq!(t["p2p"]["max_num_inbound_peers"].as_integer(), Some(0));
        assert_eq!(t["p2p"]["max_num_outbound_peers"].as_integer(), Some(0));
        assert_eq!(t["filter_peers"].as_bool(), Some(false));
        assert_eq!(t["p2p"]["addr_book_strict"].as_bool(), Some(false));
        assert_eq!(t["p2p"]["allow_duplicate_ip"].as_bool(), Some(true));
        assert_eq!(t["consensus"]["timeout_commit"].as_str(), Some("500ms"));
        assert_eq!(t["tx_index"]["indexer"].as_str(), Some("kv"));
        assert_eq!(t["log_level"].as_str(), Some("warn"));
        assert!(
            out.contains("# A custom human readable name for this node"),
            "comments kept"
        );
    }

    #[test]
    fn add_peer_extends_the_allowlist_once() {
        let (d, ns, peers) = setup();
        let base = config_toml(
            include_str!("testdata/config.toml"),
            &ns[0],
            &d.chains[0],
            &peers,
            "warn",
        )
        .unwrap();
        let new = Peer {
            id: "ab".repeat(20),
            p2p: 26040,
        };
        let once = add_peer(&base, &new).unwrap();
        assert_eq!(add_peer(&once, &new).unwrap(), once, "idempotent");
        let t: toml::Table = toml::from_str(&once).unwrap();
        let persistent = t["p2p"]["persistent_peers"].as_str().unwrap();
        assert!(
            persistent.ends_with(&format!(",{}@127.0.0.1:26040", new.id)),
            "{persistent}"
        );
        assert_eq!(persistent.split(',').count(), 4);
        let allowed = t["p2p"]["unconditional_peer_ids"].as_str().unwrap();
        assert_eq!(allowed, format!("{:040},{:040},{:040},{}", 1, 2, 3, new.id));
        assert_eq!(t["p2p"]["max_num_inbound_peers"].as_integer(), Some(0));
        assert!(
            once.contains("# Maximum number of inbound peers"),
            "comments kept"
        );
    }

    #[test]
    fn app_toml_of_validator_one() {
        let (d, ns, _) = setup();
        let out = app_toml(include_str!("testdata/app.toml"), &ns[1], &d.chains[0]).unwrap();
        let t: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(t["minimum-gas-prices"].as_str(), Some("0ufee"));
        assert_eq!(t["grpc"]["address"].as_str(), Some("127.0.0.1:26012"));
        assert_eq!(t["api"]["address"].as_str(), Some("tcp://127.0.0.1:26013"));
        assert_eq!(t["api"]["enable"].as_bool(), Some(true));
        assert_eq!(t["grpc-web"]["enable"].as_bool(), Some(false));
    }

    #[test]
    fn client_toml_points_at_the_node() {
        let text = "chain-id = \"x\"\nkeyring-backend = \"os\"\nnode = \"tcp://localhost:26657\"\n";
        let out = client_toml(text, "hospital-a", 26011).unwrap();
        let t: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(t["chain-id"].as_str(), Some("hospital-a"));
        assert_eq!(t["keyring-backend"].as_str(), Some("test"));
        assert_eq!(t["node"].as_str(), Some("tcp://127.0.0.1:26011"));
    }

    #[test]
    fn a_missing_key_is_an_error() {
        let (d, ns, peers) = setup();
        let err = config_toml("[rpc]\n", &ns[0], &d.chains[0], &peers, "warn").unwrap_err();
        assert!(err.to_string().contains("moniker"), "{err}");
    }
}
