//! Every rule the API server enforces through the CRD (OpenAPI and CEL), plus the
//! ones it cannot (PromQL, cross-field budgets, templates), as one pass that
//! returns every problem with its field path.

use std::collections::BTreeMap;
use std::fmt;

use crate::duration::Duration;
use crate::promql;
use crate::v1alpha1::*;

/// One problem with a resource: the field path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// Dotted path from the object root, e.g. `spec.scaling.minReplicas`.
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(Problem::new(format!("spec.{path}"), message));
    }
    /// Every key of a user-set label map must be a valid, unreserved label name.
    fn label_names<'a>(&mut self, path: &str, keys: impl Iterator<Item = &'a String>) {
        for key in keys {
            if !promql::is_label_name(key) {
                self.push(
                    &format!("{path}.{key}"),
                    "label names must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __",
                );
            }
            if key.chars().count() > 128 {
                self.push(
                    &format!("{path}.{key}"),
                    "label names must be at most 128 characters",
                );
            }
        }
    }

    /// Every value of a user-set label map must be at most `max` characters;
    /// with `literal`, also free of `{{` and `}}`.
    fn label_values(
        &mut self,
        path: &str,
        labels: &BTreeMap<String, String>,
        max: usize,
        literal: bool,
    ) {
        for (key, value) in labels {
            if value.chars().count() > max {
                self.push(
                    &format!("{path}.{key}"),
                    format!("label values must be at most {max} characters"),
                );
            }
            if literal && has_template(value) {
                self.push(&format!("{path}.{key}"), NO_TEMPLATE);
            }
        }
    }

    fn check(&mut self, ok: bool, path: &str, message: &str) {
        if !ok {
            self.push(path, message);
        }
    }
}

/// Why a value that reaches an alert's labels or annotations may not hold `{{`
/// or `}}`.
const NO_TEMPLATE: &str = "must not contain {{ or }} (Prometheus would run them as a template)";

/// Whether `s` holds a Go template delimiter, which Prometheus would expand in
/// an alert's labels and annotations.
pub fn has_template(s: &str) -> bool {
    s.contains("{{") || s.contains("}}")
}

fn ratio_open_closed(v: f64) -> bool {
    v.is_finite() && v > 0.0 && v <= 1.0
}

impl ServiceLevelObjectiveSpec {
    /// Every problem with this spec; empty when valid.
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Problems::default();
        p.check(!self.service.is_empty(), "service", "must not be empty");
        p.check(
            self.service.len() <= 253,
            "service",
            "must be at most 253 characters",
        );
        p.check(
            !self.target_ref.name.is_empty(),
            "targetRef.name",
            "must not be empty",
        );
        p.check(
            !self.target_ref.kind.is_empty(),
            "targetRef.kind",
            "must not be empty",
        );
        p.check(
            !self.target_ref.api_version.is_empty(),
            "targetRef.apiVersion",
            "must not be empty",
        );
        self.validate_objectives(&mut p);
        self.validate_indicators(&mut p);
        self.validate_scaling(&mut p);
        self.validate_pool(&mut p);
        self.validate_cache(&mut p);
        self.validate_alerting(&mut p);
        self.validate_headroom(&mut p);
        p.0.sort();
        p.0.dedup();
        p.0
    }

    fn validate_objectives(&self, p: &mut Problems) {
        let o = &self.objectives;
        let l = &o.latency;
        if l.targets().is_empty() && o.error_rate.is_none() && o.availability.is_none() {
            p.push(
                "objectives",
                "at least one objective is required: a latency percentile, errorRate or availability",
            );
        }
        for (q, target) in l.targets() {
            let name = q.name();
            p.check(
                !target.0.is_zero(),
                &format!("objectives.latency.{name}"),
                "must be greater than 0",
            );
        }
        let pairs = [
            ("p50", l.p50, "p90", l.p90),
            ("p90", l.p90, "p95", l.p95),
            ("p95", l.p95, "p99", l.p99),
            ("p90", l.p90, "p99", l.p99),
            ("p99", l.p99, "p999", l.p999),
        ];
        for (lo_name, lo, hi_name, hi) in pairs {
            if let (Some(lo), Some(hi)) = (lo, hi)
                && lo > hi
            {
                p.push(
                    &format!("objectives.latency.{lo_name}"),
                    format!("{lo_name} must be <= {hi_name}"),
                );
            }
        }
        if let Some(e) = o.error_rate {
            p.check(
                ratio_open_closed(e),
                "objectives.errorRate",
                "must be a ratio in (0, 1], e.g. 0.001 for 0.1 %",
            );
        }
        if let Some(a) = o.availability {
            p.check(
                a.is_finite() && a > 0.0 && a < 1.0,
                "objectives.availability",
                "must be a ratio in (0, 1), e.g. 0.999 for 99.9 %",
            );
        }
        p.check(
            o.window >= Duration::from_secs(3600),
            "objectives.window",
            "must be at least 1h (typically 28d or 30d)",
        );
        p.check(
            o.evaluation_interval >= Duration::from_secs(1),
            "objectives.evaluationInterval",
            "must be at least 1s",
        );
        p.check(
            o.evaluation_interval < o.window,
            "objectives.evaluationInterval",
            "must be shorter than the window",
        );
    }

    fn validate_indicators(&self, p: &mut Problems) {
        let ind = &self.indicators;
        if ind.source == IndicatorSource::Jaeger && ind.jaeger.is_none() {
            p.push(
                "indicators.jaeger",
                "source jaeger requires the jaeger block",
            );
        }
        let prom = &ind.prometheus;
        p.check(
            promql::is_label_name(&prom.service_label),
            "indicators.prometheus.serviceLabel",
            "must be a label name matching [a-zA-Z_][a-zA-Z0-9_]*",
        );
        p.label_names("indicators.prometheus.labels", prom.labels.keys());
        p.label_values(
            "indicators.prometheus.labels",
            &prom.labels,
            MAX_MATCHER_VALUE,
            false,
        );
        let check_signal =
            |p: &mut Problems, name: &str, metric: Option<&str>, query: &Option<String>| {
                match metric {
                    None if query.is_none() => p.push(
                        &format!("indicators.prometheus.{name}"),
                        "set metric or query",
                    ),
                    None => {}
                    Some(metric) if !promql::is_metric_name(metric) => p.push(
                        &format!("indicators.prometheus.{name}.metric"),
                        format!("{metric:?} is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"),
                    ),
                    Some(_) => {}
                }
                if let Some(q) = query
                    && let Err(e) = promql::check_query(q)
                {
                    p.push(&format!("indicators.prometheus.{name}.query"), e);
                }
            };
        let signals: [(&str, Option<&str>, &Option<String>); 9] = [
            ("latency", Some(&prom.latency.metric), &prom.latency.query),
            (
                "requests",
                prom.requests.metric.as_deref(),
                &prom.requests.query,
            ),
            ("errors", Some(&prom.errors.metric), &prom.errors.query),
            (
                "cacheHits",
                prom.cache_hits.metric.as_deref(),
                &prom.cache_hits.query,
            ),
            (
                "cacheMisses",
                prom.cache_misses.metric.as_deref(),
                &prom.cache_misses.query,
            ),
            (
                "poolInUse",
                prom.pool_in_use.metric.as_deref(),
                &prom.pool_in_use.query,
            ),
            (
                "poolMax",
                prom.pool_max.metric.as_deref(),
                &prom.pool_max.query,
            ),
            (
                "poolPending",
                prom.pool_pending.metric.as_deref(),
                &prom.pool_pending.query,
            ),
            (
                "poolWaitTime",
                prom.pool_wait_time.metric.as_deref(),
                &prom.pool_wait_time.query,
            ),
        ];
        for (name, metric, query) in signals {
            check_signal(p, name, metric, query);
        }
        p.check(
            promql::is_label_name(&prom.errors.status_label),
            "indicators.prometheus.errors.statusLabel",
            "must be a label name matching [a-zA-Z_][a-zA-Z0-9_]*",
        );
        if let Err(e) = promql::check_regex(&prom.errors.status_regex) {
            p.push("indicators.prometheus.errors.statusRegex", e);
        }
    }

    fn validate_scaling(&self, p: &mut Problems) {
        let s = &self.scaling;
        p.check(
            s.min_replicas >= 1,
            "scaling.minReplicas",
            "must be at least 1",
        );
        p.check(
            s.max_replicas >= 1,
            "scaling.maxReplicas",
            "must be at least 1",
        );
        p.check(
            s.min_replicas <= s.max_replicas,
            "scaling.minReplicas",
            "minReplicas must be <= maxReplicas",
        );
        p.check(
            s.scale_up.max_pods >= 1,
            "scaling.scaleUp.maxPods",
            "must be at least 1",
        );
        p.check(
            s.scale_up.max_percent >= 1,
            "scaling.scaleUp.maxPercent",
            "must be at least 1",
        );
        p.check(
            !s.scale_up.period.0.is_zero(),
            "scaling.scaleUp.period",
            "must be greater than 0",
        );
        p.check(
            s.scale_down.max_pods >= 1,
            "scaling.scaleDown.maxPods",
            "must be at least 1",
        );
        p.check(
            (1..=100).contains(&s.scale_down.max_percent),
            "scaling.scaleDown.maxPercent",
            "must be between 1 and 100",
        );
        p.check(
            !s.scale_down.period.0.is_zero(),
            "scaling.scaleDown.period",
            "must be greater than 0",
        );
    }

    fn validate_pool(&self, p: &mut Problems) {
        let Some(pool) = &self.connection_pool else {
            return;
        };
        p.check(
            pool.min_size >= 1,
            "connectionPool.minSize",
            "must be at least 1",
        );
        p.check(
            pool.min_size <= pool.max_size,
            "connectionPool.minSize",
            "minSize must be <= maxSize",
        );
        let db = &pool.database;
        p.check(
            db.max_connections >= 1,
            "connectionPool.database.maxConnections",
            "must be at least 1",
        );
        p.check(
            ratio_open_closed(db.budget_ratio),
            "connectionPool.database.budgetRatio",
            "must be a ratio in (0, 1], e.g. 0.8",
        );
        p.check(
            db.reserved_connections >= 0,
            "connectionPool.database.reservedConnections",
            "must not be negative",
        );
        let floor = i64::from(self.scaling.min_replicas) * i64::from(pool.min_size);
        if ratio_open_closed(db.budget_ratio) && floor > db.budget() {
            p.push(
                "connectionPool.minSize",
                format!(
                    "minReplicas x connectionPool.minSize exceeds the database connection budget \
                     ({} x {} = {} > {} = floor({} x {}) - {} reserved)",
                    self.scaling.min_replicas,
                    pool.min_size,
                    floor,
                    db.budget(),
                    db.max_connections,
                    db.budget_ratio,
                    db.reserved_connections
                ),
            );
        }
    }

    fn validate_cache(&self, p: &mut Problems) {
        let Some(cache) = &self.cache else { return };
        p.check(
            ratio_open_closed(cache.hit_rate_target),
            "cache.hitRateTarget",
            "must be a ratio in (0, 1], e.g. 0.8",
        );
        let Some(action) = &cache.warm_up else { return };
        match (&action.job, &action.http) {
            (Some(_), Some(_)) | (None, None) => p.push(
                "cache.warmUp",
                "exactly one warming action is required: job or http",
            ),
            _ => {}
        }
        // An old form gets the one message saying what to write instead.
        if action.job.as_ref().is_some_and(|j| j.template.is_some()) {
            p.push("cache.warmUp.job.template", crate::JOB_TEMPLATE_GONE);
        } else if let Some(job) = &action.job {
            p.check(
                !job.from_cron_job.is_empty(),
                "cache.warmUp.job.fromCronJob",
                "name the CronJob (in the SLO's namespace) whose jobTemplate warms the cache",
            );
        }
        if let Some(http) = &action.http {
            if http.url.is_some() || http.routes.is_some() {
                p.push("cache.warmUp.http.url", crate::HTTP_URL_GONE);
                return;
            }
            p.check(
                !http.service.is_empty(),
                "cache.warmUp.http.service",
                "name the Service (in the SLO's namespace) that receives the requests",
            );
            p.check(
                (1..=65535).contains(&http.port),
                "cache.warmUp.http.port",
                "must be a port number in 1..=65535",
            );
            p.check(
                (1..=crate::WARM_UP_MAX_PATHS).contains(&http.paths.len()),
                "cache.warmUp.http.paths",
                "between 1 and 100 paths are required",
            );
            for (i, r) in http.paths.iter().enumerate() {
                p.check(
                    r.starts_with('/') && !r.chars().any(char::is_whitespace),
                    &format!("cache.warmUp.http.paths[{i}]"),
                    "every path must start with / and contain no spaces",
                );
            }
            p.check(
                !http.timeout.0.is_zero() && http.timeout.0 <= crate::WARM_UP_MAX_TIMEOUT,
                "cache.warmUp.http.timeout",
                "must be greater than 0 and at most 30s",
            );
        }
    }

    fn validate_headroom(&self, p: &mut Problems) {
        let Some(h) = &self.headroom else { return };
        let (ahead, behind) = (h.ahead_aim, h.behind_aim);
        let ahead_ok = ahead.is_finite() && (0.9..=1.0).contains(&ahead);
        let behind_ok = behind.is_finite() && (0.5..=0.9).contains(&behind);
        p.check(ahead_ok, "headroom.aheadAim", HEADROOM_AHEAD_RANGE);
        p.check(behind_ok, "headroom.behindAim", HEADROOM_BEHIND_RANGE);
        if ahead_ok && behind_ok {
            p.check(
                behind <= ahead,
                "headroom.behindAim",
                "behindAim must be <= aheadAim",
            );
        }
    }

    fn validate_alerting(&self, p: &mut Problems) {
        let a = &self.alerting;
        p.check(
            a.min_request_rate.is_finite() && a.min_request_rate >= 0.0,
            "alerting.minRequestRate",
            "must be a number >= 0 (requests per second)",
        );
        p.label_names("alerting.labels", a.labels.keys());
        p.label_values("alerting.labels", &a.labels, MAX_ALERT_LABEL_VALUE, true);
        if let Some(url) = &a.runbook_url {
            p.check(
                url.starts_with("http://") || url.starts_with("https://"),
                "alerting.runbookUrl",
                "must be an http:// or https:// URL",
            );
            p.check(!has_template(url), "alerting.runbookUrl", NO_TEMPLATE);
            p.check(
                url.chars().count() <= MAX_URL,
                "alerting.runbookUrl",
                &format!("must be at most {MAX_URL} characters"),
            );
        }
        for (tier, route) in [
            ("page", &a.routes.page),
            ("ticket", &a.routes.ticket),
            ("noData", &a.routes.no_data),
        ] {
            validate_route(p, &format!("alerting.routes.{tier}"), route);
        }
    }
}

/// One tier's alert name, labels and annotations: names Prometheus accepts,
/// literal values, and none of the labels that identify an objective's series.
fn validate_route(p: &mut Problems, path: &str, route: &AlertRoute) {
    if let Some(alert) = &route.alert {
        p.check(
            promql::is_metric_name(alert) && alert.chars().count() <= MAX_ALERT_NAME,
            &format!("{path}.alert"),
            &format!("alert names must match [a-zA-Z_:][a-zA-Z0-9_:]* (at most {MAX_ALERT_NAME} characters)"),
        );
    }
    let labels = format!("{path}.labels");
    p.label_names(&labels, route.labels.keys());
    p.label_values(&labels, &route.labels, MAX_ALERT_LABEL_VALUE, true);
    for key in route.labels.keys() {
        p.check(
            !RESERVED_ALERT_LABELS.contains(&key.as_str()),
            &format!("{labels}.{key}"),
            "alertname, namespace, slo, objective and tier are labels Governor sets itself",
        );
    }
    let annotations = format!("{path}.annotations");
    for key in route.annotations.keys() {
        p.check(
            promql::is_label_name(key),
            &format!("{annotations}.{key}"),
            "annotation names must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __",
        );
    }
    for (key, value) in &route.annotations {
        let at = format!("{annotations}.{key}");
        p.check(!has_template(value), &at, NO_TEMPLATE);
        p.check(
            value.chars().count() <= MAX_ANNOTATION_VALUE,
            &at,
            &format!("annotation values must be at most {MAX_ANNOTATION_VALUE} characters"),
        );
        if key == "runbook_url" || key == "dashboard_url" {
            p.check(
                value.starts_with("http://") || value.starts_with("https://"),
                &at,
                "must be an http:// or https:// URL",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> ServiceLevelObjectiveSpec {
        let yaml = format!(
            "service: api\ntargetRef: {{name: api}}\nobjectives: {{latency: {{p99: 100ms}}}}\n{extra}"
        );
        serde_yaml_ng::from_str(&yaml).unwrap()
    }

    fn problems(extra: &str) -> Vec<String> {
        spec(extra)
            .validate()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn alert_label_values_are_literal_and_bounded() {
        assert!(problems("alerting: {labels: {team: roadtrip, note: \"a{b}c\"}}").is_empty());
        for value in ["\"{{ query \\\"up\\\" }}\"", "\"{{ if }}\"", "\"a }} b\""] {
            assert_eq!(
                problems(&format!("alerting: {{labels: {{team: {value}}}}}")),
                [
                    "spec.alerting.labels.team: must not contain {{ or }} (Prometheus would run them as a template)"
                ],
                "{value}"
            );
        }
        let long = "x".repeat(MAX_ALERT_LABEL_VALUE + 1);
        assert_eq!(
            problems(&format!("alerting: {{labels: {{team: {long}}}}}")),
            ["spec.alerting.labels.team: label values must be at most 256 characters"]
        );
        let name = "a".repeat(129);
        assert_eq!(
            problems(&format!("alerting: {{labels: {{{name}: x}}}}")),
            [format!(
                "spec.alerting.labels.{name}: label names must be at most 128 characters"
            )]
        );
    }

    #[test]
    fn alert_routes_name_label_and_annotate_each_tier_literally() {
        let ok = "alerting: {routes: {page: {alert: SLOPage, labels: {severity: page, team: a}, \
                  annotations: {runbook_url: \"https://wiki/page\", summary: \"{ok}\"}}, \
                  noData: {labels: {severity: info}}}}";
        assert!(problems(ok).is_empty(), "{:?}", problems(ok));
        assert_eq!(
            problems("alerting: {routes: {ticket: {alert: \"Slo Ticket\"}}}"),
            [
                "spec.alerting.routes.ticket.alert: alert names must match [a-zA-Z_:][a-zA-Z0-9_:]* (at most 128 characters)"
            ]
        );
        assert_eq!(
            problems("alerting: {routes: {page: {labels: {slo: other}}}}"),
            [
                "spec.alerting.routes.page.labels.slo: alertname, namespace, slo, objective and tier are labels Governor sets itself"
            ]
        );
        assert_eq!(
            problems("alerting: {routes: {page: {labels: {team: \"{{ $value }}\"}}}}"),
            [
                "spec.alerting.routes.page.labels.team: must not contain {{ or }} (Prometheus would run them as a template)"
            ]
        );
        assert_eq!(
            problems("alerting: {routes: {noData: {annotations: {summary: \"{{ $labels.x }}\"}}}}"),
            [
                "spec.alerting.routes.noData.annotations.summary: must not contain {{ or }} (Prometheus would run them as a template)"
            ]
        );
        assert_eq!(
            problems(
                "alerting: {routes: {page: {annotations: {runbook_url: \"javascript:x\", \"bad-key\": x}}}}"
            ),
            [
                "spec.alerting.routes.page.annotations.bad-key: annotation names must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __",
                "spec.alerting.routes.page.annotations.runbook_url: must be an http:// or https:// URL",
            ]
        );
    }

    #[test]
    fn matcher_values_are_bounded_but_may_hold_braces() {
        let ok = "indicators: {prometheus: {labels: {route: \"/api/{{id}}\"}}}";
        assert!(problems(ok).is_empty());
        let long = "x".repeat(MAX_MATCHER_VALUE + 1);
        assert_eq!(
            problems(&format!(
                "indicators: {{prometheus: {{labels: {{route: {long}}}}}}}"
            )),
            [
                "spec.indicators.prometheus.labels.route: label values must be at most 1024 characters"
            ]
        );
    }

    #[test]
    fn headroom_aims_stay_between_the_floor_and_the_target() {
        assert!(problems("headroom: {policy: BudgetAware}").is_empty());
        assert!(
            problems("headroom: {policy: BudgetAware, aheadAim: 1, behindAim: 0.5}").is_empty()
        );
        assert_eq!(
            problems("headroom: {policy: BudgetAware, aheadAim: 1.05}"),
            [format!("spec.headroom.aheadAim: {HEADROOM_AHEAD_RANGE}")]
        );
        assert_eq!(
            problems("headroom: {aheadAim: 0.85}"),
            [format!("spec.headroom.aheadAim: {HEADROOM_AHEAD_RANGE}")]
        );
        assert_eq!(
            problems("headroom: {policy: BudgetAware, behindAim: 0.3}"),
            [format!("spec.headroom.behindAim: {HEADROOM_BEHIND_RANGE}")]
        );
        assert_eq!(
            problems("headroom: {policy: BudgetAware, behindAim: .nan}"),
            [format!("spec.headroom.behindAim: {HEADROOM_BEHIND_RANGE}")]
        );
    }

    #[test]
    fn runbook_url_is_a_plain_http_url() {
        assert!(problems("alerting: {runbookUrl: \"https://wiki.example/slo#api\"}").is_empty());
        assert!(problems("alerting: {runbookUrl: \"http://wiki/slo\"}").is_empty());
        for url in [
            "javascript:alert(1)",
            "JAVASCRIPT:alert(1)",
            "data:text/html,x",
            "//wiki/slo",
            " https://wiki/slo",
            "ftp://wiki/slo",
        ] {
            assert_eq!(
                problems(&format!("alerting: {{runbookUrl: \"{url}\"}}")),
                ["spec.alerting.runbookUrl: must be an http:// or https:// URL"],
                "{url}"
            );
        }
        assert_eq!(
            problems("alerting: {runbookUrl: \"https://wiki/{{ .Labels.team }}\"}"),
            [
                "spec.alerting.runbookUrl: must not contain {{ or }} (Prometheus would run them as a template)"
            ]
        );
        let long = format!("https://wiki/{}", "x".repeat(MAX_URL));
        assert_eq!(
            problems(&format!("alerting: {{runbookUrl: \"{long}\"}}")),
            ["spec.alerting.runbookUrl: must be at most 2048 characters"]
        );
    }
}
