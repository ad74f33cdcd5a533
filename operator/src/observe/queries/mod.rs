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
mod tests;
