//! The overview page (`/`): every SLO against its targets, filtered, sorted and
//! paged; its view model renders `templates/overview.html`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use governor_crds::Quantile;
use serde::Deserialize;

use super::{
    Cell, Config, budget_class, burn_class, current_desired, decision_text, detail_href, query_href,
};
use crate::format;
use crate::read::{ReadModel, SloView, Standing};
use crate::server::{Shared, page};

/// `GET /`, rendered once per snapshot version and query.
pub(crate) async fn handler<M: ReadModel>(
    State(app): State<Shared<M>>,
    uri: Uri,
    Query(q): Query<OverviewQuery>,
) -> Response {
    let snap = app.model.snapshot().await;
    let key = uri.to_string();
    if let Some(hit) = app.pages.get(&key, snap.version) {
        return hit.response();
    }
    match Overview::build(&snap.slos, snap.warnings, &q, &app.config).render() {
        Ok(html) => app
            .pages
            .put(key, snap.version, html, "text/html; charset=utf-8")
            .response(),
        Err(e) => page(StatusCode::OK, Err(e)),
    }
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

/// The states, worst first, as the counts and the state filter list them.
const STATES: [Standing; 4] = [
    Standing::Breached,
    Standing::AtRisk,
    Standing::Met,
    Standing::Unknown,
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

/// One SLO as a table row; the detail page reuses its cells.
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

impl Row {
    pub fn of(s: &SloView) -> Self {
        // The overview's columns are P50, P90 and P99; the detail page shows all.
        let latency = s
            .latency
            .iter()
            .filter(|l| matches!(l.quantile, Quantile::P50 | Quantile::P90 | Quantile::P99))
            .map(Cell::latency)
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
            counts: counts(all, &ns),
            namespaces: namespace_options(all, &ns),
            states: state_options(&state),
            sorts: sort_options(&sort),
            q: search.clone(),
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
            page,
            pages,
        }
    }
}

/// SLOs per state over every namespace, each linking to its filter in `ns`.
fn counts(all: &[SloView], ns: &str) -> Vec<Count> {
    STATES
        .into_iter()
        .map(|st| Count {
            state: st,
            count: all.iter().filter(|s| s.state == st).count(),
            href: query_href("/", &[("namespace", ns), ("state", st.css())]),
        })
        .collect()
}

/// "All namespaces", then every namespace once, sorted.
fn namespace_options(all: &[SloView], ns: &str) -> Vec<Opt> {
    let mut namespaces: Vec<&str> = all.iter().map(|s| s.namespace.as_str()).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    std::iter::once(("", "All namespaces"))
        .chain(namespaces.iter().map(|n| (*n, *n)))
        .map(|(v, l)| Opt {
            value: v.into(),
            label: l.into(),
            selected: v == ns,
        })
        .collect()
}

/// "Any state", then the states worst first.
fn state_options(state: &str) -> Vec<Opt> {
    std::iter::once(("", "Any state"))
        .chain(STATES.map(|s| (s.css(), s.label())))
        .map(|(v, l)| Opt {
            value: v.into(),
            label: l.into(),
            selected: v == state,
        })
        .collect()
}

/// The sorts; none chosen selects the default, worst state first.
fn sort_options(sort: &str) -> Vec<Opt> {
    SORTS
        .iter()
        .map(|(v, l)| Opt {
            value: (*v).into(),
            label: (*l).into(),
            selected: *v == sort || (sort.is_empty() && *v == "state"),
        })
        .collect()
}
