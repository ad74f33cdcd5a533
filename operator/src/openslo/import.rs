//! OpenSLO documents → ServiceLevelObjectives.

use super::indicators::{ratio, threshold};
use super::*;

/// What one OpenSLO SLO contributes to its ServiceLevelObjective.
#[derive(Default)]
pub(super) struct Part {
    pub(super) latency: BTreeMap<Quantile, String>,
    pub(super) latency_query: Option<String>,
    /// Latency from Jaeger traces: (service, operation).
    pub(super) jaeger: Option<(Option<String>, Option<String>)>,
    pub(super) availability: Option<f64>,
    pub(super) errors_query: Option<String>,
    pub(super) requests_query: Option<String>,
    pub(super) tiers: Option<(bool, bool)>,
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
pub(super) fn target_of(o: &Value, at: &str, field: &str) -> Result<f64, Refusal> {
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
