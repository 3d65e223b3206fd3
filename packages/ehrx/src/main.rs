use clap::Parser;
use ehrx::cli::{self, Cli};

fn main() {
    let cli = Cli::parse();
    if let Err(err) = cli::run(cli, &cli::wasmd_chain) {
        eprintln!("ehrx: error: {err:#}");
        std::process::exit(ehrx::error::exit_code(&err));
    }
}
