//! Report: the status written back after a pass (skipped when nothing but the
//! observed time changed), and the per-SLO metric series.

use std::time::Duration;

use governor_crds::{Quantile, ServiceLevelObjective, ServiceLevelObjectiveStatus as Status};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};

use super::{Context, Error, MANAGER, metrics};
use crate::decide::Actuation;

/// A status unchanged apart from the observed time is rewritten at most this often.
const REWRITE_AFTER: Duration = Duration::from_secs(60);

/// The condition of type `kind` in `status`, if any.
pub fn condition<'a>(status: Option<&'a Status>, kind: &str) -> Option<&'a Condition> {
    status?.conditions.iter().find(|c| c.type_ == kind)
}

/// `status` without the fields that change on every pass.
fn comparable(s: &Status) -> Status {
    let mut s = s.clone();
    if let Some(o) = s.observed.as_mut() {
        o.time = Time(Timestamp::UNIX_EPOCH);
    }
    s
}

/// Writes the status when it changed (the observed time alone does not count,
/// unless a minute has passed).
pub async fn write(
    ctx: &Context,
    slo: &ServiceLevelObjective,
    status: Status,
) -> Result<(), Error> {
    let now = ctx.clock.now();
    let unchanged = ctx.memories.with(slo, |m| {
        m.written.as_ref().is_some_and(|(prev, at)| {
            comparable(prev) == comparable(&status)
                && now.saturating_duration_since(*at) < REWRITE_AFTER
        })
    });
    if unchanged {
        return Ok(());
    }
    let (namespace, name) = (slo.namespace().unwrap_or_default(), slo.name_any());
    let api: Api<ServiceLevelObjective> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = serde_json::json!({
        "apiVersion": "governor.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "status": status,
    });
    ctx.leader.guard()?;
    api.patch_status(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|e| Error::api(format!("writing status of {namespace}/{name}"), e))?;
    ctx.memories.with(slo, |m| m.written = Some((status, now)));
    Ok(())
}

/// Sets the SLO's series: state, replicas, pool size, error budgets, the
/// latency targets, and the latency and cache hit rate observed (a signal not
/// observed has no series, never a zero).
pub fn record_metrics(
    ctx: &Context,
    slo: &ServiceLevelObjective,
    status: &Status,
    current: Actuation,
) {
    let (namespace, name) = (slo.namespace().unwrap_or_default(), slo.name_any());
    ctx.metrics.set_budgets(&namespace, &name, status);
    let state = format!("{:?}", status.objective_state);
    tracing::Span::current().record("state", state.as_str());
    ctx.metrics.set_state(&namespace, &name, &state);
    let labels = metrics::Slo {
        namespace,
        slo: name,
    };
    ctx.metrics
        .replicas
        .get_or_create(&labels)
        .set(i64::from(current.replicas));
    let aim = status
        .headroom
        .as_ref()
        .map_or(crate::decide::LATENCY_MARGIN, |h| h.aim);
    ctx.metrics.latency_aim.get_or_create(&labels).set(aim);
    if let Some(p) = current
        .pool_size
        .filter(|_| slo.spec.connection_pool.is_some())
    {
        ctx.metrics
            .pool_size
            .get_or_create(&labels)
            .set(i64::from(p));
    }
    match status.observed.as_ref().and_then(|o| o.cache_hit_rate) {
        Some(r) => {
            ctx.metrics.cache_hit_ratio.get_or_create(&labels).set(r);
        }
        None => {
            ctx.metrics.cache_hit_ratio.remove(&labels);
        }
    }
    for q in Quantile::ALL {
        let series = metrics::SloQuantile {
            namespace: labels.namespace.clone(),
            slo: labels.slo.clone(),
            quantile: q.name().into(),
        };
        if let Some(t) = slo.spec.objectives.latency.get(q) {
            ctx.metrics
                .latency_target
                .get_or_create(&series)
                .set(t.as_secs_f64());
        } else {
            ctx.metrics.latency_target.remove(&series);
        }
        let observed = status.observed.as_ref().and_then(|o| o.latency(q));
        if let Some(l) = observed {
            ctx.metrics
                .latency
                .get_or_create(&series)
                .set(l.as_secs_f64());
        } else {
            ctx.metrics.latency.remove(&series);
        }
    }
}
