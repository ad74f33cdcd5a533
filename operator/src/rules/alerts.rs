//! The rules for one objective: recordings of its bad share and request rate
//! per window, its error budget, and one burn-rate alert per tier.

use std::collections::{BTreeMap, BTreeSet};

use governor_crds::ServiceLevelObjective;
use governor_crds::promql::escape_label_value;

use super::objectives::Objective;
use super::{
    ERROR_BUDGET, ERROR_RATIO, Options, README, REQUESTS, Rule, THIRTY_DAYS, Tier, duration,
    literal, percent, scaled_window,
};

/// Writes the rules of one SLO's objectives.
pub(super) struct ObjectiveRules<'a> {
    slo: &'a ServiceLevelObjective,
    opts: &'a Options,
    pub(super) namespace: String,
    pub(super) name: String,
    /// The SLO's window, in seconds.
    pub(super) window: f64,
}

impl<'a> ObjectiveRules<'a> {
    pub(super) fn new(slo: &'a ServiceLevelObjective, opts: &'a Options) -> Self {
        let namespace = slo
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = slo.metadata.name.clone().unwrap_or_default();
        ObjectiveRules {
            slo,
            opts,
            namespace,
            name,
            window: slo.spec.objectives.window.as_secs_f64(),
        }
    }

    /// The labels that name an objective's series.
    fn ids(&self, o: &Objective) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("namespace".to_string(), self.namespace.clone()),
            ("slo".to_string(), self.name.clone()),
            ("objective".to_string(), o.id.clone()),
        ])
    }

    /// The bad share over each window, the request rate over each long window,
    /// and the error budget.
    pub(super) fn recordings(
        &self,
        o: &Objective,
        ratio_windows: &BTreeSet<u64>,
        long_windows: &BTreeSet<u64>,
    ) -> Vec<Rule> {
        let mut rules = Vec::new();
        for w in ratio_windows {
            rules.push(Rule {
                record: Some(format!("{ERROR_RATIO}{}", duration(*w))),
                expr: o.bad_ratio.replace("{w}", &duration(*w)),
                labels: self.ids(o),
                ..Rule::default()
            });
        }
        for w in long_windows {
            rules.push(Rule {
                record: Some(format!("{REQUESTS}{}", duration(*w))),
                expr: o.requests.replace("{w}", &duration(*w)),
                labels: self.ids(o),
                ..Rule::default()
            });
        }
        rules.push(Rule {
            record: Some(ERROR_BUDGET.into()),
            expr: format!("vector({})", o.allowed),
            labels: self.ids(o),
            ..Rule::default()
        });
        rules
    }

    /// The burn-rate alert of one tier on one objective.
    pub(super) fn alert(&self, o: &Objective, t: Tier) -> Rule {
        // Prometheus expands templates in alert labels as in annotations:
        // validation refuses `{{` in these values, and they are written literal
        // all the same.
        let mut labels: BTreeMap<String, String> = self
            .slo
            .spec
            .alerting
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), literal(v)))
            .collect();
        labels.extend(self.ids(o));
        labels.insert("severity".into(), t.severity().into());
        labels.insert("tier".into(), t.name().into());
        Rule {
            alert: Some(t.alert().into()),
            expr: self.expr(o, t),
            labels,
            annotations: self.annotations(o, t),
            ..Rule::default()
        }
    }

    /// Either window pair of the tier burning over its factor, with enough traffic.
    fn expr(&self, o: &Objective, t: Tier) -> String {
        let matcher = format!(
            "namespace=\"{}\", slo=\"{}\", objective=\"{}\"",
            escape_label_value(&self.namespace),
            escape_label_value(&self.name),
            escape_label_value(&o.id)
        );
        let window = self.window;
        let clauses: Vec<String> = t
            .pairs()
            .iter()
            .map(|(factor, long, short)| {
                let (l, s) = (
                    duration(scaled_window(*long, window)),
                    duration(scaled_window(*short, window)),
                );
                format!(
                    "(\n  {ERROR_RATIO}{l}{{{matcher}}} > ({factor} * {allowed})\n  and on (namespace, slo, objective)\n  {ERROR_RATIO}{s}{{{matcher}}} > ({factor} * {allowed})\n  and on (namespace, slo, objective)\n  {REQUESTS}{l}{{{matcher}}} >= {min}\n)",
                    allowed = o.allowed,
                    min = self.slo.spec.alerting.min_request_rate,
                )
            })
            .collect();
        clauses.join("\nor on (namespace, slo, objective)\n")
    }

    /// Summary, description, runbook and (when known) dashboard link.
    fn annotations(&self, o: &Objective, t: Tier) -> BTreeMap<String, String> {
        let (namespace, name, window) = (&self.namespace, &self.name, self.window);
        let (factor, long, _) = t.pairs()[0];
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "summary".into(),
            literal(&format!(
                "{namespace}/{name}: {} is burning its error budget {}",
                o.what,
                if t == Tier::Page { "fast" } else { "steadily" }
            )),
        );
        annotations.insert(
            "description".into(),
            format!(
                "{{{{ $value | humanizePercentage }}}} of requests to {} missed \"{}\" over the last {} or longer \
                 (the objective allows {} over {}); at {}x this burn spends the whole budget in {}.",
                literal(&self.slo.spec.service),
                literal(&o.what),
                duration(scaled_window(long, window)),
                percent(o.allowed),
                duration(window as u64),
                factor,
                duration(scaled_window(THIRTY_DAYS / factor, window)),
            ),
        );
        let runbook = self
            .slo
            .spec
            .alerting
            .runbook_url
            .clone()
            .or(self.opts.default_runbook_url.clone())
            .unwrap_or_else(|| format!("{README}#{}", t.alert().to_lowercase()));
        annotations.insert("runbook_url".into(), literal(&runbook));
        if let Some(base) = &self.opts.dashboard_url {
            annotations.insert(
                "dashboard_url".into(),
                literal(&format!(
                    "{}{}",
                    base.trim_end_matches('/'),
                    governor_dashboard::pages::detail_href(namespace, name)
                )),
            );
        }
        annotations
    }
}
