//! One full exchange driven only through the `wasmd` CLI, as an operator drives the
//! contracts beside the peer tool (README, "Each action as a `wasmd` command"): `wasmd tx
//! wasm execute` for every transaction, `wasmd query wasm contract-state smart` for every
//! state read, `wasmd query txs` for a packet in the blocks. The test computes what a
//! hospital's software computes (seals, signatures); every message goes through `wasmd`.

use crate::support::*;
use ehr_protocol::exchange::{
    ExecuteMsg, IncomingRequest, OutgoingRequest, QueryMsg, RecordsResponse, RequestStatus,
    RetrievedReply, StoredRecord,
};
use ehr_protocol::packet::ExchangePacket;
use ehr_protocol::registry::Role;
use ehr_tests::devnet::{now, tx_attr, Devnet};
use ehr_tests::harness::peer::{
    open_history, open_outcome, random_id, seal_history, sealed_records, Patient,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// `wasmd tx wasm execute CONTRACT MSG --from KEY` on `chain`; the tx as `wasmd query tx`
/// shows it.
fn cli_execute(devnet: &Devnet, chain: &str, key: &str, msg: &ExecuteMsg) -> Value {
    let contract = devnet.contract(chain, "exchange");
    let json = serde_json::to_string(msg).unwrap();
    let tx = devnet
        .tx(chain, key, &["wasm", "execute", &contract, &json], None)
        .accepted();
    assert_eq!(tx_attr(&tx, "outcome").as_deref(), Some("accepted"), "{tx}");
    tx
}

/// `wasmd query wasm contract-state smart CONTRACT MSG`: its `data`, `None` when the
/// contract refuses the query (e.g. nothing there yet).
fn cli_query<T: DeserializeOwned>(devnet: &Devnet, chain: &str, msg: &QueryMsg) -> Option<T> {
    let contract = devnet.contract(chain, "exchange");
    let json = serde_json::to_string(msg).unwrap();
    let answer = devnet
        .wasmd_query_try(
            chain,
            &["wasm", "contract-state", "smart", &contract, &json],
        )
        .ok()?;
    Some(serde_json::from_value(answer["data"].clone()).expect("the contract's answer"))
}

/// The data of packet `sequence` received on `channel` of `chain`, from its `recv_packet`
/// event (`wasmd query txs --query ...`).
fn cli_packet(devnet: &Devnet, chain: &str, channel: &str, sequence: u64) -> ExchangePacket {
    let query = format!(
        "recv_packet.packet_dst_channel='{channel}' AND recv_packet.packet_sequence='{sequence}'"
    );
    let found = devnet.wasmd_query(chain, &["txs", "--query", &query]);
    let hex_data = found["txs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|tx| tx["events"].as_array().cloned().unwrap_or_default())
        .filter(|event| event["type"] == "recv_packet")
        .find_map(|event| {
            let attrs = event["attributes"].as_array()?;
            let attr = |key: &str| {
                attrs
                    .iter()
                    .find(|a| a["key"] == key)
                    .and_then(|a| a["value"].as_str())
            };
            (attr("packet_sequence") == Some(sequence.to_string().as_str()))
                .then(|| attr("packet_data_hex").map(str::to_string))
                .flatten()
        })
        .unwrap_or_else(|| panic!("no recv_packet for {sequence} on {channel} of {chain}"));
    serde_json::from_slice(&hex::decode(hex_data).unwrap()).expect("an exchange packet")
}

#[test]
#[ignore = "needs the devnet (scripts/test.sh runs it)"]
fn a_full_exchange_driven_only_through_the_wasmd_cli() {
    let devnet = Devnet::get();
    let (store_key, storer) = devnet.fresh_peer(B, "cli-store", &[Role::Store]);
    let (reply_key, responder) = devnet.fresh_peer(B, "cli-reply", &[Role::Reply]);
    let (request_key, requester) = devnet.fresh_peer(A, "cli-request", &[Role::Request]);
    let doctor = clinician(devnet, "cli-doctor");
    let patient: Patient = fresh_patient("Amara", "Okafor", "1979-06-21", "212-45");
    let records_key = [7u8; 32];

    // B's storer keeps the patient's history under B's pseudonym.
    let record_id = random_id("rec");
    let stored = seal_history(&records_key, &patient.fhir_bundle(), 128 * 1024);
    cli_execute(
        devnet,
        B,
        &store_key,
        &ExecuteMsg::StoreRecord(storer.store_msg(B, &record_id, &patient, &stored)),
    );

    // A's requester asks B, signed by the clinician, the details sealed to B.
    let msg = request_msg(&requester, &doctor, B, &patient, 600);
    let request_id = msg.request_id.clone();
    cli_execute(devnet, A, &request_key, &ExecuteMsg::SubmitRequest(msg));

    // B: the request arrives; its details are read from the packet in B's blocks and
    // opened with the custodian key; the records under that pseudonym are read and opened.
    let incoming: IncomingRequest = wait_for(devnet, "the request on B", 120, || {
        cli_query(
            devnet,
            B,
            &QueryMsg::IncomingRequest {
                partner_id: A.into(),
                request_id: request_id.clone(),
            },
        )
    });
    let ExchangePacket::Request(packet) =
        cli_packet(devnet, B, &incoming.channel_id, incoming.packet_sequence)
    else {
        panic!("a request packet");
    };
    let pseudonym = Patient::pseudonym_from_sealed(B, &packet.body.sealed_patient)
        .expect("the details open with B's custodian key");
    assert_eq!(pseudonym, patient.pseudonym_at(B));
    let records: RecordsResponse = cli_query(
        devnet,
        B,
        &QueryMsg::Records {
            patient_token: pseudonym.clone(),
            start_after: None,
            limit: None,
        },
    )
    .expect("records");
    assert_eq!(records.records.len(), 1);
    let record: StoredRecord = cli_query(
        devnet,
        B,
        &QueryMsg::Record {
            patient_token: pseudonym.clone(),
            record_id: record_id.clone(),
        },
    )
    .expect("the record");
    let chunks: Vec<Vec<u8>> = (0..record.manifest.chunk_count())
        .map(|index| {
            cli_query::<cosmwasm_std::Binary>(
                devnet,
                B,
                &QueryMsg::RecordChunk {
                    patient_token: pseudonym.clone(),
                    record_id: record_id.clone(),
                    index,
                },
            )
            .expect("a record chunk")
            .to_vec()
        })
        .collect();
    let history = open_history(&records_key, &chunks).expect("the records key opens it");

    // B's responder answers, sealed to the reply key the request named.
    let outcome = sealed_records(&requester.encryption_key, &history);
    let body = responder.reply_body(
        &request_id,
        A,
        B,
        &requester.encryption_key,
        &outcome,
        now(),
    );
    cli_execute(
        devnet,
        B,
        &reply_key,
        &ExecuteMsg::SubmitReply(responder.reply_msg(&body, &outcome)),
    );

    // A: answered; the requester retrieves the signed manifest and reads each chunk from
    // its packet in A's blocks.
    wait_for(devnet, "the reply on A", 120, || {
        cli_query::<OutgoingRequest>(
            devnet,
            A,
            &QueryMsg::Request {
                request_id: request_id.clone(),
            },
        )
        .filter(|r| r.status == RequestStatus::Answered)
    });
    let tx = cli_execute(
        devnet,
        A,
        &request_key,
        &ExecuteMsg::RetrieveReply {
            request_id: request_id.clone(),
        },
    );
    // The tx as the chain client read it back: `data` is the contract's response data.
    let data = hex::decode(tx["data"].as_str().expect("the tx's data")).unwrap();
    let reply: RetrievedReply = serde_json::from_slice(&data).expect("a RetrievedReply");
    assert_eq!(reply.manifest, outcome.manifest);
    let chunks: Vec<Vec<u8>> = reply
        .chunk_packets
        .iter()
        .enumerate()
        .map(|(index, &sequence)| {
            let ExchangePacket::Reply(packet) = cli_packet(devnet, A, &reply.channel_id, sequence)
            else {
                panic!("a reply packet");
            };
            assert_eq!(packet.chunk_index as usize, index);
            packet.chunk.to_vec()
        })
        .collect();
    assert_eq!(chunks.len(), outcome.chunks.len());
    let (_, bundle) = open_outcome(&requester.encryption_key, &chunks).expect("it opens");
    assert_eq!(bundle, patient.fhir_bundle());
}
