//! The SLIs an SLO's rules alert on: each latency target read as a ratio SLI
//! (the share of requests slower than the threshold) and the error rate.

use governor_crds::promql::escape_label_value;
use governor_crds::{
    HistogramKind, IndicatorSource, Latency, Problem, Quantile, ServiceLevelObjective,
};

use super::{Buckets, le_matcher, le_text, percent, selector};

/// One objective's SLI.
pub(super) struct Objective {
    pub(super) id: String,
    /// "P99 latency under 100ms", "error rate under 0.1 %".
    pub(super) what: String,
    /// Allowed bad share.
    pub(super) allowed: f64,
    /// PromQL of the bad share over a window `{w}`.
    pub(super) bad_ratio: String,
    /// PromQL of requests per second over `{w}`.
    pub(super) requests: String,
    /// PromQL of bad requests per second over `{w}`; absent when there were no
    /// requests, and for latency when the bucket has no series (never a zero
    /// from nothing).
    pub(super) bad_events: String,
    /// The latency target in seconds; `None` for the error objective.
    pub(super) latency_target: Option<f64>,
    /// The series the objective counts requests by, as a selector: absent
    /// when the service stopped exporting it.
    pub(super) source: String,
}

/// The objectives of one SLO that can be alerted on: latency first, then errors.
/// `Err` names each latency target no bucket can measure.
pub(super) fn objectives(
    slo: &ServiceLevelObjective,
    buckets: &dyn Buckets,
    notes: &mut Vec<String>,
) -> Result<Vec<Objective>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut out = latency_objectives(slo, buckets, notes, &mut problems);
    out.extend(error_objective(slo, notes));
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// One objective per latency target, when latency comes from a Prometheus histogram.
fn latency_objectives(
    slo: &ServiceLevelObjective,
    buckets: &dyn Buckets,
    notes: &mut Vec<String>,
    problems: &mut Vec<Problem>,
) -> Vec<Objective> {
    let spec = &slo.spec;
    let prom = &spec.indicators.prometheus;
    let targets = spec.objectives.latency.targets();
    if spec.indicators.source == IndicatorSource::Jaeger && !targets.is_empty() {
        notes.push(
            "latency is read from Jaeger traces, so its objectives get no burn-rate alerts \
             (they need a Prometheus histogram); the error objective still does"
                .into(),
        );
        return Vec::new();
    }
    if prom.latency.query.is_some() && !targets.is_empty() {
        notes.push(
            "indicators.prometheus.latency.query is raw PromQL, which cannot be read as a \
             ratio SLI; latency objectives get no burn-rate alerts (set latency.metric instead)"
                .into(),
        );
        return Vec::new();
    }
    let sel = selector(slo, &[]);
    let mut latency = LatencySli {
        metric: &prom.latency.metric,
        sel: &sel,
        histogram: prom.latency.histogram,
        allow_nearest_bucket: spec.alerting.allow_nearest_bucket,
        buckets,
        notes,
        problems,
        unchecked: Vec::new(),
    };
    let out = targets
        .into_iter()
        .filter_map(|(q, target)| latency.objective(q, target))
        .collect();
    if !latency.unchecked.is_empty() {
        let metric = latency.metric;
        latency.notes.push(format!(
            "bucket boundaries of {metric}_bucket were not checked (pass --prometheus to check); \
             assumed to exist: {}",
            latency.unchecked.join(", ")
        ));
    }
    out
}

/// What the latency objectives of one SLO share while they are built.
struct LatencySli<'a> {
    metric: &'a str,
    sel: &'a str,
    histogram: HistogramKind,
    allow_nearest_bucket: bool,
    buckets: &'a dyn Buckets,
    notes: &'a mut Vec<String>,
    problems: &'a mut Vec<Problem>,
    /// Thresholds assumed to be bucket boundaries, for one note at the end.
    unchecked: Vec<String>,
}

impl LatencySli<'_> {
    /// The objective for one latency target; `None` when no bucket measures it.
    fn objective(&mut self, q: Quantile, target: Latency) -> Option<Objective> {
        let field = q.name();
        let t = target.as_secs_f64();
        let what = format!("{} latency under {target}", field.to_uppercase());
        let id = format!("latency-{field}");
        let (metric, sel) = (self.metric, self.sel);
        let (bad_ratio, requests, source) = match self.histogram {
            HistogramKind::Native => (
                format!(
                    "1 - histogram_fraction(0, {}, sum(rate({metric}{{{sel}}}[{{w}}])))",
                    le_text(t)
                ),
                format!("histogram_count(sum(rate({metric}{{{sel}}}[{{w}}])))"),
                format!("{metric}{{{sel}}}"),
            ),
            HistogramKind::Classic => {
                let le = self.classic_le(field, &what, t, &target)?;
                (
                    format!(
                        "1 - (sum(rate({metric}_bucket{{{sel}, {}}}[{{w}}])) / sum(rate({metric}_count{{{sel}}}[{{w}}])))",
                        le_matcher(le)
                    ),
                    format!("sum(rate({metric}_count{{{sel}}}[{{w}}]))"),
                    format!("{metric}_count{{{sel}}}"),
                )
            }
        };
        Some(Objective {
            id,
            what,
            // 1 - 0.99 is 0.010000000000000009 in binary: keep the digits that mean something.
            allowed: (q.allowed_share() * 1e9).round() / 1e9,
            bad_events: format!("({bad_ratio}) * ({requests} > 0)"),
            latency_target: Some(t),
            bad_ratio,
            requests,
            source,
        })
    }

    /// The boundary of the bucket that measures `t`: the one equal to it, the
    /// nearest when allowed, or (boundaries unknown) the threshold itself.
    /// Rules match it by number, however `le` is spelled.
    fn classic_le(&mut self, field: &str, what: &str, t: f64, target: &Latency) -> Option<f64> {
        let metric = self.metric;
        let Some(bounds) = self
            .buckets
            .boundaries(&format!("{metric}_bucket"), self.sel)
        else {
            self.unchecked
                .push(format!("le=\"{}\" ({field})", le_text(t)));
            return Some(t);
        };
        if let Some((b, _)) = bounds
            .iter()
            .find(|(b, _)| (b - t).abs() <= 1e-9 * t.max(1.0))
        {
            return Some(*b);
        }
        let nearest = bounds
            .iter()
            .filter(|(b, _)| b.is_finite())
            .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()));
        match nearest {
            None => {
                self.problems.push(Problem::new(
                    format!("objectives.latency.{field}"),
                    format!("{metric}_bucket has no series for this service, so no bucket can measure {target}"),
                ));
                None
            }
            Some((b, text)) if self.allow_nearest_bucket => {
                self.notes.push(format!(
                    "{what}: no bucket boundary of {metric}_bucket equals {target}; \
                     using the nearest, le=\"{text}\" (alerting.allowNearestBucket)"
                ));
                Some(*b)
            }
            Some((_, text)) => {
                self.problems.push(Problem::new(
                    format!("objectives.latency.{field}"),
                    format!(
                        "no bucket boundary of {metric}_bucket equals {target}; the nearest is \
                         le=\"{text}\": add a bucket at {} or set alerting.allowNearestBucket",
                        le_text(t)
                    ),
                ));
                None
            }
        }
    }
}

/// The share of requests allowed to fail: `errorRate` or `1 - availability`,
/// the stricter when both are set.
pub fn allowed_error_share(objectives: &governor_crds::Objectives) -> Option<f64> {
    match (objectives.error_rate, objectives.availability) {
        (Some(e), Some(a)) => Some(e.min(1.0 - a)),
        (e, a) => e.or(a.map(|a| 1.0 - a)),
    }
}

/// The error objective, from errorRate and availability (the stricter), when
/// the error and request signals are metrics that can be re-windowed.
fn error_objective(slo: &ServiceLevelObjective, notes: &mut Vec<String>) -> Option<Objective> {
    let spec = &slo.spec;
    let prom = &spec.indicators.prometheus;
    let allowed = allowed_error_share(&spec.objectives)?;
    if prom.errors.query.is_some() || prom.requests.query.is_some() {
        notes.push(
            "the error or request signal is raw PromQL, which cannot be re-windowed; \
             the error objective gets no burn-rate alerts"
                .into(),
        );
        return None;
    }
    let sel = selector(slo, &[]);
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
    Some(Objective {
        id: "errors".into(),
        what: format!("error rate under {}", percent(allowed)),
        allowed,
        bad_ratio: format!(
            "sum(rate({}{{{err_sel}}}[{{w}}])) / sum(rate({requests_metric}{{{sel}}}[{{w}}]))",
            err.metric
        ),
        requests: format!("sum(rate({requests_metric}{{{sel}}}[{{w}}]))"),
        // No failing series while requests were seen: zero errors, not missing.
        bad_events: format!(
            "sum(rate({}{{{err_sel}}}[{{w}}])) or (0 * sum(rate({requests_metric}{{{sel}}}[{{w}}])))",
            err.metric
        ),
        latency_target: None,
        source: format!("{requests_metric}{{{sel}}}"),
    })
}
