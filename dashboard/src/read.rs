//! What the dashboard reads: the views it renders and the [`ReadModel`] trait
//! its sources implement (the in-cluster reflector plus Prometheus, or `governor demo`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use governor_crds::Quantile;
use governor_crds::{
    AT_RISK_RATIO, CurrentDesired, Decision, ObjectiveBudget, ObjectiveState, ServiceLevelObjective,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde::Serialize;

/// Series the dashboard reads from Prometheus besides the service's own: the
/// operator exports the first four, the generated alert rules record the rest.
pub mod series {
    /// Replicas the target runs (labels `namespace`, `slo`).
    pub const REPLICAS: &str = "governor_slo_replicas";
    /// Pool size per replica (labels `namespace`, `slo`).
    pub const POOL_SIZE: &str = "governor_slo_pool_size";
    /// Share of the error budget left (labels `namespace`, `slo`).
    pub const BUDGET_REMAINING: &str = "governor_slo_error_budget_remaining";
    /// Latency Governor last observed, in seconds (labels `namespace`, `slo`,
    /// `quantile`: `p50`, `p90`, ...): the only history of a latency read
    /// from Jaeger, which keeps no time series.
    pub const LATENCY: &str = "governor_slo_latency_seconds";
    /// Bad share of requests over 5 minutes, per objective (recording rule).
    pub const ERROR_RATIO_5M: &str = "governor_slo:sli_error:ratio_rate5m";
    /// Allowed bad share, per objective (recording rule).
    pub const ERROR_BUDGET: &str = "governor_slo:error_budget:ratio";
}

/// A history range the detail page offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Range {
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "6h")]
    SixHours,
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
}

impl Range {
    pub const ALL: [Range; 4] = [Range::Hour, Range::SixHours, Range::Day, Range::Week];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::SixHours => "6h",
            Range::Day => "24h",
            Range::Week => "7d",
        }
    }

    pub fn seconds(self) -> f64 {
        match self {
            Range::Hour => 3600.0,
            Range::SixHours => 6.0 * 3600.0,
            Range::Day => 86_400.0,
            Range::Week => 7.0 * 86_400.0,
        }
    }

    /// Resolution of a range query over this range: about 240 points.
    pub fn step(self) -> f64 {
        (self.seconds() / 240.0).max(15.0)
    }
}

/// How one measured value stands against its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Standing {
    Met,
    Unknown,
    AtRisk,
    Breached,
}

impl Standing {
    /// `observed` against an upper `target`.
    pub fn of(observed: Option<f64>, target: Option<f64>) -> Self {
        match (observed, target) {
            (Some(v), Some(t)) if v.is_finite() && t > 0.0 => {
                if v > t {
                    Standing::Breached
                } else if v > t * AT_RISK_RATIO {
                    Standing::AtRisk
                } else {
                    Standing::Met
                }
            }
            _ => Standing::Unknown,
        }
    }

    /// `observed` against a lower bound `target` (a hit rate).
    pub fn of_floor(observed: Option<f64>, target: Option<f64>) -> Self {
        match (observed, target) {
            (Some(v), Some(t)) if v.is_finite() => {
                if v < t {
                    Standing::Breached
                } else if v < t + (1.0 - t) * (1.0 - AT_RISK_RATIO) {
                    Standing::AtRisk
                } else {
                    Standing::Met
                }
            }
            _ => Standing::Unknown,
        }
    }

    pub fn from_state(s: ObjectiveState) -> Self {
        match s {
            ObjectiveState::Met => Standing::Met,
            ObjectiveState::AtRisk => Standing::AtRisk,
            ObjectiveState::Breached => Standing::Breached,
            ObjectiveState::Unknown => Standing::Unknown,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Standing::Met,
            Standing::AtRisk,
            Standing::Breached,
            Standing::Unknown,
        ]
        .into_iter()
        .find(|x| x.css() == s)
    }

    /// CSS class and query value.
    pub fn css(self) -> &'static str {
        match self {
            Standing::Met => "met",
            Standing::AtRisk => "at-risk",
            Standing::Breached => "breached",
            Standing::Unknown => "unknown",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Standing::Met => "Met",
            Standing::AtRisk => "At risk",
            Standing::Breached => "Breached",
            Standing::Unknown => "Unknown",
        }
    }
}

/// One latency percentile against its target, in seconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyView {
    pub quantile: Quantile,
    pub target: Option<f64>,
    pub observed: Option<f64>,
    pub standing: Standing,
}

/// One SLO as the dashboard shows it. Missing values are `None`, never zero.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SloView {
    pub namespace: String,
    pub name: String,
    pub service: String,
    pub state: Standing,
    pub dry_run: bool,
    /// P50, P90 and P99, each against its target when one is set.
    pub latency: Vec<LatencyView>,
    pub request_rate: Option<f64>,
    pub error_rate: Option<f64>,
    pub error_rate_target: Option<f64>,
    /// Share of the window's error budget left (below 0 when overspent): the
    /// worst objective's.
    pub error_budget_remaining: Option<f64>,
    /// Each objective's budget left (`latency-p99`, `errors`), as the status says.
    pub objective_budgets: Vec<ObjectiveBudget>,
    /// How fast the budget burns now: 1 spends exactly the budget over the window.
    pub burn_rate: Option<f64>,
    pub replicas: Option<CurrentDesired>,
    pub pool_size: Option<CurrentDesired>,
    pub cache_hit_rate: Option<f64>,
    pub cache_hit_target: Option<f64>,
    pub bottleneck: Option<String>,
    /// When the signals were read (RFC 3339).
    pub observed_at: Option<String>,
    pub conditions: Vec<Condition>,
    /// Newest last.
    pub decisions: Vec<Decision>,
}

impl SloView {
    /// The view of a resource and its status; `burn_rate` comes from the source.
    pub fn from_resource(slo: &ServiceLevelObjective, burn_rate: Option<f64>) -> Self {
        let spec = &slo.spec;
        let status = slo.status.clone().unwrap_or_default();
        let observed = status.observed.as_ref();
        let targets = &spec.objectives.latency;
        // P50, P90 and P99 always; P95 and P99.9 when held or read.
        let latency = Quantile::ALL
            .into_iter()
            .map(|q| (q, targets.get(q), observed.and_then(|o| o.latency(q))))
            .filter(|(q, target, seen)| {
                matches!(q, Quantile::P50 | Quantile::P90 | Quantile::P99)
                    || target.is_some()
                    || seen.is_some()
            })
            .map(|(quantile, target, seen)| {
                let target = target.map(|t| t.as_secs_f64());
                let observed = seen.map(|t| t.as_secs_f64());
                LatencyView {
                    quantile,
                    target,
                    observed,
                    standing: Standing::of(observed, target),
                }
            })
            .collect();
        let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
        let error_rate_target = spec
            .objectives
            .error_rate
            .or(spec.objectives.availability.map(|a| 1.0 - a));
        SloView {
            namespace: slo.metadata.namespace.clone().unwrap_or_default(),
            name: slo.metadata.name.clone().unwrap_or_default(),
            service: spec.service.clone(),
            state: Standing::from_state(status.objective_state),
            dry_run: spec.scaling.mode == governor_crds::Mode::DryRun,
            latency,
            request_rate: finite(observed.and_then(|o| o.request_rate)),
            error_rate: finite(observed.and_then(|o| o.error_rate)),
            error_rate_target,
            error_budget_remaining: finite(status.error_budget_remaining),
            objective_budgets: status
                .objectives
                .iter()
                .map(|o| ObjectiveBudget {
                    objective: o.objective.clone(),
                    error_budget_remaining: finite(o.error_budget_remaining),
                })
                .collect(),
            burn_rate: finite(burn_rate),
            replicas: status.replicas,
            pool_size: status.pool_size,
            cache_hit_rate: finite(observed.and_then(|o| o.cache_hit_rate)),
            cache_hit_target: spec.cache.as_ref().map(|c| c.hit_rate_target),
            bottleneck: status.bottleneck.clone(),
            observed_at: observed.map(|o| o.time.0.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()),
            conditions: status.conditions.clone(),
            decisions: status.decisions.clone(),
        }
    }

    pub fn last_decision(&self) -> Option<&Decision> {
        self.decisions.last()
    }

    /// The worst observed/target ratio over the latency objectives.
    pub fn latency_pressure(&self) -> Option<f64> {
        self.latency
            .iter()
            .filter_map(|l| Some(l.observed? / l.target.filter(|t| *t > 0.0)?))
            .fold(None, |acc: Option<f64>, p| {
                Some(acc.map_or(p, |a| a.max(p)))
            })
    }
}

/// Every SLO at one moment, and what the source could not read.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub slos: Arc<Vec<SloView>>,
    /// Problems reading the sources (Prometheus unreachable, ...), shown as a banner.
    pub warnings: Vec<String>,
    /// Changes whenever the content may have: pages rendered from one version
    /// are served again until the next.
    pub version: u64,
}

/// One point of an SLO's history; `t` in Unix seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPoint {
    pub t: f64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub request_rate: Option<f64>,
    pub error_rate: Option<f64>,
    pub replicas: Option<f64>,
    pub pool_size: Option<f64>,
    pub budget_remaining: Option<f64>,
}

/// One of the slowest recent traces.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceRow {
    /// Jaeger trace id; empty when the source has no trace backend.
    pub trace_id: String,
    pub operation: String,
    /// Start, Unix seconds.
    pub start: f64,
    /// Seconds.
    pub duration: f64,
}

/// Where the dashboard's data comes from. Implementations cache what they
/// fetch so that many viewers do not multiply the queries a backend sees.
pub trait ReadModel: Send + Sync + 'static {
    /// Every SLO now.
    fn snapshot(&self) -> impl Future<Output = Snapshot> + Send;

    /// One SLO's history over `range`, oldest first; `Err` names the cause.
    fn history(
        &self,
        namespace: &str,
        name: &str,
        range: Range,
    ) -> impl Future<Output = Result<Vec<HistoryPoint>, crate::Error>> + Send;

    /// The slowest recent traces of one SLO's service, slowest first.
    fn slowest_traces(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Vec<TraceRow>, crate::Error>> + Send;

    /// Whether the source has synced once (for `/readyz`).
    fn ready(&self) -> bool {
        true
    }
}

/// A fixed read model: for tests, benchmarks and static snapshots.
#[derive(Clone, Debug)]
pub struct Fixed {
    pub snapshot: Snapshot,
    pub history: HashMap<(String, String), Result<Vec<HistoryPoint>, crate::Error>>,
    pub traces: Result<Vec<TraceRow>, crate::Error>,
}

impl Default for Fixed {
    fn default() -> Self {
        Self {
            snapshot: Snapshot::default(),
            history: HashMap::new(),
            traces: Ok(Vec::new()),
        }
    }
}

impl ReadModel for Fixed {
    async fn snapshot(&self) -> Snapshot {
        self.snapshot.clone()
    }

    async fn history(
        &self,
        namespace: &str,
        name: &str,
        range: Range,
    ) -> Result<Vec<HistoryPoint>, crate::Error> {
        let all = self
            .history
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_else(|| Ok(Vec::new()))?;
        let newest = all.iter().map(|p| p.t).fold(f64::NEG_INFINITY, f64::max);
        Ok(all
            .into_iter()
            .filter(|p| p.t >= newest - range.seconds())
            .collect())
    }

    async fn slowest_traces(&self, _: &str, _: &str) -> Result<Vec<TraceRow>, crate::Error> {
        self.traces.clone()
    }
}
