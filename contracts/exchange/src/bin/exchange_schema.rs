//! Writes the exchange's API schema to `./schema` (`write_api!`) and the schemas of the
//! response data of its execute messages to `./exchange-data`: `RetrieveReply` answers in
//! the transaction's data (a query cannot, it has no sender), which no IDL file carries.

use cosmwasm_schema::{export_schema, schema_for, write_api};
use ehr_protocol::exchange::{ExecuteMsg, InstantiateMsg, QueryMsg, RetrievedReply};
use exchange::contract::MigrateMsg;
use std::path::Path;

fn main() {
    write_api! {
        instantiate: InstantiateMsg,
        execute: ExecuteMsg,
        query: QueryMsg,
        migrate: MigrateMsg,
    }
    let data = Path::new("exchange-data");
    std::fs::create_dir_all(data).expect("create exchange-data");
    export_schema(&schema_for!(RetrievedReply), data);
}
