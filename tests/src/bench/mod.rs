//! The figures of DESIGN.md §10, measured on the running devnet in one run, side by side
//! with a plain ICS-20 transfer over the same Hermes (`scripts/bench.sh` builds and runs
//! `src/bin/bench.rs`, which calls [`run`]). One module per phase:
//!
//! - `setup`: a quiet devnet (other users waited out), the devnet up and its ICS-20
//!   channel, wasm sizes, fresh keyring keys and ehrx sites, one admin transaction per
//!   chain that funds and registers them, a record stored, the reply service started with
//!   every request already pending on B in its state file (so it never answers those);
//! - `latency`: sequential `ehrx request`s, each from a fresh requester, and one
//!   soft-rejected second request;
//! - `throughput`: each `--parallel` level of fresh requesters at once;
//! - `ics20`: `MsgTransfer` of 1 fee-denom A → B, one way (balance up on B) and round trip
//!   (acknowledgement indexed on A), polled every 100 ms;
//! - `gas`: gas of every transaction kind, Hermes' packet transactions, the per-stage
//!   breakdown from block header times, requests answered that were not ours;
//! - `report`: the Markdown report and the JSON summary (pure).
//!
//! All chain access is through `ehrx-chain`; exchanges are made by the `ehrx` binary
//! (`$EHRX_BIN`), the product under test, run with a PATH that has no `wasmd`.

pub mod gas;
pub mod ics20;
pub mod latency;
pub mod report;
pub mod setup;
pub mod throughput;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

/// The default histories of phase 6 (`bench_histories --kinds`).
pub const DEFAULT_HISTORIES: &str = "small-10k,mid-1m,large-5m,attachments-5m,whole";

/// `scripts/bench.sh`'s options.
#[derive(clap::Parser, Debug, Clone, PartialEq)]
#[command(
    name = "scripts/bench.sh",
    about = "The figures of DESIGN.md §10 on the running devnet, beside a plain ICS-20 transfer"
)]
pub struct Options {
    /// Sequential exchanges and ICS-20 transfers.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    /// Requests in flight in the throughput phase: a comma-separated list of levels, each
    /// its own round of fresh requesters.
    #[arg(long, default_value = "1,10,50", value_delimiter = ',',
          value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: Vec<u32>,
    /// Also write the machine-readable summary to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Poll interval of `ehrx request` and the reply service, whole seconds.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub poll: u64,
    /// Do not time scripts/install-tools.sh (warm).
    #[arg(long)]
    pub skip_install: bool,
    /// Skip the patient histories (phase 6).
    #[arg(long)]
    pub no_histories: bool,
    /// The histories of phase 6 (whole is the entire Synthea patient, ~5,500 resources).
    #[arg(long, default_value = DEFAULT_HISTORIES)]
    pub histories: String,
    /// Keep the bench-* keys in the devnet keyrings (default: deleted at the end).
    #[arg(long)]
    pub keep_keys: bool,
    /// Wait up to S seconds (0 = not at all) for other users of the devnet to finish first:
    /// the e2e suite, scripts/demo.sh, other `ehrx reply-service`s.
    #[arg(long, value_name = "S", default_value_t = 1200)]
    pub quiet_wait: u64,
    /// Replies the bench's reply service submits at once (`ehrx reply-service
    /// --max-in-flight`; ehrx's own default when not given).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub reply_in_flight: Option<u16>,
}

impl Options {
    /// The histories to measure, none with `--no-histories`.
    pub fn histories(&self) -> Option<&str> {
        (!self.no_histories && !self.histories.is_empty()).then_some(self.histories.as_str())
    }

    /// Fresh requesters the throughput phase needs: the sum of the levels.
    pub fn parallel_total(&self) -> u32 {
        self.parallel.iter().sum()
    }

    /// The levels as given, `1,10,50`.
    pub fn parallel_label(&self) -> String {
        let levels: Vec<String> = self.parallel.iter().map(u32::to_string).collect();
        levels.join(",")
    }
}

/// Nearest-rank percentile `p` (0–100] of sorted `values`.
pub fn percentile<T: Copy>(sorted: &[T], p: usize) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

/// n, p50, p95, min, max, mean of a sample (ms, or gas).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub p50: i64,
    pub p95: i64,
    pub min: i64,
    pub max: i64,
    pub mean: i64,
}

impl Stats {
    pub fn of(values: &[i64]) -> Option<Stats> {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        Some(Stats {
            n: sorted.len(),
            p50: percentile(&sorted, 50)?,
            p95: percentile(&sorted, 95)?,
            min: sorted[0],
            max: *sorted.last()?,
            mean: sorted.iter().sum::<i64>() / sorted.len() as i64,
        })
    }
}

/// Progress on stderr, each line with the time since the start, and the notes that also go
/// into the report.
pub struct Progress {
    start: Instant,
    step: Mutex<Option<(String, Instant)>>,
    notes: Mutex<Vec<String>>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            start: Instant::now(),
            step: Mutex::new(None),
            notes: Mutex::new(Vec::new()),
        }
    }
}

impl Progress {
    fn stamp(&self) -> String {
        format!("[bench {:>6.1}s]", self.start.elapsed().as_secs_f64())
    }

    /// Starts a step (and says how long the last one took).
    pub fn step(&self, what: &str) {
        self.step_done();
        eprintln!("{} ==> {what}", self.stamp());
        *self.step.lock().unwrap() = Some((what.to_string(), Instant::now()));
    }

    /// Ends the current step, if any, with its duration.
    pub fn step_done(&self) {
        if let Some((what, at)) = self.step.lock().unwrap().take() {
            eprintln!(
                "{}     done in {:.1}s: {what}",
                self.stamp(),
                at.elapsed().as_secs_f64()
            );
        }
    }

    pub fn log(&self, line: &str) {
        eprintln!("{}     {line}", self.stamp());
    }

    /// A line for the report's notes, also shown now.
    pub fn note(&self, line: String) {
        eprintln!("{} NOTE {line}", self.stamp());
        self.notes.lock().unwrap().push(line);
    }

    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap().clone()
    }

    pub fn elapsed_secs(&self) -> u64 {
        self.start.elapsed().as_secs()
    }
}

/// Milliseconds since the epoch, local clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Runs every phase and writes the report: `scripts/bench.sh`.
pub fn run(opts: Options, command: String) -> anyhow::Result<()> {
    let progress = Progress::default();
    let mut bench = setup::prepare(&opts, &progress)?;
    let mut service = setup::start_reply_service(&mut bench, &progress)?;
    let latency = latency::run(&bench, &progress);
    let levels = throughput::run(&bench, &progress);
    service.stop();
    let busy = setup::others();
    if !busy.is_empty() {
        progress.note(format!(
            "other devnet users were running during the exchange phases: {}",
            busy.into_iter().take(3).collect::<Vec<_>>().join("; ")
        ));
    }
    let ics20 = ics20::run(&bench, &progress);
    let install = setup::install_times(&bench, &progress);
    let histories = setup::histories(&bench, &progress);
    progress.step("gas from the transactions; relayer transactions; per-stage breakdown");
    let gas = gas::collect(&bench, &latency, &levels, &ics20, &progress);
    let block_ms = gas::block_times(&bench);
    setup::cleanup(&bench, &progress);
    progress.step_done();
    let results = report::Results::assemble(
        &bench, command, latency, levels, ics20, gas, block_ms, install, histories, &progress,
    );
    report::write(&bench, &results, &progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=10).collect();
        let s = Stats::of(&v).unwrap();
        assert_eq!(
            (s.n, s.p50, s.p95, s.min, s.max, s.mean),
            (10, 5, 10, 1, 10, 5)
        );
        let s = Stats::of(&[30, 10, 20]).unwrap();
        assert_eq!((s.p50, s.p95), (20, 30));
        assert_eq!(Stats::of(&[]), None);
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(Stats::of(&v).unwrap().p95, 95);
        assert_eq!(percentile(&[7u64], 50), Some(7));
    }

    #[test]
    fn options_default_as_bench_sh_did() {
        let o = Options::try_parse_from(["bench"]).unwrap();
        assert_eq!(o.runs, 10);
        assert_eq!(o.parallel, vec![1, 10, 50]);
        assert_eq!(o.poll, 1);
        assert_eq!(o.quiet_wait, 1200);
        assert_eq!(o.histories(), Some(DEFAULT_HISTORIES));
        assert!(!o.skip_install && !o.keep_keys && o.json.is_none());
        assert_eq!(o.parallel_total(), 61);
    }

    #[test]
    fn options_parse_and_refuse_as_bench_sh_did() {
        let o = Options::try_parse_from([
            "bench",
            "--runs",
            "5",
            "--parallel",
            "1,10",
            "--no-histories",
            "--skip-install",
            "--json",
            "/tmp/x.json",
            "--quiet-wait",
            "0",
            "--keep-keys",
        ])
        .unwrap();
        assert_eq!((o.runs, o.parallel_label()), (5, "1,10".to_string()));
        assert_eq!(o.histories(), None);
        assert_eq!(o.json.as_deref(), Some(std::path::Path::new("/tmp/x.json")));
        assert!(o.skip_install && o.keep_keys);
        for bad in [
            &["bench", "--runs", "0"][..],
            &["bench", "--parallel", "1,,2"],
            &["bench", "--parallel", "0"],
            &["bench", "--poll", "0.5"],
            &["bench", "--quiet-wait", "-1"],
            &["bench", "--frobnicate"],
        ] {
            assert!(Options::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
