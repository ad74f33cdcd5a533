//! The operator's own metrics, by the names `telemetry::metrics` declares.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::telemetry::metrics as names;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Category {
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Knob {
    pub knob: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SloKnob {
    pub namespace: String,
    pub slo: String,
    pub knob: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Slo {
    pub namespace: String,
    pub slo: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SloObjective {
    pub namespace: String,
    pub slo: String,
    pub objective: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SloQuantile {
    pub namespace: String,
    pub slo: String,
    pub quantile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SloState {
    pub namespace: String,
    pub slo: String,
    pub state: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub reconcile_duration: Histogram,
    pub reconcile_errors: Family<Category, Counter>,
    pub decisions: Family<Knob, Counter>,
    pub queries: Counter,
    pub query_failures: Counter,
    pub actuation_errors: Family<SloKnob, Counter>,
    pub leader: Gauge,
    pub slo_state: Family<SloState, Gauge>,
    pub budget: Family<Slo, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub objective_budget: Family<SloObjective, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub replicas: Family<Slo, Gauge>,
    pub pool_size: Family<Slo, Gauge>,
    pub latency: Family<SloQuantile, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub latency_aim: Family<Slo, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub latency_target: Family<SloQuantile, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub cache_hit_ratio: Family<Slo, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

/// Registers `metric` under a full name: prometheus-client adds `_total` to counters.
fn strip_total(name: &str) -> &str {
    name.strip_suffix("_total").unwrap_or(name)
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconcile_duration = Histogram::new([
            0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        let m = Self {
            reconcile_duration: reconcile_duration.clone(),
            reconcile_errors: Family::default(),
            decisions: Family::default(),
            queries: Counter::default(),
            query_failures: Counter::default(),
            actuation_errors: Family::default(),
            leader: Gauge::default(),
            slo_state: Family::default(),
            budget: Family::default(),
            objective_budget: Family::default(),
            replicas: Family::default(),
            pool_size: Family::default(),
            latency: Family::default(),
            latency_aim: Family::default(),
            latency_target: Family::default(),
            cache_hit_ratio: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "governor_reconcile_duration_seconds",
            "Time of one reconcile",
            reconcile_duration,
        );
        registry.register(
            strip_total(names::RECONCILE_ERRORS),
            "Failed reconciles by category",
            m.reconcile_errors.clone(),
        );
        registry.register(
            "governor_decisions",
            "Changes decided, by knob",
            m.decisions.clone(),
        );
        registry.register(
            strip_total(names::QUERIES),
            "Prometheus and Jaeger queries issued",
            m.queries.clone(),
        );
        registry.register(
            strip_total(names::QUERY_FAILURES),
            "Queries that failed or timed out",
            m.query_failures.clone(),
        );
        registry.register(
            strip_total(names::ACTUATION_ERRORS),
            "Failed writes to targets, by SLO and knob",
            m.actuation_errors.clone(),
        );
        registry.register(
            "governor_leader",
            "1 while this replica holds the lease",
            m.leader.clone(),
        );
        registry.register(
            names::SLO_STATE,
            "1 for each SLO's current objective state",
            m.slo_state.clone(),
        );
        registry.register(
            names::SLO_BUDGET_REMAINING,
            "Share of the error budget left",
            m.budget.clone(),
        );
        registry.register(
            names::SLO_OBJECTIVE_BUDGET_REMAINING,
            "Share of each objective's error budget left",
            m.objective_budget.clone(),
        );
        registry.register(
            names::SLO_REPLICAS,
            "Replicas of each SLO's target",
            m.replicas.clone(),
        );
        registry.register(
            names::SLO_POOL_SIZE,
            "Pool size per replica of each SLO's target",
            m.pool_size.clone(),
        );
        registry.register(
            names::SLO_LATENCY,
            "Latency of each SLO last observed, by quantile, in seconds",
            m.latency.clone(),
        );
        registry.register(
            names::SLO_LATENCY_AIM,
            "Share of each latency target the replicas are planned for (0.9: 10 % headroom)",
            m.latency_aim.clone(),
        );
        registry.register(
            names::SLO_LATENCY_TARGET,
            "Latency target of each SLO by quantile, in seconds",
            m.latency_target.clone(),
        );
        registry.register(
            names::SLO_CACHE_HIT_RATIO,
            "Cache hit rate of each SLO last observed",
            m.cache_hit_ratio.clone(),
        );
        Self { registry, ..m }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn set_state(&self, namespace: &str, slo: &str, state: &str) {
        for s in STATES {
            self.slo_state
                .get_or_create(&SloState {
                    namespace: namespace.into(),
                    slo: slo.into(),
                    state: s.into(),
                })
                .set(i64::from(s == state));
        }
    }
}

impl Metrics {
    /// Sets the SLO's budget series: the worst objective's and each
    /// objective's; an unknown budget removes its series (absent, never a
    /// stale or default value).
    pub fn set_budgets(
        &self,
        namespace: &str,
        name: &str,
        status: &governor_crds::ServiceLevelObjectiveStatus,
    ) {
        let slo = Slo {
            namespace: namespace.into(),
            slo: name.into(),
        };
        match status.error_budget_remaining {
            Some(b) => {
                self.budget.get_or_create(&slo).set(b);
            }
            None => {
                self.budget.remove(&slo);
            }
        }
        for objective in objectives() {
            let value = status
                .objectives
                .iter()
                .find(|o| o.objective == objective)
                .and_then(|o| o.error_budget_remaining);
            let labels = SloObjective {
                namespace: namespace.into(),
                slo: name.into(),
                objective,
            };
            match value {
                Some(v) => {
                    self.objective_budget.get_or_create(&labels).set(v);
                }
                None => {
                    self.objective_budget.remove(&labels);
                }
            }
        }
    }

    /// Counts a failed write of `knob` for `slo`.
    pub fn actuation_failed(
        &self,
        slo: &governor_crds::ServiceLevelObjective,
        knob: governor_crds::Knob,
    ) {
        use kube::ResourceExt;
        let labels = SloKnob {
            namespace: slo.namespace().unwrap_or_default(),
            slo: slo.name_any(),
            knob: knob.as_str().into(),
        };
        self.actuation_errors.get_or_create(&labels).inc();
    }

    /// Removes every series of a deleted SLO.
    pub fn forget(&self, namespace: &str, name: &str) {
        let slo = Slo {
            namespace: namespace.into(),
            slo: name.into(),
        };
        self.replicas.remove(&slo);
        self.pool_size.remove(&slo);
        self.budget.remove(&slo);
        self.latency_aim.remove(&slo);
        self.cache_hit_ratio.remove(&slo);
        for objective in objectives() {
            self.objective_budget.remove(&SloObjective {
                namespace: namespace.into(),
                slo: name.into(),
                objective,
            });
        }
        for q in governor_crds::Quantile::ALL {
            let series = SloQuantile {
                namespace: namespace.into(),
                slo: name.into(),
                quantile: q.name().into(),
            };
            self.latency.remove(&series);
            self.latency_target.remove(&series);
        }
        for state in STATES {
            self.slo_state.remove(&SloState {
                namespace: namespace.into(),
                slo: name.into(),
                state: state.into(),
            });
        }
        for knob in [
            governor_crds::Knob::Replicas,
            governor_crds::Knob::PoolSize,
            governor_crds::Knob::CacheWarmUp,
        ] {
            self.actuation_errors.remove(&SloKnob {
                namespace: namespace.into(),
                slo: name.into(),
                knob: knob.as_str().into(),
            });
        }
    }
}

/// Every objective id a budget series can carry (`latency-p99`, `errors`).
fn objectives() -> impl Iterator<Item = String> {
    governor_crds::Quantile::ALL
        .into_iter()
        .map(|q| format!("latency-{}", q.name()))
        .chain(std::iter::once("errors".to_string()))
}

/// The objective states, one series each.
const STATES: [&str; 4] = ["Met", "AtRisk", "Breached", "Unknown"];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_slo_leaves_no_latency_series() {
        let m = Metrics::new();
        let series = |slo: &str, q: &str| SloQuantile {
            namespace: "roadtrip".into(),
            slo: slo.into(),
            quantile: q.into(),
        };
        m.latency.get_or_create(&series("voice", "p99")).set(0.082);
        m.latency.get_or_create(&series("api", "p50")).set(0.024);
        let text = m.encode();
        assert!(
            text.contains(r#"governor_slo_latency_seconds{namespace="roadtrip",slo="voice",quantile="p99"} 0.082"#),
            "{text}"
        );
        m.forget("roadtrip", "voice");
        let text = m.encode();
        assert!(!text.contains(r#"slo="voice""#), "{text}");
        assert!(text.contains(r#"slo="api",quantile="p50""#), "{text}");
    }
}
