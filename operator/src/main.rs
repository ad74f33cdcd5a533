//! The `governor` binary: parse arguments, set up logging, run the subcommand,
//! print its error if it ends with one.

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
            return e.exit_code();
        }
    };
    let name = cli.command.name();
    let code = match governor::cli::run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{name}: {e}");
            e.exit_code()
        }
    };
    // Flushes the last spans, outside the command's runtime.
    drop(traces);
    code
}
