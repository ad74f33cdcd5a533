//! `governor demo`: no cluster, no Prometheus. The audit's services run in the
//! simulator, Governor's decision engine drives them, and the dashboard shows it.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use governor_dashboard::Config;

use crate::error::Error;

use crate::sim::demo::{Demo, DemoReader, spawn_clock};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the dashboard listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Simulated seconds per wall-clock second (1 = real time; 20 runs the audit's hour in 3 minutes).
    #[arg(long, default_value = "1", value_parser = crate::cli::speed)]
    pub speed: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub limits: super::ServeLimits,
}

pub async fn run(args: Args) -> Result<ExitCode, Error> {
    let origin = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let demo = Arc::new(Demo::new(args.seed, origin)?);
    let listener = super::listen(args.listen)
        .await
        .map_err(|e| Error::Failed(format!("{e} (choose another address with --listen)")))?;
    let addr = listener
        .local_addr()
        .map_or_else(|_| args.listen.to_string(), |a| a.to_string());
    let refresh = (15.0 / args.speed).ceil().clamp(2.0, 15.0) as u32;
    let config = Config {
        refresh_seconds: refresh,
        banner: Some(if args.speed == 1.0 {
            "demo: simulated services in real time".to_string()
        } else {
            format!("demo: simulated services at {}× speed", args.speed)
        }),
        ..Config::default()
    };
    let _clock = spawn_clock(demo.clone(), args.speed);
    tracing::info!(
        speed = args.speed,
        "dashboard on http://{addr}/ — the audit's four services, starting at P90 450 ms against 100 ms on 2 instances; Ctrl-C stops"
    );
    let app = governor_dashboard::router(DemoReader(demo), config);
    super::serve(listener, app, args.limits.limits()).await
}
