//! Writes JSON schemas of the IBC wire types (packets, acks, error codes) to the directory
//! given as the first argument (default `./schema`).

use cosmwasm_schema::{export_schema, schema_for};
use ehr_protocol::audit::AuditEntry;
use ehr_protocol::packet::{ExchangeAck, ExchangePacket};
use ehr_protocol::ErrorCode;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "schema".into()));
    std::fs::create_dir_all(&out).expect("create schema directory");
    export_schema(&schema_for!(ExchangePacket), &out);
    export_schema(&schema_for!(ExchangeAck), &out);
    export_schema(&schema_for!(ErrorCode), &out);
    export_schema(&schema_for!(AuditEntry), &out);
}
