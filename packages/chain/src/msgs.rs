//! SDK messages other than contract executions, as `Any`s for `Chain::execute_any`: bank
//! sends (funding fresh accounts), wasm code uploads and instantiations (deploying the
//! contracts) and the ICS-20 `MsgTransfer`.
//!
//! `MsgTransfer` is a small local prost struct: the `ibc-proto` crate would pull in a second
//! `cosmos-sdk-proto`. Its fields are ibc-go's `ibc.applications.transfer.v1.MsgTransfer`.

use crate::tx::ChainError;
use cosmrs::proto::cosmos::bank::v1beta1::{Input, MsgMultiSend, MsgSend, Output};
use cosmrs::proto::cosmos::base::v1beta1::Coin;
pub use cosmrs::Any;
use prost::Message as _;
use std::str::FromStr as _;

pub const MSG_SEND: &str = "/cosmos.bank.v1beta1.MsgSend";
pub const MSG_MULTI_SEND: &str = "/cosmos.bank.v1beta1.MsgMultiSend";
pub const MSG_TRANSFER: &str = "/ibc.applications.transfer.v1.MsgTransfer";

fn account(text: &str) -> Result<cosmrs::AccountId, ChainError> {
    cosmrs::AccountId::from_str(text)
        .map_err(|e| ChainError::Parse(format!("address `{text}`: {e}")))
}

fn to_any<M: cosmrs::tx::Msg>(msg: M, what: &str) -> Result<Any, ChainError> {
    msg.to_any()
        .map_err(|e| ChainError::Parse(format!("{what} message: {e}")))
}

/// A contract execution (`MsgExecuteContract`, no funds) of JSON `msg` by `sender`.
pub fn execute_contract(sender: &str, contract: &str, msg: &[u8]) -> Result<Any, ChainError> {
    let msg = cosmrs::cosmwasm::MsgExecuteContract {
        sender: account(sender)?,
        contract: account(contract)?,
        msg: msg.to_vec(),
        funds: vec![],
    };
    to_any(msg, "execute")
}

pub const MSG_STORE_CODE: &str = "/cosmwasm.wasm.v1.MsgStoreCode";
pub const MSG_INSTANTIATE_CONTRACT: &str = "/cosmwasm.wasm.v1.MsgInstantiateContract";

/// An upload of `wasm` by `sender` (`MsgStoreCode`) whose code only `instantiators` may
/// instantiate (`AnyOfAddresses`).
pub fn store_code(sender: &str, wasm: &[u8], instantiators: &[&str]) -> Result<Any, ChainError> {
    let msg = cosmrs::cosmwasm::MsgStoreCode {
        sender: account(sender)?,
        wasm_byte_code: wasm.to_vec(),
        instantiate_permission: Some(cosmrs::cosmwasm::AccessConfig {
            permission: cosmrs::cosmwasm::AccessType::AnyOfAddresses,
            addresses: instantiators
                .iter()
                .map(|a| account(a))
                .collect::<Result<_, _>>()?,
        }),
    };
    to_any(msg, "store code")
}

/// An instantiation of code `code_id` by `sender` with JSON `msg` (no funds); `admin` may
/// migrate the contract.
pub fn instantiate_contract(
    sender: &str,
    admin: Option<&str>,
    code_id: u64,
    label: &str,
    msg: &[u8],
) -> Result<Any, ChainError> {
    let msg = cosmrs::cosmwasm::MsgInstantiateContract {
        sender: account(sender)?,
        admin: admin.map(account).transpose()?,
        code_id,
        label: Some(label.to_string()),
        msg: msg.to_vec(),
        funds: vec![],
    };
    to_any(msg, "instantiate")
}

fn coin(amount: u128, denom: &str) -> Coin {
    Coin {
        denom: denom.to_string(),
        amount: amount.to_string(),
    }
}

/// `amount` of `denom` from `from` to `to`.
pub fn send(from: &str, to: &str, amount: u128, denom: &str) -> Any {
    Any {
        type_url: MSG_SEND.into(),
        value: MsgSend {
            from_address: from.to_string(),
            to_address: to.to_string(),
            amount: vec![coin(amount, denom)],
        }
        .encode_to_vec(),
    }
}

/// `amount` of `denom` from `from` to each of `to`, in one message.
pub fn multi_send(from: &str, to: &[String], amount: u128, denom: &str) -> Any {
    let total = amount * to.len() as u128;
    Any {
        type_url: MSG_MULTI_SEND.into(),
        value: MsgMultiSend {
            inputs: vec![Input {
                address: from.to_string(),
                coins: vec![coin(total, denom)],
            }],
            outputs: to
                .iter()
                .map(|address| Output {
                    address: address.clone(),
                    coins: vec![coin(amount, denom)],
                })
                .collect(),
        }
        .encode_to_vec(),
    }
}

/// `ibc.core.client.v1.Height`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Height {
    #[prost(uint64, tag = "1")]
    pub revision_number: u64,
    #[prost(uint64, tag = "2")]
    pub revision_height: u64,
}

/// `ibc.applications.transfer.v1.MsgTransfer` (ibc-go v8–v10 fields 1–8).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MsgTransfer {
    #[prost(string, tag = "1")]
    pub source_port: String,
    #[prost(string, tag = "2")]
    pub source_channel: String,
    #[prost(message, optional, tag = "3")]
    pub token: Option<Coin>,
    #[prost(string, tag = "4")]
    pub sender: String,
    #[prost(string, tag = "5")]
    pub receiver: String,
    #[prost(message, optional, tag = "6")]
    pub timeout_height: Option<Height>,
    /// Unix nanoseconds on the receiving chain; 0 = none.
    #[prost(uint64, tag = "7")]
    pub timeout_timestamp: u64,
    #[prost(string, tag = "8")]
    pub memo: String,
}

/// An ICS-20 transfer of `amount` `denom` on `transfer/channel`, timing out at
/// `timeout_unix_nanos` (no height timeout).
pub fn transfer(
    channel: &str,
    sender: &str,
    receiver: &str,
    amount: u128,
    denom: &str,
    timeout_unix_nanos: u64,
) -> Any {
    Any {
        type_url: MSG_TRANSFER.into(),
        value: MsgTransfer {
            source_port: "transfer".into(),
            source_channel: channel.to_string(),
            token: Some(coin(amount, denom)),
            sender: sender.to_string(),
            receiver: receiver.to_string(),
            timeout_height: None,
            timeout_timestamp: timeout_unix_nanos,
            memo: String::new(),
        }
        .encode_to_vec(),
    }
}

/// The denom an ICS-20 voucher of `denom` gets on the chain that received it on `channel`
/// (its own end of port `transfer`): `ibc/` and the upper-case SHA-256 of the trace.
pub fn ibc_denom(channel: &str, denom: &str) -> String {
    use sha2::Digest as _;
    let trace = format!("transfer/{channel}/{denom}");
    format!(
        "ibc/{}",
        hex::encode_upper(sha2::Sha256::digest(trace.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_may_be_instantiated_by_the_named_addresses_only() {
        use cosmrs::proto::cosmwasm::wasm::v1::{AccessType, MsgInstantiateContract, MsgStoreCode};
        let admin = "wasm14hj2tavq8fpesdwxxcu44rty3hh90vhujrvcmstl4zr3txmfvw9s0phg4d";
        let any = store_code(admin, b"\0asm", &[admin]).unwrap();
        assert_eq!(any.type_url, MSG_STORE_CODE);
        let msg = MsgStoreCode::decode(any.value.as_slice()).unwrap();
        assert_eq!(msg.wasm_byte_code, b"\0asm");
        let access = msg.instantiate_permission.unwrap();
        assert_eq!(access.permission, AccessType::AnyOfAddresses as i32);
        assert_eq!(access.addresses, vec![admin.to_string()]);
        let any = instantiate_contract(admin, Some(admin), 7, "ehrx-registry", b"{}").unwrap();
        assert_eq!(any.type_url, MSG_INSTANTIATE_CONTRACT);
        let msg = MsgInstantiateContract::decode(any.value.as_slice()).unwrap();
        assert_eq!((msg.code_id, msg.label.as_str()), (7, "ehrx-registry"));
        assert_eq!(msg.admin, admin);
        assert!(store_code("not-an-address", b"", &[]).is_err());
    }

    #[test]
    fn a_multi_send_pays_out_what_it_takes_in() {
        let any = multi_send("wasm1a", &["wasm1b".into(), "wasm1c".into()], 5, "ufee");
        assert_eq!(any.type_url, MSG_MULTI_SEND);
        let msg = MsgMultiSend::decode(any.value.as_slice()).unwrap();
        assert_eq!(msg.inputs[0].coins[0].amount, "10");
        assert_eq!(msg.outputs.len(), 2);
        assert_eq!(msg.outputs[1].coins[0].amount, "5");
    }

    #[test]
    fn a_transfer_encodes_ibc_gos_fields() {
        let any = transfer("channel-1", "wasm1a", "wasm1b", 1, "ufee", 7);
        assert_eq!(any.type_url, MSG_TRANSFER);
        let msg = MsgTransfer::decode(any.value.as_slice()).unwrap();
        assert_eq!(msg.source_port, "transfer");
        assert_eq!(msg.token.unwrap().denom, "ufee");
        assert_eq!(msg.timeout_timestamp, 7);
        // Field 2 (source_channel) is a length-delimited string right after field 1.
        assert_eq!(&any.value[..10], b"\x0a\x08transfer");
    }

    #[test]
    fn the_voucher_denom_is_the_hash_of_its_trace() {
        // ICS-20's documented example: transfer/channel-0/uatom.
        assert_eq!(
            ibc_denom("channel-0", "uatom"),
            "ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2"
        );
    }
}
