//! The project's developer tasks, one module per subcommand. The scripts in scripts/ are
//! thin entry points: they answer `--help` with their header, build this binary and run
//! `xtask SUBCOMMAND ARGS` (scripts/lib.sh, `xtask_exec`).
//!
//! - `xtask tools [PIECES] [--list] [--check]` (scripts/install-tools.sh): the pinned
//!   tools, in the tool cache (`$EHRX_TOOLS`, default `~/.cache/ehrx-tools`); `src/tools/`.
//! - `xtask test` (scripts/test.sh): every test in timed stages, the time budget;
//!   `src/test/`.
//! - `xtask build-wasm` (scripts/build-wasm.sh), `xtask schema` (scripts/schema.sh),
//!   `xtask ts-client` (scripts/ts-client.sh), `xtask fhir-r4-table`
//!   (scripts/fhir-r4-table.sh), `xtask gen-histories` (scripts/gen-histories.sh),
//!   `xtask cold-rehearsal` (scripts/cold-rehearsal.sh).
//!
//! The ported tasks keep the scripts' arguments, messages and exit statuses: they parse
//! their own arguments (so an unknown one is the script's error, exit 1), and `-h`/`--help`
//! prints the script's header.

mod build_wasm;
mod clock;
mod cold_rehearsal;
mod demo;
mod fhir_r4_table;
mod gen_histories;
mod schema;
mod sh;
mod test;
mod tools;
mod ts_client;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "The ehrx project's developer tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The arguments of a ported script, parsed by its module as the script parsed them.
#[derive(clap::Args)]
#[command(disable_help_flag = true)]
struct ScriptArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Install the pinned tools into the tool cache (what scripts/install-tools.sh runs)
    Tools(tools::ToolsArgs),
    /// The README's main job: tools, devnet, the paper's scenario (what scripts/demo.sh runs)
    Demo(demo::DemoArgs),
    /// Every test, in timed stages against their budgets (scripts/test.sh)
    Test(ScriptArgs),
    /// The contracts as chain-ready wasm artifacts (scripts/build-wasm.sh)
    BuildWasm(ScriptArgs),
    /// Generate or check schema/ (scripts/schema.sh)
    Schema(ScriptArgs),
    /// Check the typed TypeScript client (scripts/ts-client.sh)
    TsClient(ScriptArgs),
    /// Regenerate or check packages/fhir-r4/src/r4.table (scripts/fhir-r4-table.sh)
    #[command(name = "fhir-r4-table")]
    FhirR4Table(ScriptArgs),
    /// The Synthea test histories (scripts/gen-histories.sh)
    GenHistories(ScriptArgs),
    /// The cold-machine rehearsal (scripts/cold-rehearsal.sh)
    ColdRehearsal(ScriptArgs),
}

/// A ported script's task: its arguments in, `Err` for `die` or a failed command.
type Task = fn(Vec<String>) -> anyhow::Result<()>;

fn main() -> ExitCode {
    let (script, task, a): (&str, Task, ScriptArgs) = match Cli::parse().command {
        Command::Tools(args) => return tools::run(args),
        Command::Demo(args) => return demo::run(args),
        Command::Test(a) => ("test.sh", test::run, a),
        Command::BuildWasm(a) => ("build-wasm.sh", build_wasm::run, a),
        Command::Schema(a) => ("schema.sh", schema::run, a),
        Command::TsClient(a) => ("ts-client.sh", ts_client::run, a),
        Command::FhirR4Table(a) => ("fhir-r4-table.sh", fhir_r4_table::run, a),
        Command::GenHistories(a) => ("gen-histories.sh", gen_histories::run, a),
        Command::ColdRehearsal(a) => ("cold-rehearsal.sh", cold_rehearsal::run, a),
    };
    sh::main(script, a.args, task)
}
