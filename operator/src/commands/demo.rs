//! `governor demo`: no cluster, no Prometheus. The audit's services run in the
//! simulator, Governor's decision engine drives them, and the dashboard shows it.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use governor_dashboard::Config;

use crate::demo::{Demo, DemoModel, spawn_clock};

pub struct Args {
    pub listen: SocketAddr,
    pub speed: f64,
    pub seed: u64,
}

pub async fn run(args: Args) -> ExitCode {
    if !(args.speed.is_finite() && args.speed > 0.0 && args.speed <= 1000.0) {
        eprintln!(
            "governor demo: --speed must be in (0, 1000], got {}",
            args.speed
        );
        return ExitCode::from(2);
    }
    let origin = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let demo = match Demo::new(args.seed, origin) {
        Ok(d) => Arc::new(d),
        Err(e) => {
            eprintln!("governor demo: {e}");
            return ExitCode::from(1);
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "governor demo: cannot listen on {}: {e} (choose another address with --listen)",
                args.listen
            );
            return ExitCode::from(1);
        }
    };
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
    let app = governor_dashboard::router(DemoModel(demo), config);
    super::serve(listener, app, "governor demo").await
}
