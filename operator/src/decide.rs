//! Decide: a pure function of (spec, controller state, observation, current
//! actuation, now) to a plan — replicas, pool size, warm-up, or nothing — with a
//! reason for every change. No I/O, no clock: this is where the safety rules live.

use std::collections::VecDeque;

use governor_crds::{Mode, ObjectiveState, ServiceLevelObjectiveSpec as Spec};

use crate::estimate::Estimate;
use crate::observe::Observation;

/// Plan latency with this share of each target, so noise does not breach it.
pub const LATENCY_MARGIN: f64 = governor_crds::AT_RISK_RATIO;

/// What the target runs with now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actuation {
    /// Replicas the workload asks for (spec.replicas).
    pub replicas: u32,
    /// Per-replica pool size, when Governor manages the pool.
    pub pool_size: Option<u32>,
}

/// One knob moved, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

/// The outcome of one decision. Empty (all `None`) means nothing changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub replicas: Option<Change>,
    pub pool_size: Option<Change>,
    pub warm_up: Option<String>,
    /// The downstream bottleneck that keeps Governor from adding replicas.
    pub bottleneck: Option<String>,
    /// Why actuation is frozen (missing or stale data).
    pub hold: Option<String>,
    pub objective_state: Option<ObjectiveState>,
    /// Decided in DryRun mode: report, do not apply.
    pub dry_run: bool,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.replicas.is_none() && self.pool_size.is_none() && self.warm_up.is_none()
    }
}

/// What Governor remembers about one SLO between decisions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ControllerState {
    pub model: Estimate,
    /// Replica recommendations (time, replicas) within the stabilization window.
    pub recommendations: VecDeque<(f64, u32)>,
    /// Replica counts in effect (time set, replicas), for rate limits.
    pub history: VecDeque<(f64, u32)>,
    pub last_warm_up: Option<f64>,
}

/// Connections Governor may hand out across replicas, when it manages a pool.
pub fn connection_budget(spec: &Spec) -> Option<u32> {
    spec.connection_pool
        .as_ref()
        .map(|p| p.database.budget().clamp(0, i64::from(u32::MAX)) as u32)
}

fn secs(d: governor_crds::Duration) -> f64 {
    d.as_secs_f64()
}

fn ms(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2}s")
    } else {
        format!("{:.0}ms", s * 1000.0)
    }
}

/// The decision. `state` is the state before (taken by value, so a cycle over
/// many SLOs copies nothing); the new state is returned with the plan.
pub fn decide(
    spec: &Spec,
    state: ControllerState,
    obs: &Observation,
    current: Actuation,
    now: f64,
) -> (Plan, ControllerState) {
    let mut next = state;
    let mut plan = Plan {
        dry_run: spec.scaling.mode == Mode::DryRun,
        ..Plan::default()
    };
    let obs = obs.sanitized();
    let scaling = &spec.scaling;
    let min = scaling.min_replicas.max(1) as u32;
    let max = (scaling.max_replicas.max(1) as u32).max(min);
    let cur = current.replicas;
    let budget = connection_budget(spec);
    let pool_cfg = spec.connection_pool.as_ref();
    let pool_min = pool_cfg.map_or(1, |p| p.min_size.max(1) as u32);
    let pool_max = pool_cfg.map_or(u32::MAX, |p| (p.max_size.max(1) as u32).max(pool_min));
    // The most replicas the budget allows at the smallest pool.
    let budget_cap = budget.map_or(u32::MAX, |b| (b / pool_min).max(1));
    let interval = secs(spec.objectives.evaluation_interval).max(1.0);
    if next.history.back().is_none_or(|&(_, r)| r != cur) {
        next.history.push_back((now, cur));
    }

    let targets = spec.objectives.latency.targets();
    let fresh = obs
        .sampled_at
        .is_some_and(|t| now - t <= 2.0 * interval + 30.0 && t <= now + 1.0);
    let missing = obs.request_rate.is_none()
        || (!targets.is_empty() && targets.iter().all(|(q, _)| obs.latency.get(*q).is_none()));

    // Pool size first: the budget is a hard limit whatever the data says.
    if !fresh || missing {
        plan.hold = Some(if !fresh {
            "metrics are stale or missing a timestamp: holding replicas and pool".to_string()
        } else {
            "request rate or latency is missing: holding replicas and pool".to_string()
        });
        plan.objective_state = Some(ObjectiveState::Unknown);
        // Bounds and the budget are hard limits: they are restored even without data.
        let bounded = cur.clamp(min, max).min(budget_cap.max(min));
        if bounded != cur {
            plan.replicas = Some(Change {
                from: cur,
                to: bounded,
                reason: format!(
                    "{cur} replicas is outside [{min}, {max}] or over the connection budget: {bounded}"
                ),
            });
        }
        if let (Some(b), Some(pool)) = (budget, current.pool_size) {
            let after = bounded.max(cur.min(bounded));
            let limit = (b / after.max(1)).max(1).min(pool_max);
            if u64::from(after) * u64::from(pool) > u64::from(b) && limit < pool {
                plan.pool_size = Some(Change {
                    from: pool,
                    to: limit,
                    reason: format!(
                        "{after} replicas x pool {pool} exceeds the database budget of {b}: pool to {limit}"
                    ),
                });
            }
        }
        if let Some(c) = &plan.replicas
            && !plan.dry_run
        {
            next.history.push_back((now, c.to));
        }
        // A pass without data recommends what runs now: once data returns, a
        // scale-down still needs a whole stabilization window of fresh
        // recommendations, so an outage longer than the window cannot end in
        // a burst of removals.
        next.recommendations.push_back((now, bounded));
        trim(&mut next, now, spec);
        return (plan, next);
    }

    let ready = obs.ready_replicas.unwrap_or(cur).max(1);
    // The observation window still holds the state before the last scale-up until
    // the new pods are ready and a full window has passed.
    let settle = secs(scaling.pod_startup_time) + 60.0;
    let settling = cur > ready
        || next
            .history
            .iter()
            .zip(next.history.iter().skip(1))
            .any(|(a, b)| b.1 > a.1 && b.0 > now - settle);
    next.model.update(&obs, ready, now, settling);
    let rate = obs.request_rate.unwrap_or(0.0);
    let horizon = secs(scaling.pod_startup_time) + interval;
    let forecast = next.model.forecast(horizon).unwrap_or(rate).max(rate);

    // How close each objective is (observed / target).
    // The worst objective, described only when a reason needs it.
    let mut pressure: f64 = 0.0;
    let mut worst_latency: Option<(&str, f64, f64)> = None;
    let mut worst_error: Option<(f64, f64)> = None;
    for (q, target) in &targets {
        let name = q.name();
        if let Some(v) = obs.latency.get(*q) {
            let p = v / target.as_secs_f64().max(1e-9);
            if p > pressure {
                pressure = p;
                worst_latency = Some((name, v, target.as_secs_f64()));
            }
        }
    }
    if let (Some(err), Some(target)) = (obs.error_rate, spec.objectives.error_rate)
        && err / target > pressure
        && err > target
    {
        pressure = err / target;
        worst_error = Some((err, target));
    }
    let describe_worst = || -> String {
        match (worst_error, worst_latency) {
            (Some((err, target)), _) => format!(
                "error rate {:.2}% vs target {:.2}%",
                err * 100.0,
                target * 100.0
            ),
            (None, Some((name, v, t))) => format!("{name} {} vs target {}", ms(v), ms(t)),
            (None, None) => "no objective breached".to_string(),
        }
    };
    plan.objective_state = Some(if pressure > 1.0 {
        ObjectiveState::Breached
    } else if pressure > 0.9 {
        ObjectiveState::AtRisk
    } else {
        ObjectiveState::Met
    });

    // Downstream bottleneck: the pool is saturated and the database at its budget.
    let pool_now = current.pool_size;
    let saturated = match (obs.pool_in_use, obs.pool_max) {
        (Some(used), Some(size)) if size > 0.0 => {
            used >= 0.9 * size || obs.pool_pending.unwrap_or(0.0) >= 1.0
        }
        _ => false,
    };
    let at_budget = match (budget, pool_now) {
        (Some(b), Some(pool)) => u64::from(cur) * u64::from(pool) + u64::from(pool) > u64::from(b),
        _ => false,
    };
    let waiting = obs.pool_wait.unwrap_or(0.0);
    let bottleneck = saturated && at_budget && pressure > 1.0 && {
        // The wait for a connection explains a real share of the breach.
        let target = targets.first().map_or(0.1, |t| t.1.as_secs_f64());
        waiting > 0.1 * target || obs.pool_pending.unwrap_or(0.0) >= 1.0
    };
    if bottleneck {
        plan.bottleneck = Some(format!(
            "database connection budget exhausted: {:.0}/{:.0} pooled connections in use, {:.0} waiting (mean wait {}), budget {} — more replicas would not help",
            obs.pool_in_use.unwrap_or(0.0),
            obs.pool_max.unwrap_or(0.0),
            obs.pool_pending.unwrap_or(0.0),
            ms(waiting),
            budget.unwrap_or(0)
        ));
    }

    // Replicas: the fewest that meet every latency objective with margin at the
    // forecast load, by the model.
    // A latency floor over target (slow even without queueing) is not fixed by replicas.
    let floor_over = targets.iter().any(|(q, t)| {
        next.model
            .base(*q)
            .is_some_and(|b| b > t.as_secs_f64() * LATENCY_MARGIN)
    });
    let mut want = max;
    let mut feedback = false;
    if floor_over {
        // Slow even without queueing: replicas would not fix it. Hold.
        want = cur.clamp(min, max);
    } else {
        for n in min..=max {
            let per = forecast / f64::from(n);
            if next.model.overload_rate.is_some_and(|o| per >= 0.95 * o) {
                continue;
            }
            let meets = targets.iter().all(|(q, t)| {
                next.model
                    .predict(*q, per)
                    .is_none_or(|p| p <= t.as_secs_f64() * LATENCY_MARGIN)
            });
            if meets {
                want = n;
                break;
            }
        }
    }
    // Feedback: while an objective is breached by queueing, never settle at or
    // below the replicas that are breaching it.
    let queueing_visible =
        targets
            .iter()
            .any(|(q, _)| match (obs.latency.get(*q), next.model.base(*q)) {
                (Some(v), Some(b)) => v > b * 1.2 + 0.002,
                _ => false,
            });
    // Remember the per-replica load that breached by queueing.
    if pressure > 1.0 && queueing_visible && !floor_over && !settling && cur <= ready {
        let per = rate / f64::from(ready);
        next.model.overload_rate = Some(next.model.overload_rate.map_or(per, |o| o.min(per)));
    }
    // Hold feedback until the last scale-up is ready and visible in the window.
    if pressure > 1.0
        && want <= ready
        && !bottleneck
        && !floor_over
        && queueing_visible
        && !settling
        && cur <= ready
    {
        let bump = ((f64::from(ready) * pressure.min(2.0)).ceil() as u32).max(ready + 1);
        if bump > want {
            want = bump;
            feedback = true;
        }
    }
    if bottleneck {
        // Not scaling into a downstream bottleneck: at most the current count.
        want = want.min(cur);
    }
    want = want.clamp(min, max).min(budget_cap.max(min));

    // Scale-down stabilization: the highest recommendation within the window.
    // A fresh state (a new leader, a restart) has seen no window yet: it counts
    // the current replicas as its first recommendation.
    if next.recommendations.is_empty() {
        next.recommendations.push_back((now, cur));
    }
    next.recommendations.push_back((now, want));
    let window = secs(scaling.scale_down.stabilization_window);
    while next
        .recommendations
        .front()
        .is_some_and(|&(t, _)| t < now - window)
    {
        next.recommendations.pop_front();
    }
    let stable = next
        .recommendations
        .iter()
        .map(|&(_, r)| r)
        .max()
        .unwrap_or(want);
    let mut to = if want < cur { stable.min(cur) } else { want };
    // Never remove capacity while an objective is breached.
    if to < cur && pressure > 1.0 {
        to = cur;
    }

    // Rate limits, relative to the counts within each period.
    let up_period = secs(scaling.scale_up.period);
    let down_period = secs(scaling.scale_down.period);
    let base_up = counts_since(&next.history, now - up_period, cur).0;
    let up_limit = base_up
        + (scaling.scale_up.max_pods.max(1) as u32).max(
            (f64::from(base_up) * f64::from(scaling.scale_up.max_percent.max(1)) / 100.0).ceil()
                as u32,
        );
    let base_down = counts_since(&next.history, now - down_period, cur).1;
    let down_step = (scaling.scale_down.max_pods.max(1) as u32).max(
        (f64::from(base_down) * f64::from(scaling.scale_down.max_percent.max(1)) / 100.0).floor()
            as u32,
    );
    let down_limit = base_down.saturating_sub(down_step);
    if to > cur {
        to = to.min(up_limit.max(cur));
    } else if to < cur {
        to = to.max(down_limit.min(cur));
    }
    to = to.clamp(min, max).min(budget_cap.max(min));
    // Out-of-bounds current counts are corrected even when nothing else changes.
    if cur < min || cur > max {
        to = to.clamp(min, max);
    }
    if to != cur {
        let worst = describe_worst();
        let why = if floor_over {
            format!(
                "latency is over target even without queueing ({worst}): a cold cache or a slow dependency, which replicas do not fix; holding {want} replicas"
            )
        } else if feedback {
            format!(
                "{worst}: breached although the model expected {ready} replicas to suffice; adding capacity"
            )
        } else {
            format!(
                "{want} replicas meet every latency objective at {forecast:.0} rps forecast ({rate:.0} rps now; model: k={:.0} per replica, S={})",
                next.model.concurrency,
                next.model.service_time.map_or("?".into(), ms)
            )
        };
        let reason = if to > cur && !feedback {
            format!("{why}; {worst}")
        } else if to > cur {
            why
        } else {
            format!(
                "{why}; lowest recommendation held for {}",
                governor_crds::Duration::from_secs(window as u64)
            )
        };
        plan.replicas = Some(Change {
            from: cur,
            to,
            reason: reason.trim_end_matches("; ").to_string(),
        });
    }

    // Pool size per replica, from observed demand, within the budget at the new count.
    if let (Some(_), Some(pool)) = (pool_cfg, pool_now) {
        let replicas_after = to.max(cur); // both counts coexist while pods roll
        let limit = budget
            .map_or(pool_max, |b| (b / replicas_after.max(1)).max(1))
            .min(pool_max);
        // Each replica gets its share of the budget: a pool larger than demand costs
        // nothing but budget, a smaller one queues requests for connections.
        let waiting =
            obs.pool_pending.unwrap_or(0.0) >= 1.0 || obs.pool_wait.unwrap_or(0.0) > 0.005;
        let mut desired = if waiting || pool > limit || to != cur {
            limit
        } else {
            pool.max(pool_min)
        };
        desired = desired.clamp(pool_min, pool_max).min(limit.max(1));
        let over_budget =
            budget.is_some_and(|b| u64::from(replicas_after) * u64::from(pool) > u64::from(b));
        // Hysteresis: a one-connection move is not worth a rollout unless forced.
        if !over_budget && desired.abs_diff(pool) <= 1 && desired >= pool_min {
            desired = pool;
        }
        if desired != pool {
            let reason = if over_budget {
                format!(
                    "{replicas_after} replicas x pool {pool} would exceed the database budget of {}: pool to {desired}",
                    budget.unwrap_or(0)
                )
            } else {
                format!(
                    "observed {:.0} connections in use and {:.0} waiting across {ready} replicas: pool {pool} -> {desired}",
                    obs.pool_in_use.unwrap_or(0.0),
                    obs.pool_pending.unwrap_or(0.0)
                )
            };
            plan.pool_size = Some(Change {
                from: pool,
                to: desired,
                reason,
            });
        }
    }

    // Cache warming: cold cache while latency is at risk, or with a scale-up.
    if let Some(cache) = &spec.cache
        && cache.warm_up.is_some()
    {
        let cooled = next
            .last_warm_up
            .is_none_or(|t| now - t >= secs(cache.cooldown));
        let cold = obs
            .cache_hit_rate
            .is_some_and(|h| h < cache.hit_rate_target);
        let scaling_up = plan.replicas.as_ref().is_some_and(|c| c.to > c.from);
        // The cooldown paces warm-ups for a cold cache; a warm-up that comes with a
        // scale-up is part of it (new replicas start cold).
        if scaling_up && cache.warm_before_scale_up {
            plan.warm_up = Some("warming the new replicas' caches with the scale-up".to_string());
        } else if cooled && cold && pressure > 0.8 {
            plan.warm_up = Some(format!(
                "cache hit rate {:.0}% under target {:.0}% while {}",
                obs.cache_hit_rate.unwrap_or(0.0) * 100.0,
                cache.hit_rate_target * 100.0,
                describe_worst()
            ));
        }
        if plan.warm_up.is_some() && !plan.dry_run {
            next.last_warm_up = Some(now);
        }
    }

    if let Some(c) = &plan.replicas
        && !plan.dry_run
    {
        next.history.push_back((now, c.to));
    }
    trim(&mut next, now, spec);
    (plan, next)
}

/// (lowest, highest) replica counts in effect since `since`.
fn counts_since(history: &VecDeque<(f64, u32)>, since: f64, cur: u32) -> (u32, u32) {
    let mut lo = cur;
    let mut hi = cur;
    // The count in effect at `since` is the last entry at or before it.
    let mut in_effect = None;
    for &(t, r) in history {
        if t <= since {
            in_effect = Some(r);
        } else {
            lo = lo.min(r);
            hi = hi.max(r);
        }
    }
    if let Some(r) = in_effect {
        lo = lo.min(r);
        hi = hi.max(r);
    }
    (lo, hi)
}

fn trim(state: &mut ControllerState, now: f64, spec: &Spec) {
    let keep = secs(spec.scaling.scale_up.period)
        .max(secs(spec.scaling.scale_down.period))
        .max(secs(spec.scaling.scale_down.stabilization_window));
    while state.history.len() > 1 && state.history.get(1).is_some_and(|&(t, _)| t < now - keep) {
        state.history.pop_front();
    }
    while state.history.len() > 256 {
        state.history.pop_front();
    }
    while state.recommendations.len() > 4096 {
        state.recommendations.pop_front();
    }
}
