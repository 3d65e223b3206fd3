//! Every registry change writes one audit entry with the expected action and agent.

use super::*;
use cosmwasm_std::testing::mock_env;
use ehr_protocol::audit::{AuditAction, AuditOutcome};
use ehr_protocol::error_code::ErrorCode;
use ehr_protocol::registry::Policy;

/// A message, its sender, its handler name and the audit entries (action, agent) it adds.
type Step = (ExecuteMsg, Addr, &'static str, Vec<(AuditAction, Addr)>);

#[test]
fn every_change_is_audited_with_its_action_and_agent() {
    let mut s = setup();
    let peer = s.addr("peer");
    let admin = s.admin.clone();
    let exchange = s.exchange.clone();

    let steps: Vec<Step> = vec![
        (
            ExecuteMsg::UpdatePolicy {
                policy: Policy {
                    strikes_before_quarantine: 2,
                    ..Policy::default()
                },
            },
            admin.clone(),
            "update_policy",
            vec![(AuditAction::PolicyChanged, admin.clone())],
        ),
        (
            ExecuteMsg::RegisterPeer {
                peer: peer_input(&peer, 1, vec![Role::Request]),
            },
            admin.clone(),
            "register_peer",
            vec![(AuditAction::PeerRegistered, admin.clone())],
        ),
        (
            ExecuteMsg::RotatePeerKeys {
                address: peer.to_string(),
                signing_key: signing_key(2),
                encryption_key: encryption_key(2),
            },
            admin.clone(),
            "rotate_peer_keys",
            vec![(AuditAction::PeerKeysRotated, admin.clone())],
        ),
        (
            ExecuteMsg::RecordStrike {
                address: peer.to_string(),
                reason: ErrorCode::Replay,
            },
            exchange.clone(),
            "record_strike",
            vec![(AuditAction::Strike, peer.clone())],
        ),
        (
            ExecuteMsg::RecordStrike {
                address: peer.to_string(),
                reason: ErrorCode::Replay,
            },
            exchange.clone(),
            "record_strike",
            vec![
                (AuditAction::Strike, peer.clone()),
                (AuditAction::Quarantine, peer.clone()),
            ],
        ),
        (
            ExecuteMsg::ReleasePeer {
                address: peer.to_string(),
            },
            admin.clone(),
            "release_peer",
            vec![(AuditAction::Release, admin.clone())],
        ),
        (
            ExecuteMsg::RevokePeer {
                address: peer.to_string(),
            },
            admin.clone(),
            "revoke_peer",
            vec![(AuditAction::PeerRevoked, admin.clone())],
        ),
        (
            ExecuteMsg::RegisterClinician {
                clinician: clinician_input("ward-3", 5),
            },
            admin.clone(),
            "register_clinician",
            vec![(AuditAction::ClinicianChanged, admin.clone())],
        ),
        (
            ExecuteMsg::RevokeClinician {
                clinician_id: "ward-3".to_string(),
            },
            admin.clone(),
            "revoke_clinician",
            vec![(AuditAction::ClinicianChanged, admin.clone())],
        ),
        (
            ExecuteMsg::UpsertPartner {
                partner: partner_input("hospital-b", "connection-0", "wasm.cosmwasm1b"),
            },
            admin.clone(),
            "upsert_partner",
            vec![(AuditAction::PartnerChanged, admin.clone())],
        ),
        (
            ExecuteMsg::BindChannel {
                partner_id: "hospital-b".to_string(),
                channel_id: "channel-0".to_string(),
            },
            exchange.clone(),
            "bind_channel",
            vec![(AuditAction::ChannelOpened, exchange.clone())],
        ),
        (
            ExecuteMsg::UnbindChannel {
                channel_id: "channel-0".to_string(),
            },
            exchange.clone(),
            "unbind_channel",
            vec![(AuditAction::ChannelClosed, exchange.clone())],
        ),
        (
            ExecuteMsg::SetExchange {
                exchange: s.addr("exchange-v2").to_string(),
            },
            admin.clone(),
            "set_exchange",
            vec![(AuditAction::AdminChanged, admin.clone())],
        ),
        (
            ExecuteMsg::UpdateAdmin {
                admin: s.addr("multisig").to_string(),
            },
            admin.clone(),
            "update_admin",
            vec![(AuditAction::AdminChanged, admin.clone())],
        ),
    ];

    for (msg, sender, handler, expected) in steps {
        let before = s.audit_len();
        let res = s
            .exec(&sender, msg.clone())
            .unwrap_or_else(|e| panic!("{msg:?}: {e:?}"));
        assert_action(&res, handler);
        let audit = s.audit();
        let new: Vec<(AuditAction, Addr)> = audit[before..]
            .iter()
            .map(|e| (e.action, e.agent.clone().expect("agent")))
            .collect();
        assert_eq!(new, expected, "audit of {handler}");
        for entry in &audit[before..] {
            assert_eq!(entry.time, mock_env().block.time);
            let rejected = entry.action == AuditAction::Strike;
            assert_eq!(
                entry.outcome == AuditOutcome::Rejected,
                rejected,
                "{entry:?}"
            );
        }
    }
}

#[test]
fn refused_messages_write_nothing() {
    let mut s = setup();
    let before = s.audit();
    let peer = s.addr("peer");
    let mut bad = peer_input(&peer, 1, vec![Role::Request]);
    bad.signing_key = Binary::from(vec![0u8; 3]);
    assert!(s.as_admin(ExecuteMsg::RegisterPeer { peer: bad }).is_err());
    assert!(s
        .as_admin(ExecuteMsg::ReleasePeer {
            address: peer.to_string()
        })
        .is_err());
    assert!(s
        .as_admin(ExecuteMsg::UpdatePolicy {
            policy: Policy {
                rate_limit_count: 0,
                ..Policy::default()
            }
        })
        .is_err());
    assert_eq!(s.audit(), before);
}
