//! `governor sim serve`: the simulator in real time, serving a real Prometheus
//! `/metrics` endpoint for each simulated service (and `/truth`, the exact
//! latency quantiles of the last minute, for tests).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::sim::live::{LiveService, render_metrics, render_native, services, spawn_clock, truth};
use crate::sim::scenario::{BUILT_IN, Scenario};

pub struct Args {
    pub scenario: String,
    pub services: Option<usize>,
    pub listen: SocketAddr,
    pub speed: f64,
    pub seed: u64,
    /// Simulated seconds into the scenario's load to start at.
    pub start: f64,
    /// OTLP/HTTP endpoint to export request spans to, e.g. http://127.0.0.1:4318.
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

pub fn router(services: Arc<Mutex<Vec<LiveService>>>) -> Router {
    let metrics = services.clone();
    let native = services.clone();
    let control = services.clone();
    Router::new()
        .route(
            "/control",
            axum::routing::post(move |axum::Json(c): axum::Json<Control>| {
                let result =
                    control
                        .lock()
                        .map_err(|_| "poisoned".to_string())
                        .and_then(|mut all| {
                            let s = all
                                .iter_mut()
                                .find(|s| s.name == c.service)
                                .ok_or_else(|| format!("no simulated service {:?}", c.service))?;
                            let request = crate::actuate::Request {
                                replicas: c
                                    .replicas
                                    .filter(|r| *r != s.sim.replicas())
                                    .map(|r| r.clamp(1, 1000)),
                                pool_size: c.pool_size.map(|p| p.clamp(1, 10_000)),
                                warm_up: c.warm_up,
                            };
                            let _ = crate::actuate::apply(
                                &mut crate::sim::engine::SimPort {
                                    sim: &mut s.sim,
                                    instant: false,
                                },
                                request,
                            );
                            Ok(())
                        });
                async move {
                    match result {
                        Ok(()) => (axum::http::StatusCode::OK, "ok".to_string()),
                        Err(e) => (axum::http::StatusCode::NOT_FOUND, e),
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
                    let window = q
                        .window
                        .filter(|w| w.is_finite() && *w > 0.0)
                        .unwrap_or(60.0)
                        .min(60.0);
                    let body = services
                        .lock()
                        .map(|s| truth(&s, window))
                        .unwrap_or_default();
                    async move { axum::Json(body) }
                },
            ),
        )
        .route("/healthz", get(|| async { "ok" }))
}

pub async fn run(args: Args) -> ExitCode {
    let Some(scenario) = Scenario::built_in(&args.scenario) else {
        eprintln!(
            "governor sim serve: unknown scenario {:?}; choose one of: {}",
            args.scenario,
            BUILT_IN.join(", ")
        );
        return ExitCode::from(2);
    };
    if !(args.start.is_finite() && args.start >= 0.0) {
        eprintln!(
            "governor sim serve: --start must be a number of seconds >= 0, got {}",
            args.start
        );
        return ExitCode::from(2);
    }
    let scenario = if args.start > 0.0 {
        scenario.starting_at(args.start)
    } else {
        scenario
    };
    if !(args.speed.is_finite() && args.speed > 0.0 && args.speed <= 1000.0) {
        eprintln!(
            "governor sim serve: --speed must be in (0, 1000], got {}",
            args.speed
        );
        return ExitCode::from(2);
    }
    let count = args
        .services
        .unwrap_or(if scenario.name == "audit" { 4 } else { 1 });
    if count == 0 || count > 10_000 {
        eprintln!("governor sim serve: --services must be between 1 and 10000, got {count}");
        return ExitCode::from(2);
    }
    let mut all = services(&scenario, count, args.seed);
    if let Some(endpoint) = &args.otlp {
        let origin = std::time::SystemTime::now();
        for s in all.iter_mut() {
            match crate::sim::live::SpanExport::new(endpoint, &s.name, origin, args.speed) {
                Ok(e) => s.spans = Some(e),
                Err(e) => {
                    eprintln!("governor sim serve: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    let live = Arc::new(Mutex::new(all));
    let names: Vec<String> = live
        .lock()
        .map(|s| s.iter().map(|x| x.name.clone()).collect())
        .unwrap_or_default();
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("governor sim serve: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(1);
        }
    };
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
    super::serve(listener, router(live), "governor sim serve").await
}
