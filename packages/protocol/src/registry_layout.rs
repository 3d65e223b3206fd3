//! The registry's storage layout, defined once. The registry writes it; the exchange on the
//! same chain reads the entries it checks on every packet (config and policy, peers,
//! clinicians, partners, the channel index) with raw queries (`Item::query`, `Map::query`):
//! one store read each, instead of a smart query that runs the registry's code and a JSON
//! round trip (issue 10's gas). Keys are short and stable: changing one, or the stored
//! type, is a migration of both contracts.

use crate::limits::{MAX_NAME_LEN, MAX_PORT_LEN};
use crate::registry::{Clinician, ConfigResponse, Partner, Peer};
use cosmwasm_std::Addr;
use cw_storage_plus::{Item, Map};

/// Singleton: the admin, exchange, network id and policy (stored as the `Config` query
/// answers it).
pub const CONFIG: Item<ConfigResponse> = Item::new("config");

/// Peer address -> peer. Keyed by the validated address because the exchange looks a peer
/// up by the sender of every store, request, reply and retrieval.
pub const PEERS: Map<&Addr, Peer> = Map::new("peers");

/// Clinician id -> clinician: who may request, with which key and purposes.
pub const CLINICIANS: Map<&str, Clinician> = Map::new("clinicians");

/// Partner id (the partner's network id) -> partner: the paper's lookup table, keyed by the
/// id requests name as their destination.
pub const PARTNERS: Map<&str, Partner> = Map::new("partners");

/// (connection id, counterparty port) -> partner id. The exchange checks every channel
/// handshake against this index; at most one partner per pair, kept in step with `PARTNERS`.
pub const PARTNER_BY_CONNECTION: Map<(&str, &str), String> = Map::new("partner_by_conn");

/// Our channel id -> partner id, for channels the exchange bound at handshake. Checked on
/// every packet, so it must hold exactly the channels whose partner names them.
pub const PARTNER_BY_CHANNEL: Map<&str, String> = Map::new("partner_by_chan");

/// The `CLINICIANS` key of a clinician id; `None` for an id longer than any the registry
/// registers, which is then not looked up.
pub fn clinician_key(clinician_id: &str) -> Option<&str> {
    (clinician_id.len() <= MAX_NAME_LEN).then_some(clinician_id)
}

/// The `PARTNER_BY_CONNECTION` key of a connection and counterparty port; `None` when either
/// is longer than any the registry registers (and would panic as a storage key part).
pub fn connection_key<'a>(
    connection_id: &'a str,
    counterparty_port: &'a str,
) -> Option<(&'a str, &'a str)> {
    (connection_id.len() <= MAX_NAME_LEN && counterparty_port.len() <= MAX_PORT_LEN)
        .then_some((connection_id, counterparty_port))
}
