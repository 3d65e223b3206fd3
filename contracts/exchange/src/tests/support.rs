use crate::contract::instantiate;
use cosmwasm_std::testing::{
    message_info, mock_dependencies, mock_env, MockApi, MockQuerier, MockStorage,
};
use cosmwasm_std::{ContractResult, OwnedDeps, Storage, SystemError, SystemResult, WasmQuery};
use ehr_protocol::exchange::InstantiateMsg;
use ehr_protocol::registry::{ConfigResponse, Partner, PartnerStatus, Policy};
use ehr_protocol::registry_layout::{CONFIG, PARTNERS, PARTNER_BY_CHANNEL, PARTNER_BY_CONNECTION};

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
    // The registry's storage, in its real layout; the exchange reads it with raw queries.
    let mut store = MockStorage::new();
    let config = ConfigResponse {
        admin,
        exchange: None,
        network_id: "hospital-a".into(),
        policy: Policy::default(),
    };
    CONFIG.save(&mut store, &config).unwrap();
    let known = partner(bound.then_some(CHANNEL));
    PARTNERS
        .save(&mut store, &known.partner_id, &known)
        .unwrap();
    PARTNER_BY_CONNECTION
        .save(
            &mut store,
            (CONNECTION, COUNTERPARTY_PORT),
            &known.partner_id,
        )
        .unwrap();
    if bound {
        PARTNER_BY_CHANNEL
            .save(&mut store, CHANNEL, &known.partner_id)
            .unwrap();
    }
    let registry_for_query = registry.clone();
    deps.querier.update_wasm(move |query| match query {
        WasmQuery::Raw { contract_addr, key } if *contract_addr == registry_for_query.as_str() => {
            let value = store.get(key).unwrap_or_default();
            SystemResult::Ok(ContractResult::Ok(value.into()))
        }
        other => SystemResult::Err(SystemError::UnsupportedRequest {
            kind: format!("only raw queries of the registry: {other:?}"),
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
