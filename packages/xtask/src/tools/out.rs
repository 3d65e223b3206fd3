//! What the install prints (stderr, each line prefixed with the piece's name while pieces
//! build in parallel) and the logged runs of build commands, with a heartbeat line every
//! `EHRX_HEARTBEAT` seconds.

use std::fmt::Display;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::sys::show;
use crate::clock::{clock, fmt_duration, iso_now};

/// Set by SIGINT or SIGTERM: the running builds are stopped (each command gets SIGTERM)
/// and the install exits 130.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Catches SIGINT and SIGTERM, so that a stopped install stops its builds too (a SIGTERM
/// sent to this process alone would leave them running).
pub fn catch_interrupts() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Where messages go: stderr, each line after `prefix` (`[wasmd] ` in a parallel build).
#[derive(Clone, Debug, Default)]
pub struct Out {
    prefix: String,
}

impl Out {
    pub fn plain() -> Out {
        Out::default()
    }

    pub fn prefixed(name: &str) -> Out {
        Out {
            prefix: format!("[{name}] "),
        }
    }

    /// Prints `text`, each of its lines prefixed; one lock, so parallel pieces do not mix
    /// within a message.
    pub fn lines(&self, text: &str) {
        let stderr = std::io::stderr();
        let mut err = stderr.lock();
        for line in text.split('\n') {
            let _ = writeln!(err, "{}{line}", self.prefix);
        }
    }

    /// `log` of scripts/lib.sh: `[HH:MM:SS] msg`.
    pub fn log(&self, msg: impl Display) {
        self.lines(&format!("[{}] {msg}", clock()));
    }

    /// `die`'s message, without the exit.
    pub fn error(&self, msg: impl Display) {
        self.lines(&format!("\n[{}] ERROR: {msg}", clock()));
    }

    /// `step` of scripts/lib.sh: a timestamped header; the returned step times it.
    pub fn step(&self, name: String) -> Step {
        self.lines(&format!("\n==> [{}] {name}", clock()));
        Step {
            name,
            start: Instant::now(),
        }
    }

    /// `step_done`: the step's name and how long it took.
    pub fn step_done(&self, step: &Step) {
        self.lines(&format!(
            "<== [{}] {}: took {}",
            clock(),
            step.name,
            fmt_duration(step.secs())
        ));
    }
}

pub struct Step {
    name: String,
    start: Instant,
}

impl Step {
    /// Whole seconds since the step started (`step_elapsed`).
    pub fn secs(&self) -> u64 {
        self.start.elapsed().as_secs()
    }
}

/// A piece's build log (`$EHRX_TOOLS/logs/<piece>.log`): the commands run with their
/// output appended to it, while the terminal gets a heartbeat line every `beat` seconds
/// (elapsed time and the log's last line), as `run_logged` of scripts/lib.sh did.
pub struct Logged<'a> {
    out: &'a Out,
    path: PathBuf,
    file: File,
    start: Instant,
    next_beat: Instant,
    beat: Duration,
}

impl<'a> Logged<'a> {
    /// `new_log`: a fresh log headed `# PIECE: DATE`.
    pub fn create(out: &'a Out, path: &Path, piece: &str, beat_secs: u64) -> Result<Logged<'a>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut file =
            File::create(path).with_context(|| format!("creating {}", path.display()))?;
        writeln!(file, "# {piece}: {}", iso_now())?;
        let file = OpenOptions::new().append(true).open(path)?;
        let beat = Duration::from_secs(beat_secs.max(1));
        let start = Instant::now();
        Ok(Logged {
            out,
            path: path.to_path_buf(),
            file,
            start,
            next_beat: start + beat,
            beat,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A line of our own in the log (the `+ command` lines).
    pub fn note(&mut self, line: impl Display) {
        let _ = writeln!(self.file, "{line}");
    }

    /// Runs `cmd` with stdout and stderr appended to the log; fails naming the command
    /// when it cannot start or exits non-zero.
    pub fn run(&mut self, cmd: &mut Command) -> Result<()> {
        let status = self.run_status(cmd)?;
        if !status.success() {
            bail!("`{}` failed ({status})", show(cmd));
        }
        Ok(())
    }

    /// Like `run`, and returns the exit status whatever it is (fails only when the
    /// command cannot start).
    pub fn run_status(&mut self, cmd: &mut Command) -> Result<ExitStatus> {
        if interrupted() {
            bail!("interrupted");
        }
        cmd.stdin(Stdio::null())
            .stdout(self.file.try_clone()?)
            .stderr(self.file.try_clone()?);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run `{}`", show(cmd)))?;
        self.wait(&mut child)
    }

    /// Runs `cmd` and returns its stdout (without trailing newlines); its stderr goes to
    /// the log.
    pub fn capture(&mut self, cmd: &mut Command) -> Result<String> {
        if interrupted() {
            bail!("interrupted");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(self.file.try_clone()?);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run `{}`", show(cmd)))?;
        let mut stdout = child.stdout.take().expect("piped stdout");
        let reader = thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let status = self.wait(&mut child)?;
        let text = reader.join().unwrap_or_default();
        if !status.success() {
            bail!("`{}` failed ({status})", show(cmd));
        }
        Ok(text.trim_end_matches('\n').to_string())
    }

    fn wait(&mut self, child: &mut Child) -> Result<ExitStatus> {
        let mut poll = Duration::from_millis(10);
        let mut stopping = false;
        loop {
            if let Some(status) = child.try_wait()? {
                if stopping {
                    bail!("interrupted");
                }
                return Ok(status);
            }
            if interrupted() && !stopping {
                stopping = true;
                // SAFETY: kill on our own child's pid, which has not been reaped yet.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            }
            thread::sleep(poll);
            poll = (poll * 2).min(Duration::from_millis(500));
            let now = Instant::now();
            if now >= self.next_beat {
                self.next_beat = now + self.beat;
                let last = last_line(&self.path);
                self.out.lines(&format!(
                    "    ... [{}] still running, {} elapsed | {last}",
                    clock(),
                    fmt_duration(self.start.elapsed().as_secs())
                ));
            }
        }
    }
}

/// The last line of a file as the heartbeat shows it (`tail -n 1 | tr -d '\r' | cut -c1-110`).
fn last_line(path: &Path) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(8192)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    last_line_of(&String::from_utf8_lossy(&buf))
}

fn last_line_of(text: &str) -> String {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let line = text.rsplit('\n').next().unwrap_or("");
    line.chars().filter(|&c| c != '\r').take(110).collect()
}

/// The last `n` lines of a file (for the failure report).
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut f) = File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text
        .strip_suffix('\n')
        .unwrap_or(&text)
        .split('\n')
        .collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heartbeat_shows_the_last_line_cut_and_without_carriage_returns() {
        assert_eq!(last_line_of("a\nb\n"), "b");
        assert_eq!(last_line_of("a\nb"), "b");
        assert_eq!(last_line_of("a\n\n"), "");
        assert_eq!(last_line_of(""), "");
        assert_eq!(
            last_line_of("x\r\n   Compiling foo\r\n"),
            "   Compiling foo"
        );
        assert_eq!(last_line_of(&"y".repeat(300)).len(), 110);
    }
}
