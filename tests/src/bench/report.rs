//! The Markdown report and the JSON summary of a run (pure: `Results` in, text out), and
//! where they are written: `$EHRX_DEVNET_DIR/bench/bench-<ts>.{md,json}`, the report on
//! stdout and the JSON also at `--json FILE`.

use super::gas::{Gas, KINDS};
use super::ics20::Ics20;
use super::latency::Latency;
use super::setup::{fmt_duration, Bench, A, B};
use super::throughput::Level;
use super::{percentile, Progress, Stats};
use serde_json::{json, Value};
use std::fmt::Write as _;

/// One wasm artifact: its size, gzip -9 size, sha256 prefix, and the deployed code's.
#[derive(Debug, Clone, PartialEq)]
pub struct Wasm {
    pub name: String,
    pub bytes: u64,
    pub gzip: Option<u64>,
    pub sha: String,
    pub deployed: Option<(u64, String)>,
}

/// A level of the throughput phase, as reported.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelRow {
    pub in_flight: u32,
    pub completed: u32,
    pub failures: u32,
    pub wall_ms: i64,
    pub per_min: f64,
    pub p50_ms: Option<i64>,
}

/// Everything the report says.
#[derive(Debug, Clone, Default)]
pub struct Results {
    pub when: String,
    pub title_time: String,
    pub command: String,
    pub runtime_secs: u64,
    pub cores: usize,
    pub cpu: String,
    pub mem_gib: u64,
    pub kernel: String,
    pub commit: String,
    pub commit_date: String,
    pub wasmd_version: String,
    pub hermes_version: String,
    pub event_source: String,
    pub clear_interval: String,
    pub block_ms: [Option<i64>; 2],
    pub poll: u64,
    /// Replies the reply service submits at once (`None`: ehrx's default).
    pub reply_in_flight: Option<u16>,
    pub channels: [String; 4],
    pub ciphertext_bytes: u64,
    pub runs: u32,
    pub parallel_label: String,
    pub latency_ms: Vec<i64>,
    pub latency_failures: u32,
    pub oneway_ms: Vec<i64>,
    pub roundtrip_ms: Vec<i64>,
    pub ics20_failures: u32,
    pub parallel_ms: Vec<i64>,
    pub levels: Vec<LevelRow>,
    pub breakdown: Vec<[i64; 6]>,
    pub transfer_relay_ms: Vec<i64>,
    pub policy: (u32, u32, u64),
    pub gas: std::collections::BTreeMap<String, Vec<i64>>,
    pub relayer_msgs: std::collections::BTreeMap<String, Vec<String>>,
    pub fee_denom: String,
    pub histories_md: Option<String>,
    pub wasm: Vec<Wasm>,
    pub install: Vec<(String, String)>,
    pub warm: Option<String>,
    pub notes: Vec<String>,
    pub work: String,
}

fn first_line_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
}

fn git(bench: &Bench, args: &[&str]) -> String {
    std::process::Command::new("git")
        .arg("-C")
        .arg(&bench.devnet.repo)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Hermes' `event_source` (its mode) and `clear_interval`, from its config.
fn hermes_settings(config: &str) -> (String, String) {
    let Ok(value) = toml::from_str::<toml::Value>(config) else {
        return ("-".into(), "-".into());
    };
    let source = value
        .get("chains")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("event_source"))
        .map(|s| match s {
            toml::Value::Table(t) => t
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
            other => other.to_string(),
        })
        .unwrap_or_else(|| "-".into());
    let clear = value
        .get("mode")
        .and_then(|m| m.get("packets"))
        .and_then(|p| p.get("clear_interval"))
        .map(|c| c.to_string())
        .unwrap_or_else(|| "-".into());
    (source, clear)
}

impl Results {
    #[allow(clippy::too_many_arguments)]
    pub fn assemble(
        bench: &Bench,
        command: String,
        latency: Latency,
        levels: Vec<Level>,
        ics20: Ics20,
        gas: Gas,
        block_ms: [Option<i64>; 2],
        install: (Vec<(String, String)>, Option<String>),
        histories_md: Option<String>,
        progress: &Progress,
    ) -> Results {
        let json = bench.devnet.json();
        let now = ehrx_chain::Time::now().to_rfc3339();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: u64 = first_line_value(&meminfo, "MemTotal:")
            .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let hermes_config = json["hermes"]["config"]
            .as_str()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let (event_source, clear_interval) = hermes_settings(&hermes_config);
        let policy = &bench.policy;
        Results {
            when: format!("{}+00:00", &now[..19]),
            title_time: format!("{} {} UTC", &now[..10], &now[11..16]),
            command,
            runtime_secs: progress.elapsed_secs(),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu: first_line_value(&cpuinfo, "model name")
                .map(|v| v.trim_start_matches(':').trim().to_string())
                .unwrap_or_default(),
            mem_gib: (mem_kib as f64 / 1_048_576.0).round() as u64,
            kernel: format!(
                "Linux {}",
                std::fs::read_to_string("/proc/sys/kernel/osrelease")
                    .unwrap_or_default()
                    .trim()
            ),
            commit: git(bench, &["rev-parse", "--short", "HEAD"]),
            commit_date: git(bench, &["log", "-1", "--format=%cs"]),
            wasmd_version: json["wasmd"]["version"].as_str().unwrap_or("-").into(),
            hermes_version: json["hermes"]["version"].as_str().unwrap_or("-").into(),
            event_source,
            clear_interval,
            block_ms,
            poll: bench.opts.poll,
            reply_in_flight: bench.opts.reply_in_flight,
            channels: [
                bench.ch_a.clone(),
                bench.ch_b.clone(),
                bench.xch_a.clone(),
                bench.xch_b.clone(),
            ],
            ciphertext_bytes: bench.ciphertext_bytes,
            runs: bench.opts.runs,
            parallel_label: bench.opts.parallel_label(),
            latency_ms: latency.ms(),
            latency_failures: latency.failures,
            oneway_ms: ics20.oneway_ms,
            roundtrip_ms: ics20.roundtrip_ms,
            ics20_failures: ics20.failures,
            parallel_ms: levels.iter().flat_map(Level::ms).collect(),
            levels: levels
                .iter()
                .map(|l| LevelRow {
                    in_flight: l.in_flight,
                    completed: l.completed,
                    failures: l.failures,
                    wall_ms: l.wall_ms,
                    per_min: l.per_min(),
                    p50_ms: l.p50_ms(),
                })
                .collect(),
            breakdown: gas.breakdown,
            transfer_relay_ms: gas.transfer_relay_ms,
            policy: (
                policy.incoming_per_partner_count,
                policy.incoming_per_remote_requester_count,
                policy.incoming_window_secs,
            ),
            gas: gas.by_kind,
            relayer_msgs: gas.relayer_msgs,
            fee_denom: bench.fee_denom.clone(),
            histories_md,
            wasm: bench.wasm.clone(),
            install: install.0,
            warm: install.1,
            notes: progress.notes(),
            work: bench.work.display().to_string(),
        }
    }

    /// Exchange p50 / ICS-20 round trip p50.
    pub fn ratio_p50(&self) -> Option<f64> {
        let exchange = Stats::of(&self.latency_ms)?.p50;
        let ics20 = Stats::of(&self.roundtrip_ms)?.p50;
        (ics20 != 0).then(|| exchange as f64 / ics20 as f64)
    }

    /// The machine-readable summary.
    pub fn json(&self) -> Value {
        let secs = |ms: Option<i64>| ms.map(|m| (m as f64 / 1000.0 * 1000.0).round() / 1000.0);
        let p = |v: &[i64], f: fn(&Stats) -> i64| secs(Stats::of(v).as_ref().map(f));
        let gas: serde_json::Map<String, Value> = KINDS
            .iter()
            .map(|k| {
                let mut v = self.gas.get(*k).cloned().unwrap_or_default();
                v.sort_unstable();
                (
                    k.to_string(),
                    json!({"n": v.len(), "median": percentile(&v, 50)}),
                )
            })
            .collect();
        let wasm: serde_json::Map<String, Value> = self
            .wasm
            .iter()
            .map(|w| (w.name.clone(), json!(w.bytes)))
            .collect();
        json!({
            "when": self.when,
            "command": self.command,
            "commit": self.commit,
            "cores": self.cores,
            "runs": self.runs,
            "exchange_p50_s": p(&self.latency_ms, |s| s.p50),
            "exchange_p95_s": p(&self.latency_ms, |s| s.p95),
            "exchange_failures": self.latency_failures,
            "ics20_roundtrip_p50_s": p(&self.roundtrip_ms, |s| s.p50),
            "ics20_oneway_p50_s": p(&self.oneway_ms, |s| s.p50),
            "ics20_failures": self.ics20_failures,
            "ratio_p50": self.ratio_p50().map(|r| (r * 100.0).round() / 100.0),
            "exchanges_per_min": self.levels.iter().map(|l| json!({
                "in_flight": l.in_flight,
                "completed": l.completed,
                "failures": l.failures,
                "wall_s": secs(Some(l.wall_ms)),
                "per_min": (l.per_min * 10.0).round() / 10.0,
                "p50_s": secs(l.p50_ms),
            })).collect::<Vec<_>>(),
            "gas_median": gas,
            "wasm_bytes": wasm,
        })
    }

    /// The Markdown report.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let w = &mut md;
        let s = |ms: Option<i64>| ms.map_or("-".into(), |m| format!("{:.2} s", m as f64 / 1000.0));
        let opt = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
        let [ch_a, ch_b, xch_a, xch_b] = &self.channels;
        let _ = writeln!(w, "# ehrx benchmarks ({})\n", self.title_time);
        let _ = writeln!(
            w,
            "- command: `{}` (runtime {})",
            self.command,
            fmt_duration(self.runtime_secs)
        );
        let _ = writeln!(
            w,
            "- machine: {} cores ({}), {} GiB RAM, {}",
            self.cores, self.cpu, self.mem_gib, self.kernel
        );
        let _ = writeln!(w, "- repo: {} ({})", self.commit, self.commit_date);
        let _ = writeln!(
            w,
            "- devnet: wasmd {}, {}, event source {}; measured block time {} ms ({A}), {} ms ({B}), mean of the last 100 blocks",
            self.wasmd_version,
            self.hermes_version,
            self.event_source,
            opt(self.block_ms[0]),
            opt(self.block_ms[1])
        );
        let _ = writeln!(
            w,
            "- Hermes clear_interval: {} blocks; ehrx poll interval (request and reply service): {} s; reply service: {}",
            self.clear_interval,
            self.poll,
            reply_in_flight(self.reply_in_flight)
        );
        let _ = writeln!(
            w,
            "- exchange channel {A} {ch_a} <-> {B} {ch_b}; ICS-20 channel {xch_a} <-> {xch_b}; stored record: ciphertext {} bytes",
            self.ciphertext_bytes
        );
        let _ = writeln!(
            w,
            "- percentiles: nearest rank (p95 of n < 20 samples is the maximum)\n"
        );

        let _ = writeln!(
            w,
            "## Latency: request submitted -> decrypted reply written, vs ICS-20\n"
        );
        let _ = writeln!(
            w,
            "| what | n | p50 | p95 | min | max | mean |\n|---|---|---|---|---|---|---|"
        );
        let row = |w: &mut String, label: &str, v: &[i64]| {
            let st = Stats::of(v);
            let _ = writeln!(
                w,
                "| {label} | {} | {} | {} | {} | {} | {} |",
                v.len(),
                s(st.map(|x| x.p50)),
                s(st.map(|x| x.p95)),
                s(st.map(|x| x.min)),
                s(st.map(|x| x.max)),
                s(st.map(|x| x.mean))
            );
        };
        row(
            w,
            "ehrx exchange (`ehrx request` wall time, sequential, fresh requester each)",
            &self.latency_ms,
        );
        row(
            w,
            &format!("ICS-20 one way (MsgTransfer taken by the node -> balance up on {B})"),
            &self.oneway_ms,
        );
        row(
            w,
            &format!(
                "ICS-20 round trip (MsgTransfer taken by the node -> acknowledgement indexed on {A})"
            ),
            &self.roundtrip_ms,
        );
        row(
            w,
            &format!(
                "exchange under load (every level of {} in flight, per requester)",
                self.parallel_label
            ),
            &self.parallel_ms,
        );
        let _ = writeln!(
            w,
            "\nFailures: exchange {}/{}, ICS-20 {}/{}. Ratio of the p50s, exchange / ICS-20 round trip: **{}**.\n",
            self.latency_failures,
            self.runs,
            self.ics20_failures,
            self.runs,
            self.ratio_p50().map_or("-".into(), |r| format!("{r:.2}"))
        );
        let list = |v: &[i64]| {
            v.iter()
                .map(|m| format!("{:.2}", *m as f64 / 1000.0))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(
            w,
            "Runs in order (s): exchange {}; ICS-20 {}; under load {}.\n",
            list(&self.latency_ms),
            list(&self.oneway_ms),
            list(&self.parallel_ms)
        );

        let _ = writeln!(
            w,
            "### Where the exchange time goes (median of the sequential runs, ms)\n"
        );
        let _ = writeln!(
            w,
            "Stage boundaries are block header (BFT) times of the txs involved, so each boundary is\nonly as precise as a block (~{} ms); the stages add up to the total.\n",
            opt(self.block_ms[0])
        );
        let _ = writeln!(w, "| stage | median |\n|---|---|");
        let stages = [
            format!("submit: ehrx start -> SubmitRequest block on {A}"),
            format!("relay A->B: SubmitRequest block -> MsgRecvPacket block on {B}"),
            format!("reply service: RecvPacket block -> SubmitReply block on {B}"),
            format!("relay B->A: SubmitReply block -> MsgRecvPacket block on {A}"),
            format!("requester notices \"answered\" (status poll) -> RetrieveReply block on {A}"),
            "verify + decrypt + write".to_string(),
        ];
        for (i, label) in stages.iter().enumerate() {
            let mut col: Vec<i64> = self.breakdown.iter().map(|r| r[i]).collect();
            col.sort_unstable();
            let _ = writeln!(w, "| {label} | {} |", opt(percentile(&col, 50)));
        }
        let mut relay = self.transfer_relay_ms.clone();
        relay.sort_unstable();
        let _ = writeln!(
            w,
            "\nSame relay leg for ICS-20 (MsgTransfer block on {A} -> MsgRecvPacket block on {B}): median {} ms (n={}).\n",
            opt(percentile(&relay, 50)),
            relay.len()
        );

        let _ = writeln!(w, "## Throughput\n");
        let _ = writeln!(
            w,
            "Each level: that many fresh requesters start at once, one exchange each, each as its own clinician. Policy in force (registry defaults): 1 request per requesting peer per 60 s; on the partner, {} requests per partner and {} per remote clinician per {} s.\n",
            self.policy.0, self.policy.1, self.policy.2
        );
        let _ = writeln!(
            w,
            "| in flight | completed | failures | wall time | exchanges/min | p50 per exchange |\n|---|---|---|---|---|---|"
        );
        for l in &self.levels {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | **{:.1}** | {} |",
                l.in_flight,
                l.completed,
                l.failures,
                s(Some(l.wall_ms)),
                l.per_min,
                s(l.p50_ms)
            );
        }

        let _ = writeln!(w, "\n## Gas used per transaction type\n");
        let _ = writeln!(
            w,
            "| tx | n | gas_used (median) | min – max | notes |\n|---|---|---|---|---|"
        );
        let rows: [(String, &str, String); 13] = [
            (
                format!("StoreRecord ({B})"),
                "store",
                format!("ciphertext {} bytes", self.ciphertext_bytes),
            ),
            (
                format!("SubmitRequest ({A})"),
                "request",
                "accepted, sends the request packet".into(),
            ),
            (
                "SubmitRequest soft-rejected (RateLimited)".into(),
                "softreject",
                "tx succeeds, outcome=rejected, strike recorded".into(),
            ),
            (
                format!("SubmitReply ({B}, reply service)"),
                "reply",
                "records found, sends the reply packet".into(),
            ),
            (format!("RetrieveReply ({A})"), "retrieve", String::new()),
            (
                "registry RegisterPeer".into(),
                "register",
                "single-message tx by the registry admin".into(),
            ),
            (
                format!("Hermes: RecvPacket request on {B}"),
                "recv_req",
                "single-packet txs only".into(),
            ),
            (
                format!("Hermes: Acknowledgement request on {A}"),
                "ack_req",
                String::new(),
            ),
            (
                format!("Hermes: RecvPacket reply on {A}"),
                "recv_reply",
                String::new(),
            ),
            (
                format!("Hermes: Acknowledgement reply on {B}"),
                "ack_reply",
                String::new(),
            ),
            (
                format!("ICS-20 MsgTransfer ({A})"),
                "transfer",
                format!("1{}", self.fee_denom),
            ),
            (
                format!("Hermes: RecvPacket ICS-20 on {B}"),
                "recv_ics20",
                String::new(),
            ),
            (
                format!("Hermes: Acknowledgement ICS-20 on {A}"),
                "ack_ics20",
                String::new(),
            ),
        ];
        for (label, kind, note) in rows {
            let mut v = self.gas.get(kind).cloned().unwrap_or_default();
            v.sort_unstable();
            let range = match (v.first(), v.last()) {
                (Some(lo), Some(hi)) => format!("{lo} – {hi}"),
                _ => "-".into(),
            };
            let msgs = self
                .relayer_msgs
                .get(kind)
                .map(|m| count_list(m))
                .filter(|m| !m.is_empty())
                .map(|m| format!(" (txs: {m})"))
                .unwrap_or_default();
            let _ = writeln!(
                w,
                "| {label} | {} | {} | {range} | {note}{msgs} |",
                v.len(),
                opt(percentile(&v, 50))
            );
        }
        let _ = writeln!(
            w,
            "\nHermes txs usually bundle a MsgUpdateClient with the packet message; gas_used is for the whole tx.\n"
        );
        if let Some(histories) = &self.histories_md {
            let _ = writeln!(
                w,
                "## Patient histories (issue 9): one exchange each through ehrx\n\n{histories}"
            );
            let _ = writeln!(
                w,
                "\nLatency is `ehrx request` from start to the validated history written; the store is\ntimed apart. Peak RSS of ehrx is its own VmHWM (EHRX_REPORT_PEAK_RSS); with its wasmd\nprocesses it is GNU time's maximum resident set size of the process tree (the largest).\n"
            );
        }
        let _ = writeln!(
            w,
            "## Wasm sizes\n\n| artifact | bytes | KiB | gzip -9 bytes | sha256 (prefix) | deployed on the devnet: bytes, sha256 |\n|---|---|---|---|---|---|"
        );
        for a in &self.wasm {
            let deployed = a
                .deployed
                .as_ref()
                .map_or("-, -".into(), |(b, sha)| format!("{b}, {sha}"));
            let _ = writeln!(
                w,
                "| artifacts/{}.wasm | {} | {:.1} | {} | {} | {deployed} |",
                a.name,
                a.bytes,
                a.bytes as f64 / 1024.0,
                a.gzip.map_or("-".into(), |g| g.to_string()),
                a.sha
            );
        }
        let _ = writeln!(w, "\n## Tool install time\n");
        let _ = writeln!(
            w,
            "| piece | last build (from $EHRX_TOOLS/logs/<piece>.took; cold figures: scripts/cold-rehearsal.sh) |\n|---|---|"
        );
        for (piece, took) in &self.install {
            let _ = writeln!(w, "| {piece} | {took} |");
        }
        let _ = writeln!(
            w,
            "\nWarm (`scripts/install-tools.sh`, everything cached): {}",
            self.warm.as_deref().unwrap_or("not measured")
        );
        if !self.notes.is_empty() {
            let _ = writeln!(w, "\n## Notes from this run\n");
            for n in &self.notes {
                let _ = writeln!(w, "- {n}");
            }
        }
        let _ = writeln!(w, "\nRaw material: {}", self.work);
        md
    }
}

/// `UpdateClient+RecvPacket x3, RecvPacket x1`: each message list with its count, most
/// frequent first.
pub fn count_list(lists: &[String]) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for l in lists {
        *counts.entry(l.as_str()).or_default() += 1;
    }
    let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts
        .iter()
        .map(|(l, n)| format!("{l} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes the report (stdout and bench-<ts>.md) and the JSON (bench-<ts>.json, --json).
pub fn write(bench: &Bench, results: &Results, progress: &Progress) -> anyhow::Result<()> {
    let dir = bench.devnet.dir.join("bench");
    std::fs::create_dir_all(&dir)?;
    let md_path = dir.join(format!("bench-{}.md", bench.ts));
    let json_path = dir.join(format!("bench-{}.json", bench.ts));
    let md = results.markdown();
    print!("{md}");
    std::fs::write(&md_path, &md)?;
    let json = serde_json::to_string_pretty(&results.json())? + "\n";
    std::fs::write(&json_path, &json)?;
    if let Some(extra) = &bench.opts.json {
        std::fs::write(extra, &json)?;
    }
    progress.log(&format!(
        "report: {}, summary {}{} (runtime {})",
        md_path.display(),
        json_path.display(),
        bench
            .opts
            .json
            .as_ref()
            .map_or(String::new(), |p| format!(" (and {})", p.display())),
        fmt_duration(results.runtime_secs)
    ));
    Ok(())
}

/// How many replies the bench's reply service submits at once, as the report says it.
pub fn reply_in_flight(n: Option<u16>) -> String {
    match n {
        Some(n) => format!("up to {n} replies at once (--reply-in-flight)"),
        None => "ehrx's default of replies at once (`ehrx reply-service --max-in-flight`)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Results {
        Results {
            command: "scripts/bench.sh --runs 3".into(),
            runs: 3,
            parallel_label: "1,10".into(),
            latency_ms: vec![9000, 8000, 10000],
            latency_failures: 0,
            oneway_ms: vec![3000, 3100, 2900],
            roundtrip_ms: vec![4000, 4100, 3900],
            ics20_failures: 1,
            levels: vec![LevelRow {
                in_flight: 10,
                completed: 9,
                failures: 1,
                wall_ms: 30_000,
                per_min: 18.0,
                p50_ms: Some(12_000),
            }],
            gas: [("request".to_string(), vec![300, 100, 200])].into(),
            relayer_msgs: [(
                "recv_req".to_string(),
                vec!["UpdateClient+RecvPacket".to_string(); 2],
            )]
            .into(),
            wasm: vec![Wasm {
                name: "exchange".into(),
                bytes: 2048,
                gzip: Some(1000),
                sha: "abcd".into(),
                deployed: None,
            }],
            breakdown: vec![[1, 2, 3, 4, 5, 6]],
            ..Results::default()
        }
    }

    #[test]
    fn the_json_has_the_keys_of_issue_10() {
        let json = sample().json();
        assert_eq!(json["exchange_p50_s"], 9.0);
        assert_eq!(json["exchange_p95_s"], 10.0);
        assert_eq!(json["ics20_roundtrip_p50_s"], 4.0);
        assert_eq!(json["ics20_oneway_p50_s"], 3.0);
        assert_eq!(json["ratio_p50"], 2.25);
        assert_eq!(json["ics20_failures"], 1);
        let level = &json["exchanges_per_min"][0];
        assert_eq!(
            (
                &level["in_flight"],
                &level["per_min"],
                &level["p50_s"],
                &level["failures"]
            ),
            (&json!(10), &json!(18.0), &json!(12.0), &json!(1))
        );
        assert_eq!(
            json["gas_median"]["request"],
            json!({"n": 3, "median": 200})
        );
        for kind in KINDS {
            assert!(json["gas_median"][kind].is_object(), "{kind}");
        }
        assert_eq!(
            json["gas_median"]["ack_ics20"],
            json!({"n": 0, "median": null})
        );
        assert_eq!(json["wasm_bytes"]["exchange"], 2048);
    }

    #[test]
    fn no_samples_give_nulls_not_zeros() {
        let json = Results::default().json();
        assert!(json["exchange_p50_s"].is_null());
        assert!(json["ratio_p50"].is_null());
    }

    #[test]
    fn the_report_has_every_section_and_counts_failures() {
        let md = sample().markdown();
        for section in [
            "## Latency",
            "### Where the exchange time goes",
            "## Throughput",
            "## Gas used per transaction type",
            "## Wasm sizes",
            "## Tool install time",
        ] {
            assert!(md.contains(section), "{section}");
        }
        assert!(md.contains("Failures: exchange 0/3, ICS-20 1/3"), "{md}");
        assert!(
            md.contains("| 10 | 9 | 1 | 30.00 s | **18.0** | 12.00 s |"),
            "{md}"
        );
        assert!(md.contains("(txs: UpdateClient+RecvPacket x2)"), "{md}");
        assert!(md.contains("| 3 | 200 | 100 – 300 |"), "{md}");
        assert!(!md.contains("## Patient histories"));
        assert!(!md.contains("## Notes"));
    }

    #[test]
    fn hermes_settings_are_read_from_its_config() {
        let config = "[mode.packets]\nclear_interval = 100\n[[chains]]\nid = 'a'\nevent_source = { mode = 'push', url = 'ws://x' }\n";
        let (source, clear) = hermes_settings(config);
        assert_eq!(clear, "100");
        assert!(source.contains("mode=\"push\""), "{source}");
    }
}
