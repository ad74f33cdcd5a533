//! What a simulated service is made of, how a run starts, and the counters and
//! per-minute ground truth it keeps.

/// Histogram boundaries (seconds) of the simulated latency histogram.
pub const BUCKETS: [f64; 21] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5,
    2.0, 2.5, 5.0, 7.5, 10.0,
];

/// What the simulated service is made of.
#[derive(Clone, Debug)]
pub struct ServiceModel {
    /// Requests one replica serves at once.
    pub workers: u32,
    /// Mean CPU time of a request (seconds); lognormal.
    pub cpu_time: f64,
    /// Lognormal shape of service times.
    pub sigma: f64,
    /// Mean database query time of a cache miss (seconds), unloaded.
    pub db_time: f64,
    /// Database queries that run at full speed at once; more slow every query.
    pub db_cores: f64,
    pub db_max_connections: u32,
    /// Requests slower than this fail (seconds).
    pub timeout: f64,
    /// Seconds from a scale-up until a replica serves.
    pub startup: f64,
    /// Hit rate of a fully warm cache.
    pub cache_max: f64,
    /// Requests a replica serves to warm its cache to 63 % of `cache_max`.
    pub cache_warm_requests: f64,
    /// Multiplier on the query time of a miss (4 for the cold-cache scenario).
    pub miss_penalty: f64,
    /// Exponential instead of lognormal CPU times (for the M/M/c validation).
    pub exponential: bool,
    /// The database's speed over time: `(from second, factor)` steps, in order;
    /// query times are multiplied by the factor of the last step at or before
    /// now (1 before the first).
    pub db_slowdown: Vec<(f64, f64)>,
    /// CPU-time multiplier of each replica by creation order (0 is the first
    /// initial replica); replicas past the end run at 1.
    pub replica_slowdown: Vec<f64>,
}

impl ServiceModel {
    /// The road-trip API of the audit.
    pub fn audit() -> Self {
        Self {
            workers: 4,
            cpu_time: 0.02,
            sigma: 0.35,
            db_time: 0.03,
            db_cores: 32.0,
            db_max_connections: 100,
            timeout: 5.0,
            startup: 30.0,
            cache_max: 0.9,
            cache_warm_requests: 20_000.0,
            miss_penalty: 1.0,
            exponential: false,
            db_slowdown: Vec::new(),
            replica_slowdown: Vec::new(),
        }
    }

    /// The database's query-time multiplier at `t` seconds.
    pub fn db_factor(&self, t: f64) -> f64 {
        self.db_slowdown
            .iter()
            .take_while(|s| s.0 <= t)
            .last()
            .map_or(1.0, |s| s.1)
    }

    /// The CPU-time multiplier of the replica created `index`-th.
    pub fn replica_factor(&self, index: usize) -> f64 {
        self.replica_slowdown.get(index).copied().unwrap_or(1.0)
    }
}

/// Requests a replica finished (served or failed) and the sum of their latencies.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReplicaLatency {
    pub requests: u64,
    pub latency_sum: f64,
}

impl ReplicaLatency {
    pub fn mean(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.latency_sum / self.requests as f64)
    }
}

/// Initial state of a run.
#[derive(Clone, Debug)]
pub struct InitialState {
    pub replicas: u32,
    pub pool_size: u32,
    /// Requests each initial replica has served (sets its cache warmth).
    pub served: f64,
}

/// Cumulative counters since the start (they only ever grow).
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Latency histogram of successful requests, per bucket (not cumulative) and +Inf.
    pub ok_buckets: [u64; BUCKETS.len() + 1],
    pub ok_sum: f64,
    pub error_buckets: [u64; BUCKETS.len() + 1],
    pub error_sum: f64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub pool_wait_sum: f64,
    pub pool_wait_count: u64,
    /// Latency of every request as a native (exponential-bucket) histogram.
    pub native: crate::sim::native::NativeHistogram,
}

impl Counters {
    /// All requests, and for each objective those that missed it: requests
    /// in buckets whose upper bound is over a latency target (the ratio SLI
    /// the budget rules count), or failed ones for the error objective.
    pub fn missed(&self, objectives: &[crate::rules::BudgetObjective]) -> (f64, Vec<f64>) {
        let per_bucket: Vec<u64> = self
            .ok_buckets
            .iter()
            .zip(self.error_buckets.iter())
            .map(|(a, b)| a + b)
            .collect();
        let total = per_bucket.iter().sum::<u64>() as f64;
        let errors = self.error_buckets.iter().sum::<u64>() as f64;
        let bad = objectives
            .iter()
            .map(|o| match o.latency_target {
                Some(t) => per_bucket
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| BUCKETS.get(*i).is_none_or(|le| *le > t + 1e-12))
                    .map(|(_, n)| *n as f64)
                    .sum(),
                None => errors,
            })
            .collect();
        (total, bad)
    }
}

/// What one simulated minute looked like (ground truth, from every request).
#[derive(Clone, Debug, Default)]
pub struct MinuteStats {
    pub requests: u64,
    pub errors: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub replicas: f64,
    pub hit_rate: f64,
}
