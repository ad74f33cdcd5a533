//! `bench-load`: the open-loop load generator; prints a JSON summary.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use governor::sim::Scenario;
use governor_bench_real::load::{LoadPlan, RateCurve, run};

#[derive(Parser)]
#[command(about = "Open-loop Poisson load on the reference service; prints a JSON summary")]
struct Cli {
    /// Base URL of a replica (repeat, or comma-separate); sent to round-robin.
    #[arg(long, required = true, value_delimiter = ',')]
    target: Vec<String>,
    /// A constant rate, requests per second.
    #[arg(long, conflicts_with_all = ["scenario", "trace"])]
    rate: Option<f64>,
    /// A built-in scenario's rate curve.
    #[arg(long, conflicts_with = "trace")]
    scenario: Option<String>,
    /// A `seconds,rps` CSV rate curve.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Scenario seconds per wall-clock second (e.g. 6: the audit's hour in 10 minutes).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    #[arg(long, default_value_t = 18_000)]
    keys: u64,
    #[arg(long, default_value_t = 0.9)]
    cacheable: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    #[arg(long, default_value_t = 10_000)]
    max_in_flight: usize,
}

fn curve(cli: &Cli) -> Result<RateCurve, String> {
    if !(cli.speed.is_finite() && cli.speed > 0.0 && cli.speed <= 10_000.0) {
        return Err(format!(
            "--speed must be above 0 and at most 10000, got {}",
            cli.speed
        ));
    }
    let scenario = match (&cli.rate, &cli.scenario, &cli.trace) {
        (Some(r), _, _) => return Ok(RateCurve::Constant(*r)),
        (None, Some(name), _) => Scenario::built_in(name).ok_or_else(|| {
            format!(
                "--scenario: unknown scenario {name:?}; choose one of: {}",
                governor::sim::scenario::BUILT_IN.join(", ")
            )
        })?,
        (None, None, Some(path)) => {
            Scenario::from_trace(path).map_err(|e| format!("--trace {}: {e}", path.display()))?
        }
        (None, None, None) => return Err("give one of --rate, --scenario or --trace".into()),
    };
    Ok(RateCurve::Scenario {
        scenario: Box::new(scenario),
        speed: cli.speed,
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = async {
        if !(cli.timeout.is_finite() && cli.timeout > 0.0 && cli.timeout <= 3600.0) {
            anyhow::bail!(
                "--timeout must be above 0 and at most 3600 seconds, got {}",
                cli.timeout
            );
        }
        let plan = LoadPlan {
            curve: curve(&cli).map_err(anyhow::Error::msg)?,
            targets: cli
                .target
                .iter()
                .map(|t| t.trim_end_matches('/').to_string())
                .collect(),
            seconds: cli.seconds,
            warmup: cli.warmup,
            keys: cli.keys,
            cacheable: cli.cacheable,
            seed: cli.seed,
            timeout: Duration::from_secs_f64(cli.timeout),
            max_in_flight: cli.max_in_flight,
        };
        let summary = run(&plan).await?;
        println!("{}", serde_json::to_string(&summary)?);
        Ok(())
    }
    .await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-load: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
