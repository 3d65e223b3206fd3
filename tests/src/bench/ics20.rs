//! Phase 3, the ICS-20 baseline: `--runs` transfers of 1 fee-denom unit (only the chains'
//! admins hold the bonding denom) A → B over the devnet's transfer channel, timed from the
//! node taking the `MsgTransfer` (CheckTx passed, so signing and simulation are not
//! counted against ICS-20) until the receiver's voucher balance on B increases (one way)
//! and until the acknowledgement is indexed on A (round trip), each polled every 100 ms.

use super::setup::{Bench, A, B};
use super::{now_ms, Progress};
use ehrx_chain::msgs;
use std::sync::Mutex;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(100);
const GIVE_UP_MS: i64 = 90_000;
/// The packet's timeout, from the submission.
const TIMEOUT_NANOS: u64 = 10 * 60 * 1_000_000_000;

#[derive(Debug, Default)]
pub struct Ics20 {
    pub oneway_ms: Vec<i64>,
    pub roundtrip_ms: Vec<i64>,
    pub failures: u32,
    /// The MsgTransfer transactions' hashes.
    pub hashes: Vec<String>,
}

pub fn run(bench: &Bench, progress: &Progress) -> Ics20 {
    let denom = &bench.fee_denom;
    progress.step(&format!(
        "ICS-20: {} transfers of 1{denom} {A} {} -> {B}: one way (balance up on {B}) and round trip (acknowledgement on {A}), polled every 100 ms",
        bench.opts.runs, bench.xch_a
    ));
    let voucher = msgs::ibc_denom(&bench.xch_b, denom);
    let sender = bench.devnet.client(A, &bench.xfer_from.0);
    let reader_b = bench.devnet.reader(B);
    let reader_a = bench.devnet.reader(A);
    let balance = || reader_b.block_on(reader_b.chain().balance(&bench.xfer_to, &voucher));
    let mut out = Ics20::default();
    for i in 1..=bench.opts.runs {
        let b0 = match balance() {
            Ok(b) => b,
            Err(e) => {
                progress.note(format!("transfer {i}: cannot read the balance on {B}: {e}"));
                out.failures += 1;
                continue;
            }
        };
        let timeout = (now_ms() as u64) * 1_000_000 + TIMEOUT_NANOS;
        let msg = msgs::transfer(
            &bench.xch_a,
            &bench.xfer_from.1,
            &bench.xfer_to,
            1,
            denom,
            timeout,
        );
        let taken = Mutex::new(None);
        let clock = |_: &str| {
            *taken.lock().unwrap() = Some(now_ms());
        };
        // The result comes with the block; the clock started when the node took the tx.
        let sent = sender.block_on(sender.chain().execute_any_with(&[msg], &clock));
        let Some(t0) = *taken.lock().unwrap() else {
            progress.note(format!(
                "transfer {i}: broadcast failed: {}",
                sent.err().map_or("no hash".into(), |e| e.to_string())
            ));
            out.failures += 1;
            continue;
        };
        let tx = match sent {
            Ok(tx) if tx.code == 0 => tx,
            Ok(tx) => {
                progress.note(format!(
                    "transfer {i}: failed in its block (code {}): {}",
                    tx.code, tx.raw_log
                ));
                out.failures += 1;
                continue;
            }
            Err(e) => {
                progress.note(format!("transfer {i}: {e}"));
                out.failures += 1;
                continue;
            }
        };
        out.hashes.push(tx.txhash.clone());
        let mut t1 = None;
        while now_ms() - t0 < GIVE_UP_MS {
            if balance().is_ok_and(|b| b > b0) {
                t1 = Some(now_ms());
                break;
            }
            std::thread::sleep(POLL);
        }
        let Some(t1) = t1 else {
            progress.note(format!(
                "transfer {i}: balance on {B} did not increase within 90 s"
            ));
            out.failures += 1;
            continue;
        };
        out.oneway_ms.push(t1 - t0);
        let seq = packet_sequence(&tx);
        let mut t2 = None;
        while let Some(seq) = seq.filter(|_| now_ms() - t0 < GIVE_UP_MS) {
            let query = super::gas::packet_query("acknowledge_packet", &bench.xch_a, seq);
            if reader_a
                .block_on(reader_a.chain().tx_search(query, 1))
                .is_ok_and(|found| !found.is_empty())
            {
                t2 = Some(now_ms());
                break;
            }
            std::thread::sleep(POLL);
        }
        match t2 {
            Some(t2) => {
                out.roundtrip_ms.push(t2 - t0);
                progress.log(&format!(
                    "transfer {i}/{}: one way {:.2} s, round trip {:.2} s",
                    bench.opts.runs,
                    (t1 - t0) as f64 / 1000.0,
                    (t2 - t0) as f64 / 1000.0
                ));
            }
            None => {
                progress.note(format!(
                    "transfer {i}: no acknowledgement on {A} within 90 s"
                ));
                out.failures += 1;
            }
        }
    }
    out
}

/// The sequence of the packet a transaction sent (`send_packet.packet_sequence`).
pub fn packet_sequence(tx: &ehrx_chain::TxResult) -> Option<u64> {
    tx.event_values("send_packet", "packet_sequence")
        .next()
        .and_then(|s| s.parse().ok())
}
