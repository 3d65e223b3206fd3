//! `xtask cold-rehearsal [--keep] [--no-warm] [--dir DIR]`: runs the README's commands the
//! way a fresh machine does, every project cache empty, and reports the figures (what
//! scripts/cold-rehearsal.sh did in bash; its header says what it does step by step).
//!
//! It clones the committed HEAD into DIR/repo, points every cache into DIR/cache (the
//! environment of this process, so of every command it runs), runs `scripts/test.sh`
//! cold, then `scripts/demo.sh` and `scripts/test.sh` warm, each phase's output to the
//! terminal and DIR/logs/PHASE.log, and writes DIR/report.md. At the end, whatever happens,
//! the rehearsal's own devnet is stopped and DIR removed (the report and logs kept in
//! ~/.cache/ehrx-rehearsal/STAMP) unless `--keep`.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::clock::{fmt_duration, utc_stamp};
use crate::sh::{self, log, warn, Steps};
use crate::tools::sys::{need_cmd, quiet, rm_rf};

#[derive(Debug, PartialEq, Eq)]
pub struct Opts {
    pub dir: Option<String>,
    pub keep: bool,
    pub warm: bool,
}

pub fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        dir: None,
        keep: false,
        warm: true,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dir" => match it.next() {
                Some(d) if !d.is_empty() => o.dir = Some(d.clone()),
                _ => bail!("--dir needs a directory"),
            },
            "--keep" => o.keep = true,
            "--no-warm" => o.warm = false,
            _ => bail!("unknown argument '{a}' (see --help)"),
        }
    }
    Ok(o)
}

/// The devnet's ports a running devnet listens on.
const PORTS: &str =
    "( sport = :26657 or sport = :26757 or sport = :26857 or sport = :9090 or sport = :9190 )";

const PHASES: [&str; 3] = ["test-cold", "demo", "test-warm"];

struct Rehearsal {
    dir: PathBuf,
    logs: PathBuf,
    stamp: String,
    keep: bool,
    steps: Steps,
    /// Phase, seconds, exit status.
    phases: Vec<(&'static str, u64, u8)>,
}

pub fn run(args: Vec<String>) -> Result<()> {
    let opts = parse(&args)?;
    need_cmd("git", "git")?;
    need_cmd("ss", "install Debian's iproute2")?;
    let (_, busy) = quiet(Command::new("ss").args(["-Htln", PORTS]));
    if !busy.is_empty() {
        bail!("devnet ports are in use (a devnet is running?):\n{busy}\nStop it first: scripts/devnet.sh down");
    }
    let dir = match &opts.dir {
        None => crate::tools::sys::temp_dir("ehrx-rehearsal")?,
        Some(d) => {
            let d = PathBuf::from(d);
            if d.exists() && fs::read_dir(&d).map_or(true, |mut r| r.next().is_some()) {
                bail!(
                    "--dir {} is not empty: give an empty or new directory",
                    d.display()
                );
            }
            fs::create_dir_all(&d)?;
            d
        }
    };
    let dir = fs::canonicalize(&dir)?;
    let logs = dir.join("logs");
    fs::create_dir_all(&logs)?;
    let mut r = Rehearsal {
        dir,
        logs,
        stamp: utc_stamp(),
        keep: opts.keep,
        steps: Steps::default(),
        phases: Vec::new(),
    };
    let result = r.rehearse(opts.warm);
    r.cleanup();
    result
}

impl Rehearsal {
    fn rehearse(&mut self, warm: bool) -> Result<()> {
        let start = Instant::now();
        let root = sh::repo();
        let repo = self.dir.join("repo");
        let git =
            |dir: &Path, args: &[&str]| quiet(Command::new("git").arg("-C").arg(dir).args(args)).1;
        let head = git(&root, &["rev-parse", "--short", "HEAD"]);
        self.steps
            .step(format!("clone {head} into {}", repo.display()));
        if !git(&root, &["status", "--porcelain"]).is_empty() {
            warn(format!(
                "uncommitted changes in {} are not part of the rehearsal",
                root.display()
            ));
        }
        sh::run(
            Command::new("git")
                .args(["clone", "-q"])
                .arg(&root)
                .arg(&repo),
        )?;
        let commit = git(&repo, &["rev-parse", "--short", "HEAD"]);

        self.isolate()?;
        std::env::set_current_dir(&repo)?;

        self.phase("test-cold", &["scripts/test.sh"])?;
        if warm && self.rc("test-cold") == Some(0) {
            self.phase("demo", &["scripts/demo.sh"])?;
            self.devnet_down(&repo);
            self.phase("test-warm", &["scripts/test.sh"])?;
        }

        let report = self.report(&commit);
        fs::write(self.dir.join("report.md"), &report)?;
        print!("{report}");
        for (name, _, rc) in &self.phases {
            if *rc != 0 {
                bail!("rehearsal phase {name} failed (exit {rc}); see its log in the report's directory");
            }
        }
        log(format!(
            "rehearsal done in {}",
            fmt_duration(start.elapsed().as_secs())
        ));
        Ok(())
    }

    /// Every cache into DIR/cache, exported to whatever runs next (edition 2021: set_var
    /// is safe; nothing else runs in this process).
    fn isolate(&self) -> Result<()> {
        let c = |p: &str| self.dir.join("cache").join(p);
        let maven = format!(
            "-Dmaven.repo.local={} {}",
            c("m2").display(),
            std::env::var("MAVEN_OPTS").unwrap_or_default()
        );
        let vars: [(&str, PathBuf); 11] = [
            ("EHRX_TOOLS", c("ehrx-tools")),
            ("EHRX_DEVNET_DIR", c("ehrx-devnet")),
            ("EHRX_DEMO_DIR", c("ehrx-demo")),
            ("EHRX_HISTORIES", c("ehrx-histories")),
            ("CARGO_HOME", c("cargo")),
            ("GOPATH", c("go")),
            ("GOMODCACHE", c("go/pkg/mod")),
            ("GOCACHE", c("go-build")),
            ("npm_config_cache", c("npm")),
            ("MAVEN_OPTS", PathBuf::from(maven)),
            ("XDG_CACHE_HOME", c("xdg")),
        ];
        for (k, v) in &vars {
            std::env::set_var(k, v);
        }
        std::env::remove_var("CARGO_TARGET_DIR");
        // The clone is the repository now (its lib.sh exports it again anyway).
        std::env::set_var("EHRX_REPO_ROOT", self.dir.join("repo"));
        // Forget this shell's tool cache on PATH; lib.sh in the clone adds the new one.
        let old_bin = sh::home().join(".cache/ehrx-tools/bin");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let kept: Vec<_> = std::env::split_paths(&path)
            .filter(|p| *p != old_bin)
            .collect();
        std::env::set_var("PATH", std::env::join_paths(kept)?);
        for p in ["cargo", "go/pkg/mod", "go-build", "npm", "xdg"] {
            fs::create_dir_all(c(p))?;
        }
        Ok(())
    }

    fn rc(&self, phase: &str) -> Option<u8> {
        self.phases.iter().find(|p| p.0 == phase).map(|p| p.2)
    }

    /// Runs the phase with its output (stdout and stderr) to the terminal and its log.
    fn phase(&mut self, name: &'static str, cmd: &[&str]) -> Result<()> {
        let start = Instant::now();
        self.steps.step(format!("{name}: {}", cmd.join(" ")));
        let mut log_file = fs::File::create(self.logs.join(format!("{name}.log")))?;
        let (mut reader, writer) = std::io::pipe()?;
        let child = {
            let mut c = Command::new(cmd[0]);
            c.args(&cmd[1..]).stdout(writer.try_clone()?).stderr(writer);
            c.spawn()
                .with_context(|| format!("cannot run {}", cmd.join(" ")))?
            // The Command, holding the pipe's writing end, is dropped here: EOF comes
            // when the phase's processes close theirs.
        };
        let mut buf = [0u8; 8192];
        let mut stdout = std::io::stdout();
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let _ = stdout.write_all(&buf[..n]);
                    let _ = stdout.flush();
                    let _ = log_file.write_all(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let mut child = child;
        let rc = sh::exit_code(child.wait()?);
        self.phases.push((name, start.elapsed().as_secs(), rc));
        self.steps.done();
        if rc != 0 {
            warn(format!(
                "{name} failed (exit {rc}); log: {}",
                self.logs.join(format!("{name}.log")).display()
            ));
        }
        if crate::tools::out::interrupted() {
            bail!("interrupted");
        }
        Ok(())
    }

    /// `scripts/devnet.sh down` in the clone, on the rehearsal's own devnet only.
    fn devnet_down(&self, repo: &Path) {
        if !repo.join("scripts/devnet.sh").is_file() {
            return;
        }
        let _ = Command::new(repo.join("scripts/devnet.sh"))
            .arg("down")
            .current_dir(repo)
            .env("EHRX_DEVNET_DIR", self.dir.join("cache/ehrx-devnet"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    fn report(&self, commit: &str) -> String {
        let q = |prog: &str, args: &[&str]| quiet(Command::new(prog).args(args)).1;
        let mem = q("free", &["-g"])
            .lines()
            .find(|l| l.starts_with("Mem:"))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
            .unwrap_or_default();
        let rustc = q("rustc", &["--version"]);
        let go = q("go", &["version"]);
        let mut s = format!("# Cold-machine rehearsal, {}\n\n", self.stamp);
        s += &format!(
            "- commit {commit}; {} cores, {mem} GiB; {}, {}, node {}\n",
            q("nproc", &[]),
            rustc.split(' ').take(2).collect::<Vec<_>>().join(" "),
            go.split(' ').nth(2).unwrap_or(""),
            q("node", &["--version"])
        );
        s += &format!(
            "- every cache under {}/cache, empty at the start\n\n",
            self.dir.display()
        );
        for p in PHASES {
            let Some((_, secs, rc)) = self.phases.iter().find(|x| x.0 == p) else {
                continue;
            };
            s += &format!("## {p}: {}, exit {rc}\n\n", fmt_duration(*secs));
            if p == "demo" {
                continue;
            }
            let log = fs::read_to_string(self.logs.join(format!("{p}.log"))).unwrap_or_default();
            s += "```\n";
            if p == "test-cold" {
                for line in tools_table(&log) {
                    s += &format!("{line}\n");
                }
            }
            for line in stage_table(&log) {
                s += &format!("{line}\n");
            }
            s += "```\n\n";
        }
        s
    }

    fn cleanup(&mut self) {
        self.devnet_down(&self.dir.join("repo"));
        if self.keep {
            return;
        }
        let save = sh::home().join(".cache/ehrx-rehearsal").join(&self.stamp);
        let _ = fs::create_dir_all(&save);
        let _ = crate::tools::sys::copy_dir(&self.logs, &save.join("logs"));
        let _ = fs::copy(self.dir.join("report.md"), save.join("report.md"));
        let _ = rm_rf(&self.dir);
        log(format!(
            "removed {}; report and logs kept in {}",
            self.dir.display(),
            save.display()
        ));
    }
}

/// `sed -n '/START/,/END/p'`: every range from a line matching `start` to the next line
/// after it matching `end`, inclusive.
pub fn sed_range(
    text: &str,
    start: impl Fn(&str) -> bool,
    end: impl Fn(&str) -> bool,
) -> Vec<&str> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if inside {
            out.push(line);
            inside = !end(line);
        } else if start(line) {
            out.push(line);
            inside = true;
        }
    }
    out
}

/// A line without its `[piece] ` prefix (`sed 's/^\[[a-z-]*\] //'`).
pub fn strip_piece(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix('[') {
        if let Some(i) = rest.find("] ") {
            if rest[..i]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-')
            {
                return &rest[i + 2..];
            }
        }
    }
    line
}

/// install-tools' per-piece summary out of a log: from `Summary (total` (after an optional
/// `[piece] ` prefix) to the next empty line, prefixes removed, runs of empty lines
/// squeezed (`cat -s`).
pub fn tools_table(log: &str) -> Vec<&str> {
    let lines = sed_range(
        log,
        |l| strip_piece(l).starts_with("Summary (total"),
        str::is_empty,
    );
    let mut out: Vec<&str> = Vec::new();
    for l in lines.into_iter().map(strip_piece) {
        if l.is_empty() && out.last().is_some_and(|p| p.is_empty()) {
            continue;
        }
        out.push(l);
    }
    out
}

/// test.sh's stage table out of a log: from `STAGE ` to `total `.
pub fn stage_table(log: &str) -> Vec<&str> {
    sed_range(
        log,
        |l| l.starts_with("STAGE "),
        |l| l.starts_with("total "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sh::args;

    #[test]
    fn arguments() {
        assert_eq!(
            parse(&args(&["--keep", "--dir", "/d", "--no-warm"])).unwrap(),
            Opts {
                dir: Some("/d".into()),
                keep: true,
                warm: false
            }
        );
        assert_eq!(
            parse(&args(&["--dir"])).unwrap_err().to_string(),
            "--dir needs a directory"
        );
        assert_eq!(
            parse(&args(&["--cold"])).unwrap_err().to_string(),
            "unknown argument '--cold' (see --help)"
        );
    }

    #[test]
    fn the_tables_come_out_of_the_logs() {
        let log = "noise\n[wasmd] building\nSummary (total 16m33s)\nPIECE  STATUS\nwasmd  built\n\nmore\n\
                   \nSTAGE          TOOK\ntools     0m02s\ntotal     3m19s\nafter\n";
        assert_eq!(
            tools_table(log),
            [
                "Summary (total 16m33s)",
                "PIECE  STATUS",
                "wasmd  built",
                ""
            ]
        );
        assert_eq!(
            stage_table(log),
            ["STAGE          TOOK", "tools     0m02s", "total     3m19s"]
        );
        assert_eq!(
            tools_table("[tools] Summary (total 1m)\n[tools] a\n\n"),
            ["Summary (total 1m)", "a", ""]
        );
    }

    #[test]
    fn piece_prefixes_are_stripped_only_when_they_are_prefixes() {
        assert_eq!(strip_piece("[cosmwasm-check] done"), "done");
        assert_eq!(strip_piece("[12:00:00] log"), "[12:00:00] log");
        assert_eq!(strip_piece("plain"), "plain");
    }
}
