//! The privacy office's alert of a break-glass request (issue 12): when the reply service
//! answers one, it runs a local program and/or posts to a local webhook with the event as
//! JSON. The event names the request, partner, clinician, coded reason and outcome, and
//! carries the clinician's free-text reason, which was sealed to this hospital for exactly
//! this office; it names no patient. Nothing of it is logged: a failed alert is logged by
//! its cause only, and the event stays on the custodian's chain (`ehrx audit break-glass`).

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a hook or webhook may take before it is given up (the reply goes on anyway).
pub const ALERT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BreakGlassEvent {
    /// Always `break_glass`.
    pub event: &'static str,
    /// This (the custodian's) network.
    pub network: String,
    pub partner_id: String,
    pub request_id: String,
    pub clinician_id: String,
    pub purpose: String,
    /// The coded reason, as signed in the request.
    pub reason: String,
    /// The clinician's free text, sealed to this hospital (absent when it did not open).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_text: Option<String>,
    /// Unix seconds: when this chain received it, and the end of its time box.
    pub received_at: u64,
    pub window_ends: u64,
    /// What the reply service answered: records, no_records, declined:<Code>, ...
    pub outcome: String,
}

/// Where alerts go (`ehrx reply-service --on-break-glass PROGRAM --break-glass-webhook URL`).
#[derive(Debug, Clone, Default)]
pub struct Alerts {
    pub program: Option<String>,
    pub webhook: Option<Webhook>,
}

impl Alerts {
    pub fn is_empty(&self) -> bool {
        self.program.is_none() && self.webhook.is_none()
    }

    /// Sends `event` to each target; the causes of those that failed.
    pub fn send(&self, event: &BreakGlassEvent) -> Vec<String> {
        let json = serde_json::to_vec(event).unwrap_or_default();
        let mut failed = Vec::new();
        if let Some(program) = &self.program {
            if let Err(e) = run_program(program, &json) {
                failed.push(format!("--on-break-glass {program}: {e:#}"));
            }
        }
        if let Some(hook) = &self.webhook {
            if let Err(e) = hook.post(&json) {
                failed.push(format!("--break-glass-webhook {}: {e:#}", hook.url));
            }
        }
        failed
    }
}

/// Runs `program` (no arguments, no shell) with the event on its stdin; it must exit 0
/// within [`ALERT_TIMEOUT`].
fn run_program(program: &str, json: &[u8]) -> Result<()> {
    let mut child = Command::new(program)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(json)
            .context("writing the event to its stdin")?;
    }
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("exited with {status}");
            }
            return Ok(());
        }
        if started.elapsed() > ALERT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("still running after {}s; stopped", ALERT_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An `http://` endpoint on this hospital's own network: a loopback or private address
/// (the event carries the sealed reason text, which must not leave the hospital).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    addr: SocketAddr,
    host: String,
    path: String,
}

impl Webhook {
    pub fn parse(url: &str) -> Result<Webhook> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            anyhow!("the break-glass webhook must be an http:// URL on this hospital's network")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let addr = authority
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .or_else(|| format!("{authority}:80").to_socket_addrs().ok()?.next())
            .ok_or_else(|| {
                anyhow!("the break-glass webhook's host {authority} does not resolve")
            })?;
        if !is_local(addr.ip()) {
            bail!(
                "the break-glass webhook {url} is not on this hospital's network (a loopback or \
                 private address): the alert carries the clinician's sealed reason"
            );
        }
        Ok(Webhook {
            url: url.to_string(),
            addr,
            host: authority.to_string(),
            path,
        })
    }

    /// POSTs `json`; any 2xx status is success.
    fn post(&self, json: &[u8]) -> Result<()> {
        let mut stream = TcpStream::connect_timeout(&self.addr, ALERT_TIMEOUT)
            .with_context(|| format!("cannot connect to {}", self.addr))?;
        stream.set_read_timeout(Some(ALERT_TIMEOUT))?;
        stream.set_write_timeout(Some(ALERT_TIMEOUT))?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.path,
            self.host,
            json.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(json)?;
        let mut reply = Vec::new();
        stream.take(4096).read_to_end(&mut reply)?;
        let status_line = String::from_utf8_lossy(&reply);
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| anyhow!("no HTTP status in the answer"))?;
        if !(200..300).contains(&status) {
            bail!("answered HTTP {status}");
        }
        Ok(())
    }
}

fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn event() -> BreakGlassEvent {
        BreakGlassEvent {
            event: "break_glass",
            network: "hospital-b".into(),
            partner_id: "hospital-a".into(),
            request_id: "0123456789abcdef-r1".into(),
            clinician_id: "dr-a".into(),
            purpose: "emergency_treatment".into(),
            reason: "patient_unable_to_consent".into(),
            reason_text: Some("unconscious after a crash".into()),
            received_at: 100,
            window_ends: 1000,
            outcome: "records".into(),
        }
    }

    #[test]
    fn the_webhook_gets_the_event_and_only_local_addresses_are_accepted() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 8192];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"}") {
                let n = conn.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&got).contains("\"outcome\"") {
                    break;
                }
            }
            conn.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
            String::from_utf8(got).unwrap()
        });
        let alerts = Alerts {
            program: None,
            webhook: Some(Webhook::parse(&format!("http://127.0.0.1:{port}/privacy")).unwrap()),
        };
        assert!(alerts.send(&event()).is_empty());
        let request = server.join().unwrap();
        assert!(request.starts_with("POST /privacy HTTP/1.1"), "{request}");
        assert!(request.contains("\"reason\":\"patient_unable_to_consent\""));
        assert!(Webhook::parse("https://127.0.0.1/x").is_err());
        assert!(
            Webhook::parse("http://8.8.8.8/x").is_err(),
            "not the hospital's network"
        );
    }

    #[test]
    fn a_failing_or_missing_program_is_reported_not_fatal() {
        let alerts = Alerts {
            program: Some("/bin/false".into()),
            webhook: None,
        };
        assert_eq!(alerts.send(&event()).len(), 1);
        let alerts = Alerts {
            program: Some("/no/such/program".into()),
            webhook: None,
        };
        assert!(alerts.send(&event())[0].contains("cannot start"));
        let ok = Alerts {
            program: Some("/bin/cat".into()),
            webhook: None,
        };
        assert!(ok.send(&event()).is_empty());
    }
}
