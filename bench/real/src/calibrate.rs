//! Calibration: the same fixed point (replicas, pool size per replica, a
//! constant arrival rate) run on real service processes behind the load
//! generator and in the simulator with the same parameters, their latency
//! quantiles side by side.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use governor::sim::{InitialState, ServiceModel, Simulation};
use governor_tests::process::{Server, free_port, http_ok};

use crate::load::{self, LoadPlan, RateCurve};

/// One calibration point.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Point {
    pub replicas: u32,
    /// Pool size of each replica.
    pub pool: u32,
    /// Requests per second, over all replicas.
    pub rate: f64,
}

impl std::str::FromStr for Point {
    type Err = String;
    /// `REPLICASxPOOL@RATE`, e.g. `2x10@150`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not REPLICASxPOOL@RATE (e.g. 2x10@150)");
        let (shape, rate) = s.split_once('@').ok_or_else(bad)?;
        let (replicas, pool) = shape.split_once('x').ok_or_else(bad)?;
        let p = Self {
            replicas: replicas.trim().parse().map_err(|_| bad())?,
            pool: pool.trim().parse().map_err(|_| bad())?,
            rate: rate.trim().parse().map_err(|_| bad())?,
        };
        if p.replicas == 0 || p.replicas > 50 {
            return Err(format!("{s:?}: replicas must be between 1 and 50"));
        }
        if p.pool == 0 || p.pool > crate::service::MAX_POOL_SIZE {
            return Err(format!(
                "{s:?}: pool must be between 1 and {}",
                crate::service::MAX_POOL_SIZE
            ));
        }
        if !(p.rate.is_finite() && p.rate > 0.0 && p.rate <= 5_000.0) {
            return Err(format!("{s:?}: rate must be above 0 and at most 5000"));
        }
        Ok(p)
    }
}

/// What every point shares.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Wall-clock seconds of load per point, the first `warmup` not counted.
    pub seconds: f64,
    pub warmup: f64,
    /// Cacheable keys (all loaded by the warm-up) and their share of requests.
    pub keys: u64,
    pub cacheable: f64,
    pub seed: u64,
    /// Simulated seconds per point (the simulator is cheap: a long run gives
    /// steady quantiles).
    pub sim_seconds: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            seconds: 40.0,
            warmup: 5.0,
            keys: 18_000,
            cacheable: 0.9,
            seed: 1,
            sim_seconds: 900.0,
        }
    }
}

impl Settings {
    /// The simulator's service at these settings: the audit's service, with
    /// the cache the load generator's keys give (the hit rate of a warm cache
    /// is the cacheable share; a cold one warms as the keys are first seen).
    pub fn model(&self) -> ServiceModel {
        ServiceModel {
            cache_max: self.cacheable,
            cache_warm_requests: self.keys as f64 / self.cacheable.max(1e-9),
            ..ServiceModel::audit()
        }
    }
}

/// Latency quantiles in seconds.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Quantiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// The simulator at `point`, warm caches, mean of the per-minute exact
/// quantiles after the first minute; also its error share.
pub fn simulate(point: Point, settings: &Settings, model: ServiceModel) -> (Quantiles, f64) {
    let initial = InitialState {
        replicas: point.replicas,
        pool_size: point.pool,
        served: 1e12,
    };
    let mut sim = Simulation::new(model, &initial, point.rate, settings.seed);
    sim.run_until(settings.sim_seconds.max(120.0), &|_| point.rate);
    let minutes = &sim.minutes[1..];
    let n = minutes.len().max(1) as f64;
    let mean =
        |f: fn(&governor::sim::engine::MinuteStats) -> f64| minutes.iter().map(f).sum::<f64>() / n;
    let errors = sim.total_errors as f64 / sim.total_requests.max(1) as f64;
    (
        Quantiles {
            p50: mean(|m| m.p50),
            p90: mean(|m| m.p90),
            p99: mean(|m| m.p99),
        },
        errors,
    )
}

/// One replica of the reference service, a process of its own.
pub struct Replica {
    pub url: String,
    /// The file it reads its pool size from (as a mounted ConfigMap key).
    pub pool_file: PathBuf,
    pub server: Server,
}

/// N replicas of the reference service on one database.
pub struct Fleet {
    pub replicas: Vec<Replica>,
    http: reqwest::Client,
}

impl Fleet {
    /// Starts `n` processes of `service_bin` with their pool size in a file,
    /// and waits until each answers `/healthz` (its database reachable).
    pub async fn start(
        service_bin: &Path,
        database_url: &str,
        n: u32,
        pool: u32,
    ) -> crate::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let mut replicas = Vec::new();
        for i in 0..n {
            let dir = tempfile::Builder::new()
                .prefix("bench-service-")
                .tempdir()?;
            let pool_file = dir.path().join("pool_size");
            std::fs::write(&pool_file, format!("{pool}\n"))?;
            let port = free_port()?;
            let url = format!("http://127.0.0.1:{port}");
            let args: Vec<String> = vec![
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--database-url".into(),
                database_url.into(),
                "--pool-file".into(),
                pool_file.display().to_string(),
                "--pool-poll-ms".into(),
                "200".into(),
            ];
            let mut server = Server::start(&format!("bench-service-{i}"), service_bin, &args, dir)
                .with_context(|| format!("starting {}", service_bin.display()))?;
            let health = format!("{url}/healthz");
            server
                .wait_ready(Duration::from_secs(30), || http_ok(&http, &health))
                .await?;
            replicas.push(Replica {
                url,
                pool_file,
                server,
            });
        }
        Ok(Self { replicas, http })
    }

    pub fn urls(&self) -> Vec<String> {
        self.replicas.iter().map(|r| r.url.clone()).collect()
    }

    /// Loads keys 0..keys into every replica's cache.
    pub async fn warm_up(&self, keys: u64) -> crate::Result<()> {
        for r in &self.replicas {
            let resp = self
                .http
                .get(format!("{}/warm-up?keys={keys}", r.url))
                .send()
                .await?;
            anyhow::ensure!(
                resp.status().is_success(),
                "warm-up of {}: {}",
                r.url,
                resp.status()
            );
        }
        Ok(())
    }

    /// Sums a plain series (no `le`) over the replicas' `/metrics`; None when
    /// a replica does not export it.
    pub async fn metric(&self, name: &str) -> crate::Result<Option<f64>> {
        let mut total = 0.0;
        for r in &self.replicas {
            let text = self
                .http
                .get(format!("{}/metrics", r.url))
                .send()
                .await?
                .text()
                .await?;
            match series_value(&text, name) {
                Some(v) => total += v,
                None => return Ok(None),
            }
        }
        Ok(Some(total))
    }
}

/// The value of the first sample of `name` (with or without labels) in a text
/// exposition.
pub fn series_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// One point's result, as the JSON line prints it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub point: Point,
    pub sim_p50: f64,
    pub sim_p90: f64,
    pub sim_p99: f64,
    pub real_p50: Option<f64>,
    pub real_p90: Option<f64>,
    pub real_p99: Option<f64>,
    /// real / sim, per quantile.
    pub ratio_p50: Option<f64>,
    pub ratio_p90: Option<f64>,
    pub ratio_p99: Option<f64>,
    /// Mean worker time per request the real stack added beyond the drawn
    /// times (seconds), measured by the replicas.
    pub real_overhead: Option<f64>,
    /// The simulator again with that overhead added to its mean CPU time, and
    /// real over it: how well the queueing model does once the service time
    /// is what the real service actually spent.
    pub adjusted_p50: Option<f64>,
    pub adjusted_p90: Option<f64>,
    pub adjusted_p99: Option<f64>,
    pub adjusted_ratio_p50: Option<f64>,
    pub adjusted_ratio_p90: Option<f64>,
    pub adjusted_ratio_p99: Option<f64>,
    /// The load generator's own lateness, P50 (seconds): in every real latency.
    pub send_lag_p50: Option<f64>,
    pub sim_errors: f64,
    pub real_errors: f64,
    pub real_hit_rate: Option<f64>,
    pub real_sent: u64,
    pub achieved_rps: f64,
}

impl Row {
    fn new(
        point: Point,
        sim: Quantiles,
        sim_errors: f64,
        real: &load::Summary,
        hit_rate: Option<f64>,
        overhead: Option<(f64, Quantiles)>,
    ) -> Self {
        let ratio = |r: Option<f64>, s: f64| r.filter(|_| s > 0.0).map(|r| r / s);
        let adjusted = overhead.map(|o| o.1);
        Self {
            real_overhead: overhead.map(|o| o.0),
            adjusted_p50: adjusted.map(|a| a.p50),
            adjusted_p90: adjusted.map(|a| a.p90),
            adjusted_p99: adjusted.map(|a| a.p99),
            adjusted_ratio_p50: adjusted.and_then(|a| ratio(real.p50, a.p50)),
            adjusted_ratio_p90: adjusted.and_then(|a| ratio(real.p90, a.p90)),
            adjusted_ratio_p99: adjusted.and_then(|a| ratio(real.p99, a.p99)),
            send_lag_p50: real.send_lag_p50,
            point,
            sim_p50: sim.p50,
            sim_p90: sim.p90,
            sim_p99: sim.p99,
            real_p50: real.p50,
            real_p90: real.p90,
            real_p99: real.p99,
            ratio_p50: ratio(real.p50, sim.p50),
            ratio_p90: ratio(real.p90, sim.p90),
            ratio_p99: ratio(real.p99, sim.p99),
            sim_errors,
            real_errors: real.errors as f64 / real.sent.max(1) as f64,
            real_hit_rate: hit_rate,
            real_sent: real.sent,
            achieved_rps: real.achieved_rps,
        }
    }
}

/// Runs one point: a fresh fleet on `database_url`, warmed, under the load
/// generator; then the simulator at the same parameters.
pub async fn run_point(
    service_bin: &Path,
    database_url: &str,
    point: Point,
    settings: &Settings,
) -> crate::Result<Row> {
    let fleet = Fleet::start(service_bin, database_url, point.replicas, point.pool).await?;
    fleet.warm_up(settings.keys).await?;
    let (hits0, misses0) = (
        fleet.metric("cache_hits_total").await?,
        fleet.metric("cache_misses_total").await?,
    );
    let (over0, served0) = (
        fleet.metric("bench_service_overhead_seconds_total").await?,
        fleet.metric("bench_service_served_total").await?,
    );
    let plan = LoadPlan {
        targets: fleet.urls(),
        curve: RateCurve::Constant(point.rate),
        seconds: settings.seconds,
        warmup: settings.warmup,
        keys: settings.keys,
        cacheable: settings.cacheable,
        seed: settings.seed,
        timeout: Duration::from_secs(10),
        max_in_flight: 10_000,
    };
    let real = load::run(&plan).await?;
    let (hits1, misses1) = (
        fleet.metric("cache_hits_total").await?,
        fleet.metric("cache_misses_total").await?,
    );
    let hit_rate = match (hits0, misses0, hits1, misses1) {
        (Some(h0), Some(m0), Some(h1), Some(m1)) if (h1 - h0) + (m1 - m0) > 0.0 => {
            Some((h1 - h0) / ((h1 - h0) + (m1 - m0)))
        }
        _ => None,
    };
    let (over1, served1) = (
        fleet.metric("bench_service_overhead_seconds_total").await?,
        fleet.metric("bench_service_served_total").await?,
    );
    drop(fleet);
    let (sim, sim_errors) = simulate(point, settings, settings.model());
    let overhead = match (over0, served0, over1, served1) {
        (Some(o0), Some(s0), Some(o1), Some(s1)) if s1 > s0 => {
            let per_request = ((o1 - o0) / (s1 - s0)).max(0.0);
            let mut model = settings.model();
            model.cpu_time += per_request;
            Some((per_request, simulate(point, settings, model).0))
        }
        _ => None,
    };
    Ok(Row::new(point, sim, sim_errors, &real, hit_rate, overhead))
}

/// The default calibration points: two replicas from light to heavy load, a
/// pool small enough to queue, and four replicas.
pub fn default_points() -> Vec<Point> {
    ["2x10@100", "2x10@200", "2x10@280", "2x1@200", "4x10@400"]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The table of rows, milliseconds.
pub fn table(rows: &[Row]) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}", v * 1e3));
    let r = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let mut out = format!(
        "{:<9} {:>4} {:>5} | {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} | {:>5} {:>5} {:>5} | {:>6} {:>5} {:>5} {:>5} | {:>6} {:>5}\n",
        "replicas",
        "pool",
        "rps",
        "sim_p50",
        "sim_p90",
        "sim_p99",
        "real_p50",
        "real_p90",
        "real_p99",
        "r_p50",
        "r_p90",
        "r_p99",
        "ovh_ms",
        "a_p50",
        "a_p90",
        "a_p99",
        "errors",
        "hit"
    );
    for row in rows {
        out.push_str(&format!(
            "{:<9} {:>4} {:>5} | {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} | {:>5} {:>5} {:>5} | {:>6} {:>5} {:>5} {:>5} | {:>5.2}% {:>5}\n",
            row.point.replicas,
            row.point.pool,
            row.point.rate,
            ms(Some(row.sim_p50)),
            ms(Some(row.sim_p90)),
            ms(Some(row.sim_p99)),
            ms(row.real_p50),
            ms(row.real_p90),
            ms(row.real_p99),
            r(row.ratio_p50),
            r(row.ratio_p90),
            r(row.ratio_p99),
            ms(row.real_overhead),
            r(row.adjusted_ratio_p50),
            r(row.adjusted_ratio_p90),
            r(row.adjusted_ratio_p99),
            row.real_errors * 100.0,
            row.real_hit_rate.map_or("-".into(), |h| format!("{:.0}%", h * 100.0)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_parse_and_refuse_what_cannot_run() {
        assert_eq!(
            "2x10@150".parse::<Point>(),
            Ok(Point {
                replicas: 2,
                pool: 10,
                rate: 150.0
            })
        );
        for bad in [
            "2x10", "x10@1", "0x10@100", "2x0@100", "2x10@-5", "2x10@nan", "2@10x3",
        ] {
            assert!(bad.parse::<Point>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(default_points().len(), 5);
    }

    #[test]
    fn a_missing_series_is_none_not_zero() {
        let text = "# HELP cache_hits_total x\ncache_hits_total{service=\"api\"} 42\ncache_hits_total_other 1\n";
        assert_eq!(series_value(text, "cache_hits_total"), Some(42.0));
        assert_eq!(series_value(text, "cache_misses_total"), None);
    }

    #[test]
    fn the_simulated_point_slows_with_load_and_with_overhead() {
        let settings = Settings {
            sim_seconds: 300.0,
            ..Settings::default()
        };
        let light = Point {
            replicas: 2,
            pool: 10,
            rate: 100.0,
        };
        let busy = Point {
            rate: 300.0,
            ..light
        };
        let (l, errors) = simulate(light, &settings, settings.model());
        let (b, _) = simulate(busy, &settings, settings.model());
        assert_eq!(errors, 0.0);
        assert!(l.p50 < l.p90 && l.p90 < l.p99);
        assert!(b.p99 > l.p99 * 1.1, "{b:?} against {l:?}");
        let mut slower = settings.model();
        slower.cpu_time += 0.002;
        let (s, _) = simulate(light, &settings, slower);
        assert!(s.p50 > l.p50, "{s:?} against {l:?}");
    }
}
