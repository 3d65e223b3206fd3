//! Writes the registry's JSON schemas to `./schema` (relative to the working directory).

use cosmwasm_schema::write_api;
use ehr_protocol::registry::{ExecuteMsg, InstantiateMsg, QueryMsg};
use registry::contract::MigrateMsg;

fn main() {
    write_api! {
        instantiate: InstantiateMsg,
        execute: ExecuteMsg,
        query: QueryMsg,
        migrate: MigrateMsg,
    }
}
