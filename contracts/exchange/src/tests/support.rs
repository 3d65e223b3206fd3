use crate::contract::instantiate;
use cosmwasm_std::testing::{
    message_info, mock_dependencies, mock_env, MockApi, MockQuerier, MockStorage,
};
use cosmwasm_std::{
    from_json, to_json_binary, ContractResult, OwnedDeps, SystemError, SystemResult, WasmQuery,
};
use ehr_protocol::exchange::InstantiateMsg;
use ehr_protocol::registry::{ConfigResponse, Partner, PartnerStatus, Policy, QueryMsg};

pub type Deps = OwnedDeps<MockStorage, MockApi, MockQuerier>;

pub const CONNECTION: &str = "connection-0";
pub const COUNTERPARTY_PORT: &str = "wasm.partnerexchange";
pub const CHANNEL: &str = "channel-0";

pub fn partner(channel: Option<&str>) -> Partner {
    Partner {
        partner_id: "hospital-b".into(),
        connection_id: CONNECTION.into(),
        counterparty_port: COUNTERPARTY_PORT.into(),
        encryption_key: None,
        status: PartnerStatus::Active,
        channel_id: channel.map(str::to_string),
        retired_channels: vec![],
        accepted_purposes: ehr_protocol::registry::default_accepted_purposes(),
    }
}

/// An exchange instantiated against a mocked registry that knows one partner, whose
/// channel is bound when `bound` is set.
pub fn setup(bound: bool) -> Deps {
    let mut deps = mock_dependencies();
    let registry = deps.api.addr_make("registry");
    let admin = deps.api.addr_make("admin");
    let registry_for_query = registry.clone();
    deps.querier.update_wasm(move |query| match query {
        WasmQuery::Smart { contract_addr, msg }
            if *contract_addr == registry_for_query.as_str() =>
        {
            let reply = match from_json::<QueryMsg>(msg).unwrap() {
                QueryMsg::Config {} => to_json_binary(&ConfigResponse {
                    admin: admin.clone(),
                    exchange: None,
                    network_id: "hospital-a".into(),
                    policy: Policy::default(),
                }),
                QueryMsg::PartnerByConnection {
                    connection_id,
                    counterparty_port,
                } => to_json_binary(
                    &(connection_id == CONNECTION && counterparty_port == COUNTERPARTY_PORT)
                        .then(|| partner(bound.then_some(CHANNEL))),
                ),
                QueryMsg::PartnerByChannel { channel_id } => to_json_binary(
                    &(bound && channel_id == CHANNEL).then(|| partner(Some(CHANNEL))),
                ),
                QueryMsg::Peer { .. } => to_json_binary(&Option::<()>::None),
                other => panic!("unexpected registry query {other:?}"),
            };
            SystemResult::Ok(ContractResult::Ok(reply.unwrap()))
        }
        _ => SystemResult::Err(SystemError::UnsupportedRequest {
            kind: "only the registry".into(),
        }),
    });
    let creator = deps.api.addr_make("creator");
    instantiate(
        deps.as_mut(),
        mock_env(),
        message_info(&creator, &[]),
        InstantiateMsg {
            registry: registry.to_string(),
        },
    )
    .unwrap();
    deps
}
