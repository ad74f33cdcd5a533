//! The SLI of an OpenSLO SLO: its metric source, ratio and threshold metrics.

use super::import::{Part, target_of};
use super::*;

/// The PromQL of a Prometheus metric source (`spec.query`).
pub(super) fn prometheus_query(
    docs: &Documents,
    metric: &Value,
    at: &str,
    field: &str,
) -> Result<String, Refusal> {
    let source = &metric["metricSource"];
    let kind = match (source["type"].as_str(), source["metricSourceRef"].as_str()) {
        (Some(t), _) => t.to_string(),
        (None, Some(r)) => docs
            .sources
            .get(r)
            .and_then(|d| d["spec"]["type"].as_str())
            .map(str::to_string)
            .ok_or_else(|| {
                refuse(
                    at,
                    &format!("{field}.metricSource.metricSourceRef"),
                    format!("no DataSource named {r:?} with a type in the files"),
                )
            })?,
        (None, None) => String::new(),
    };
    if !kind.eq_ignore_ascii_case("prometheus") {
        return Err(refuse(
            at,
            &format!("{field}.metricSource.type"),
            format!("{kind:?} cannot be mapped: Governor reads Prometheus"),
        ));
    }
    let query = source["spec"]["query"].as_str().unwrap_or_default();
    if let Err(e) = governor_crds::promql::check_query(query) {
        return Err(refuse(
            at,
            &format!("{field}.metricSource.spec.query"),
            format!("not PromQL Governor can run: {e}"),
        ));
    }
    Ok(query.to_string())
}

pub(super) fn ratio(
    docs: &Documents,
    m: &Value,
    objectives: &[Value],
    at: &str,
    field: &str,
    part: &mut Part,
) -> Result<(), Vec<Refusal>> {
    if !m["raw"].is_null() {
        return Err(vec![refuse(
            at,
            &format!("{field}.raw"),
            "a precomputed ratio cannot be mapped: Governor needs the bad (or good) and total request rates",
        )]);
    }
    let counter = m["counter"] == true;
    let rate = |which: &str| -> Result<String, Vec<Refusal>> {
        let field = format!("{field}.{which}");
        let q = prometheus_query(docs, &m[which], at, &field).map_err(|r| vec![r])?;
        per_second(&q, counter).ok_or_else(|| {
            vec![refuse(
                at,
                &format!("{field}.metricSource.spec.query"),
                "with counter: true, a counter's selector (metric{labels}) Governor can take the rate of; write other expressions as requests per second with counter: false",
            )]
        })
    };
    let total = rate("total")?;
    let bad = match (&m["bad"], &m["good"]) {
        (Value::Object(_), _) => rate("bad")?,
        (_, Value::Object(_)) => format!("({total}) - ({})", rate("good")?),
        _ => return Err(vec![refuse(at, field, "good or bad is required")]),
    };
    if objectives.len() > 1 {
        return Err(vec![refuse(
            at,
            "spec.objectives",
            "one objective per ratio SLI: Governor has one availability objective per SLO",
        )]);
    }
    let t = target_of(&objectives[0], at, "spec.objectives[0]").map_err(|r| vec![r])?;
    part.availability = Some(t);
    part.errors_query = Some(bad);
    part.requests_query = Some(total);
    Ok(())
}

pub(super) fn threshold(
    docs: &Documents,
    m: &Value,
    objectives: &[Value],
    at: &str,
    field: &str,
    part: &mut Part,
) -> Result<(), Vec<Refusal>> {
    let jaeger = m["metricSource"]["type"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case(JAEGER_SOURCE));
    let (q, source) = if jaeger {
        let (q, service, operation) = jaeger_source(&m["metricSource"]["spec"], at, field)?;
        (q, LatencySource::Jaeger(service, operation))
    } else {
        let query = prometheus_query(docs, m, at, field).map_err(|r| vec![r])?;
        let query_field = format!("{field}.metricSource.spec.query");
        let Some((q, buckets)) = histogram_quantile(&query) else {
            return Err(vec![refuse(
                at,
                &query_field,
                "must be histogram_quantile(Q, <bucket rates>) with Q one of 0.5, 0.9, 0.95, 0.99, 0.999: Governor's latency objectives are quantiles",
            )]);
        };
        (q, LatencySource::Prometheus(buckets))
    };
    if objectives.len() > 1 {
        return Err(vec![refuse(
            at,
            "spec.objectives",
            "one objective per threshold SLI",
        )]);
    }
    let o = &objectives[0];
    match o["op"].as_str() {
        Some("lte" | "lt") => {}
        other => {
            return Err(vec![refuse(
                at,
                "spec.objectives[0].op",
                format!(
                    "{other:?} cannot be mapped: a latency target is an upper bound (lte or lt)"
                ),
            )]);
        }
    }
    let Some(v) = o["value"].as_f64().filter(|v| v.is_finite() && *v > 0.0) else {
        return Err(vec![refuse(
            at,
            "spec.objectives[0].value",
            "a latency in seconds, above 0, is required",
        )]);
    };
    target_of(o, at, "spec.objectives[0]").map_err(|r| vec![r])?;
    part.latency.insert(q, seconds_text(v));
    match source {
        LatencySource::Prometheus(buckets) => part.latency_query = Some(buckets),
        LatencySource::Jaeger(service, operation) => part.jaeger = Some((service, operation)),
    }
    Ok(())
}

/// Where a threshold SLI's latency is read.
pub(super) enum LatencySource {
    /// The bucket rates of a Prometheus histogram.
    Prometheus(String),
    /// Jaeger traces: (service, operation).
    Jaeger(Option<String>, Option<String>),
}

/// The quantile, service and operation of a `Jaeger` metric source's `spec`.
pub(super) fn jaeger_source(
    spec: &Value,
    at: &str,
    field: &str,
) -> Result<(Quantile, Option<String>, Option<String>), Vec<Refusal>> {
    let field = format!("{field}.metricSource.spec");
    let Some(q) = spec["quantile"].as_f64().and_then(quantile_of) else {
        return Err(vec![refuse(
            at,
            &format!("{field}.quantile"),
            "one of 0.5, 0.9, 0.95, 0.99, 0.999 is required: Governor's latency objectives are quantiles",
        )]);
    };
    let text = |key: &str| -> Result<Option<String>, Vec<Refusal>> {
        match &spec[key] {
            Value::Null => Ok(None),
            Value::String(s) if !s.is_empty() => Ok(Some(s.clone())),
            _ => Err(vec![refuse(
                at,
                &format!("{field}.{key}"),
                "a non-empty string when given",
            )]),
        }
    };
    Ok((q, text("service")?, text("operation")?))
}

/// Requests per second from a ratio metric's query: as written when it is
/// already a rate (`counter: false`), else the rate of a counter's selector.
pub(super) fn per_second(query: &str, counter: bool) -> Option<String> {
    if !counter {
        return Some(query.to_string());
    }
    match promql_parser::parser::parse(query).ok()? {
        promql_parser::parser::Expr::VectorSelector(_) => Some(format!("sum(rate({query}[5m]))")),
        _ => None,
    }
}

/// The quantile Governor knows with the value `q` (0.5, 0.9, 0.95, 0.99, 0.999).
pub(super) fn quantile_of(q: f64) -> Option<Quantile> {
    Quantile::ALL
        .into_iter()
        .find(|k| (k.value() - q).abs() < 1e-12)
}

/// `histogram_quantile(Q, X)`: the quantile Governor knows and the text of X.
pub(super) fn histogram_quantile(query: &str) -> Option<(Quantile, String)> {
    let rest = query
        .trim()
        .strip_prefix("histogram_quantile")?
        .trim_start();
    let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
    let (q, x) = inner.split_once(',')?;
    let quantile = quantile_of(q.trim().parse().ok()?)?;
    let x = x.trim();
    governor_crds::promql::check_query(x).ok()?;
    Some((quantile, x.to_string()))
}

/// A latency in seconds as the spec writes it: `100ms`, `1.5s`.
pub(super) fn seconds_text(v: f64) -> String {
    let ms = v * 1000.0;
    if (ms - ms.round()).abs() < 1e-9 {
        format!("{}ms", ms.round() as u64)
    } else {
        format!("{v}s")
    }
}
