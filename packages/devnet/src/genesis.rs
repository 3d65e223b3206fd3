//! The edits made to a chain's genesis after `collect-gentxs`: the same staking lock and
//! permissions as `scripts/devnet.sh`'s `init_chain`, and slashing for a small private
//! network.
//!
//! - Staking locked by x/circuit from genesis: [`STAKING_LOCKED_MSGS`] are disabled (the
//!   ante handler refuses them as top-level messages, the message router nested ones:
//!   authz, contract sub-messages, proposals). The gentxs still bond the validators,
//!   because genutil delivers them at InitChain before circuit's InitGenesis fills its
//!   list. The admin is the circuit's super admin, to lift the breaker when the hospital
//!   adds a validator of its own (relayer-config/DEVNET.md, "Who can bond").
//! - Code upload and instantiation: AnyOfAddresses [admin] (or Everybody on request).
//! - Short unbonding (Hermes' trusting period stays below it) and short governance votes.
//! - Slashing: see [`crate::config::Slashing`].

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};

use crate::config::{parse_duration, Chain, UploadAccess};

/// The staking messages that create a validator or add bonded power.
pub const STAKING_LOCKED_MSGS: [&str; 4] = [
    "/cosmos.staking.v1beta1.MsgCreateValidator",
    "/cosmos.staking.v1beta1.MsgDelegate",
    "/cosmos.staking.v1beta1.MsgBeginRedelegate",
    "/cosmos.staking.v1beta1.MsgCancelUnbondingDelegation",
];

/// Applies the devnet's edits to `genesis` (the JSON of `config/genesis.json`).
pub fn apply(genesis: &mut Value, chain: &Chain, admin: &str) -> Result<()> {
    let secs = |field: &str, text: &str| -> Result<Value> {
        let d = parse_duration(text).map_err(|e| anyhow!("{field}: {e}"))?;
        Ok(json!(format!("{}s", d.as_secs().max(1))))
    };
    let app = genesis
        .get_mut("app_state")
        .ok_or_else(|| anyhow!("genesis has no app_state"))?;

    let staking = params(app, "staking")?;
    staking["unbonding_time"] = secs("unbonding_time", &chain.unbonding_time)?;
    staking["bond_denom"] = json!(chain.bond_denom);

    let s = &chain.slashing;
    let slashing = params(app, "slashing")?;
    slashing["signed_blocks_window"] = json!(s.signed_blocks_window.to_string());
    slashing["min_signed_per_window"] = json!(percent_dec(s.min_signed_percent));
    slashing["downtime_jail_duration"] =
        secs("slashing.downtime_jail_duration", &s.downtime_jail_duration)?;
    slashing["slash_fraction_downtime"] = json!(percent_dec(s.slash_downtime_percent));
    slashing["slash_fraction_double_sign"] = json!(percent_dec(s.slash_double_sign_percent));

    let wasm = params(app, "wasm")?;
    let (upload, instantiate) = match chain.upload {
        UploadAccess::Admin => (
            json!({"permission": "AnyOfAddresses", "addresses": [admin]}),
            "AnyOfAddresses",
        ),
        UploadAccess::Everybody => (
            json!({"permission": "Everybody", "addresses": []}),
            "Everybody",
        ),
    };
    wasm["code_upload_access"] = upload;
    wasm["instantiate_default_permission"] = json!(instantiate);

    let gov = params(app, "gov")?;
    gov["voting_period"] = secs("voting_period", &chain.voting_period)?;
    gov["expedited_voting_period"] =
        secs("expedited_voting_period", &chain.expedited_voting_period)?;
    for deposit in ["min_deposit", "expedited_min_deposit"] {
        if let Some(coins) = gov.get_mut(deposit).and_then(Value::as_array_mut) {
            for coin in coins {
                coin["denom"] = json!(chain.bond_denom);
            }
        }
    }

    let circuit = app
        .get_mut("circuit")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow!("genesis has no app_state.circuit (is this wasmd >= 0.53?)"))?;
    circuit.insert("disabled_type_urls".into(), json!(STAKING_LOCKED_MSGS));
    circuit.insert(
        "account_permissions".into(),
        json!([{"address": admin,
                "permissions": {"level": "LEVEL_SUPER_ADMIN", "limit_type_urls": []}}]),
    );
    Ok(())
}

fn params<'a>(app: &'a mut Value, module: &str) -> Result<&'a mut Value> {
    app.get_mut(module)
        .and_then(|m| m.get_mut("params"))
        .filter(|p| p.is_object())
        .with_context(|| format!("genesis has no app_state.{module}.params"))
}

/// A percentage as the SDK's 18-decimal `LegacyDec` text: 50 -> "0.500000000000000000".
pub fn percent_dec(p: u8) -> String {
    let p = u64::from(p.min(100));
    format!("{}.{:018}", p / 100, (p % 100) * 10_u64.pow(16))
}

/// The validators' total voting power in a genesis after `collect-gentxs`: the sum of
/// the gentxs' self-bonds, in units of 1e6 (the SDK's default power reduction).
pub fn gentx_power(genesis: &Value) -> u128 {
    genesis["app_state"]["genutil"]["gen_txs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|tx| tx["body"]["messages"].as_array().into_iter().flatten())
        .filter_map(|m| m["value"]["amount"].as_str())
        .filter_map(|a| a.parse::<u128>().ok())
        .map(|a| a / 1_000_000)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Devnet;

    const FIXTURE: &str = include_str!("testdata/genesis-init.json");
    const EXAMPLE: &str = include_str!("../../../relayer-config/devnet.toml");
    const ADMIN: &str = "wasm1qqqsyqcyq5rqwzqfpg9scrgwpugpzysnmgnpsq";

    fn edited(chain: usize) -> Value {
        let d = Devnet::parse(EXAMPLE).unwrap();
        let mut g: Value = serde_json::from_str(FIXTURE).unwrap();
        apply(&mut g, &d.chains[chain], ADMIN).unwrap();
        g
    }

    #[test]
    fn staking_locked_by_circuit_with_admin_as_super_admin() {
        let g = edited(0);
        let c = &g["app_state"]["circuit"];
        assert_eq!(c["disabled_type_urls"], json!(STAKING_LOCKED_MSGS));
        assert_eq!(c["account_permissions"][0]["address"], ADMIN);
        assert_eq!(
            c["account_permissions"][0]["permissions"]["level"],
            "LEVEL_SUPER_ADMIN"
        );
    }

    #[test]
    fn upload_and_instantiate_admin_only() {
        let w = &edited(0)["app_state"]["wasm"]["params"];
        assert_eq!(w["code_upload_access"]["permission"], "AnyOfAddresses");
        assert_eq!(w["code_upload_access"]["addresses"], json!([ADMIN]));
        assert_eq!(w["instantiate_default_permission"], "AnyOfAddresses");
    }

    #[test]
    fn everybody_upload_on_request() {
        let text = EXAMPLE.replacen("upload = \"admin\"", "upload = \"everybody\"", 1);
        let d = Devnet::parse(&text).unwrap();
        let mut g: Value = serde_json::from_str(FIXTURE).unwrap();
        apply(&mut g, &d.chains[0], ADMIN).unwrap();
        let w = &g["app_state"]["wasm"]["params"];
        assert_eq!(w["code_upload_access"]["permission"], "Everybody");
        assert_eq!(w["instantiate_default_permission"], "Everybody");
    }

    #[test]
    fn slashing_for_a_private_network() {
        let s = &edited(0)["app_state"]["slashing"]["params"];
        assert_eq!(s["signed_blocks_window"], "10000");
        assert_eq!(s["min_signed_per_window"], "0.500000000000000000");
        assert_eq!(s["downtime_jail_duration"], "600s");
        assert_eq!(s["slash_fraction_downtime"], "0.000000000000000000");
        assert_eq!(s["slash_fraction_double_sign"], "0.050000000000000000");
    }

    #[test]
    fn unbonding_and_votes_shortened() {
        let g = edited(1);
        let a = &g["app_state"];
        assert_eq!(a["staking"]["params"]["unbonding_time"], "1209600s");
        assert_eq!(a["staking"]["params"]["bond_denom"], "stake");
        assert_eq!(a["gov"]["params"]["voting_period"], "3s");
        assert_eq!(a["gov"]["params"]["expedited_voting_period"], "2s");
        assert_eq!(a["gov"]["params"]["min_deposit"][0]["denom"], "stake");
    }

    #[test]
    fn a_genesis_without_circuit_is_an_error() {
        let d = Devnet::parse(EXAMPLE).unwrap();
        let mut g: Value = serde_json::from_str(FIXTURE).unwrap();
        g["app_state"].as_object_mut().unwrap().remove("circuit");
        let err = apply(&mut g, &d.chains[0], ADMIN).unwrap_err().to_string();
        assert!(err.contains("app_state.circuit"), "{err}");
    }

    #[test]
    fn percent_as_legacy_dec() {
        assert_eq!(percent_dec(0), "0.000000000000000000");
        assert_eq!(percent_dec(5), "0.050000000000000000");
        assert_eq!(percent_dec(100), "1.000000000000000000");
    }

    #[test]
    fn power_of_gentxs() {
        let g = json!({"app_state": {"genutil": {"gen_txs": [
            {"body": {"messages": [{"value": {"amount": "10000000000"}}]}},
            {"body": {"messages": [{"value": {"amount": "10000000000"}}]}}
        ]}}});
        assert_eq!(gentx_power(&g), 20_000);
    }
}
