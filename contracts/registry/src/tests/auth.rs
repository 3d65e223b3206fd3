//! Who may send what: admin-only and exchange-only messages.

use super::*;
use cosmwasm_std::testing::{message_info, mock_dependencies, mock_env};
use ehr_protocol::error_code::ErrorCode;
use ehr_protocol::registry::{ConfigResponse, Policy};

fn admin_only_messages(s: &Setup) -> Vec<ExecuteMsg> {
    let peer = s.addr("peer");
    vec![
        ExecuteMsg::UpdateAdmin {
            admin: s.stranger.to_string(),
        },
        ExecuteMsg::SetExchange {
            exchange: s.stranger.to_string(),
        },
        ExecuteMsg::UpdatePolicy {
            policy: Policy::default(),
        },
        ExecuteMsg::RegisterPeer {
            peer: peer_input(&peer, 1, vec![Role::Request]),
        },
        ExecuteMsg::RotatePeerKeys {
            address: peer.to_string(),
            signing_key: signing_key(7),
            encryption_key: encryption_key(7),
        },
        ExecuteMsg::RevokePeer {
            address: peer.to_string(),
        },
        ExecuteMsg::ReleasePeer {
            address: peer.to_string(),
        },
        ExecuteMsg::RegisterClinician {
            clinician: clinician_input("dr-x", 3),
        },
        ExecuteMsg::RevokeClinician {
            clinician_id: "dr-y".to_string(),
        },
        ExecuteMsg::UpsertPartner {
            partner: partner_input("hospital-b", "connection-0", "wasm.contractb"),
        },
    ]
}

fn exchange_only_messages(s: &Setup) -> Vec<ExecuteMsg> {
    vec![
        ExecuteMsg::RecordStrike {
            address: s.addr("peer").to_string(),
            reason: ErrorCode::BadSignature,
        },
        ExecuteMsg::BindChannel {
            partner_id: "hospital-b".to_string(),
            channel_id: "channel-0".to_string(),
        },
        ExecuteMsg::UnbindChannel {
            channel_id: "channel-0".to_string(),
        },
    ]
}

#[test]
fn every_admin_message_is_refused_for_others() {
    let mut s = setup();
    // State the refused messages would change if they got through.
    let peer = s.register("peer", 1, vec![Role::Request]);
    s.as_admin(ExecuteMsg::RegisterClinician {
        clinician: clinician_input("dr-y", 4),
    })
    .unwrap();
    s.as_exchange(ExecuteMsg::RecordStrike {
        address: peer.to_string(),
        reason: ErrorCode::RateLimited { retry_after: 5 },
    })
    .unwrap();
    let config_before: ConfigResponse = s.query(QueryMsg::Config {});
    let peer_before = s.peer(&peer);
    let audit_before = s.audit_len();

    let others = [s.stranger.clone(), s.exchange.clone(), peer.clone()];
    let messages = admin_only_messages(&s);
    assert_eq!(messages.len(), 10);
    for sender in &others {
        for msg in messages.clone() {
            let result = s.exec(sender, msg.clone());
            assert!(
                matches!(result, Err(ContractError::Unauthorized)),
                "{msg:?} from {sender} gave {result:?}"
            );
        }
    }

    let config_after: ConfigResponse = s.query(QueryMsg::Config {});
    assert_eq!(config_after, config_before);
    assert_eq!(s.peer(&peer), peer_before);
    assert_eq!(s.audit_len(), audit_before);
    let partner: Option<ehr_protocol::registry::Partner> = s.query(QueryMsg::Partner {
        partner_id: "hospital-b".to_string(),
    });
    assert_eq!(partner, None);
}

#[test]
fn every_admin_message_is_accepted_from_the_admin() {
    let mut s = setup();
    // Make the messages that need existing state valid: a quarantined peer and a code.
    let peer = s.register("peer", 1, vec![Role::Request]);
    for _ in 0..3 {
        s.as_exchange(ExecuteMsg::RecordStrike {
            address: peer.to_string(),
            reason: ErrorCode::BadSignature,
        })
        .unwrap();
    }
    s.as_admin(ExecuteMsg::RegisterClinician {
        clinician: clinician_input("dr-y", 4),
    })
    .unwrap();

    // Release while the peer is still quarantined (revoking or re-registering would end
    // that), and hand the admin rights away last.
    let mut messages = admin_only_messages(&s);
    messages.sort_by_key(|msg| match msg {
        ExecuteMsg::ReleasePeer { .. } => 0,
        ExecuteMsg::UpdateAdmin { .. } => 2,
        _ => 1,
    });
    for msg in messages {
        s.as_admin(msg.clone())
            .unwrap_or_else(|e| panic!("{msg:?} refused: {e:?}"));
    }
    let config: ConfigResponse = s.query(QueryMsg::Config {});
    assert_eq!(config.admin, s.stranger);
}

#[test]
fn exchange_messages_are_refused_for_everyone_else_including_the_admin() {
    let mut s = setup();
    let peer = s.register("peer", 1, vec![Role::Request]);
    s.as_admin(ExecuteMsg::UpsertPartner {
        partner: partner_input("hospital-b", "connection-0", "wasm.contractb"),
    })
    .unwrap();
    let audit_before = s.audit_len();

    let others = [s.admin.clone(), s.stranger.clone(), peer.clone()];
    for sender in &others {
        for msg in exchange_only_messages(&s) {
            let result = s.exec(sender, msg.clone());
            assert!(
                matches!(result, Err(ContractError::Unauthorized)),
                "{msg:?} from {sender} gave {result:?}"
            );
        }
    }
    assert_eq!(s.peer(&peer).unwrap().strikes, 0);
    assert_eq!(s.audit_len(), audit_before);

    // The same messages pass from the exchange.
    for msg in exchange_only_messages(&s) {
        s.as_exchange(msg.clone())
            .unwrap_or_else(|e| panic!("{msg:?} refused: {e:?}"));
    }
    assert_eq!(s.peer(&peer).unwrap().strikes, 1);
}

#[test]
fn no_one_may_act_as_exchange_before_it_is_set() {
    let mut deps = mock_dependencies();
    let admin = deps.api.addr_make("admin");
    let exchange = deps.api.addr_make("exchange");
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
    .unwrap();
    for sender in [&admin, &exchange] {
        let result = execute(
            deps.as_mut(),
            mock_env(),
            message_info(sender, &[]),
            ExecuteMsg::UnbindChannel {
                channel_id: "channel-0".to_string(),
            },
        );
        assert!(matches!(result, Err(ContractError::Unauthorized)));
    }
}

#[test]
fn update_admin_moves_the_rights() {
    let mut s = setup();
    let new_admin = s.addr("multisig");
    let res = s
        .as_admin(ExecuteMsg::UpdateAdmin {
            admin: new_admin.to_string(),
        })
        .unwrap();
    assert_action(&res, "update_admin");
    let policy = Policy::default();
    assert!(matches!(
        s.as_admin(ExecuteMsg::UpdatePolicy {
            policy: policy.clone()
        }),
        Err(ContractError::Unauthorized)
    ));
    s.exec(&new_admin, ExecuteMsg::UpdatePolicy { policy })
        .unwrap();
    assert_invalid(
        s.exec(
            &new_admin,
            ExecuteMsg::UpdateAdmin {
                admin: "not an address".to_string(),
            },
        ),
        "admin",
    );
}

#[test]
fn set_exchange_moves_the_exchange_rights() {
    let mut s = setup();
    let new_exchange = s.addr("exchange-v2");
    let res = s
        .as_admin(ExecuteMsg::SetExchange {
            exchange: new_exchange.to_string(),
        })
        .unwrap();
    assert_action(&res, "set_exchange");
    let config: ConfigResponse = s.query(QueryMsg::Config {});
    assert_eq!(config.exchange, Some(new_exchange.clone()));
    let unbind = ExecuteMsg::UnbindChannel {
        channel_id: "channel-0".to_string(),
    };
    assert!(matches!(
        s.as_exchange(unbind.clone()),
        Err(ContractError::Unauthorized)
    ));
    s.exec(&new_exchange, unbind).unwrap();
    assert_invalid(
        s.as_admin(ExecuteMsg::SetExchange {
            exchange: "Bad Address".to_string(),
        }),
        "exchange",
    );
}
