//! Requester codes: stored by hash only, re-adding updates and reactivates.

use super::*;
use ehr_protocol::audit::AuditAction;
use ehr_protocol::registry::{CodeStatus, RequesterCode};
use ehr_protocol::signing::requester_code_hash;

fn code(s: &Setup, code_hash: &str) -> Option<RequesterCode> {
    s.query(QueryMsg::RequesterCode {
        code_hash: code_hash.to_string(),
    })
}

#[test]
fn add_update_revoke_and_reactivate() {
    let mut s = setup();
    let hash = requester_code_hash("HW-12345");
    let res = s
        .as_admin(ExecuteMsg::AddRequesterCode {
            code_hash: hash.clone(),
            role: Role::Request,
            label: "cardiology".to_string(),
        })
        .unwrap();
    assert_action(&res, "add_requester_code");
    assert_eq!(
        code(&s, &hash),
        Some(RequesterCode {
            code_hash: hash.clone(),
            role: Role::Request,
            status: CodeStatus::Active,
            label: "cardiology".to_string(),
        })
    );
    let entry = s.audit().pop().unwrap();
    assert_eq!(entry.action, AuditAction::RequesterCodeChanged);
    assert_eq!(entry.role, Some(Role::Request));

    let res = s
        .as_admin(ExecuteMsg::SetRequesterCodeStatus {
            code_hash: hash.clone(),
            status: CodeStatus::Revoked,
        })
        .unwrap();
    assert_action(&res, "set_requester_code_status");
    assert_eq!(attr(&res, "status"), "revoked");
    assert_eq!(code(&s, &hash).unwrap().status, CodeStatus::Revoked);

    // Re-adding updates role and label and reactivates.
    s.as_admin(ExecuteMsg::AddRequesterCode {
        code_hash: hash.clone(),
        role: Role::Reply,
        label: "records-office".to_string(),
    })
    .unwrap();
    assert_eq!(
        code(&s, &hash),
        Some(RequesterCode {
            code_hash: hash.clone(),
            role: Role::Reply,
            status: CodeStatus::Active,
            label: "records-office".to_string(),
        })
    );
    let codes: ehr_protocol::registry::RequesterCodesResponse = s.query(QueryMsg::RequesterCodes {
        start_after: None,
        limit: None,
    });
    assert_eq!(codes.codes.len(), 1);
}

#[test]
fn set_status_needs_an_existing_code() {
    let mut s = setup();
    let before = s.audit_len();
    assert!(matches!(
        s.as_admin(ExecuteMsg::SetRequesterCodeStatus {
            code_hash: "ef".repeat(32),
            status: CodeStatus::Active,
        }),
        Err(ContractError::UnknownRequesterCode)
    ));
    assert_eq!(code(&s, &"ef".repeat(32)), None);
    assert_eq!(s.audit_len(), before);
}

#[test]
fn malformed_hashes_and_labels_are_refused() {
    let mut s = setup();
    for bad in [
        "HW-12345".to_string(),
        "AB".repeat(32),
        "ab".repeat(31),
        "ab".repeat(33),
        "zz".repeat(32),
    ] {
        assert_invalid(
            s.as_admin(ExecuteMsg::AddRequesterCode {
                code_hash: bad.clone(),
                role: Role::Request,
                label: "x".to_string(),
            }),
            "code_hash",
        );
        assert_invalid(
            s.as_admin(ExecuteMsg::SetRequesterCodeStatus {
                code_hash: bad,
                status: CodeStatus::Revoked,
            }),
            "code_hash",
        );
    }
    for label in ["", "Dr Smith", &"l".repeat(65)] {
        assert_invalid(
            s.as_admin(ExecuteMsg::AddRequesterCode {
                code_hash: "ab".repeat(32),
                role: Role::Request,
                label: label.to_string(),
            }),
            "label",
        );
    }
    assert_eq!(code(&s, &"ab".repeat(32)), None);
}
