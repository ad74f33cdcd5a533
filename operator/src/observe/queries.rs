//! The query plan: which PromQL queries answer every SLO's signals in one cycle.
//! SLOs that read the same metric with the same label layout share one query,
//! grouped by their identifying labels, so the number of queries does not grow
//! with the number of SLOs. Every value from a resource is escaped here.

use std::collections::BTreeMap;

use governor_crds::promql::{escape_label_value, escape_regex_literal};
use governor_crds::{HistogramKind, IndicatorSource, Quantile, ServiceLevelObjectiveSpec as Spec};
use serde::Serialize;

/// What one query measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Signal {
    /// A latency quantile.
    Latency(Quantile),
    Requests,
    Errors,
    CacheHits,
    CacheMisses,
    PoolInUse,
    PoolMax,
    PoolPending,
    PoolWait,
    /// When the newest request sample was scraped (seconds since the epoch).
    SampleTime,
}

impl Signal {
    pub fn name(&self) -> String {
        match self {
            Signal::Latency(q) => format!("latency_{q}"),
            other => format!("{other:?}"),
        }
    }
}

/// One PromQL query and the SLOs it answers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedQuery {
    pub promql: String,
    pub signal: Signal,
    /// Labels the result is grouped by, in key order; empty for a raw query.
    pub by: Vec<String>,
    /// (SLO index, values of `by` that identify its series).
    pub members: Vec<(usize, Vec<String>)>,
    /// The service label, for picking a raw query's series.
    pub service_label: String,
    /// For a grouped query, its layout and window: what renders it again
    /// for part of its members.
    #[serde(skip)]
    grouped: Option<(Layout, String)>,
}

impl PlannedQuery {
    /// The same query for each half of its members, when it is a grouped
    /// query with more than one: a batch that failed, to retry without
    /// letting one member take the others' signals with it.
    pub fn split(&self) -> Option<(PlannedQuery, PlannedQuery)> {
        let (layout, window) = self.grouped.as_ref()?;
        if self.members.len() < 2 {
            return None;
        }
        let (a, b) = self.members.split_at(self.members.len() / 2);
        Some((
            grouped_query(layout.clone(), a.to_vec(), window),
            grouped_query(layout.clone(), b.to_vec(), window),
        ))
    }
}

/// The whole cycle's queries.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QueryPlan {
    pub queries: Vec<PlannedQuery>,
}

/// Quantiles always read for status, plus any the objectives name.
fn quantiles(spec: &Spec) -> Vec<Quantile> {
    let mut q = vec![Quantile::P50, Quantile::P90, Quantile::P99];
    for (quantile, _) in spec.objectives.latency.targets() {
        if !q.contains(&quantile) {
            q.push(quantile);
        }
    }
    q.sort_unstable();
    q
}

/// The layout that lets SLOs share a query.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Layout {
    signal: Signal,
    metric: String,
    service_label: String,
    label_names: Vec<String>,
    extra: String,
}

fn selector(matchers: &[(String, Vec<String>)], extra: &str) -> String {
    let mut parts: Vec<String> = matchers
        .iter()
        .map(|(label, values)| {
            let mut v = values.clone();
            v.sort();
            v.dedup();
            if v.len() == 1 {
                format!("{label}=\"{}\"", escape_label_value(&v[0]))
            } else {
                let alternatives: Vec<String> = v.iter().map(|x| escape_regex_literal(x)).collect();
                format!("{label}=~\"{}\"", alternatives.join("|"))
            }
        })
        .collect();
    if !extra.is_empty() {
        parts.push(extra.to_string());
    }
    format!("{{{}}}", parts.join(", "))
}

fn quantile_text(q: Quantile) -> String {
    format!("{}", q.value())
}

/// One signal an SLO wants: its metric, extra matcher and raw-PromQL override.
struct Wanted<'a> {
    signal: Signal,
    metric: &'a str,
    extra: String,
    query: &'a Option<String>,
}

impl<'a> Wanted<'a> {
    fn new(signal: Signal, metric: &'a str, extra: String, query: &'a Option<String>) -> Self {
        Self {
            signal,
            metric,
            extra,
            query,
        }
    }

    /// A signal named by an optional metric and no extra matcher.
    fn plain(signal: Signal, s: &'a governor_crds::Signal) -> Self {
        Self::new(
            signal,
            s.metric.as_deref().unwrap_or_default(),
            String::new(),
            &s.query,
        )
    }
}

/// The signals one SLO reads, in planning order.
fn wanted(spec: &Spec) -> Vec<Wanted<'_>> {
    let prom = &spec.indicators.prometheus;
    let mut out = Vec::new();
    if spec.indicators.source == IndicatorSource::Prometheus {
        let kind = match prom.latency.histogram {
            HistogramKind::Classic => "classic",
            HistogramKind::Native => "native",
        };
        for m in quantiles(spec) {
            out.push(Wanted::new(
                Signal::Latency(m),
                &prom.latency.metric,
                kind.to_string(),
                &prom.latency.query,
            ));
        }
    }
    out.push(Wanted::plain(Signal::Requests, &prom.requests));
    if prom.requests.query.is_none() {
        let metric = prom.requests.metric.as_deref().unwrap_or_default();
        out.push(Wanted::new(
            Signal::SampleTime,
            metric,
            String::new(),
            &None,
        ));
    }
    if spec.objectives.error_rate.is_some() || spec.objectives.availability.is_some() {
        let e = &prom.errors;
        let extra = format!(
            "{}=~\"{}\"",
            e.status_label,
            escape_label_value(&e.status_regex)
        );
        out.push(Wanted::new(Signal::Errors, &e.metric, extra, &e.query));
    }
    if spec.cache.is_some() {
        out.push(Wanted::plain(Signal::CacheHits, &prom.cache_hits));
        out.push(Wanted::plain(Signal::CacheMisses, &prom.cache_misses));
    }
    if spec.connection_pool.is_some() {
        let in_use = &prom.pool_in_use;
        out.push(Wanted::new(
            Signal::PoolInUse,
            in_use.metric.as_deref().unwrap_or_default(),
            "state=\"used\"".into(),
            &in_use.query,
        ));
        out.push(Wanted::plain(Signal::PoolMax, &prom.pool_max));
        out.push(Wanted::plain(Signal::PoolPending, &prom.pool_pending));
        out.push(Wanted::plain(Signal::PoolWait, &prom.pool_wait_time));
    }
    out
}

/// SLOs grouped by the layout they share, and raw queries that stand alone.
#[derive(Default)]
struct Collected {
    groups: BTreeMap<Layout, Vec<(usize, Vec<String>)>>,
    raw: Vec<PlannedQuery>,
}

impl Collected {
    /// Adds every signal of SLO `id`.
    fn add_slo(&mut self, id: usize, spec: &Spec) {
        let prom = &spec.indicators.prometheus;
        let label_names: Vec<String> = prom.labels.keys().cloned().collect();
        let key: Vec<String> = std::iter::once(spec.service.clone())
            .chain(prom.labels.values().cloned())
            .collect();
        for w in wanted(spec) {
            if let Some(q) = w.query {
                self.raw
                    .push(raw_query(id, &key, &prom.service_label, w.signal, q));
                continue;
            }
            let layout = Layout {
                signal: w.signal,
                metric: w.metric.to_string(),
                service_label: prom.service_label.clone(),
                label_names: label_names.clone(),
                extra: w.extra,
            };
            self.groups
                .entry(layout)
                .or_default()
                .push((id, key.clone()));
        }
    }
}

/// A raw-PromQL override, answering one SLO.
fn raw_query(
    id: usize,
    key: &[String],
    service_label: &str,
    signal: Signal,
    q: &str,
) -> PlannedQuery {
    let promql = match signal {
        Signal::Latency(m) => format!("histogram_quantile({}, {q})", quantile_text(m)),
        _ => q.to_string(),
    };
    PlannedQuery {
        promql,
        signal,
        by: Vec::new(),
        members: vec![(id, key.to_vec())],
        service_label: service_label.to_string(),
        grouped: None,
    }
}

/// The PromQL for one shared layout, grouped by `by_list`.
fn render(
    layout: &Layout,
    matchers: &[(String, Vec<String>)],
    by_list: &str,
    window: &str,
) -> String {
    let m = &layout.metric;
    match layout.signal {
        Signal::Latency(q) if layout.extra == "native" => {
            let sel = selector(matchers, "");
            format!(
                "histogram_quantile({}, sum by ({by_list}) (rate({m}{sel}[{window}])))",
                quantile_text(q)
            )
        }
        Signal::Latency(q) => {
            let sel = selector(matchers, "");
            format!(
                "histogram_quantile({}, sum by (le, {by_list}) (rate({m}_bucket{sel}[{window}])))",
                quantile_text(q)
            )
        }
        Signal::Errors => {
            // Zero errors only where requests were seen: never a zero from nothing.
            let failing = selector(matchers, &layout.extra);
            let all = selector(matchers, "");
            format!(
                "sum by ({by_list}) (rate({m}{failing}[{window}])) or (0 * sum by ({by_list}) (rate({m}{all}[{window}])))"
            )
        }
        Signal::PoolInUse => {
            let sel = selector(matchers, &layout.extra);
            format!("sum by ({by_list}) ({m}{sel})")
        }
        Signal::PoolMax | Signal::PoolPending => {
            let sel = selector(matchers, "");
            format!("sum by ({by_list}) ({m}{sel})")
        }
        Signal::PoolWait => {
            let sel = selector(matchers, "");
            format!(
                "sum by ({by_list}) (rate({m}_sum{sel}[{window}])) / sum by ({by_list}) (rate({m}_count{sel}[{window}]))"
            )
        }
        Signal::SampleTime => {
            let sel = selector(matchers, "");
            format!("max by ({by_list}) (timestamp({m}{sel}))")
        }
        Signal::Requests | Signal::CacheHits | Signal::CacheMisses => {
            let sel = selector(matchers, "");
            format!("sum by ({by_list}) (rate({m}{sel}[{window}]))")
        }
    }
}

/// The one query that answers every SLO sharing `layout`.
fn grouped_query(layout: Layout, members: Vec<(usize, Vec<String>)>, window: &str) -> PlannedQuery {
    let mut by = vec![layout.service_label.clone()];
    by.extend(layout.label_names.iter().cloned());
    let matchers: Vec<(String, Vec<String>)> = by
        .iter()
        .enumerate()
        .map(|(i, label)| {
            (
                label.clone(),
                members.iter().map(|(_, k)| k[i].clone()).collect(),
            )
        })
        .collect();
    let promql = render(&layout, &matchers, &by.join(", "), window);
    PlannedQuery {
        promql,
        signal: layout.signal,
        by,
        members,
        service_label: layout.service_label.clone(),
        grouped: Some((layout, window.to_string())),
    }
}

impl QueryPlan {
    /// Plans the queries for `slos` over a `window` such as "1m": shared
    /// layouts first, in layout order, then raw queries in SLO order.
    pub fn build(slos: &[&Spec], window: &str) -> Self {
        let mut collected = Collected::default();
        for (id, spec) in slos.iter().enumerate() {
            collected.add_slo(id, spec);
        }
        let mut queries: Vec<PlannedQuery> = collected
            .groups
            .into_iter()
            .map(|(layout, members)| grouped_query(layout, members, window))
            .collect();
        queries.extend(collected.raw);
        Self { queries }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor_crds::manifest::parse_documents;

    fn spec(service: &str, route: Option<&str>) -> Spec {
        let mut s = crate::sim::scenario::audit_spec();
        s.service = service.to_string();
        if let Some(r) = route {
            s.indicators
                .prometheus
                .labels
                .insert("http_route".into(), r.into());
        }
        s
    }

    #[test]
    fn queries_do_not_grow_with_slos_sharing_a_layout() {
        let few: Vec<Spec> = (0..3).map(|i| spec(&format!("svc-{i}"), None)).collect();
        let many: Vec<Spec> = (0..300).map(|i| spec(&format!("svc-{i}"), None)).collect();
        let a = QueryPlan::build(&few.iter().collect::<Vec<_>>(), "1m");
        let b = QueryPlan::build(&many.iter().collect::<Vec<_>>(), "1m");
        assert_eq!(a.queries.len(), b.queries.len());
        assert!(b.queries.iter().all(|q| q.members.len() == 300));
        for q in &a.queries {
            promql_parser::parser::parse(&q.promql).unwrap_or_else(|e| panic!("{}: {e}", q.promql));
        }
    }

    #[test]
    fn layouts_split_and_raw_queries_stand_alone() {
        let mut raw = spec("bookings", Some("/api/bookings"));
        raw.indicators.prometheus.errors.query =
            Some("sum by (service) (rate(x_total[5m]))".into());
        let specs = [
            spec("api", None),
            spec("stories", Some("/api/stories")),
            raw,
        ];
        let plan = QueryPlan::build(&specs.iter().collect::<Vec<_>>(), "1m");
        let requests: Vec<_> = plan
            .queries
            .iter()
            .filter(|q| q.signal == Signal::Requests)
            .collect();
        assert_eq!(
            requests.len(),
            2,
            "with and without the route label: {requests:#?}"
        );
        let errors: Vec<_> = plan
            .queries
            .iter()
            .filter(|q| q.signal == Signal::Errors)
            .collect();
        assert_eq!(errors.len(), 3, "api, stories by route, and bookings raw");
        assert!(
            errors
                .iter()
                .any(|q| q.promql == "sum by (service) (rate(x_total[5m]))" && q.by.is_empty())
        );
        let grouped = requests.iter().find(|q| q.by.len() == 2).unwrap();
        assert_eq!(grouped.by, ["service", "http_route"]);
        assert!(
            grouped
                .members
                .contains(&(1, vec!["stories".into(), "/api/stories".into()]))
        );
        assert!(
            grouped
                .members
                .contains(&(2, vec!["bookings".into(), "/api/bookings".into()]))
        );
        assert!(
            grouped
                .promql
                .contains(r#"http_route=~"/api/bookings|/api/stories""#),
            "{}",
            grouped.promql
        );
    }

    #[test]
    fn a_batch_splits_into_halves_down_to_one_slo() {
        let specs: Vec<Spec> = (0..5)
            .map(|i| spec(&format!("svc-{i}"), Some("/r")))
            .collect();
        let mut raw = spec("raw", None);
        raw.indicators.prometheus.requests.query = Some("sum(rate(req_total[1m]))".into());
        let mut all: Vec<&Spec> = specs.iter().collect();
        all.push(&raw);
        let plan = QueryPlan::build(&all, "1m");
        let q = plan
            .queries
            .iter()
            .find(|q| q.signal == Signal::Requests && !q.by.is_empty())
            .unwrap();
        let (a, b) = q.split().unwrap();
        let ids = |q: &PlannedQuery| q.members.iter().map(|m| m.0).collect::<Vec<_>>();
        assert_eq!((ids(&a), ids(&b)), (vec![0, 1], vec![2, 3, 4]));
        // Each half is the query the plan would make for those SLOs alone.
        let alone = QueryPlan::build(&all[2..5], "1m");
        let same = alone
            .queries
            .iter()
            .find(|x| x.signal == Signal::Requests)
            .unwrap();
        assert_eq!(b.promql, same.promql);
        assert!(!a.promql.contains("svc-2") && a.promql.contains("svc-1"));
        // Down to one SLO, and never for a raw query.
        let (one, _) = a.split().unwrap();
        assert_eq!(ids(&one), vec![0]);
        assert!(one.split().is_none());
        let raw_q = plan.queries.iter().find(|q| q.by.is_empty()).unwrap();
        assert!(raw_q.split().is_none());
    }

    #[test]
    fn hostile_values_stay_inside_their_matcher() {
        let hostile = [
            "a\"} or vector(1) #",
            "x\\\"}",
            "new\nline",
            "dots.and|pipes",
            "\"}",
        ];
        let specs: Vec<Spec> = hostile.iter().map(|h| spec(h, Some(h))).collect();
        let plan = QueryPlan::build(&specs.iter().collect::<Vec<_>>(), "1m");
        for q in &plan.queries {
            let expr = promql_parser::parser::parse(&q.promql)
                .unwrap_or_else(|e| panic!("{}: {e}", q.promql));
            let text = format!("{expr:?}");
            assert!(
                !text.contains("vector(1)")
                    && !text.contains("Call(Call { func: Function { name: \"vector\""),
                "{}",
                q.promql
            );
        }
        // The manifest path accepts such values too (they are only label values).
        let _ = parse_documents("");
    }

    #[test]
    fn signals_follow_the_spec() {
        let mut s = spec("api", None);
        s.cache = None;
        s.connection_pool = None;
        s.objectives.error_rate = None;
        s.objectives.availability = None;
        let plan = QueryPlan::build(&[&s], "1m");
        let signals: Vec<Signal> = plan.queries.iter().map(|q| q.signal).collect();
        assert_eq!(
            signals,
            vec![
                Signal::Latency(Quantile::P50),
                Signal::Latency(Quantile::P90),
                Signal::Latency(Quantile::P99),
                Signal::Requests,
                Signal::SampleTime
            ]
        );
    }

    /// The full text of every query for SLOs that use every signal, a native
    /// histogram, an extra quantile, route labels and raw queries.
    #[test]
    fn every_signal_renders_the_pinned_text() {
        let full = spec("api", None);
        let mut native = spec("stories", Some("/api/stories"));
        native.indicators.prometheus.latency.histogram = HistogramKind::Native;
        native.objectives.latency.p95 = native.objectives.latency.p50;
        let mut raw = spec("bookings", Some("/api/bookings"));
        raw.indicators.prometheus.latency.query = Some("sum by (le) (rate(lat_bucket[1m]))".into());
        raw.indicators.prometheus.requests.query = Some("sum(rate(req_total[1m]))".into());
        raw.indicators.prometheus.pool_wait_time.query = Some("max(pool_wait)".into());
        let specs = [full, native, raw];
        let plan = QueryPlan::build(&specs.iter().collect::<Vec<_>>(), "2m");
        let text: String = plan
            .queries
            .iter()
            .map(|q| {
                format!(
                    "{} by={:?} members={:?} service_label={}\n{}\n",
                    q.signal.name(),
                    q.by,
                    q.members,
                    q.service_label,
                    q.promql
                )
            })
            .collect();
        assert_eq!(text, PINNED, "\n{text}");
    }

    const PINNED: &str = r#"latency_p50 by=["service"] members=[(0, ["api"])] service_label=service
histogram_quantile(0.5, sum by (le, service) (rate(http_server_request_duration_seconds_bucket{service="api"}[2m])))
latency_p50 by=["service", "http_route"] members=[(1, ["stories", "/api/stories"])] service_label=service
histogram_quantile(0.5, sum by (service, http_route) (rate(http_server_request_duration_seconds{service="stories", http_route="/api/stories"}[2m])))
latency_p90 by=["service"] members=[(0, ["api"])] service_label=service
histogram_quantile(0.9, sum by (le, service) (rate(http_server_request_duration_seconds_bucket{service="api"}[2m])))
latency_p90 by=["service", "http_route"] members=[(1, ["stories", "/api/stories"])] service_label=service
histogram_quantile(0.9, sum by (service, http_route) (rate(http_server_request_duration_seconds{service="stories", http_route="/api/stories"}[2m])))
latency_p95 by=["service", "http_route"] members=[(1, ["stories", "/api/stories"])] service_label=service
histogram_quantile(0.95, sum by (service, http_route) (rate(http_server_request_duration_seconds{service="stories", http_route="/api/stories"}[2m])))
latency_p99 by=["service"] members=[(0, ["api"])] service_label=service
histogram_quantile(0.99, sum by (le, service) (rate(http_server_request_duration_seconds_bucket{service="api"}[2m])))
latency_p99 by=["service", "http_route"] members=[(1, ["stories", "/api/stories"])] service_label=service
histogram_quantile(0.99, sum by (service, http_route) (rate(http_server_request_duration_seconds{service="stories", http_route="/api/stories"}[2m])))
Requests by=["service"] members=[(0, ["api"])] service_label=service
sum by (service) (rate(http_server_request_duration_seconds_count{service="api"}[2m]))
Requests by=["service", "http_route"] members=[(1, ["stories", "/api/stories"])] service_label=service
sum by (service, http_route) (rate(http_server_request_duration_seconds_count{service="stories", http_route="/api/stories"}[2m]))
Errors by=["service"] members=[(0, ["api"])] service_label=service
sum by (service) (rate(http_server_request_duration_seconds_count{service="api", http_response_status_code=~"5.."}[2m])) or (0 * sum by (service) (rate(http_server_request_duration_seconds_count{service="api"}[2m])))
Errors by=["service", "http_route"] members=[(1, ["stories", "/api/stories"]), (2, ["bookings", "/api/bookings"])] service_label=service
sum by (service, http_route) (rate(http_server_request_duration_seconds_count{service=~"bookings|stories", http_route=~"/api/bookings|/api/stories", http_response_status_code=~"5.."}[2m])) or (0 * sum by (service, http_route) (rate(http_server_request_duration_seconds_count{service=~"bookings|stories", http_route=~"/api/bookings|/api/stories"}[2m])))
CacheHits by=["service"] members=[(0, ["api"])] service_label=service
sum by (service) (rate(cache_hits_total{service="api"}[2m]))
CacheHits by=["service", "http_route"] members=[(1, ["stories", "/api/stories"]), (2, ["bookings", "/api/bookings"])] service_label=service
sum by (service, http_route) (rate(cache_hits_total{service=~"bookings|stories", http_route=~"/api/bookings|/api/stories"}[2m]))
CacheMisses by=["service"] members=[(0, ["api"])] service_label=service
sum by (service) (rate(cache_misses_total{service="api"}[2m]))
CacheMisses by=["service", "http_route"] members=[(1, ["stories", "/api/stories"]), (2, ["bookings", "/api/bookings"])] service_label=service
sum by (service, http_route) (rate(cache_misses_total{service=~"bookings|stories", http_route=~"/api/bookings|/api/stories"}[2m]))
PoolInUse by=["service"] members=[(0, ["api"])] service_label=service
sum by (service) (db_client_connections_usage{service="api", state="used"})
PoolInUse by=["service", "http_route"] members=[(1, ["stories", "/api/stories"]), (2, ["bookings", "/api/bookings"])] service_label=service
sum by (service, http_route) (db_client_connections_usage{service=~"bookings|stories", http_route=~"/api/bookings|/api/stories", state="used"})
PoolMax by=["service"] members=[(0, ["api"])] service_label=service
sum by (service) (db_client_connections_max{service="api"})
PoolMax by=["service", "http_route"] members=[(1, ["stories", "/api/stories"]), (2, ["bookings", "/api/bookings"])] service_label=service
sum by (service, http_route) (db_client_connections_max{service=~"bookings|stories", http_route=~"/api/bookings|/api/stories"})
PoolPending by=["service"] members=[(0, ["api"])] service_label=service
sum by (service) (db_client_connections_pending_requests{service="api"})
PoolPending by=["service", "http_route"] members=[(1, ["stories", "/api/stories"]), (2, ["bookings", "/api/bookings"])] service_label=service
sum by (service, http_route) (db_client_connections_pending_requests{service=~"bookings|stories", http_route=~"/api/bookings|/api/stories"})
PoolWait by=["service"] members=[(0, ["api"])] service_label=service
sum by (service) (rate(db_client_connections_wait_time_seconds_sum{service="api"}[2m])) / sum by (service) (rate(db_client_connections_wait_time_seconds_count{service="api"}[2m]))
PoolWait by=["service", "http_route"] members=[(1, ["stories", "/api/stories"])] service_label=service
sum by (service, http_route) (rate(db_client_connections_wait_time_seconds_sum{service="stories", http_route="/api/stories"}[2m])) / sum by (service, http_route) (rate(db_client_connections_wait_time_seconds_count{service="stories", http_route="/api/stories"}[2m]))
SampleTime by=["service"] members=[(0, ["api"])] service_label=service
max by (service) (timestamp(http_server_request_duration_seconds_count{service="api"}))
SampleTime by=["service", "http_route"] members=[(1, ["stories", "/api/stories"])] service_label=service
max by (service, http_route) (timestamp(http_server_request_duration_seconds_count{service="stories", http_route="/api/stories"}))
latency_p50 by=[] members=[(2, ["bookings", "/api/bookings"])] service_label=service
histogram_quantile(0.5, sum by (le) (rate(lat_bucket[1m])))
latency_p90 by=[] members=[(2, ["bookings", "/api/bookings"])] service_label=service
histogram_quantile(0.9, sum by (le) (rate(lat_bucket[1m])))
latency_p99 by=[] members=[(2, ["bookings", "/api/bookings"])] service_label=service
histogram_quantile(0.99, sum by (le) (rate(lat_bucket[1m])))
Requests by=[] members=[(2, ["bookings", "/api/bookings"])] service_label=service
sum(rate(req_total[1m]))
PoolWait by=[] members=[(2, ["bookings", "/api/bookings"])] service_label=service
max(pool_wait)
"#;
}
