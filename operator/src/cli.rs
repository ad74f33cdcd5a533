//! Command-line interface: one binary, several subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;
use crate::telemetry::LogFormat;

#[derive(Parser, Debug)]
#[command(name = "governor", version, about = "An SLO autopilot for Kubernetes", long_about = None)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, env = "GOVERNOR_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check ServiceLevelObjective manifests; prints OK or every problem with its field path.
    Validate {
        /// Files or folders (searched recursively for .yaml, .yml and .json).
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
    },
    /// Write the CustomResourceDefinition generated from the Rust types.
    Crdgen {
        /// Folders to write the CRD into.
        #[arg(long = "out", value_name = "DIR", default_values = ["crds"])]
        out: Vec<PathBuf>,
        /// Print the CRD on stdout instead of writing files.
        #[arg(long, conflicts_with = "check")]
        stdout: bool,
        /// Write nothing; exit non-zero when a committed CRD differs from the types.
        #[arg(long)]
        check: bool,
    },
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate { paths } => commands::validate::run(&paths, &mut std::io::stdout()),
        Command::Crdgen { out, stdout, check } => commands::crdgen::run(&out, stdout, check),
    }
}
