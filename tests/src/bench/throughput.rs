//! Phase 2: completed exchanges per minute at each `--parallel` level: that many fresh
//! requesters start at once, one exchange each, each as its own clinician.

use super::latency::{request, Run};
use super::setup::Bench;
use super::{now_ms, percentile, Progress};

/// One level of requests in flight.
#[derive(Debug, Clone)]
pub struct Level {
    pub in_flight: u32,
    pub completed: u32,
    pub failures: u32,
    pub wall_ms: i64,
    pub runs: Vec<Run>,
}

impl Level {
    /// Completed exchanges per minute of wall time.
    pub fn per_min(&self) -> f64 {
        if self.wall_ms <= 0 {
            return 0.0;
        }
        self.completed as f64 / self.wall_ms as f64 * 60_000.0
    }

    /// Wall times of the completed exchanges.
    pub fn ms(&self) -> Vec<i64> {
        self.runs.iter().filter(|r| r.ok()).map(Run::ms).collect()
    }

    pub fn p50_ms(&self) -> Option<i64> {
        let mut ms = self.ms();
        ms.sort_unstable();
        percentile(&ms, 50)
    }
}

pub fn run(bench: &Bench, progress: &Progress) -> Vec<Level> {
    let mut levels = Vec::new();
    let mut next = 0usize;
    for &level in &bench.opts.parallel {
        progress.step(&format!(
            "throughput: {level} request(s) in flight, one exchange per requester"
        ));
        let round = &bench.tp[next..next + level as usize];
        next += level as usize;
        let t0 = now_ms();
        let runs: Vec<Run> = std::thread::scope(|scope| {
            let handles: Vec<_> = round
                .iter()
                .map(|site| scope.spawn(move || request(bench, site, &site.name)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("request thread"))
                .collect()
        });
        let wall_ms = now_ms() - t0;
        for r in runs.iter().filter(|r| !r.ok()) {
            progress.note(format!(
                "requester {} ({level} in flight) failed ({}): {}",
                r.site.name,
                r.exit(),
                r.last_line
            ));
        }
        let completed = runs.iter().filter(|r| r.ok()).count() as u32;
        let done = Level {
            in_flight: level,
            completed,
            failures: level - completed,
            wall_ms,
            runs,
        };
        progress.log(&format!(
            "{completed}/{level} completed in {:.2} s: {:.1} exchanges/min, p50 {}",
            wall_ms as f64 / 1000.0,
            done.per_min(),
            done.p50_ms()
                .map_or("-".into(), |ms| format!("{:.2} s", ms as f64 / 1000.0))
        ));
        levels.push(done);
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_per_minute_of_wall_time() {
        let level = Level {
            in_flight: 10,
            completed: 9,
            failures: 1,
            wall_ms: 30_000,
            runs: Vec::new(),
        };
        assert_eq!(level.per_min(), 18.0);
        assert_eq!(level.p50_ms(), None);
        assert_eq!(
            Level {
                wall_ms: 0,
                ..level
            }
            .per_min(),
            0.0
        );
    }
}
