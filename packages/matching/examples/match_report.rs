//! `cargo run -p ehrx-matching --example match_report --release`: generates the default
//! population (fixed seed, 2,000 enrolled patients, 500 people not enrolled), answers every
//! query with the default weights and prints the rates and the report.

use ehrx_matching::generate::{evaluate, Population};
use ehrx_matching::Weights;

fn main() {
    let population = Population::default();
    let report = evaluate(&population, &Weights::default());
    println!("# Patient matching report (seed {:#x})\n", population.seed);
    println!(
        "## Rates (fixed before tuning)\n\n{}",
        population.rates.to_markdown()
    );
    println!("## Results\n\n{}", report.to_markdown());
}
