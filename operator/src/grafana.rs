//! The Grafana dashboard over Governor's recording rules and the operator's
//! metrics: latency against its targets, error budget, burn rates, replicas,
//! pool size and cache hit rate, with Governor's replica and pool changes as
//! annotations. Every name comes from the rules' and the metrics' constants.

use std::collections::BTreeSet;

use governor_crds::ServiceLevelObjective;
use serde_json::{Value, json};

use crate::rules::{BUDGET_REMAINING, ERROR_BUDGET, ERROR_RATIO, Tier, duration, scaled_window};
use crate::telemetry::metrics as m;

/// Grafana's dashboard JSON schema version the output is written for.
pub const SCHEMA_VERSION: u32 = 39;
/// The dashboard's uid, stable so that a re-import replaces it.
pub const UID: &str = "governor-slos";

/// Which SLOs the dashboard offers.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// (namespace, name) of the SLOs in the files; empty: any SLO Prometheus
    /// knows, read by `label_values` at view time.
    pub slos: Vec<(String, String)>,
    /// The burn-rate windows the SLOs' rules record; empty: those of a 30-day SLO.
    pub windows: BTreeSet<u64>,
}

impl Scope {
    /// The SLOs in the files, with the burn-rate windows of their rules.
    pub fn of(slos: &[ServiceLevelObjective]) -> Self {
        let mut scope = Scope::default();
        for slo in slos {
            scope.slos.push((
                slo.metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into()),
                slo.metadata.name.clone().unwrap_or_default(),
            ));
            scope
                .windows
                .extend(windows(slo.spec.objectives.window.as_secs_f64()));
        }
        scope
    }
}

/// Every window (seconds) the burn-rate rules of an SLO with this `window` record.
fn windows(window: f64) -> Vec<u64> {
    [Tier::Page, Tier::Ticket]
        .into_iter()
        .flat_map(Tier::pairs)
        .flat_map(|(_, long, short)| [long, short])
        .map(|w| scaled_window(w, window))
        .collect()
}

/// The label matchers every query carries: the dashboard's variables.
const SELECTOR: &str = r#"namespace=~"$namespace", slo=~"$slo""#;

/// The dashboard as Grafana imports it.
pub fn dashboard(scope: &Scope) -> Value {
    let panels = panels();
    json!({
        "uid": UID,
        "title": "Governor SLOs",
        "description": "Latency against targets, error budget, burn rates and what Governor changed, from Governor's recording rules and the operator's metrics.",
        "tags": ["governor", "slo"],
        "editable": true,
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "templating": {"list": variables(scope)},
        "annotations": {"list": annotations()},
        "panels": panels,
    })
}

fn datasource() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

fn variables(scope: &Scope) -> Vec<Value> {
    let datasource_var = json!({
        "type": "datasource",
        "name": "datasource",
        "label": "Prometheus",
        "query": "prometheus",
        "current": {"text": "default", "value": "default"},
    });
    let windows: Vec<String> = if scope.windows.is_empty() {
        windows(30.0 * 86_400.0)
            .into_iter()
            .collect::<BTreeSet<_>>()
    } else {
        scope.windows.clone()
    }
    .into_iter()
    .map(duration)
    .collect();
    let mut list = vec![datasource_var];
    if scope.slos.is_empty() {
        list.push(query_variable(
            "namespace",
            &format!("label_values({}, namespace)", m::SLO_REPLICAS),
        ));
        list.push(query_variable(
            "slo",
            &format!(
                "label_values({}{{namespace=~\"$namespace\"}}, slo)",
                m::SLO_REPLICAS
            ),
        ));
    } else {
        let namespaces: BTreeSet<&str> = scope.slos.iter().map(|(n, _)| n.as_str()).collect();
        let names: BTreeSet<&str> = scope.slos.iter().map(|(_, n)| n.as_str()).collect();
        list.push(custom_variable("namespace", namespaces.into_iter(), true));
        list.push(custom_variable("slo", names.into_iter(), true));
    }
    list.push(custom_variable(
        "window",
        windows.iter().map(String::as_str),
        false,
    ));
    list
}

fn query_variable(name: &str, definition: &str) -> Value {
    json!({
        "type": "query",
        "name": name,
        "label": name,
        "datasource": datasource(),
        "definition": definition,
        // A string, which Grafana's Prometheus data source reads as a
        // classic variable query: the schema allows `query` to be a string
        // or an object of objects, so the editor's `{query, refId}` form
        // (an object of strings) is refused.
        "query": definition,
        "refresh": 2,
        "sort": 1,
        "includeAll": true,
        "allValue": ".*",
        "multi": false,
        "current": {"text": "All", "value": "$__all"},
    })
}

/// A fixed list of values; regex characters in them are escaped, since the
/// queries match the variables with `=~`.
fn custom_variable<'a>(name: &str, values: impl Iterator<Item = &'a str>, all: bool) -> Value {
    let values: Vec<&str> = values.collect();
    let escaped: Vec<String> = values.iter().map(|v| regex_escape(v)).collect();
    let options: Vec<Value> = values
        .iter()
        .zip(&escaped)
        .enumerate()
        .map(|(i, (text, value))| json!({"text": text, "value": value, "selected": i == 0 && !all}))
        .collect();
    let current = if all {
        json!({"text": "All", "value": "$__all"})
    } else {
        json!({"text": values.first().copied().unwrap_or_default(), "value": escaped.first().cloned().unwrap_or_default()})
    };
    json!({
        "type": "custom",
        "name": name,
        "label": name,
        "query": escaped.join(","),
        "options": options,
        "current": current,
        "includeAll": all,
        "allValue": ".*",
        "multi": false,
    })
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Governor's decisions: a change of replicas or pool size.
fn annotations() -> Vec<Value> {
    let builtin = json!({
        "builtIn": 1,
        "name": "Annotations & Alerts",
        "type": "dashboard",
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": true,
        "hide": true,
        "iconColor": "rgba(0, 211, 255, 1)",
    });
    let change = |name: &str, metric: &str, color: &str| {
        json!({
            "name": name,
            "datasource": datasource(),
            "enable": true,
            "iconColor": color,
            "expr": format!("changes({metric}{{{SELECTOR}}}[$__interval]) > 0"),
            "step": "30s",
            "titleFormat": name,
            "textFormat": "{{namespace}}/{{slo}}",
            "tagKeys": "namespace,slo",
            "useValueForTime": false,
        })
    };
    vec![
        builtin,
        change("Governor changed replicas", m::SLO_REPLICAS, "orange"),
        change("Governor changed the pool size", m::SLO_POOL_SIZE, "purple"),
    ]
}

/// One timeseries panel.
struct Panel {
    title: &'static str,
    description: &'static str,
    unit: &'static str,
    /// (PromQL, legend)
    targets: Vec<(String, &'static str)>,
    /// Threshold lines: (value, color).
    thresholds: &'static [(f64, &'static str)],
}

/// Every PromQL expression of the dashboard (panels and annotations), with
/// Grafana's variables in it.
pub fn expressions(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            out.extend(t["expr"].as_str().map(String::from));
        }
    }
    for a in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out.extend(a["expr"].as_str().map(String::from));
    }
    out
}

fn panels() -> Vec<Value> {
    let latency = Panel {
        title: "Latency against targets",
        description: "Each quantile Governor observed, and the spec's target for it.",
        unit: "s",
        targets: vec![
            (
                format!("{}{{{SELECTOR}}}", m::SLO_LATENCY),
                "{{slo}} {{quantile}}",
            ),
            (
                format!("{}{{{SELECTOR}}}", m::SLO_LATENCY_TARGET),
                "{{slo}} {{quantile}} target",
            ),
        ],
        thresholds: &[],
    };
    let budget = Panel {
        title: "Error budget left",
        description: "Share of each objective's error budget left over the SLO's window (recorded), and the SLO's (the worst objective's).",
        unit: "percentunit",
        targets: vec![
            (
                format!("{BUDGET_REMAINING}{{{SELECTOR}}}"),
                "{{slo}} {{objective}}",
            ),
            (
                format!("{}{{{SELECTOR}}}", m::SLO_BUDGET_REMAINING),
                "{{slo}}",
            ),
        ],
        thresholds: &[(0.0, "red")],
    };
    let burn = Panel {
        title: "Burn rate over $window",
        description: "Bad share over the window divided by the allowed share: 1 spends the budget exactly over the SLO's window; the page tier fires above 14.4 (1h) and 6 (6h) at 30 days.",
        unit: "none",
        targets: vec![(
            format!(
                "{ERROR_RATIO}$window{{{SELECTOR}}} / on (namespace, slo, objective) {ERROR_BUDGET}{{{SELECTOR}}}"
            ),
            "{{slo}} {{objective}}",
        )],
        thresholds: &[(1.0, "orange"), (6.0, "red"), (14.4, "dark-red")],
    };
    let replicas = Panel {
        title: "Replicas",
        description: "Replicas of each SLO's target.",
        unit: "none",
        targets: vec![(format!("{}{{{SELECTOR}}}", m::SLO_REPLICAS), "{{slo}}")],
        thresholds: &[],
    };
    let pool = Panel {
        title: "Connection pool size per replica",
        description: "The pool size Governor set for each replica.",
        unit: "none",
        targets: vec![(format!("{}{{{SELECTOR}}}", m::SLO_POOL_SIZE), "{{slo}}")],
        thresholds: &[],
    };
    let cache = Panel {
        title: "Cache hit rate",
        description: "Share of cache lookups that hit, as Governor last observed it.",
        unit: "percentunit",
        targets: vec![(
            format!("{}{{{SELECTOR}}}", m::SLO_CACHE_HIT_RATIO),
            "{{slo}}",
        )],
        thresholds: &[],
    };
    [latency, budget, burn, replicas, pool, cache]
        .into_iter()
        .enumerate()
        .map(|(i, p)| p.json(i))
        .collect()
}

impl Panel {
    /// The panel at place `i` of a two-column grid.
    fn json(&self, i: usize) -> Value {
        let targets: Vec<Value> = self
            .targets
            .iter()
            .enumerate()
            .map(|(j, (expr, legend))| {
                json!({
                    "datasource": datasource(),
                    "expr": expr,
                    "legendFormat": legend,
                    "refId": char::from(b'A' + j as u8).to_string(),
                })
            })
            .collect();
        let mut steps = vec![json!({"value": null, "color": "green"})];
        steps.extend(
            self.thresholds
                .iter()
                .map(|(v, c)| json!({"value": v, "color": c})),
        );
        let style = if self.thresholds.is_empty() {
            "off"
        } else {
            "line"
        };
        json!({
            "id": i + 1,
            "type": "timeseries",
            "title": self.title,
            "description": self.description,
            "datasource": datasource(),
            "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i / 2) * 8},
            "targets": targets,
            "fieldConfig": {
                "defaults": {
                    "unit": self.unit,
                    "thresholds": {"mode": "absolute", "steps": steps},
                    "custom": {"thresholdsStyle": {"mode": style}},
                },
                "overrides": [],
            },
            "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": true}},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templated_dashboard_reads_any_slo_and_the_30_day_windows() {
        let d = dashboard(&Scope::default());
        let vars = d["templating"]["list"].as_array().unwrap();
        assert_eq!(vars[1]["type"], "query");
        assert_eq!(vars[3]["name"], "window");
        assert_eq!(vars[3]["query"], "5m,30m,1h,2h,6h,1d,3d");
        let exprs = expressions(&d);
        assert!(exprs.iter().any(|e| e.starts_with(ERROR_RATIO)));
        assert!(exprs.iter().any(|e| e.starts_with(BUDGET_REMAINING)));
        assert_eq!(exprs.len(), 10);
    }

    #[test]
    fn file_scope_lists_its_slos_with_regex_characters_escaped() {
        let scope = Scope {
            slos: vec![("shop".into(), "check.out".into())],
            windows: [120, 360].into(),
        };
        let d = dashboard(&scope);
        let vars = d["templating"]["list"].as_array().unwrap();
        assert_eq!(vars[2]["query"], r"check\.out");
        assert_eq!(vars[2]["options"][0]["text"], "check.out");
        assert_eq!(vars[3]["query"], "2m,6m");
        assert_eq!(vars[3]["current"]["value"], "2m");
    }
}
