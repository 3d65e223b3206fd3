//! The custodian's index of its own patients, for matching a request's details (issue 12):
//! held off chain by the hospital, beside its pseudonym key, never on a chain.
//!
//! A file of JSON lines, one `{ "pseudonym": ..., "patient": Attributes }` per stored
//! record, appended by `ehrx store` (each line is one `write` on a file opened for
//! appending, so peers storing at once do not interleave). Reading folds the lines by
//! pseudonym: a later line fills the attributes an earlier one lacked. The file holds PHI:
//! it is created mode 0600, and its errors name a line number, never a value.

use anyhow::{bail, Context, Result};
use ehr_protocol::validate;
use ehrx_matching::{Attributes, Index, PatientId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The index file's default name, in the directory of the pseudonym key file: the peers
/// that store and the reply service of one hospital share the key, hence the index.
pub const DEFAULT_FILE_NAME: &str = "patient-index.jsonl";

/// Where the index is when the settings name none.
pub fn default_path(pseudonym_key_file: &Path) -> PathBuf {
    pseudonym_key_file
        .parent()
        .unwrap_or(Path::new("."))
        .join(DEFAULT_FILE_NAME)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    pseudonym: String,
    patient: Attributes,
}

/// Appends one patient (under this hospital's pseudonym) to the index at `path`.
pub fn append(path: &Path, pseudonym: &str, patient: &Attributes) -> Result<()> {
    if validate::patient_token(pseudonym).is_err() {
        bail!("the pseudonym must be 64 lowercase hex characters (InvalidFormat)");
    }
    patient
        .validate()
        .context("the patient's details are not valid for the patient index")?;
    let mut line = serde_json::to_vec(&Line {
        pseudonym: pseudonym.to_string(),
        patient: patient.clone(),
    })?;
    line.push(b'\n');
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("opening the patient index {}", path.display()))?;
    file.write_all(&line)
        .with_context(|| format!("writing the patient index {}", path.display()))
}

/// The index at `path`, folded by pseudonym (empty when the file does not exist yet).
pub fn load(path: &Path) -> Result<Index> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(e).with_context(|| format!("reading the patient index {}", path.display()))
        }
    };
    let mut patients: BTreeMap<String, Attributes> = BTreeMap::new();
    for (n, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(raw).map_err(|e| {
            anyhow::anyhow!(
                "the patient index {} has a malformed line {} (column {}); remove or fix it",
                path.display(),
                n + 1,
                e.column()
            )
        })?;
        let entry = patients.entry(line.pseudonym).or_default();
        merge(entry, line.patient);
    }
    Index::new(
        patients
            .into_iter()
            .map(|(pseudonym, patient)| (PatientId(pseudonym), patient))
            .collect(),
    )
    .with_context(|| format!("the patient index {}", path.display()))
}

/// Fills the attributes `into` lacks from `from`.
fn merge(into: &mut Attributes, from: Attributes) {
    fn fill<T>(slot: &mut Option<T>, value: Option<T>) {
        if slot.is_none() {
            *slot = value;
        }
    }
    fill(&mut into.given, from.given);
    fill(&mut into.family, from.family);
    fill(&mut into.birth_date, from.birth_date);
    fill(&mut into.sex, from.sex);
    fill(&mut into.ssn, from.ssn);
    fill(&mut into.ssn_last4, from.ssn_last4);
    fill(&mut into.address, from.address);
    fill(&mut into.phone, from.phone);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ehrx_matching::{answer, Answer, Weights};

    const P1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const P2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn jon() -> Attributes {
        Attributes {
            given: Some("Jon".into()),
            family: Some("Smith".into()),
            birth_date: Some("1980-02-03".into()),
            ssn: Some("123-45-6789".into()),
            phone: Some("555-201-3344".into()),
            ..Attributes::default()
        }
    }

    #[test]
    fn appended_patients_are_found_and_lines_merge() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE_NAME);
        assert_eq!(load(&path).unwrap().len(), 0, "no file yet: an empty index");
        let mut partial = jon();
        partial.phone = None;
        append(&path, P1, &partial).unwrap();
        append(&path, P1, &jon()).unwrap();
        let other = Attributes {
            given: Some("Ann".into()),
            family: Some("Jones".into()),
            birth_date: Some("1990-07-08".into()),
            ..Attributes::default()
        };
        append(&path, P2, &other).unwrap();
        let index = load(&path).unwrap();
        assert_eq!(index.len(), 2);
        let query = Attributes {
            given: Some("John".into()),
            ..jon()
        };
        match answer(&index, &query, &Weights::default()).unwrap() {
            Answer::Match { patient, .. } => assert_eq!(patient.0, P1),
            other => panic!("expected a match, got {other:?}"),
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the index holds PHI");
        }
    }

    #[test]
    fn bad_input_changes_nothing_and_a_bad_line_is_named_by_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE_NAME);
        assert!(append(&path, "not-a-pseudonym", &jon()).is_err());
        let mut bad = jon();
        bad.ssn = Some("12".into());
        assert!(append(&path, P1, &bad).is_err());
        assert!(!path.exists(), "nothing written on bad input");
        std::fs::write(&path, "{\"pseudonym\": 1}\n").unwrap();
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(err.contains("line 1"), "{err}");
    }
}
