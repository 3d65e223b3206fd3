//! Small system helpers: commands on PATH, quiet runs, files and directories, the lock.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context, Result};

/// A command line as the messages show it.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// `command -v NAME`: the executable NAME on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// `need_cmd` of scripts/lib.sh.
pub fn need_cmd(name: &str, hint: &str) -> Result<()> {
    if which(name).is_none() {
        bail!("required command '{name}' not found on PATH ({hint})");
    }
    Ok(())
}

/// `[[ -x PATH ]]` for a file (symlinks followed).
pub fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `$(CMD 2>/dev/null)` and whether it succeeded: stdout without trailing newlines.
pub fn quiet(cmd: &mut Command) -> (bool, String) {
    match cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .stdout(Stdio::piped())
        .output()
    {
        Ok(o) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout)
                .trim_end_matches('\n')
                .to_string(),
        ),
        Err(_) => (false, String::new()),
    }
}

/// Whether CMD exits 0 (output discarded).
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `rm -rf PATH`.
pub fn rm_rf(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        Ok(m) if m.is_dir() => {
            fs::remove_dir_all(p).with_context(|| format!("removing {}", p.display()))
        }
        Ok(_) => fs::remove_file(p).with_context(|| format!("removing {}", p.display())),
    }
}

/// `mv FROM TO` within the cache (a rename).
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).with_context(|| format!("moving {} to {}", from.display(), to.display()))
}

/// `cp -r SRC DST` (DST must not exist), then `chmod -R u+w DST`: copies of read-only
/// trees (Go's module cache) come out writable by their owner.
pub fn copy_dir(src: &Path, dst: &Path) -> Result<()> {
    fs::create_dir(dst).with_context(|| format!("creating {}", dst.display()))?;
    for entry in fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let entry = entry?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let ty = entry.file_type()?;
        if ty.is_dir() {
            copy_dir(&from, &to)?;
        } else if ty.is_symlink() {
            symlink(fs::read_link(&from)?, &to)
                .with_context(|| format!("linking {}", to.display()))?;
        } else {
            copy_file(&from, &to)?;
        }
    }
    let mut perms = fs::metadata(src)?.permissions();
    perms.set_mode(perms.mode() | 0o700);
    fs::set_permissions(dst, perms)?;
    Ok(())
}

/// Copies a file, keeping its mode plus the owner's write bit.
pub fn copy_file(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    let mut perms = fs::metadata(to)?.permissions();
    perms.set_mode(perms.mode() | 0o200);
    fs::set_permissions(to, perms)?;
    Ok(())
}

/// `mktemp -d "${TMPDIR:-/tmp}/PREFIX.XXXXXX"`.
pub fn temp_dir(prefix: &str) -> Result<PathBuf> {
    static N: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir();
    for _ in 0..100 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "{prefix}.{}{:x}{nanos:x}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let p = base.join(name);
        match fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", p.display())),
        }
    }
    bail!("cannot create a temporary directory in {}", base.display())
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// An exclusive `flock` on PATH, held while the returned file is open. Calls `waiting`
/// once when another process holds it, then blocks.
pub fn lock(path: &Path, waiting: impl FnOnce()) -> Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(f);
    }
    waiting();
    loop {
        // SAFETY: as above.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(f);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).with_context(|| format!("locking {}", path.display()));
        }
    }
}

/// Version order as `sort -V` has it, for plain versions like `v1.14.2`: runs of digits
/// compare as numbers, everything else as bytes.
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(cb.iter()) {
        let ord = match (x, y) {
            ((true, x), (true, y)) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            ((_, x), (_, y)) => x.cmp(y),
        };
        if ord.is_ne() {
            return ord;
        }
    }
    ca.len().cmp(&cb.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn versions_compare_as_sort_v_does() {
        assert_eq!(version_cmp("v1.14.2", "v1.15.1"), Less);
        assert_eq!(version_cmp("v1.15.1", "v1.15.1"), Equal);
        assert_eq!(version_cmp("v1.15.10", "v1.15.9"), Greater);
        assert_eq!(version_cmp("v1.16.0", "v1.15.1"), Greater);
        assert_eq!(version_cmp("v2.0.0", "v1.99.99"), Greater);
        assert_eq!(version_cmp("v1.15", "v1.15.1"), Less);
    }

    #[test]
    fn a_command_is_shown_with_its_arguments() {
        let mut c = Command::new("go");
        c.args(["mod", "download", "-json"]);
        assert_eq!(show(&c), "go mod download -json");
    }

    #[test]
    fn copy_dir_makes_read_only_trees_writable() {
        let root = temp_dir("xtask-test").unwrap();
        let src = root.join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("sub/f"), "x").unwrap();
        fs::set_permissions(src.join("sub/f"), fs::Permissions::from_mode(0o444)).unwrap();
        symlink("sub/f", src.join("link")).unwrap();
        copy_dir(&src, &root.join("dst")).unwrap();
        let m = fs::metadata(root.join("dst/sub/f")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o644);
        assert_eq!(
            fs::read_link(root.join("dst/link")).unwrap(),
            Path::new("sub/f")
        );
        rm_rf(&root).unwrap();
        assert!(!root.exists());
    }
}
