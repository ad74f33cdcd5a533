//! `governor operator`: a kube-runtime Controller over ServiceLevelObjectives.
//! Each pass is one chain: validate → read the target → decide → act → report.
//! The observer reads the signals for every SLO in one batched cycle; only the
//! replica holding the Lease acts; one bad SLO never stalls the others.

pub mod act;
pub mod context;
pub mod error;
pub mod events;
pub mod leader;
pub mod metrics;
pub mod observer;
pub mod run;
pub mod status;
pub mod target;
pub mod warm_up;

use std::sync::Arc;
use std::time::{Duration, Instant};

use governor_crds::ServiceLevelObjective;
use governor_crds::conditions::{FALSE, event, kind, reason};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::Instrument;

use crate::actuate::{self, Request};
use crate::decide::{Actuation, Plan, decide};
use crate::observe::Observation;
use crate::report::{self, Pass, Reach};

pub use context::{Clock, Context, SystemClock};
pub use error::Error;
pub use leader::Leader;
pub use metrics::Metrics;
pub use run::{Settings, run, shutdown_signal};

/// Field manager of every write.
pub const MANAGER: &str = "governor";

/// The target as a pass found it.
struct Found {
    target: target::Target,
    current: Actuation,
    reach: Reach,
}

fn interval_of(slo: &ServiceLevelObjective) -> Duration {
    slo.spec
        .objectives
        .evaluation_interval
        .std()
        .max(Duration::from_secs(1))
}

async fn reconcile(slo: Arc<ServiceLevelObjective>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.leader.is_leader() {
        ctx.memories.with(&slo, |m| m.stale = true);
        return Ok(Action::requeue(interval_of(&slo)));
    }
    if let Some(wait) = ctx.not_due(&slo, interval_of(&slo)) {
        return Ok(Action::requeue(wait));
    }
    let started = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        slo = %slo.name_any(),
        namespace = %slo.namespace().unwrap_or_default(),
        generation = slo.metadata.generation.unwrap_or(0),
        state = tracing::field::Empty,
        decisions = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    );
    let result = pass(&slo, &ctx).instrument(span.clone()).await;
    if let Err(e) = &result {
        span.record("otel.status_code", "ERROR");
        span.record("otel.status_description", e.to_string());
    }
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    result
}

/// One pass over one SLO.
async fn pass(slo: &ServiceLevelObjective, ctx: &Context) -> Result<Action, Error> {
    validate(ctx, slo).await?;
    apply_rules(ctx, slo).await;
    let read = read_target(ctx, slo)
        .instrument(tracing::info_span!("read_target"))
        .await;
    let found = match read {
        // A missing target, or one that did not opt in: said in TargetFound
        // and Ready, and looked for again later.
        Err(e @ (Error::TargetMissing(_) | Error::NotManaged { .. })) => {
            let (why, event_reason) = match e {
                Error::TargetMissing(_) => (reason::TARGET_MISSING, event::TARGET_MISSING),
                _ => (reason::NOT_MANAGED, event::NOT_MANAGED),
            };
            let kinds = [kind::TARGET_FOUND, kind::READY];
            return refuse(ctx, slo, &kinds, why, event_reason, e).await;
        }
        other => other?,
    };
    events::hpa_conflict(ctx, slo, &found.reach).await;
    let (plan, observation) = decide_now(ctx, slo, found.current);
    act(ctx, slo, &found, &plan).await?;
    report(ctx, slo, &found, &plan, &observation).await?;
    Ok(Action::requeue(interval_of(slo)))
}

/// Refuses a spec that does not validate, with an Event naming each problem.
async fn validate(ctx: &Context, slo: &ServiceLevelObjective) -> Result<(), Error> {
    let problems = slo.spec.validate();
    if problems.is_empty() {
        return Ok(());
    }
    let text = problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    events::warning(ctx, slo, event::INVALID_SPEC, text.clone()).await;
    Err(Error::InvalidSpec(text))
}

/// Applies the SLO's burn-rate rules once per spec generation and set of
/// labels. A refusal is the `AlertRules` condition and an Event (once per
/// cause); actuation goes on, and the rules are tried again on the next pass.
async fn apply_rules(ctx: &Context, slo: &ServiceLevelObjective) {
    let applied = (
        slo.metadata.generation.unwrap_or(0),
        slo.metadata.labels.clone().unwrap_or_default(),
    );
    if ctx
        .memories
        .with(slo, |m| m.rules_applied.as_ref() == Some(&applied))
    {
        return;
    }
    let opts = crate::rules::Options {
        dashboard_url: ctx.dashboard_url.clone(),
        default_runbook_url: None,
        scrape_interval: ctx.scrape_interval,
    };
    let refused = match crate::rules::generate(slo, &opts, &crate::rules::Unchecked) {
        Ok(generated) => {
            if ctx.leader.guard().is_err() {
                return;
            }
            let groups = generated.groups();
            let operator = ctx.prometheus_operator;
            let applied =
                crate::rules::apply(&ctx.client, slo, &groups, operator, &ctx.rules_metadata);
            match applied.await {
                Ok(_) => None,
                Err(e) => Some((Error::Rules(e).to_string(), false)),
            }
        }
        Err(problems) => Some((
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            true,
        )),
    };
    let announce = ctx.memories.with(slo, |m| {
        let new = refused.as_ref().map(|(why, _)| why) != m.rules_refused.as_ref();
        m.rules_refused = refused.as_ref().map(|(why, _)| why.clone());
        // A spec the generator refuses waits for a new generation; a failed
        // apply is tried again.
        if refused.as_ref().is_none_or(|(_, final_)| *final_) {
            m.rules_applied = Some(applied);
        }
        new
    });
    if let Some((why, _)) = refused
        && announce
    {
        events::warning(ctx, slo, event::ALERT_RULES_REFUSED, why).await;
    }
}

/// Reads the target: its replicas, pool size, and the HPA that scales it.
async fn read_target(ctx: &Context, slo: &ServiceLevelObjective) -> Result<Found, Error> {
    let namespace = slo.namespace().unwrap_or_default();
    let mut target = target::Target::resolve(&ctx.client, &namespace, &slo.spec).await?;
    let replicas = target.replicas().await?;
    let pool = target.pool_size(&ctx.client, &namespace, &slo.spec).await?;
    let hpa = target::hpa_for(&ctx.hpas.state(), &namespace, &slo.spec);
    let reach = target::reach(&target, hpa.as_ref(), slo.spec.scaling.drive_hpa);
    if slo.spec.scaling.drive_hpa {
        target.driven_hpa = hpa;
    }
    let configured = slo.spec.connection_pool.as_ref();
    let current = Actuation {
        replicas,
        pool_size: pool.or_else(|| configured.map(|p| p.max_size.max(1) as u32)),
    };
    Ok(Found {
        target,
        current,
        reach,
    })
}

/// Says why a pass stopped, in the `kinds` conditions and (once, when it
/// appears) an Event; keeps the rest of the status, and returns the error.
async fn refuse(
    ctx: &Context,
    slo: &ServiceLevelObjective,
    kinds: &[&str],
    why: &str,
    event_reason: &str,
    e: Error,
) -> Result<Action, Error> {
    let prev = slo.status.as_ref();
    let message = e.to_string();
    let already = status::condition(prev, kinds[0])
        .is_some_and(|c| c.status == FALSE && c.reason == why && c.message == message);
    if !already {
        events::warning(ctx, slo, event_reason, message.clone()).await;
    }
    let status = report::refused(
        prev,
        slo.metadata.generation,
        kinds,
        why,
        &message,
        ctx.time(),
    );
    status::write(ctx, slo, status).await?;
    Err(e)
}

/// Decides on the newest reading; the memory keeps the new state and when.
fn decide_now(
    ctx: &Context,
    slo: &ServiceLevelObjective,
    current: Actuation,
) -> (Plan, Observation) {
    let (now, at) = (ctx.unix_now(), ctx.clock.now());
    ctx.memories.with(slo, |m| {
        let (cycle, mut obs, causes) = m
            .reading
            .as_ref()
            .map(|(n, r)| (*n, r.observation.clone(), r.hold_causes()))
            .unwrap_or_default();
        obs.error_budget = m
            .reading
            .as_ref()
            .and_then(|(_, r)| r.budget.as_ref())
            .and_then(|b| budget_position(slo, b.budget.worst()?, now));
        if std::mem::take(&mut m.stale) {
            m.state = crate::decide::ControllerState::seeded(slo.status.as_ref());
        }
        let state = std::mem::take(&mut m.state);
        let (mut plan, next) =
            tracing::info_span!("decide").in_scope(|| decide(&slo.spec, state, &obs, current, now));
        // A hold names what was missing and why.
        if let Some(hold) = plan.hold.as_mut()
            && let Some(causes) = causes
        {
            *hold = format!("{hold} ({causes})");
        }
        m.state = next;
        m.decided = Some((at, cycle));
        (plan, obs)
    })
}

/// Where the SLO's budget stands in its window: the budget as read, and the
/// share of the window since the SLO was created (1 once it is older than
/// its window; the recording starts no earlier than the SLO).
fn budget_position(
    slo: &ServiceLevelObjective,
    remaining: f64,
    now: f64,
) -> Option<crate::error_budget::BudgetPosition> {
    let created = slo.metadata.creation_timestamp.as_ref()?.0.as_millisecond() as f64 / 1000.0;
    let window = slo.spec.objectives.window.as_secs_f64();
    crate::error_budget::BudgetPosition::new(remaining, (now - created) / window)
}

/// Applies the plan through the cluster port, unless DryRun.
async fn act(
    ctx: &Context,
    slo: &ServiceLevelObjective,
    found: &Found,
    plan: &Plan,
) -> Result<(), Error> {
    let namespace = slo.namespace().unwrap_or_default();
    let mut port = act::ClusterPort {
        client: &ctx.client,
        leader: &ctx.leader,
        slo,
        namespace: &namespace,
        target: &found.target,
        pool: found.current.pool_size,
        warm_ups: &ctx.warm_ups,
    };
    match actuate::apply(&mut port, Request::from_plan(plan)).await {
        Ok(applied) => {
            if let (Some((wanted, set)), Some(h)) = (applied.capped, &found.target.driven_hpa) {
                let note = format!(
                    "wanted {wanted} replicas; HorizontalPodAutoscaler {}/{} allows at most {set}",
                    h.namespace, h.name
                );
                events::warning(ctx, slo, event::HPA_MAX_REPLICAS, note).await;
            }
            Ok(())
        }
        Err(failed) if matches!(failed.error, Error::NotLeader) => Err(failed.error),
        Err(failed) => {
            ctx.metrics.actuation_failed(slo, failed.knob);
            if let Error::NotManaged { .. } = failed.error {
                let kinds = [kind::READY];
                refuse(
                    ctx,
                    slo,
                    &kinds,
                    reason::NOT_MANAGED,
                    event::NOT_MANAGED,
                    failed.error,
                )
                .await
                .map(|_| ())
            } else {
                events::warning(ctx, slo, event::ACTUATION_FAILED, failed.to_string()).await;
                Err(failed.error)
            }
        }
    }
}

/// Writes what the pass saw and did: decisions, Events, metrics, status.
async fn report(
    ctx: &Context,
    slo: &ServiceLevelObjective,
    found: &Found,
    plan: &Plan,
    observation: &Observation,
) -> Result<(), Error> {
    let prev = slo.status.as_ref();
    let pass = Pass {
        spec: &slo.spec,
        generation: slo.metadata.generation,
        observation,
        plan,
        current: found.current,
        error_budget: ctx.memories.with(slo, |m| {
            m.reading
                .as_ref()
                .and_then(|(_, r)| r.budget.as_ref())
                .map(|b| b.budget.clone())
                .unwrap_or_default()
        }),
        target: found.reach.clone(),
        rules_refused: ctx.memories.with(slo, |m| m.rules_refused.clone()),
        now: ctx.time(),
    };
    let new = report::new_decisions(prev.map_or(&[][..], |s| &s.decisions[..]), &pass);
    let status = report::status(prev, &pass);
    events::announce(ctx, slo, &new, plan, &status).await;
    tracing::Span::current().record("decisions", new.len());
    status::record_metrics(ctx, slo, &status, found.current);
    status::write(ctx, slo, status)
        .instrument(tracing::info_span!("write_status"))
        .await
}

fn error_policy(slo: Arc<ServiceLevelObjective>, error: &Error, ctx: Arc<Context>) -> Action {
    let category = error.category();
    ctx.metrics
        .reconcile_errors
        .get_or_create(&metrics::Category {
            category: category.into(),
        })
        .inc();
    tracing::warn!(slo = %slo.name_any(), namespace = ?slo.namespace(), category, "{error}");
    Action::requeue(error.requeue())
}
