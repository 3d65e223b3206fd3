//! SDK messages other than contract executions, as `Any`s for `Chain::execute_any`: bank
//! sends (funding fresh accounts) and the ICS-20 `MsgTransfer`.
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

/// A contract execution (`MsgExecuteContract`, no funds) of JSON `msg` by `sender`.
pub fn execute_contract(sender: &str, contract: &str, msg: &[u8]) -> Result<Any, ChainError> {
    use cosmrs::tx::Msg as _;
    let account = |text: &str| {
        cosmrs::AccountId::from_str(text)
            .map_err(|e| ChainError::Parse(format!("address `{text}`: {e}")))
    };
    cosmrs::cosmwasm::MsgExecuteContract {
        sender: account(sender)?,
        contract: account(contract)?,
        msg: msg.to_vec(),
        funds: vec![],
    }
    .to_any()
    .map_err(|e| ChainError::Parse(format!("execute message: {e}")))
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
