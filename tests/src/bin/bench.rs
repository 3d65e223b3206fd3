//! `scripts/bench.sh`: the figures of DESIGN.md §10 on the running devnet (see
//! `ehr_tests::bench` and the README's "Benchmarks" section).

use clap::Parser as _;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = ehr_tests::bench::Options::parse();
    let command = std::iter::once("scripts/bench.sh".to_string())
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ");
    if let Err(e) = ehr_tests::bench::run(opts, command) {
        eprintln!("bench: {e:#}");
        std::process::exit(1);
    }
}
