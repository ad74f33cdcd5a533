//! `bench-service`: one replica of the reference service.

use clap::Parser;

#[derive(Parser)]
#[command(about = "One replica of the real-workload benchmark's reference service")]
struct Cli {
    #[command(flatten)]
    config: governor_bench_real::service::Config,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    governor_bench_real::init_tracing();
    let cli = Cli::parse();
    match governor_bench_real::service::run(cli.config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-service: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
