use cosmwasm_schema::write_api;
use ehr_protocol::exchange::{ExecuteMsg, InstantiateMsg, QueryMsg};
use exchange::contract::MigrateMsg;

fn main() {
    write_api! {
        instantiate: InstantiateMsg,
        execute: ExecuteMsg,
        query: QueryMsg,
        migrate: MigrateMsg,
    }
}
