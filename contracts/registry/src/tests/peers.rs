//! Peer registration, keys, revocation, strikes, quarantine and release.

use super::*;
use cosmwasm_std::Timestamp;
use ehr_protocol::audit::{AuditAction, AuditOutcome};
use ehr_protocol::error_code::ErrorCode;
use ehr_protocol::registry::{PeerStatus, Policy};

fn strike(s: &mut Setup, peer: &Addr, reason: ErrorCode) -> Response {
    s.as_exchange(ExecuteMsg::RecordStrike {
        address: peer.to_string(),
        reason,
    })
    .expect("strike")
}

#[test]
fn register_stores_an_active_peer_with_sorted_unique_roles() {
    let mut s = setup();
    let address = s.addr("peer");
    let mut input = peer_input(&address, 1, vec![Role::Reply, Role::Store, Role::Reply]);
    input.valid_from = Some(Timestamp::from_seconds(100));
    input.valid_until = Some(Timestamp::from_seconds(200));
    let res = s
        .as_admin(ExecuteMsg::RegisterPeer { peer: input })
        .unwrap();
    assert_action(&res, "register_peer");
    assert_eq!(attr(&res, "roles"), "store,reply");
    assert_eq!(attr(&res, "replaced"), "false");

    let peer = s.peer(&address).expect("registered");
    assert_eq!(
        peer,
        Peer {
            address: address.clone(),
            signing_key: signing_key(1),
            encryption_key: encryption_key(1),
            device_id: "aa-bb-cc-dd-ee-ff".to_string(),
            roles: vec![Role::Store, Role::Reply],
            status: PeerStatus::Active,
            valid_from: Some(Timestamp::from_seconds(100)),
            valid_until: Some(Timestamp::from_seconds(200)),
            strikes: 0,
        }
    );
}

#[test]
fn register_refuses_malformed_input() {
    let mut s = setup();
    let address = s.addr("peer");
    let base = peer_input(&address, 1, vec![Role::Request]);

    let mut bad = base.clone();
    bad.address = "not-an-address".to_string();
    assert_invalid(
        s.as_admin(ExecuteMsg::RegisterPeer { peer: bad }),
        "address",
    );

    let mut bad = base.clone();
    bad.signing_key = Binary::from(vec![4u8; 65]);
    assert_invalid(
        s.as_admin(ExecuteMsg::RegisterPeer { peer: bad }),
        "signing_key",
    );

    let mut bad = base.clone();
    let mut key = signing_key(1).to_vec();
    key[0] = 5;
    bad.signing_key = Binary::from(key);
    assert_invalid(
        s.as_admin(ExecuteMsg::RegisterPeer { peer: bad }),
        "signing_key",
    );

    let mut bad = base.clone();
    bad.encryption_key = Binary::from(vec![1u8; 31]);
    assert_invalid(
        s.as_admin(ExecuteMsg::RegisterPeer { peer: bad }),
        "encryption_key",
    );

    for device_id in ["", "aa bb", &"a".repeat(65)] {
        let mut bad = base.clone();
        bad.device_id = device_id.to_string();
        assert_invalid(
            s.as_admin(ExecuteMsg::RegisterPeer { peer: bad }),
            "device_id",
        );
    }

    let mut bad = base.clone();
    bad.roles = vec![];
    assert_invalid(s.as_admin(ExecuteMsg::RegisterPeer { peer: bad }), "roles");

    for (from, until) in [(200, 100), (100, 100)] {
        let mut bad = base.clone();
        bad.valid_from = Some(Timestamp::from_seconds(from));
        bad.valid_until = Some(Timestamp::from_seconds(until));
        assert_invalid(
            s.as_admin(ExecuteMsg::RegisterPeer { peer: bad }),
            "valid_until",
        );
    }

    assert_eq!(s.peer(&address), None);
    // Only one-sided windows are fine.
    let mut ok = base;
    ok.valid_until = Some(Timestamp::from_seconds(100));
    s.as_admin(ExecuteMsg::RegisterPeer { peer: ok }).unwrap();
    assert!(s.peer(&address).is_some());
}

#[test]
fn strikes_quarantine_at_the_threshold_and_release_resets() {
    let mut s = setup();
    let peer = s.register("peer", 1, vec![Role::Request]);
    let threshold = Policy::default().strikes_before_quarantine;
    assert_eq!(threshold, 3);

    for n in 1..threshold {
        let res = strike(&mut s, &peer, ErrorCode::RateLimited { retry_after: 30 });
        assert_action(&res, "record_strike");
        assert_eq!(attr(&res, "quarantined"), "false");
        assert_eq!(attr(&res, "reason"), "RateLimited");
        let stored = s.peer(&peer).unwrap();
        assert_eq!(stored.strikes, n);
        assert_eq!(stored.status, PeerStatus::Active);
    }
    let res = strike(&mut s, &peer, ErrorCode::BadSignature);
    assert_eq!(attr(&res, "quarantined"), "true");
    let stored = s.peer(&peer).unwrap();
    assert_eq!(stored.strikes, threshold);
    assert_eq!(stored.status, PeerStatus::Quarantined);

    // The last two entries: the strike, then the quarantine, both naming the peer.
    let audit = s.audit();
    let [.., strike_entry, quarantine_entry] = audit.as_slice() else {
        panic!("audit too short")
    };
    assert_eq!(strike_entry.action, AuditAction::Strike);
    assert_eq!(strike_entry.outcome, AuditOutcome::Rejected);
    assert_eq!(strike_entry.reason, Some(ErrorCode::BadSignature));
    assert_eq!(strike_entry.agent, Some(peer.clone()));
    assert_eq!(quarantine_entry.action, AuditAction::Quarantine);
    assert_eq!(quarantine_entry.reason, Some(ErrorCode::BadSignature));
    assert_eq!(quarantine_entry.agent, Some(peer.clone()));

    // Strikes keep counting while quarantined, without a second quarantine entry.
    let before = s.audit_len();
    let res = strike(&mut s, &peer, ErrorCode::PeerQuarantined);
    assert_eq!(attr(&res, "quarantined"), "false");
    assert_eq!(s.peer(&peer).unwrap().strikes, threshold + 1);
    assert_eq!(s.peer(&peer).unwrap().status, PeerStatus::Quarantined);
    assert_eq!(s.audit_len(), before + 1);

    let res = s
        .as_admin(ExecuteMsg::ReleasePeer {
            address: peer.to_string(),
        })
        .unwrap();
    assert_action(&res, "release_peer");
    let stored = s.peer(&peer).unwrap();
    assert_eq!(stored.status, PeerStatus::Active);
    assert_eq!(stored.strikes, 0);
    let last = s.audit().pop().unwrap();
    assert_eq!(last.action, AuditAction::Release);
    assert_eq!(last.agent, Some(s.admin.clone()));

    // After release it takes the full threshold again.
    strike(&mut s, &peer, ErrorCode::BadSignature);
    assert_eq!(s.peer(&peer).unwrap().status, PeerStatus::Active);
}

#[test]
fn threshold_follows_the_policy() {
    let mut s = setup();
    let peer = s.register("peer", 1, vec![Role::Request]);
    s.as_admin(ExecuteMsg::UpdatePolicy {
        policy: Policy {
            strikes_before_quarantine: 1,
            ..Policy::default()
        },
    })
    .unwrap();
    let res = strike(&mut s, &peer, ErrorCode::NotAuthorized);
    assert_eq!(attr(&res, "quarantined"), "true");
    assert_eq!(s.peer(&peer).unwrap().status, PeerStatus::Quarantined);
}

#[test]
fn strike_on_a_revoked_peer_counts_but_does_not_quarantine() {
    let mut s = setup();
    let peer = s.register("peer", 1, vec![Role::Request]);
    s.as_admin(ExecuteMsg::RevokePeer {
        address: peer.to_string(),
    })
    .unwrap();
    for _ in 0..5 {
        strike(&mut s, &peer, ErrorCode::KeyRevoked);
    }
    let stored = s.peer(&peer).unwrap();
    assert_eq!(stored.status, PeerStatus::Revoked);
    assert_eq!(stored.strikes, 5);
    assert!(matches!(
        s.as_admin(ExecuteMsg::ReleasePeer {
            address: peer.to_string()
        }),
        Err(ContractError::NotQuarantined)
    ));
}

#[test]
fn strike_and_release_need_a_registered_peer() {
    let mut s = setup();
    let ghost = s.addr("ghost");
    assert!(matches!(
        s.as_exchange(ExecuteMsg::RecordStrike {
            address: ghost.to_string(),
            reason: ErrorCode::BadSignature,
        }),
        Err(ContractError::UnknownPeer)
    ));
    assert!(matches!(
        s.as_exchange(ExecuteMsg::RecordStrike {
            address: "garbage".to_string(),
            reason: ErrorCode::BadSignature,
        }),
        Err(ContractError::UnknownPeer)
    ));
    for msg in [
        ExecuteMsg::ReleasePeer {
            address: ghost.to_string(),
        },
        ExecuteMsg::RevokePeer {
            address: ghost.to_string(),
        },
        ExecuteMsg::RotatePeerKeys {
            address: ghost.to_string(),
            signing_key: signing_key(2),
            encryption_key: encryption_key(2),
        },
    ] {
        assert!(matches!(s.as_admin(msg), Err(ContractError::UnknownPeer)));
    }
    assert_eq!(s.peer(&ghost), None);
}

#[test]
fn release_refuses_a_peer_that_is_not_quarantined() {
    let mut s = setup();
    let peer = s.register("peer", 1, vec![Role::Request]);
    strike(&mut s, &peer, ErrorCode::BadSignature);
    assert!(matches!(
        s.as_admin(ExecuteMsg::ReleasePeer {
            address: peer.to_string()
        }),
        Err(ContractError::NotQuarantined)
    ));
    // Strikes are not cleared by the refused release.
    assert_eq!(s.peer(&peer).unwrap().strikes, 1);
}

#[test]
fn re_registering_replaces_keys_and_roles_keeps_strikes_and_revives_a_revoked_peer() {
    let mut s = setup();
    let peer = s.register("peer", 1, vec![Role::Request]);
    strike(&mut s, &peer, ErrorCode::BadSignature);

    let res = s
        .as_admin(ExecuteMsg::RegisterPeer {
            peer: peer_input(&peer, 2, vec![Role::Reply]),
        })
        .unwrap();
    assert_eq!(attr(&res, "replaced"), "true");
    let stored = s.peer(&peer).unwrap();
    assert_eq!(stored.status, PeerStatus::Active);
    assert_eq!(stored.strikes, 1, "re-registering does not wipe strikes");
    assert_eq!(stored.signing_key, signing_key(2));
    assert_eq!(stored.roles, vec![Role::Reply]);

    // A revoked peer comes back by re-registration (an admin decision; quarantine is not).
    s.as_admin(ExecuteMsg::RevokePeer {
        address: peer.to_string(),
    })
    .unwrap();
    assert_eq!(s.peer(&peer).unwrap().status, PeerStatus::Revoked);
    s.register("peer", 3, vec![Role::Reply]);
    assert_eq!(s.peer(&peer).unwrap().status, PeerStatus::Active);
}

#[test]
fn rotate_replaces_both_keys_and_keeps_status_and_strikes() {
    let mut s = setup();
    let peer = s.register("peer", 1, vec![Role::Store]);
    strike(&mut s, &peer, ErrorCode::BadSignature);
    let res = s
        .as_admin(ExecuteMsg::RotatePeerKeys {
            address: peer.to_string(),
            signing_key: signing_key(8),
            encryption_key: encryption_key(8),
        })
        .unwrap();
    assert_action(&res, "rotate_peer_keys");
    let stored = s.peer(&peer).unwrap();
    assert_eq!(stored.signing_key, signing_key(8));
    assert_eq!(stored.encryption_key, encryption_key(8));
    assert_eq!(stored.strikes, 1);
    assert_eq!(stored.status, PeerStatus::Active);
    assert_eq!(
        s.audit().pop().unwrap().action,
        AuditAction::PeerKeysRotated
    );
}

#[test]
fn rotate_refuses_malformed_keys_and_keeps_the_old_ones() {
    let mut s = setup();
    let peer = s.register("peer", 1, vec![Role::Store]);
    assert_invalid(
        s.as_admin(ExecuteMsg::RotatePeerKeys {
            address: peer.to_string(),
            signing_key: Binary::from(vec![2u8; 32]),
            encryption_key: encryption_key(8),
        }),
        "signing_key",
    );
    assert_invalid(
        s.as_admin(ExecuteMsg::RotatePeerKeys {
            address: peer.to_string(),
            signing_key: signing_key(8),
            encryption_key: Binary::from(vec![8u8; 33]),
        }),
        "encryption_key",
    );
    let stored = s.peer(&peer).unwrap();
    assert_eq!(stored.signing_key, signing_key(1));
    assert_eq!(stored.encryption_key, encryption_key(1));
}

#[test]
fn revoke_sets_revoked() {
    let mut s = setup();
    let peer = s.register("peer", 1, vec![Role::Store]);
    let res = s
        .as_admin(ExecuteMsg::RevokePeer {
            address: peer.to_string(),
        })
        .unwrap();
    assert_action(&res, "revoke_peer");
    assert_eq!(s.peer(&peer).unwrap().status, PeerStatus::Revoked);
    assert_eq!(s.audit().pop().unwrap().action, AuditAction::PeerRevoked);
}

#[test]
fn re_registering_a_quarantined_peer_neither_releases_it_nor_forgets_its_strikes() {
    let mut s = setup();
    let peer = s.register("peer", 1, vec![Role::Request]);
    let threshold = Policy::default().strikes_before_quarantine;
    for _ in 0..threshold {
        strike(&mut s, &peer, ErrorCode::BadSignature);
    }
    assert_eq!(s.peer(&peer).unwrap().status, PeerStatus::Quarantined);

    // The attack: the same address registered again, with fresh keys.
    let res = s
        .as_admin(ExecuteMsg::RegisterPeer {
            peer: peer_input(&peer, 9, vec![Role::Request]),
        })
        .unwrap();
    assert_eq!(attr(&res, "replaced"), "true");
    let stored = s.peer(&peer).unwrap();
    assert_eq!(
        stored.status,
        PeerStatus::Quarantined,
        "only ReleasePeer releases"
    );
    assert_eq!(stored.strikes, threshold, "strikes survive re-registration");
    assert_eq!(stored.signing_key, signing_key(9), "the new keys are taken");
    assert!(
        !s.audit().iter().any(|e| e.action == AuditAction::Release),
        "no release without ReleasePeer"
    );

    // ReleasePeer still works, and is what resets the strikes.
    s.as_admin(ExecuteMsg::ReleasePeer {
        address: peer.to_string(),
    })
    .unwrap();
    let stored = s.peer(&peer).unwrap();
    assert_eq!(stored.status, PeerStatus::Active);
    assert_eq!(stored.strikes, 0);
}
