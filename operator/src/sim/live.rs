//! The simulator in real time: several services, each its own simulation,
//! advanced with the wall clock (optionally faster), exposed as a real
//! Prometheus `/metrics` endpoint with OpenTelemetry semantic-convention names.

use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::trace::{Span, SpanKind, Tracer, TracerProvider};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use super::engine::{BUCKETS, Simulation};
use super::scenario::Scenario;

/// One simulated service.
pub struct LiveService {
    pub name: String,
    /// HTTP method and route, as in the span name "POST /api/voice".
    pub method: String,
    pub route: String,
    pub scenario: Scenario,
    /// Multiplier on the scenario's load.
    pub load_scale: f64,
    pub sim: Simulation,
    /// Spans of its requests, when exporting over OTLP.
    pub spans: Option<SpanExport>,
}

/// Exports a sample of a service's requests as server spans over OTLP/HTTP.
pub struct SpanExport {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    /// Wall-clock time of simulated time 0.
    origin: SystemTime,
    speed: f64,
    /// Simulated time up to which requests were considered.
    exported_until: f64,
    /// Most spans per simulated second.
    pub max_per_second: f64,
    counter: u64,
}

impl SpanExport {
    /// An exporter to `endpoint` (an OTLP/HTTP base URL such as
    /// `http://127.0.0.1:4318`) for `service`.
    pub fn new(
        endpoint: &str,
        service: &str,
        origin: SystemTime,
        speed: f64,
    ) -> Result<Self, crate::Error> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .build()
            .map_err(|source| crate::Error::Otlp {
                endpoint: endpoint.to_string(),
                source,
            })?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(service.to_string())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("governor-sim");
        Ok(Self {
            provider,
            tracer,
            origin,
            speed,
            exported_until: 0.0,
            max_per_second: 100.0,
            counter: 0,
        })
    }

    fn wall(&self, sim_t: f64) -> SystemTime {
        self.origin + Duration::from_secs_f64((sim_t / self.speed).max(0.0))
    }

    /// Emits spans for requests finished since the last call, sampled evenly.
    fn export(&mut self, sim: &Simulation, operation: &str, rate: f64) {
        let every = (rate / self.max_per_second).ceil().max(1.0) as u64;
        let name = operation.to_string();
        for &(t, latency) in sim.recent.iter().filter(|(t, _)| *t > self.exported_until) {
            self.counter += 1;
            if !self.counter.is_multiple_of(every) {
                continue;
            }
            let end = self.wall(t);
            let start = end
                .checked_sub(Duration::from_secs_f64(f64::from(latency).max(0.0)))
                .unwrap_or(end);
            let mut span = self
                .tracer
                .span_builder(name.clone())
                .with_kind(SpanKind::Server)
                .with_start_time(start)
                .start(&self.tracer);
            span.end_with_timestamp(end);
        }
        self.exported_until = sim.now();
    }

    /// Flushes what is buffered.
    pub fn shutdown(&self) {
        let _ = self.provider.shutdown();
    }
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
            let method = if route.contains("voice") {
                "POST"
            } else {
                "GET"
            }
            .to_string();
            LiveService {
                name,
                method,
                route,
                scenario: scenario.clone(),
                load_scale,
                sim,
                spans: None,
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
                spans,
                route,
                method,
                ..
            } = s;
            let d = scenario.duration.max(1.0);
            sim.run_until(target, &|t: f64| scenario.rate(t % d) * *load_scale);
            if let Some(export) = spans {
                let operation = format!("{method} {route}");
                export.export(sim, &operation, scenario.rate(target % d) * *load_scale);
            }
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

/// The labels that identify a service's series, escaped for the exposition format.
fn service_labels(s: &LiveService) -> String {
    format!(
        "service=\"{}\",http_route=\"{}\"",
        escape(&s.name),
        escape(&s.route)
    )
}

/// The Prometheus text exposition of every service.
pub fn render_metrics(services: &[LiveService]) -> String {
    let mut out = String::with_capacity(services.len() * 4096);
    write_latency(&mut out, services);
    write_cache_and_pool(&mut out, services);
    write_pool_wait(&mut out, services);
    write_series(
        &mut out,
        services,
        "governor_sim_replicas",
        "gauge",
        "Simulated replicas.",
        &|s| vec![(String::new(), f64::from(s.sim.replicas()))],
    );
    out
}

/// The request-duration histogram, by status code.
fn write_latency(out: &mut String, services: &[LiveService]) {
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
            let labels = format!("{},http_response_status_code=\"{code}\"", service_labels(s));
            write_histogram(out, m, &labels, buckets, sum);
        }
    }
}

/// One label set of a histogram over `BUCKETS`: its cumulative buckets, sum
/// and count (`buckets` per bucket, the last one +Inf). The real-workload
/// benchmark's service writes its own through this too.
pub fn write_histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    buckets: &[u64; BUCKETS.len() + 1],
    sum: f64,
) {
    let mut cumulative = 0;
    for (i, le) in BUCKETS.iter().enumerate() {
        cumulative += buckets[i];
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
    }
    cumulative += buckets[BUCKETS.len()];
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
}

/// One metric family: its help and type, then each service's series (extra
/// labels and value).
fn write_series(
    out: &mut String,
    services: &[LiveService],
    name: &str,
    kind: &str,
    help: &str,
    value: &dyn Fn(&LiveService) -> Vec<(String, f64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for s in services {
        for (extra, v) in value(s) {
            let _ = writeln!(out, "{name}{{{}{extra}}} {v}", service_labels(s));
        }
    }
}

/// Cache hit and miss counters, and the connection-pool gauges.
fn write_cache_and_pool(out: &mut String, services: &[LiveService]) {
    let series: Vec<(String, CacheAndPool)> = services
        .iter()
        .map(|s| {
            let c = &s.sim.counters;
            let (used, idle, max, pending) = s.sim.pool_gauges();
            let signals = CacheAndPool {
                cache_hits: c.cache_hits as f64,
                cache_misses: c.cache_misses as f64,
                pool_used: f64::from(used),
                pool_idle: f64::from(idle),
                pool_max: f64::from(max),
                pool_pending: f64::from(pending),
            };
            (service_labels(s), signals)
        })
        .collect();
    write_cache_and_pool_series(out, &series);
}

/// The cache and connection-pool signals of one label set, as Governor reads
/// them.
#[derive(Clone, Copy, Debug, Default)]
pub struct CacheAndPool {
    pub cache_hits: f64,
    pub cache_misses: f64,
    pub pool_used: f64,
    pub pool_idle: f64,
    pub pool_max: f64,
    pub pool_pending: f64,
}

/// The cache counters and pool gauges, one series per label set. The
/// real-workload benchmark's service writes its own through this too, so both
/// keep the names Governor reads.
pub fn write_cache_and_pool_series(out: &mut String, series: &[(String, CacheAndPool)]) {
    type Value = fn(&CacheAndPool) -> Vec<(&'static str, f64)>;
    let families: [(&str, &str, &str, Value); 5] = [
        (
            "cache_hits_total",
            "counter",
            "Cache lookups that hit.",
            |c| vec![("", c.cache_hits)],
        ),
        (
            "cache_misses_total",
            "counter",
            "Cache lookups that missed.",
            |c| vec![("", c.cache_misses)],
        ),
        (
            "db_client_connections_usage",
            "gauge",
            "Connections by state.",
            |c| {
                vec![
                    (",state=\"used\"", c.pool_used),
                    (",state=\"idle\"", c.pool_idle),
                ]
            },
        ),
        (
            "db_client_connections_max",
            "gauge",
            "Pool size, summed over replicas.",
            |c| vec![("", c.pool_max)],
        ),
        (
            "db_client_connections_pending_requests",
            "gauge",
            "Requests waiting for a connection.",
            |c| vec![("", c.pool_pending)],
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, signals) in series {
            for (extra, v) in value(signals) {
                let _ = writeln!(out, "{name}{{{labels}{extra}}} {v}");
            }
        }
    }
}

/// The pool-wait histogram (only its +Inf bucket, sum and count).
fn write_pool_wait(out: &mut String, services: &[LiveService]) {
    write_pool_wait_help(out);
    for s in services {
        let c = &s.sim.counters;
        write_pool_wait_series(out, &service_labels(s), c.pool_wait_count, c.pool_wait_sum);
    }
}

/// The pool-wait histogram's HELP and TYPE lines.
pub fn write_pool_wait_help(out: &mut String) {
    let w = "db_client_connections_wait_time_seconds";
    let _ = writeln!(
        out,
        "# HELP {w} Time waiting for a pooled connection.\n# TYPE {w} histogram"
    );
}

/// One label set of the pool-wait histogram (only its +Inf bucket, sum and count).
pub fn write_pool_wait_series(out: &mut String, labels: &str, count: u64, sum: f64) {
    let w = "db_client_connections_wait_time_seconds";
    let _ = writeln!(out, "{w}_bucket{{{labels},le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{w}_sum{{{labels}}} {sum}");
    let _ = writeln!(out, "{w}_count{{{labels}}} {count}");
}

/// Native histograms of request latency (protobuf exposition), named
/// `http_server_request_duration_native_seconds` so they do not shadow the
/// classic histogram of `/metrics`.
pub fn render_native(services: &[LiveService]) -> Vec<u8> {
    use super::native::{LabelPair, Metric, MetricFamily, encode, to_proto};
    let metric = services
        .iter()
        .map(|s| Metric {
            label: vec![
                LabelPair {
                    name: "service".into(),
                    value: s.name.clone(),
                },
                LabelPair {
                    name: "http_route".into(),
                    value: s.route.clone(),
                },
            ],
            histogram: Some(to_proto(&s.sim.counters.native)),
        })
        .collect();
    encode(&[MetricFamily {
        name: "http_server_request_duration_native_seconds".into(),
        help: "Duration of HTTP server requests (native histogram).".into(),
        r#type: 4,
        metric,
    }])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_count_equal_to_the_inf_bucket() {
        let scenario = Scenario::built_in("audit").expect("audit");
        let mut all = services(&scenario, 1, 1);
        let s = &mut all[0];
        s.sim.run_until(30.0, &|_| 50.0);
        let text = render_metrics(&all);
        let c = &all[0].sim.counters;
        let ok: u64 = c.ok_buckets.iter().sum();
        let labels = service_labels(&all[0]);
        let l = format!("{labels},http_response_status_code=\"200\"");
        assert!(text.contains(&format!(
            "http_server_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {ok}\n"
        )));
        assert!(text.contains(&format!(
            "http_server_request_duration_seconds_count{{{l}}} {ok}\n"
        )));
        assert!(text.contains(&format!(
            "db_client_connections_wait_time_seconds_count{{{labels}}} {}\n",
            c.pool_wait_count
        )));
        assert_eq!(
            text.matches("# TYPE db_client_connections_wait_time_seconds histogram")
                .count(),
            1
        );
    }
}
