//! Instantiate, policy validation and migrate.

use super::*;
use crate::contract::{migrate, MigrateMsg, CONTRACT_NAME, CONTRACT_VERSION_STR};
use cosmwasm_std::testing::{message_info, mock_dependencies, mock_env};
use ehr_protocol::audit::AuditAction;
use ehr_protocol::limits::{
    MAX_CHUNK_BYTES, MAX_CLOCK_SKEW_SECS, MAX_HISTORY_CHUNKS, MAX_SWEEP_ITEMS,
};
use ehr_protocol::registry::{ConfigResponse, Policy};
use ehr_protocol::upgrade::UpgradeRefusal;

fn try_instantiate(deps: &mut Deps, msg: InstantiateMsg) -> Result<Response, ContractError> {
    let sender = deps.api.addr_make("creator");
    instantiate(deps.as_mut(), mock_env(), message_info(&sender, &[]), msg)
}

fn config(deps: &Deps) -> ConfigResponse {
    from_json(query(deps.as_ref(), mock_env(), QueryMsg::Config {}).unwrap()).unwrap()
}

/// Each policy with one field out of range, and the field name the error must carry.
fn bad_policies() -> Vec<(Policy, &'static str)> {
    let d = Policy::default;
    vec![
        (
            Policy {
                break_glass_window_secs: u64::MAX,
                ..d()
            },
            "policy.break_glass_window_secs",
        ),
        (
            Policy {
                break_glass_cosign_secs: u64::MAX,
                ..d()
            },
            "policy.break_glass_cosign_secs",
        ),
        (
            Policy {
                rate_limit_count: 0,
                ..d()
            },
            "policy.rate_limit_count",
        ),
        (
            Policy {
                rate_limit_window_secs: 0,
                ..d()
            },
            "policy.rate_limit_window_secs",
        ),
        (
            Policy {
                rate_limit_window_secs: u64::MAX,
                ..d()
            },
            "policy.rate_limit_window_secs",
        ),
        (
            Policy {
                strikes_before_quarantine: 0,
                ..d()
            },
            "policy.strikes_before_quarantine",
        ),
        (
            Policy {
                max_request_ttl_secs: 0,
                ..d()
            },
            "policy.max_request_ttl_secs",
        ),
        (
            Policy {
                packet_timeout_secs: 0,
                ..d()
            },
            "policy.packet_timeout_secs",
        ),
        (
            Policy {
                packet_timeout_secs: u64::MAX / 1_000_000_000 + 1,
                ..d()
            },
            "policy.packet_timeout_secs",
        ),
        (
            Policy {
                max_chunk_bytes: 0,
                ..d()
            },
            "policy.max_chunk_bytes",
        ),
        (
            Policy {
                max_chunk_bytes: MAX_CHUNK_BYTES as u64 * 2,
                ..d()
            },
            "policy.max_chunk_bytes",
        ),
        (
            Policy {
                // Not a power of two: chunks are size buckets.
                max_chunk_bytes: 100_000,
                ..d()
            },
            "policy.max_chunk_bytes",
        ),
        (
            Policy {
                max_history_chunks: 3,
                ..d()
            },
            "policy.max_history_chunks",
        ),
        (
            Policy {
                max_history_chunks: MAX_HISTORY_CHUNKS * 2,
                ..d()
            },
            "policy.max_history_chunks",
        ),
        (
            Policy {
                max_clock_skew_secs: MAX_CLOCK_SKEW_SECS + 1,
                ..d()
            },
            "policy.max_clock_skew_secs",
        ),
        (
            Policy {
                min_request_ttl_secs: d().max_request_ttl_secs + 1,
                ..d()
            },
            "policy.min_request_ttl_secs",
        ),
        (
            Policy {
                min_remaining_lifetime_secs: d().max_request_ttl_secs + 1,
                ..d()
            },
            "policy.min_remaining_lifetime_secs",
        ),
        (
            Policy {
                incoming_per_partner_count: 0,
                ..d()
            },
            "policy.incoming_per_partner_count",
        ),
        (
            Policy {
                incoming_per_remote_requester_count: 0,
                ..d()
            },
            "policy.incoming_per_remote_requester_count",
        ),
        (
            Policy {
                incoming_window_secs: 0,
                ..d()
            },
            "policy.incoming_window_secs",
        ),
        (
            Policy {
                max_records_per_patient: 0,
                ..d()
            },
            "policy.max_records_per_patient",
        ),
        (
            Policy {
                sweep_max_items: MAX_SWEEP_ITEMS + 1,
                ..d()
            },
            "policy.sweep_max_items",
        ),
        (
            Policy {
                finalise_grace_secs: u64::MAX,
                ..d()
            },
            "policy.finalise_grace_secs",
        ),
    ]
}

#[test]
fn instantiate_defaults_admin_to_sender_and_policy_to_default() {
    let mut deps = mock_dependencies();
    let res = try_instantiate(
        &mut deps,
        InstantiateMsg {
            admin: None,
            network_id: "hospital-a".to_string(),
            policy: None,
        },
    )
    .unwrap();
    assert_action(&res, "instantiate");
    let config = config(&deps);
    assert_eq!(config.admin, deps.api.addr_make("creator"));
    assert_eq!(config.exchange, None);
    assert_eq!(config.network_id, "hospital-a");
    assert_eq!(config.policy, Policy::default());
    let audit: AuditLogResponse = from_json(
        query(
            deps.as_ref(),
            mock_env(),
            QueryMsg::AuditLog {
                start_after: None,
                limit: None,
            },
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(audit.entries.len(), 1);
    assert_eq!(audit.entries[0].action, AuditAction::AdminChanged);
    assert_eq!(
        cw2::get_contract_version(&deps.storage).unwrap(),
        cw2::ContractVersion {
            contract: CONTRACT_NAME.to_string(),
            version: CONTRACT_VERSION_STR.to_string(),
        }
    );
}

#[test]
fn instantiate_takes_an_explicit_admin_and_policy() {
    let mut deps = mock_dependencies();
    let multisig = deps.api.addr_make("multisig");
    let policy = Policy {
        rate_limit_count: 5,
        max_chunk_bytes: MAX_CHUNK_BYTES as u64,
        ..Policy::default()
    };
    try_instantiate(
        &mut deps,
        InstantiateMsg {
            admin: Some(multisig.to_string()),
            network_id: "hospital-b".to_string(),
            policy: Some(policy.clone()),
        },
    )
    .unwrap();
    let config = config(&deps);
    assert_eq!(config.admin, multisig);
    assert_eq!(config.policy, policy);
}

#[test]
fn instantiate_refuses_bad_admin_network_id_and_policy() {
    let mut deps = mock_dependencies();
    let good = || InstantiateMsg {
        admin: None,
        network_id: "hospital-a".to_string(),
        policy: None,
    };
    assert_invalid(
        try_instantiate(
            &mut deps,
            InstantiateMsg {
                admin: Some("nobody".to_string()),
                ..good()
            },
        ),
        "admin",
    );
    for network_id in ["", "hospital a", &"n".repeat(65)] {
        assert_invalid(
            try_instantiate(
                &mut deps,
                InstantiateMsg {
                    network_id: network_id.to_string(),
                    ..good()
                },
            ),
            "network_id",
        );
    }
    for (policy, field) in bad_policies() {
        assert_invalid(
            try_instantiate(
                &mut deps,
                InstantiateMsg {
                    policy: Some(policy),
                    ..good()
                },
            ),
            field,
        );
    }
    assert!(query(deps.as_ref(), mock_env(), QueryMsg::Config {}).is_err());
}

#[test]
fn update_policy_validates_and_applies() {
    let mut s = setup();
    for (policy, field) in bad_policies() {
        assert_invalid(s.as_admin(ExecuteMsg::UpdatePolicy { policy }), field);
    }
    let config: ConfigResponse = s.query(QueryMsg::Config {});
    assert_eq!(config.policy, Policy::default());

    let policy = Policy {
        rate_limit_count: 10,
        rate_limit_window_secs: 3600,
        strikes_before_quarantine: 5,
        max_request_ttl_secs: 7200,
        packet_timeout_secs: 900,
        max_chunk_bytes: 1024,
        max_history_chunks: 16,
        max_clock_skew_secs: 10,
        min_request_ttl_secs: 60,
        min_remaining_lifetime_secs: 20,
        incoming_per_partner_count: 100,
        incoming_per_remote_requester_count: 5,
        incoming_window_secs: 120,
        max_records_per_patient: 32,
        sweep_max_items: 10,
        finalise_grace_secs: 30,
        break_glass_window_secs: 0,
        break_glass_cosign_secs: 300,
        consent_default: ehr_protocol::consent::ConsentDecision::Deny,
    };
    let res = s
        .as_admin(ExecuteMsg::UpdatePolicy {
            policy: policy.clone(),
        })
        .unwrap();
    assert_action(&res, "update_policy");
    let config: ConfigResponse = s.query(QueryMsg::Config {});
    assert_eq!(config.policy, policy);
}

#[test]
fn migrate_records_the_version_and_refuses_other_contracts_and_downgrades() {
    let mut s = setup();
    let res = migrate(s.deps.as_mut(), mock_env(), MigrateMsg {}).unwrap();
    assert_action(&res, "migrate");
    let stored = |s: &Setup| cw2::get_contract_version(&s.deps.storage).unwrap();
    assert_eq!(stored(&s).contract, CONTRACT_NAME);

    let record = |s: &mut Setup, contract: &str, version: &str| {
        cw2::set_contract_version(&mut s.deps.storage, contract, version).unwrap();
        migrate(s.deps.as_mut(), mock_env(), MigrateMsg {})
    };
    record(&mut s, CONTRACT_NAME, "0.0.1").unwrap();
    assert_eq!(stored(&s).version, CONTRACT_VERSION_STR);
    assert!(matches!(
        record(&mut s, CONTRACT_NAME, "999.0.0"),
        Err(ContractError::Upgrade(UpgradeRefusal::Downgrade { .. }))
    ));
    assert!(matches!(
        record(&mut s, "crates.io:ehr-exchange", "0.0.1"),
        Err(ContractError::Upgrade(UpgradeRefusal::WrongContract { .. }))
    ));
}

#[test]
fn a_policy_stored_before_the_new_bounds_reads_with_their_defaults() {
    let v1 = r#"{"rate_limit_count":1,"rate_limit_window_secs":60,"strikes_before_quarantine":3,
        "max_request_ttl_secs":3600,"packet_timeout_secs":600,"max_ciphertext_bytes":65536}"#;
    let policy: Policy = from_json(v1.as_bytes()).unwrap();
    assert_eq!(
        policy,
        Policy {
            // The old ceiling reads as the largest chunk.
            max_chunk_bytes: 65536,
            ..Policy::default()
        }
    );
}

#[test]
fn a_clinician_stored_before_break_glass_reads_without_the_permission() {
    let v2 = r#"{"clinician_id":"dr-adams","signing_key":"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC",
        "allowed_purposes":["treatment"],"valid_from":null,"valid_until":null,"status":"active"}"#;
    let clinician: ehr_protocol::registry::Clinician = from_json(v2.as_bytes()).unwrap();
    assert!(!clinician.break_glass);
    assert_eq!(
        ehr_protocol::registry::Role::Privacy.as_str(),
        "privacy",
        "the privacy office's role"
    );
}
