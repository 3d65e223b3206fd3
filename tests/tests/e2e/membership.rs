//! Issue 8, property 12, "the chain's own membership": an insider (a registered peer account)
//! must not be able to bond a validator or move bonded power. Without the lock, `peer6`
//! bonded a validator "stranger" and with one delegation held 99% of the voting power:
//! hospital-a halted. The devnet now (a) disables the staking messages that add bonded power
//! with x/circuit from genesis, and (b) funds peers and the relayer with the fee denom only
//! (packages/devnet/src/genesis.rs; relayer-config/DEVNET.md, "Who can bond"). Issue 11
//! adds the outsider's code upload and instantiation, refused.

use crate::support::A;
use cosmwasm_std::Binary;
use ehr_tests::devnet::{Devnet, TxOutcome};
use rand_core::{OsRng, RngCore};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The messages the devnet's genesis disables (STAKING_LOCKED_MSGS in scripts/devnet.sh).
const LOCKED: [&str; 4] = [
    "/cosmos.staking.v1beta1.MsgCreateValidator",
    "/cosmos.staking.v1beta1.MsgDelegate",
    "/cosmos.staking.v1beta1.MsgBeginRedelegate",
    "/cosmos.staking.v1beta1.MsgCancelUnbondingDelegation",
];
/// The insider of the report: an ordinary peer account of the devnet (PEERS in devnet.sh).
const INSIDER: &str = "peer6";
/// Gas for the attack txs: enough for any of them, and fixed so that nothing is simulated
/// and the chain itself (CheckTx, DeliverTx) has to refuse.
const GAS: u64 = 400_000;

/// Staking's view of the validators: (operator, tokens, status), sorted.
type Bonded = Vec<(String, String, String)>;
/// CometBFT's: (consensus address, voting power), sorted.
type Power = Vec<(String, String)>;

fn validator_set(devnet: &Devnet, chain: &str) -> (Bonded, Power) {
    let staking = devnet.wasmd_query(chain, &["staking", "validators"]);
    let mut bonded: Vec<_> = staking["validators"]
        .as_array()
        .expect("validators")
        .iter()
        .map(|v| {
            (
                v["operator_address"].as_str().unwrap().to_string(),
                v["tokens"].as_str().unwrap().to_string(),
                v["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    bonded.sort();
    let comet = devnet.wasmd_query(chain, &["consensus", "comet", "validator-set"]);
    let mut power: Vec<_> = comet["validators"]
        .as_array()
        .expect("comet validators")
        .iter()
        .map(|v| {
            (
                v["address"].as_str().unwrap().to_string(),
                v["voting_power"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    power.sort();
    (bonded, power)
}

fn balance(devnet: &Devnet, chain: &str, address: &str, denom: &str) -> u128 {
    let b = devnet.wasmd_query(chain, &["bank", "balance", address, denom]);
    b["balance"]["amount"]
        .as_str()
        .unwrap_or("0")
        .parse()
        .expect("amount")
}

/// Asserts that `outcome` is a refusal by the circuit breaker, in the ante handler
/// (top-level message) or in the message router (nested message).
fn assert_disabled(what: &str, outcome: &TxOutcome) {
    let text = outcome.failure();
    assert!(
        text.contains("tx type not allowed")
            || text.contains("circuit breaker disables execution of this message"),
        "{what}: refused, but not by the circuit breaker:\n{text}"
    );
    eprintln!(
        "[e2e] {what}: refused: {}",
        text.lines()
            .filter(|l| l.contains("code:") || l.contains("raw_log:") || l.contains("not allowed"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" | ")
    );
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn only_the_admin_holds_the_bonding_denom_and_staking_is_locked() {
    let devnet = Devnet::get();
    let (bond, fee) = (devnet.bond_denom(), devnet.fee_denom());
    assert_ne!(bond, fee, "fees are paid in a denom that cannot be bonded");
    for chain in devnet.json()["chain_ids"].as_array().unwrap() {
        let chain = chain.as_str().unwrap();
        let info = devnet.chain(chain);
        let admin = info["keys"]["admin"].as_str().unwrap().to_string();
        for (key, address) in info["keys"].as_object().unwrap() {
            if key == "admin" {
                continue;
            }
            let address = address.as_str().unwrap();
            assert_eq!(
                balance(devnet, chain, address, &bond),
                0,
                "{chain}: {key} holds the bonding denom {bond}"
            );
            assert!(
                balance(devnet, chain, address, &fee) > 0,
                "{chain}: {key} has no fee denom {fee} to pay with"
            );
        }
        // Every holder of the bonding denom: the admin (the validator operator) and module
        // accounts (bonded pool, distribution rewards, ...), nobody else. This covers the
        // accounts other tests create too.
        let modules: BTreeSet<String> = devnet.wasmd_query(chain, &["auth", "module-accounts"])
            ["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["value"]["address"].as_str().map(str::to_string))
            .collect();
        let owners = devnet.wasmd_query(chain, &["bank", "denom-owners", &bond]);
        for owner in owners["denom_owners"].as_array().unwrap() {
            let address = owner["address"].as_str().unwrap();
            assert!(
                address == admin || modules.contains(address),
                "{chain}: {address} holds {} {bond} and is neither the admin nor a module account",
                owner["balance"]["amount"]
            );
        }
        // The breaker: the four messages disabled, and only the admin may reset it.
        let disabled = devnet.wasmd_query(chain, &["circuit", "disabled-list"]);
        let disabled: BTreeSet<&str> = disabled["disabled_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap())
            .collect();
        for url in LOCKED {
            assert!(disabled.contains(url), "{chain}: {url} is not disabled");
        }
        let accounts = devnet.wasmd_query(chain, &["circuit", "accounts"]);
        let holders: Vec<&str> = accounts["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["address"].as_str().unwrap())
            .collect();
        assert_eq!(holders, [admin.as_str()], "{chain}: circuit permissions");
    }
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn insider_cannot_create_a_validator_or_move_bonded_power() {
    let devnet = Devnet::get();
    let bond = devnet.bond_denom();
    let (bonded_before, power_before) = validator_set(devnet, A);
    // The hospital's own validators, as the devnet made them (four, or one with
    // `up --validators 1`).
    let own = devnet.rpcs(A).len();
    assert_eq!(
        bonded_before.len(),
        own,
        "{own} validators: {bonded_before:?}"
    );
    let validator = bonded_before[0].0.clone();
    let h0 = devnet.height(A);
    eprintln!(
        "[e2e] {A} at height {h0}: validators {bonded_before:?}, voting power {power_before:?}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    let stranger = tmp.path().join("stranger.json");
    std::fs::write(
        &stranger,
        json!({
            "pubkey": {"@type": "/cosmos.crypto.ed25519.PubKey", "key": Binary::from(key).to_base64()},
            "amount": format!("1000000{bond}"),
            "moniker": "stranger",
            "commission-rate": "0.1",
            "commission-max-rate": "0.2",
            "commission-max-change-rate": "0.01",
            "min-self-delegation": "1"
        })
        .to_string(),
    )
    .unwrap();
    let stranger = stranger.to_str().unwrap();
    let one = format!("1{bond}");

    // As the report did it (the CLI simulates first), then straight to the chain.
    let create = ["staking", "create-validator", stranger];
    assert_disabled(
        "create-validator (simulated)",
        &devnet.tx(A, INSIDER, &create, None),
    );
    assert_disabled(
        "create-validator",
        &devnet.tx(A, INSIDER, &create, Some(GAS)),
    );
    assert_disabled(
        "delegate",
        &devnet.tx(
            A,
            INSIDER,
            &["staking", "delegate", &validator, &one],
            Some(GAS),
        ),
    );
    assert_disabled(
        "redelegate",
        &devnet.tx(
            A,
            INSIDER,
            &["staking", "redelegate", &validator, &validator, &one],
            Some(GAS),
        ),
    );
    assert_disabled(
        "cancel-unbond",
        &devnet.tx(
            A,
            INSIDER,
            &["staking", "cancel-unbond", &validator, &one, "1"],
            Some(GAS),
        ),
    );
    // The admin holds the bonding denom, and the breaker stops it too: the lock does not
    // rest on balances alone. Adding a hospital validator is an explicit circuit reset.
    assert_disabled(
        "delegate by the admin",
        &devnet.tx(
            A,
            "admin",
            &["staking", "delegate", &validator, &one],
            Some(GAS),
        ),
    );
    // Nested in authz MsgExec (the ante handler only sees MsgExec): the message router
    // refuses the inner MsgDelegate when the tx executes.
    for signer in [INSIDER, "admin"] {
        let inner = generate_only(
            devnet,
            A,
            signer,
            &["staking", "delegate", &validator, &one],
        );
        let file = tmp.path().join(format!("delegate-{signer}.json"));
        std::fs::write(&file, inner.to_string()).unwrap();
        let exec = ["authz", "exec", file.to_str().unwrap()];
        let outcome = devnet.tx(A, signer, &exec, Some(GAS));
        assert!(
            outcome.failure().contains(
                "circuit breaker disables execution of this message: /cosmos.staking.v1beta1.MsgDelegate"
            ),
            "authz exec of MsgDelegate by {signer}: {outcome:?}"
        );
        assert_disabled(&format!("authz exec {{MsgDelegate}} by {signer}"), &outcome);
    }

    let (bonded_after, power_after) = validator_set(devnet, A);
    assert_eq!(bonded_after, bonded_before, "validators unchanged");
    assert_eq!(power_after, power_before, "voting power unchanged");
    // ... and the chain keeps producing blocks.
    let h1 = devnet.height(A);
    let waited = devnet.wait_height(A, h1 + 2, 30);
    let h2 = devnet.height(A);
    assert!(
        waited.is_ok() && h1 > h0 && h2 >= h1 + 2,
        "{A} stalled: heights {h0}, {h1}, {h2}: {waited:?}"
    );
    eprintln!(
        "[e2e] {A}: validators and voting power unchanged ({power_after:?}); height {h0} -> {h1} -> {h2}"
    );
}

/// `wasmd tx ARGS --generate-only` for the keyring key `from`: the unsigned tx JSON.
fn generate_only(devnet: &Devnet, chain: &str, from: &str, args: &[&str]) -> Value {
    let node = devnet.node(chain);
    let mut all = vec!["tx"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--from",
        from,
        "--keyring-backend",
        "test",
        "--chain-id",
        chain,
        "--node",
        &node,
        "--generate-only",
        "-o",
        "json",
    ]);
    let out = devnet.wasmd(chain, &all);
    assert!(
        out.status.success(),
        "generate-only {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("unsigned tx JSON")
}

/// Issue 11: code upload and instantiation are the admin's (genesis `AnyOfAddresses
/// [admin]`, and each code instantiable by the admin only, set at upload). An outsider's
/// account, funded and able to pay, tries both with the wasmd CLI: refused, and the chain's
/// codes and the registry code's contracts are as before.
#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn an_outsider_can_neither_upload_nor_instantiate_code() {
    let devnet = Devnet::get();
    let name = format!("uploader-{}", ehr_tests::devnet::run_id());
    devnet.new_account(A, &name);
    let codes = |d: &Devnet| d.wasmd_query(A, &["wasm", "list-code"])["code_infos"].clone();
    let code_id = devnet.chain(A)["code_ids"]["registry"]
        .as_u64()
        .expect("registry code id")
        .to_string();
    let contracts = |d: &Devnet| {
        d.wasmd_query(A, &["wasm", "list-contract-by-code", &code_id])["contracts"].clone()
    };
    let (codes_before, contracts_before) = (codes(devnet), contracts(devnet));

    let wasm = devnet.repo.join("artifacts/registry.wasm");
    let stored = devnet.tx(A, &name, &["wasm", "store", wasm.to_str().unwrap()], None);
    assert!(
        stored.failure().contains("unauthorized"),
        "an outsider's upload: {stored:?}"
    );
    let msg = json!({"admin": null, "network_id": "rogue", "policy": null}).to_string();
    let label = format!("rogue-{name}");
    let made = devnet.tx(
        A,
        &name,
        &[
            "wasm",
            "instantiate",
            &code_id,
            &msg,
            "--label",
            &label,
            "--no-admin",
        ],
        None,
    );
    assert!(
        made.failure().contains("unauthorized"),
        "an outsider's instantiate of code {code_id}: {made:?}"
    );
    assert_eq!(codes(devnet), codes_before, "no new code");
    assert_eq!(contracts(devnet), contracts_before, "no new contract");
}
