//! Running wasmd: one-shot node-management commands, and nodes as background processes
//! with a log and a pid file. Only processes whose pid file lies in the devnet directory
//! and whose command line names the node's home are ever signalled.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::layout::Node;

/// The wasmd binary: `$EHRX_WASMD`, else `wasmd` on PATH, else the tool cache's.
pub fn wasmd_bin() -> PathBuf {
    tool_bin("wasmd", "EHRX_WASMD")
}

/// A tool's binary: `$ENV`, else `name` on PATH, else `~/.cache/ehrx-tools/bin/name`
/// (scripts/install-tools.sh).
pub fn tool_bin(name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return p.into();
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    if !on_path {
        if let Some(home) = std::env::var_os("HOME") {
            let cached = Path::new(&home).join(".cache/ehrx-tools/bin").join(name);
            if cached.is_file() {
                return cached;
            }
        }
    }
    name.into()
}

/// Runs `wasmd ARGS --home HOME` to completion; its stdout, or an error with its output.
pub fn wasmd(home: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(wasmd_bin())
        .args(args)
        .arg("--home")
        .arg(home)
        .stdin(Stdio::null())
        .output()
        .with_context(|| {
            format!(
                "cannot run {} (install it with scripts/install-tools.sh wasmd, or set EHRX_WASMD)",
                wasmd_bin().display()
            )
        })?;
    if !out.status.success() {
        bail!(
            "wasmd {} --home {} failed ({}):\n{}{}",
            args.join(" "),
            home.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Some commands (keys add --output json) print their result on stderr.
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    if text.trim().is_empty() {
        text = String::from_utf8_lossy(&out.stderr).into_owned();
    }
    Ok(text)
}

/// The pid recorded for `node`, if its process runs and is that node's wasmd.
pub fn running_pid(node: &Node) -> Option<i32> {
    recorded_pid(&node.pid_file(), &node.home.to_string_lossy())
}

/// The pid in `pid_file`, if that process runs and its command line contains `needle`.
pub fn recorded_pid(pid_file: &Path, needle: &str) -> Option<i32> {
    let pid: i32 = fs::read_to_string(pid_file).ok()?.trim().parse().ok()?;
    is_process_of(pid, needle).then_some(pid)
}

/// Does process `pid` live, and does its command line (arguments joined by spaces)
/// contain `needle`? (Guards against a recycled pid: only our own processes are ever
/// signalled.)
pub fn is_process_of(pid: i32, needle: &str) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    // A zombie (exited, not reaped) has an empty command line.
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    cmdline.contains(needle)
}

/// Starts `wasmd start --home HOME` detached ([`spawn_detached`]), appending to its log;
/// records its pid. Returns the pid.
pub fn spawn_node(node: &Node) -> Result<u32> {
    let mut cmd = Command::new(wasmd_bin());
    cmd.arg("start").arg("--home").arg(&node.home);
    let child = spawn_detached(&mut cmd, &node.log_file(), &node.pid_file(), "wasmd start")
        .with_context(|| format!("starting wasmd for {}", node.moniker()))?;
    // The child is not waited for: it outlives this process (init reaps it then).
    Ok(child.id())
}

/// Starts `cmd` in a session of its own (a terminal's Ctrl-C does not reach it) with
/// stdin from /dev/null and stdout and stderr appended to `log` (after a header line),
/// and no other descriptor of this process: a daemon holding the pipe of our caller's
/// output, or the directory's lock, would keep them open. Records its pid in `pid_file`.
pub fn spawn_detached(
    cmd: &mut Command,
    log_path: &Path,
    pid_file: &Path,
    what: &str,
) -> Result<std::process::Child> {
    use std::os::unix::process::CommandExt as _;
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    writeln!(log, "\n===== ehrx-devnet: {what} ({}) =====", now_text())?;
    let err = log.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(log).stderr(err);
    // SAFETY: only async-signal-safe calls (setsid, syscall, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Every descriptor above 2 closes at exec (std's own error pipe is already
            // close-on-exec, so a failed exec is still reported).
            const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
            let rc = libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            );
            if rc != 0 {
                // Kernels before 5.11: one descriptor at a time.
                for fd in 3..4096 {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {what} ({:?})", cmd.get_program()))?;
    fs::write(pid_file, format!("{}\n", child.id()))
        .with_context(|| format!("writing {}", pid_file.display()))?;
    Ok(child)
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: i32, signal: i32) -> Result<()> {
    // SAFETY: kill(2) with a pid checked to be one of our nodes; no memory involved.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc != 0 {
        bail!("kill({pid}, {signal}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Stops `node`: TERM, up to `grace` for it to exit, then KILL. Ok(false) if it was not
/// running. Removes the pid file.
pub fn stop_node(node: &Node, grace: Duration) -> Result<bool> {
    stop_recorded(
        &node.pid_file(),
        &node.home.to_string_lossy(),
        &node.moniker(),
        grace,
    )
}

/// Stops the process of `pid_file` if it runs and its command line contains `needle`:
/// TERM, up to `grace`, then KILL. Ok(false) if it was not running. Removes the pid file.
pub fn stop_recorded(pid_file: &Path, needle: &str, name: &str, grace: Duration) -> Result<bool> {
    let Some(pid) = recorded_pid(pid_file, needle) else {
        let _ = fs::remove_file(pid_file);
        return Ok(false);
    };
    signal(pid, libc::SIGTERM)?;
    let start = Instant::now();
    while is_process_of(pid, needle) {
        if start.elapsed() > grace {
            eprintln!(
                "{name}: pid {pid} ignored TERM for {}s; sending KILL",
                grace.as_secs()
            );
            let _ = signal(pid, libc::SIGKILL);
            std::thread::sleep(Duration::from_millis(300));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = fs::remove_file(pid_file);
    Ok(true)
}

/// The last `n` lines of a log, indented, for an error message.
pub fn log_tail(path: &Path, n: usize) -> String {
    // Lossy: a log cut mid-character (or with a binary's bytes) still shows its end.
    let text = String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("    | {l}\n"))
        .collect()
}

/// Resident set (KiB) and CPU time (s) of `pid`, from /proc.
pub fn usage(pid: i32) -> Option<(u64, f64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces, in parentheses).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((rss, ticks / hz.max(1.0)))
}

pub fn now_text() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("unix {secs}")
}
