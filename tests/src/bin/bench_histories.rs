//! Issue 9's figures, measured on the running devnet in one run (scripts/bench.sh calls it):
//! for each generated history (10 KB, 1 MB, 5 MB of FHIR JSON, 5 MB of scans, and the whole
//! Synthea patient of ~5,500 resources), one
//! exchange through the `ehrx` peer tool as staff run it, and from the chains:
//! - sizes: FHIR JSON, zstd, sealed; chunk counts;
//! - latency: `ehrx store`, and `ehrx request` from submission to the validated history
//!   written;
//! - gas of every transaction on both chains: StoreRecord/StoreChunks, SubmitReply/
//!   SubmitReplyChunks, Hermes' MsgRecvPacket of the reply chunks on A and their
//!   MsgAcknowledgement on B; in total and per MB of FHIR JSON;
//! - peak RSS of `ehrx store`, `ehrx request` and the reply service (`/usr/bin/time -v`).
//!
//! ```text
//! EHRX_BIN=target/release/ehrx cargo run -q -p ehr-tests --bin bench_histories -- \
//!     [--kinds small-10k,mid-1m,large-5m,attachments-5m] [--out FILE]
//! ```
//!
//! Prints a Markdown section on stdout (and into FILE); progress on stderr.

use anyhow::{bail, Context, Result};
use ehr_tests::devnet::Devnet;
use ehr_tests::fhir_tools::{history, HistoryKind};
use ehr_tests::peer_tool::{exchange_history, HistoryRun};
use ehrx_chain::TxResult;
use serde_json::json;
use std::collections::BTreeSet;

const A: &str = "hospital-a";
const B: &str = "hospital-b";

/// Gas of a set of transactions.
#[derive(Default, Clone)]
struct Gas {
    txs: usize,
    msgs: usize,
    gas: u64,
    /// Relayer transactions already counted: one carries several packets.
    seen: BTreeSet<String>,
}

impl Gas {
    fn add(&mut self, tx: &TxResult, msgs: usize) {
        self.txs += 1;
        self.msgs += msgs;
        self.gas += tx.gas_used;
    }

    /// Hermes' transactions found for one packet, each counted once, with its `msg` messages.
    fn add_relayed(&mut self, found: Vec<TxResult>, msg: &str) {
        for relay in found {
            if self.seen.insert(relay.txhash.clone()) {
                let msgs = relay.messages.iter().filter(|m| m.ends_with(msg)).count();
                self.add(&relay, msgs);
            }
        }
    }
}

/// The 64-hex transaction hashes after "tx " in the reply service's "answered" line for
/// this run's request.
fn reply_hashes(service_log: &str) -> Vec<String> {
    let Some(line) = service_log.lines().find(|l| l.contains(": answered ")) else {
        return Vec::new();
    };
    let Some(list) = line.rsplit_once("(tx ").map(|(_, rest)| rest) else {
        return Vec::new();
    };
    list.trim_end_matches(')')
        .split(", ")
        .filter(|h| h.len() == 64)
        .map(str::to_string)
        .collect()
}

struct Figures {
    kind: HistoryKind,
    run: HistoryRun,
    store: Gas,
    reply: Gas,
    recv: Gas,
    ack: Gas,
}

fn measure(devnet: &Devnet, kind: HistoryKind) -> Result<Figures> {
    let input = history(kind).context("generating the history")?;
    eprintln!(
        "bench_histories: {} ({} bytes)",
        kind.name(),
        std::fs::metadata(&input)?.len()
    );
    let serial = ehr_tests::devnet::run_id()
        .bytes()
        .fold(0u32, |a, b| a * 31 + u32::from(b))
        % 10_000;
    let details = json!({"given": "Bench", "family": kind.name().replace('-', ""),
                         "birth_date": "1950-01-01", "ssn": format!("321-66-{serial:04}")});
    let run = exchange_history(
        devnet,
        &format!("bench-{}", kind.name()),
        &input,
        &details,
        true,
    );
    if !run.request_ok {
        bail!(
            "{}: the exchange failed:\n{}\nreply service:\n{}",
            kind.name(),
            run.request_text,
            run.service_log
        );
    }
    let mut store = Gas::default();
    for hash in run.store_report["txhashes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let tx = by_hash(devnet, B, hash.as_str().unwrap_or_default())?;
        store.add(&tx, 1);
    }
    let mut reply = Gas::default();
    let (mut recv, mut ack) = (Gas::default(), Gas::default());
    for hash in reply_hashes(&run.service_log) {
        let tx = by_hash(devnet, B, &hash)?;
        reply.add(&tx, 1);
        let sequences = tx.event_values("send_packet", "packet_sequence");
        let src = tx.event_values("send_packet", "packet_src_channel");
        let dst = tx.event_values("send_packet", "packet_dst_channel");
        for ((seq, src), dst) in sequences.zip(src).zip(dst) {
            let query = format!(
                "recv_packet.packet_dst_channel='{dst}' AND recv_packet.packet_sequence='{seq}'"
            );
            recv.add_relayed(txs(devnet, A, &query)?, "MsgRecvPacket");
            let query = format!(
                "acknowledge_packet.packet_src_channel='{src}' AND acknowledge_packet.packet_sequence='{seq}'"
            );
            // The requester may have the history before Hermes relayed the ack back.
            ack.add_relayed(txs_within(devnet, B, &query, 30)?, "MsgAcknowledgement");
        }
    }
    Ok(Figures {
        kind,
        run,
        store,
        reply,
        recv,
        ack,
    })
}

fn by_hash(devnet: &Devnet, chain: &str, hash: &str) -> Result<TxResult> {
    let client = devnet.reader(chain);
    Ok(client.block_on(client.chain().tx_by_hash(hash))?)
}

fn txs(devnet: &Devnet, chain: &str, query: &str) -> Result<Vec<TxResult>> {
    let query = query
        .parse()
        .with_context(|| format!("tx search query `{query}`"))?;
    let client = devnet.reader(chain);
    Ok(client.block_on(client.chain().tx_search_all(query))?)
}

/// [`txs`], polled every second for up to `secs` seconds until something is found.
fn txs_within(devnet: &Devnet, chain: &str, query: &str, secs: u64) -> Result<Vec<TxResult>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let found = txs(devnet, chain, query)?;
        if !found.is_empty() || std::time::Instant::now() >= deadline {
            return Ok(found);
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

fn kib(bytes: u64) -> String {
    format!("{:.0} KiB", bytes as f64 / 1024.0)
}

fn mib_rss(kib: Option<u64>) -> String {
    kib.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn report(figures: &[Figures]) -> String {
    let mut out = String::new();
    out.push_str("| history | FHIR JSON | zstd | sealed | chunks | store | exchange (ehrx request) | peak RSS of ehrx: store / request / reply service | with its wasmd processes (GNU time) |\n|---|---|---|---|---|---|---|---|---|\n");
    for f in figures {
        let r = &f.run.store_report;
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2} s | {:.2} s | {} / {} / {} | {} / {} / {} |\n",
            f.kind.name(),
            kib(n("json_bytes")),
            kib(n("compressed_bytes")),
            kib(n("sealed_bytes")),
            n("chunks"),
            f.run.store_ms as f64 / 1000.0,
            f.run.request_ms as f64 / 1000.0,
            mib_rss(f.run.store_own_rss_kib),
            mib_rss(f.run.request_own_rss_kib),
            mib_rss(f.run.service_own_rss_kib),
            mib_rss(f.run.store_rss_kib),
            mib_rss(f.run.request_rss_kib),
            mib_rss(f.run.service_rss_kib),
        ));
    }
    out.push_str("\nGas (sum over the transactions; txs / messages):\n\n");
    out.push_str("| history | B: StoreRecord + StoreChunks | B: SubmitReply + SubmitReplyChunks | A: Hermes MsgRecvPacket (reply chunks) | B: Hermes MsgAcknowledgement | total | per MB of FHIR JSON |\n|---|---|---|---|---|---|---|\n");
    for f in figures {
        let total = f.store.gas + f.reply.gas + f.recv.gas + f.ack.gas;
        let mb = f.run.store_report["json_bytes"].as_u64().unwrap_or(1) as f64 / 1e6;
        let cell = |g: &Gas| format!("{} ({} / {})", g.gas, g.txs, g.msgs);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.0} |\n",
            f.kind.name(),
            cell(&f.store),
            cell(&f.reply),
            cell(&f.recv),
            cell(&f.ack),
            total,
            total as f64 / mb
        ));
    }
    out
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut kinds = HistoryKind::ALL.to_vec();
    kinds.push(HistoryKind::Whole);
    let mut out_file = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--kinds" => {
                let list = it.next().context("--kinds needs a list")?;
                kinds = list
                    .split(',')
                    .map(|k| HistoryKind::from_name(k).with_context(|| format!("unknown kind {k}")))
                    .collect::<Result<_>>()?;
            }
            "--out" => out_file = Some(it.next().context("--out needs a file")?.clone()),
            "-h" | "--help" => {
                println!("bench_histories [--kinds small-10k,mid-1m,large-5m,attachments-5m] [--out FILE]");
                return Ok(());
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if std::env::var_os("EHRX_BIN").is_none() {
        bail!("set EHRX_BIN to a release build of ehrx (scripts/bench.sh does)");
    }
    let devnet = Devnet::get();
    let mut figures = Vec::new();
    for kind in kinds {
        figures.push(measure(devnet, kind)?);
        let f = figures.last().unwrap();
        eprintln!(
            "bench_histories: {} exchanged in {:.2} s ({} chunks)",
            f.kind.name(),
            f.run.request_ms as f64 / 1000.0,
            f.run.store_report["chunks"]
        );
    }
    let text = report(&figures);
    if let Some(path) = out_file {
        std::fs::write(&path, &text).with_context(|| format!("writing {path}"))?;
    }
    print!("{text}");
    Ok(())
}
