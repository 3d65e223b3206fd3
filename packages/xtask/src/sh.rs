//! What the ported scripts share: the repository and the directories they use, running a
//! command as bash runs it under `set -e` (its exit status becomes ours), `--help` from
//! the entry script's header, and the step lines of scripts/lib.sh.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::tools::out::{self, Out, Step};
use crate::tools::sys::show;

/// Ends the task with this exit status and no message of its own: a command that failed
/// under bash's `set -e` (it printed its own error), or a check whose verdict is printed.
#[derive(Debug)]
pub struct Exit(pub u8);

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// Runs a ported script's task: `-h`/`--help` anywhere prints the header of
/// scripts/SCRIPT (what lib.sh does before the script runs); an error prints as `die`
/// does (`[HH:MM:SS] ERROR: ...`, exit 1); SIGINT and SIGTERM stop the running command
/// and end with 130.
pub fn main(script: &str, args: Vec<String>, task: fn(Vec<String>) -> Result<()>) -> ExitCode {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{}", usage_of(&repo().join("scripts").join(script)));
        return ExitCode::SUCCESS;
    }
    out::catch_interrupts();
    let result = task(args);
    if out::interrupted() {
        return ExitCode::from(130);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<Exit>() {
            Some(Exit(code)) => ExitCode::from(*code),
            None => {
                Out::plain().error(format!("{e:#}"));
                ExitCode::FAILURE
            }
        },
    }
}

/// `usage_of` of scripts/lib.sh: the leading comment block after the shebang, without
/// `# ` and without shellcheck directives.
pub fn usage_of(script: &Path) -> String {
    let text = fs::read_to_string(script).unwrap_or_default();
    header(&text)
}

fn header(text: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i == 0 && line.starts_with("#!") || line.starts_with("# shellcheck ") {
            continue;
        }
        let Some(rest) = line.strip_prefix('#') else {
            break;
        };
        out.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        out.push('\n');
    }
    out
}

/// `${NAME:-}` when non-empty.
pub fn env_set(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The repository: `EHRX_REPO_ROOT` (lib.sh exports it), or where this crate was built.
pub fn repo() -> PathBuf {
    dir_var("EHRX_REPO_ROOT", || {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
    })
}

pub fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
}

/// `${NAME:-DEFAULT}` as a path.
fn dir_var(name: &str, default: impl FnOnce() -> PathBuf) -> PathBuf {
    env_set(name).map(PathBuf::from).unwrap_or_else(default)
}

/// `${CARGO_TARGET_DIR:-<repo>/target}`.
pub fn target_dir() -> PathBuf {
    dir_var("CARGO_TARGET_DIR", || repo().join("target"))
}

/// `${EHRX_TOOLS:-~/.cache/ehrx-tools}`.
pub fn tools_dir() -> PathBuf {
    dir_var("EHRX_TOOLS", || home().join(".cache/ehrx-tools"))
}

/// `${EHRX_DEVNET_DIR:-~/.cache/ehrx-devnet}`.
pub fn devnet_dir() -> PathBuf {
    dir_var("EHRX_DEVNET_DIR", || home().join(".cache/ehrx-devnet"))
}

/// `${XDG_CACHE_HOME:-~/.cache}`.
pub fn cache_home() -> PathBuf {
    dir_var("XDG_CACHE_HOME", || home().join(".cache"))
}

/// Runs `cmd` with the terminal (or the stdio the caller set) and fails with its exit
/// status, as a failing command ends a `set -e` script. SIGINT or SIGTERM to this process
/// passes SIGTERM on to the command.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = status(cmd)?;
    if status.success() {
        return Ok(());
    }
    Err(Exit(exit_code(status)).into())
}

/// Runs `cmd` as [`run`] does and returns its exit status, whatever it is.
pub fn status(cmd: &mut Command) -> Result<ExitStatus> {
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run `{}`", show(cmd)))?;
    let mut stopping = false;
    let mut poll = Duration::from_millis(10);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if out::interrupted() && !stopping {
            stopping = true;
            // SAFETY: kill on our own child's pid, which has not been reaped yet.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
        thread::sleep(poll);
        poll = (poll * 2).min(Duration::from_millis(200));
    }
}

/// The status bash reports for a command: its exit code, or 128 + the signal.
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(s)) => (128 + s) as u8,
        _ => 1,
    }
}

/// The SHA-256 of a file, in hex (`sha256sum FILE | cut -d' ' -f1`).
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// `touch FILE` (an existing file: its modification time becomes now).
pub fn touch(path: &Path) -> Result<()> {
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()))
        .with_context(|| format!("touching {}", path.display()))
}

/// `mv FROM TO`, also across file systems (a temporary directory to the repository).
pub fn mv(from: &Path, to: &Path) -> Result<()> {
    if fs::rename(from, to).is_ok() {
        return Ok(());
    }
    if from.is_dir() {
        crate::tools::sys::copy_dir(from, to)?;
    } else {
        fs::copy(from, to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    crate::tools::sys::rm_rf(from)
}

/// A temporary directory removed when dropped (`mktemp -d` with `trap 'rm -rf' EXIT`).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Result<TempDir> {
        crate::tools::sys::temp_dir(prefix).map(TempDir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = crate::tools::sys::rm_rf(&self.0);
    }
}

/// `step` / `step_done` of scripts/lib.sh: starting a step closes the previous one.
#[derive(Default)]
pub struct Steps {
    out: Out,
    current: Option<Step>,
}

impl Steps {
    pub fn step(&mut self, name: impl Into<String>) {
        self.done();
        self.current = Some(self.out.step(name.into()));
    }

    /// Closes the current step; its whole seconds (0 without one).
    pub fn done(&mut self) -> u64 {
        match self.current.take() {
            Some(step) => {
                self.out.step_done(&step);
                step.secs()
            }
            None => 0,
        }
    }
}

/// `log` of scripts/lib.sh.
pub fn log(msg: impl fmt::Display) {
    Out::plain().log(msg);
}

/// `warn` of scripts/lib.sh.
pub fn warn(msg: impl fmt::Display) {
    Out::plain().log(format!("WARNING: {msg}"));
}

/// Arguments as the command line gives them (unit tests).
#[cfg(test)]
pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usage_is_the_header_comment() {
        let script = "#!/usr/bin/env bash\n# Does a thing.\n#\n#   x.sh --flag\n# shellcheck shell=bash\nset -e\n# not this\n";
        assert_eq!(header(script), "Does a thing.\n\n  x.sh --flag\n");
    }

    #[test]
    fn a_signal_counts_as_bash_counts_it() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGINT)), 130);
    }
}
