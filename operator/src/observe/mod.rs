//! Observe: what Governor reads about one service per evaluation. Missing data is
//! `None`, never zero; the Prometheus source and the simulator both produce it.

pub mod answer;
pub mod backend;
pub mod budget;
pub mod http;
pub mod jaeger;
pub mod prometheus;
pub mod queries;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor_crds::{IndicatorSource, Quantile, ServiceLevelObjective};
use serde::Serialize;

/// Latency percentiles in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
}

impl Percentiles {
    pub fn get(&self, q: Quantile) -> Option<f64> {
        match q {
            Quantile::P50 => self.p50,
            Quantile::P90 => self.p90,
            Quantile::P95 => self.p95,
            Quantile::P99 => self.p99,
            Quantile::P999 => self.p999,
        }
    }

    pub fn set(&mut self, q: Quantile, v: Option<f64>) {
        *match q {
            Quantile::P50 => &mut self.p50,
            Quantile::P90 => &mut self.p90,
            Quantile::P95 => &mut self.p95,
            Quantile::P99 => &mut self.p99,
            Quantile::P999 => &mut self.p999,
        } = v;
    }
}

/// One reading of a service's signals.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Observation {
    /// When the newest sample was taken (seconds on the decision clock).
    pub sampled_at: Option<f64>,
    /// Requests per second.
    pub request_rate: Option<f64>,
    pub latency: Percentiles,
    /// Share of failed requests.
    pub error_rate: Option<f64>,
    pub cache_hit_rate: Option<f64>,
    /// Connections in use, summed over replicas.
    pub pool_in_use: Option<f64>,
    /// Pool size limit, summed over replicas.
    pub pool_max: Option<f64>,
    /// Requests waiting for a connection, summed over replicas.
    pub pool_pending: Option<f64>,
    /// Mean wait for a connection, seconds.
    pub pool_wait: Option<f64>,
    pub ready_replicas: Option<u32>,
    /// Mean CPU utilization of ready replicas, in [0, 1] (for the HPA baseline).
    pub cpu_utilization: Option<f64>,
    /// The error budget's position in its window, when known (budget-aware headroom).
    pub error_budget: Option<crate::error_budget::BudgetPosition>,
}

/// Finite and not negative, or missing.
pub fn clean(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite() && *x >= 0.0)
}

impl Observation {
    /// The same observation with NaN, infinite and negative values read as missing.
    pub fn sanitized(&self) -> Self {
        let mut o = self.clone();
        o.sampled_at = self.sampled_at.filter(|x| x.is_finite());
        o.request_rate = clean(o.request_rate);
        for q in Quantile::ALL {
            o.latency.set(q, clean(self.latency.get(q)));
        }
        o.error_rate = clean(o.error_rate).filter(|x| *x <= 1.0);
        o.cache_hit_rate = clean(o.cache_hit_rate).filter(|x| *x <= 1.0);
        o.pool_in_use = clean(o.pool_in_use);
        o.pool_max = clean(o.pool_max);
        o.pool_pending = clean(o.pool_pending);
        o.pool_wait = clean(o.pool_wait);
        o.cpu_utilization = clean(o.cpu_utilization);
        o.error_budget = self
            .error_budget
            .and_then(|b| crate::error_budget::BudgetPosition::new(b.remaining, b.elapsed));
        o
    }
}

/// The range of rate() and histogram_quantile(), and of the traces read from
/// Jaeger: a PromQL duration of whole seconds, parsed once from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window(pub Duration);

impl Default for Window {
    fn default() -> Self {
        Self(Duration::from_secs(60))
    }
}

impl std::str::FromStr for Window {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("must be a PromQL duration such as 30s or 1m, got {s:?}");
        if s.contains(['d', 'w', '.']) {
            return Err(bad());
        }
        let d: governor_crds::Duration = s.parse().map_err(|_| bad())?;
        if d.std() < Duration::from_secs(1) || d.std().subsec_nanos() != 0 {
            return Err(bad());
        }
        Ok(Self(d.std()))
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        governor_crds::Duration::from(self.0).fmt(f)
    }
}

/// The name under which a missing error budget is reported.
pub const ERROR_BUDGET: &str = "error_budget";

/// One observation cycle for `slos`: the batched Prometheus plan, the error
/// budgets (`budget.rs`), then trace latency from Jaeger for the SLOs whose
/// `indicators.source` is jaeger, at most as many Jaeger queries at once as
/// Prometheus ones, each within the source's timeout.
pub async fn cycle(
    source: &prometheus::PrometheusSource,
    jaeger: Option<&jaeger::JaegerSource>,
    slos: &[&ServiceLevelObjective],
) -> prometheus::Cycle {
    use futures::StreamExt;

    let specs: Vec<_> = slos.iter().map(|s| &s.spec).collect();
    let mut cycle = source.observe(&specs).await;
    let budgets = budget::read(source, slos).await;
    cycle.queries += budgets.queries;
    cycle.failed += budgets.failed;
    for (reading, budget) in cycle.readings.iter_mut().zip(budgets.readings) {
        match budget {
            Ok(b) => {
                if b.budget.worst().is_none() {
                    reading.missing.insert(
                        ERROR_BUDGET.into(),
                        "no data: no requests in the window for any objective".into(),
                    );
                }
                reading.budget = Some(b);
            }
            Err(why) => {
                reading.missing.insert(ERROR_BUDGET.into(), why.to_string());
            }
        }
    }
    let window = source.window.0;
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    // (SLO index, service, operation) of every SLO whose latency comes from traces.
    let wanted: Vec<(usize, String, Option<String>)> = slos
        .iter()
        .enumerate()
        .take(cycle.readings.len())
        .filter(|(_, slo)| slo.spec.indicators.source == IndicatorSource::Jaeger)
        .map(|(i, slo)| {
            let j = slo.spec.indicators.jaeger.as_ref();
            let service = j
                .and_then(|j| j.service.clone())
                .unwrap_or_else(|| slo.spec.service.clone());
            (i, service, j.and_then(|j| j.operation.clone()))
        })
        .collect();
    let Some(jaeger) = jaeger else {
        for (i, _, _) in wanted {
            cycle.readings[i].missing.insert(
                "latency".into(),
                "indicators.source is jaeger, and no Jaeger URL is configured".into(),
            );
        }
        return cycle;
    };
    let answers: Vec<_> = futures::stream::iter(wanted)
        .map(|(i, service, operation)| async move {
            let p = jaeger
                .percentiles(&service, operation.as_deref(), window, now_us)
                .await;
            (i, p)
        })
        .buffer_unordered(source.concurrency.max(1))
        .collect()
        .await;
    for (i, answer) in answers {
        match answer {
            Ok(p) => cycle.readings[i].observation.latency = p,
            Err(e) => {
                cycle.readings[i]
                    .missing
                    .insert("latency".into(), e.to_string());
            }
        }
    }
    cycle
}
