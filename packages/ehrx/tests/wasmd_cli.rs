//! `WasmdCli` against a stand-in `wasmd` (a shell script answering with the JSON shapes of
//! wasmd v0.61 / SDK 0.53): the exact invocations, polling `query tx` until the transaction
//! is found, contract data from `msg_responses`, soft rejections, failures, large messages.

use ehr_protocol::ErrorCode;
use ehrx::chain::{self, ChainClient, ChainError, WasmdCli, WasmdConfig, MAX_INLINE_MSG};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CONTRACT: &str = "wasm14hj2tavq8fpesdwxxcu44rty3hh90vhujrvcmstl4zr3txmfvw9s0phg4d";

/// `wasmd query tx` output for a successful execution whose contract set `data`.
fn included_tx(data: &[u8], rejected: Option<&str>) -> Value {
    fn field(n: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(n << 3) | 2];
        let mut len = payload.len();
        while len >= 0x80 {
            out.push((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(payload);
        out
    }
    let mut any = field(1, b"/cosmwasm.wasm.v1.MsgExecuteContractResponse");
    any.extend(field(2, &field(1, data)));
    let mut attrs = vec![
        json!({"key": "_contract_address", "value": CONTRACT, "index": true}),
        json!({"key": "action", "value": "retrieve_reply", "index": true}),
    ];
    match rejected {
        Some(reason) => {
            attrs.push(json!({"key": "outcome", "value": "rejected", "index": true}));
            attrs.push(json!({"key": "reason", "value": reason, "index": true}));
        }
        None => attrs.push(json!({"key": "outcome", "value": "accepted", "index": true})),
    }
    json!({
        "height": "42", "txhash": "ABC123", "codespace": "", "code": 0,
        "data": hex::encode_upper(field(2, &any)),
        "raw_log": "", "logs": [], "info": "", "gas_wanted": "200000", "gas_used": "150000",
        "tx": {"@type": "/cosmos.tx.v1beta1.Tx"}, "timestamp": "2026-01-01T00:00:00Z",
        "events": [
            {"type": "message", "attributes": [{"key": "module", "value": "wasm", "index": true}]},
            {"type": "wasm", "attributes": attrs}
        ]
    })
}

/// Writes a fake `wasmd` that logs each invocation (one line, args joined by spaces) and
/// answers from files in `dir`: `broadcast.json`, `tx.json` (after `not_found` misses),
/// `query.json`.
fn fake_wasmd(dir: &Path, not_found: u32) -> PathBuf {
    let script = format!(
        r#"#!/bin/sh
dir='{dir}'
echo "$*" >> "$dir/calls.log"
case "$1 $2" in
  "keys show") echo "wasm1peeraddress"; exit 0 ;;
  "tx wasm") echo "gas estimate: 123456" >&2; cat "$dir/broadcast.json"; exit 0 ;;
  "tx sign")
    unsigned="$3"
    while [ $# -gt 0 ]; do
      if [ "$1" = "--output-document" ]; then cp "$unsigned" "$2"; fi
      shift
    done
    exit 0 ;;
  "tx broadcast") cp "$3" "$dir/broadcasted.json"; cat "$dir/broadcast.json"; exit 0 ;;
  "query tx")
    n=$(cat "$dir/misses" 2>/dev/null || echo 0)
    if [ "$n" -lt {not_found} ]; then
      echo $((n + 1)) > "$dir/misses"
      echo "Error: tx ($3) not found" >&2
      exit 1
    fi
    cat "$dir/tx.json"; exit 0 ;;
  "query wasm") cat "$dir/query.json"; exit 0 ;;
esac
echo "Error: unknown command $*" >&2
exit 1
"#,
        dir = dir.display(),
    );
    let path = dir.join("wasmd");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn client(dir: &Path, bin: PathBuf) -> WasmdCli {
    WasmdCli::new(WasmdConfig {
        bin: bin.display().to_string(),
        node: "http://127.0.0.1:26657".into(),
        chain_id: "hospital-a".into(),
        home: Some(dir.join("home")),
        key_name: "peer1".into(),
        tx_timeout: Duration::from_secs(10),
        tx_poll: Duration::from_millis(10),
        ..WasmdConfig::default()
    })
}

/// A stand-in wasmd in its own directory and the `WasmdCli` that runs it.
struct Fake {
    tmp: tempfile::TempDir,
    cli: WasmdCli,
}

impl Fake {
    /// `query tx` answers "not found" `not_found` times before the transaction appears.
    fn new(not_found: u32) -> Fake {
        let tmp = tempfile::tempdir().unwrap();
        let bin = fake_wasmd(tmp.path(), not_found);
        let cli = client(tmp.path(), bin);
        Fake { tmp, cli }
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// What the stand-in prints for `broadcast.json`, `tx.json` or `query.json`.
    fn answer(&self, name: &str, value: &Value) -> &Self {
        std::fs::write(self.dir().join(name), value.to_string()).unwrap();
        self
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn home(&self) -> String {
        self.dir().join("home").display().to_string()
    }
}

fn broadcast_ok() -> Value {
    json!({"height": "0", "txhash": "ABC123", "code": 0, "raw_log": ""})
}

#[test]
fn execute_polls_until_included_and_returns_contract_data() {
    let fake = Fake::new(2);
    let reply = br#"{"request_id":"0123456789abcdef0123456789abcdef"}"#;
    fake.answer("broadcast.json", &broadcast_ok())
        .answer("tx.json", &included_tx(reply, None));

    let msg = json!({"retrieve_reply": {"request_id": "0123456789abcdef0123456789abcdef"}});
    let tx = chain::execute(&fake.cli, CONTRACT, &msg).unwrap();
    assert_eq!(tx.txhash, "ABC123");
    assert_eq!(tx.height, 42);
    assert_eq!(tx.data.as_deref(), Some(&reply[..]));

    let log = fake.calls();
    assert_eq!(
        log[0],
        format!(
            "tx wasm execute {CONTRACT} {msg} --from peer1 --keyring-backend test --home {} \
             --chain-id hospital-a --node http://127.0.0.1:26657 --gas auto --gas-adjustment 1.4 \
             --gas-prices 0ufee -y -o json",
            fake.home()
        )
    );
    // Two misses ("not found"), then found.
    assert_eq!(log.len(), 4);
    for call in &log[1..] {
        assert_eq!(
            call,
            "query tx ABC123 --node http://127.0.0.1:26657 -o json"
        );
    }
}

#[test]
fn soft_rejection_in_the_included_tx_is_an_error() {
    let fake = Fake::new(0);
    fake.answer("broadcast.json", &broadcast_ok())
        .answer("tx.json", &included_tx(b"", Some("NotAuthorized")));
    let err = chain::execute(&fake.cli, CONTRACT, &json!({"retrieve_reply": {}})).unwrap_err();
    assert!(
        matches!(&err, ChainError::SoftRejected { code: ErrorCode::NotAuthorized, txhash } if txhash == "ABC123"),
        "{err}"
    );
}

#[test]
fn check_tx_failure_and_cli_failure_are_reported_with_codes() {
    let fake = Fake::new(0);
    fake.answer(
        "broadcast.json",
        &json!({"height": "0", "txhash": "DEAD", "code": 13, "codespace": "sdk",
                "raw_log": "insufficient fees; got: 0ufee required: 100ufee: insufficient fee"}),
    );
    let err = chain::execute(&fake.cli, CONTRACT, &json!({})).unwrap_err();
    match &err {
        ChainError::TxFailed {
            abci_code, reason, ..
        } => {
            assert_eq!(*abci_code, 13);
            assert!(reason.contains("insufficient fees"), "{reason}");
        }
        other => panic!("{other}"),
    }
    // No `query tx` after a CheckTx failure.
    assert_eq!(fake.calls().len(), 1);

    // A query the contract refuses: the CLI exits non-zero with the error on stderr.
    let failing = fake.dir().join("failing-wasmd");
    std::fs::write(
        &failing,
        "#!/bin/sh\necho 'Error: rpc error: code = Unknown desc = UnknownRequest: no such request: query wasm contract failed: unknown request' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = client(fake.dir(), failing)
        .query_raw(CONTRACT, &json!({"request": {"request_id": "x"}}))
        .unwrap_err();
    assert_eq!(err.reason_code(), Some(&ErrorCode::UnknownRequest), "{err}");
}

#[test]
fn queries_return_the_data_field_and_address_comes_from_the_keyring() {
    let fake = Fake::new(0);
    fake.answer(
        "query.json",
        &json!({"data": {"registry": "wasm1reg", "network_id": "hospital-a"}}),
    );
    let answer = fake
        .cli
        .query_raw(CONTRACT, &json!({"config": {}}))
        .unwrap();
    assert_eq!(answer["network_id"], "hospital-a");
    assert_eq!(fake.cli.address().unwrap(), "wasm1peeraddress");
    assert_eq!(fake.cli.address().unwrap(), "wasm1peeraddress");
    let log = fake.calls();
    assert_eq!(
        log[0],
        format!("query wasm contract-state smart {CONTRACT} {{\"config\":{{}}}} --node http://127.0.0.1:26657 -o json")
    );
    assert_eq!(
        log[1],
        format!(
            "keys show peer1 -a --keyring-backend test --home {}",
            fake.home()
        )
    );
    assert_eq!(log.len(), 2, "the address is looked up once");
}

#[test]
fn messages_too_large_for_an_argument_go_through_sign_and_broadcast_files() {
    let fake = Fake::new(0);
    fake.answer("broadcast.json", &broadcast_ok())
        .answer("tx.json", &included_tx(b"", None));
    let big = "A".repeat(MAX_INLINE_MSG + 10);
    let msg = json!({"store_record": {"ciphertext": big}});
    chain::execute(&fake.cli, CONTRACT, &msg).unwrap();
    let log = fake.calls();
    assert!(log[0].starts_with("keys show peer1 -a"), "{log:?}");
    assert!(log[1].starts_with("tx sign /"), "{}", &log[1][..60]);
    assert!(log[1].contains("--from peer1 --keyring-backend test"));
    assert!(
        log[1].contains("--chain-id hospital-a --node http://127.0.0.1:26657 --output-document /")
    );
    assert!(log[2].starts_with("tx broadcast /"));
    assert!(log[2].ends_with("--node http://127.0.0.1:26657 -o json"));
    let sent: Value = serde_json::from_str(
        &std::fs::read_to_string(fake.dir().join("broadcasted.json")).unwrap(),
    )
    .unwrap();
    let m = &sent["body"]["messages"][0];
    assert_eq!(m["@type"], "/cosmwasm.wasm.v1.MsgExecuteContract");
    assert_eq!(m["sender"], "wasm1peeraddress");
    assert_eq!(m["contract"], CONTRACT);
    assert_eq!(m["msg"], msg);
    let gas: u64 = sent["auth_info"]["fee"]["gas_limit"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(gas, 1_000_000 + 100 * msg.to_string().len() as u64);
}
