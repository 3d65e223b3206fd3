//! The reply service's health and counters, served as Prometheus text on a local port
//! (`ehrx reply-service --metrics-addr 127.0.0.1:9464`): `GET /metrics` for a scraper,
//! `GET /health` for a load balancer or a supervisor (200 while passes succeed, 503 when
//! the last pass failed or none ran for too long).
//!
//! Only counts and times: no request id, partner, patient or key ever appears here.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Counters since the service started, and gauges of the last pass.
#[derive(Debug, Default)]
pub struct Metrics {
    pub passes: AtomicU64,
    pub failed_passes: AtomicU64,
    pub answered: AtomicU64,
    pub refused: AtomicU64,
    pub skipped: AtomicU64,
    /// Requests that could not be answered in a pass and are tried again.
    pub errors: AtomicU64,
    /// Pending requests seen in the last pass (the queue depth).
    pub pending: AtomicU64,
    /// Replies still being sent in chunks.
    pub uploading: AtomicU64,
    /// Unix seconds of the last pass that succeeded, and of the last one at all.
    pub last_success: AtomicU64,
    pub last_pass: AtomicU64,
    /// Whether the last pass failed.
    pub last_failed: AtomicBool,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Metrics {
    pub fn pass_succeeded(
        &self,
        answered: u64,
        refused: u64,
        skipped: u64,
        errors: u64,
        pending: u64,
        uploading: u64,
    ) {
        let now = now_unix();
        self.passes.fetch_add(1, Ordering::Relaxed);
        self.answered.fetch_add(answered, Ordering::Relaxed);
        self.refused.fetch_add(refused, Ordering::Relaxed);
        self.skipped.fetch_add(skipped, Ordering::Relaxed);
        self.errors.fetch_add(errors, Ordering::Relaxed);
        self.pending.store(pending, Ordering::Relaxed);
        self.uploading.store(uploading, Ordering::Relaxed);
        self.last_pass.store(now, Ordering::Relaxed);
        self.last_success.store(now, Ordering::Relaxed);
        self.last_failed.store(false, Ordering::Relaxed);
    }

    pub fn pass_failed(&self) {
        self.passes.fetch_add(1, Ordering::Relaxed);
        self.failed_passes.fetch_add(1, Ordering::Relaxed);
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.last_pass.store(now_unix(), Ordering::Relaxed);
        self.last_failed.store(true, Ordering::Relaxed);
    }

    /// Healthy when the last pass succeeded and it was less than `stale_secs` ago.
    pub fn healthy(&self, stale_secs: u64) -> bool {
        let success = self.last_success.load(Ordering::Relaxed);
        success != 0
            && !self.last_failed.load(Ordering::Relaxed)
            && now_unix().saturating_sub(success) <= stale_secs
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let rows: [(&str, &str, &str, u64); 10] = [
            (
                "ehrx_reply_passes_total",
                "counter",
                "passes over the pending requests",
                get(&self.passes),
            ),
            (
                "ehrx_reply_failed_passes_total",
                "counter",
                "passes that failed (chain unreachable, ...)",
                get(&self.failed_passes),
            ),
            (
                "ehrx_reply_answered_total",
                "counter",
                "requests answered",
                get(&self.answered),
            ),
            (
                "ehrx_reply_refused_total",
                "counter",
                "replies the exchange contract refused",
                get(&self.refused),
            ),
            (
                "ehrx_reply_skipped_total",
                "counter",
                "requests not answered (expired, unusable reply key)",
                get(&self.skipped),
            ),
            (
                "ehrx_reply_errors_total",
                "counter",
                "requests to try again, and failed passes",
                get(&self.errors),
            ),
            (
                "ehrx_reply_pending",
                "gauge",
                "pending requests seen in the last pass (queue depth)",
                get(&self.pending),
            ),
            (
                "ehrx_reply_uploading",
                "gauge",
                "replies still being sent in chunks",
                get(&self.uploading),
            ),
            (
                "ehrx_reply_last_success_timestamp_seconds",
                "gauge",
                "unix time of the last pass that succeeded",
                get(&self.last_success),
            ),
            (
                "ehrx_reply_last_pass_timestamp_seconds",
                "gauge",
                "unix time of the last pass",
                get(&self.last_pass),
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
        out
    }
}

/// Serves `/metrics` and `/health` on `addr` from a thread; returns the bound address.
pub fn serve(
    addr: &str,
    metrics: Arc<Metrics>,
    stale_secs: u64,
) -> anyhow::Result<std::net::SocketAddr> {
    let server = tiny_http::Server::http(addr).map_err(|e| {
        anyhow::anyhow!("cannot serve metrics on {addr}: {e} (choose another --metrics-addr)")
    })?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| anyhow::anyhow!("metrics address {addr} is not an IP address"))?;
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let (status, body, kind) = match request.url() {
                "/metrics" => (200, metrics.render(), "text/plain; version=0.0.4"),
                "/health" if metrics.healthy(stale_secs) => (200, "ok\n".into(), "text/plain"),
                "/health" => (
                    503,
                    "the last pass failed or is too old\n".into(),
                    "text/plain",
                ),
                _ => (404, "try /metrics or /health\n".into(), "text/plain"),
            };
            let header =
                tiny_http::Header::from_bytes("Content-Type", kind).expect("static header");
            let _ = request.respond(
                tiny_http::Response::from_string(body)
                    .with_status_code(status)
                    .with_header(header),
            );
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn counters_and_health_are_served_on_a_local_port() {
        let metrics = Arc::new(Metrics::default());
        let addr = serve("127.0.0.1:0", metrics.clone(), 60).unwrap();
        assert!(
            get(addr, "/health").starts_with("HTTP/1.0 503"),
            "no pass yet"
        );
        metrics.pass_succeeded(3, 1, 0, 2, 5, 1);
        let text = get(addr, "/metrics");
        assert!(text.starts_with("HTTP/1.0 200"), "{text}");
        assert!(text.contains("\nehrx_reply_answered_total 3\n"), "{text}");
        assert!(text.contains("\nehrx_reply_refused_total 1\n"), "{text}");
        assert!(text.contains("\nehrx_reply_pending 5\n"), "{text}");
        assert!(
            text.contains("# TYPE ehrx_reply_errors_total counter"),
            "{text}"
        );
        assert!(get(addr, "/health").starts_with("HTTP/1.0 200"));
        metrics.pass_failed();
        assert!(
            get(addr, "/health").starts_with("HTTP/1.0 503"),
            "the last pass failed"
        );
        assert!(get(addr, "/metrics").contains("\nehrx_reply_failed_passes_total 1\n"));
        assert!(get(addr, "/other").starts_with("HTTP/1.0 404"));
    }

    #[test]
    fn a_busy_port_is_named_with_the_fix() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let err = serve(&addr, Arc::new(Metrics::default()), 60)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&addr) && err.contains("--metrics-addr"),
            "{err}"
        );
    }
}
