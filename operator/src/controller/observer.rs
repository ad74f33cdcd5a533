//! Observe: every SLO's signals read in one batched cycle per interval, kept
//! in each SLO's memory; then every SLO is passed on the new readings at once,
//! so a breach seen by a cycle is acted on without waiting for a requeue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::scope::Stores;
use governor_crds::ServiceLevelObjective;

use super::Context;
use super::context::Memory;
use crate::observe::jaeger::JaegerSource;
use crate::observe::prometheus::{PrometheusSource, Reading};
use crate::observe::queries::Signal;

/// Observes every SLO in `store` once per `interval`, then sends on each of
/// `decide` (one per controller).
/// Forgets the memory and metric series of SLOs that are gone.
pub fn spawn(
    ctx: Arc<Context>,
    store: Stores<ServiceLevelObjective>,
    source: PrometheusSource,
    jaeger: Option<JaegerSource>,
    interval: Duration,
    decide: Vec<futures::channel::mpsc::UnboundedSender<()>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut number = 0u64;
        loop {
            tick.tick().await;
            let slos = store.state();
            let refs: Vec<&ServiceLevelObjective> = slos.iter().map(|s| s.as_ref()).collect();
            for (namespace, name) in ctx.memories.retain(&refs) {
                ctx.metrics.forget(&namespace, &name);
            }
            if slos.is_empty() {
                continue;
            }
            let cycle = crate::observe::cycle(&source, jaeger.as_ref(), &refs).await;
            ctx.metrics.queries.inc_by(cycle.queries as u64);
            ctx.metrics.query_failures.inc_by(cycle.failed as u64);
            if cycle.split_queries > 0 {
                tracing::warn!(
                    queries = cycle.queries,
                    failed = cycle.failed,
                    split_queries = cycle.split_queries,
                    "batched queries failed and were split to read the SLOs they did not fail for"
                );
            }
            number += 1;
            let now = ctx.clock.now();
            for (slo, reading) in refs.iter().zip(cycle.readings) {
                ctx.memories.with(slo, |m| {
                    let reading = after_gap(m, reading, now, source.window.0);
                    m.reading = Some((number, reading));
                });
            }
            for d in &decide {
                let _ = d.unbounded_send(());
            }
        }
    })
}

/// Rates over a window that spans a gap in the data (Prometheus down, scrapes
/// failing) read low: after a gap, the request rate is trusted again only once
/// a whole window has passed. `m.gap_since` is when the rate was last missing.
fn after_gap(m: &mut Memory, mut reading: Reading, now: Instant, window: Duration) -> Reading {
    if reading.observation.request_rate.is_none() {
        m.gap_since = Some(now);
        return reading;
    }
    let Some(since) = m.gap_since.map(|t| now.saturating_duration_since(t)) else {
        return reading;
    };
    if since >= window {
        m.gap_since = None;
        return reading;
    }
    reading.observation.request_rate = None;
    reading.missing.insert(
        Signal::Requests.name(),
        format!(
            "data returned {:.0} s ago; rates over the {} window do not cover the gap yet",
            since.as_secs_f64(),
            governor_crds::Duration::from_secs(window.as_secs())
        ),
    );
    reading
}
