//! Phase 4: gas used per transaction kind (ours, soft-rejected, registry, Hermes'
//! MsgRecvPacket and MsgAcknowledgement of our request packet, our reply packet and the
//! ICS-20 packet), the per-stage breakdown of the sequential exchanges from block header
//! times, and the requests our reply service answered that were not ours. Everything is
//! read from the chains' tx index (`Chain::tx_search`, `tx_by_hash`).

use super::ics20::{packet_sequence, Ics20};
use super::latency::{Latency, Run};
use super::setup::{Bench, A, B};
use super::throughput::Level;
use super::Progress;
use ehrx_chain::{BlockingChain, Query, TxResult};
use std::collections::{BTreeMap, BTreeSet};

/// The gas kinds of the report and the JSON, in order.
pub const KINDS: [&str; 13] = [
    "store",
    "request",
    "softreject",
    "reply",
    "retrieve",
    "register",
    "recv_req",
    "ack_req",
    "recv_reply",
    "ack_reply",
    "transfer",
    "recv_ics20",
    "ack_ics20",
];

#[derive(Debug, Default)]
pub struct Gas {
    /// gas_used of each transaction, by kind.
    pub by_kind: BTreeMap<String, Vec<i64>>,
    /// The message list of each relayer transaction (`UpdateClient+RecvPacket`), by kind.
    pub relayer_msgs: BTreeMap<String, Vec<String>>,
    /// Per sequential exchange: submit, relay A→B, reply service, relay B→A, requester
    /// sees the answer and its RetrieveReply is in a block, verify + decrypt + write (ms).
    pub breakdown: Vec<[i64; 6]>,
    /// ICS-20: MsgTransfer block on A → MsgRecvPacket block on B (ms).
    pub transfer_relay_ms: Vec<i64>,
    /// `<partner>/<request id>` the bench's reply service answered that were not ours.
    pub foreign: Vec<String>,
}

impl Gas {
    fn add(&mut self, kind: &str, tx: &TxResult) {
        if tx.code == 0 {
            self.by_kind
                .entry(kind.into())
                .or_default()
                .push(tx.gas_used as i64);
        }
    }

    /// A relayer transaction: its message list, and its gas when it carries one packet.
    fn relayed(&mut self, kind: &str, tx: Option<&TxResult>) {
        let Some(tx) = tx else { return };
        self.relayer_msgs
            .entry(kind.into())
            .or_default()
            .push(message_list(&tx.messages));
        let packets = tx
            .messages
            .iter()
            .filter(|m| {
                ["MsgRecvPacket", "MsgAcknowledgement", "MsgTimeout"]
                    .iter()
                    .any(|k| m.ends_with(k))
            })
            .count();
        if packets == 1 {
            self.add(kind, tx);
        }
    }
}

/// `UpdateClient+RecvPacket` from the messages' type URLs.
pub fn message_list(type_urls: &[String]) -> String {
    let short: Vec<&str> = type_urls
        .iter()
        .map(|t| t.rsplit_once(".Msg").map_or(t.as_str(), |(_, name)| name))
        .collect();
    short.join("+")
}

/// The tx on a chain with event `kind` (`recv_packet`, `acknowledge_packet`) for the
/// packet `seq` of `channel`: the destination channel of a receive, the source channel of
/// an acknowledgement.
pub fn packet_query(kind: &str, channel: &str, seq: u64) -> Query {
    let side = if kind == "recv_packet" { "dst" } else { "src" };
    Query::eq(format!("{kind}.packet_{side}_channel"), channel)
        .and_eq(format!("{kind}.packet_sequence"), seq.to_string())
}

fn search(client: &BlockingChain, query: Query) -> Vec<TxResult> {
    client
        .block_on(client.chain().tx_search_all(query))
        .unwrap_or_default()
}

fn first(client: &BlockingChain, query: Query) -> Option<TxResult> {
    search(client, query).into_iter().next()
}

fn block_ms(client: &BlockingChain, height: u64) -> Option<i64> {
    client.block_on(client.chain().block_time_ms(height)).ok()
}

/// The exchange contract's action of a transaction (the first `wasm` event naming one).
fn action<'a>(tx: &'a TxResult, contract: &str) -> Option<&'a str> {
    tx.events
        .iter()
        .filter(|e| e.kind == "wasm" && e.attr("_contract_address") == Some(contract))
        .find_map(|e| e.attr("action"))
}

pub fn collect(
    bench: &Bench,
    latency: &Latency,
    levels: &[Level],
    ics20: &Ics20,
    progress: &Progress,
) -> Gas {
    let a = bench.devnet.reader(A);
    let b = bench.devnet.reader(B);
    let mut gas = Gas::default();
    if let Some(tx) = &bench.register_tx {
        gas.add("register", tx);
    }
    if let Ok(tx) = b.block_on(b.chain().tx_by_hash(&bench.store_hash)) {
        gas.add("store", &tx);
    }
    // The soft-rejected request: the requester's rejected SubmitRequest. CometBFT 0.38's
    // kv indexer matches the conditions of one query within one event, so the search names
    // the contract's event only and the sender is checked here.
    if let Some(soft) = &latency.soft {
        let query = Query::eq("wasm.action", "submit_request")
            .and_eq("wasm.outcome", "rejected")
            .and_gte("tx.height", bench.h0_a);
        let sent_by = |tx: &TxResult| {
            tx.event_values("message", "sender")
                .any(|sender| sender == soft.site.address)
        };
        for tx in search(&a, query).iter().filter(|tx| sent_by(tx)) {
            gas.add("softreject", tx);
        }
    }
    let runs = latency
        .runs
        .iter()
        .map(|r| (true, r))
        .chain(levels.iter().flat_map(|l| &l.runs).map(|r| (false, r)));
    for (sequential, run) in runs.filter(|(_, r)| r.ok()) {
        let Some(rid) = &run.request_id else { continue };
        exchange_gas(bench, &a, &b, &mut gas, run, rid, sequential);
    }
    for hash in &ics20.hashes {
        let Ok(tx) = a.block_on(a.chain().tx_by_hash(hash)) else {
            continue;
        };
        gas.add("transfer", &tx);
        let Some(seq) = packet_sequence(&tx) else {
            continue;
        };
        let recv_b = first(&b, packet_query("recv_packet", &bench.xch_b, seq));
        let ack_a = first(&a, packet_query("acknowledge_packet", &bench.xch_a, seq));
        gas.relayed("recv_ics20", recv_b.as_ref());
        gas.relayed("ack_ics20", ack_a.as_ref());
        if let (Some(sent), Some(recv)) = (
            block_ms(&a, tx.height),
            recv_b.and_then(|r| block_ms(&b, r.height)),
        ) {
            gas.transfer_relay_ms.push(recv - sent);
        }
    }
    gas.foreign = foreign(bench, latency, levels);
    if !gas.foreign.is_empty() {
        progress.note(format!(
            "the bench's reply service answered {} request(s) that were not its own (another session's requests to {B}): {}",
            gas.foreign.len(),
            gas.foreign.join(" ")
        ));
    }
    gas
}

/// Gas of one exchange's transactions; for a sequential one also Hermes' and the stages.
fn exchange_gas(
    bench: &Bench,
    a: &BlockingChain,
    b: &BlockingChain,
    gas: &mut Gas,
    run: &Run,
    rid: &str,
    sequential: bool,
) {
    let on_a = search(a, Query::eq("wasm.request_id", rid));
    let on_b = search(b, Query::eq("wasm.request_id", rid));
    let request = on_a
        .iter()
        .find(|t| action(t, &bench.exchange_a) == Some("submit_request"));
    let retrieve = on_a
        .iter()
        .find(|t| action(t, &bench.exchange_a) == Some("retrieve_reply"));
    // The reply: the transaction on B that sent a packet and was not a packet's receipt.
    let reply = on_b.iter().find(|t| {
        t.events.iter().any(|e| e.kind == "send_packet")
            && action(t, &bench.exchange_b).is_some_and(|act| !act.starts_with("ibc_"))
    });
    let Some(request) = request else { return };
    gas.add("request", request);
    if let Some(reply) = reply {
        gas.add("reply", reply);
    }
    if let Some(retrieve) = retrieve {
        gas.add("retrieve", retrieve);
    }
    // Relayer transactions and the breakdown only for the sequential runs (no batching).
    if !sequential {
        return;
    }
    let Some(req_seq) = packet_sequence(request) else {
        return;
    };
    let recv_b = first(b, packet_query("recv_packet", &bench.ch_b, req_seq));
    let ack_a = first(a, packet_query("acknowledge_packet", &bench.ch_a, req_seq));
    gas.relayed("recv_req", recv_b.as_ref());
    gas.relayed("ack_req", ack_a.as_ref());
    let Some(reply) = reply else { return };
    let Some(rep_seq) = packet_sequence(reply) else {
        return;
    };
    let recv_a = first(a, packet_query("recv_packet", &bench.ch_a, rep_seq));
    let ack_b = first(b, packet_query("acknowledge_packet", &bench.ch_b, rep_seq));
    gas.relayed("recv_reply", recv_a.as_ref());
    gas.relayed("ack_reply", ack_b.as_ref());
    let times = (|| {
        Some([
            block_ms(a, request.height)?,
            block_ms(b, recv_b?.height)?,
            block_ms(b, reply.height)?,
            block_ms(a, recv_a?.height)?,
            block_ms(a, retrieve?.height)?,
        ])
    })();
    if let Some(t) = times {
        gas.breakdown.push(stages(run.t0, t, run.t1));
    }
}

/// The six stages from ehrx's start, the five block times and ehrx's end.
pub fn stages(t0: i64, blocks: [i64; 5], t1: i64) -> [i64; 6] {
    [
        blocks[0] - t0,
        blocks[1] - blocks[0],
        blocks[2] - blocks[1],
        blocks[3] - blocks[2],
        blocks[4] - blocks[3],
        t1 - blocks[4],
    ]
}

/// What the reply service's state file says it handled, less our requests and the
/// requests it was told to leave (`bench-skip`).
fn foreign(bench: &Bench, latency: &Latency, levels: &[Level]) -> Vec<String> {
    let ours: BTreeSet<&str> = latency
        .runs
        .iter()
        .chain(&latency.soft)
        .chain(levels.iter().flat_map(|l| &l.runs))
        .filter_map(|r| r.request_id.as_deref())
        .collect();
    let state = std::fs::read(bench.reply.dir.join("reply-state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or_default();
    handled_not_ours(&state, &ours)
}

/// `<partner>/<id>: <outcome>` of the handled requests of a reply state that are not ours.
pub fn handled_not_ours(state: &serde_json::Value, ours: &BTreeSet<&str>) -> Vec<String> {
    state["handled"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, h)| h["outcome"] != "bench-skip")
        .filter(|(key, _)| {
            let id = key.split_once('/').map_or(key.as_str(), |(_, id)| id);
            !ours.contains(id)
        })
        .map(|(key, h)| format!("{key}: {}", h["outcome"].as_str().unwrap_or("?")))
        .collect()
}

/// Mean block time over the last 100 blocks of each chain, ms.
pub fn block_times(bench: &Bench) -> [Option<i64>; 2] {
    [A, B].map(|chain| {
        let client = bench.devnet.reader(chain);
        let h = bench.devnet.height(chain);
        if h <= 101 {
            return None;
        }
        Some((block_ms(&client, h)? - block_ms(&client, h - 100)?) / 100)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn relayer_messages_are_listed_short() {
        let urls = [
            "/ibc.core.client.v1.MsgUpdateClient".to_string(),
            "/ibc.core.channel.v1.MsgRecvPacket".to_string(),
        ];
        assert_eq!(message_list(&urls), "UpdateClient+RecvPacket");
        let mut gas = Gas::default();
        let tx = TxResult {
            gas_used: 90,
            messages: urls.to_vec(),
            ..TxResult::default()
        };
        gas.relayed("recv_req", Some(&tx));
        let two = TxResult {
            messages: vec![urls[1].clone(), urls[1].clone()],
            ..tx.clone()
        };
        gas.relayed("recv_req", Some(&two));
        assert_eq!(
            gas.by_kind["recv_req"],
            vec![90],
            "two packets: not a figure"
        );
        assert_eq!(gas.relayer_msgs["recv_req"].len(), 2);
    }

    #[test]
    fn stages_add_up_to_the_wall_time() {
        let s = stages(1000, [1500, 3000, 4200, 6000, 7000], 7400);
        assert_eq!(s, [500, 1500, 1200, 1800, 1000, 400]);
        assert_eq!(s.iter().sum::<i64>(), 6400);
    }

    #[test]
    fn queries_name_the_channel_end_of_the_event() {
        let q = packet_query("recv_packet", "channel-1", 7).to_string();
        assert!(
            q.contains("recv_packet.packet_dst_channel = 'channel-1'"),
            "{q}"
        );
        let q = packet_query("acknowledge_packet", "channel-0", 7).to_string();
        assert!(q.contains("acknowledge_packet.packet_src_channel"), "{q}");
    }

    #[test]
    fn requests_answered_that_were_not_ours_are_reported() {
        let state = json!({"handled": {
            "hospital-a/mine": {"outcome": "records"},
            "hospital-a/theirs": {"outcome": "records"},
            "hospital-a/old": {"outcome": "bench-skip"},
        }});
        let ours = BTreeSet::from(["mine"]);
        assert_eq!(
            handled_not_ours(&state, &ours),
            vec!["hospital-a/theirs: records".to_string()]
        );
    }
}
