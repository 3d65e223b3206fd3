//! Writes the signing-bytes test vectors (`ehr_protocol::test_vectors`) to the file given
//! as the first argument (default `schema/test-vectors/signing.json`).

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "schema/test-vectors/signing.json".into()),
    );
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).expect("create the test-vectors directory");
    }
    std::fs::write(&out, ehr_protocol::test_vectors::signing_vectors_json())
        .expect("write the test vectors");
}
