//! The `governor` binary: parse arguments, set up logging, run the subcommand.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // One TLS crypto provider for every client (Kubernetes, Prometheus, Jaeger).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = governor::cli::Cli::parse();
    governor::telemetry::init_logging(cli.log_format);
    governor::cli::run(cli)
}
