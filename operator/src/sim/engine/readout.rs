//! Reading a simulation: the scrape-like observation of the last minute, pool
//! gauges, exact recent quantiles, and Prometheus's `histogram_quantile`.

use super::{BUCKETS, Replica, Simulation};
use crate::observe::{Observation, Percentiles};

impl Simulation {
    /// What a Prometheus scrape of the last minute would show.
    pub fn observe(&self) -> Observation {
        let mut buckets = [0u64; BUCKETS.len() + 1];
        let (mut requests, mut errors, mut hits, mut misses, mut cpu, mut wait_sum, mut wait_n) =
            (0u64, 0u64, 0u64, 0u64, 0.0, 0.0, 0u64);
        // Whole seconds only: the current second is still filling.
        let complete = self.seconds.len().saturating_sub(1);
        for s in self.seconds.iter().take(complete) {
            for (b, c) in buckets.iter_mut().zip(s.buckets.iter()) {
                *b += c;
            }
            requests += s.requests;
            errors += s.errors;
            hits += s.hits;
            misses += s.misses;
            cpu += s.cpu;
            wait_sum += s.pool_wait_sum;
            wait_n += s.pool_wait_count;
        }
        let window = complete.max(1) as f64;
        let mut latency = Percentiles::default();
        for q in governor_crds::Quantile::ALL {
            latency.set(q, histogram_quantile(q.value(), &BUCKETS, &buckets));
        }
        let live: Vec<&Replica> = self.replicas.iter().filter(|r| !r.removed).collect();
        let ready = self.ready_replicas();
        Observation {
            sampled_at: Some(self.now),
            request_rate: (complete > 0).then_some(requests as f64 / window),
            latency,
            error_rate: (requests > 0).then(|| errors as f64 / requests as f64),
            cache_hit_rate: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
            pool_in_use: Some(live.iter().map(|r| f64::from(r.pool_in_use)).sum()),
            pool_max: Some(live.iter().map(|r| f64::from(r.pool_size)).sum()),
            pool_pending: Some(live.iter().map(|r| r.pool_waiters.len() as f64).sum()),
            pool_wait: (wait_n > 0).then(|| wait_sum / wait_n as f64),
            ready_replicas: Some(ready),
            cpu_utilization: (ready > 0 && complete > 0)
                .then(|| cpu / (window * f64::from(ready) * f64::from(self.model.workers))),
            error_budget: None,
        }
    }

    /// Pool gauges now: (in use, open and idle, pool size, waiting), summed over replicas.
    pub fn pool_gauges(&self) -> (u32, u32, u32, u32) {
        let live = self.replicas.iter().filter(|r| !r.removed);
        live.fold((0, 0, 0, 0), |acc, r| {
            (
                acc.0 + r.pool_in_use,
                acc.1 + (r.pool_open - r.pool_in_use),
                acc.2 + r.pool_size,
                acc.3 + r.pool_waiters.len() as u32,
            )
        })
    }

    /// Exact quantile of the latencies of the last `window` seconds (at most a
    /// minute; ground truth), if kept.
    pub fn recent_quantile(&self, q: f64, window: f64) -> Option<f64> {
        let since = self.now - window;
        let mut v: Vec<f32> = self
            .recent
            .iter()
            .filter(|(t, _)| *t >= since)
            .map(|(_, l)| *l)
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f32::total_cmp);
        let rank = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len());
        Some(f64::from(v[rank - 1]))
    }

    /// Database connections open now.
    pub fn db_connections(&self) -> u32 {
        self.db_open
    }
}

/// Prometheus's `histogram_quantile` on cumulative-by-construction bucket counts:
/// linear interpolation inside the bucket; the highest finite bound for +Inf.
pub fn histogram_quantile(q: f64, bounds: &[f64], counts: &[u64]) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut cumulative = 0u64;
    for (i, &c) in counts.iter().enumerate() {
        let prev = cumulative;
        cumulative += c;
        if cumulative as f64 >= rank && c > 0 {
            if i >= bounds.len() {
                return bounds.last().copied();
            }
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            let upper = bounds[i];
            let fraction = (rank - prev as f64) / c as f64;
            return Some(lower + (upper - lower) * fraction);
        }
    }
    bounds.last().copied()
}
