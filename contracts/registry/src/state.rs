//! Storage layout of the registry. Keys are short and stable: changing one is a migration.

use cosmwasm_schema::cw_serde;
use cosmwasm_std::Addr;
use cw_storage_plus::{Item, Map};
use ehr_protocol::audit::AuditLog;
use ehr_protocol::registry::{Clinician, ConfigResponse, Partner, Peer, Policy};

/// The settings every handler reads: who administers, which contract is the exchange,
/// our network id and the policy.
#[cw_serde]
pub struct Config {
    /// The only address that may change the registry or release a quarantined peer.
    pub admin: Addr,
    /// The only contract that may record strikes and bind or unbind channels; unset until
    /// the admin configures it (then every exchange-only message is refused).
    pub exchange: Option<Addr>,
    pub network_id: String,
    pub policy: Policy,
}

impl From<Config> for ConfigResponse {
    fn from(config: Config) -> Self {
        ConfigResponse {
            admin: config.admin,
            exchange: config.exchange,
            network_id: config.network_id,
            policy: config.policy,
        }
    }
}

/// Singleton: the admin, exchange, network id and policy.
pub const CONFIG: Item<Config> = Item::new("config");

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

/// Append-only audit log of every registry change (ids from 1, oldest first).
pub const AUDIT: AuditLog = AuditLog::new("audit_next", "audit");
