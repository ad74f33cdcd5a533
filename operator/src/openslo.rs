//! OpenSLO v1 (`openslo/v1`) to and from ServiceLevelObjectives, for what
//! both can say: an `SLO` with a rolling window and the `Occurrences` method,
//! its `SLI` (inline or by `indicatorRef`) read from Prometheus — a
//! `ratioMetric` of bad or good over total requests becomes the availability
//! objective, a `thresholdMetric` on `histogram_quantile(q, ...)` a latency
//! target, or on a `Jaeger` source (Governor's own: `service`, `operation`,
//! `quantile`) a latency target read from traces — and its `AlertPolicy`
//! (inline or by `alertPolicyRef`), whose
//! severities switch Governor's page and ticket tiers. OpenSLO SLOs that
//! carry the same `governor.dev/slo` annotation become one
//! ServiceLevelObjective, which is how `export` writes them. What cannot be
//! mapped is an error naming its document and field.

use std::collections::BTreeMap;

use governor_crds::{Quantile, ServiceLevelObjective};
use serde_json::{Map, Value, json};

use crate::rules::{Tier, duration};

pub const API_VERSION: &str = "openslo/v1";
/// Groups OpenSLO SLOs into one ServiceLevelObjective (its name).
pub const SLO_ANNOTATION: &str = "governor.dev/slo";
/// The ServiceLevelObjective's namespace.
pub const NAMESPACE_ANNOTATION: &str = "governor.dev/namespace";
/// The workload, as `Kind/name` or `apiVersion/Kind/name`; default `Deployment/<service>`.
pub const TARGET_ANNOTATION: &str = "governor.dev/target-ref";
/// The `metricSource.type` of a latency read from Jaeger traces. OpenSLO
/// leaves a source's type and `spec` to the tools; this one's `spec` is
/// `service`, `operation` (optional) and `quantile`.
pub const JAEGER_SOURCE: &str = "Jaeger";

/// A field that cannot be mapped: the document (`SLO/name`) and the path in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub document: String,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.document, self.field, self.message)
    }
}

fn refuse(document: &str, field: &str, message: impl Into<String>) -> Refusal {
    Refusal {
        document: document.into(),
        field: field.into(),
        message: message.into(),
    }
}

/// The OpenSLO documents of some files, by kind and name.
#[derive(Debug, Default)]
pub struct Documents {
    slos: Vec<Value>,
    slis: BTreeMap<String, Value>,
    policies: BTreeMap<String, Value>,
    sources: BTreeMap<String, Value>,
}

impl Documents {
    /// Adds the documents of one YAML text (several documents allowed).
    pub fn add(&mut self, text: &str) -> Result<(), String> {
        for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let doc: Value = serde::Deserialize::deserialize(de)
                .map_err(|e| format!("document {}: not YAML: {e}", i + 1))?;
            if doc.is_null() {
                continue;
            }
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let at = format!("document {} ({kind}/{name})", i + 1);
            if doc["apiVersion"] != API_VERSION {
                return Err(format!(
                    "{at}: apiVersion: {} is not {API_VERSION}",
                    doc["apiVersion"]
                ));
            }
            if name.is_empty() {
                return Err(format!("{at}: metadata.name: required"));
            }
            match kind.as_str() {
                "SLO" => self.slos.push(doc),
                "SLI" => drop(self.slis.insert(name, doc)),
                "AlertPolicy" => drop(self.policies.insert(name, doc)),
                "DataSource" => drop(self.sources.insert(name, doc)),
                // Conditions and targets are read through the policies; a
                // Service says nothing Governor keeps.
                "AlertCondition" | "AlertNotificationTarget" | "Service" => {}
                other => return Err(format!("{at}: kind: {other:?} is not an OpenSLO v1 kind")),
            }
        }
        Ok(())
    }
}

/// What one OpenSLO SLO contributes to its ServiceLevelObjective.
#[derive(Default)]
struct Part {
    latency: BTreeMap<Quantile, String>,
    latency_query: Option<String>,
    /// Latency from Jaeger traces: (service, operation).
    jaeger: Option<(Option<String>, Option<String>)>,
    availability: Option<f64>,
    errors_query: Option<String>,
    requests_query: Option<String>,
    tiers: Option<(bool, bool)>,
}

/// The ServiceLevelObjectives the documents describe, in `namespace` unless
/// an SLO names its own; `Err` lists every field that cannot be mapped.
pub fn import(docs: &Documents, namespace: &str) -> Result<Vec<Value>, Vec<Refusal>> {
    let mut refusals = Vec::new();
    let mut out: BTreeMap<(String, String), (Value, Part)> = BTreeMap::new();
    for slo in &docs.slos {
        let name = slo["metadata"]["name"].as_str().unwrap_or_default();
        let at = format!("SLO/{name}");
        let annotations = &slo["metadata"]["annotations"];
        let target_name = annotations[SLO_ANNOTATION]
            .as_str()
            .unwrap_or(name)
            .to_string();
        let ns = annotations[NAMESPACE_ANNOTATION]
            .as_str()
            .unwrap_or(namespace)
            .to_string();
        match slo_part(docs, slo, &at) {
            Err(mut r) => refusals.append(&mut r),
            Ok((head, part)) => {
                let key = (ns.clone(), target_name.clone());
                match out.remove(&key) {
                    None => {
                        out.insert(key, (head, part));
                    }
                    Some((first, merged)) => match merge(&at, &first, merged, &head, part) {
                        Ok(merged) => {
                            out.insert(key, (first, merged));
                        }
                        Err(r) => refusals.push(r),
                    },
                }
            }
        }
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }
    Ok(out
        .into_iter()
        .map(|((ns, name), (head, part))| manifest(&ns, &name, &head, part))
        .collect())
}

/// The SLO's service, window and target, and its objectives.
fn slo_part(docs: &Documents, slo: &Value, at: &str) -> Result<(Value, Part), Vec<Refusal>> {
    let spec = &slo["spec"];
    let mut refusals = Vec::new();
    let service = spec["service"].as_str().unwrap_or_default();
    if service.is_empty() {
        refusals.push(refuse(
            at,
            "spec.service",
            "required: Governor reads the service's metrics by it",
        ));
    }
    match spec["budgetingMethod"].as_str() {
        Some("Occurrences") => {}
        other => refusals.push(refuse(
            at,
            "spec.budgetingMethod",
            format!(
                "{} cannot be mapped: Governor counts the error budget by occurrences (good and bad requests), never by time slices",
                other.map_or("a missing method".to_string(), |o| format!("{o:?}"))
            ),
        )),
    }
    let window = match window(&spec["timeWindow"], at) {
        Ok(w) => Some(w),
        Err(r) => {
            refusals.push(r);
            None
        }
    };
    let target_ref = target_ref(&slo["metadata"]["annotations"], service, at);
    let target_ref = target_ref.map_err(|r| refusals.push(r)).ok();
    let mut part = Part::default();
    if let Err(mut r) = objectives(docs, spec, at, &mut part) {
        refusals.append(&mut r);
    }
    match alert_tiers(docs, &spec["alertPolicies"], at) {
        Ok(t) => part.tiers = t,
        Err(mut r) => refusals.append(&mut r),
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }
    let head = json!({"service": service, "window": window, "targetRef": target_ref});
    Ok((head, part))
}

/// One rolling window in days, weeks, hours or minutes.
fn window(tw: &Value, at: &str) -> Result<String, Refusal> {
    let Some(list) = tw.as_array().filter(|l| !l.is_empty()) else {
        return Ok("30d".into());
    };
    if list.len() > 1 {
        return Err(refuse(
            at,
            "spec.timeWindow",
            "exactly one time window is allowed",
        ));
    }
    let w = &list[0];
    if w["isRolling"] != true || !w["calendar"].is_null() {
        return Err(refuse(
            at,
            "spec.timeWindow[0].isRolling",
            "a calendar-aligned window cannot be mapped: Governor's error-budget window is rolling",
        ));
    }
    let d = w["duration"].as_str().unwrap_or_default();
    let (n, unit) = d.split_at(d.len().saturating_sub(1));
    match (n.parse::<u64>(), unit) {
        (Ok(n), "m" | "h" | "d" | "w") if n > 0 => Ok(d.to_string()),
        _ => Err(refuse(
            at,
            "spec.timeWindow[0].duration",
            format!(
                "{d:?} cannot be mapped: a whole number of minutes (m), hours (h), days (d) or weeks (w); months, quarters and years have no fixed length"
            ),
        )),
    }
}

fn target_ref(annotations: &Value, service: &str, at: &str) -> Result<Value, Refusal> {
    let Some(text) = annotations[TARGET_ANNOTATION].as_str() else {
        return Ok(json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": service}));
    };
    let parts: Vec<&str> = text.rsplitn(3, '/').collect();
    match parts[..] {
        [name, kind] if !name.is_empty() && !kind.is_empty() => {
            Ok(json!({"apiVersion": "apps/v1", "kind": kind, "name": name}))
        }
        [name, kind, api] if !name.is_empty() && !kind.is_empty() && !api.is_empty() => {
            Ok(json!({"apiVersion": api, "kind": kind, "name": name}))
        }
        _ => Err(refuse(
            at,
            &format!("metadata.annotations[{TARGET_ANNOTATION}]"),
            format!("{text:?} is not Kind/name or apiVersion/Kind/name"),
        )),
    }
}

/// The SLO's indicator and objectives, into `part`.
fn objectives(
    docs: &Documents,
    spec: &Value,
    at: &str,
    part: &mut Part,
) -> Result<(), Vec<Refusal>> {
    let (sli, sli_at) = match (&spec["indicator"], spec["indicatorRef"].as_str()) {
        (Value::Object(_), _) => (spec["indicator"].clone(), "spec.indicator".to_string()),
        (_, Some(r)) => match docs.slis.get(r) {
            Some(doc) => (doc.clone(), format!("spec.indicatorRef ({r})")),
            None => {
                return Err(vec![refuse(
                    at,
                    "spec.indicatorRef",
                    format!("no SLI named {r:?} in the files"),
                )]);
            }
        },
        _ => {
            let composite = spec["objectives"].as_array().is_some_and(|o| {
                o.iter()
                    .any(|o| !o["indicator"].is_null() || !o["indicatorRef"].is_null())
            });
            let why = if composite {
                "a composite SLO (an indicator per objective) cannot be mapped: one ServiceLevelObjective has one set of signals"
            } else {
                "an indicator or indicatorRef is required"
            };
            return Err(vec![refuse(at, "spec.indicator", why)]);
        }
    };
    let objectives = spec["objectives"].as_array().cloned().unwrap_or_default();
    if objectives.is_empty() {
        return Err(vec![refuse(
            at,
            "spec.objectives",
            "at least one objective is required",
        )]);
    }
    let sli_spec = &sli["spec"];
    if !sli_spec["ratioMetric"].is_null() {
        let field = format!("{sli_at}.spec.ratioMetric");
        ratio(
            docs,
            &sli_spec["ratioMetric"],
            &objectives,
            at,
            &field,
            part,
        )
    } else if !sli_spec["thresholdMetric"].is_null() {
        let field = format!("{sli_at}.spec.thresholdMetric");
        threshold(
            docs,
            &sli_spec["thresholdMetric"],
            &objectives,
            at,
            &field,
            part,
        )
    } else {
        Err(vec![refuse(
            at,
            &format!("{sli_at}.spec"),
            "ratioMetric or thresholdMetric is required",
        )])
    }
}

/// The objective's target in (0, 1): `target`, or `targetPercent` / 100.
fn target_of(o: &Value, at: &str, field: &str) -> Result<f64, Refusal> {
    let t = o["target"]
        .as_f64()
        .or_else(|| o["targetPercent"].as_f64().map(|p| p / 100.0));
    // 99.9 / 100 is 0.9990000000000001 in binary: keep the digits that mean something.
    match t.map(|t| (t * 1e9).round() / 1e9) {
        Some(t) if t > 0.0 && t < 1.0 => Ok(t),
        _ => Err(refuse(
            at,
            field,
            "target in (0, 1) or targetPercent in (0, 100) is required",
        )),
    }
}

/// The PromQL of a Prometheus metric source (`spec.query`).
fn prometheus_query(
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

fn ratio(
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

fn threshold(
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
enum LatencySource {
    /// The bucket rates of a Prometheus histogram.
    Prometheus(String),
    /// Jaeger traces: (service, operation).
    Jaeger(Option<String>, Option<String>),
}

/// The quantile, service and operation of a `Jaeger` metric source's `spec`.
fn jaeger_source(
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
fn per_second(query: &str, counter: bool) -> Option<String> {
    if !counter {
        return Some(query.to_string());
    }
    match promql_parser::parser::parse(query).ok()? {
        promql_parser::parser::Expr::VectorSelector(_) => Some(format!("sum(rate({query}[5m]))")),
        _ => None,
    }
}

/// The quantile Governor knows with the value `q` (0.5, 0.9, 0.95, 0.99, 0.999).
fn quantile_of(q: f64) -> Option<Quantile> {
    Quantile::ALL
        .into_iter()
        .find(|k| (k.value() - q).abs() < 1e-12)
}

/// `histogram_quantile(Q, X)`: the quantile Governor knows and the text of X.
fn histogram_quantile(query: &str) -> Option<(Quantile, String)> {
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
fn seconds_text(v: f64) -> String {
    let ms = v * 1000.0;
    if (ms - ms.round()).abs() < 1e-9 {
        format!("{}ms", ms.round() as u64)
    } else {
        format!("{v}s")
    }
}

/// Which of Governor's tiers the policies ask for: a condition whose severity
/// is `page` or `critical` the page tier, any other the ticket tier. `None`
/// when the SLO has no policies (Governor's default: both).
fn alert_tiers(
    docs: &Documents,
    policies: &Value,
    at: &str,
) -> Result<Option<(bool, bool)>, Vec<Refusal>> {
    let Some(list) = policies.as_array().filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let (mut page, mut ticket) = (false, false);
    for (i, p) in list.iter().enumerate() {
        let field = format!("spec.alertPolicies[{i}]");
        let policy = match p["alertPolicyRef"].as_str() {
            Some(r) => docs.policies.get(r).cloned().ok_or_else(|| {
                vec![refuse(
                    at,
                    &format!("{field}.alertPolicyRef"),
                    format!("no AlertPolicy named {r:?} in the files"),
                )]
            })?,
            None => p.clone(),
        };
        if policy["spec"]["alertWhenBreaching"] == false {
            continue;
        }
        for (j, c) in policy["spec"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let cfield = format!("{field}.spec.conditions[{j}]");
            if c["conditionRef"].is_string() {
                return Err(vec![refuse(
                    at,
                    &format!("{cfield}.conditionRef"),
                    "write the condition inline: its severity chooses the tier",
                )]);
            }
            let kind = c["spec"]["condition"]["kind"]
                .as_str()
                .unwrap_or("burnrate");
            if kind != "burnrate" {
                return Err(vec![refuse(
                    at,
                    &format!("{cfield}.spec.condition.kind"),
                    format!("{kind:?} cannot be mapped: Governor alerts on burn rates"),
                )]);
            }
            match c["spec"]["severity"].as_str() {
                Some("page" | "critical") => page = true,
                Some(_) => ticket = true,
                None => {
                    return Err(vec![refuse(
                        at,
                        &format!("{cfield}.spec.severity"),
                        "required: it chooses the page or ticket tier",
                    )]);
                }
            }
        }
    }
    Ok(Some((page, ticket)))
}

/// Adds a later OpenSLO SLO's objectives to those of the same ServiceLevelObjective.
fn merge(at: &str, first: &Value, mut a: Part, head: &Value, b: Part) -> Result<Part, Refusal> {
    for key in ["service", "window", "targetRef"] {
        if first[key] != head[key] {
            return Err(refuse(
                at,
                key,
                format!("differs from the other OpenSLO SLOs of the same {SLO_ANNOTATION}"),
            ));
        }
    }
    let clash = |what: &str| {
        refuse(
            at,
            "spec.indicator",
            format!("a second {what} for the same {SLO_ANNOTATION}"),
        )
    };
    for (q, t) in b.latency {
        if a.latency.insert(q, t).is_some() {
            return Err(clash(&format!("{} target", q.name())));
        }
    }
    if b.latency_query.is_some() {
        if a.latency_query.is_some() && a.latency_query != b.latency_query {
            return Err(clash("latency query (different bucket rates)"));
        }
        a.latency_query = b.latency_query;
    }
    if b.jaeger.is_some() {
        if a.jaeger.is_some() && a.jaeger != b.jaeger {
            return Err(clash("Jaeger source (a different service or operation)"));
        }
        a.jaeger = b.jaeger;
    }
    if a.jaeger.is_some() && a.latency_query.is_some() {
        return Err(clash(
            "latency source: one ServiceLevelObjective reads latency from Prometheus or from Jaeger, not both",
        ));
    }
    if b.availability.is_some() {
        if a.availability.is_some() {
            return Err(clash("ratio SLI"));
        }
        a.availability = b.availability;
        a.errors_query = b.errors_query;
        a.requests_query = b.requests_query;
    }
    a.tiers = match (a.tiers, b.tiers) {
        (Some((p1, t1)), Some((p2, t2))) => Some((p1 || p2, t1 || t2)),
        (x, y) => x.or(y),
    };
    Ok(a)
}

fn manifest(namespace: &str, name: &str, head: &Value, part: Part) -> Value {
    let mut objectives = Map::new();
    if !part.latency.is_empty() {
        let latency: Map<String, Value> = part
            .latency
            .into_iter()
            .map(|(q, t)| (q.name().to_string(), Value::String(t)))
            .collect();
        objectives.insert("latency".into(), Value::Object(latency));
    }
    if let Some(a) = part.availability {
        objectives.insert("availability".into(), json!(a));
    }
    objectives.insert("window".into(), head["window"].clone());
    let mut prometheus = Map::new();
    if let Some(q) = part.latency_query {
        prometheus.insert("latency".into(), json!({"query": q}));
    }
    if let Some(q) = part.requests_query {
        prometheus.insert("requests".into(), json!({"query": q}));
    }
    if let Some(q) = part.errors_query {
        prometheus.insert("errors".into(), json!({"query": q}));
    }
    let mut spec = json!({
        "service": head["service"],
        "targetRef": head["targetRef"],
        "objectives": objectives,
    });
    if let Some((service, operation)) = part.jaeger {
        let mut jaeger = Map::new();
        if let Some(s) = service {
            jaeger.insert("service".into(), json!(s));
        }
        if let Some(o) = operation {
            jaeger.insert("operation".into(), json!(o));
        }
        spec["indicators"] = json!({"source": "jaeger", "jaeger": jaeger});
        if !prometheus.is_empty() {
            spec["indicators"]["prometheus"] = Value::Object(prometheus);
        }
    } else if !prometheus.is_empty() {
        spec["indicators"] = json!({"source": "prometheus", "prometheus": prometheus});
    }
    if let Some((page, ticket)) = part.tiers {
        spec["alerting"] = json!({"enabled": page || ticket, "page": page, "ticket": ticket});
    }
    json!({
        "apiVersion": "governor.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

/// The OpenSLO documents for one ServiceLevelObjective: an `SLO` per latency
/// target and one for the error objective, each with its `SLI` inline and,
/// when alerting is on, an `AlertPolicy` inline per tier; and notes on what
/// OpenSLO cannot carry.
pub fn export(slo: &ServiceLevelObjective) -> (Vec<Value>, Vec<String>) {
    let spec = &slo.spec;
    let name = slo.metadata.name.clone().unwrap_or_default();
    let namespace = slo
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let mut notes = Vec::new();
    let prom = &spec.indicators.prometheus;
    let selector = {
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
    };
    let window = duration(spec.objectives.window.as_secs_f64() as u64);
    let window = match window.strip_suffix('s') {
        Some(_) => {
            notes.push(format!(
                "the window {window} is not whole minutes; written as {}m",
                spec.objectives.window.as_secs_f64() as u64 / 60
            ));
            format!("{}m", spec.objectives.window.as_secs_f64() as u64 / 60)
        }
        None => window,
    };
    let target = &spec.target_ref;
    let annotations = json!({
        SLO_ANNOTATION: name,
        NAMESPACE_ANNOTATION: namespace,
        TARGET_ANNOTATION: format!("{}/{}/{}", target.api_version, target.kind, target.name),
    });
    let policies = alert_policies(spec);
    let document = |suffix: &str, indicator: Value, objective: Value| {
        let mut s = json!({
            "apiVersion": API_VERSION,
            "kind": "SLO",
            "metadata": {"name": format!("{name}-{suffix}"), "annotations": annotations},
            "spec": {
                "service": spec.service,
                "indicator": indicator,
                "timeWindow": [{"duration": window, "isRolling": true}],
                "budgetingMethod": "Occurrences",
                "objectives": [objective],
            },
        });
        if !policies.is_empty() {
            s["spec"]["alertPolicies"] = json!(policies);
        }
        s
    };
    let source =
        |query: String| json!({"metricSource": {"type": "Prometheus", "spec": {"query": query}}});
    let mut out = Vec::new();
    if spec.indicators.source == governor_crds::IndicatorSource::Jaeger {
        notes.push(format!(
            "latency is read from Jaeger traces: written as thresholdMetric SLIs of metricSource type {JAEGER_SOURCE} (Governor's own fields service, operation, quantile), which other OpenSLO tools may not read"
        ));
        let jaeger = spec.indicators.jaeger.as_ref();
        for (q, t) in spec.objectives.latency.targets() {
            let mut source_spec = json!({"quantile": q.value()});
            if let Some(s) = jaeger.and_then(|j| j.service.as_ref()) {
                source_spec["service"] = json!(s);
            }
            if let Some(o) = jaeger.and_then(|j| j.operation.as_ref()) {
                source_spec["operation"] = json!(o);
            }
            let indicator = json!({
                "metadata": {"name": format!("{name}-latency-{}", q.name())},
                "spec": {"thresholdMetric": {"metricSource": {"type": JAEGER_SOURCE, "spec": source_spec}}},
            });
            out.push(document(
                &format!("latency-{}", q.name()),
                indicator,
                latency_objective(q, t),
            ));
        }
    } else {
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
        for (q, t) in spec.objectives.latency.targets() {
            let indicator = json!({
                "metadata": {"name": format!("{name}-latency-{}", q.name())},
                "spec": {"thresholdMetric": source(format!("histogram_quantile({}, {buckets})", q.value()))},
            });
            out.push(document(
                &format!("latency-{}", q.name()),
                indicator,
                latency_objective(q, t),
            ));
        }
    }
    let allowed = crate::rules::allowed_error_share(&spec.objectives);
    if let Some(allowed) = allowed {
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
            "metadata": {"name": format!("{name}-errors")},
            "spec": {"ratioMetric": {"counter": false, "bad": source(errors), "total": source(requests)}},
        });
        let target = ((1.0 - allowed) * 1e9).round() / 1e9;
        out.push(document(
            "errors",
            indicator,
            json!({"displayName": "Availability", "target": target}),
        ));
    }
    if spec.connection_pool.is_some() || spec.cache.is_some() {
        notes.push("the connection pool and cache settings have no OpenSLO form: left out".into());
    }
    notes.push(
        "scaling, and the Governor-only indicator fields, have no OpenSLO form: left out".into(),
    );
    (out, notes)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantile_gives_the_quantile_and_the_bucket_rates() {
        let (q, x) =
            histogram_quantile("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))")
                .unwrap();
        assert_eq!(q, Quantile::P99);
        assert_eq!(x, "sum by (le) (rate(h_bucket[5m]))");
        assert!(histogram_quantile("histogram_quantile(0.42, rate(h_bucket[5m]))").is_none());
        assert!(histogram_quantile("max(h)").is_none());
        assert_eq!(seconds_text(0.1), "100ms");
        assert_eq!(seconds_text(0.0005), "0.0005s");
    }

    fn jaeger_slo(source_spec: &str) -> Documents {
        let mut docs = Documents::default();
        docs.add(&format!(
            "apiVersion: openslo/v1\nkind: SLO\nmetadata: {{name: voice}}\nspec:\n  service: voice\n  budgetingMethod: Occurrences\n  indicator:\n    metadata: {{name: voice-p99}}\n    spec:\n      thresholdMetric:\n        metricSource: {{type: Jaeger, spec: {source_spec}}}\n  objectives: [{{op: lte, value: 0.25, target: 0.99}}]\n"
        ))
        .unwrap();
        docs
    }

    #[test]
    fn a_jaeger_threshold_metric_is_a_latency_target_read_from_traces() {
        let out = import(
            &jaeger_slo("{quantile: 0.99, service: tts, operation: POST /api/voice}"),
            "shop",
        )
        .unwrap();
        let spec = &out[0]["spec"];
        assert_eq!(spec["objectives"]["latency"]["p99"], "250ms");
        assert_eq!(spec["indicators"]["source"], "jaeger");
        assert_eq!(spec["indicators"]["jaeger"]["service"], "tts");
        assert_eq!(spec["indicators"]["jaeger"]["operation"], "POST /api/voice");

        let refused = import(&jaeger_slo("{service: tts}"), "shop").unwrap_err();
        assert_eq!(
            refused[0].field,
            "spec.indicator.spec.thresholdMetric.metricSource.spec.quantile"
        );
    }
}
