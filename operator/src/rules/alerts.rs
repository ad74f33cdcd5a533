//! The rules for one objective: recordings of its bad share and request rate
//! per window, its error budget, and one burn-rate alert per tier; and the
//! SLO's alert on its metrics going absent.

use std::collections::{BTreeMap, BTreeSet};

use governor_crds::promql::{escape_label_value, is_label_name};
use governor_crds::{AlertRoute, RESERVED_ALERT_LABELS, ServiceLevelObjective};

use super::objectives::Objective;
use super::{
    Clause, ERROR_BUDGET, ERROR_RATIO, NO_DATA_ALERT, NO_DATA_WINDOW, Options, README, REQUESTS,
    Rule, Scale, THIRTY_DAYS, Tier, duration, literal, percent,
};

/// Writes the rules of one SLO's objectives.
pub(super) struct ObjectiveRules<'a> {
    slo: &'a ServiceLevelObjective,
    opts: &'a Options,
    pub(super) namespace: String,
    pub(super) name: String,
    /// The SLO's window, in seconds.
    pub(super) window: f64,
    /// How the workbook's windows scale to it.
    pub(super) scale: Scale,
}

impl<'a> ObjectiveRules<'a> {
    pub(super) fn new(slo: &'a ServiceLevelObjective, opts: &'a Options) -> Self {
        let namespace = slo
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = slo.metadata.name.clone().unwrap_or_default();
        let window = slo.spec.objectives.window.as_secs_f64();
        ObjectiveRules {
            slo,
            opts,
            namespace,
            name,
            window,
            scale: Scale::new(window, opts.scrape_interval),
        }
    }

    /// The labels that name an objective's series.
    pub(super) fn ids(&self, o: &Objective) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("namespace".to_string(), self.namespace.clone()),
            ("slo".to_string(), self.name.clone()),
            ("objective".to_string(), o.id.clone()),
        ])
    }

    /// The labels of an objective's burn-rate recordings: the SLO's own
    /// labels that can be Prometheus labels (see [`slo_labels`]), then the ids.
    fn recorded_labels(&self, o: &Objective) -> BTreeMap<String, String> {
        let mut labels = slo_labels(self.slo);
        labels.extend(self.ids(o));
        labels
    }

    /// The bad share over each window, the request rate over each long window,
    /// and the allowed bad share.
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
                labels: self.recorded_labels(o),
                ..Rule::default()
            });
        }
        for w in long_windows {
            rules.push(Rule {
                record: Some(format!("{REQUESTS}{}", duration(*w))),
                expr: o.requests.replace("{w}", &duration(*w)),
                labels: self.recorded_labels(o),
                ..Rule::default()
            });
        }
        rules.push(Rule {
            record: Some(ERROR_BUDGET.into()),
            expr: format!("vector({})", o.allowed),
            labels: self.recorded_labels(o),
            ..Rule::default()
        });
        rules
    }

    /// An alert's labels: `alerting.labels`, the tier's severity, the
    /// route's labels, then Governor's own (`namespace`, `slo`, `tier`, and
    /// `objective` when given), which nothing overrides. Prometheus expands
    /// templates in alert labels as in annotations: validation refuses `{{`
    /// in these values, and they are written literal all the same.
    fn alert_labels(
        &self,
        severity: &str,
        tier: &str,
        route: &AlertRoute,
        ids: BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let mut labels: BTreeMap<String, String> = self
            .slo
            .spec
            .alerting
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), literal(v)))
            .collect();
        labels.insert("severity".into(), severity.into());
        labels.extend(route.labels.iter().map(|(k, v)| (k.clone(), literal(v))));
        labels.extend(ids);
        labels.insert("tier".into(), tier.into());
        labels
    }

    /// Governor's annotations with the route's laid over them, made literal.
    fn route_annotations(
        mut annotations: BTreeMap<String, String>,
        route: &AlertRoute,
    ) -> BTreeMap<String, String> {
        annotations.extend(
            route
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), literal(v))),
        );
        annotations
    }

    /// The burn-rate alert of one tier on one objective, over its live clauses.
    pub(super) fn alert(&self, o: &Objective, t: Tier, clauses: &[Clause]) -> Rule {
        let route = t.route(&self.slo.spec.alerting);
        Rule {
            alert: Some(route.alert.clone().unwrap_or_else(|| t.alert().into())),
            expr: self.expr(o, clauses),
            labels: self.alert_labels(t.severity(), t.name(), route, self.ids(o)),
            annotations: Self::route_annotations(self.annotations(o, t, clauses[0]), route),
            ..Rule::default()
        }
    }

    /// Either clause burning over its factor, with enough traffic.
    fn expr(&self, o: &Objective, clauses: &[Clause]) -> String {
        let matcher = format!(
            "namespace=\"{}\", slo=\"{}\", objective=\"{}\"",
            escape_label_value(&self.namespace),
            escape_label_value(&self.name),
            escape_label_value(&o.id)
        );
        let clauses: Vec<String> = clauses
            .iter()
            .map(|c| {
                let (factor, l, s) = (c.factor, duration(c.long), duration(c.short));
                format!(
                    "(\n  {ERROR_RATIO}{l}{{{matcher}}} > ({factor} * {allowed})\n  and on (namespace, slo, objective)\n  {ERROR_RATIO}{s}{{{matcher}}} > ({factor} * {allowed})\n  and on (namespace, slo, objective)\n  {REQUESTS}{l}{{{matcher}}} >= {min}\n)",
                    allowed = o.allowed,
                    min = self.slo.spec.alerting.min_request_rate,
                )
            })
            .collect();
        clauses.join("\nor on (namespace, slo, objective)\n")
    }

    /// The runbook: the SLO's, else the installation's, else the README's
    /// section `anchor`.
    fn runbook(&self, anchor: &str) -> String {
        self.slo
            .spec
            .alerting
            .runbook_url
            .clone()
            .or(self.opts.default_runbook_url.clone())
            .unwrap_or_else(|| format!("{README}#{}", anchor.to_lowercase()))
    }

    /// The runbook and (when known) dashboard link.
    fn links(&self, anchor: &str) -> BTreeMap<String, String> {
        let mut annotations = BTreeMap::new();
        annotations.insert("runbook_url".into(), literal(&self.runbook(anchor)));
        if let Some(base) = &self.opts.dashboard_url {
            annotations.insert(
                "dashboard_url".into(),
                literal(&format!(
                    "{}{}",
                    base.trim_end_matches('/'),
                    governor_dashboard::pages::detail_href(&self.namespace, &self.name)
                )),
            );
        }
        annotations
    }

    /// Summary, description, runbook and (when known) dashboard link; the
    /// description tells of the tier's first live clause.
    fn annotations(&self, o: &Objective, t: Tier, first: Clause) -> BTreeMap<String, String> {
        let (namespace, name, window) = (&self.namespace, &self.name, self.window);
        let mut annotations = self.links(t.alert());
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
                duration(first.long),
                percent(o.allowed),
                duration(window as u64),
                first.factor,
                duration(self.scale.window(THIRTY_DAYS / first.factor)),
            ),
        );
        annotations
    }

    /// The SLO's alert on the series its objectives count going absent for
    /// `NO_DATA_WINDOW` (or two scrape intervals, if longer): one alert per
    /// SLO, whichever series is missing.
    pub(super) fn no_data(&self, objectives: &[Objective]) -> Option<Rule> {
        let mut sources: Vec<&str> = objectives.iter().map(|o| o.source.as_str()).collect();
        sources.sort();
        sources.dedup();
        if sources.is_empty() {
            return None;
        }
        let window = duration(NO_DATA_WINDOW.max(self.scale.floor));
        let expr = sources
            .iter()
            .map(|s| format!("absent_over_time({s}[{window}])"))
            .collect::<Vec<_>>()
            .join("\nor\n");
        let route = &self.slo.spec.alerting.routes.no_data;
        let ids = BTreeMap::from([
            ("namespace".to_string(), self.namespace.clone()),
            ("slo".to_string(), self.name.clone()),
        ]);
        let mut annotations = self.links(NO_DATA_ALERT);
        annotations.insert(
            "summary".into(),
            literal(&format!(
                "{}/{}: the metrics of {} are absent",
                self.namespace, self.name, self.slo.spec.service
            )),
        );
        annotations.insert(
            "description".into(),
            literal(&format!(
                "Prometheus has no sample of {} for {window}: the SLO cannot be measured, its \
                 burn-rate alerts cannot fire and its error budget is not counted.",
                sources.join(" or ")
            )),
        );
        Some(Rule {
            alert: Some(route.alert.clone().unwrap_or_else(|| NO_DATA_ALERT.into())),
            expr,
            labels: self.alert_labels("warning", "no-data", route, ids),
            annotations: Self::route_annotations(annotations, route),
            ..Rule::default()
        })
    }
}

/// The SLO's own labels that go on its burn-rate recordings (and so on its
/// alerts): keys without a prefix (`team`, not `app.kubernetes.io/name`:
/// prefixed keys are tooling's, and not Prometheus label names) that are
/// Prometheus label names and not ones Governor sets (or `severity`, `le`).
pub(super) fn slo_labels(slo: &ServiceLevelObjective) -> BTreeMap<String, String> {
    slo.metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| {
            is_label_name(k)
                && !RESERVED_ALERT_LABELS.contains(&k.as_str())
                && !["severity", "le", "quantile"].contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
