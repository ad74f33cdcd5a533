//! Burn-rate alert rules per SLO: multi-window, multi-burn-rate alerts on the
//! error budget of each objective — the error rate, and each latency target
//! read as a ratio SLI (the share of requests slower than the threshold) —
//! with recording rules so the alert expressions stay cheap, and an alert on
//! the SLO's metrics going absent.
//!
//! Windows are the SRE workbook's for a 30-day SLO, scaled to the SLO's window
//! (never below two scrape intervals): page at 14.4x over 1h and 5m, and at 6x
//! over 6h and 30m; ticket at 3x over 1d and 2h, and at 1x over 3d and 6h. A
//! clause whose threshold (burn factor x allowed bad share) is 1 or more can
//! never fire and is left out, with a note.
//!
//! A second group per SLO, evaluated every 5 minutes (scaled likewise, between
//! 1 and 5 minutes), records each objective's bad and total request rates and
//! from them the error budget left over the whole window (`budget.rs`).
//!
//! Every name is Governor's own (`governor_slo:`), so the rules live beside
//! Sloth's and Pyrra's (`slo:`, `pyrra_`) in one Prometheus.

mod alerts;
mod apply;
pub mod backends;
mod budget;
pub mod metadata;
mod objectives;

use std::collections::{BTreeMap, BTreeSet};

use governor_crds::promql::escape_label_value;
use std::time::Duration;

use governor_crds::{
    AlertRoute, Alerting, HistogramKind, IndicatorSource, Problem, ServiceLevelObjective,
};
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
use objectives::{Objective, objectives};

/// Recording rule names.
pub const ERROR_RATIO: &str = "governor_slo:sli_error:ratio_rate";
pub const REQUESTS: &str = "governor_slo:sli_requests:rate";
pub const ERROR_BUDGET: &str = governor_dashboard::read::series::ERROR_BUDGET;
/// Bad requests per second of an objective, over twice the budget group's interval.
pub const BAD_EVENTS: &str = "governor_slo:bad_events:rate";
/// Requests per second an objective counts, over the same range.
pub const EVENTS: &str = "governor_slo:events:rate";
/// Share of an objective's error budget left over the SLO's window.
pub const BUDGET_REMAINING: &str = "governor_slo:error_budget_remaining:ratio";
pub const PAGE_ALERT: &str = "ErrorBudgetBurnPage";
pub const TICKET_ALERT: &str = "ErrorBudgetBurnTicket";
/// The alert on an SLO's metrics going absent.
pub const NO_DATA_ALERT: &str = "SLOSignalAbsent";
/// How long an SLO's metrics must be absent before `NO_DATA_ALERT` fires.
pub const NO_DATA_WINDOW: u64 = 600;
/// The bad-share window the dashboard reads burn rates from: always recorded.
pub const DASHBOARD_WINDOW: u64 = 300;

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
    fn route(self, alerting: &Alerting) -> &AlertRoute {
        match self {
            Tier::Page => &alerting.routes.page,
            Tier::Ticket => &alerting.routes.ticket,
        }
    }
}

/// One clause of a tier: the bad share must pass `factor` x allowed over
/// both windows (seconds, scaled to the SLO's window).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Clause {
    pub(crate) factor: f64,
    pub(crate) long: u64,
    pub(crate) short: u64,
}

/// Prometheus's default scrape interval, which `--scrape-interval` defaults to.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);

/// How windows are scaled from their 30-day values to one SLO's window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Scale {
    /// The SLO's window, in seconds.
    pub(crate) slo_window: f64,
    /// The shortest window, in seconds: two scrape intervals in whole minutes.
    pub(crate) floor: u64,
}

impl Scale {
    pub(crate) fn new(slo_window: f64, scrape_interval: Duration) -> Self {
        Self {
            slo_window,
            floor: min_window(scrape_interval),
        }
    }

    /// A window scaled from its 30-day value, in whole minutes, at least the floor.
    pub(crate) fn window(&self, base: f64) -> u64 {
        let minutes = (base * self.slo_window / THIRTY_DAYS / 60.0).round() as u64;
        (minutes * 60).max(self.floor)
    }

    /// The tier's clauses at this scale.
    fn clauses(&self, tier: Tier) -> Vec<Clause> {
        tier.pairs()
            .iter()
            .map(|(factor, long, short)| Clause {
                factor: *factor,
                long: self.window(*long),
                short: self.window(*short),
            })
            .collect()
    }
}

/// A window scaled from its 30-day value to an SLO's window, at Prometheus's
/// default scrape interval (the windows `governor rules` writes by default).
pub fn scaled_window(base: f64, slo_window: f64) -> u64 {
    Scale::new(slo_window, DEFAULT_SCRAPE_INTERVAL).window(base)
}

/// The shortest window a rule reads: two scrape intervals, so `rate()` finds
/// two samples (Prometheus 3's ranges are left-open), in whole minutes; two
/// minutes at Prometheus's default 1m interval.
pub fn min_window(scrape_interval: Duration) -> u64 {
    let twice = 2 * scrape_interval.as_secs().max(1);
    twice.div_ceil(60).max(1) * 60
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
#[derive(Clone, Debug)]
pub struct Options {
    /// Base URL of the dashboard, for the alerts' dashboard link.
    pub dashboard_url: Option<String>,
    /// Runbook for SLOs that name none (default: the README's section).
    pub default_runbook_url: Option<String>,
    /// Prometheus's scrape interval: no window is shorter than two of them.
    pub scrape_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dashboard_url: None,
            default_runbook_url: None,
            scrape_interval: DEFAULT_SCRAPE_INTERVAL,
        }
    }
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
    let alerting = &slo.spec.alerting;
    let tiers = tiers(alerting);
    if tiers.is_empty() && !(alerting.enabled && alerting.no_data) {
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
    let mut rules = Vec::new();
    for o in &objectives {
        let live: Vec<(Tier, Vec<Clause>)> = tiers
            .iter()
            .map(|t| (*t, live_clauses(&writer, o, *t, &mut notes)))
            .collect();
        let (ratio_windows, long_windows) = windows(&live, writer.scale);
        rules.extend(writer.recordings(o, &ratio_windows, &long_windows));
        for (t, clauses) in &live {
            if !clauses.is_empty() {
                rules.push(writer.alert(o, *t, clauses));
            }
        }
    }
    if alerting.no_data {
        rules.extend(writer.no_data(&objectives));
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

/// The clauses of a tier that can fire on an objective: a threshold of 1 or
/// more is a bad share no window can reach. A note names each one left out.
fn live_clauses(
    writer: &ObjectiveRules,
    o: &Objective,
    tier: Tier,
    notes: &mut Vec<String>,
) -> Vec<Clause> {
    let all = writer.scale.clauses(tier);
    let live: Vec<Clause> = all
        .iter()
        .copied()
        .filter(|c| threshold(c.factor, o.allowed) < 1.0)
        .collect();
    for c in all.iter().filter(|c| !live.contains(c)) {
        notes.push(format!(
            "objective {}: the {} clause {}x over {} and {} is left out: its threshold, {} x {} = {}, \
             is a bad share of 1 or more, which can never be exceeded{}",
            o.id,
            tier.name(),
            c.factor,
            duration(c.long),
            duration(c.short),
            c.factor,
            o.allowed,
            le_text(threshold(c.factor, o.allowed)),
            if live.is_empty() {
                format!(" (no {} alert for this objective)", tier.name())
            } else {
                String::new()
            }
        ));
    }
    live
}

/// The bad share a clause alerts above, rounded to the digits that mean something.
fn threshold(factor: f64, allowed: f64) -> f64 {
    (factor * allowed * 1e9).round() / 1e9
}

/// The windows an objective's live clauses read: every window for the bad
/// share (and the dashboard's 5 minutes), the long ones for the request rate.
fn windows(live: &[(Tier, Vec<Clause>)], scale: Scale) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let mut ratio_windows = BTreeSet::new();
    let mut long_windows = BTreeSet::new();
    if DASHBOARD_WINDOW >= scale.floor {
        ratio_windows.insert(DASHBOARD_WINDOW);
    }
    for c in live.iter().flat_map(|(_, clauses)| clauses) {
        ratio_windows.insert(c.long);
        ratio_windows.insert(c.short);
        long_windows.insert(c.long);
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
pub fn to_yaml(file: &RuleFile) -> Result<String, serde_yaml_ng::Error> {
    serde_yaml_ng::to_string(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_scale_to_the_slo_window_in_whole_minutes() {
        let minute = Duration::from_secs(60);
        let d30 = Scale::new(THIRTY_DAYS, minute);
        assert_eq!(duration(d30.window(3600.0)), "1h");
        assert_eq!(duration(d30.window(300.0)), "5m");
        assert_eq!(duration(d30.window(3.0 * 86_400.0)), "3d");
        let day = Scale::new(86_400.0, minute);
        assert_eq!(duration(day.window(3600.0)), "2m");
        assert_eq!(
            duration(day.window(300.0)),
            "2m",
            "never below two scrape intervals"
        );
        let d28 = Scale::new(28.0 * 86_400.0, minute);
        assert_eq!(duration(d28.window(3600.0)), "56m");
        assert_eq!(duration(d28.window(300.0)), "5m");
        assert_eq!(le_text(0.1), "0.1");
        assert_eq!(le_text(1.0), "1");
        assert_eq!(le_text(2.5), "2.5");
    }

    #[test]
    fn short_windows_are_never_below_two_scrape_intervals() {
        let secs = Duration::from_secs;
        assert_eq!(min_window(secs(60)), 120);
        assert_eq!(min_window(secs(30)), 60);
        assert_eq!(min_window(secs(15)), 60, "whole minutes");
        assert_eq!(min_window(secs(1)), 60);
        assert_eq!(min_window(secs(45)), 120, "90 s rounds up");
        assert_eq!(min_window(secs(300)), 600);
        // A 7-day SLO's 5m window scales to 1m: 2m at 60 s scrapes, 1m at 30 s.
        let week = 7.0 * 86_400.0;
        assert_eq!(Scale::new(week, secs(60)).window(300.0), 120);
        assert_eq!(Scale::new(week, secs(30)).window(300.0), 60);
        // At 5-minute scrapes even a 30-day SLO's 5m window is 10m.
        assert_eq!(Scale::new(THIRTY_DAYS, secs(300)).window(300.0), 600);
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
