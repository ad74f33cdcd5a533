//! The error budget of each objective over the SLO's whole window, recorded
//! cheaply: a group of its own, evaluated every few minutes, records the
//! objective's bad and total request rates, and from the sums of those
//! recorded samples over the window (a ratio of sums, not an average of
//! ratios) the budget left, `1 - (bad / total) / allowed`. A 30-day window
//! reads 8,640 recorded samples per series, never 30 days of raw ones.
//!
//! The same objectives as direct PromQL over the raw counters, for an SLO
//! without these rules (alerting off, or the rules not loaded).

use governor_crds::ServiceLevelObjective;
use governor_crds::promql::escape_label_value;

use super::alerts::ObjectiveRules;
use super::objectives::{Objective, objectives};
use super::{
    BAD_EVENTS, BUDGET_REMAINING, EVENTS, Rule, RuleGroup, THIRTY_DAYS, Unchecked, duration,
};
use crate::error_budget;

/// The budget group's interval for an SLO window (seconds): 5 minutes at 30
/// days, scaled like the burn-rate windows, between 1 and 5 minutes.
pub fn interval(window: f64) -> u64 {
    let minutes = (300.0 * window / THIRTY_DAYS / 60.0).round();
    (minutes.clamp(1.0, 5.0) as u64) * 60
}

/// The range the recorded rates are taken over: twice the interval, or more
/// whole intervals when that is shorter than the shortest window (`floor`,
/// two scrape intervals), so each evaluation sees at least two scrapes
/// (evaluations every interval, each over a whole number of them: the sums
/// still weigh every moment of the window alike).
fn rate_range(window: f64, floor: u64) -> u64 {
    let every = interval(window);
    (2 * every).max(floor.div_ceil(every) * every)
}

/// The budget group of one SLO: per objective its bad and total rates, and
/// the budget left over the window.
pub(super) fn group(writer: &ObjectiveRules, objectives: &[Objective]) -> RuleGroup {
    let (namespace, name) = (&writer.namespace, &writer.name);
    let every = interval(writer.window);
    let range = duration(rate_range(writer.window, writer.scale.floor));
    let window = duration(writer.window as u64);
    let mut rules = Vec::new();
    for o in objectives {
        // Only the ids: the budget sums these series over the whole window,
        // and a label that changed in it would split each sum in two.
        let labels = writer.ids(o);
        let matcher = format!(
            "{{namespace=\"{}\", slo=\"{}\", objective=\"{}\"}}",
            escape_label_value(namespace),
            escape_label_value(name),
            escape_label_value(&o.id)
        );
        let record = |record: &str, expr: String| Rule {
            record: Some(record.into()),
            expr,
            labels: labels.clone(),
            ..Rule::default()
        };
        rules.push(record(EVENTS, o.requests.replace("{w}", &range)));
        rules.push(record(BAD_EVENTS, o.bad_events.replace("{w}", &range)));
        rules.push(record(
            BUDGET_REMAINING,
            error_budget::promql(
                &format!("sum_over_time({BAD_EVENTS}{matcher}[{window}])"),
                &format!("sum_over_time({EVENTS}{matcher}[{window}])"),
                o.allowed,
            ),
        ));
    }
    RuleGroup {
        name: format!("governor-slo-{namespace}-{name}-budget"),
        interval: Some(duration(every)),
        rules,
    }
}

/// One objective an SLO's error budget is counted for.
#[derive(Clone, Debug, PartialEq)]
pub struct BudgetObjective {
    /// `latency-p99`, `errors`: the `objective` label of the rules.
    pub id: String,
    /// Allowed bad share.
    pub allowed: f64,
    /// The latency target in seconds; `None` for the error objective.
    pub latency_target: Option<f64>,
    /// PromQL of bad requests per second over `{w}`.
    pub bad_events: String,
    /// PromQL of all requests per second over `{w}`.
    pub events: String,
}

/// The objectives whose budget Governor counts: those its rules alert on
/// (a latency target needs a Prometheus histogram; raw-PromQL signals cannot
/// be re-windowed), whether or not alerting is on. Latency targets are
/// assumed to be bucket boundaries.
pub fn budget_objectives(slo: &ServiceLevelObjective) -> Vec<BudgetObjective> {
    objectives(slo, &Unchecked, &mut Vec::new())
        .unwrap_or_default()
        .into_iter()
        .map(|o| BudgetObjective {
            id: o.id,
            allowed: o.allowed,
            latency_target: o.latency_target,
            bad_events: o.bad_events,
            events: o.requests,
        })
        .collect()
}

/// Label `events` of the direct query's series: bad or all requests.
pub const DIRECT_BAD: &str = "bad";
pub const DIRECT_TOTAL: &str = "total";

/// One query for the bad and total request rates of every objective of an
/// SLO over its whole window, straight from the raw counters: each series
/// labelled `objective` and `events` (`bad` or `total`). `objectives` are
/// the SLO's [`budget_objectives`]; `None` when there are none.
pub fn direct_query(slo: &ServiceLevelObjective, objectives: &[BudgetObjective]) -> Option<String> {
    let window = duration(slo.spec.objectives.window.as_secs_f64() as u64);
    let parts: Vec<String> = objectives
        .iter()
        .flat_map(|o| {
            [(DIRECT_BAD, &o.bad_events), (DIRECT_TOTAL, &o.events)].map(|(kind, expr)| {
                format!(
                    "label_replace(label_replace({}, \"objective\", \"{}\", \"\", \"\"), \"events\", \"{kind}\", \"\", \"\")",
                    expr.replace("{w}", &window),
                    escape_label_value(&o.id)
                )
            })
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" or "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_scales_with_the_window_within_one_to_five_minutes() {
        assert_eq!(interval(30.0 * 86_400.0), 300);
        assert_eq!(interval(28.0 * 86_400.0), 300);
        assert_eq!(interval(7.0 * 86_400.0), 60);
        assert_eq!(interval(3600.0), 60);
        assert_eq!(interval(90.0 * 86_400.0), 300);
        assert_eq!(rate_range(30.0 * 86_400.0, 120), 600);
        assert_eq!(rate_range(86_400.0, 120), 120);
        assert_eq!(rate_range(86_400.0, 300), 300, "two scrapes at 150 s");
        assert_eq!(rate_range(30.0 * 86_400.0, 900), 900);
    }
}
