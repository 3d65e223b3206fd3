//! Unit tests against the entry points with `cosmwasm_std::testing` mocks.

mod audit;
mod auth;
mod clinicians;
mod lifecycle;
mod partners;
mod peers;
mod queries;

use cosmwasm_std::testing::{
    message_info, mock_dependencies, mock_env, MockApi, MockQuerier, MockStorage,
};
use cosmwasm_std::{from_json, Addr, Binary, OwnedDeps, Response};
use ehr_protocol::audit::AuditEntry;
use ehr_protocol::exchange::PurposeOfUse;
use ehr_protocol::registry::{
    AuditLogResponse, ClinicianInput, ExecuteMsg, InstantiateMsg, PartnerInput, PartnerStatus,
    Peer, PeerInput, QueryMsg, Role,
};
use serde::de::DeserializeOwned;

use crate::contract::{execute, instantiate, query};
use crate::ContractError;

pub type Deps = OwnedDeps<MockStorage, MockApi, MockQuerier>;

pub struct Setup {
    pub deps: Deps,
    pub admin: Addr,
    pub exchange: Addr,
    pub stranger: Addr,
}

/// A registry instantiated by `admin` (admin by default) with the default policy and
/// `exchange` configured.
pub fn setup() -> Setup {
    let mut deps = mock_dependencies();
    let admin = deps.api.addr_make("admin");
    let exchange = deps.api.addr_make("exchange");
    let stranger = deps.api.addr_make("stranger");
    instantiate(
        deps.as_mut(),
        mock_env(),
        message_info(&admin, &[]),
        InstantiateMsg {
            admin: None,
            network_id: "hospital-a".to_string(),
            policy: None,
        },
    )
    .expect("instantiate");
    let mut setup = Setup {
        deps,
        admin,
        exchange,
        stranger,
    };
    let exchange = setup.exchange.to_string();
    setup
        .as_admin(ExecuteMsg::SetExchange { exchange })
        .expect("set exchange");
    setup
}

impl Setup {
    pub fn exec(&mut self, sender: &Addr, msg: ExecuteMsg) -> Result<Response, ContractError> {
        execute(
            self.deps.as_mut(),
            mock_env(),
            message_info(sender, &[]),
            msg,
        )
    }

    pub fn as_admin(&mut self, msg: ExecuteMsg) -> Result<Response, ContractError> {
        let admin = self.admin.clone();
        self.exec(&admin, msg)
    }

    pub fn as_exchange(&mut self, msg: ExecuteMsg) -> Result<Response, ContractError> {
        let exchange = self.exchange.clone();
        self.exec(&exchange, msg)
    }

    pub fn query<T: DeserializeOwned>(&self, msg: QueryMsg) -> T {
        from_json(query(self.deps.as_ref(), mock_env(), msg).expect("query")).expect("decode")
    }

    pub fn addr(&self, name: &str) -> Addr {
        self.deps.api.addr_make(name)
    }

    pub fn peer(&self, address: &Addr) -> Option<Peer> {
        self.query(QueryMsg::Peer {
            address: address.to_string(),
        })
    }

    /// Registers `name` as a peer with keys from `seed` and the given roles.
    pub fn register(&mut self, name: &str, seed: u8, roles: Vec<Role>) -> Addr {
        let address = self.addr(name);
        self.as_admin(ExecuteMsg::RegisterPeer {
            peer: peer_input(&address, seed, roles),
        })
        .expect("register peer");
        address
    }

    pub fn audit(&self) -> Vec<AuditEntry> {
        let page: AuditLogResponse = self.query(QueryMsg::AuditLog {
            start_after: None,
            limit: Some(100),
        });
        page.entries
    }

    pub fn audit_len(&self) -> usize {
        self.audit().len()
    }
}

pub fn signing_key(seed: u8) -> Binary {
    let mut key = vec![2u8];
    key.extend([seed; 32]);
    Binary::from(key)
}

pub fn encryption_key(seed: u8) -> Binary {
    Binary::from(vec![seed; 32])
}

pub fn clinician_input(clinician_id: &str, seed: u8) -> ClinicianInput {
    ClinicianInput {
        clinician_id: clinician_id.to_string(),
        signing_key: signing_key(seed),
        allowed_purposes: vec![PurposeOfUse::Treatment],
        valid_from: None,
        valid_until: None,
        break_glass: false,
    }
}

pub fn peer_input(address: &Addr, seed: u8, roles: Vec<Role>) -> PeerInput {
    PeerInput {
        address: address.to_string(),
        signing_key: signing_key(seed),
        encryption_key: encryption_key(seed),
        device_id: "aa-bb-cc-dd-ee-ff".to_string(),
        roles,
        valid_from: None,
        valid_until: None,
    }
}

pub fn partner_input(partner_id: &str, connection_id: &str, port: &str) -> PartnerInput {
    PartnerInput {
        partner_id: partner_id.to_string(),
        connection_id: connection_id.to_string(),
        counterparty_port: port.to_string(),
        encryption_key: Some(encryption_key(9)),
        status: PartnerStatus::Active,
        accepted_purposes: ehr_protocol::registry::default_accepted_purposes(),
    }
}

/// The value of attribute `key`, panicking when it is missing.
pub fn attr<'a>(response: &'a Response, key: &str) -> &'a str {
    response
        .attributes
        .iter()
        .find(|a| a.key == key)
        .map(|a| a.value.as_str())
        .unwrap_or_else(|| panic!("attribute {key} missing"))
}

/// Asserts the first attribute is `("action", handler)`.
pub fn assert_action(response: &Response, handler: &str) {
    let first = response.attributes.first().expect("attributes");
    assert_eq!(
        (first.key.as_str(), first.value.as_str()),
        ("action", handler)
    );
}

pub fn assert_invalid(result: Result<Response, ContractError>, expected_field: &str) {
    match result {
        Err(ContractError::InvalidFormat { field }) => assert_eq!(field, expected_field),
        other => panic!("expected InvalidFormat {{ {expected_field} }}, got {other:?}"),
    }
}
