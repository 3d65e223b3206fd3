//! `cargo run -p ehrx-matching --example match_report --release [-- SEED ENROLLED NON_ENROLLED]`:
//! generates the population (by default the fixed seed, 2,000 enrolled patients and 500
//! people not enrolled), answers every query with the default weights and prints the rates
//! and the report as markdown.

use ehrx_matching::generate::{evaluate, Population, Rates, SEED};
use ehrx_matching::Weights;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("SEED ENROLLED NON_ENROLLED: integers"))
        .collect();
    let seed = args.first().copied().unwrap_or(SEED);
    let enrolled = args.get(1).map_or(2_000, |&n| n as usize);
    let non_enrolled = args.get(2).map_or(500, |&n| n as usize);
    let population = Population::generate(seed, enrolled, non_enrolled, Rates::default());
    let report = evaluate(&population, &Weights::default());
    println!("# Patient matching report (seed {:#x})\n", population.seed);
    println!(
        "## Rates (fixed before tuning)\n\n{}",
        population.rates.to_markdown()
    );
    println!("## Results\n\n{}", report.to_markdown());
}
