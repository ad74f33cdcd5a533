//! Burn-rate alert rules per SLO: multi-window, multi-burn-rate alerts on the
//! error budget of each objective — the error rate, and each latency target
//! read as a ratio SLI (the share of requests slower than the threshold) —
//! with recording rules so the alert expressions stay cheap.
//!
//! Windows are the SRE workbook's for a 30-day SLO, scaled to the SLO's window
//! (never below two minutes): page at 14.4x over 1h and 5m, and at 6x over 6h and
//! 30m; ticket at 3x over 1d and 2h, and at 1x over 3d and 6h.
//!
//! A second group per SLO, evaluated every 5 minutes (scaled likewise, between
//! 1 and 5 minutes), records each objective's bad and total request rates and
//! from them the error budget left over the whole window (`budget.rs`).

mod alerts;
mod apply;
pub mod backends;
mod budget;
pub mod metadata;
mod objectives;

use std::collections::{BTreeMap, BTreeSet};

use governor_crds::promql::escape_label_value;
use governor_crds::{Alerting, HistogramKind, IndicatorSource, Problem, ServiceLevelObjective};
use serde::Serialize;

pub use apply::{
    Applied, ApplyError, apply, config_map, has_prometheus_rule, prometheus_rule,
    rules_object_name, vm_rule,
};
pub use metadata::ExtraMetadata;

pub use budget::{
    BudgetObjective, DIRECT_BAD, DIRECT_TOTAL, budget_objectives, direct_query,
    interval as budget_interval,
};

use alerts::ObjectiveRules;
pub use objectives::allowed_error_share;
use objectives::objectives;

/// Recording rule names.
pub const ERROR_RATIO: &str = "slo:sli_error:ratio_rate";
pub const REQUESTS: &str = "slo:sli_requests:rate";
pub const ERROR_BUDGET: &str = governor_dashboard::read::series::ERROR_BUDGET;
/// Bad requests per second of an objective, over twice the budget group's interval.
pub const BAD_EVENTS: &str = "governor_slo:bad_events:rate";
/// Requests per second an objective counts, over the same range.
pub const EVENTS: &str = "governor_slo:events:rate";
/// Share of an objective's error budget left over the SLO's window.
pub const BUDGET_REMAINING: &str = "governor_slo:error_budget_remaining:ratio";
pub const PAGE_ALERT: &str = "ErrorBudgetBurnPage";
pub const TICKET_ALERT: &str = "ErrorBudgetBurnTicket";

const THIRTY_DAYS: f64 = 30.0 * 86_400.0;
/// Where the runbooks live when an SLO names none.
pub const README: &str = "https://github.com/governor-dev/governor/blob/main/README.md";

/// A Prometheus rule file.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RuleFile {
    pub groups: Vec<RuleGroup>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleGroup {
    pub name: String,
    /// How often the group is evaluated; Prometheus's global interval when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Rule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    pub expr: String,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A page or ticket tier: (burn factor, long window, short window) pairs at 30 days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Page,
    Ticket,
}

impl Tier {
    /// (burn factor, long window, short window), windows in seconds at 30 days.
    pub fn pairs(self) -> [(f64, f64, f64); 2] {
        match self {
            Tier::Page => [(14.4, 3600.0, 300.0), (6.0, 6.0 * 3600.0, 1800.0)],
            Tier::Ticket => [(3.0, 86_400.0, 7200.0), (1.0, 3.0 * 86_400.0, 6.0 * 3600.0)],
        }
    }
    fn name(self) -> &'static str {
        match self {
            Tier::Page => "page",
            Tier::Ticket => "ticket",
        }
    }
    fn severity(self) -> &'static str {
        match self {
            Tier::Page => "critical",
            Tier::Ticket => "warning",
        }
    }
    fn alert(self) -> &'static str {
        match self {
            Tier::Page => PAGE_ALERT,
            Tier::Ticket => TICKET_ALERT,
        }
    }
}

/// The shortest window a rule reads: two scrapes at Prometheus's default 1m
/// interval. A 1m window is empty there on Prometheus 3, whose ranges are
/// left-open, so `rate()` finds one sample.
pub const MIN_WINDOW_MINUTES: f64 = 2.0;

/// A window scaled from its 30-day value to the SLO's, in whole minutes, at
/// least `MIN_WINDOW_MINUTES`.
pub fn scaled_window(base: f64, slo_window: f64) -> u64 {
    let minutes = (base * slo_window / THIRTY_DAYS / 60.0).round();
    (minutes.max(MIN_WINDOW_MINUTES) as u64) * 60
}

/// Seconds as a PromQL duration: "5m", "6h", "3d".
pub fn duration(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A threshold as Prometheus clients write `le`: "0.1", "1", "2.5".
pub fn le_text(v: f64) -> String {
    let s = format!("{v}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// Every way `le` is written for the boundary `v`: as the client exposed it
/// ("1" from Go clients, "1.0" from Python and Rust ones, "1e+06"), and as
/// Prometheus 3 stores classic buckets ("1.0", "1e+06"), which 2.x never
/// rewrote. Matching them all matches the boundary by number.
pub fn le_spellings(v: f64) -> Vec<String> {
    let go = go_shortest(v);
    let mut out = vec![le_text(v), format!("{v:?}"), go.clone()];
    if !go.contains(['.', 'e']) {
        out.push(format!("{go}.0"));
    }
    out.sort();
    out.dedup();
    out
}

/// `v` as Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes it: the shortest
/// digits, with an exponent below 1e-4 and from 1e6 ("1e+06", "2.5e-05").
fn go_shortest(v: f64) -> String {
    let sci = format!("{v:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return sci;
    };
    if (-4..6).contains(&exp) {
        format!("{v}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// The label matcher of the classic bucket whose boundary is `v`, by number:
/// `le="0.1"` when it has one spelling, else `le=~"1|1\\.0"`.
pub fn le_matcher(v: f64) -> String {
    match &le_spellings(v)[..] {
        [one] => format!("le=\"{}\"", escape_label_value(one)),
        all => {
            let alternatives: Vec<String> = all
                .iter()
                .map(|s| s.replace('.', "\\\\.").replace('+', "\\\\+"))
                .collect();
            format!("le=~\"{}\"", alternatives.join("|"))
        }
    }
}

/// Text for an annotation, with template actions in it made literal.
fn literal(s: &str) -> String {
    s.replace("{{", "{{ \"{{\" }}")
}

/// How bucket boundaries of a histogram are known.
pub trait Buckets {
    /// The `le` values of `metric`'s buckets for this SLO's series, when known.
    fn boundaries(&self, metric: &str, selector: &str) -> Option<Vec<(f64, String)>>;
}

/// Boundaries unknown: thresholds are assumed to be boundaries, and a note says so.
pub struct Unchecked;

impl Buckets for Unchecked {
    fn boundaries(&self, _: &str, _: &str) -> Option<Vec<(f64, String)>> {
        None
    }
}

/// Boundaries read beforehand, by (bucket metric, selector).
#[derive(Clone, Debug, Default)]
pub struct Known(pub std::collections::HashMap<(String, String), Vec<(f64, String)>>);

impl Buckets for Known {
    fn boundaries(&self, metric: &str, selector: &str) -> Option<Vec<(f64, String)>> {
        self.0
            .get(&(metric.to_string(), selector.to_string()))
            .cloned()
    }
}

/// The (bucket metric, selector) whose boundaries an SLO's latency alerts need,
/// when they come from a classic histogram.
pub fn bucket_series(slo: &ServiceLevelObjective) -> Option<(String, String)> {
    let spec = &slo.spec;
    let prom = &spec.indicators.prometheus;
    (spec.indicators.source == IndicatorSource::Prometheus
        && prom.latency.query.is_none()
        && prom.latency.histogram == HistogramKind::Classic
        && !spec.objectives.latency.targets().is_empty())
    .then(|| {
        (
            format!("{}_bucket", prom.latency.metric),
            selector(slo, &[]),
        )
    })
}

/// Options that do not come from the resource.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Base URL of the dashboard, for the alerts' dashboard link.
    pub dashboard_url: Option<String>,
    /// Runbook for SLOs that name none (default: the README's section).
    pub default_runbook_url: Option<String>,
}

/// The rules for one SLO, and notes on what was assumed or left out.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// The burn-rate recordings and alerts.
    pub group: Option<RuleGroup>,
    /// The error budget over the window, in a slower group of its own.
    pub budget: Option<RuleGroup>,
    pub notes: Vec<String>,
}

impl Generated {
    /// Every group, in the order they are written.
    pub fn groups(&self) -> Vec<RuleGroup> {
        self.group.iter().chain(&self.budget).cloned().collect()
    }
}

fn selector(slo: &ServiceLevelObjective, extra: &[String]) -> String {
    let prom = &slo.spec.indicators.prometheus;
    let mut parts = vec![format!(
        "{}=\"{}\"",
        prom.service_label,
        escape_label_value(&slo.spec.service)
    )];
    for (k, v) in &prom.labels {
        parts.push(format!("{k}=\"{}\"", escape_label_value(v)));
    }
    parts.extend(extra.iter().cloned());
    parts.join(", ")
}

fn percent(r: f64) -> String {
    let p = r * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0} %")
    } else {
        format!("{} %", le_text((p * 1000.0).round() / 1000.0))
    }
}

/// The rule group for one SLO. `Err` names each field that prevents it.
pub fn generate(
    slo: &ServiceLevelObjective,
    opts: &Options,
    buckets: &dyn Buckets,
) -> Result<Generated, Vec<Problem>> {
    let mut notes = Vec::new();
    let tiers = tiers(&slo.spec.alerting);
    if tiers.is_empty() {
        notes.push("alerting is disabled for this SLO: no rules".into());
        return Ok(Generated {
            group: None,
            budget: None,
            notes,
        });
    }
    let objectives = objectives(slo, buckets, &mut notes)?;
    if objectives.is_empty() {
        notes.push("no objective can be alerted on: no rules".into());
        return Ok(Generated {
            group: None,
            budget: None,
            notes,
        });
    }
    let writer = ObjectiveRules::new(slo, opts);
    let (ratio_windows, long_windows) = windows(&tiers, writer.window);
    let mut rules = Vec::new();
    for o in &objectives {
        rules.extend(writer.recordings(o, &ratio_windows, &long_windows));
        rules.extend(tiers.iter().map(|t| writer.alert(o, *t)));
    }
    let budget = budget::group(&writer, &objectives);
    Ok(Generated {
        group: Some(RuleGroup {
            name: format!("governor-slo-{}-{}", writer.namespace, writer.name),
            interval: None,
            rules,
        }),
        budget: Some(budget),
        notes,
    })
}

/// The tiers alerting is on for.
fn tiers(alerting: &Alerting) -> Vec<Tier> {
    [(Tier::Page, alerting.page), (Tier::Ticket, alerting.ticket)]
        .into_iter()
        .filter(|(_, on)| *on && alerting.enabled)
        .map(|(t, _)| t)
        .collect()
}

/// The windows the tiers read, scaled to the SLO's `window`: every window for
/// the bad share, the long ones for the request rate.
fn windows(tiers: &[Tier], window: f64) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let mut ratio_windows = BTreeSet::new();
    let mut long_windows = BTreeSet::new();
    for t in tiers {
        for (_, long, short) in t.pairs() {
            ratio_windows.insert(scaled_window(long, window));
            ratio_windows.insert(scaled_window(short, window));
            long_windows.insert(scaled_window(long, window));
        }
    }
    (ratio_windows, long_windows)
}
/// Rules per objective in a group (recordings and alerts), for the Sloth comparison.
pub fn rules_per_objective(group: &RuleGroup) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in &group.rules {
        if let Some(o) = r.labels.get("objective") {
            *out.entry(o.clone()).or_default() += 1;
        }
    }
    out
}

/// The rule file as YAML.
pub fn to_yaml(file: &RuleFile) -> Result<String, String> {
    serde_yaml_ng::to_string(file).map_err(|e| format!("cannot write the rules as YAML: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_scale_to_the_slo_window_in_whole_minutes() {
        let d30 = THIRTY_DAYS;
        assert_eq!(duration(scaled_window(3600.0, d30)), "1h");
        assert_eq!(duration(scaled_window(300.0, d30)), "5m");
        assert_eq!(duration(scaled_window(3.0 * 86_400.0, d30)), "3d");
        assert_eq!(duration(scaled_window(3600.0, 86_400.0)), "2m");
        assert_eq!(
            duration(scaled_window(300.0, 86_400.0)),
            "2m",
            "never below two minutes"
        );
        assert_eq!(duration(scaled_window(3600.0, 28.0 * 86_400.0)), "56m");
        assert_eq!(le_text(0.1), "0.1");
        assert_eq!(le_text(1.0), "1");
        assert_eq!(le_text(2.5), "2.5");
    }

    #[test]
    fn bucket_boundaries_match_by_number() {
        assert_eq!(le_spellings(1.0), ["1", "1.0"]);
        assert_eq!(le_spellings(0.25), ["0.25"]);
        assert_eq!(le_spellings(1e6), ["1000000", "1000000.0", "1e+06"]);
        assert_eq!(le_spellings(2.5e-5), ["0.000025", "2.5e-05", "2.5e-5"]);
        assert_eq!(le_spellings(100_000.0), ["100000", "100000.0"]);
        assert_eq!(le_matcher(0.1), r#"le="0.1""#);
        assert_eq!(le_matcher(1.0), r#"le=~"1|1\\.0""#);
        assert_eq!(le_matcher(1e6), r#"le=~"1000000|1000000\\.0|1e\\+06""#);
    }

    #[test]
    fn annotations_cannot_run_template_actions() {
        assert_eq!(literal("a{{ .x }}"), "a{{ \"{{\" }} .x }}");
    }
}
