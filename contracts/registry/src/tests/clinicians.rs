//! Clinicians: registered by the admin with a public key, purposes and validity; key
//! rotation by re-registering; revocation at once. No name is stored.

use super::*;
use cosmwasm_std::Timestamp;
use ehr_protocol::audit::AuditAction;
use ehr_protocol::registry::{Clinician, ClinicianStatus};
use ehr_protocol::ErrorCode;

fn clinician(s: &Setup, id: &str) -> Option<Clinician> {
    s.query(QueryMsg::Clinician {
        clinician_id: id.to_string(),
    })
}

#[test]
fn register_rotate_revoke_and_revive() {
    let mut s = setup();
    let res = s
        .as_admin(ExecuteMsg::RegisterClinician {
            clinician: clinician_input("dr-adams", 1),
        })
        .unwrap();
    assert_action(&res, "register_clinician");
    assert_eq!(attr(&res, "created"), "true");
    let registered = clinician(&s, "dr-adams").unwrap();
    assert_eq!(registered.status, ClinicianStatus::Active);
    assert_eq!(registered.signing_key, signing_key(1));
    let entry = s.audit().pop().unwrap();
    assert_eq!(entry.action, AuditAction::ClinicianChanged);
    assert_eq!(entry.clinician_id.as_deref(), Some("dr-adams"));

    // Rotation: a new key replaces the old one.
    let res = s
        .as_admin(ExecuteMsg::RegisterClinician {
            clinician: clinician_input("dr-adams", 2),
        })
        .unwrap();
    assert_eq!(attr(&res, "created"), "false");
    assert_eq!(
        clinician(&s, "dr-adams").unwrap().signing_key,
        signing_key(2)
    );

    let res = s
        .as_admin(ExecuteMsg::RevokeClinician {
            clinician_id: "dr-adams".to_string(),
        })
        .unwrap();
    assert_action(&res, "revoke_clinician");
    let revoked = clinician(&s, "dr-adams").unwrap();
    assert_eq!(revoked.status, ClinicianStatus::Revoked);
    let now = mock_env().block.time;
    assert_eq!(
        revoked.may_request(PurposeOfUse::Treatment, now),
        Err(ErrorCode::KeyRevoked)
    );

    // Registering again revives, audited.
    s.as_admin(ExecuteMsg::RegisterClinician {
        clinician: clinician_input("dr-adams", 3),
    })
    .unwrap();
    assert_eq!(
        clinician(&s, "dr-adams").unwrap().status,
        ClinicianStatus::Active
    );
}

#[test]
fn purposes_and_validity_bound_what_a_clinician_may_request() {
    let now = Timestamp::from_seconds(1_000);
    let mut input = clinician_input("dr-baker", 1);
    input.valid_from = Some(Timestamp::from_seconds(500));
    input.valid_until = Some(Timestamp::from_seconds(2_000));
    let c = Clinician::registered(input);
    assert_eq!(c.may_request(PurposeOfUse::Treatment, now), Ok(()));
    assert_eq!(
        c.may_request(PurposeOfUse::Payment, now),
        Err(ErrorCode::NotAuthorized)
    );
    assert_eq!(
        c.may_request(PurposeOfUse::Treatment, Timestamp::from_seconds(2_000)),
        Err(ErrorCode::NotAuthorized)
    );
    assert_eq!(
        c.may_request(PurposeOfUse::Treatment, Timestamp::from_seconds(499)),
        Err(ErrorCode::NotAuthorized)
    );
}

#[test]
fn malformed_clinicians_are_refused_and_unknown_ones_cannot_be_revoked() {
    let mut s = setup();
    let mut bad_key = clinician_input("dr-x", 1);
    bad_key.signing_key = Binary::from(vec![1u8; 10]);
    assert_invalid(
        s.as_admin(ExecuteMsg::RegisterClinician { clinician: bad_key }),
        "signing_key",
    );
    let mut no_purpose = clinician_input("dr-x", 1);
    no_purpose.allowed_purposes.clear();
    assert_invalid(
        s.as_admin(ExecuteMsg::RegisterClinician {
            clinician: no_purpose,
        }),
        "allowed_purposes",
    );
    assert_invalid(
        s.as_admin(ExecuteMsg::RegisterClinician {
            clinician: clinician_input("dr x", 1),
        }),
        "clinician_id",
    );
    let mut inverted = clinician_input("dr-x", 1);
    inverted.valid_from = Some(Timestamp::from_seconds(10));
    inverted.valid_until = Some(Timestamp::from_seconds(5));
    assert_invalid(
        s.as_admin(ExecuteMsg::RegisterClinician {
            clinician: inverted,
        }),
        "valid_until",
    );
    assert!(matches!(
        s.as_admin(ExecuteMsg::RevokeClinician {
            clinician_id: "nobody".to_string(),
        }),
        Err(ContractError::UnknownClinician)
    ));
    assert!(clinician(&s, "dr-x").is_none());
}
