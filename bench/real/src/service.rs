//! The reference service: a fixed number of workers per replica (a semaphore,
//! requests queue beyond it and fail with 503 past the timeout), a real
//! PostgreSQL pool whose size comes from a file (the mounted pool ConfigMap key,
//! re-read on change) or the environment, and a moka cache whose misses cost a
//! query. Service time is mostly waiting, drawn from the simulator's own
//! distributions (`governor::sim::engine::lognormal` over `ServiceModel`'s
//! parameters), so many replicas fit on two cores.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use governor::sim::ServiceModel;
use governor::sim::engine::{BUCKETS, lognormal};
use governor::sim::live::{
    CacheAndPool, write_cache_and_pool_series, write_histogram, write_pool_wait_help,
    write_pool_wait_series,
};
use rand_distr::{Distribution, LogNormal};

/// The route every request of the benchmark takes (the `http_route` label).
pub const ROUTE: &str = "/item/{key}";

/// Largest pool size accepted from the flag, the environment or the file.
pub const MAX_POOL_SIZE: u32 = 10_000;

#[derive(clap::Args, Debug, Clone)]
pub struct Config {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/postgres
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Pool size when no --pool-file is given, or until the file is readable.
    #[arg(long, env = "POOL_SIZE", default_value_t = 10)]
    pub pool_size: u32,
    /// File holding the pool size (the pool ConfigMap's key, mounted as a
    /// file); re-read every --pool-poll-ms and applied when it changes.
    #[arg(long, env = "POOL_SIZE_FILE")]
    pub pool_file: Option<PathBuf>,
    /// How often the pool file is read, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub pool_poll_ms: u64,
    /// Requests served at once (the simulator's `workers`).
    #[arg(long, default_value_t = ServiceModel::audit().workers)]
    pub workers: u32,
    /// Mean CPU time of a request, in seconds (slept: lognormal).
    #[arg(long, default_value_t = ServiceModel::audit().cpu_time)]
    pub cpu_time: f64,
    /// Mean query time of a cache miss, in seconds (`pg_sleep`: lognormal).
    #[arg(long, default_value_t = ServiceModel::audit().db_time)]
    pub db_time: f64,
    /// Lognormal shape of both.
    #[arg(long, default_value_t = ServiceModel::audit().sigma)]
    pub sigma: f64,
    /// Requests slower than this fail with 503, in seconds.
    #[arg(long, default_value_t = ServiceModel::audit().timeout)]
    pub timeout: f64,
    /// Entries the cache holds.
    #[arg(long, default_value_t = 1_000_000)]
    pub cache_capacity: u64,
    /// Keys 0..N that `/warm-up` loads.
    #[arg(long, default_value_t = 18_000)]
    pub warm_keys: u32,
    /// The `service` label of the exported metrics.
    #[arg(long, default_value = "api")]
    pub service: String,
}

impl Config {
    /// Refuses values that cannot run, naming the flag.
    pub fn validate(&self) -> Result<(), String> {
        pool_size_in_range(self.pool_size).map_err(|e| format!("--pool-size: {e}"))?;
        if self.workers == 0 || self.workers > 10_000 {
            return Err(format!(
                "--workers must be between 1 and 10000, got {}",
                self.workers
            ));
        }
        for (flag, v) in [
            ("--cpu-time", self.cpu_time),
            ("--db-time", self.db_time),
            ("--sigma", self.sigma),
        ] {
            if !(v.is_finite() && (0.0..=60.0).contains(&v)) {
                return Err(format!(
                    "{flag} must be a number of seconds in 0..=60, got {v}"
                ));
            }
        }
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 600.0) {
            return Err(format!(
                "--timeout must be above 0 and at most 600 seconds, got {}",
                self.timeout
            ));
        }
        if self.pool_poll_ms == 0 || self.pool_poll_ms > 3_600_000 {
            return Err(format!(
                "--pool-poll-ms must be between 1 and 3600000, got {}",
                self.pool_poll_ms
            ));
        }
        Ok(())
    }
}

fn pool_size_in_range(n: u32) -> Result<u32, String> {
    if n == 0 || n > MAX_POOL_SIZE {
        return Err(format!("must be between 1 and {MAX_POOL_SIZE}, got {n}"));
    }
    Ok(n)
}

/// Reads a pool size as a ConfigMap value holds it: a whole number, spaces
/// and a trailing newline allowed.
pub fn parse_pool_size(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let n: u32 = t
        .parse()
        .map_err(|_| format!("{t:?} is not a whole number"))?;
    pool_size_in_range(n)
}

/// One latency histogram (per bucket, not cumulative; the last is +Inf).
#[derive(Clone, Debug, Default)]
struct Latencies {
    buckets: [u64; BUCKETS.len() + 1],
    sum: f64,
}

impl Latencies {
    fn observe(&mut self, seconds: f64) {
        let i = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i] += 1;
        self.sum += seconds;
    }
}

/// What the service counts (cumulative, as a Prometheus client keeps it).
#[derive(Debug, Default)]
struct Counters {
    by_status: BTreeMap<u16, Latencies>,
    cache_hits: u64,
    cache_misses: u64,
    pool_wait_sum: f64,
    pool_wait_count: u64,
    /// Time requests held a worker beyond their drawn times and pool waits:
    /// what the real stack (timer rounding, the runtime, the driver) adds.
    overhead_sum: f64,
    served: u64,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("no pooled connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
    #[error("workers closed")]
    Closed,
}

/// The shared state of one replica.
pub struct Service {
    config: Config,
    workers: tokio::sync::Semaphore,
    pool: Pool,
    cache: moka::future::Cache<String, ()>,
    counters: Mutex<Counters>,
    cpu: LogNormal<f64>,
    db: LogNormal<f64>,
}

impl Service {
    /// Builds the pool (no connection yet: they open on demand, as the
    /// simulator's do) and the cache.
    pub fn new(config: Config) -> anyhow::Result<Arc<Self>> {
        config.validate().map_err(anyhow::Error::msg)?;
        let pg: tokio_postgres::Config = config
            .database_url
            .parse()
            .map_err(|e| anyhow::anyhow!("--database-url: {e}"))?;
        let manager = Manager::from_config(
            pg,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size as usize)
            .build()
            .map_err(|e| anyhow::anyhow!("building the pool: {e}"))?;
        Ok(Arc::new(Self {
            workers: tokio::sync::Semaphore::new(config.workers as usize),
            cache: moka::future::Cache::new(config.cache_capacity),
            counters: Mutex::new(Counters::default()),
            cpu: lognormal(config.cpu_time, config.sigma),
            db: lognormal(config.db_time, config.sigma),
            pool,
            config,
        }))
    }

    /// The pool's current size limit.
    pub fn pool_size(&self) -> usize {
        self.pool.status().max_size
    }

    /// Applies a new pool size: idle connections over it close now, busy ones
    /// when they come back.
    pub fn resize_pool(&self, size: u32) {
        if self.pool.status().max_size != size as usize {
            tracing::info!(
                from = self.pool.status().max_size,
                to = size,
                "pool resized"
            );
            self.pool.resize(size as usize);
        }
    }

    /// One request: a worker, then the cache, on a miss a pooled connection and
    /// a query of the drawn database time, then the drawn CPU time.
    async fn serve(&self, key: &str) -> Result<(), Failure> {
        let _worker = self.workers.acquire().await.map_err(|_| Failure::Closed)?;
        let held = Instant::now();
        let mut expected = 0.0;
        let (cpu, db) = {
            let mut rng = rand::rng();
            (self.cpu.sample(&mut rng), self.db.sample(&mut rng))
        };
        if self.cache.get(key).await.is_some() {
            self.count(|c| c.cache_hits += 1);
        } else {
            self.count(|c| c.cache_misses += 1);
            let asked = Instant::now();
            let conn = self.pool.get().await?;
            let waited = asked.elapsed().as_secs_f64();
            self.count(|c| {
                c.pool_wait_sum += waited;
                c.pool_wait_count += 1;
            });
            expected += waited + db;
            let stmt = conn.prepare_cached("SELECT pg_sleep($1)").await?;
            conn.execute(&stmt, &[&db]).await?;
            drop(conn);
            self.cache.insert(key.to_string(), ()).await;
        }
        tokio::time::sleep(Duration::from_secs_f64(cpu)).await;
        expected += cpu;
        let overhead = held.elapsed().as_secs_f64() - expected;
        self.count(|c| {
            c.overhead_sum += overhead;
            c.served += 1;
        });
        Ok(())
    }

    fn count(&self, f: impl FnOnce(&mut Counters)) {
        if let Ok(mut c) = self.counters.lock() {
            f(&mut c);
        }
    }

    /// Loads keys `0..n` from the database into the cache (one query).
    async fn warm_up(&self, n: u32) -> Result<u64, Failure> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query(
                "SELECT k::text FROM generate_series(0, $1::int - 1) AS k",
                &[&(n as i32)],
            )
            .await?;
        drop(conn);
        for row in &rows {
            let k: String = row.get(0);
            self.cache.insert(k, ()).await;
        }
        Ok(rows.len() as u64)
    }

    /// The Prometheus text exposition, with the names `governor sim serve` uses.
    pub fn render_metrics(&self) -> String {
        let labels = format!(
            "service=\"{}\",http_route=\"{}\"",
            escape(&self.config.service),
            escape(ROUTE)
        );
        let mut out = String::with_capacity(8192);
        let Ok(c) = self.counters.lock() else {
            return out;
        };
        let m = "http_server_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {m} Duration of HTTP server requests.\n# TYPE {m} histogram"
        );
        for (code, h) in &c.by_status {
            let l = format!("{labels},http_response_status_code=\"{code}\"");
            write_histogram(&mut out, m, &l, &h.buckets, h.sum);
        }
        let status = self.pool.status();
        let used = status.size.saturating_sub(status.available);
        for (name, help, v) in [
            (
                "bench_service_overhead_seconds_total",
                "Worker time beyond the drawn service times and pool waits.",
                c.overhead_sum,
            ),
            (
                "bench_service_served_total",
                "Requests served to the end.",
                c.served as f64,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{{labels}}} {v}"
            );
        }
        let signals = CacheAndPool {
            cache_hits: c.cache_hits as f64,
            cache_misses: c.cache_misses as f64,
            pool_used: used as f64,
            pool_idle: status.available as f64,
            pool_max: status.max_size as f64,
            pool_pending: status.waiting as f64,
        };
        write_cache_and_pool_series(&mut out, &[(labels.clone(), signals)]);
        write_pool_wait_help(&mut out);
        write_pool_wait_series(&mut out, &labels, c.pool_wait_count, c.pool_wait_sum);
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /item/{key}`: one request, timed from its arrival; 503 past the timeout.
async fn item(State(s): State<Arc<Service>>, Path(key): Path<String>) -> StatusCode {
    let arrival = Instant::now();
    let limit = Duration::from_secs_f64(s.config.timeout);
    let code = match tokio::time::timeout(limit, s.serve(&key)).await {
        Ok(Ok(())) => StatusCode::OK,
        Ok(Err(e)) => {
            tracing::warn!("request failed: {e}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let latency = arrival.elapsed().as_secs_f64();
    s.count(|c| {
        c.by_status
            .entry(code.as_u16())
            .or_default()
            .observe(latency)
    });
    code
}

#[derive(serde::Deserialize)]
struct WarmUpQuery {
    keys: Option<u32>,
}

/// `GET /warm-up[?keys=N]`: loads keys 0..N (default --warm-keys) into the cache.
async fn warm_up(State(s): State<Arc<Service>>, Query(q): Query<WarmUpQuery>) -> impl IntoResponse {
    let n = q.keys.unwrap_or(s.config.warm_keys).min(10_000_000);
    match s.warm_up(n).await {
        Ok(loaded) => (StatusCode::OK, format!("loaded {loaded} keys\n")),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("warm-up failed: {e}\n"),
        ),
    }
}

/// `GET /healthz`: ready when a pooled connection answers.
async fn healthz(State(s): State<Arc<Service>>) -> impl IntoResponse {
    match s.pool.get().await {
        Ok(conn) => match conn.simple_query("SELECT 1").await {
            Ok(_) => (StatusCode::OK, "ok\n".to_string()),
            Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")),
        },
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")),
    }
}

/// The service's routes: `/item/{key}`, `/warm-up`, `/metrics`, `/healthz`.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route(ROUTE, get(item))
        .route("/warm-up", get(warm_up))
        .route("/healthz", get(healthz))
        .route(
            "/metrics",
            get(|State(s): State<Arc<Service>>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    s.render_metrics(),
                )
            }),
        )
        .with_state(service)
}

/// Re-reads the pool file every `poll` and applies a changed size. A file that
/// is missing or does not hold a valid size keeps the current pool (logged,
/// never read as zero).
pub async fn watch_pool_file(service: Arc<Service>, file: PathBuf, poll: Duration) {
    let mut last_error = String::new();
    loop {
        match std::fs::read_to_string(&file)
            .map_err(|e| format!("reading {}: {e}", file.display()))
            .and_then(|t| {
                parse_pool_size(&t).map_err(|e| format!("{}: pool size {e}", file.display()))
            }) {
            Ok(size) => {
                last_error.clear();
                service.resize_pool(size);
            }
            Err(e) => {
                if e != last_error {
                    tracing::warn!("{e}; keeping the pool at {}", service.pool_size());
                    last_error = e;
                }
            }
        }
        tokio::time::sleep(poll).await;
    }
}

/// Runs one replica until the listener fails.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let service = Service::new(config.clone())?;
    if let Some(file) = &config.pool_file {
        // The file wins over --pool-size from the start when it is readable.
        if let Ok(size) = std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|t| parse_pool_size(&t))
        {
            service.resize_pool(size);
        }
        tokio::spawn(watch_pool_file(
            service.clone(),
            file.clone(),
            Duration::from_millis(config.pool_poll_ms),
        ));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("--listen {}: {e}", config.listen))?;
    tracing::info!(listen = %config.listen, pool = service.pool_size(), "serving");
    axum::serve(listener, router(service)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_size_is_read_as_a_configmap_value_holds_it() {
        assert_eq!(parse_pool_size("12\n"), Ok(12));
        assert_eq!(parse_pool_size("  7 "), Ok(7));
        for bad in ["", "0", "-3", "ten", "10001", "1.5"] {
            assert!(parse_pool_size(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse_pool_size("0"),
            Err("must be between 1 and 10000, got 0".into())
        );
    }
}
