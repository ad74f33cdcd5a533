//! A ServiceLevelObjective → OpenSLO documents.

use super::*;

/// The OpenSLO documents for one ServiceLevelObjective: an `SLO` per latency
/// target and one for the error objective, each with its `SLI` inline and,
/// when alerting is on, an `AlertPolicy` inline per tier; and notes on what
/// OpenSLO cannot carry.
pub fn export(slo: &ServiceLevelObjective) -> (Vec<Value>, Vec<String>) {
    let spec = &slo.spec;
    let mut notes = Vec::new();
    let exporter = Exporter::new(slo, &mut notes);
    let mut out = if spec.indicators.source == governor_crds::IndicatorSource::Jaeger {
        notes.push(format!(
            "latency is read from Jaeger traces: written as thresholdMetric SLIs of metricSource type {JAEGER_SOURCE} (Governor's own fields service, operation, quantile), which other OpenSLO tools may not read"
        ));
        exporter.jaeger_latency()
    } else {
        exporter.prometheus_latency()
    };
    out.extend(exporter.errors());
    if spec.connection_pool.is_some() || spec.cache.is_some() {
        notes.push("the connection pool and cache settings have no OpenSLO form: left out".into());
    }
    notes.push(
        "scaling, and the Governor-only indicator fields, have no OpenSLO form: left out".into(),
    );
    (out, notes)
}

/// What every OpenSLO SLO written for one ServiceLevelObjective shares.
struct Exporter<'a> {
    spec: &'a governor_crds::ServiceLevelObjectiveSpec,
    name: String,
    /// The Prometheus label selector of the service's series.
    selector: String,
    window: String,
    annotations: Value,
    policies: Vec<Value>,
}

impl<'a> Exporter<'a> {
    fn new(slo: &'a ServiceLevelObjective, notes: &mut Vec<String>) -> Self {
        let spec = &slo.spec;
        let name = slo.metadata.name.clone().unwrap_or_default();
        let namespace = slo
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let target = &spec.target_ref;
        let annotations = json!({
            SLO_ANNOTATION: name,
            NAMESPACE_ANNOTATION: namespace,
            TARGET_ANNOTATION: format!("{}/{}/{}", target.api_version, target.kind, target.name),
        });
        Exporter {
            spec,
            name,
            selector: selector(spec),
            window: window(spec, notes),
            annotations,
            policies: alert_policies(spec),
        }
    }

    /// One OpenSLO SLO named `<name>-<suffix>`.
    fn document(&self, suffix: &str, indicator: Value, objective: Value) -> Value {
        let mut s = json!({
            "apiVersion": API_VERSION,
            "kind": "SLO",
            "metadata": {"name": format!("{}-{suffix}", self.name), "annotations": self.annotations},
            "spec": {
                "service": self.spec.service,
                "indicator": indicator,
                "timeWindow": [{"duration": self.window, "isRolling": true}],
                "budgetingMethod": "Occurrences",
                "objectives": [objective],
            },
        });
        if !self.policies.is_empty() {
            s["spec"]["alertPolicies"] = json!(self.policies);
        }
        s
    }

    /// One SLO per latency target, its threshold SLI on `metric_source(q)`.
    fn latency(&self, metric_source: impl Fn(Quantile) -> Value) -> Vec<Value> {
        let name = &self.name;
        self.spec
            .objectives
            .latency
            .targets()
            .into_iter()
            .map(|(q, t)| {
                let indicator = json!({
                    "metadata": {"name": format!("{name}-latency-{}", q.name())},
                    "spec": {"thresholdMetric": metric_source(q)},
                });
                self.document(
                    &format!("latency-{}", q.name()),
                    indicator,
                    latency_objective(q, t),
                )
            })
            .collect()
    }

    /// Latency targets read from Jaeger traces (Governor's own source type).
    fn jaeger_latency(&self) -> Vec<Value> {
        let jaeger = self.spec.indicators.jaeger.as_ref();
        self.latency(|q| {
            let mut source_spec = json!({"quantile": q.value()});
            if let Some(s) = jaeger.and_then(|j| j.service.as_ref()) {
                source_spec["service"] = json!(s);
            }
            if let Some(o) = jaeger.and_then(|j| j.operation.as_ref()) {
                source_spec["operation"] = json!(o);
            }
            json!({"metricSource": {"type": JAEGER_SOURCE, "spec": source_spec}})
        })
    }

    /// Latency targets as `histogram_quantile` over the service's buckets.
    fn prometheus_latency(&self) -> Vec<Value> {
        let prom = &self.spec.indicators.prometheus;
        let selector = &self.selector;
        let buckets = match (&prom.latency.query, prom.latency.histogram) {
            (Some(q), _) => q.clone(),
            (None, governor_crds::HistogramKind::Classic) => {
                format!(
                    "sum by (le) (rate({}_bucket{{{selector}}}[5m]))",
                    prom.latency.metric
                )
            }
            (None, governor_crds::HistogramKind::Native) => {
                format!("sum(rate({}{{{selector}}}[5m]))", prom.latency.metric)
            }
        };
        self.latency(|q| prometheus_source(format!("histogram_quantile({}, {buckets})", q.value())))
    }

    /// The availability SLO (errors over requests), when the spec has one.
    fn errors(&self) -> Option<Value> {
        let allowed = crate::rules::allowed_error_share(&self.spec.objectives)?;
        let prom = &self.spec.indicators.prometheus;
        let selector = &self.selector;
        let requests = match (&prom.requests.query, &prom.requests.metric) {
            (Some(q), _) => q.clone(),
            (None, Some(m)) => format!("sum(rate({m}{{{selector}}}[5m]))"),
            (None, None) => String::new(),
        };
        let errors = match &prom.errors.query {
            Some(q) => q.clone(),
            None => format!(
                "sum(rate({}{{{selector}, {}=~\"{}\"}}[5m]))",
                prom.errors.metric,
                prom.errors.status_label,
                governor_crds::promql::escape_label_value(&prom.errors.status_regex)
            ),
        };
        let indicator = json!({
            "metadata": {"name": format!("{}-errors", self.name)},
            "spec": {"ratioMetric": {"counter": false, "bad": prometheus_source(errors), "total": prometheus_source(requests)}},
        });
        let target = ((1.0 - allowed) * 1e9).round() / 1e9;
        Some(self.document(
            "errors",
            indicator,
            json!({"displayName": "Availability", "target": target}),
        ))
    }
}

/// A metric source reading `query` from Prometheus.
fn prometheus_source(query: String) -> Value {
    json!({"metricSource": {"type": "Prometheus", "spec": {"query": query}}})
}

/// The label selector of the service's series: its service label and the
/// spec's extra labels.
fn selector(spec: &governor_crds::ServiceLevelObjectiveSpec) -> String {
    let prom = &spec.indicators.prometheus;
    let mut parts = vec![format!(
        "{}=\"{}\"",
        prom.service_label,
        governor_crds::promql::escape_label_value(&spec.service)
    )];
    parts.extend(
        prom.labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", governor_crds::promql::escape_label_value(v))),
    );
    parts.join(", ")
}

/// The SLO window as OpenSLO writes it, in whole minutes at least.
fn window(spec: &governor_crds::ServiceLevelObjectiveSpec, notes: &mut Vec<String>) -> String {
    let seconds = spec.objectives.window.as_secs_f64() as u64;
    let window = duration(seconds);
    if window.ends_with('s') {
        notes.push(format!(
            "the window {window} is not whole minutes; written as {}m",
            seconds / 60
        ));
        return format!("{}m", seconds / 60);
    }
    window
}

/// The objective of a latency SLO: at most `t` at quantile `q`.
fn latency_objective(q: Quantile, t: governor_crds::Latency) -> Value {
    json!({"displayName": format!("{} latency", q.name().to_uppercase()), "op": "lte", "value": t.as_secs_f64(), "target": q.value()})
}

/// An inline AlertPolicy per tier alerting is on for, with the fast clause
/// of the tier as its condition (Governor also alerts on the slow one).
fn alert_policies(spec: &governor_crds::ServiceLevelObjectiveSpec) -> Vec<Value> {
    let a = &spec.alerting;
    if !a.enabled {
        return Vec::new();
    }
    let window = spec.objectives.window.as_secs_f64();
    [
        (Tier::Page, a.page, "page"),
        (Tier::Ticket, a.ticket, "ticket"),
    ]
    .into_iter()
    .filter(|(_, on, _)| *on)
    .map(|(tier, _, severity)| {
        let (burn, long, _) = tier.pairs()[0];
        json!({
            "kind": "AlertPolicy",
            "metadata": {"name": format!("governor-{severity}")},
            "spec": {
                "alertWhenBreaching": true,
                "alertWhenResolved": false,
                "alertWhenNoData": false,
                "conditions": [{
                    "kind": "AlertCondition",
                    "metadata": {"name": format!("governor-{severity}-burn")},
                    "spec": {
                        "severity": severity,
                        "condition": {
                            "kind": "burnrate",
                            "op": "gte",
                            "threshold": burn,
                            "lookbackWindow": duration(crate::rules::scaled_window(long, window)),
                            "alertAfter": "0m",
                        },
                    },
                }],
                "notificationTargets": [],
            },
        })
    })
    .collect()
}
