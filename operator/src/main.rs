//! The `governor` binary: parse arguments, set up logging, run the subcommand.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = governor::cli::Cli::parse();
    governor::telemetry::init_logging(cli.log_format);
    governor::cli::run(cli)
}
