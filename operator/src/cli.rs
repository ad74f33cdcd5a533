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
    /// Compare Governor with hpa-cpu, hpa-latency, static and an oracle on simulated scenarios.
    Simulate {
        /// Scenario name, comma-separated names, or "all": audit, diurnal, flash-crowd, slow-ramp, db-bound, cold-cache.
        #[arg(long, default_value = "all")]
        scenario: String,
        /// A CSV trace of `seconds,rps` lines instead of a built-in scenario.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Policy names (comma-separated) or "all": governor, hpa-cpu, hpa-latency, static, oracle.
        #[arg(long, default_value = "all")]
        policy: String,
        /// Seeds per (scenario, policy); every policy sees the same seeds.
        #[arg(long, default_value_t = 3)]
        seeds: u32,
        #[arg(long, value_enum, default_value_t = commands::simulate::Format::Table)]
        format: commands::simulate::Format,
        /// Worker threads (default: the machine's cores).
        #[arg(long)]
        threads: Option<usize>,
    },
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate { paths } => commands::validate::run(&paths, &mut std::io::stdout()),
        Command::Crdgen { out, stdout, check } => commands::crdgen::run(&out, stdout, check),
        Command::Simulate {
            scenario,
            trace,
            policy,
            seeds,
            format,
            threads,
        } => {
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let args = commands::simulate::Args {
                scenario,
                trace,
                policy,
                seeds,
                format,
                threads,
            };
            commands::simulate::run(&args, &mut std::io::stdout())
        }
    }
}
