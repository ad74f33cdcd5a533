//! Test helpers: SLO specs built field by field for unit tests, with the CRD's
//! own defaults for everything a test does not set, and a healthy observation.

use governor_crds::{Latency, Mode, ServiceLevelObjectiveSpec as Spec};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::observe::{Observation, Percentiles};

/// Builds a spec: `SpecBuilder::new().p99("100ms").replicas(3, 20).build()`.
/// Starts with no objective, replicas and rates at the CRD defaults, and no pool
/// or cache. Panics on malformed durations: it is for tests.
#[derive(Clone, Debug)]
pub struct SpecBuilder {
    spec: Spec,
}

impl Default for SpecBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// A value of `T` from JSON, with serde filling in the CRD's defaults.
fn parse<T: DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("a test spec parses")
}

fn duration(s: &str) -> governor_crds::Duration {
    s.parse().expect("a test duration parses")
}

fn latency(s: &str) -> Latency {
    s.parse().expect("a test latency parses")
}

impl SpecBuilder {
    pub fn new() -> Self {
        Self {
            spec: parse(json!({"service": "svc", "targetRef": {"name": "svc"}, "objectives": {}})),
        }
    }

    pub fn p50(mut self, target: &str) -> Self {
        self.spec.objectives.latency.p50 = Some(latency(target));
        self
    }
    pub fn p90(mut self, target: &str) -> Self {
        self.spec.objectives.latency.p90 = Some(latency(target));
        self
    }
    pub fn p95(mut self, target: &str) -> Self {
        self.spec.objectives.latency.p95 = Some(latency(target));
        self
    }
    pub fn p99(mut self, target: &str) -> Self {
        self.spec.objectives.latency.p99 = Some(latency(target));
        self
    }
    pub fn p999(mut self, target: &str) -> Self {
        self.spec.objectives.latency.p999 = Some(latency(target));
        self
    }

    pub fn error_rate(mut self, ratio: f64) -> Self {
        self.spec.objectives.error_rate = Some(ratio);
        self
    }

    pub fn evaluation_interval(mut self, interval: &str) -> Self {
        self.spec.objectives.evaluation_interval = duration(interval);
        self
    }

    pub fn replicas(mut self, min: i32, max: i32) -> Self {
        self.spec.scaling.min_replicas = min;
        self.spec.scaling.max_replicas = max;
        self
    }

    pub fn pod_startup(mut self, time: &str) -> Self {
        self.spec.scaling.pod_startup_time = duration(time);
        self
    }

    /// Scale-up limit: per `period`, the larger of `pods` and `percent` %.
    pub fn scale_up(mut self, pods: i32, percent: i32, period: &str) -> Self {
        let up = &mut self.spec.scaling.scale_up;
        (up.max_pods, up.max_percent, up.period) = (pods, percent, duration(period));
        self
    }

    /// Scale-down limit: per `period`, the larger of `pods` and `percent` %.
    pub fn scale_down(mut self, pods: i32, percent: i32, period: &str) -> Self {
        let down = &mut self.spec.scaling.scale_down;
        (down.max_pods, down.max_percent, down.period) = (pods, percent, duration(period));
        self
    }

    pub fn stabilization(mut self, window: &str) -> Self {
        self.spec.scaling.scale_down.stabilization_window = duration(window);
        self
    }

    pub fn dry_run(mut self) -> Self {
        self.spec.scaling.mode = Mode::DryRun;
        self
    }

    /// A managed pool of `min..=max` per replica (database: 100 connections at
    /// the default budget ratio until `database` says otherwise).
    pub fn pool(mut self, min: i32, max: i32) -> Self {
        let pool = self.spec.connection_pool.get_or_insert_with(|| {
            parse(json!({
                "configMap": {"name": "svc-db", "key": "pool_size"},
                "maxSize": max,
                "database": {"maxConnections": 100},
            }))
        });
        (pool.min_size, pool.max_size) = (min, max);
        self
    }

    /// The database: its max_connections and the share Governor may use. Needs `pool`.
    pub fn database(mut self, max_connections: i32, budget_ratio: f64) -> Self {
        let db = &mut self.pool_mut().database;
        (db.max_connections, db.budget_ratio) = (max_connections, budget_ratio);
        self
    }

    /// Connections kept for other consumers of the database. Needs `pool`.
    pub fn reserved(mut self, connections: i32) -> Self {
        self.pool_mut().database.reserved_connections = connections;
        self
    }

    fn pool_mut(&mut self) -> &mut governor_crds::ConnectionPool {
        self.spec
            .connection_pool
            .as_mut()
            .expect("SpecBuilder: call pool() before database() or reserved()")
    }

    /// A cache with a hit-rate target, warmed over HTTP at most once per `cooldown`.
    pub fn cache(mut self, hit_rate_target: f64, cooldown: &str) -> Self {
        self.spec.cache = Some(parse(json!({
            "hitRateTarget": hit_rate_target,
            "cooldown": cooldown,
            "warmUp": {"http": {"service": "svc", "port": 8080, "paths": ["/"]}},
        })));
        self
    }

    /// Warm new replicas' caches with every scale-up. Needs `cache`.
    pub fn warm_before_scale_up(mut self) -> Self {
        let cache = self.spec.cache.as_mut();
        cache
            .expect("SpecBuilder: call cache() first")
            .warm_before_scale_up = true;
        self
    }

    pub fn build(self) -> Spec {
        self.spec
    }
}

/// A fresh observation sampled at `at`: 100 rps on 4 ready replicas, P50/P90/P99
/// at 20/40/50 ms, no errors; pool and cache signals absent.
pub fn healthy(at: f64) -> Observation {
    Observation {
        sampled_at: Some(at),
        request_rate: Some(100.0),
        latency: Percentiles {
            p50: Some(0.02),
            p90: Some(0.04),
            p99: Some(0.05),
            ..Percentiles::default()
        },
        error_rate: Some(0.0),
        ready_replicas: Some(4),
        ..Observation::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_sets_what_it_is_told_and_defaults_the_rest() {
        let spec = SpecBuilder::new()
            .p99("100ms")
            .error_rate(0.001)
            .replicas(3, 20)
            .pool(2, 40)
            .database(200, 0.5)
            .reserved(10)
            .stabilization("2m")
            .build();
        assert_eq!(spec.objectives.latency.targets().len(), 1);
        assert_eq!(spec.objectives.latency.p99, Some(Latency::from_millis(100)));
        assert_eq!(spec.objectives.error_rate, Some(0.001));
        assert_eq!(
            (spec.scaling.min_replicas, spec.scaling.max_replicas),
            (3, 20)
        );
        let pool = spec.connection_pool.as_ref().unwrap();
        assert_eq!((pool.min_size, pool.max_size), (2, 40));
        assert_eq!(pool.database.budget(), 90);
        assert_eq!(
            spec.scaling.scale_down.stabilization_window.as_secs_f64(),
            120.0
        );
        // The CRD's defaults for the rest.
        assert_eq!(spec.scaling.scale_up.max_pods, 4);
        assert_eq!(spec.objectives.evaluation_interval.as_secs_f64(), 15.0);
        assert_eq!(spec.cache, None);
        assert!(spec.validate().is_empty(), "{:?}", spec.validate());
    }

    #[test]
    fn the_builder_reproduces_a_spec_written_in_yaml() {
        let built = SpecBuilder::new()
            .p50("100ms")
            .p90("100ms")
            .p99("100ms")
            .error_rate(0.001)
            .replicas(2, 20)
            .pod_startup("30s")
            .pool(2, 50)
            .database(100, 0.8)
            .cache(0.8, "10m")
            .warm_before_scale_up()
            .build();
        let yaml = r#"
service: svc
targetRef: {name: svc}
objectives:
  latency: {p50: 100ms, p90: 100ms, p99: 100ms}
  errorRate: 0.001
scaling: {minReplicas: 2, maxReplicas: 20, podStartupTime: 30s}
connectionPool:
  configMap: {name: svc-db, key: pool_size}
  minSize: 2
  maxSize: 50
  database: {maxConnections: 100, budgetRatio: 0.8}
cache:
  hitRateTarget: 0.8
  cooldown: 10m
  warmBeforeScaleUp: true
  warmUp:
    http: {service: svc, port: 8080, paths: [/]}
"#;
        let written: Spec = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(built, written);
    }
}
