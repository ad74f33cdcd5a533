//! `ServiceLevelObjective` (governor.dev/v1alpha1): what an SRE writes, and the
//! status Governor reports back. Doc comments here become the CRD's descriptions.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::{Duration, Latency};

/// Most decisions kept in `status.decisions`, newest last.
pub const DECISION_LOG_LIMIT: usize = 20;

/// A service-level objective that Governor keeps a workload inside, at the least cost,
/// by tuning its replicas, connection-pool size and cache warming.
// clippy reads repeated `type_ = ...` inside separate printcolumn(...) groups as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "governor.dev",
    version = "v1alpha1",
    kind = "ServiceLevelObjective",
    plural = "servicelevelobjectives",
    singular = "servicelevelobjective",
    shortname = "gslo",
    category = "governor",
    namespaced,
    status = "ServiceLevelObjectiveStatus",
    derive = "PartialEq",
    doc = "A service-level objective that Governor keeps a workload inside, at the least cost.",
    printcolumn(
        name = "P99",
        type_ = "string",
        description = "Observed P99 latency",
        json_path = ".status.observed.p99"
    ),
    printcolumn(
        name = "Target",
        type_ = "string",
        description = "The tightest latency objective: the highest quantile that has a target",
        json_path = ".status.tightestTarget"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        description = "Current replicas",
        json_path = ".status.replicas.current"
    ),
    printcolumn(
        name = "Desired",
        type_ = "integer",
        description = "Replicas Governor wants",
        json_path = ".status.replicas.desired"
    ),
    printcolumn(
        name = "State",
        type_ = "string",
        description = "Objective state: Met, AtRisk, Breached or Unknown",
        json_path = ".status.objectiveState"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Whether Governor reads the signals and reaches the target",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("!has(self.connectionPool) || self.scaling.minReplicas * self.connectionPool.minSize <= int(double(self.connectionPool.database.maxConnections) * self.connectionPool.database.budgetRatio) - self.connectionPool.database.reservedConnections").message("minReplicas x connectionPool.minSize exceeds the database connection budget").field_path(".connectionPool.minSize"))]
#[serde(rename_all = "camelCase")]
pub struct ServiceLevelObjectiveSpec {
    /// The logical service name, as it appears in metric labels (see
    /// `indicators.prometheus.serviceLabel`) and as the Jaeger service name.
    #[schemars(length(min = 1, max = 253))]
    pub service: String,

    /// The scalable workload Governor tunes: a Deployment, a StatefulSet, or any
    /// resource with a scale subresource, in the SLO's namespace.
    pub target_ref: TargetRef,

    /// The objectives: latency per percentile, error rate, availability, window.
    pub objectives: Objectives,

    /// Where the signals come from. Defaults to Prometheus with OpenTelemetry
    /// semantic-convention metric names.
    #[serde(default)]
    pub indicators: Indicators,

    /// Replica bounds, rate limits and stabilization.
    #[serde(default)]
    pub scaling: Scaling,

    /// The application's database connection pool. When absent Governor does not
    /// tune the pool, and the database budget is not enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPool>,

    /// Cache hit-rate target and warming. When absent Governor never warms caches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<Cache>,

    /// Burn-rate alerting on this objective's error budget.
    #[serde(default)]
    pub alerting: Alerting,

    /// How far under each latency target Governor plans. When absent: a fixed
    /// 90 % of each target. `policy: BudgetAware` plans closer to the target
    /// while the error budget is ahead of its linear burn schedule, and further
    /// under it while behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headroom: Option<Headroom>,
}

/// A reference to the workload to scale.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// API version of the target, e.g. "apps/v1".
    #[serde(default = "default_target_api_version")]
    #[schemars(length(min = 1, max = 253))]
    pub api_version: String,
    /// Kind of the target, e.g. "Deployment" or "StatefulSet".
    #[serde(default = "default_target_kind")]
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
    /// Name of the target, in the SLO's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

fn default_target_api_version() -> String {
    "apps/v1".into()
}
fn default_target_kind() -> String {
    "Deployment".into()
}

/// The objectives this service is held to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.latency.p50) || has(self.latency.p90) || has(self.latency.p95) || has(self.latency.p99) || has(self.latency.p999) || has(self.errorRate) || has(self.availability)").message("at least one objective is required: a latency percentile, errorRate or availability"))]
#[serde(rename_all = "camelCase")]
pub struct Objectives {
    /// Latency targets per percentile. Each is also read as a ratio SLI: "p99: 100ms"
    /// means at least 99 % of requests finish within 100 ms.
    #[serde(default)]
    pub latency: LatencyObjectives,

    /// Highest acceptable share of failed requests, in (0, 1]; 0.001 is 0.1 %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0.0 && self <= 1.0").message("must be a ratio in (0, 1], e.g. 0.001 for 0.1 %"))]
    pub error_rate: Option<f64>,

    /// Lowest acceptable share of successful requests, in (0, 1); 0.999 is 99.9 %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0.0 && self < 1.0").message("must be a ratio in (0, 1), e.g. 0.999 for 99.9 %"))]
    pub availability: Option<f64>,

    /// The SLO window over which the error budget is computed.
    #[serde(default = "default_window")]
    pub window: Duration,

    /// How often Governor evaluates this SLO.
    #[serde(default = "default_evaluation_interval")]
    pub evaluation_interval: Duration,
}

fn default_window() -> Duration {
    Duration::from_secs(30 * 86_400)
}
fn default_evaluation_interval() -> Duration {
    Duration::from_secs(15)
}

/// Latency targets per percentile; each must be at least the one below it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new("!has(self.p50) || !has(self.p90) || duration(self.p50) <= duration(self.p90)").message("p50 must be <= p90").field_path(".p50"))]
#[x_kube(validation = Rule::new("!has(self.p90) || !has(self.p95) || duration(self.p90) <= duration(self.p95)").message("p90 must be <= p95").field_path(".p90"))]
#[x_kube(validation = Rule::new("!has(self.p95) || !has(self.p99) || duration(self.p95) <= duration(self.p99)").message("p95 must be <= p99").field_path(".p95"))]
#[x_kube(validation = Rule::new("!has(self.p90) || !has(self.p99) || duration(self.p90) <= duration(self.p99)").message("p90 must be <= p99").field_path(".p90"))]
#[x_kube(validation = Rule::new("!has(self.p99) || !has(self.p999) || duration(self.p99) <= duration(self.p999)").message("p99 must be <= p999").field_path(".p99"))]
pub struct LatencyObjectives {
    /// Median latency target, e.g. "100ms".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<Latency>,
    /// 90th-percentile latency target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90: Option<Latency>,
    /// 95th-percentile latency target (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95: Option<Latency>,
    /// 99th-percentile latency target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<Latency>,
    /// 99.9th-percentile latency target (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p999: Option<Latency>,
}

impl LatencyObjectives {
    /// The set targets as (quantile, target), lowest quantile first.
    pub fn targets(&self) -> Vec<(crate::Quantile, Latency)> {
        crate::Quantile::ALL
            .into_iter()
            .filter_map(|q| self.get(q).map(|t| (q, t)))
            .collect()
    }

    /// The tightest target: the highest quantile that has one (the smallest
    /// share of slow requests allowed), as `p99 100ms`.
    pub fn tightest(&self) -> Option<String> {
        let (q, target) = self.targets().pop()?;
        Some(format!("{} {target}", q.name()))
    }

    /// The target for `q`, when set.
    pub fn get(&self, q: crate::Quantile) -> Option<Latency> {
        use crate::Quantile::*;
        match q {
            P50 => self.p50,
            P90 => self.p90,
            P95 => self.p95,
            P99 => self.p99,
            P999 => self.p999,
        }
    }
}

/// Which backend the latency and traffic signals come from.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum IndicatorSource {
    /// Prometheus metrics (histograms, counters, gauges).
    #[default]
    #[serde(rename = "prometheus")]
    Prometheus,
    /// Trace-derived latency from Jaeger, for services without histograms.
    /// Traffic, cache and pool signals still come from Prometheus.
    #[serde(rename = "jaeger")]
    Jaeger,
}

/// Signal sources and how to query them.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new("self.source != 'jaeger' || has(self.jaeger)").message("source jaeger requires the jaeger block").field_path(".jaeger"))]
#[serde(rename_all = "camelCase")]
pub struct Indicators {
    /// Where latency is read from: "prometheus" (default) or "jaeger".
    #[serde(default)]
    pub source: IndicatorSource,
    /// Prometheus metric names, label matchers and raw-PromQL overrides.
    #[serde(default)]
    pub prometheus: PrometheusIndicators,
    /// Jaeger service and operation, when `source` is "jaeger".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jaeger: Option<JaegerIndicators>,
}

/// Prometheus queries for each signal. Every signal has an OpenTelemetry
/// semantic-convention default; set `metric` to rename it, or `query` to replace
/// the whole expression with raw PromQL.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusIndicators {
    /// The label whose value is `spec.service` on every series of this service.
    #[serde(default = "default_service_label")]
    #[schemars(regex(pattern = r"^[a-zA-Z_][a-zA-Z0-9_]*$"), length(max = 128))]
    pub service_label: String,

    /// Extra equality matchers added to every query, e.g. `http_route: /api/stories`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend(
        "maxProperties" = 32,
        "additionalProperties" = {"type": "string", "maxLength": MAX_MATCHER_VALUE}
    ))]
    #[x_kube(validation = Rule::new("self.all(k, k.matches('^[a-zA-Z_][a-zA-Z0-9_]*$') && !k.startsWith('__'))").message("label names must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __"))]
    #[x_kube(validation = Rule::new("self.all(k, size(k) <= 128)").message("label names must be at most 128 characters"))]
    pub labels: BTreeMap<String, String>,

    /// Request latency histogram.
    #[serde(default)]
    pub latency: LatencySignal,
    /// Request rate (a counter of requests).
    #[serde(default = "default_requests")]
    pub requests: Signal,
    /// Failed requests: the request counter restricted to failing status codes.
    #[serde(default)]
    pub errors: ErrorSignal,
    /// Cache hits (a counter).
    #[serde(default = "default_cache_hits")]
    pub cache_hits: Signal,
    /// Cache misses (a counter).
    #[serde(default = "default_cache_misses")]
    pub cache_misses: Signal,
    /// Connections in use (a gauge; the default selects `state="used"`).
    #[serde(default = "default_pool_in_use")]
    pub pool_in_use: Signal,
    /// Pool size limit per instance (a gauge).
    #[serde(default = "default_pool_max")]
    pub pool_max: Signal,
    /// Requests waiting for a pooled connection (a gauge).
    #[serde(default = "default_pool_pending")]
    pub pool_pending: Signal,
    /// Time spent waiting for a pooled connection (a histogram, seconds).
    #[serde(default = "default_pool_wait_time")]
    pub pool_wait_time: Signal,
}

impl Default for PrometheusIndicators {
    fn default() -> Self {
        Self {
            service_label: default_service_label(),
            labels: BTreeMap::new(),
            latency: LatencySignal::default(),
            requests: default_requests(),
            errors: ErrorSignal::default(),
            cache_hits: default_cache_hits(),
            cache_misses: default_cache_misses(),
            pool_in_use: default_pool_in_use(),
            pool_max: default_pool_max(),
            pool_pending: default_pool_pending(),
            pool_wait_time: default_pool_wait_time(),
        }
    }
}

/// Default metric names (OpenTelemetry semantic conventions as exported to Prometheus).
pub mod metric_names {
    pub const REQUEST_DURATION: &str = "http_server_request_duration_seconds";
    pub const REQUESTS: &str = "http_server_request_duration_seconds_count";
    pub const CACHE_HITS: &str = "cache_hits_total";
    pub const CACHE_MISSES: &str = "cache_misses_total";
    pub const POOL_USAGE: &str = "db_client_connections_usage";
    pub const POOL_MAX: &str = "db_client_connections_max";
    pub const POOL_PENDING: &str = "db_client_connections_pending_requests";
    pub const POOL_WAIT_TIME: &str = "db_client_connections_wait_time_seconds";
    pub const STATUS_CODE_LABEL: &str = "http_response_status_code";
}

fn default_service_label() -> String {
    "service".into()
}
fn signal(metric: &str) -> Signal {
    Signal {
        metric: Some(metric.into()),
        query: None,
    }
}
fn default_requests() -> Signal {
    signal(metric_names::REQUESTS)
}
fn default_cache_hits() -> Signal {
    signal(metric_names::CACHE_HITS)
}
fn default_cache_misses() -> Signal {
    signal(metric_names::CACHE_MISSES)
}
fn default_pool_in_use() -> Signal {
    signal(metric_names::POOL_USAGE)
}
fn default_pool_max() -> Signal {
    signal(metric_names::POOL_MAX)
}
fn default_pool_pending() -> Signal {
    signal(metric_names::POOL_PENDING)
}
fn default_pool_wait_time() -> Signal {
    signal(metric_names::POOL_WAIT_TIME)
}

/// One signal: a metric name, or a raw PromQL expression that replaces the default query.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.metric) || has(self.query)").message("set metric or query"))]
#[serde(rename_all = "camelCase")]
pub struct Signal {
    /// Prometheus metric name. Defaults to the OpenTelemetry name when the whole
    /// signal is left out; not needed when `query` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"), length(max = 256))]
    pub metric: Option<String>,
    /// Raw PromQL replacing the default query; it must return one series per service
    /// (grouped by the service label) and is parsed when the SLO is validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub query: Option<String>,
}

/// The kind of latency histogram.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum HistogramKind {
    /// Classic histogram: `<metric>_bucket` series with an `le` label.
    #[default]
    #[serde(rename = "classic")]
    Classic,
    /// Prometheus native histogram.
    #[serde(rename = "native")]
    Native,
}

/// The request-latency histogram.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatencySignal {
    /// Histogram base name (without `_bucket`), in seconds.
    #[serde(default = "default_latency_metric")]
    #[schemars(regex(pattern = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"), length(max = 256))]
    pub metric: String,
    /// "classic" (`_bucket` series, default) or "native".
    #[serde(default)]
    pub histogram: HistogramKind,
    /// Raw PromQL for the bucket rates Governor takes quantiles of: for a classic
    /// histogram, rates by `le` (and the service label); for a native one, the histogram rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub query: Option<String>,
}

impl Default for LatencySignal {
    fn default() -> Self {
        Self {
            metric: default_latency_metric(),
            histogram: HistogramKind::Classic,
            query: None,
        }
    }
}

fn default_latency_metric() -> String {
    metric_names::REQUEST_DURATION.into()
}

/// Failed requests, selected from the request counter by status code.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorSignal {
    /// Request counter that carries the status label.
    #[serde(default = "default_errors_metric")]
    #[schemars(regex(pattern = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"), length(max = 256))]
    pub metric: String,
    /// Label holding the response status code.
    #[serde(default = "default_status_label")]
    #[schemars(regex(pattern = r"^[a-zA-Z_][a-zA-Z0-9_]*$"), length(max = 128))]
    pub status_label: String,
    /// Regular expression (RE2, fully anchored) of failing status codes.
    #[serde(default = "default_status_regex")]
    #[schemars(length(min = 1, max = 256))]
    pub status_regex: String,
    /// Raw PromQL for failed requests per second, replacing the default query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub query: Option<String>,
}

impl Default for ErrorSignal {
    fn default() -> Self {
        Self {
            metric: default_errors_metric(),
            status_label: default_status_label(),
            status_regex: default_status_regex(),
            query: None,
        }
    }
}

fn default_errors_metric() -> String {
    metric_names::REQUESTS.into()
}
fn default_status_label() -> String {
    metric_names::STATUS_CODE_LABEL.into()
}
fn default_status_regex() -> String {
    "5..".into()
}

/// Trace-derived latency from Jaeger.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JaegerIndicators {
    /// Jaeger service name; defaults to `spec.service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service: Option<String>,
    /// Only spans of this operation (e.g. "GET /api/stories"); all operations when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub operation: Option<String>,
}

/// Whether Governor writes to the target or only reports what it would do.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Mode {
    /// Decide and apply.
    #[default]
    Enforce,
    /// Decide and report (status, Events, metrics), never write to the target.
    DryRun,
}

/// Replica bounds and how fast they may change.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("minReplicas must be <= maxReplicas").field_path(".minReplicas"))]
#[serde(rename_all = "camelCase")]
pub struct Scaling {
    /// Fewest replicas, whatever the load.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1, max = 10000))]
    pub min_replicas: i32,
    /// Most replicas, whatever the load.
    #[serde(default = "default_max_replicas")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_replicas: i32,
    /// How fast replicas may be added.
    #[serde(default = "ScalingRate::default_up")]
    pub scale_up: ScalingRate,
    /// How fast replicas may be removed, and how long to wait before removing any.
    #[serde(default = "ScaleDown::default")]
    pub scale_down: ScaleDown,
    /// Time from a scale-up request until a new pod serves traffic; Governor forecasts
    /// load over this horizon.
    #[serde(default = "default_pod_startup")]
    pub pod_startup_time: Duration,
    /// "Enforce" (default) or "DryRun".
    #[serde(default)]
    pub mode: Mode,
    /// When an HorizontalPodAutoscaler targets the same workload, raise and lower its
    /// minReplicas instead of writing the scale subresource, so the two never fight.
    #[serde(default)]
    pub drive_hpa: bool,
}

impl Default for Scaling {
    fn default() -> Self {
        Self {
            min_replicas: default_min_replicas(),
            max_replicas: default_max_replicas(),
            scale_up: ScalingRate::default_up(),
            scale_down: ScaleDown::default(),
            pod_startup_time: default_pod_startup(),
            mode: Mode::Enforce,
            drive_hpa: false,
        }
    }
}

fn default_min_replicas() -> i32 {
    1
}
fn default_max_replicas() -> i32 {
    10
}
fn default_pod_startup() -> Duration {
    Duration::from_secs(30)
}

/// A rate limit: per `period`, at most the larger of `maxPods` and `maxPercent` % of
/// the current replicas.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRate {
    /// Most pods changed per period.
    #[schemars(range(min = 1, max = 10000))]
    pub max_pods: i32,
    /// Most change per period, as a percentage of current replicas.
    #[schemars(range(min = 1, max = 1000))]
    pub max_percent: i32,
    /// The period the limits apply to.
    pub period: Duration,
}

impl ScalingRate {
    fn default_up() -> Self {
        Self {
            max_pods: 4,
            max_percent: 100,
            period: Duration::from_secs(15),
        }
    }
}

/// Scale-down limits.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleDown {
    /// Most pods removed per period.
    #[serde(default = "default_down_pods")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_pods: i32,
    /// Most removed per period, as a percentage of current replicas.
    #[serde(default = "default_down_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub max_percent: i32,
    /// The period the limits apply to.
    #[serde(default = "default_down_period")]
    pub period: Duration,
    /// Replicas are only removed when every recommendation within this window allowed it.
    #[serde(default = "default_stabilization")]
    pub stabilization_window: Duration,
}

impl Default for ScaleDown {
    fn default() -> Self {
        Self {
            max_pods: default_down_pods(),
            max_percent: default_down_percent(),
            period: default_down_period(),
            stabilization_window: default_stabilization(),
        }
    }
}

fn default_down_pods() -> i32 {
    1
}
fn default_down_percent() -> i32 {
    50
}
fn default_down_period() -> Duration {
    Duration::from_secs(60)
}
fn default_stabilization() -> Duration {
    Duration::from_secs(300)
}

/// The application's database connection pool.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.minSize <= self.maxSize").message("minSize must be <= maxSize").field_path(".minSize"))]
#[serde(rename_all = "camelCase")]
pub struct ConnectionPool {
    /// The ConfigMap key holding the per-instance pool size, which Governor writes.
    pub config_map: ConfigMapKey,
    /// Smallest pool size per instance.
    #[serde(default = "default_pool_min")]
    #[schemars(range(min = 1, max = 100000))]
    pub min_size: i32,
    /// Largest pool size per instance.
    #[schemars(range(min = 1, max = 100000))]
    pub max_size: i32,
    /// The database all instances share.
    pub database: Database,
    /// Also stamp a pod-template annotation with the pool size, so pods restart for
    /// applications that cannot reload the ConfigMap.
    #[serde(default)]
    pub roll_pods: bool,
}

fn default_pool_min() -> i32 {
    1
}

/// A ConfigMap key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct ConfigMapKey {
    /// ConfigMap name, in the SLO's namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key within the ConfigMap.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// The database and its connection budget: replicas x pool size never exceeds
/// floor(maxConnections x budgetRatio) - reservedConnections.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Database {
    /// The database's max_connections.
    #[schemars(range(min = 1, max = 1000000))]
    pub max_connections: i32,
    /// Share of maxConnections Governor may hand out, in (0, 1].
    #[serde(default = "default_budget_ratio")]
    #[x_kube(validation = Rule::new("self > 0.0 && self <= 1.0").message("must be a ratio in (0, 1], e.g. 0.8"))]
    pub budget_ratio: f64,
    /// Connections kept for other consumers of the same database (migrations, jobs,
    /// other services).
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000000))]
    pub reserved_connections: i32,
}

fn default_budget_ratio() -> f64 {
    0.8
}

impl Database {
    /// Connections Governor may hand out across all replicas; never negative.
    pub fn budget(&self) -> i64 {
        let ratio = if self.budget_ratio.is_finite() {
            self.budget_ratio.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let raw = (f64::from(self.max_connections) * ratio).floor() as i64;
        (raw - i64::from(self.reserved_connections)).max(0)
    }
}

/// Cache hit-rate target and warming.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cache {
    /// Hit rate below which the cache is considered cold, in (0, 1].
    #[serde(default = "default_hit_rate_target")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub hit_rate_target: f64,
    /// How to warm the cache. When absent Governor reports a cold cache but does not act.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_up: Option<WarmUpAction>,
    /// Least time between two warm-ups.
    #[serde(default = "default_cooldown")]
    pub cooldown: Duration,
    /// Warm new replicas as part of every scale-up.
    #[serde(default)]
    pub warm_before_scale_up: bool,
}

fn default_hit_rate_target() -> f64 {
    0.8
}
fn default_cooldown() -> Duration {
    Duration::from_secs(600)
}

/// Exactly one warming action: a Job from a CronJob the author made, or HTTP
/// requests to a Service. Both run in the SLO's namespace and reach nothing the
/// author could not reach with their own rights.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.job) != has(self.http)").message("exactly one warming action is required: job or http"))]
#[serde(rename_all = "camelCase")]
pub struct WarmUpAction {
    /// A Job created from a CronJob's jobTemplate (owned by the SLO; never two at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<WarmUpJob>,
    /// GET or HEAD requests to a Service in the SLO's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<WarmUpHttp>,
}

/// A warm-up Job, instantiated from a CronJob in the SLO's namespace the way
/// `kubectl create job --from=cronjob/NAME` does. The author creates the
/// CronJob (usually with `suspend: true`) with their own rights; Governor only
/// copies its jobTemplate.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("!has(self.template)").message(JOB_TEMPLATE_GONE))]
#[serde(rename_all = "camelCase")]
pub struct WarmUpJob {
    /// Name of the CronJob, in the SLO's namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(
        length(min = 1, max = 52),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub from_cron_job: String,
    /// Seconds a finished Job is kept (ttlSecondsAfterFinished).
    #[serde(default = "default_job_ttl")]
    #[schemars(range(min = 0, max = 604800))]
    pub ttl_seconds_after_finished: i32,
    /// No longer accepted (an inline pod template ran with Governor's rights);
    /// kept in the schema only so that the API server refuses it with a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub template: Option<serde_json::Value>,
}

/// What `governor validate` and the API server say about the old inline template.
pub const JOB_TEMPLATE_GONE: &str = "job.template is no longer accepted: create a CronJob (suspend: true) with this jobTemplate in the SLO's namespace and name it in job.fromCronJob";
/// What they say about the old free URL.
pub const HTTP_URL_GONE: &str = "http.url and http.routes are no longer accepted: name a Service in the SLO's namespace in http.service, its port in http.port, and the paths in http.paths";

fn default_job_ttl() -> i32 {
    600
}

/// HTTP methods allowed for warm-up requests: neither changes state.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum HttpMethod {
    #[default]
    GET,
    HEAD,
}

/// Most paths one HTTP warm-up may request.
pub const WARM_UP_MAX_PATHS: usize = 100;
/// Longest timeout of one warm-up request.
pub const WARM_UP_MAX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Warm-up by HTTP requests to a Service in the SLO's namespace: GET or HEAD,
/// no redirects followed, response bodies discarded.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("!has(self.url) && !has(self.routes)").message(HTTP_URL_GONE))]
#[serde(rename_all = "camelCase")]
pub struct WarmUpHttp {
    /// Name of the Service, in the SLO's namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub service: String,
    /// The Service port requests go to.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// HTTP method: GET or HEAD.
    #[serde(default)]
    pub method: HttpMethod,
    /// Paths requested, each starting with "/"; at most 100.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 100), inner(length(max = 2048)))]
    #[x_kube(validation = Rule::new("self.all(r, r.startsWith('/'))").message("every path must start with /"))]
    pub paths: Vec<Route>,
    /// Timeout of each request, at most 30s.
    #[serde(default = "default_http_timeout")]
    pub timeout: Duration,
    /// No longer accepted; see `service`, `port` and `paths`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub url: Option<String>,
    /// No longer accepted; see `paths`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000), inner(length(max = 2048)))]
    pub routes: Option<Vec<Route>>,
}

/// A URL path.
pub type Route = String;

fn is_zero(n: &i32) -> bool {
    *n == 0
}

fn default_http_timeout() -> Duration {
    Duration::from_secs(10)
}

/// How much headroom Governor keeps under the latency targets.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum HeadroomPolicy {
    /// Plan latency at 90 % of each target, whatever the error budget.
    #[default]
    Fixed,
    /// Plan at up to `aheadAim` of each target while the error budget is ahead
    /// of its linear burn schedule, down to `behindAim` while behind; 90 %
    /// while the budget is unknown.
    BudgetAware,
}

/// The share of each latency target Governor plans for, and what moves it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.behindAim <= self.aheadAim").message("behindAim must be <= aheadAim").field_path(".behindAim"))]
#[serde(rename_all = "camelCase")]
pub struct Headroom {
    /// "Fixed" (90 % of each target) or "BudgetAware".
    #[serde(default)]
    pub policy: HeadroomPolicy,
    /// BudgetAware: the share of each latency target planned for while the
    /// error budget is well ahead of schedule, in [0.9, 1] (1 plans at the
    /// target itself, no headroom).
    #[serde(default = "default_ahead_aim")]
    #[x_kube(validation = Rule::new("self >= 0.9 && self <= 1.0").message(HEADROOM_AHEAD_RANGE))]
    pub ahead_aim: f64,
    /// BudgetAware: the share of each latency target planned for while the
    /// error budget is well behind schedule, in [0.5, 0.9].
    #[serde(default = "default_behind_aim")]
    #[x_kube(validation = Rule::new("self >= 0.5 && self <= 0.9").message(HEADROOM_BEHIND_RANGE))]
    pub behind_aim: f64,
}

impl Default for Headroom {
    fn default() -> Self {
        Self {
            policy: HeadroomPolicy::Fixed,
            ahead_aim: default_ahead_aim(),
            behind_aim: default_behind_aim(),
        }
    }
}

/// What `governor validate` and the API server say about `headroom.aheadAim`.
pub const HEADROOM_AHEAD_RANGE: &str =
    "must be a share of the target in [0.9, 1], e.g. 0.97 (never above the target itself)";
/// What they say about `headroom.behindAim`.
pub const HEADROOM_BEHIND_RANGE: &str =
    "must be a share of the target in [0.5, 0.9], e.g. 0.8 (more headroom than the fixed 90 %)";

fn default_ahead_aim() -> f64 {
    0.97
}
fn default_behind_aim() -> f64 {
    0.8
}

/// Longest value of an `alerting.labels` entry.
pub const MAX_ALERT_LABEL_VALUE: usize = 256;
/// Longest value of an `indicators.prometheus.labels` matcher.
pub const MAX_MATCHER_VALUE: usize = 1024;
/// Longest `alerting.runbookUrl`.
pub const MAX_URL: usize = 2048;

/// Burn-rate alerting on the error budget.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Alerting {
    /// Generate burn-rate alerts for this SLO.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Page tier: 14.4x burn over 1h and 5m, 6x over 6h and 30m (for a 30d window).
    #[serde(default = "default_true")]
    pub page: bool,
    /// Ticket tier: 3x burn over 1d and 2h, 1x over 3d and 6h (for a 30d window).
    #[serde(default = "default_true")]
    pub ticket: bool,
    /// Labels added to every alert, e.g. `team: roadtrip`. Values are literal
    /// text: `{{` and `}}` are refused, since Prometheus would expand them as a
    /// template when the alert fires.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend(
        "maxProperties" = 32,
        "additionalProperties" = {"type": "string", "maxLength": MAX_ALERT_LABEL_VALUE}
    ))]
    #[x_kube(validation = Rule::new("self.all(k, k.matches('^[a-zA-Z_][a-zA-Z0-9_]*$') && !k.startsWith('__'))").message("label names must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __"))]
    #[x_kube(validation = Rule::new("self.all(k, size(k) <= 128)").message("label names must be at most 128 characters"))]
    #[x_kube(validation = Rule::new("self.all(k, !self[k].contains('{{') && !self[k].contains('}}'))").message("label values must not contain {{ or }} (Prometheus would run them as a template)"))]
    pub labels: BTreeMap<String, String>,
    /// Below this request rate (requests per second) no alert fires: too little
    /// traffic to tell a burn from noise.
    #[serde(default = "default_min_request_rate")]
    #[schemars(range(min = 0.0))]
    pub min_request_rate: f64,
    /// When no histogram bucket boundary equals a latency target, use the nearest one
    /// for the ratio SLI instead of refusing.
    #[serde(default)]
    pub allow_nearest_bucket: bool,
    /// Runbook linked from every alert: an http:// or https:// URL, without `{{`
    /// or `}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("must be an http:// or https:// URL"))]
    #[x_kube(validation = Rule::new("!self.contains('{{') && !self.contains('}}')").message("must not contain {{ or }} (Prometheus would run them as a template)"))]
    pub runbook_url: Option<String>,
    /// Alert when the metrics the SLO is measured by are absent (the
    /// service stopped exporting them, or its labels changed): one alert per
    /// SLO, `SLOSignalAbsent` unless `routes.noData.alert` names another.
    #[serde(default = "default_true")]
    pub no_data: bool,
    /// Alert names, labels and annotations per tier, for routing.
    #[serde(default, skip_serializing_if = "AlertRoutes::is_empty")]
    pub routes: AlertRoutes,
}

/// Alert names, labels and annotations of each tier.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertRoutes {
    /// The page tier's burn-rate alerts.
    #[serde(default, skip_serializing_if = "AlertRoute::is_empty")]
    pub page: AlertRoute,
    /// The ticket tier's burn-rate alerts.
    #[serde(default, skip_serializing_if = "AlertRoute::is_empty")]
    pub ticket: AlertRoute,
    /// The alert on absent metrics (`alerting.noData`).
    #[serde(default, skip_serializing_if = "AlertRoute::is_empty")]
    pub no_data: AlertRoute,
}

impl AlertRoutes {
    pub fn is_empty(&self) -> bool {
        self.page.is_empty() && self.ticket.is_empty() && self.no_data.is_empty()
    }
}

/// Longest alert name, and longest annotation value of a route.
pub const MAX_ALERT_NAME: usize = 128;
pub const MAX_ANNOTATION_VALUE: usize = 2048;
/// Labels Governor sets on every alert of an SLO to name its series; a route
/// cannot set them.
pub const RESERVED_ALERT_LABELS: [&str; 5] = ["alertname", "namespace", "slo", "objective", "tier"];

/// How one tier's alerts are named and routed. Labels and annotations here
/// are added after `alerting.labels` and Governor's own (so `severity` and
/// `summary` can be replaced); values are literal text.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertRoute {
    /// Alert name instead of Governor's (`ErrorBudgetBurnPage`,
    /// `ErrorBudgetBurnTicket`, `SLOSignalAbsent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new("self.matches('^[a-zA-Z_:][a-zA-Z0-9_:]*$')").message("alert names must match [a-zA-Z_:][a-zA-Z0-9_:]*"))]
    pub alert: Option<String>,
    /// Labels on this tier's alerts, e.g. `severity: page`, `team: payments`.
    /// `alertname`, `namespace`, `slo`, `objective` and `tier` are Governor's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend(
        "maxProperties" = 32,
        "additionalProperties" = {"type": "string", "maxLength": MAX_ALERT_LABEL_VALUE}
    ))]
    #[x_kube(validation = Rule::new("self.all(k, k.matches('^[a-zA-Z_][a-zA-Z0-9_]*$') && !k.startsWith('__'))").message("label names must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __"))]
    #[x_kube(validation = Rule::new("self.all(k, size(k) <= 128)").message("label names must be at most 128 characters"))]
    #[x_kube(validation = Rule::new("self.all(k, !(k in ['alertname', 'namespace', 'slo', 'objective', 'tier']))").message("alertname, namespace, slo, objective and tier are labels Governor sets itself"))]
    #[x_kube(validation = Rule::new("self.all(k, !self[k].contains('{{') && !self[k].contains('}}'))").message("label values must not contain {{ or }} (Prometheus would run them as a template)"))]
    pub labels: BTreeMap<String, String>,
    /// Annotations on this tier's alerts, e.g. `runbook_url` for this tier
    /// (an http:// or https:// URL) or a `summary` of your own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend(
        "maxProperties" = 32,
        "additionalProperties" = {"type": "string", "maxLength": MAX_ANNOTATION_VALUE}
    ))]
    #[x_kube(validation = Rule::new("self.all(k, k.matches('^[a-zA-Z_][a-zA-Z0-9_]*$') && !k.startsWith('__'))").message("annotation names must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __"))]
    #[x_kube(validation = Rule::new("self.all(k, size(k) <= 128)").message("annotation names must be at most 128 characters"))]
    #[x_kube(validation = Rule::new("self.all(k, !self[k].contains('{{') && !self[k].contains('}}'))").message("annotation values must not contain {{ or }} (Prometheus would run them as a template)"))]
    #[x_kube(validation = Rule::new("self.all(k, !(k in ['runbook_url', 'dashboard_url']) || self[k].startsWith('http://') || self[k].startsWith('https://'))").message("runbook_url and dashboard_url must be http:// or https:// URLs"))]
    pub annotations: BTreeMap<String, String>,
}

impl AlertRoute {
    pub fn is_empty(&self) -> bool {
        self.alert.is_none() && self.labels.is_empty() && self.annotations.is_empty()
    }
}

impl Default for Alerting {
    fn default() -> Self {
        Self {
            enabled: true,
            page: true,
            ticket: true,
            labels: BTreeMap::new(),
            min_request_rate: default_min_request_rate(),
            allow_nearest_bucket: false,
            runbook_url: None,
            no_data: true,
            routes: AlertRoutes::default(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_min_request_rate() -> f64 {
    0.1
}

// ---------------------------------------------------------------------------
// Status

/// An objective is at risk above this share of its target: Governor plans
/// latency against it, and the dashboard colours cells by it.
pub const AT_RISK_RATIO: f64 = 0.9;

/// Whether the objectives are met right now.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ObjectiveState {
    /// Every objective is met with margin.
    Met,
    /// Met, but within the margin of a target or burning budget fast.
    AtRisk,
    /// At least one objective is not met.
    Breached,
    /// No usable data yet.
    #[default]
    Unknown,
}

/// What Governor observed, decided and did.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceLevelObjectiveStatus {
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Met, AtRisk, Breached or Unknown.
    #[serde(default)]
    pub objective_state: ObjectiveState,
    /// The tightest latency objective, e.g. `p99 100ms`: the highest quantile
    /// that has a target (the smallest share of slow requests allowed); the
    /// Target column of `kubectl get gslo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub tightest_target: Option<String>,
    /// The latest signals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<ObservedSignals>,
    /// Share of the error budget left in the window, in [0, 1] (may go below 0
    /// when overspent): the worst of `objectives`. Absent while unknown (no
    /// traffic in the window, or Prometheus unreadable), never 1 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_budget_remaining: Option<f64>,
    /// The error budget of each objective read as a ratio SLI: each latency
    /// target (requests slower than it are bad) and the error rate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 6))]
    pub objectives: Vec<ObjectiveBudget>,
    /// The share of each latency target Governor plans for now, and the error
    /// budget's position that set it (with `headroom.policy: BudgetAware`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headroom: Option<HeadroomStatus>,
    /// Current and desired replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<CurrentDesired>,
    /// Current and desired pool size per replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<CurrentDesired>,
    /// When the cache was last warmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_warm_up: Option<Time>,
    /// The downstream bottleneck Governor found, when adding replicas would not help.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub bottleneck: Option<String>,
    /// Ready, MetricsAvailable, ObjectiveMet, TargetFound, Bottleneck.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The last decisions, newest last (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub decisions: Vec<Decision>,
}

/// The error budget of one objective over the SLO's window:
/// `1 - (bad / total) / allowed`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectiveBudget {
    /// `latency-p50` ... `latency-p999` or `errors`: the `objective` label of
    /// the recording rules and alerts.
    #[schemars(length(max = 16))]
    pub objective: String,
    /// Share of this objective's error budget left; absent while unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_budget_remaining: Option<f64>,
}

/// The headroom Governor keeps now.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeadroomStatus {
    /// Share of each latency target planned for: 0.9 keeps 10 % headroom.
    pub aim: f64,
    /// How far the error budget is ahead of its linear burn schedule (negative:
    /// behind), as a share of the window's whole budget; absent while the
    /// budget is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_lead: Option<f64>,
}

/// Observed signals at one time. Missing values are absent, never zero.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedSignals {
    /// When the signals were read.
    pub time: Time,
    /// Observed median latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<Latency>,
    /// Observed 90th-percentile latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90: Option<Latency>,
    /// Observed 95th-percentile latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95: Option<Latency>,
    /// Observed 99th-percentile latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<Latency>,
    /// Observed 99.9th-percentile latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p999: Option<Latency>,
    /// Requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_rate: Option<f64>,
    /// Share of failed requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Share of cache lookups that hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_hit_rate: Option<f64>,
    /// Connections in use over pool size, across replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_utilization: Option<f64>,
}

impl ObservedSignals {
    /// The observed latency at `q`, when read.
    pub fn latency(&self, q: crate::Quantile) -> Option<Latency> {
        use crate::Quantile::*;
        match q {
            P50 => self.p50,
            P90 => self.p90,
            P95 => self.p95,
            P99 => self.p99,
            P999 => self.p999,
        }
    }
}

/// A current and a desired value.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct CurrentDesired {
    /// What the workload has now.
    pub current: i32,
    /// What Governor wants.
    pub desired: i32,
}

/// A knob Governor turns.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Knob {
    Replicas,
    PoolSize,
    CacheWarmUp,
}

impl Knob {
    /// The knob as a metric label and in Events: `replicas`, `pool_size`, `cache_warm_up`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Knob::Replicas => "replicas",
            Knob::PoolSize => "pool_size",
            Knob::CacheWarmUp => "cache_warm_up",
        }
    }

    /// The knob in prose: `replicas`, `pool size`, `cache warm-up`.
    pub const fn label(self) -> &'static str {
        match self {
            Knob::Replicas => "replicas",
            Knob::PoolSize => "pool size",
            Knob::CacheWarmUp => "cache warm-up",
        }
    }
}

/// One decision in the log.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// When it was decided.
    pub time: Time,
    /// Replicas, PoolSize or CacheWarmUp.
    pub knob: Knob,
    /// Value before (0 for a warm-up).
    pub from: i32,
    /// Value after (1 for a warm-up).
    pub to: i32,
    /// Why, in words.
    #[schemars(length(max = 1024))]
    pub reason: String,
    /// True when decided in DryRun mode and not applied.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}
