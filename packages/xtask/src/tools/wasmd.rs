//! `wasmd`: wasmd built from the Go module proxy (`go install` is refused: its go.mod has
//! replace directives), with libwasmvm copied next to the binary and the rpath pointed at
//! it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::out::{Logged, Out};
use super::pins::{SONIC, SONIC_LOADER, WASMD};
use super::staged::{self, Staged};
use super::sys::{
    copy_dir, copy_file, is_executable, need_cmd, quiet, rm_rf, temp_dir, version_cmp,
};
use super::{Config, Status};

const LIBWASMVM: &str = "libwasmvm.x86_64.so";
const MODULE: &str = "github.com/CosmWasm/wasmd";

/// The version wasmd reports: the pin without its `v`.
fn bare_version() -> &'static str {
    WASMD.trim_start_matches('v')
}

/// `wasmd_run DIR ARGS...`: DIR/bin/wasmd with a throwaway `--home` (every wasmd command
/// writes a default config into its home, ~/.wasmd otherwise); `$(... 2>/dev/null)` and
/// whether it succeeded.
pub fn run(dir: &Path, args: &[&str]) -> (bool, String) {
    let Ok(home) = temp_dir("ehrx-wasmd-home") else {
        return (false, String::new());
    };
    let r = quiet(
        Command::new(dir.join("bin/wasmd"))
            .args(args)
            .arg("--home")
            .arg(&home),
    );
    let _ = rm_rf(&home);
    r
}

/// `wasmd_ok DIR`: the binary runs, reports the pin and finds libwasmvm.
pub fn ok(dir: &Path) -> bool {
    is_executable(&dir.join("bin/wasmd"))
        && dir.join("bin").join(LIBWASMVM).is_file()
        && run(dir, &["version"]).1 == bare_version()
        && run(dir, &["query", "wasm", "libwasmvm-version"]).0
}

pub fn cached(cfg: &Config) -> bool {
    ok(&cfg.cache.wasmd_dir())
}

pub fn what() -> String {
    format!("wasmd {WASMD}")
}

/// The summary's version: `wasmd 0.61.14, libwasmvm 3.0.7`.
pub fn summary_version(cfg: &Config) -> String {
    let dir = cfg.cache.wasmd_dir();
    format!(
        "wasmd {}, libwasmvm {}",
        run(&dir, &["version"]).1,
        run(&dir, &["query", "wasm", "libwasmvm-version"]).1
    )
}

pub fn install(cfg: &Config, out: &Out) -> Result<Status> {
    let dir = cfg.cache.wasmd_dir();
    let bin = dir.join("bin/wasmd");
    if ok(&dir) {
        return staged::cached(cfg, out, "wasmd", &bin);
    }
    need_cmd("go", "install Go >= 1.24")?;
    need_cmd("patchelf", &format!("run: {} apt", cfg.cmd))?;
    need_cmd("gcc", "cgo needs a C compiler")?;
    let bdir = cfg.cache.build_root().join(format!("wasmd-{WASMD}"));
    let mut b = Staged::start(cfg, out, "wasmd", dir.clone(), Some(bdir.clone()))?;
    let logf = b.logf();
    let go_version = quiet(Command::new("go").arg("version")).1;
    out.log(format!(
        "building from the Go module proxy ({}); log: {}",
        go_version.split_whitespace().nth(2).unwrap_or("?"),
        logf.display()
    ));
    let stage = b.stage.clone();
    build(cfg, &mut b.log, &stage, &bdir)?;
    b.promote()?;

    // The installed copy: the library must resolve next to the binary.
    let (_, ldd) = quiet(Command::new("ldd").arg(&bin));
    let resolved = libwasmvm_from_ldd(&ldd);
    out.log(format!("libwasmvm resolves to: {resolved}"));
    if Path::new(&resolved) != dir.join("bin").join(LIBWASMVM) {
        bail!(
            "wasmd: {LIBWASMVM} resolves to '{resolved}', expected {} (log: {})",
            dir.join("bin").display(),
            logf.display()
        );
    }
    for args in [
        &["version", "--long"][..],
        &["query", "wasm", "libwasmvm-version"],
    ] {
        b.log.note(format!("+ wasmd {}", args.join(" ")));
        let home = temp_dir("ehrx-wasmd-home")?;
        let r = b
            .log
            .run(Command::new(&bin).args(args).arg("--home").arg(&home));
        let _ = rm_rf(&home);
        r?;
    }
    if !ok(&dir) {
        bail!(
            "wasmd: built binary fails its version check (log: {})",
            logf.display()
        );
    }
    out.log(summary_version(cfg));
    b.done(&bin)?;
    Ok(Status::Built)
}

/// `go ARGS` with the build's environment.
fn go(args: &[&str]) -> Command {
    let mut c = Command::new("go");
    c.args(args)
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "1");
    c
}

/// The ldflags of wasmd's Makefile (build tags without `ledger`; no commit hash: the
/// module zip carries no git metadata).
fn ldflags() -> String {
    let v = bare_version();
    [
        "-checklinkname=0".to_string(),
        "-X github.com/cosmos/cosmos-sdk/version.Name=wasm".into(),
        "-X github.com/cosmos/cosmos-sdk/version.AppName=wasmd".into(),
        format!("-X github.com/cosmos/cosmos-sdk/version.Version={v}"),
        "-X github.com/CosmWasm/wasmd/app.Bech32Prefix=wasm".into(),
        "-X github.com/cosmos/cosmos-sdk/version.BuildTags=netgo".into(),
    ]
    .join(" ")
}

fn build(cfg: &Config, log: &mut Logged, stage: &Path, bdir: &Path) -> Result<()> {
    let module = format!("{MODULE}@{WASMD}");
    log.note(format!("+ go mod download -json {module}"));
    let build_root = cfg.cache.build_root();
    std::fs::create_dir_all(&build_root)?;
    let json = log.capture(go(&["mod", "download", "-json", &module]).current_dir(&build_root))?;
    let srcdir = PathBuf::from(
        json_string(&json, "Dir")
            .with_context(|| format!("no \"Dir\" in `go mod download -json {module}`: {json}"))?,
    );
    if !srcdir.is_dir() {
        bail!("module source dir not found: {}", srcdir.display());
    }
    log.note(format!("+ copy {} -> {}", srcdir.display(), bdir.display()));
    rm_rf(bdir)?;
    if let Some(parent) = bdir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    copy_dir(&srcdir, bdir)?;

    // Go >= 1.26: wasmd v0.61.14 pins bytedance/sonic v1.14.2, which does not compile
    // ("undefined: GoMapIterator", cosmos/cosmos-sdk#25911); bump it when older.
    let cur = log.capture(
        go(&[
            "list",
            "-m",
            "-f",
            "{{.Version}}",
            "github.com/bytedance/sonic",
        ])
        .current_dir(bdir),
    )?;
    if version_cmp(cur.trim(), SONIC).is_lt() {
        log.note(format!(
            "+ go get github.com/bytedance/sonic@{SONIC} github.com/bytedance/sonic/loader@{SONIC_LOADER} (was {cur})"
        ));
        log.run(
            go(&[
                "get",
                &format!("github.com/bytedance/sonic@{SONIC}"),
                &format!("github.com/bytedance/sonic/loader@{SONIC_LOADER}"),
            ])
            .current_dir(bdir),
        )?;
        log.note("+ go.mod changes:");
        log.run_status(
            Command::new("diff")
                .arg(srcdir.join("go.mod"))
                .arg("go.mod")
                .current_dir(bdir),
        )?;
    }

    let ldflags = ldflags();
    std::fs::create_dir_all(stage.join("bin"))?;
    let out_bin = stage.join("bin/wasmd");
    log.note(format!(
        "+ go build -mod=readonly -trimpath -tags netgo -ldflags '{ldflags}' -o {} ./cmd/wasmd",
        out_bin.display()
    ));
    let out_str = out_bin.to_string_lossy().into_owned();
    log.run(
        go(&[
            "build",
            "-v",
            "-mod=readonly",
            "-trimpath",
            "-tags",
            "netgo",
            "-ldflags",
            &ldflags,
            "-o",
            &out_str,
            "./cmd/wasmd",
        ])
        .current_dir(bdir),
    )?;

    // libwasmvm: the Go module ships the prebuilt shared library; cgo links the binary
    // with an rpath into the module cache. Copy the library next to the binary and point
    // the rpath at $ORIGIN so a cleaned module cache (or another machine's) does not break
    // wasmd.
    let vm = "github.com/CosmWasm/wasmvm/v3";
    let vmdir = log.capture(go(&["list", "-m", "-f", "{{.Dir}}", vm]).current_dir(bdir))?;
    let vmver = log.capture(go(&["list", "-m", "-f", "{{.Version}}", vm]).current_dir(bdir))?;
    log.note(format!("+ wasmvm {vmver} from {vmdir}"));
    let lib = stage.join("bin").join(LIBWASMVM);
    copy_file(
        &Path::new(&vmdir).join("internal/api").join(LIBWASMVM),
        &lib,
    )?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o644))?;
    let before = log.capture(Command::new("patchelf").arg("--print-rpath").arg(&out_bin))?;
    log.note(format!("+ rpath before: {before}"));
    log.run(
        Command::new("patchelf")
            .args(["--set-rpath", "$ORIGIN"])
            .arg(&out_bin),
    )?;
    let after = log.capture(Command::new("patchelf").arg("--print-rpath").arg(&out_bin))?;
    log.note(format!("+ rpath after: {after}"));
    Ok(())
}

/// `ldd BIN | awk '/libwasmvm/ {print $3}'`.
fn libwasmvm_from_ldd(ldd: &str) -> String {
    ldd.lines()
        .filter(|l| l.contains("libwasmvm"))
        .map(|l| l.split_whitespace().nth(2).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The string value of a top-level `"KEY": "..."` in `go mod download -json`'s output.
fn json_string(json: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\":");
    let start = json.find(&pat)? + pat.len();
    let rest = json[start..].trim_start().strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_dir_is_read_from_go_mod_download_json() {
        let json = r#"{
	"Path": "github.com/CosmWasm/wasmd",
	"Version": "v0.61.14",
	"Dir": "/root/go/pkg/mod/github.com/!cosm!wasm/wasmd@v0.61.14",
	"Sum": "h1:x="
}"#;
        assert_eq!(
            json_string(json, "Dir").as_deref(),
            Some("/root/go/pkg/mod/github.com/!cosm!wasm/wasmd@v0.61.14")
        );
        assert_eq!(
            json_string(r#"{"Dir": "a\"b\\c"}"#, "Dir").as_deref(),
            Some("a\"b\\c")
        );
        assert_eq!(json_string("{}", "Dir"), None);
    }

    #[test]
    fn libwasmvm_is_found_in_ldds_output() {
        let ldd = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibwasmvm.x86_64.so => /c/wasmd-v0.61.14/bin/libwasmvm.x86_64.so (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)";
        assert_eq!(
            libwasmvm_from_ldd(ldd),
            "/c/wasmd-v0.61.14/bin/libwasmvm.x86_64.so"
        );
        assert_eq!(
            libwasmvm_from_ldd("\tlibwasmvm.x86_64.so => not found"),
            "not"
        );
    }

    #[test]
    fn the_ldflags_are_the_makefiles() {
        assert_eq!(
            ldflags(),
            "-checklinkname=0 -X github.com/cosmos/cosmos-sdk/version.Name=wasm \
             -X github.com/cosmos/cosmos-sdk/version.AppName=wasmd \
             -X github.com/cosmos/cosmos-sdk/version.Version=0.61.14 \
             -X github.com/CosmWasm/wasmd/app.Bech32Prefix=wasm \
             -X github.com/cosmos/cosmos-sdk/version.BuildTags=netgo"
        );
    }
}
