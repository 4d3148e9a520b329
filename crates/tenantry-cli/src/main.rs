//! `tenantry`: parse the command line, build the configured store, run the command. Errors go to
//! stderr as one sentence (or JSON with `--json`); exit 2 for usage errors, 1 for refusals.

mod answers;
mod cli;
mod commands;
mod cost;
mod data;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::commands::CliError;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2)
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let json = cli.global.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::print_error(&e, json);
            ExitCode::from(match e {
                CliError::Usage(_) => 2,
                CliError::Refused(_) | CliError::Failed(_) | CliError::ChecksFailed(_) => 1,
                CliError::Warned(_) => 3,
            })
        }
    }
}
