//! Events: what a pass announces on the SLO — each decision, and each problem
//! once, when it appears rather than on every pass.

use governor_crds::conditions::{FALSE, TRUE, event, kind, reason};
use governor_crds::{Knob, ServiceLevelObjective, ServiceLevelObjectiveStatus as Status};
use kube::Resource;
use kube::runtime::events::{Event, EventType};

use super::Context;
use super::status::condition;
use crate::decide::Plan;
use crate::report;

/// Records one Event on `slo`; a failure to record is logged, never fatal.
pub async fn publish(
    ctx: &Context,
    slo: &ServiceLevelObjective,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let reference = slo.object_ref(&());
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(report::truncate_note(&note)),
        action: reason.into(),
        secondary: None,
    };
    if ctx.leader.guard().is_err() {
        tracing::debug!("not the leader: event {reason} not published");
        return;
    }
    if let Err(e) = ctx.recorder.publish(&ev, &reference).await {
        tracing::warn!(error = %e, "publishing event {reason}");
    }
}

pub async fn warning(ctx: &Context, slo: &ServiceLevelObjective, reason: &str, note: String) {
    publish(ctx, slo, EventType::Warning, reason, note).await;
}

/// The Event reason of a decision.
fn decision_reason(knob: Knob, dry_run: bool) -> &'static str {
    match (knob, dry_run) {
        (_, true) => event::WOULD_CHANGE,
        (Knob::Replicas, _) => event::SCALED,
        (Knob::PoolSize, _) => event::POOL_RESIZED,
        (Knob::CacheWarmUp, _) => event::CACHE_WARM_UP,
    }
}

/// Announces the pass's new decisions, and the problems that appeared with it.
pub async fn announce(
    ctx: &Context,
    slo: &ServiceLevelObjective,
    decisions: &[governor_crds::Decision],
    plan: &Plan,
    status: &Status,
) {
    for d in decisions {
        let knob = d.knob.as_str();
        ctx.metrics
            .decisions
            .get_or_create(&super::metrics::Knob { knob: knob.into() })
            .inc();
        publish(
            ctx,
            slo,
            EventType::Normal,
            decision_reason(d.knob, d.dry_run),
            format!("{knob} {} -> {}: {}", d.from, d.to, d.reason),
        )
        .await;
    }
    let prev = slo.status.as_ref();
    let is = |s: Option<&Status>, k: &str, v: &str| condition(s, k).is_some_and(|c| c.status == v);
    if is(Some(status), kind::METRICS_AVAILABLE, FALSE) && !is(prev, kind::METRICS_AVAILABLE, FALSE)
    {
        let note = plan.hold.clone().unwrap_or_default();
        warning(ctx, slo, event::METRICS_UNAVAILABLE, note).await;
    }
    if let Some(b) = &plan.bottleneck
        && !is(prev, kind::BOTTLENECK, TRUE)
    {
        warning(ctx, slo, event::DOWNSTREAM_BOTTLENECK, b.clone()).await;
    }
}

/// Warns once when an HPA starts competing with Governor for the target.
pub async fn hpa_conflict(ctx: &Context, slo: &ServiceLevelObjective, reach: &report::Reach) {
    let before = condition(slo.status.as_ref(), kind::TARGET_FOUND).map(|c| c.reason.as_str());
    if reach.reason == reason::HPA_NOT_DRIVEN && before != Some(reason::HPA_NOT_DRIVEN) {
        warning(ctx, slo, event::HPA_CONFLICT, reach.message.clone()).await;
    }
}
