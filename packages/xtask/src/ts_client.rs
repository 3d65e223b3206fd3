//! `xtask ts-client [--schema DIR] [--cached]`: checks the contracts' typed TypeScript
//! client the way a hospital's portal gets it (what scripts/ts-client.sh did in bash):
//! generates it from schema/ with @cosmwasm/ts-codegen (pinned), compiles it and
//! tests/ts-client/usage.ts with `tsc --strict`, then runs the usage file under Node.
//!
//! npm packages: tests/ts-client/package-lock.json, installed once with `npm ci
//! --ignore-scripts` into `$EHRX_TOOLS/ts-client-<hash of the lock>/node_modules`.
//! Generated code and the compiled output go to `<target dir>/ts-client`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::sh::{self, Exit, Steps};
use crate::tools::sys::{copy_file, need_cmd, rm_rf};

#[derive(Debug, PartialEq, Eq)]
pub struct Opts {
    pub schema: Option<String>,
    pub cached_only: bool,
}

pub fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        schema: None,
        cached_only: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--schema" => match it.next() {
                Some(d) if !d.is_empty() => o.schema = Some(d.clone()),
                _ => bail!("--schema needs a directory"),
            },
            "--cached" => o.cached_only = true,
            _ => bail!("unknown argument '{a}' (see --help)"),
        }
    }
    Ok(o)
}

fn package() -> PathBuf {
    sh::repo().join("tests/ts-client")
}

/// `$EHRX_TOOLS/ts-client-<first 16 hex digits of the lock's sha256>`.
fn cache_dir() -> Result<PathBuf> {
    let hash = sh::sha256_file(&package().join("package-lock.json"))?;
    Ok(sh::tools_dir().join(format!("ts-client-{}", &hash[..16])))
}

/// Whether the npm packages are cached (`--cached`).
pub fn cached() -> bool {
    cache_dir().is_ok_and(|c| c.join("node_modules").is_dir())
}

pub fn run(args: Vec<String>) -> Result<()> {
    let opts = parse(&args)?;
    let pkg = package();
    let schema = match &opts.schema {
        Some(d) => fs::canonicalize(d).with_context(|| format!("--schema {d}"))?,
        None => sh::repo().join("schema"),
    };
    if opts.cached_only {
        return if cached() {
            Ok(())
        } else {
            Err(Exit(1).into())
        };
    }
    let cache = cache_dir()?;
    let build = sh::target_dir().join("ts-client");
    need_cmd("node", "Node 20 or newer")?;
    need_cmd("npm", "npm")?;

    let mut steps = Steps::default();
    steps.step(format!("npm packages (cached in {})", cache.display()));
    if !cache.join("node_modules").is_dir() {
        let tmp = PathBuf::from(format!("{}.tmp.{}", cache.display(), std::process::id()));
        rm_rf(&tmp)?;
        fs::create_dir_all(&tmp)?;
        for f in ["package.json", "package-lock.json"] {
            copy_file(&pkg.join(f), &tmp.join(f))?;
        }
        sh::run(
            Command::new("npm")
                .args([
                    "ci",
                    "--ignore-scripts",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                ])
                .current_dir(&tmp),
        )?;
        rm_rf(&cache)?;
        fs::rename(&tmp, &cache)?;
    }

    steps.step(format!(
        "generate the client from {} (@cosmwasm/ts-codegen)",
        schema.display()
    ));
    rm_rf(&build)?;
    fs::create_dir_all(&build)?;
    for f in ["tsconfig.json", "codegen.js", "usage.ts"] {
        copy_file(&pkg.join(f), &build.join(f))?;
    }
    std::os::unix::fs::symlink(cache.join("node_modules"), build.join("node_modules"))?;
    let node = |args: &[&Path]| {
        let mut c = Command::new("node");
        c.args(args).current_dir(&build);
        c
    };
    if sh::run(&mut node(&[
        Path::new("codegen.js"),
        &schema,
        Path::new("generated"),
    ]))
    .is_err()
    {
        bail!(
            "ts-codegen could not generate the client from {}",
            schema.display()
        );
    }
    // The Rust /// docs are the schema's descriptions; they must reach the TypeScript as JSDoc.
    let types = fs::read_to_string(build.join("generated/Exchange.types.ts")).unwrap_or_default();
    if !jsdoc_reached(&types) {
        bail!("the schema's descriptions did not reach the generated types as JSDoc");
    }

    steps.step("tsc --strict: the generated client and usage.ts");
    let tsc = sh::run(
        Command::new("node_modules/.bin/tsc")
            .args(["--strict", "-p", "tsconfig.json"])
            .current_dir(&build),
    );
    if tsc.is_err() {
        bail!(
            "the TypeScript does not compile against schema/ (generated code in {}/generated)",
            build.display()
        );
    }

    steps.step("run usage.ts (RetrievedReply decoding, signing vectors)");
    sh::run(&mut node(&[Path::new("dist/usage.js"), &schema]))?;
    steps.done();
    Ok(())
}

/// `grep -q '\* Block time of the request, unix seconds'` on the generated types.
pub fn jsdoc_reached(types: &str) -> bool {
    types.contains("* Block time of the request, unix seconds")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sh::args;

    #[test]
    fn arguments() {
        assert_eq!(
            parse(&args(&["--schema", "/x", "--cached"])).unwrap(),
            Opts {
                schema: Some("/x".into()),
                cached_only: true
            }
        );
        assert_eq!(
            parse(&args(&["--schema"])).unwrap_err().to_string(),
            "--schema needs a directory"
        );
        assert_eq!(
            parse(&args(&["-x"])).unwrap_err().to_string(),
            "unknown argument '-x' (see --help)"
        );
    }

    #[test]
    fn the_jsdoc_check() {
        assert!(jsdoc_reached(
            "  /**\n   * Block time of the request, unix seconds\n"
        ));
        assert!(!jsdoc_reached("time: number;"));
    }
}
