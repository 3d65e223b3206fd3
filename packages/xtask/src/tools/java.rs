//! `fhir-validator` and `synthea`: two Maven projects in tests/, each built into a
//! directory named after its version and a hash of its sources (pom.xml and src/), so a
//! changed harness builds anew:
//!
//! - fhir-validator: `$EHRX_TOOLS/fhir-validator-<hapi>-<hash>/`, the HAPI FHIR validator
//!   harness
//! - synthea: `$EHRX_TOOLS/synthea-<version>-<hash>/`, the test histories' generator
//!
//! Each holds lib/*.jar (the jar and its runtime dependencies, copied by Maven) and a
//! launcher bin/<piece> (`java -cp 'lib/*' MAIN "$@"`), exposed in `$EHRX_TOOLS/bin`.
//! Maven's local repository is Maven's own (~/.m2, or -Dmaven.repo.local from MAVEN_OPTS).
//! The tests find them through tests/src/fhir_tools.rs, which recomputes the hash (the
//! same recipe as [`src_hash`]) and refuses a harness built from other sources.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::out::{Logged, Out};
use super::piece::Piece;
use super::staged::{self, Staged};
use super::sys::{copy_dir, copy_file, is_executable, need_cmd, quiet, rm_rf, succeeds};
use super::{Config, Status};

/// One of the two Java tools.
#[derive(Clone, Copy, Debug)]
pub struct JavaTool {
    pub piece: Piece,
    /// The Maven project, relative to the repository.
    pub project: &'static str,
    /// The pom property holding the tool's version.
    pub property: &'static str,
    /// The class the launcher runs.
    pub main: &'static str,
}

pub fn tool(piece: Piece) -> JavaTool {
    match piece {
        Piece::FhirValidator => JavaTool {
            piece,
            project: "tests/fhir-validator",
            property: "hapi.version",
            main: "ehrx.FhirValidate",
        },
        Piece::Synthea => JavaTool {
            piece,
            project: "tests/synthea",
            property: "synthea.version",
            main: "App",
        },
        other => unreachable!("{} is not a Java tool", other.name()),
    }
}

impl JavaTool {
    fn name(&self) -> &'static str {
        self.piece.name()
    }

    pub fn src(&self, cfg: &Config) -> PathBuf {
        cfg.repo.join(self.project)
    }

    /// The version property of the pom (e.g. `8.8.1`).
    pub fn version(&self, cfg: &Config) -> Result<String> {
        let pom = self.src(cfg).join("pom.xml");
        let text =
            fs::read_to_string(&pom).with_context(|| format!("reading {}", pom.display()))?;
        pom_property(&text, self.property)
            .with_context(|| format!("{} has no <{}>", pom.display(), self.property))
    }

    /// `$EHRX_TOOLS/<piece>-<version>-<source hash>`.
    pub fn dir(&self, cfg: &Config) -> Result<PathBuf> {
        Ok(cfg.cache.root.join(format!(
            "{}-{}-{}",
            self.name(),
            self.version(cfg)?,
            src_hash(&self.src(cfg))?
        )))
    }

    pub fn launcher(&self, dir: &Path) -> PathBuf {
        dir.join("bin").join(self.name())
    }

    /// The launcher runs and answers `--help` (fhir-validator) or `-h` (synthea).
    pub fn ok(&self, dir: &Path) -> bool {
        let launcher = self.launcher(dir);
        if !is_executable(&launcher) || !dir.join("lib").is_dir() {
            return false;
        }
        match self.piece {
            Piece::FhirValidator => succeeds(Command::new(&launcher).arg("--help")),
            _ => {
                let (success, out) = quiet(Command::new(&launcher).arg("-h"));
                success && out.lines().any(|l| l.starts_with("Usage: run_synthea"))
            }
        }
    }

    pub fn cached(&self, cfg: &Config) -> bool {
        self.dir(cfg).is_ok_and(|d| self.ok(&d))
    }

    pub fn what(&self, cfg: &Config) -> String {
        let v = self.version(cfg).unwrap_or_default();
        match self.piece {
            Piece::FhirValidator => {
                format!("HAPI FHIR validator harness (hapi-fhir-validation {v}, R4)")
            }
            _ => format!("Synthea {v} (org.mitre.synthea:synthea)"),
        }
    }

    /// The summary's version and path.
    pub fn summary(&self, cfg: &Config) -> (String, String) {
        let v = self.version(cfg).unwrap_or_default();
        let version = match self.piece {
            Piece::FhirValidator => format!("hapi-fhir-validation {v}"),
            _ => format!("synthea {v}"),
        };
        let path = self
            .dir(cfg)
            .map(|d| self.launcher(&d).display().to_string())
            .unwrap_or_default();
        (version, path)
    }

    pub fn install(&self, cfg: &Config, out: &Out) -> Result<Status> {
        let dir = self.dir(cfg)?;
        let launcher = self.launcher(&dir);
        if self.ok(&dir) {
            return staged::cached(cfg, out, self.name(), &launcher);
        }
        need_cmd(
            "java",
            "install a Java 17 JDK (Debian: apt-get install openjdk-17-jdk-headless)",
        )?;
        need_cmd("mvn", "install Maven (Debian: apt-get install maven)")?;
        let bdir = cfg
            .cache
            .build_root()
            .join(dir.file_name().context("tool dir has a name")?);
        let mut b = Staged::start(cfg, out, self.name(), dir, Some(bdir.clone()))?;
        out.log(format!(
            "mvn package from Maven Central; log: {}",
            b.logf().display()
        ));
        let stage = b.stage.clone();
        self.build(cfg, &mut b.log, &stage, &bdir)?;
        if !self.ok(&stage) {
            bail!(
                "{}: the built launcher {} does not start (log: {})",
                self.name(),
                self.launcher(&stage).display(),
                b.logf().display()
            );
        }
        b.promote()?;
        b.done(&launcher)?;
        Ok(Status::Built)
    }

    fn build(&self, cfg: &Config, log: &mut Logged, stage: &Path, bdir: &Path) -> Result<()> {
        let src = self.src(cfg);
        rm_rf(bdir)?;
        fs::create_dir_all(bdir)?;
        fs::create_dir_all(stage.join("bin"))?;
        copy_file(&src.join("pom.xml"), &bdir.join("pom.xml"))?;
        if src.join("src").is_dir() {
            copy_dir(&src.join("src"), &bdir.join("src"))?;
        }
        log.note(format!(
            "+ mvn -B package in {} (MAVEN_OPTS={})",
            bdir.display(),
            std::env::var("MAVEN_OPTS").unwrap_or_default()
        ));
        log.run(
            Command::new("mvn")
                .args(["-B", "--no-transfer-progress", "package"])
                .current_dir(bdir),
        )?;
        let target = bdir.join("target");
        copy_dir(&target.join("lib"), &stage.join("lib"))?;
        let mut jars = 0;
        for entry in fs::read_dir(&target)? {
            let p = entry?.path();
            if p.extension().is_some_and(|e| e == "jar") && p.is_file() {
                copy_file(
                    &p,
                    &stage.join("lib").join(p.file_name().unwrap_or_default()),
                )?;
            }
        }
        let launcher = self.launcher(stage);
        fs::write(&launcher, launcher_script(self.name(), self.main))?;
        fs::set_permissions(&launcher, fs::Permissions::from_mode(0o755))?;
        for entry in fs::read_dir(stage.join("lib"))? {
            if entry?.path().extension().is_some_and(|e| e == "jar") {
                jars += 1;
            }
        }
        let (_, du) = quiet(Command::new("du").arg("-sh").arg(stage));
        log.note(format!(
            "+ {} in {} ({jars} jars)",
            du.split_whitespace().next().unwrap_or("?"),
            stage.display()
        ));
        Ok(())
    }
}

/// The launcher: `java -cp 'lib/*' MAIN "$@"`, from wherever it is linked.
fn launcher_script(piece: &str, main: &str) -> String {
    format!(
        r#"#!/usr/bin/env bash
# {piece}, built by ehrx scripts/install-tools.sh. JAVA_TOOL_OPTS: extra JVM options.
dir=$(cd "$(dirname "$(readlink -f "${{BASH_SOURCE[0]}}")")/.." && pwd)
# shellcheck disable=SC2086
exec java ${{JAVA_TOOL_OPTS:-}} -cp "$dir/lib/*" {main} "$@"
"#
    )
}

/// `<NAME>value</NAME>` on one line of a pom: the first such line's value (as
/// `sed -n 's:.*<NAME>\([^<]*\)</NAME>.*:\1:p' | head -n1`).
pub fn pom_property(pom: &str, name: &str) -> Option<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    pom.lines().find_map(|line| {
        line.rmatch_indices(&open).find_map(|(i, _)| {
            let rest = &line[i + open.len()..];
            let end = rest.find('<')?;
            rest[end..]
                .starts_with(&close)
                .then(|| rest[..end].to_string())
        })
    })
}

/// The hash of a Maven project's sources: sha256 over pom.xml and every file under src/,
/// in byte order of their paths, each as "PATH\nSIZE\n" then its bytes; the first 16 hex
/// digits (tests/src/fhir_tools.rs computes the same).
pub fn src_hash(project: &Path) -> Result<String> {
    let mut files = Vec::new();
    if fs::symlink_metadata(project.join("pom.xml")).is_ok_and(|m| m.is_file()) {
        files.push("pom.xml".to_string());
    }
    let mut stack = vec![PathBuf::from("src")];
    while let Some(rel) = stack.pop() {
        let Ok(entries) = fs::read_dir(project.join(&rel)) else {
            continue;
        };
        for entry in entries {
            let entry = entry?;
            let ty = entry.file_type()?;
            let path = rel.join(entry.file_name());
            if ty.is_dir() {
                stack.push(path);
            } else if ty.is_file() {
                files.push(path.to_str().context("non-UTF-8 path")?.to_string());
            }
        }
    }
    files.sort();
    let mut h = Sha256::new();
    for f in &files {
        let bytes = fs::read(project.join(f))
            .with_context(|| format!("reading {}/{f}", project.display()))?;
        h.update(format!("{f}\n{}\n", bytes.len()));
        h.update(&bytes);
    }
    Ok(hex::encode(h.finalize())[..16].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::sys::temp_dir;

    #[test]
    fn pom_properties_are_read_as_sed_reads_them() {
        let pom = "<project>\n  <properties>\n    <hapi.version>8.8.1</hapi.version>\n    \
                   <synthea.version>3.3.0</synthea.version>\n  </properties>\n</project>\n";
        assert_eq!(pom_property(pom, "hapi.version").as_deref(), Some("8.8.1"));
        assert_eq!(
            pom_property(pom, "synthea.version").as_deref(),
            Some("3.3.0")
        );
        assert_eq!(pom_property(pom, "nope"), None);
        assert_eq!(pom_property("<a><b>x</b></a>", "a"), None);
    }

    /// The expected value is the shell recipe's (install-tools.sh's src_hash) on the same
    /// files: `find pom.xml src -type f | LC_ALL=C sort | ...| sha256sum | cut -c1-16`.
    #[test]
    fn the_source_hash_is_the_shell_recipes() {
        let root = temp_dir("xtask-hash").unwrap();
        fs::write(root.join("pom.xml"), "<project/>\n").unwrap();
        fs::create_dir_all(root.join("src/main/java/ehrx")).unwrap();
        fs::write(root.join("src/main/java/ehrx/A.java"), "class A {}\n").unwrap();
        fs::write(root.join("src/main/java/B.java"), "class B {}\n").unwrap();
        fs::create_dir_all(root.join("target")).unwrap();
        fs::write(root.join("target/ignored"), "x").unwrap();
        assert_eq!(src_hash(&root).unwrap(), "8caf4fb29bf19809");
        rm_rf(&root).unwrap();
    }

    #[test]
    fn the_launcher_runs_the_main_class_from_lib() {
        let s = launcher_script("synthea", "App");
        assert!(s.starts_with("#!/usr/bin/env bash\n# synthea, built by ehrx"));
        assert!(s.contains(r#"readlink -f "${BASH_SOURCE[0]}""#));
        assert!(s.contains(r#"exec java ${JAVA_TOOL_OPTS:-} -cp "$dir/lib/*" App "$@""#));
    }
}
