//! The dashboard's in-cluster read model: a reflector over every
//! ServiceLevelObjective (status carries the latest signals and decisions),
//! Prometheus range queries for history and one instant query for burn rates,
//! Jaeger for the slowest traces. Answers are cached for the refresh interval,
//! so the number of viewers does not change what the backends see: each key
//! (the snapshot, one SLO's history over one range, one SLO's traces) is
//! fetched once at a time however many ask, and keys never wait on each other
//! (`governor_dashboard::flight::Flights`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::observe::answer::{Data, Sample};
use governor_crds::{Quantile, ServiceLevelObjective};
use governor_dashboard::flight::Flights;
use governor_dashboard::read::series;
use governor_dashboard::{
    Error as ReadError, HistoryPoint, Range, ReadModel, SloView, Snapshot, TraceRow,
};
use kube::Client;

use crate::observe::jaeger::JaegerSource;
use crate::observe::prometheus::{PrometheusSource, QueryError, is_members_series};
use crate::observe::queries::{QueryPlan, Signal};

/// Answers by (namespace, name, what).
type Cached<T> = Flights<(String, String, &'static str), T>;

pub struct ClusterReader {
    store: crate::scope::Stores<ServiceLevelObjective>,
    synced: Arc<AtomicBool>,
    prometheus: PrometheusSource,
    prometheus_url: String,
    jaeger: Option<JaegerSource>,
    snapshot: Flights<(), Snapshot>,
    /// Snapshots made so far: the next one's version.
    versions: AtomicU64,
    history: Cached<Result<Vec<HistoryPoint>, ReadError>>,
    traces: Cached<Result<Vec<TraceRow>, ReadError>>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The overview's burn rates: per SLO, the fastest-burning objective's bad
/// share over 5 minutes over its allowed share, from Governor's own recordings.
pub fn burn_rate_query() -> String {
    format!(
        "max by (namespace, slo) ({} / on (namespace, slo, objective) {})",
        series::ERROR_RATIO_5M,
        series::ERROR_BUDGET
    )
}

impl ClusterReader {
    /// Starts the reflectors (every namespace, or those in scope) and returns the model.
    pub fn start(
        client: Client,
        scope: &crate::scope::Scope,
        prometheus: PrometheusSource,
        prometheus_url: String,
        jaeger: Option<JaegerSource>,
        refresh: Duration,
    ) -> Self {
        let store = crate::scope::reflect(&client, scope, "ServiceLevelObjectives");
        let synced = Arc::new(AtomicBool::new(false));
        let flag = synced.clone();
        let ready = store.clone();
        tokio::spawn(async move {
            if ready.wait_until_ready().await {
                flag.store(true, Ordering::SeqCst);
            }
        });
        Self {
            store,
            synced,
            prometheus,
            prometheus_url,
            jaeger,
            snapshot: Flights::new(refresh),
            versions: AtomicU64::new(0),
            history: Flights::new(refresh),
            traces: Flights::new(refresh),
        }
    }

    fn find(&self, namespace: &str, name: &str) -> Option<Arc<ServiceLevelObjective>> {
        self.store.state().into_iter().find(|s| {
            s.metadata.namespace.as_deref() == Some(namespace)
                && s.metadata.name.as_deref() == Some(name)
        })
    }

    /// Burn rates by (namespace, name): the fastest-burning objective over 5 minutes.
    async fn burn_rates(&self) -> Result<HashMap<(String, String), f64>, QueryError> {
        let mut out = HashMap::new();
        if let Data::Vector(v) = self.prometheus.query(&burn_rate_query()).await? {
            for s in v {
                let m = s.metric();
                if let (Some(ns), Some(slo)) = (m.get("namespace"), m.get("slo")) {
                    out.insert((ns.clone(), slo.clone()), s.sample().value());
                }
            }
        }
        Ok(out)
    }

    /// Every SLO from the reflector, with burn rates from Prometheus.
    async fn load_snapshot(&self) -> Snapshot {
        let mut warnings = Vec::new();
        let burn = match self.burn_rates().await {
            Ok(b) => b,
            Err(e) => {
                warnings.push(format!(
                    "Prometheus at {} is unreachable, so burn rates and history are missing: \
                     query failed: {e}",
                    self.prometheus_url
                ));
                HashMap::new()
            }
        };
        if !self.synced.load(Ordering::SeqCst) {
            warnings.push(
                "the list of ServiceLevelObjectives has not been read from the API server yet"
                    .into(),
            );
        }
        let mut views: Vec<SloView> = self
            .store
            .state()
            .iter()
            .map(|s| {
                let key = (
                    s.metadata.namespace.clone().unwrap_or_default(),
                    s.metadata.name.clone().unwrap_or_default(),
                );
                SloView::from_resource(s, burn.get(&key).copied())
            })
            .collect();
        views.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Snapshot {
            slos: Arc::new(views),
            warnings,
            version: self.versions.fetch_add(1, Ordering::SeqCst),
        }
    }

    async fn load_history(
        &self,
        slo: &ServiceLevelObjective,
        range: Range,
    ) -> Result<Vec<HistoryPoint>, ReadError> {
        let spec = &slo.spec;
        let end = now();
        let start = end - range.seconds();
        let step = range.step();
        let window = format!("{}s", step.max(60.0) as u64);
        let plan = QueryPlan::build(&[spec], &window);
        let wanted = history_queries(&plan, slo);
        let answers = futures::future::join_all(
            wanted
                .iter()
                .map(|(_, q, _)| self.prometheus.range(q, start, end, step)),
        )
        .await;
        let mut points: BTreeMap<i64, HistoryPoint> = BTreeMap::new();
        let mut failures = Vec::new();
        for ((what, _, planned), answer) in wanted.iter().zip(answers) {
            let matrix = match answer {
                Ok(m) => m,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            let picked = matrix.iter().find(|s| match planned {
                Some(i) => {
                    let q = &plan.queries[*i];
                    is_members_series(q, &q.members[0].1, &spec.service, s.metric())
                }
                None => true,
            });
            merge_samples(
                &mut points,
                what,
                picked.map(|s| s.samples()).unwrap_or_default(),
            );
        }
        if failures.len() == wanted.len() {
            return Err(ReadError::backend(
                format!("Prometheus at {} did not answer", self.prometheus_url),
                failures.swap_remove(0),
            ));
        }
        let has_errors = wanted.iter().any(|w| w.0 == "errors");
        Ok(with_error_ratios(points, has_errors))
    }
}

/// The range queries of one SLO's history: (what, query, the planned query it
/// came from), the planned signals first, then the operator's own series. A
/// latency the plan does not read from Prometheus (it comes from Jaeger, which
/// keeps no history) is charted from what the operator observed.
fn history_queries(
    plan: &QueryPlan,
    slo: &ServiceLevelObjective,
) -> Vec<(&'static str, String, Option<usize>)> {
    let ns = slo.metadata.namespace.clone().unwrap_or_default();
    let name = slo.metadata.name.clone().unwrap_or_default();
    let own = |metric: &str, extra: &str| {
        format!(
            "{metric}{{namespace=\"{}\", slo=\"{}\"{extra}}}",
            governor_crds::promql::escape_label_value(&ns),
            governor_crds::promql::escape_label_value(&name)
        )
    };
    let mut wanted: Vec<(&str, String, Option<usize>)> = Vec::new();
    for (i, q) in plan.queries.iter().enumerate() {
        let what = match q.signal {
            Signal::Latency(Quantile::P50) => "p50",
            Signal::Latency(Quantile::P90) => "p90",
            Signal::Latency(Quantile::P99) => "p99",
            Signal::Requests => "requests",
            Signal::Errors => "errors",
            _ => continue,
        };
        wanted.push((what, q.promql.clone(), Some(i)));
    }
    for q in [Quantile::P50, Quantile::P90, Quantile::P99] {
        if !wanted.iter().any(|w| w.0 == q.name()) {
            let quantile = format!(", quantile=\"{}\"", q.name());
            wanted.push((q.name(), own(series::LATENCY, &quantile), None));
        }
    }
    wanted.push(("replicas", own(series::REPLICAS, ""), None));
    wanted.push(("pool", own(series::POOL_SIZE, ""), None));
    wanted.push(("budget", own(series::BUDGET_REMAINING, ""), None));
    wanted
}

/// Puts one series' samples into the points by timestamp, as field `what`.
fn merge_samples(points: &mut BTreeMap<i64, HistoryPoint>, what: &str, samples: &[Sample]) {
    for sample in samples {
        let t = sample.timestamp();
        let v = Some(sample.value()).filter(|v| v.is_finite());
        let p = points.entry(t.round() as i64).or_insert(HistoryPoint {
            t,
            ..HistoryPoint::default()
        });
        match what {
            "p50" => p.p50 = v,
            "p90" => p.p90 = v,
            "p99" => p.p99 = v,
            "requests" => p.request_rate = v,
            // Errors per second until divided below.
            "errors" => p.error_rate = v,
            "replicas" => p.replicas = v,
            "pool" => p.pool_size = v,
            _ => p.budget_remaining = v,
        }
    }
}

/// The points in time order, errors per second turned into a ratio of requests.
fn with_error_ratios(points: BTreeMap<i64, HistoryPoint>, has_errors: bool) -> Vec<HistoryPoint> {
    points
        .into_values()
        .map(|mut p| {
            if has_errors {
                p.error_rate = match (p.error_rate, p.request_rate) {
                    (Some(e), Some(r)) if r > 0.0 => Some((e / r).min(1.0)),
                    // No requests: no error rate, not zero.
                    _ => None,
                };
            }
            p
        })
        .collect()
}

impl ReadModel for ClusterReader {
    async fn snapshot(&self) -> Snapshot {
        self.snapshot.get((), || self.load_snapshot()).await
    }

    async fn history(
        &self,
        namespace: &str,
        name: &str,
        range: Range,
    ) -> Result<Vec<HistoryPoint>, ReadError> {
        let Some(slo) = self.find(namespace, name) else {
            return Err(ReadError::not_found(namespace, name));
        };
        let key = (namespace.to_string(), name.to_string(), range.as_str());
        self.history
            .get(key, || self.load_history(&slo, range))
            .await
    }

    async fn slowest_traces(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<TraceRow>, ReadError> {
        let Some(jaeger) = &self.jaeger else {
            return Err(ReadError::NotConfigured(
                "Jaeger is not configured (governor dashboard --jaeger URL)".into(),
            ));
        };
        let Some(slo) = self.find(namespace, name) else {
            return Err(ReadError::not_found(namespace, name));
        };
        let service = slo
            .spec
            .indicators
            .jaeger
            .as_ref()
            .and_then(|j| j.service.clone())
            .unwrap_or_else(|| slo.spec.service.clone());
        let key = (namespace.to_string(), name.to_string(), "traces");
        self.traces
            .get(key, || async {
                let now_us = (now() * 1e6) as i64;
                jaeger
                    .slowest(&service, 10, Duration::from_secs(3600), now_us)
                    .await
                    .map(|rows| {
                        rows.into_iter()
                            .map(|t| TraceRow {
                                trace_id: t.trace_id,
                                operation: t.root_operation,
                                start: t.start_time_us as f64 / 1e6,
                                duration: t.duration_ms / 1000.0,
                            })
                            .collect()
                    })
                    .map_err(|e| ReadError::backend("Jaeger", e))
            })
            .await
    }

    fn ready(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(text: &str) -> ServiceLevelObjective {
        serde_yaml_ng::from_str(text).unwrap()
    }

    #[test]
    fn a_latency_read_from_jaeger_is_charted_from_what_the_operator_observed() {
        let voice = example(include_str!("../../examples/voice.yaml"));
        let plan = QueryPlan::build(&[&voice.spec], "60s");
        let wanted = history_queries(&plan, &voice);
        for q in ["p50", "p90", "p99"] {
            let (_, promql, planned) = wanted.iter().find(|w| w.0 == q).unwrap();
            assert_eq!(*planned, None, "{q}");
            assert_eq!(
                promql,
                &format!(
                    "governor_slo_latency_seconds{{namespace=\"roadtrip\", slo=\"roadtrip-voice\", quantile=\"{q}\"}}"
                )
            );
        }
        // Read from Prometheus: charted from the service's own histogram.
        let api = example(include_str!("../../examples/api.yaml"));
        let plan = QueryPlan::build(&[&api.spec], "60s");
        let wanted = history_queries(&plan, &api);
        assert!(wanted.iter().all(|w| !w.1.contains(series::LATENCY)));
        assert!(
            ["p50", "p90", "p99"]
                .iter()
                .all(|q| wanted.iter().any(|w| w.0 == *q && w.2.is_some()))
        );
    }
}
