//! The `governor` binary: parse arguments, set up logging, run the subcommand.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // One TLS crypto provider for every client (Kubernetes, Prometheus, Jaeger).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = governor::cli::Cli::parse();
    let traces = match governor::telemetry::init(cli.log_format, cli.otlp().as_ref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("governor: {e}");
            return ExitCode::from(2);
        }
    };
    let code = governor::cli::run(cli);
    // Flushes the last spans, outside the command's runtime.
    drop(traces);
    code
}
