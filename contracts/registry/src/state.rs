//! Storage layout of the registry. Keys are short and stable: changing one is a migration.

use ehr_protocol::audit::AuditLog;
use ehr_protocol::registry::ConfigResponse;

/// The settings every handler reads: who administers, which contract is the exchange, our
/// network id and the policy. Stored as the `Config` query answers it.
pub type Config = ConfigResponse;

/// The entries the exchange also reads, with raw queries: defined once, in the protocol crate.
pub use ehr_protocol::registry_layout::{
    CLINICIANS, CONFIG, PARTNERS, PARTNER_BY_CHANNEL, PARTNER_BY_CONNECTION, PEERS,
};

/// Append-only audit log of every registry change (ids from 1, oldest first).
pub const AUDIT: AuditLog = AuditLog::new("audit_next", "audit");
