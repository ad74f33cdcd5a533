//! `bench-calibrate`: fixed points on the real service and in the simulator;
//! JSON lines as each point ends, then a table.

use clap::Parser;
use governor_bench_real::calibrate::{Point, Settings, default_points, run_point, table};

#[derive(Parser)]
#[command(about = "Calibrates the simulator against the real service at fixed points")]
struct Cli {
    /// Points as REPLICASxPOOL@RATE, comma-separated (default: 2x10@100,2x10@200,2x10@280,2x1@200,4x10@400).
    #[arg(long, value_delimiter = ',')]
    points: Vec<Point>,
    /// Seconds of load per point.
    #[arg(long, default_value_t = 40.0)]
    seconds: f64,
    /// Seconds at the start of each point not counted.
    #[arg(long, default_value_t = 5.0)]
    warmup: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Use this PostgreSQL instead of starting one.
    #[arg(long)]
    database_url: Option<String>,
    /// `json` prints only the JSON lines.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    governor_bench_real::init_tracing();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-calibrate: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings {
        seconds: cli.seconds,
        warmup: cli.warmup,
        seed: cli.seed,
        ..Settings::default()
    };
    if !(settings.seconds.is_finite() && settings.seconds > 0.0 && settings.seconds <= 3600.0) {
        anyhow::bail!(
            "--seconds must be above 0 and at most 3600, got {}",
            settings.seconds
        );
    }
    if !(settings.warmup.is_finite()
        && settings.warmup >= 0.0
        && settings.warmup < settings.seconds)
    {
        anyhow::bail!(
            "--warmup must be at least 0 and below --seconds, got {}",
            settings.warmup
        );
    }
    let service_bin = std::env::current_exe()?
        .parent()
        .map(|d| d.join("bench-service"))
        .ok_or_else(|| anyhow::anyhow!("no folder for bench-service"))?;
    let points = if cli.points.is_empty() {
        default_points()
    } else {
        cli.points
    };
    let postgres = match &cli.database_url {
        Some(_) => None,
        None => Some(governor_tests::Postgres::start().await?),
    };
    let url = cli
        .database_url
        .clone()
        .or_else(|| postgres.as_ref().map(|p| p.url()))
        .unwrap_or_default();
    let mut rows = Vec::new();
    for point in points {
        let row = run_point(&service_bin, &url, point, &settings).await?;
        println!("{}", serde_json::to_string(&row)?);
        rows.push(row);
    }
    if cli.format == "table" {
        print!("{}", table(&rows));
    }
    Ok(())
}
