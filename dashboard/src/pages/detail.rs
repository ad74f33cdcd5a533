//! The detail page of one SLO (`/slos/{namespace}/{name}`): its figures, history
//! charts, conditions, decisions and slowest traces; renders `templates/detail.html`.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use governor_crds::Quantile;
use percent_encoding::utf8_percent_encode;
use serde::Deserialize;

use super::overview::Row;
use super::{Cell, Config, SEGMENT, budget_class, decision_text, detail_href, query_href};
use crate::chart::{self, Chart, Series};
use crate::format;
use crate::read::{HistoryPoint, Range, ReadModel, SloView, Standing, TraceRow};
use crate::server::{App, Shared, message, page};

/// The detail page's query, shared with its JSON form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DetailQuery {
    range: Option<String>,
}

/// The range asked for: an hour when none.
pub(crate) fn parse_range(q: &DetailQuery) -> Result<Range, crate::Error> {
    match q.range.as_deref() {
        None | Some("") => Ok(Range::Hour),
        Some(r) => Range::parse(r).ok_or_else(|| crate::Error::Range(r.into())),
    }
}

/// One SLO of the current snapshot.
pub(crate) async fn find<M: ReadModel>(
    app: &App<M>,
    namespace: &str,
    name: &str,
) -> Option<SloView> {
    let snap = app.model.snapshot().await;
    snap.slos
        .iter()
        .find(|s| s.namespace == namespace && s.name == name)
        .cloned()
}

fn unknown_slo<M>(app: &App<M>, namespace: &str, name: &str) -> Response {
    message(
        app,
        StatusCode::NOT_FOUND,
        "No such SLO",
        format!(
            "There is no ServiceLevelObjective named \"{name}\" in namespace \"{namespace}\". \
             It may have been deleted, or the name may be misspelled."
        ),
    )
}

/// `GET /slos/{namespace}/{name}`, with its history and traces read together.
pub(crate) async fn handler<M: ReadModel>(
    State(app): State<Shared<M>>,
    Path((namespace, name)): Path<(String, String)>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let range = match parse_range(&q) {
        Ok(r) => r,
        Err(e) => {
            return message(
                &app,
                StatusCode::BAD_REQUEST,
                "Unknown range",
                e.to_string(),
            );
        }
    };
    let Some(slo) = find(&app, &namespace, &name).await else {
        return unknown_slo(&app, &namespace, &name);
    };
    let (history, traces) = tokio::join!(
        app.model.history(&namespace, &name, range),
        app.model.slowest_traces(&namespace, &name)
    );
    page(
        StatusCode::OK,
        Detail::build(&slo, range, history, traces, &app.config).render(),
    )
}

pub struct RangeLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

pub struct ConditionRow {
    pub kind: String,
    pub status: String,
    pub class: &'static str,
    pub reason: String,
    pub message: String,
    pub since: String,
}

pub struct DecisionRow {
    pub time: String,
    pub action: String,
    pub reason: String,
}

pub struct TraceLine {
    pub operation: String,
    pub start: String,
    pub duration: String,
    pub class: &'static str,
    pub link: Option<String>,
    pub id: String,
}

#[derive(Template)]
#[template(path = "detail.html")]
pub struct Detail {
    pub title: String,
    pub refresh: u32,
    pub banner: Option<String>,
    pub namespace: String,
    pub name: String,
    pub service: String,
    pub state: Standing,
    pub dry_run: bool,
    pub observed_at: String,
    pub latency: Vec<(String, Cell)>,
    pub request_rate: String,
    pub error_rate: Cell,
    pub budget: String,
    pub budget_class: &'static str,
    /// Each objective's budget left: (what, value, class).
    pub objective_budgets: Vec<(String, String, &'static str)>,
    pub burn: String,
    pub burn_class: &'static str,
    pub replicas: String,
    pub pool: String,
    pub cache: Cell,
    pub bottleneck: Option<String>,
    pub ranges: Vec<RangeLink>,
    pub range: &'static str,
    pub charts: Vec<Chart>,
    pub history_error: Option<String>,
    pub conditions: Vec<ConditionRow>,
    pub decisions: Vec<DecisionRow>,
    pub traces: Vec<TraceLine>,
    pub traces_error: Option<String>,
    pub api_href: String,
}

impl Detail {
    pub fn build(
        s: &SloView,
        range: Range,
        history: Result<Vec<HistoryPoint>, crate::Error>,
        traces: Result<Vec<TraceRow>, crate::Error>,
        cfg: &Config,
    ) -> Self {
        let row = Row::of(s);
        let href = detail_href(&s.namespace, &s.name);
        let (charts, history_error) = match history {
            Ok(points) => (charts(s, &points, range), None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let p99_target = s
            .latency
            .iter()
            .find(|l| l.quantile == Quantile::P99)
            .and_then(|l| l.target);
        let (traces, traces_error) = match traces {
            Ok(t) => (trace_lines(t, p99_target, cfg), None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        Detail {
            title: format!("{}/{}", s.namespace, s.name),
            refresh: cfg.refresh_seconds,
            banner: cfg.banner.clone(),
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            service: s.service.clone(),
            state: s.state,
            dry_run: s.dry_run,
            observed_at: s.observed_at.clone().unwrap_or_else(|| "never".into()),
            latency: s
                .latency
                .iter()
                .map(|l| (l.quantile.name().to_uppercase(), Cell::latency(l)))
                .collect(),
            request_rate: format::rate(s.request_rate),
            error_rate: Cell {
                text: format::percent(s.error_rate),
                target: s
                    .error_rate_target
                    .map_or_else(|| "no target".into(), |t| format::percent(Some(t))),
                class: Standing::of(s.error_rate, s.error_rate_target).css(),
            },
            budget: row.budget,
            budget_class: row.budget_class,
            objective_budgets: s
                .objective_budgets
                .iter()
                .map(|o| {
                    let b = o.error_budget_remaining;
                    (
                        objective_label(&o.objective),
                        format::percent(b),
                        budget_class(b),
                    )
                })
                .collect(),
            burn: row.burn,
            burn_class: row.burn_class,
            replicas: row.replicas,
            pool: row.pool,
            cache: row.cache,
            bottleneck: s.bottleneck.clone(),
            ranges: range_links(&href, range),
            range: range.as_str(),
            charts,
            history_error,
            conditions: conditions(s),
            decisions: decisions(s),
            traces,
            traces_error,
            api_href: format!("/api/v1{href}"),
        }
    }
}

/// An objective's id as a heading: `latency-p99` → "P99 latency".
fn objective_label(id: &str) -> String {
    match id.strip_prefix("latency-") {
        Some(q) => format!("{} latency", q.to_uppercase()),
        None if id == "errors" => "Errors".into(),
        None => id.to_string(),
    }
}

/// Every range the page offers, `range` the current one.
fn range_links(href: &str, range: Range) -> Vec<RangeLink> {
    Range::ALL
        .into_iter()
        .map(|r| RangeLink {
            label: r.as_str(),
            href: query_href(href, &[("range", r.as_str())]),
            current: r == range,
        })
        .collect()
}

fn conditions(s: &SloView) -> Vec<ConditionRow> {
    s.conditions
        .iter()
        .map(|c| ConditionRow {
            kind: c.type_.clone(),
            status: c.status.clone(),
            class: match (c.type_.as_str(), c.status.as_str()) {
                ("Bottleneck", "True") => "at-risk",
                (_, "True") => "met",
                (_, "False") => "breached",
                _ => "unknown",
            },
            reason: c.reason.clone(),
            message: c.message.clone(),
            since: c
                .last_transition_time
                .0
                .strftime("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
        })
        .collect()
}

/// Decisions, newest first.
fn decisions(s: &SloView) -> Vec<DecisionRow> {
    s.decisions
        .iter()
        .rev()
        .map(|d| DecisionRow {
            time: d.time.0.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
            action: decision_text(d),
            reason: d.reason.clone(),
        })
        .collect()
}

/// Traces against the P99 target, linked to the Jaeger UI when there is one.
fn trace_lines(traces: Vec<TraceRow>, p99_target: Option<f64>, cfg: &Config) -> Vec<TraceLine> {
    traces
        .into_iter()
        .map(|t| TraceLine {
            class: Standing::of(Some(t.duration), p99_target).css(),
            link: cfg
                .jaeger_ui
                .as_ref()
                .filter(|_| !t.trace_id.is_empty())
                .map(|base| {
                    format!(
                        "{}/trace/{}",
                        base.trim_end_matches('/'),
                        utf8_percent_encode(&t.trace_id, SEGMENT)
                    )
                }),
            id: t.trace_id,
            operation: t.operation,
            start: format::timestamp(t.start),
            duration: format::latency(Some(t.duration)),
        })
        .collect()
}

/// The latency targets as labelled lines; equal targets draw one line.
fn latency_targets(s: &SloView) -> Vec<(String, f64)> {
    let targets: Vec<(String, f64)> = s
        .latency
        .iter()
        .filter_map(|l| {
            Some((
                format!("{} target", l.quantile.name().to_uppercase()),
                l.target?,
            ))
        })
        .collect();
    let mut latency_targets: Vec<(String, f64)> = Vec::new();
    for (label, v) in targets {
        match latency_targets
            .iter_mut()
            .find(|(_, w)| (*w - v).abs() < 1e-12)
        {
            Some(existing) => {
                existing.0 = format!("{}, {label}", existing.0.trim_end_matches(" target"))
            }
            None => latency_targets.push((label, v)),
        }
    }
    latency_targets
}

fn charts(s: &SloView, points: &[HistoryPoint], range: Range) -> Vec<Chart> {
    let t1 = points.iter().map(|p| p.t).fold(f64::NEG_INFINITY, f64::max);
    let t1 = if t1.is_finite() { t1 } else { 0.0 };
    let span = (t1 - range.seconds(), t1);
    let days = range.seconds() > 86_400.0;
    let pick = |f: fn(&HistoryPoint) -> Option<f64>| -> Vec<(f64, Option<f64>)> {
        points.iter().map(|p| (p.t, f(p))).collect()
    };
    let series = |name, class, f| Series {
        name,
        class,
        points: pick(f),
    };
    vec![
        chart::build(
            "latency",
            "Latency (ms)",
            vec![
                series("P50", "p50", |p| p.p50),
                series("P90", "p90", |p| p.p90),
                series("P99", "p99", |p| p.p99),
            ],
            &latency_targets(s),
            span,
            1000.0,
            days,
        ),
        chart::build(
            "requests",
            "Request rate (rps)",
            vec![series("requests", "rate", |p| p.request_rate)],
            &[],
            span,
            1.0,
            days,
        ),
        chart::build(
            "errors",
            "Error rate (%)",
            vec![series("errors", "errors", |p| p.error_rate)],
            &s.error_rate_target
                .map(|t| vec![("target".to_string(), t)])
                .unwrap_or_default(),
            span,
            100.0,
            days,
        ),
        chart::build(
            "capacity",
            "Replicas and pool size",
            vec![
                series("replicas", "replicas", |p| p.replicas),
                series("pool size", "pool", |p| p.pool_size),
            ],
            &[],
            span,
            1.0,
            days,
        ),
        chart::build(
            "budget",
            "Error budget remaining (%)",
            vec![series("budget", "budget", |p| p.budget_remaining)],
            &[("exhausted".to_string(), 0.0)],
            span,
            100.0,
            days,
        ),
    ]
}
