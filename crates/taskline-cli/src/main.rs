//! The `taskline` command: report on, inspect and convert taskline trace
//! files; draw flame graphs of CPU profiles.
//!
//! Exit codes: 0 success, 2 bad usage or an unreadable / invalid trace file
//! (one line on stderr, never a panic).

mod cli;
mod convert;
mod error;
mod flamegraph;
mod inspect;
mod load;
mod output;
mod report;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use error::CliError;

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Report(args) => report::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::Flamegraph(args) => flamegraph::run(&args),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("taskline: error: {e}");
            ExitCode::from(2)
        }
    }
}
