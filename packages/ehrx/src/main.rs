use clap::Parser;
use ehrx::cli::{self, Cli};

fn main() {
    let cli = Cli::parse();
    let result = cli::run(cli, &cli::native_chain);
    report_peak_rss();
    if let Err(err) = result {
        eprintln!("ehrx: error: {err:#}");
        std::process::exit(ehrx::error::exit_code(&err));
    }
}

/// With `EHRX_REPORT_PEAK_RSS` set, the tool's own peak resident set on stderr at the end.
fn report_peak_rss() {
    if let Some(peak) = ehrx::time::peak_rss_report() {
        eprintln!("ehrx: {peak}");
    }
}
