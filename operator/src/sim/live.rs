//! The simulator in real time: several services, each its own simulation,
//! advanced with the wall clock (optionally faster), exposed as a real
//! Prometheus `/metrics` endpoint with OpenTelemetry semantic-convention names.

use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::engine::{BUCKETS, Simulation};
use super::scenario::Scenario;

/// One simulated service.
pub struct LiveService {
    pub name: String,
    pub route: String,
    pub scenario: Scenario,
    /// Multiplier on the scenario's load.
    pub load_scale: f64,
    pub sim: Simulation,
}

/// The services of a live run: the audit scenario's four (the ones `examples/`
/// describes), or `svc-0`.. for any other count or scenario.
pub fn services(scenario: &Scenario, count: usize, seed: u64) -> Vec<LiveService> {
    let named: Vec<(String, String, f64)> = if scenario.name == "audit" && count == 4 {
        vec![
            ("roadtrip-api".into(), "/api".into(), 1.0),
            ("roadtrip-stories".into(), "/api/stories".into(), 0.5),
            ("roadtrip-bookings".into(), "/api/bookings".into(), 0.3),
            ("roadtrip-voice".into(), "/api/voice".into(), 0.2),
        ]
    } else {
        (0..count)
            .map(|i| {
                (
                    format!("svc-{i}"),
                    "/".to_string(),
                    1.0 / (1.0 + (i % 4) as f64),
                )
            })
            .collect()
    };
    named
        .into_iter()
        .enumerate()
        .map(|(i, (name, route, load_scale))| {
            let peak = scenario.peak_rate() * load_scale * 1.02 + 1.0;
            let mut sim = Simulation::new(
                scenario.model.clone(),
                &scenario.initial,
                peak,
                seed + i as u64,
            );
            sim.keep_recent = true;
            LiveService {
                name,
                route,
                scenario: scenario.clone(),
                load_scale,
                sim,
            }
        })
        .collect()
}

/// Advances every service to `elapsed x speed` simulated seconds.
pub fn advance(services: &Arc<Mutex<Vec<LiveService>>>, started: Instant, speed: f64) {
    let target = started.elapsed().as_secs_f64() * speed;
    if let Ok(mut all) = services.lock() {
        for s in all.iter_mut() {
            let LiveService {
                scenario,
                load_scale,
                sim,
                ..
            } = s;
            let d = scenario.duration.max(1.0);
            sim.run_until(target, &|t: f64| scenario.rate(t % d) * *load_scale);
        }
    }
}

/// Runs `advance` every 100 ms until the process ends.
pub fn spawn_clock(
    services: Arc<Mutex<Vec<LiveService>>>,
    speed: f64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            let services = services.clone();
            // The simulation is CPU work: keep it off the async workers.
            let _ = tokio::task::spawn_blocking(move || advance(&services, started, speed)).await;
        }
    })
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text exposition of every service.
pub fn render_metrics(services: &[LiveService]) -> String {
    let mut out = String::with_capacity(services.len() * 4096);
    let m = "http_server_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {m} Duration of HTTP server requests.\n# TYPE {m} histogram"
    );
    for s in services {
        let c = &s.sim.counters;
        for (code, buckets, sum) in [
            ("200", &c.ok_buckets, c.ok_sum),
            ("500", &c.error_buckets, c.error_sum),
        ] {
            let labels = format!(
                "service=\"{}\",http_route=\"{}\",http_response_status_code=\"{code}\"",
                escape(&s.name),
                escape(&s.route)
            );
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += buckets[i];
                let _ = writeln!(out, "{m}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
            }
            cumulative += buckets[BUCKETS.len()];
            let _ = writeln!(out, "{m}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
            let _ = writeln!(out, "{m}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{m}_count{{{labels}}} {cumulative}");
        }
    }
    let series = |out: &mut String,
                  name: &str,
                  kind: &str,
                  help: &str,
                  value: &dyn Fn(&LiveService) -> Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in services {
            for (extra, v) in value(s) {
                let _ = writeln!(
                    out,
                    "{name}{{service=\"{}\",http_route=\"{}\"{extra}}} {v}",
                    escape(&s.name),
                    escape(&s.route)
                );
            }
        }
    };
    series(
        &mut out,
        "cache_hits_total",
        "counter",
        "Cache lookups that hit.",
        &|s| vec![(String::new(), s.sim.counters.cache_hits as f64)],
    );
    series(
        &mut out,
        "cache_misses_total",
        "counter",
        "Cache lookups that missed.",
        &|s| vec![(String::new(), s.sim.counters.cache_misses as f64)],
    );
    series(
        &mut out,
        "db_client_connections_usage",
        "gauge",
        "Connections by state.",
        &|s| {
            let (used, idle, _, _) = s.sim.pool_gauges();
            vec![
                (",state=\"used\"".into(), f64::from(used)),
                (",state=\"idle\"".into(), f64::from(idle)),
            ]
        },
    );
    series(
        &mut out,
        "db_client_connections_max",
        "gauge",
        "Pool size, summed over replicas.",
        &|s| vec![(String::new(), f64::from(s.sim.pool_gauges().2))],
    );
    series(
        &mut out,
        "db_client_connections_pending_requests",
        "gauge",
        "Requests waiting for a connection.",
        &|s| vec![(String::new(), f64::from(s.sim.pool_gauges().3))],
    );
    let w = "db_client_connections_wait_time_seconds";
    let _ = writeln!(
        out,
        "# HELP {w} Time waiting for a pooled connection.\n# TYPE {w} histogram"
    );
    for s in services {
        let c = &s.sim.counters;
        let labels = format!(
            "service=\"{}\",http_route=\"{}\"",
            escape(&s.name),
            escape(&s.route)
        );
        let _ = writeln!(
            out,
            "{w}_bucket{{{labels},le=\"+Inf\"}} {}",
            c.pool_wait_count
        );
        let _ = writeln!(out, "{w}_sum{{{labels}}} {}", c.pool_wait_sum);
        let _ = writeln!(out, "{w}_count{{{labels}}} {}", c.pool_wait_count);
    }
    series(
        &mut out,
        "governor_sim_replicas",
        "gauge",
        "Simulated replicas.",
        &|s| vec![(String::new(), f64::from(s.sim.replicas()))],
    );
    out
}

/// Ground truth for tests: each service's exact latency quantiles over the last
/// `window` simulated seconds (at most 60), and its simulated time.
pub fn truth(services: &[LiveService], window: f64) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = services
        .iter()
        .map(|s| {
            serde_json::json!({
                "service": s.name,
                "sim_time": s.sim.now(),
                "window": window,
                "p50": s.sim.recent_quantile(0.5, window),
                "p90": s.sim.recent_quantile(0.9, window),
                "p99": s.sim.recent_quantile(0.99, window),
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}
