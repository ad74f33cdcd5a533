//! Burn-rate alert rules per SLO: multi-window, multi-burn-rate alerts on the
//! error budget of each objective — the error rate, and each latency target
//! read as a ratio SLI (the share of requests slower than the threshold) —
//! with recording rules so the alert expressions stay cheap.
//!
//! Windows are the SRE workbook's for a 30-day SLO, scaled to the SLO's window
//! (never below one minute): page at 14.4x over 1h and 5m, and at 6x over 6h and
//! 30m; ticket at 3x over 1d and 2h, and at 1x over 3d and 6h.

use std::collections::{BTreeMap, BTreeSet};

use governor_crds::promql::escape_label_value;
use governor_crds::{HistogramKind, IndicatorSource, Problem, ServiceLevelObjective};
use serde::Serialize;

/// Recording rule names.
pub const ERROR_RATIO: &str = "slo:sli_error:ratio_rate";
pub const REQUESTS: &str = "slo:sli_requests:rate";
pub const ERROR_BUDGET: &str = governor_dashboard::read::series::ERROR_BUDGET;
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
    fn pairs(self) -> [(f64, f64, f64); 2] {
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

/// A window scaled from its 30-day value to the SLO's, in whole minutes, at least one.
pub fn scaled_window(base: f64, slo_window: f64) -> u64 {
    let minutes = (base * slo_window / THIRTY_DAYS / 60.0).round();
    (minutes.max(1.0) as u64) * 60
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

/// One objective's SLI.
struct Objective {
    id: String,
    /// "P99 latency under 100ms", "error rate under 0.1 %".
    what: String,
    /// Allowed bad share.
    allowed: f64,
    /// PromQL of the bad share over a window `{w}`.
    bad_ratio: String,
    /// PromQL of requests per second over `{w}`.
    requests: String,
}

/// The rules for one SLO, and notes on what was assumed or left out.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    pub group: Option<RuleGroup>,
    pub notes: Vec<String>,
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

fn objectives(
    slo: &ServiceLevelObjective,
    buckets: &dyn Buckets,
    notes: &mut Vec<String>,
) -> Result<Vec<Objective>, Vec<Problem>> {
    let spec = &slo.spec;
    let prom = &spec.indicators.prometheus;
    let sel = selector(slo, &[]);
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let targets = spec.objectives.latency.targets();
    if spec.indicators.source == IndicatorSource::Jaeger && !targets.is_empty() {
        notes.push(
            "latency is read from Jaeger traces, so its objectives get no burn-rate alerts \
             (they need a Prometheus histogram); the error objective still does"
                .into(),
        );
    } else if prom.latency.query.is_some() && !targets.is_empty() {
        notes.push(
            "indicators.prometheus.latency.query is raw PromQL, which cannot be read as a \
             ratio SLI; latency objectives get no burn-rate alerts (set latency.metric instead)"
                .into(),
        );
    } else {
        let metric = &prom.latency.metric;
        let mut unchecked = Vec::new();
        for (q, target) in targets {
            let field = q.name();
            let t = target.as_secs_f64();
            let what = format!("{} latency under {target}", field.to_uppercase());
            let id = format!("latency-{field}");
            let (bad_ratio, requests) = match prom.latency.histogram {
                HistogramKind::Native => (
                    format!(
                        "1 - histogram_fraction(0, {}, sum(rate({metric}{{{sel}}}[{{w}}])))",
                        le_text(t)
                    ),
                    format!("histogram_count(sum(rate({metric}{{{sel}}}[{{w}}])))"),
                ),
                HistogramKind::Classic => {
                    let le = match buckets.boundaries(&format!("{metric}_bucket"), &sel) {
                        None => {
                            unchecked.push(format!("le=\"{}\" ({field})", le_text(t)));
                            le_text(t)
                        }
                        Some(bounds) => match bounds
                            .iter()
                            .find(|(b, _)| (b - t).abs() <= 1e-9 * t.max(1.0))
                        {
                            Some((_, text)) => text.clone(),
                            None => {
                                let nearest = bounds
                                    .iter()
                                    .filter(|(b, _)| b.is_finite())
                                    .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()));
                                match nearest {
                                    None => {
                                        problems.push(Problem::new(
                                            format!("objectives.latency.{field}"),
                                            format!("{metric}_bucket has no series for this service, so no bucket can measure {target}"),
                                        ));
                                        continue;
                                    }
                                    Some((_, text)) if spec.alerting.allow_nearest_bucket => {
                                        notes.push(format!(
                                            "{what}: no bucket boundary of {metric}_bucket equals {target}; \
                                             using the nearest, le=\"{text}\" (alerting.allowNearestBucket)"
                                        ));
                                        text.clone()
                                    }
                                    Some((_, text)) => {
                                        problems.push(Problem::new(
                                            format!("objectives.latency.{field}"),
                                            format!(
                                                "no bucket boundary of {metric}_bucket equals {target}; the nearest is \
                                                 le=\"{text}\": add a bucket at {} or set alerting.allowNearestBucket",
                                                le_text(t)
                                            ),
                                        ));
                                        continue;
                                    }
                                }
                            }
                        },
                    };
                    (
                        format!(
                            "1 - (sum(rate({metric}_bucket{{{sel}, le=\"{}\"}}[{{w}}])) / sum(rate({metric}_count{{{sel}}}[{{w}}])))",
                            escape_label_value(&le)
                        ),
                        format!("sum(rate({metric}_count{{{sel}}}[{{w}}]))"),
                    )
                }
            };
            out.push(Objective {
                id,
                what,
                // 1 - 0.99 is 0.010000000000000009 in binary: keep the digits that mean something.
                allowed: (q.allowed_share() * 1e9).round() / 1e9,
                bad_ratio,
                requests,
            });
        }
        if !unchecked.is_empty() {
            notes.push(format!(
                "bucket boundaries of {metric}_bucket were not checked (pass --prometheus to check); \
                 assumed to exist: {}",
                unchecked.join(", ")
            ));
        }
    }
    let allowed = match (spec.objectives.error_rate, spec.objectives.availability) {
        (Some(e), Some(a)) => Some(e.min(1.0 - a)),
        (e, a) => e.or(a.map(|a| 1.0 - a)),
    };
    if let Some(allowed) = allowed {
        if prom.errors.query.is_some() || prom.requests.query.is_some() {
            notes.push(
                "the error or request signal is raw PromQL, which cannot be re-windowed; \
                 the error objective gets no burn-rate alerts"
                    .into(),
            );
        } else {
            let requests_metric = prom.requests.metric.clone().unwrap_or_default();
            let err = &prom.errors;
            let err_sel = selector(
                slo,
                &[format!(
                    "{}=~\"{}\"",
                    err.status_label,
                    escape_label_value(&err.status_regex)
                )],
            );
            out.push(Objective {
                id: "errors".into(),
                what: format!("error rate under {}", percent(allowed)),
                allowed,
                bad_ratio: format!(
                    "sum(rate({}{{{err_sel}}}[{{w}}])) / sum(rate({requests_metric}{{{sel}}}[{{w}}]))",
                    err.metric
                ),
                requests: format!("sum(rate({requests_metric}{{{sel}}}[{{w}}]))"),
            });
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The rule group for one SLO. `Err` names each field that prevents it.
pub fn generate(
    slo: &ServiceLevelObjective,
    opts: &Options,
    buckets: &dyn Buckets,
) -> Result<Generated, Vec<Problem>> {
    let spec = &slo.spec;
    let alerting = &spec.alerting;
    let namespace = slo
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = slo.metadata.name.clone().unwrap_or_default();
    let mut notes = Vec::new();
    let tiers: Vec<Tier> = [(Tier::Page, alerting.page), (Tier::Ticket, alerting.ticket)]
        .into_iter()
        .filter(|(_, on)| *on && alerting.enabled)
        .map(|(t, _)| t)
        .collect();
    if tiers.is_empty() {
        notes.push("alerting is disabled for this SLO: no rules".into());
        return Ok(Generated { group: None, notes });
    }
    let objectives = objectives(slo, buckets, &mut notes)?;
    if objectives.is_empty() {
        notes.push("no objective can be alerted on: no rules".into());
        return Ok(Generated { group: None, notes });
    }
    let window = spec.objectives.window.as_secs_f64();
    let mut ratio_windows = BTreeSet::new();
    let mut long_windows = BTreeSet::new();
    for t in &tiers {
        for (_, long, short) in t.pairs() {
            ratio_windows.insert(scaled_window(long, window));
            ratio_windows.insert(scaled_window(short, window));
            long_windows.insert(scaled_window(long, window));
        }
    }
    let ids = |o: &Objective| {
        BTreeMap::from([
            ("namespace".to_string(), namespace.clone()),
            ("slo".to_string(), name.clone()),
            ("objective".to_string(), o.id.clone()),
        ])
    };
    let mut rules = Vec::new();
    for o in &objectives {
        for w in &ratio_windows {
            rules.push(Rule {
                record: Some(format!("{ERROR_RATIO}{}", duration(*w))),
                expr: o.bad_ratio.replace("{w}", &duration(*w)),
                labels: ids(o),
                ..Rule::default()
            });
        }
        for w in &long_windows {
            rules.push(Rule {
                record: Some(format!("{REQUESTS}{}", duration(*w))),
                expr: o.requests.replace("{w}", &duration(*w)),
                labels: ids(o),
                ..Rule::default()
            });
        }
        rules.push(Rule {
            record: Some(ERROR_BUDGET.into()),
            expr: format!("vector({})", o.allowed),
            labels: ids(o),
            ..Rule::default()
        });
        let matcher = format!(
            "namespace=\"{}\", slo=\"{}\", objective=\"{}\"",
            escape_label_value(&namespace),
            escape_label_value(&name),
            escape_label_value(&o.id)
        );
        for t in &tiers {
            let clauses: Vec<String> = t
                .pairs()
                .iter()
                .map(|(factor, long, short)| {
                    let (l, s) = (duration(scaled_window(*long, window)), duration(scaled_window(*short, window)));
                    format!(
                        "(\n  {ERROR_RATIO}{l}{{{matcher}}} > ({factor} * {allowed})\n  and on (namespace, slo, objective)\n  {ERROR_RATIO}{s}{{{matcher}}} > ({factor} * {allowed})\n  and on (namespace, slo, objective)\n  {REQUESTS}{l}{{{matcher}}} >= {min}\n)",
                        allowed = o.allowed,
                        min = alerting.min_request_rate,
                    )
                })
                .collect();
            let (factor, long, _) = t.pairs()[0];
            let mut labels = alerting.labels.clone();
            labels.extend(ids(o));
            labels.insert("severity".into(), t.severity().into());
            labels.insert("tier".into(), t.name().into());
            let mut annotations = BTreeMap::new();
            annotations.insert(
                "summary".into(),
                literal(&format!(
                    "{namespace}/{name}: {} is burning its error budget {}",
                    o.what,
                    if *t == Tier::Page { "fast" } else { "steadily" }
                )),
            );
            annotations.insert(
                "description".into(),
                format!(
                    "{{{{ $value | humanizePercentage }}}} of requests to {} missed \"{}\" over the last {} or longer \
                     (the objective allows {} over {}); at {}x this burn spends the whole budget in {}.",
                    literal(&spec.service),
                    literal(&o.what),
                    duration(scaled_window(long, window)),
                    percent(o.allowed),
                    duration(window as u64),
                    factor,
                    duration(scaled_window(THIRTY_DAYS / factor, window)),
                ),
            );
            let runbook = alerting
                .runbook_url
                .clone()
                .or(opts.default_runbook_url.clone())
                .unwrap_or_else(|| format!("{README}#{}", t.alert().to_lowercase()));
            annotations.insert("runbook_url".into(), literal(&runbook));
            if let Some(base) = &opts.dashboard_url {
                annotations.insert(
                    "dashboard_url".into(),
                    literal(&format!(
                        "{}{}",
                        base.trim_end_matches('/'),
                        governor_dashboard::pages::detail_href(&namespace, &name)
                    )),
                );
            }
            rules.push(Rule {
                alert: Some(t.alert().into()),
                expr: clauses.join("\nor on (namespace, slo, objective)\n"),
                labels,
                annotations,
                ..Rule::default()
            });
        }
    }
    Ok(Generated {
        group: Some(RuleGroup {
            name: format!("governor-slo-{namespace}-{name}"),
            rules,
        }),
        notes,
    })
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

/// A PrometheusRule (prometheus-operator) holding the group, owned by the SLO.
pub fn prometheus_rule(slo: &ServiceLevelObjective, group: &RuleGroup) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": object_meta(slo),
        "spec": { "groups": [group] },
    })
}

/// A ConfigMap holding the group as a Prometheus rule file, owned by the SLO.
pub fn config_map(
    slo: &ServiceLevelObjective,
    group: &RuleGroup,
) -> Result<serde_json::Value, String> {
    let name = slo.metadata.name.clone().unwrap_or_default();
    let text = to_yaml(&RuleFile {
        groups: vec![group.clone()],
    })?;
    Ok(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(slo),
        "data": { format!("{name}.rules.yaml"): text },
    }))
}

/// Name `<slo>-slo-rules`, the SLO's namespace, managed-by label, and an owner
/// reference to the SLO when it has a uid (so deleting the SLO deletes them).
fn object_meta(slo: &ServiceLevelObjective) -> serde_json::Value {
    let name = slo.metadata.name.clone().unwrap_or_default();
    let mut meta = serde_json::json!({
        "name": format!("{name}-slo-rules"),
        "namespace": slo.metadata.namespace,
        "labels": {
            "app.kubernetes.io/managed-by": "governor",
            "governor.dev/slo": name,
        },
    });
    if let Some(uid) = &slo.metadata.uid {
        meta["ownerReferences"] = serde_json::json!([{
            "apiVersion": "governor.dev/v1alpha1",
            "kind": "ServiceLevelObjective",
            "name": name,
            "uid": uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }]);
    }
    meta
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
            "1m",
            "never below a minute"
        );
        assert_eq!(duration(scaled_window(3600.0, 28.0 * 86_400.0)), "56m");
        assert_eq!(le_text(0.1), "0.1");
        assert_eq!(le_text(1.0), "1");
        assert_eq!(le_text(2.5), "2.5");
    }

    #[test]
    fn annotations_cannot_run_template_actions() {
        assert_eq!(literal("a{{ .x }}"), "a{{ \"{{\" }} .x }}");
    }
}

/// Why an SLO's rules could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the SLO has no {0}")]
    Incomplete(&'static str),
    #[error("{what} {object}: {}", crate::error::api_text(.source))]
    Api {
        what: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}")]
    Yaml(String),
}

/// Where an SLO's rules went when applied to a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    PrometheusRule(String),
    ConfigMap(String),
    /// Alerting is off or no objective can be alerted on; stale rules were removed.
    Nothing,
}

/// Whether the cluster serves prometheus-operator's PrometheusRule.
pub async fn has_prometheus_rule(client: &kube::Client) -> Result<bool, kube::Error> {
    match client
        .list_api_group_resources("monitoring.coreos.com/v1")
        .await
    {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == "prometheusrules")),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

fn prometheus_rule_resource() -> kube::discovery::ApiResource {
    kube::discovery::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PrometheusRule"),
        "prometheusrules",
    )
}

/// Applies one SLO's rules (server-side apply, field manager `governor`): a
/// PrometheusRule when the cluster has the CRD, otherwise a ConfigMap; both
/// owned by the SLO, and the other kind removed if Governor left one earlier.
pub async fn apply(
    client: &kube::Client,
    slo: &ServiceLevelObjective,
    group: Option<&RuleGroup>,
    prometheus_operator: bool,
) -> Result<Applied, ApplyError> {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};

    let namespace = slo
        .metadata
        .namespace
        .clone()
        .ok_or(ApplyError::Incomplete("namespace"))?;
    let name = format!(
        "{}-slo-rules",
        slo.metadata
            .name
            .clone()
            .ok_or(ApplyError::Incomplete("name"))?
    );
    let params = PatchParams::apply("governor").force();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let rules_api: Option<Api<DynamicObject>> = prometheus_operator
        .then(|| Api::namespaced_with(client.clone(), &namespace, &prometheus_rule_resource()));
    let explain = |what: &'static str, source: kube::Error| ApplyError::Api {
        what,
        object: format!("{namespace}/{name}"),
        source,
    };
    // Only what Governor created is removed.
    let remove_config_map = async {
        match config_maps.get_opt(&name).await {
            Ok(Some(cm))
                if cm
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("app.kubernetes.io/managed-by"))
                    .is_some_and(|v| v == "governor") =>
            {
                config_maps
                    .delete(&name, &DeleteParams::default())
                    .await
                    .map(|_| ())
                    .map_err(|e| explain("deleting ConfigMap", e))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(explain("reading ConfigMap", e)),
        }
    };
    let Some(group) = group else {
        remove_config_map.await?;
        if let Some(api) = &rules_api {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(explain("deleting PrometheusRule", e)),
            }
        }
        return Ok(Applied::Nothing);
    };
    match rules_api {
        Some(api) => {
            let object = prometheus_rule(slo, group);
            api.patch(&name, &params, &Patch::Apply(&object))
                .await
                .map_err(|e| explain("applying PrometheusRule", e))?;
            remove_config_map.await?;
            Ok(Applied::PrometheusRule(name.clone()))
        }
        None => {
            let object = config_map(slo, group).map_err(ApplyError::Yaml)?;
            config_maps
                .patch(&name, &params, &Patch::Apply(&object))
                .await
                .map_err(|e| explain("applying ConfigMap", e))?;
            Ok(Applied::ConfigMap(name.clone()))
        }
    }
}
