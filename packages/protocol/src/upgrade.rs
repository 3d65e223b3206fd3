//! Which code may take over a contract's state: the same contract, at the same or a newer
//! version. Both contracts record their name and version with cw2 and run this check in
//! `migrate`, so an admin cannot point a chain's exchange at the registry's code (or an old
//! build) by mistake.

use cosmwasm_std::{StdResult, Storage};
use cw2::ContractVersion;
use cw_storage_plus::Item;
use thiserror::Error;

/// Why a migration is refused. Messages name the cause and what to deploy instead.
#[derive(Error, Debug, PartialEq, Eq)]
pub enum UpgradeRefusal {
    #[error("migrate refused: this state belongs to {found}, not {expected}; migrate it with {found}'s code")]
    WrongContract { expected: String, found: String },
    #[error("migrate refused: cannot go from version {from} down to {to}; deploy version {from} or newer")]
    Downgrade { from: String, to: String },
    #[error("migrate refused: version {0:?} is not semver (major.minor.patch)")]
    BadVersion(String),
    #[error(
        "migrate refused: no contract version is recorded; this is not an EHR exchange contract"
    )]
    NoVersion,
}

/// Before cw2, the first release kept its own record under this key: the registry as
/// `{contract, version}`, the exchange as a `[name, version]` pair.
const PRE_CW2_KEY: &str = "contract_version";

/// The recorded name and version: cw2's record, or the first release's own.
pub fn stored_version(storage: &dyn Storage) -> Result<ContractVersion, UpgradeRefusal> {
    if let Ok(version) = cw2::get_contract_version(storage) {
        return Ok(version);
    }
    let legacy = |r: StdResult<Option<ContractVersion>>| r.ok().flatten();
    if let Some(version) = legacy(Item::<ContractVersion>::new(PRE_CW2_KEY).may_load(storage)) {
        return Ok(version);
    }
    match Item::<(String, String)>::new(PRE_CW2_KEY).may_load(storage) {
        Ok(Some((contract, version))) => Ok(ContractVersion { contract, version }),
        _ => Err(UpgradeRefusal::NoVersion),
    }
}

/// Refuses another contract or a downgrade; otherwise records `name` and `version` (and
/// drops the pre-cw2 record). Returns the version migrated from.
pub fn migrate_version(
    storage: &mut dyn Storage,
    name: &str,
    version: &str,
) -> Result<String, UpgradeRefusal> {
    let stored = stored_version(storage)?;
    check_upgrade(&stored, name, version)?;
    cw2::set_contract_version(storage, name, version).map_err(|_| UpgradeRefusal::NoVersion)?;
    storage.remove(PRE_CW2_KEY.as_bytes());
    Ok(stored.version)
}

/// The rule alone: same contract name, and `version` not older than the stored one.
pub fn check_upgrade(
    stored: &ContractVersion,
    name: &str,
    version: &str,
) -> Result<(), UpgradeRefusal> {
    if stored.contract != name {
        return Err(UpgradeRefusal::WrongContract {
            expected: name.to_string(),
            found: stored.contract.clone(),
        });
    }
    let parse =
        |v: &str| semver::Version::parse(v).map_err(|_| UpgradeRefusal::BadVersion(v.to_string()));
    if parse(version)? < parse(&stored.version)? {
        return Err(UpgradeRefusal::Downgrade {
            from: stored.version.clone(),
            to: version.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosmwasm_std::testing::MockStorage;

    fn recorded(contract: &str, version: &str) -> ContractVersion {
        ContractVersion {
            contract: contract.into(),
            version: version.into(),
        }
    }

    #[test]
    fn same_contract_same_or_newer_version_passes() {
        let stored = recorded("crates.io:exchange", "0.1.0");
        assert_eq!(
            check_upgrade(&stored, "crates.io:exchange", "0.1.0"),
            Ok(())
        );
        assert_eq!(
            check_upgrade(&stored, "crates.io:exchange", "0.10.0"),
            Ok(())
        );
    }

    #[test]
    fn other_contract_downgrade_and_garbage_are_refused() {
        let stored = recorded("crates.io:registry", "0.2.0");
        assert!(matches!(
            check_upgrade(&stored, "crates.io:exchange", "0.2.0"),
            Err(UpgradeRefusal::WrongContract { .. })
        ));
        assert!(matches!(
            check_upgrade(&stored, "crates.io:registry", "0.1.9"),
            Err(UpgradeRefusal::Downgrade { .. })
        ));
        assert!(matches!(
            check_upgrade(&stored, "crates.io:registry", "1.2"),
            Err(UpgradeRefusal::BadVersion(_))
        ));
        assert!(matches!(
            check_upgrade(
                &recorded("crates.io:registry", "x"),
                "crates.io:registry",
                "1.0.0"
            ),
            Err(UpgradeRefusal::BadVersion(_))
        ));
    }

    #[test]
    fn first_release_records_are_read_and_replaced_by_cw2() {
        let mut storage = MockStorage::new();
        assert_eq!(stored_version(&storage), Err(UpgradeRefusal::NoVersion));
        Item::<(String, String)>::new(PRE_CW2_KEY)
            .save(
                &mut storage,
                &("crates.io:ehr-exchange".into(), "0.1.0".into()),
            )
            .unwrap();
        assert_eq!(
            stored_version(&storage).unwrap(),
            recorded("crates.io:ehr-exchange", "0.1.0")
        );
        let from = migrate_version(&mut storage, "crates.io:ehr-exchange", "0.2.0").unwrap();
        assert_eq!(from, "0.1.0");
        assert_eq!(
            cw2::get_contract_version(&storage).unwrap(),
            recorded("crates.io:ehr-exchange", "0.2.0")
        );
        assert!(storage.get(PRE_CW2_KEY.as_bytes()).is_none());

        let mut storage = MockStorage::new();
        Item::<ContractVersion>::new(PRE_CW2_KEY)
            .save(&mut storage, &recorded("crates.io:registry", "0.1.0"))
            .unwrap();
        assert_eq!(
            stored_version(&storage).unwrap(),
            recorded("crates.io:registry", "0.1.0")
        );
    }
}
