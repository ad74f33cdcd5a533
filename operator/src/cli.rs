//! Command-line interface: one binary, several subcommands. Each subcommand's
//! arguments are its module's `Args`, parsed (durations included) once, here.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::commands;
use crate::error::Error;
use crate::telemetry::LogFormat;

#[derive(Parser, Debug)]
#[command(name = "governor", version = crate::VERSION, about = "An SLO autopilot for Kubernetes", long_about = None)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, env = "GOVERNOR_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Watch Governor work: the audit's services simulated, driven by the decision engine,
    /// shown on the dashboard. No cluster or Prometheus needed.
    Demo(commands::demo::Args),
    /// Serve the dashboard over the cluster's ServiceLevelObjectives (KUBECONFIG or in-cluster).
    Dashboard(commands::dashboard::Args),
    /// Print the burn-rate alert rules for the SLOs in the files (for GitOps).
    Rules(commands::rules::Args),
    /// Run the operator: observe, decide, act and report for every SLO in the cluster.
    // Boxed: the operator's flags outweigh every other command's.
    Operator(Box<commands::operator::Args>),
    /// Check ServiceLevelObjective manifests; prints OK or every problem with its field path.
    Validate(commands::validate::Args),
    /// Write the CustomResourceDefinition generated from the Rust types.
    Crdgen(commands::crdgen::Args),
    /// The simulator in real time.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// One observation cycle for the SLOs in the files, printed as JSON.
    Observe(commands::observe::Args),
    /// Compare Governor with hpa-cpu, hpa-latency, static and an oracle on simulated scenarios.
    Simulate(commands::simulate::Args),
    /// Print a Grafana dashboard (JSON) over Governor's recording rules and metrics.
    Grafana(commands::grafana::Args),
    /// Turn another format's SLOs into ServiceLevelObjectives.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Write ServiceLevelObjectives in another format.
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// OpenSLO v1 documents to ServiceLevelObjectives (YAML on stdout).
    Openslo(commands::openslo::ImportArgs),
}

#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// ServiceLevelObjectives to OpenSLO v1 documents (YAML on stdout).
    Openslo(commands::openslo::ExportArgs),
}

#[derive(Subcommand, Debug)]
pub enum SimCommand {
    /// Serve /metrics for simulated services in real time.
    Serve(commands::sim_serve::Args),
}

impl Command {
    /// The command as a user typed it, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Demo(_) => "governor demo",
            Command::Dashboard(_) => "governor dashboard",
            Command::Rules(a) if a.apply => "governor rules --apply",
            Command::Rules(_) => "governor rules",
            Command::Operator(_) => "governor operator",
            Command::Validate(_) => "governor validate",
            Command::Crdgen(_) => "governor crdgen",
            Command::Sim { .. } => "governor sim serve",
            Command::Observe(_) => "governor observe",
            Command::Simulate(_) => "governor simulate",
            Command::Grafana(_) => "governor grafana",
            Command::Import { .. } => "governor import openslo",
            Command::Export { .. } => "governor export openslo",
        }
    }
}

/// A per-query timeout in seconds, in (0, 600].
pub fn timeout(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(v.is_finite() && v > 0.0 && v <= 600.0) {
        return Err("must be in (0, 600] seconds".into());
    }
    Ok(Duration::from_secs_f64(v))
}

/// Simulated seconds per wall-clock second, in (0, 1000].
pub fn speed(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(v.is_finite() && v > 0.0 && v <= 1000.0) {
        return Err(format!("must be in (0, 1000], got {s}"));
    }
    Ok(v)
}

/// A duration of at least `min` seconds.
fn at_least(s: &str, min: u64) -> Result<Duration, String> {
    let d: governor_crds::Duration = s.parse().map_err(|e| format!("{e}"))?;
    if d.std() < Duration::from_secs(min) {
        return Err(format!("must be at least {min}s"));
    }
    Ok(d.std())
}

pub fn at_least_1s(s: &str) -> Result<Duration, String> {
    at_least(s, 1)
}

pub fn at_least_2s(s: &str) -> Result<Duration, String> {
    at_least(s, 2)
}

/// Prometheus's scrape interval, in [1s, 1h].
pub fn scrape_interval(s: &str) -> Result<Duration, String> {
    let d = at_least(s, 1)?;
    if d > Duration::from_secs(3600) {
        return Err("must be at most 1h (a scrape interval)".into());
    }
    Ok(d)
}

fn block_on<F: std::future::Future<Output = Result<ExitCode, Error>>>(
    f: F,
) -> Result<ExitCode, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?
        .block_on(f)
}

impl Cli {
    /// Where to export traces: only `governor operator` does, when asked.
    pub fn otlp(&self) -> Option<crate::telemetry::Otlp> {
        match &self.command {
            Command::Operator(a) => a.otlp(),
            _ => None,
        }
    }
}

/// Runs the command; an error is for `main` to print.
pub fn run(command: Command) -> Result<ExitCode, Error> {
    match command {
        Command::Demo(args) => block_on(commands::demo::run(args)),
        Command::Dashboard(args) => block_on(commands::dashboard::run(args)),
        Command::Rules(args) => block_on(commands::rules::run(args)),
        Command::Operator(args) => block_on(commands::operator::run(*args)),
        Command::Validate(args) => Ok(commands::validate::run(&args.paths, &mut std::io::stdout())),
        Command::Crdgen(args) => Ok(commands::crdgen::run(&args)),
        Command::Sim {
            command: SimCommand::Serve(args),
        } => block_on(commands::sim_serve::run(args)),
        Command::Observe(args) => block_on(commands::observe::run(args)),
        Command::Simulate(args) => commands::simulate::run(&args, &mut std::io::stdout()),
        Command::Grafana(args) => commands::grafana::run(&args, &mut std::io::stdout()),
        Command::Import {
            command: ImportCommand::Openslo(args),
        } => commands::openslo::import(&args, &mut std::io::stdout()),
        Command::Export {
            command: ExportCommand::Openslo(args),
        } => commands::openslo::export(&args, &mut std::io::stdout()),
    }
}
