use super::support::setup;
use crate::contract::{migrate, MigrateMsg, CONTRACT_NAME, CONTRACT_VERSION};
use crate::error::ContractError;
use cosmwasm_std::testing::mock_env;
use cosmwasm_std::Storage;
use cw_storage_plus::Item;
use ehr_protocol::upgrade::UpgradeRefusal;

#[test]
fn instantiate_records_the_cw2_version_and_migrate_keeps_it() {
    let mut deps = setup(true);
    let recorded = cw2::get_contract_version(&deps.storage).unwrap();
    assert_eq!(
        (recorded.contract.as_str(), recorded.version.as_str()),
        (CONTRACT_NAME, CONTRACT_VERSION)
    );
    migrate(deps.as_mut(), mock_env(), MigrateMsg {}).unwrap();
}

#[test]
fn migrate_refuses_another_contracts_state_and_a_downgrade() {
    let mut deps = setup(true);
    cw2::set_contract_version(&mut deps.storage, "crates.io:registry", "0.1.0").unwrap();
    assert!(matches!(
        migrate(deps.as_mut(), mock_env(), MigrateMsg {}),
        Err(ContractError::Upgrade(UpgradeRefusal::WrongContract { .. }))
    ));
    cw2::set_contract_version(&mut deps.storage, CONTRACT_NAME, "999.0.0").unwrap();
    let refused = migrate(deps.as_mut(), mock_env(), MigrateMsg {}).unwrap_err();
    assert!(matches!(
        refused,
        ContractError::Upgrade(UpgradeRefusal::Downgrade { .. })
    ));
    assert!(refused
        .to_string()
        .contains("deploy version 999.0.0 or newer"));
    // Nothing was rewritten by the refusals.
    assert_eq!(
        cw2::get_contract_version(&deps.storage).unwrap().version,
        "999.0.0"
    );
}

#[test]
fn migrate_reads_the_first_releases_own_version_record() {
    let mut deps = setup(true);
    deps.storage.remove(b"contract_info");
    Item::<(String, String)>::new("contract_version")
        .save(
            &mut deps.storage,
            &(CONTRACT_NAME.to_string(), "0.0.1".to_string()),
        )
        .unwrap();
    let response = migrate(deps.as_mut(), mock_env(), MigrateMsg {}).unwrap();
    assert!(response
        .attributes
        .iter()
        .any(|a| a.key == "from_version" && a.value == "0.0.1"));
    assert_eq!(
        cw2::get_contract_version(&deps.storage).unwrap().version,
        CONTRACT_VERSION
    );
}
