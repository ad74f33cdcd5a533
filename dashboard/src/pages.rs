//! Page view-models and their askama templates. Every string from a resource
//! reaches the markup through askama's HTML escaping; every number is
//! formatted here, so templates only place text.

use askama::Template;
use governor_crds::Knob;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::chart::{self, Chart, Series};
use crate::format;
use crate::model::{HistoryPoint, Range, SloView, Standing, TraceRow};

/// What every page needs from the server's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Seconds between automatic reloads; 0 turns them off.
    pub refresh_seconds: u32,
    /// Base URL of the Jaeger UI, for trace links (e.g. http://jaeger:16686).
    pub jaeger_ui: Option<String>,
    /// Rows per overview page.
    pub page_size: usize,
    /// A note shown under the title (e.g. "demo: simulated services").
    pub banner: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            refresh_seconds: 15,
            jaeger_ui: None,
            page_size: 50,
            banner: None,
        }
    }
}

const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');

/// The detail page of an SLO.
pub fn detail_href(namespace: &str, name: &str) -> String {
    format!(
        "/slos/{}/{}",
        utf8_percent_encode(namespace, SEGMENT),
        utf8_percent_encode(name, SEGMENT)
    )
}

fn query_href(path: &str, pairs: &[(&str, &str)]) -> String {
    let pairs: Vec<&(&str, &str)> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
    if pairs.is_empty() {
        return path.to_string();
    }
    format!(
        "{path}?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

/// Overview filters, sort and page; every field optional and read leniently.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct OverviewQuery {
    pub namespace: Option<String>,
    pub state: Option<String>,
    pub q: Option<String>,
    pub sort: Option<String>,
    pub page: Option<String>,
}

pub const SORTS: [(&str, &str); 5] = [
    ("state", "Worst state first"),
    ("name", "Namespace and name"),
    ("latency", "Latency against target"),
    ("budget", "Least budget left"),
    ("burn", "Fastest burn"),
];

/// Filters and sorts `all` as the query asks.
pub fn select<'a>(all: &'a [SloView], q: &OverviewQuery) -> Vec<&'a SloView> {
    let ns = q.namespace.as_deref().filter(|s| !s.is_empty());
    let state = q.state.as_deref().and_then(Standing::parse);
    let needle =
        q.q.as_deref()
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty());
    let mut rows: Vec<&SloView> = all
        .iter()
        .filter(|s| ns.is_none_or(|n| s.namespace == n))
        .filter(|s| state.is_none_or(|st| s.state == st))
        .filter(|s| {
            needle.as_ref().is_none_or(|n| {
                s.name.to_lowercase().contains(n)
                    || s.namespace.to_lowercase().contains(n)
                    || s.service.to_lowercase().contains(n)
            })
        })
        .collect();
    let by_name =
        |a: &&SloView, b: &&SloView| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name));
    // Missing values sort last whatever the direction.
    let desc = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    };
    match q.sort.as_deref().unwrap_or("state") {
        "name" => rows.sort_by(by_name),
        "latency" => rows.sort_by(|a, b| {
            desc(a.latency_pressure(), b.latency_pressure()).then_with(|| by_name(a, b))
        }),
        "budget" => rows.sort_by(|a, b| {
            desc(
                a.error_budget_remaining.map(|x| -x),
                b.error_budget_remaining.map(|x| -x),
            )
            .then_with(|| by_name(a, b))
        }),
        "burn" => rows.sort_by(|a, b| desc(a.burn_rate, b.burn_rate).then_with(|| by_name(a, b))),
        _ => rows.sort_by(|a, b| b.state.cmp(&a.state).then_with(|| by_name(a, b))),
    }
    rows
}

pub struct Cell {
    pub text: String,
    pub target: String,
    pub class: &'static str,
}

pub struct Row {
    pub href: String,
    pub namespace: String,
    pub name: String,
    pub service: String,
    pub state: Standing,
    pub dry_run: bool,
    pub latency: Vec<Cell>,
    pub budget: String,
    /// The budget bar's value in [0, 1]; `None` draws no bar.
    pub budget_bar: Option<String>,
    pub budget_class: &'static str,
    pub burn: String,
    pub burn_class: &'static str,
    pub replicas: String,
    pub pool: String,
    pub cache: Cell,
    pub last_action: String,
    pub last_reason: String,
}

fn knob(k: Knob) -> &'static str {
    match k {
        Knob::Replicas => "replicas",
        Knob::PoolSize => "pool size",
        Knob::CacheWarmUp => "cache warm-up",
    }
}

fn budget_class(b: Option<f64>) -> &'static str {
    match b {
        None => "unknown",
        Some(b) if b <= 0.0 => "breached",
        Some(b) if b < 0.25 => "at-risk",
        Some(_) => "met",
    }
}

fn burn_class(b: Option<f64>) -> &'static str {
    match b {
        None => "unknown",
        Some(b) if b >= 6.0 => "breached",
        Some(b) if b > 1.0 => "at-risk",
        Some(_) => "met",
    }
}

fn current_desired(cd: Option<governor_crds::CurrentDesired>) -> String {
    match cd {
        None => format::MISSING.into(),
        Some(c) if c.current == c.desired => c.current.to_string(),
        Some(c) => format!("{} → {}", c.current, c.desired),
    }
}

fn decision_text(d: &governor_crds::Decision) -> String {
    let what = match d.knob {
        Knob::CacheWarmUp => "cache warm-up".to_string(),
        k => format!("{} {} → {}", knob(k), d.from, d.to),
    };
    if d.dry_run {
        format!("{what} (dry run)")
    } else {
        what
    }
}

impl Row {
    pub fn of(s: &SloView) -> Self {
        let latency = s
            .latency
            .iter()
            .map(|l| Cell {
                text: format::latency(l.observed),
                target: l
                    .target
                    .map_or_else(|| "no target".into(), |t| format::latency(Some(t))),
                class: l.standing.css(),
            })
            .collect();
        let last = s.last_decision();
        Row {
            href: detail_href(&s.namespace, &s.name),
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            service: s.service.clone(),
            state: s.state,
            dry_run: s.dry_run,
            latency,
            budget: format::percent(s.error_budget_remaining),
            budget_bar: s
                .error_budget_remaining
                .map(|b| format!("{:.3}", b.clamp(0.0, 1.0))),
            budget_class: budget_class(s.error_budget_remaining),
            burn: format::burn(s.burn_rate),
            burn_class: burn_class(s.burn_rate),
            replicas: current_desired(s.replicas),
            pool: current_desired(s.pool_size),
            cache: Cell {
                text: format::percent(s.cache_hit_rate),
                target: s
                    .cache_hit_target
                    .map_or_else(|| "no target".into(), |t| format::percent(Some(t))),
                class: Standing::of_floor(s.cache_hit_rate, s.cache_hit_target).css(),
            },
            last_action: last.map_or_else(|| "none yet".into(), decision_text),
            last_reason: last.map(|d| d.reason.clone()).unwrap_or_default(),
        }
    }
}

pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub struct Count {
    pub state: Standing,
    pub count: usize,
    pub href: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
pub struct Overview {
    pub title: String,
    pub refresh: u32,
    pub banner: Option<String>,
    pub warnings: Vec<String>,
    /// No SLO exists at all.
    pub empty_cluster: bool,
    pub total: usize,
    pub matching: usize,
    pub first: usize,
    pub last: usize,
    pub rows: Vec<Row>,
    pub counts: Vec<Count>,
    pub namespaces: Vec<Opt>,
    pub states: Vec<Opt>,
    pub sorts: Vec<Opt>,
    pub q: String,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub page: usize,
    pub pages: usize,
}

impl Overview {
    pub fn build(all: &[SloView], warnings: Vec<String>, q: &OverviewQuery, cfg: &Config) -> Self {
        let selected = select(all, q);
        let size = cfg.page_size.max(1);
        let pages = selected.len().div_ceil(size).max(1);
        let page = q
            .page
            .as_deref()
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .clamp(1, pages);
        let start = (page - 1) * size;
        let rows: Vec<Row> = selected
            .iter()
            .skip(start)
            .take(size)
            .map(|s| Row::of(s))
            .collect();
        let ns = q.namespace.clone().unwrap_or_default();
        let state = q.state.clone().unwrap_or_default();
        let sort = q.sort.clone().unwrap_or_default();
        let search = q.q.clone().unwrap_or_default();
        let link = |page: usize| {
            let p = page.to_string();
            query_href(
                "/",
                &[
                    ("namespace", &ns),
                    ("state", &state),
                    ("q", &search),
                    ("sort", &sort),
                    ("page", &p),
                ],
            )
        };
        let mut namespaces: Vec<&str> = all.iter().map(|s| s.namespace.as_str()).collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        let counts = [
            Standing::Breached,
            Standing::AtRisk,
            Standing::Met,
            Standing::Unknown,
        ]
        .into_iter()
        .map(|st| Count {
            state: st,
            count: all.iter().filter(|s| s.state == st).count(),
            href: query_href("/", &[("namespace", &ns), ("state", st.css())]),
        })
        .collect();
        Overview {
            title: "Service-level objectives".into(),
            refresh: cfg.refresh_seconds,
            banner: cfg.banner.clone(),
            warnings,
            empty_cluster: all.is_empty(),
            total: all.len(),
            matching: selected.len(),
            first: if rows.is_empty() { 0 } else { start + 1 },
            last: start + rows.len(),
            rows,
            counts,
            namespaces: std::iter::once(("", "All namespaces"))
                .chain(namespaces.iter().map(|n| (*n, *n)))
                .map(|(v, l)| Opt {
                    value: v.into(),
                    label: l.into(),
                    selected: v == ns,
                })
                .collect(),
            states: std::iter::once(("", "Any state"))
                .chain(
                    [
                        Standing::Breached,
                        Standing::AtRisk,
                        Standing::Met,
                        Standing::Unknown,
                    ]
                    .map(|s| (s.css(), s.label())),
                )
                .map(|(v, l)| Opt {
                    value: v.into(),
                    label: l.into(),
                    selected: v == state,
                })
                .collect(),
            sorts: SORTS
                .iter()
                .map(|(v, l)| Opt {
                    value: (*v).into(),
                    label: (*l).into(),
                    selected: *v == sort || (sort.is_empty() && *v == "state"),
                })
                .collect(),
            q: search.clone(),
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
            page,
            pages,
        }
    }
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
        history: Result<Vec<HistoryPoint>, String>,
        traces: Result<Vec<TraceRow>, String>,
        cfg: &Config,
    ) -> Self {
        let row = Row::of(s);
        let href = detail_href(&s.namespace, &s.name);
        let ranges = Range::ALL
            .into_iter()
            .map(|r| RangeLink {
                label: r.as_str(),
                href: query_href(&href, &[("range", r.as_str())]),
                current: r == range,
            })
            .collect();
        let (charts, history_error) = match history {
            Ok(points) => (charts(s, &points, range), None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let conditions = s
            .conditions
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
            .collect();
        let decisions = s
            .decisions
            .iter()
            .rev()
            .map(|d| DecisionRow {
                time: d.time.0.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
                action: decision_text(d),
                reason: d.reason.clone(),
            })
            .collect();
        let p99_target = s
            .latency
            .iter()
            .find(|l| l.quantile == "p99")
            .and_then(|l| l.target);
        let (traces, traces_error) = match traces {
            Ok(t) => (
                t.into_iter()
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
                    .collect(),
                None,
            ),
            Err(e) => (Vec::new(), Some(e)),
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
                .map(|l| l.quantile.to_uppercase())
                .zip(row.latency)
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
            burn: row.burn,
            burn_class: row.burn_class,
            replicas: row.replicas,
            pool: row.pool,
            cache: row.cache,
            bottleneck: s.bottleneck.clone(),
            ranges,
            range: range.as_str(),
            charts,
            history_error,
            conditions,
            decisions,
            traces,
            traces_error,
            api_href: format!("/api/v1{href}"),
        }
    }
}

fn charts(s: &SloView, points: &[HistoryPoint], range: Range) -> Vec<Chart> {
    let t1 = points.iter().map(|p| p.t).fold(f64::NEG_INFINITY, f64::max);
    let t1 = if t1.is_finite() { t1 } else { 0.0 };
    let span = (t1 - range.seconds(), t1);
    let days = range.seconds() > 86_400.0;
    let pick = |f: fn(&HistoryPoint) -> Option<f64>| -> Vec<(f64, Option<f64>)> {
        points.iter().map(|p| (p.t, f(p))).collect()
    };
    let targets: Vec<(String, f64)> = s
        .latency
        .iter()
        .filter_map(|l| Some((format!("{} target", l.quantile.to_uppercase()), l.target?)))
        .collect();
    // Equal targets draw one line.
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
            &latency_targets,
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

/// A page for what went wrong: unknown SLO, unreachable source, bad request.
#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    pub title: String,
    pub refresh: u32,
    pub banner: Option<String>,
    pub heading: String,
    pub message: String,
}
