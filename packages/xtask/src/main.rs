//! The project's developer tasks, one module per subcommand.
//!
//! `xtask tools [PIECES] [--list] [--check]` installs the pinned tools into the tool cache
//! (`$EHRX_TOOLS`, default `~/.cache/ehrx-tools`); `scripts/install-tools.sh` builds this
//! binary and runs it. See `src/tools/mod.rs`.

mod clock;
mod demo;
mod tools;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "The ehrx project's developer tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the pinned tools into the tool cache (what scripts/install-tools.sh runs)
    Tools(tools::ToolsArgs),
    /// The README's main job: tools, devnet, the paper's scenario (what scripts/demo.sh runs)
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Tools(args) => tools::run(args),
        Command::Demo(args) => demo::run(args),
    }
}
