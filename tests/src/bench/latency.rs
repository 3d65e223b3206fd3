//! Phase 1: latency of a full exchange, the wall time of `ehrx request` (SubmitRequest →
//! relay → reply service on B → relay → RetrieveReply → decrypted Bundle written), `--runs`
//! sequential runs, each from a fresh registered requester (the default policy allows one
//! request per peer per minute); right after the first, the same requester again, which
//! the rate limit soft-rejects (its gas is the soft-rejection figure).

use super::setup::{Bench, Site, B};
use super::{now_ms, Progress};
use crate::devnet::path_without_wasmd;
use crate::peer_tool::{ehrx_bin, request_args};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `ehrx request` is given up on (killed) after this long.
const REQUEST_DEADLINE: Duration = Duration::from_secs(240);

/// One `ehrx request`.
#[derive(Debug, Clone)]
pub struct Run {
    pub tag: String,
    pub site: Site,
    /// Local clock, ms since the epoch, at the start and the end.
    pub t0: i64,
    pub t1: i64,
    /// ehrx's exit code; `None` when killed at the deadline.
    pub rc: Option<i32>,
    /// From ehrx's JSON report on stdout.
    pub request_id: Option<String>,
    /// The last line ehrx wrote on stderr, for the notes of a failure.
    pub last_line: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.rc == Some(0)
    }

    pub fn ms(&self) -> i64 {
        self.t1 - self.t0
    }

    /// `exit 3`, or `killed after 240 s`.
    pub fn exit(&self) -> String {
        match self.rc {
            Some(rc) => format!("ehrx exit {rc}"),
            None => format!("killed after {} s", REQUEST_DEADLINE.as_secs()),
        }
    }
}

/// `ehrx request` from `site` to B as its clinician; stdout and stderr kept in
/// `<work>/req/<tag>.{out,err}`.
pub fn request(bench: &Bench, site: &Site, tag: &str) -> Run {
    let dir = bench.work.join("req");
    std::fs::create_dir_all(&dir).expect("req folder");
    let out_file = dir.join(format!("{tag}.out"));
    let err_file = dir.join(format!("{tag}.err"));
    let mut args = request_args(
        &site.config,
        B,
        &site.clinician.0,
        &bench.patient_a(),
        &site.dir.join(format!("history-{tag}.json")),
        180,
    );
    args.push("--clinician-key".into());
    args.push(Bench::path_arg(&site.clinician.1).to_string());
    let t0 = now_ms();
    let spawned = (|| {
        Command::new(ehrx_bin(&bench.devnet))
            .args(&args)
            .env("PATH", path_without_wasmd())
            .stdout(Stdio::from(std::fs::File::create(&out_file)?))
            .stderr(Stdio::from(std::fs::File::create(&err_file)?))
            .spawn()
    })();
    let rc = match spawned {
        Ok(mut child) => loop {
            match child.try_wait() {
                Ok(Some(status)) => break status.code(),
                Ok(None) if now_ms() - t0 > REQUEST_DEADLINE.as_millis() as i64 => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break None,
            }
        },
        Err(e) => {
            let _ = std::fs::write(&err_file, format!("cannot run ehrx: {e}\n"));
            Some(127)
        }
    };
    let t1 = now_ms();
    let request_id = std::fs::read(&out_file)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["request_id"].as_str().map(str::to_string));
    let last_line = std::fs::read_to_string(&err_file)
        .unwrap_or_default()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    Run {
        tag: tag.to_string(),
        site: site.clone(),
        t0,
        t1,
        rc,
        request_id,
        last_line,
    }
}

/// What phase 1 measured.
#[derive(Debug, Default)]
pub struct Latency {
    pub runs: Vec<Run>,
    pub failures: u32,
    /// The second request of the first requester, within its rate-limit window.
    pub soft: Option<Run>,
}

impl Latency {
    /// Wall times of the successful runs, in order.
    pub fn ms(&self) -> Vec<i64> {
        self.runs.iter().filter(|r| r.ok()).map(Run::ms).collect()
    }
}

pub fn run(bench: &Bench, progress: &Progress) -> Latency {
    let n = bench.req.len();
    progress.step(&format!(
        "latency: {n} sequential exchanges (fresh requester each)"
    ));
    let mut latency = Latency::default();
    for (i, site) in bench.req.iter().enumerate() {
        let run = request(bench, site, &format!("lat{}", i + 1));
        if run.ok() {
            progress.log(&format!(
                "run {}/{n}: {:.2} s",
                i + 1,
                run.ms() as f64 / 1000.0
            ));
        } else {
            latency.failures += 1;
            progress.note(format!(
                "latency run {} failed ({}): {}",
                i + 1,
                run.exit(),
                run.last_line
            ));
        }
        latency.runs.push(run);
        if i == 0 {
            let soft = request(bench, site, "softreject");
            if soft.rc == Some(4) {
                progress.log(&format!(
                    "second request of {} within the window: soft-rejected",
                    site.name
                ));
            } else {
                progress.note(format!(
                    "expected a rate-limited soft rejection (exit 4), got {}",
                    soft.exit()
                ));
            }
            latency.soft = Some(soft);
        }
    }
    latency
}
