//! `governor sim serve`: the simulator in real time, serving a real Prometheus
//! `/metrics` endpoint for each simulated service (and `/truth`, the exact
//! latency quantiles of the last minute, for tests).

use std::net::SocketAddr;
use std::process::ExitCode;

use crate::error::Error;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::sim::live::{LiveService, render_metrics, render_native, services, spawn_clock, truth};
use crate::sim::scenario::{BUILT_IN, Scenario};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario whose load and service model to run.
    #[arg(long, default_value = "audit")]
    pub scenario: String,
    /// Number of services (default: the audit's four, else one).
    #[arg(long)]
    pub services: Option<usize>,
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value = "1", value_parser = crate::cli::speed)]
    pub speed: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Start this many simulated seconds into the scenario's load (the
    /// pattern still repeats: what is skipped comes at the end).
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    pub start: f64,
    /// Also export a sample of requests as spans over OTLP/HTTP to this base URL
    /// (e.g. Jaeger's http://127.0.0.1:4318).
    #[arg(long, value_name = "URL")]
    pub otlp: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct TruthQuery {
    /// Seconds of simulated time the quantiles cover (default and at most 60).
    window: Option<f64>,
}

/// A change to one simulated service, as a workload controller would make it.
#[derive(serde::Deserialize)]
pub struct Control {
    service: String,
    replicas: Option<u32>,
    pool_size: Option<u32>,
    #[serde(default)]
    warm_up: bool,
}

/// The simulator's HTTP endpoints: `/control`, `/metrics`, `/metrics/native`,
/// `/truth` and `/healthz`.
pub fn router(services: Arc<Mutex<Vec<LiveService>>>) -> Router {
    let metrics = services.clone();
    let native = services.clone();
    let control = services.clone();
    Router::new()
        .route(
            "/control",
            axum::routing::post(move |axum::Json(c): axum::Json<Control>| {
                let result = apply_control(&control, &c);
                async move {
                    match result {
                        Ok(()) => (axum::http::StatusCode::OK, "ok".to_string()),
                        Err(e) => (axum::http::StatusCode::NOT_FOUND, e.to_string()),
                    }
                }
            }),
        )
        .route(
            "/metrics/native",
            get(move || {
                let body = native.lock().map(|s| render_native(&s)).unwrap_or_default();
                async move {
                    (
                        [(header::CONTENT_TYPE, crate::sim::native::CONTENT_TYPE)],
                        body,
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let body = metrics
                    .lock()
                    .map(|s| render_metrics(&s))
                    .unwrap_or_default();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        body,
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/truth",
            get(
                move |axum::extract::Query(q): axum::extract::Query<TruthQuery>| {
                    let body = truth_body(&services, &q);
                    async move { axum::Json(body) }
                },
            ),
        )
        .route("/healthz", get(|| async { "ok" }))
}

/// A `/control` change for a service the simulator does not run.
#[derive(Debug, thiserror::Error)]
#[error("no simulated service {0:?}")]
struct NoService(String);

/// Applies one `/control` change to the named service, as the operator would.
fn apply_control(services: &Mutex<Vec<LiveService>>, c: &Control) -> Result<(), NoService> {
    let mut all = services.lock().unwrap_or_else(|e| e.into_inner());
    let s = all
        .iter_mut()
        .find(|s| s.name == c.service)
        .ok_or_else(|| NoService(c.service.clone()))?;
    let request = crate::actuate::Request {
        replicas: c
            .replicas
            .filter(|r| *r != s.sim.replicas())
            .map(|r| r.clamp(1, 1000)),
        pool_size: c.pool_size.map(|p| p.clamp(1, 10_000)),
        warm_up: c.warm_up,
    };
    let _ = crate::actuate::apply_now(
        &mut crate::sim::engine::SimPort { sim: &mut s.sim },
        request,
    );
    Ok(())
}

/// The `/truth` body: exact quantiles over the asked window (default and at most 60 s).
fn truth_body(services: &Mutex<Vec<LiveService>>, q: &TruthQuery) -> serde_json::Value {
    let window = q
        .window
        .filter(|w| w.is_finite() && *w > 0.0)
        .unwrap_or(60.0)
        .min(60.0);
    services
        .lock()
        .map(|s| truth(&s, window))
        .unwrap_or_default()
}

pub async fn run(args: Args) -> Result<ExitCode, Error> {
    let Some(scenario) = Scenario::built_in(&args.scenario) else {
        return Err(Error::Usage(format!(
            "unknown scenario {:?}; choose one of: {}",
            args.scenario,
            BUILT_IN.join(", ")
        )));
    };
    if !(args.start.is_finite() && args.start >= 0.0) {
        return Err(Error::Usage(format!(
            "--start must be a number of seconds >= 0, got {}",
            args.start
        )));
    }
    let scenario = if args.start > 0.0 {
        scenario.starting_at(args.start)
    } else {
        scenario
    };
    let count = args
        .services
        .unwrap_or(if scenario.name == "audit" { 4 } else { 1 });
    if count == 0 || count > 10_000 {
        return Err(Error::Usage(format!(
            "--services must be between 1 and 10000, got {count}"
        )));
    }
    let mut all = services(&scenario, count, args.seed);
    if let Some(endpoint) = &args.otlp {
        let origin = std::time::SystemTime::now();
        for s in all.iter_mut() {
            let export = crate::sim::live::SpanExport::new(endpoint, &s.name, origin, args.speed)?;
            s.spans = Some(export);
        }
    }
    let live = Arc::new(Mutex::new(all));
    let names: Vec<String> = live
        .lock()
        .map(|s| s.iter().map(|x| x.name.clone()).collect())
        .unwrap_or_default();
    let listener = super::listen(args.listen).await?;
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let _clock = spawn_clock(live.clone(), args.speed);
    tracing::info!(
        scenario = %scenario.name,
        services = count,
        speed = args.speed,
        "serving http://{addr}/metrics for {}",
        if names.len() > 6 { format!("{} .. {}", names[0], names[names.len() - 1]) } else { names.join(", ") }
    );
    super::serve(
        listener,
        router(live),
        governor_dashboard::Limits::default(),
    )
    .await
}
