//! `ehrx-devnet watch --dir DIR [--interval 2s]`: the Hermes supervisor. Every interval,
//! for each [[relayer]] instance that should run (its pid file exists: `start` wrote it,
//! `stop` removed it, a crash left it):
//!
//! - a node it uses does not answer its RPC: [`hermes::failover`] moves it to the next
//!   validator that answers and restarts it;
//! - its Hermes died: started again (its log's last lines say why it died), then
//!   `clear packets` on the recorded channel ends.
//!
//! Every line names the instance (and the dead and new node). `--detach` runs the loop in
//! the background ([`spawn_watch`]: pid `DIR/hermes/watch.pid`, log `DIR/hermes/watch.log`);
//! `--stop` ends it ([`stop_watch`]).
//!
//! The loop does not take the directory's lock (it runs for hours); it only acts on
//! instances whose pid file says they should run, so `hermes stop` is respected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::cmd::DirArg;
use crate::config::{parse_duration, Devnet, Relayer};
use crate::progress::Progress;
use crate::{hermes, layout, process};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub dir: DirArg,
    /// How often to look (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s")]
    pub interval: String,
    /// Run in the background (pid DIR/hermes/watch.pid, log DIR/hermes/watch.log).
    #[arg(long, conflicts_with = "stop")]
    pub detach: bool,
    /// Stop the background supervisor of DIR.
    #[arg(long)]
    pub stop: bool,
}

fn pid_path(dir: &Path) -> PathBuf {
    dir.join("hermes").join("watch.pid")
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("hermes").join("watch.log")
}

/// What identifies the supervisor of `dir` in /proc's command line.
fn needle(dir: &Path) -> String {
    format!("watch --dir {}", dir.display())
}

pub fn run(args: Args) -> Result<()> {
    let dir = args.dir.path();
    let interval =
        parse_duration(&args.interval).map_err(|e| anyhow::anyhow!("--interval: {e}"))?;
    if args.stop {
        if stop_watch(&dir)? {
            eprintln!("watch: stopped");
        } else {
            eprintln!("watch: was not running");
        }
        return Ok(());
    }
    if args.detach {
        let pid = spawn_watch_every(&dir, &args.interval)?;
        eprintln!(
            "watch: running, pid {pid} (log {})",
            log_path(&dir).display()
        );
        return Ok(());
    }
    let devnet = layout::load(&dir, None)?;
    let p = Progress::new();
    p.say(format!(
        "watch: {} relayer instance(s) of {}, every {}",
        devnet.relayers.len(),
        dir.display(),
        args.interval
    ));
    let mut exits = BTreeMap::new();
    loop {
        reap(&mut exits);
        for r in &devnet.relayers {
            if let Err(e) = watch_once(&p, &devnet, &dir, r, &mut exits) {
                p.say(format!("{}: {e:#}", r.name));
            }
        }
        std::thread::sleep(interval);
    }
}

/// One look at one instance.
fn watch_once(
    p: &Progress,
    devnet: &Devnet,
    dir: &Path,
    r: &Relayer,
    exits: &mut BTreeMap<i32, String>,
) -> Result<()> {
    if !hermes::should_run(dir, r) {
        return Ok(());
    }
    let dead_pid = if hermes::running(dir, r).is_none() {
        let pid_file = hermes::instance_dir(dir, &r.name).join("hermes.pid");
        let pid: Option<i32> = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok());
        let how = pid
            .and_then(|pid| exits.remove(&pid))
            .unwrap_or_else(|| "exit status unknown".into());
        p.say(format!(
            "{}: Hermes (pid {}) is not running ({how}); its log ends:\n{}",
            r.name,
            pid.map_or("?".into(), |p| p.to_string()),
            process::log_tail(&hermes::instance_dir(dir, &r.name).join("hermes.log"), 8)
        ));
        true
    } else {
        false
    };
    // Moves it (and restarts it) if a node it uses is down.
    let moved = hermes::failover(p, devnet, dir, r)?;
    if dead_pid && moved.is_empty() {
        p.say(format!("{}: starting Hermes again", r.name));
        hermes::start(p, devnet, dir, r)?;
    }
    if dead_pid || !moved.is_empty() {
        hermes::clear_packets(p, devnet, dir, r, &hermes::recorded_ends(dir))?;
    }
    Ok(())
}

/// Reaps the supervisor's exited children (the Hermes it restarted), keeping how each
/// ended.
fn reap(exits: &mut BTreeMap<i32, String>) {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on any child, non-blocking; `status` is ours.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        let how = if libc::WIFSIGNALED(status) {
            format!("killed by signal {}", libc::WTERMSIG(status))
        } else {
            format!("exit code {}", libc::WEXITSTATUS(status))
        };
        exits.insert(pid, how);
    }
}

/// Starts `ehrx-devnet watch --dir DIR` in the background (pid `DIR/hermes/watch.pid`, log
/// `DIR/hermes/watch.log`); one already running is left as it is. Returns its pid.
pub fn spawn_watch(dir: &Path) -> Result<u32> {
    spawn_watch_every(dir, "2s")
}

fn spawn_watch_every(dir: &Path, interval: &str) -> Result<u32> {
    let dir = std::path::absolute(dir)?;
    if let Some(pid) = process::recorded_pid(&pid_path(&dir), &needle(&dir)) {
        return Ok(pid as u32);
    }
    std::fs::create_dir_all(dir.join("hermes"))?;
    // This very binary, by /proc/self/exe: it stays valid when a build replaced the file
    // meanwhile (current_exe would name a deleted path).
    let exe = PathBuf::from("/proc/self/exe");
    anyhow::ensure!(
        exe.exists(),
        "no /proc/self/exe: the watcher needs Linux's /proc"
    );
    let mut cmd = Command::new(exe);
    cmd.arg("watch")
        .arg("--dir")
        .arg(&dir)
        .arg("--interval")
        .arg(interval);
    let child = process::spawn_detached(&mut cmd, &log_path(&dir), &pid_path(&dir), "watch")?;
    Ok(child.id())
}

/// The supervisor's pid if it runs.
pub fn watch_running(dir: &Path) -> Option<i32> {
    let dir = std::path::absolute(dir).ok()?;
    process::recorded_pid(&pid_path(&dir), &needle(&dir))
}

/// Stops the supervisor of `dir`. Ok(false) if it was not running.
pub fn stop_watch(dir: &Path) -> Result<bool> {
    let dir = std::path::absolute(dir)?;
    process::stop_recorded(
        &pid_path(&dir),
        &needle(&dir),
        "watch",
        Duration::from_secs(5),
    )
}
