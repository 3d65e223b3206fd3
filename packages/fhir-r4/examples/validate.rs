//! `cargo run --release -p fhir-r4 --example validate -- FILE`: validates a Bundle file and
//! prints the errors, or the entry count and the time taken (for measurements). `--value`
//! parses the whole document into a `serde_json::Value` first and validates that instead
//! (what the streaming reader avoids: compare their peak RSS with `/usr/bin/time -v`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let whole = args.iter().any(|a| a == "--value");
    let Some(path) = args.iter().find(|a| *a != "--value").cloned() else {
        eprintln!("usage: validate [--value] FILE");
        std::process::exit(2);
    };
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1);
    });
    let start = std::time::Instant::now();
    let result = if whole {
        match serde_json::from_slice(&bytes) {
            Ok(value) => fhir_r4::validate(&value),
            Err(_) => fhir_r4::validate_json(&bytes),
        }
    } else {
        fhir_r4::validate_json(&bytes)
    };
    match result {
        Ok(summary) => println!(
            "valid {} Bundle: {} entries, {} bytes, {:?}",
            summary.bundle_type,
            summary.entries,
            bytes.len(),
            start.elapsed()
        ),
        Err(invalid) => {
            eprintln!("{invalid}");
            std::process::exit(1);
        }
    }
}
