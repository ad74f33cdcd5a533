//! Replicas: the fewest the model says meet every latency objective, raised by
//! feedback while breached, held back by stabilization and rate limits.

use std::collections::VecDeque;

use super::{
    Change, ControllerState, Pass, load::Load, ms, pool_stage::PoolStage, pressure::Pressure, secs,
};
use crate::estimate::Estimate;

/// Per-replica load within this share of the load that once breached by
/// queueing counts as overload: the remembered rate is itself noisy.
const OVERLOAD_MARGIN: f64 = 0.95;
/// Latency over the model's floor by this ratio, plus `QUEUEING_SLACK_S`, is
/// queueing rather than noise.
const QUEUEING_RATIO: f64 = 1.2;
const QUEUEING_SLACK_S: f64 = 0.002;
/// Feedback at most doubles the ready replicas in one step: pressure beyond
/// that is as likely a spike as a need.
const FEEDBACK_MAX_FACTOR: f64 = 2.0;
/// Queueing that takes an objective over this share of its target marks the
/// knee (`Estimate::knee_rate`).
const KNEE_PRESSURE: f64 = 0.8;

/// Where the wanted count comes from; the reason for a change says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Basis {
    /// The fewest replicas the model says meet every objective.
    Model,
    /// Latency is over target without queueing: replicas would not fix it.
    FloorOver,
    /// Breached although the model expected the ready replicas to suffice.
    Feedback,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Want {
    n: u32,
    basis: Basis,
}

/// The replica change of this pass, if any. Records the recommendation and may
/// remember the per-replica load that breached (`next.model.overload_rate`).
pub(super) fn decide(
    pass: &Pass,
    load: &Load,
    pressure: &Pressure,
    bottleneck: bool,
    next: &mut ControllerState,
) -> Option<Change> {
    let cur = pass.cur();
    let want = want(pass, load, pressure, bottleneck, &mut next.model);
    let stable = stabilize(&mut next.recommendations, pass, want.n);
    let mut to = if want.n < cur {
        stable.min(cur)
    } else {
        want.n
    };
    // Never remove capacity while an objective is breached, unless the breach
    // is the floor's (no queueing) and the model says the capacity adds nothing.
    let releasing = want.basis == Basis::FloorOver && !queueing_visible(pass, &next.model);
    if to < cur && pressure.breached() && !releasing {
        to = cur;
    }
    // Bounds and the budget win over the rate limits: a count outside them is
    // corrected at once.
    let to = pass.limits.bound(rate_limit(pass, &next.history, to));
    (to != cur).then(|| Change {
        from: cur,
        to,
        reason: reason(pass, load, pressure, &next.model, want, to),
    })
}

/// What the policy wants before stabilization and rate limits, within the
/// bounds and the budget.
fn want(
    pass: &Pass,
    load: &Load,
    pressure: &Pressure,
    bottleneck: bool,
    model: &mut Estimate,
) -> Want {
    let (cur, l) = (pass.cur(), &pass.limits);
    let floor_over = floor_over(pass, model);
    let stage = PoolStage::of(pass, model);
    let queueing = queueing_visible(pass, model);
    // Only a steady state (the last scale-up ready and visible in the window)
    // says anything about what the replicas carry.
    let steady = !load.settling && cur <= load.ready;
    if queueing && !floor_over && steady && pressure.value > knee_pressure(pass) {
        // The knee: queueing already takes an objective near its target here.
        let per = load.rate / f64::from(load.ready);
        model.knee_rate = Some(model.knee_rate.map_or(per, |o| o.min(per)));
    }
    let breached_by_queueing = pressure.breached() && queueing && !floor_over && steady;
    if breached_by_queueing {
        // Remember the per-replica load that breached by queueing; this pass
        // already plans below it.
        let per = load.rate / f64::from(load.ready);
        model.overload_rate = Some(model.overload_rate.map_or(per, |o| o.min(per)));
    }
    let mut want = if floor_over {
        // Slow even without queueing: replicas would not fix it. Hold, or
        // release what the model says adds nothing.
        Want {
            n: release(pass, model, stage, load).clamp(l.min, l.max),
            basis: Basis::FloorOver,
        }
    } else {
        Want {
            n: by_model(pass, model, stage, load),
            basis: Basis::Model,
        }
    };
    // Feedback: while an objective is breached by queueing, never settle at or
    // below the replicas that are breaching it.
    if breached_by_queueing && want.n <= load.ready && !bottleneck {
        let bump = ((f64::from(load.ready) * pressure.value.min(FEEDBACK_MAX_FACTOR)).ceil()
            as u32)
            .max(load.ready + 1);
        if bump > want.n {
            want = Want {
                n: bump,
                basis: Basis::Feedback,
            };
        }
    }
    if bottleneck {
        // Not scaling into a downstream bottleneck: at most the current count.
        want.n = want.n.min(cur);
    }
    want.n = l.bound(want.n);
    want
}

/// The pressure that marks the knee: [`KNEE_PRESSURE`] at the fixed aim;
/// with budget-aware headroom it moves with the aim, or a knee marked below
/// the aim would hold the replicas where the fixed aim does.
fn knee_pressure(pass: &Pass) -> f64 {
    match pass.headroom {
        Some(_) => super::headroom::knee_pressure(KNEE_PRESSURE, pass.aim),
        None => KNEE_PRESSURE,
    }
}

/// A latency floor over target (slow even without queueing), which replicas
/// do not fix.
fn floor_over(pass: &Pass, model: &Estimate) -> bool {
    pass.targets.iter().any(|(q, t)| {
        model
            .base(*q)
            .is_some_and(|b| b > t.as_secs_f64() * pass.aim)
    })
}

/// The fewest replicas that meet every latency objective with margin at the
/// forecast load, by the model of both stages: workers, and each replica's
/// share of the connection budget (more replicas, smaller pools). Replicas
/// beyond those ready start cold when the cache is not warmed first, and must
/// meet the objectives too. When no count does, the one predicted best (the
/// fewest among equals): capacity that does not help is not added.
fn by_model(pass: &Pass, model: &Estimate, stage: Option<PoolStage>, load: &Load) -> u32 {
    let l = &pass.limits;
    let mut best: Option<(f64, u32)> = None;
    for n in l.min..=l.bound(l.max) {
        let per = load.forecast / f64::from(n);
        let cold = n > load.ready;
        // A cold replica is as busy as a warm one at a proportionally higher
        // rate: the knee and the overload bound it at that rate.
        let busy = match stage {
            Some(s) if cold => per * s.cold_slowdown(model.service_time),
            _ => per,
        };
        if remembered(model, busy) {
            continue;
        }
        let Some(worst) = predicted_pressure(pass, model, stage, n, per, cold) else {
            return n; // nothing to predict from: the first count
        };
        if worst <= pass.aim {
            return n;
        }
        if best.is_none_or(|(b, _)| worst < b) {
            best = Some((worst, n));
        }
    }
    best.map_or(l.max, |(_, n)| n)
}

/// The highest predicted latency / target over the objectives at `n`
/// replicas with `per` requests/s each (`cold`: some of them start cold);
/// None when the model cannot predict any.
fn predicted_pressure(
    pass: &Pass,
    model: &Estimate,
    stage: Option<PoolStage>,
    n: u32,
    per: f64,
    cold: bool,
) -> Option<f64> {
    let pool = pass.limits.pool_limit(n).max(pass.limits.pool_min);
    // Each queue's Erlang C once, for every quantile.
    let warm_queue = model.queue(per, model.concurrency, 0.0);
    let warm_pool = stage.map(|s| s.queue(per, pool, false));
    let cold_queues = match stage {
        Some(s) if cold && s.cold_penalty() > 0.0 => {
            let extra = s.cold_penalty();
            model
                .queue(per, model.concurrency, extra)
                .map(|queue| (queue, extra, s.queue(per, pool, true)))
        }
        _ => None,
    };
    let mut worst: Option<f64> = None;
    for (q, t) in &pass.targets {
        let target = t.as_secs_f64().max(1e-9);
        let warm = warm_queue
            .and_then(|queue| model.predict_in(*q, &queue, 0.0))
            .map(|p| p + warm_pool.map_or(0.0, |w| w.quantile(q.value())));
        let cold_p = cold_queues.and_then(|(queue, extra, pool_queue)| {
            model
                .predict_in(*q, &queue, extra)
                .map(|p| p + pool_queue.quantile(q.value()))
        });
        for p in [warm, cold_p].into_iter().flatten() {
            worst = Some(worst.map_or(p / target, |w: f64| w.max(p / target)));
        }
    }
    worst
}

/// While the latency floor is over target, replicas do not fix it: the
/// fewest (down to the current count) on which both stages still carry the
/// forecast load (finite predicted latency) and no remembered knee or overload
/// forbids, so capacity that does not help is released. Nothing is released
/// while requests queue, while a scale-up settles, or while the cache is under
/// its hit-rate target (a cold cache's floor falls as it warms).
fn release(pass: &Pass, model: &Estimate, stage: Option<PoolStage>, load: &Load) -> u32 {
    let cur = pass.cur();
    let cache_cold = match (&pass.spec.cache, pass.obs.cache_hit_rate) {
        (Some(c), Some(hit)) => hit < c.hit_rate_target,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if cache_cold || load.settling || cur > load.ready || queueing_visible(pass, model) {
        return cur;
    }
    (pass.limits.min..cur)
        .find(|&n| {
            let per = load.forecast / f64::from(n);
            !remembered(model, per)
                && predicted_pressure(pass, model, stage, n, per, false).is_some_and(f64::is_finite)
        })
        .unwrap_or(cur)
}

/// `per` requests/s per replica reach a remembered knee or overload.
fn remembered(model: &Estimate, per: f64) -> bool {
    model
        .overload_rate
        .is_some_and(|o| per >= OVERLOAD_MARGIN * o)
        || model.knee_rate.is_some_and(|k| per >= k)
}

/// Some latency objective is clearly over the model's floor: requests queue.
pub(super) fn queueing_visible(pass: &Pass, model: &Estimate) -> bool {
    pass.targets
        .iter()
        .any(|(q, _)| match (pass.obs.latency.get(*q), model.base(*q)) {
            (Some(v), Some(b)) => v > b * QUEUEING_RATIO + QUEUEING_SLACK_S,
            _ => false,
        })
}

/// Scale-down stabilization: records `want` and returns the highest
/// recommendation within the window.
fn stabilize(recs: &mut VecDeque<(f64, u32)>, pass: &Pass, want: u32) -> u32 {
    // A fresh state (a new leader, a restart) has seen no window yet: it counts
    // the current replicas as its first recommendation.
    if recs.is_empty() {
        recs.push_back((pass.now, pass.cur()));
    }
    recs.push_back((pass.now, want));
    let window = stabilization_window(pass);
    while recs.front().is_some_and(|&(t, _)| t < pass.now - window) {
        recs.pop_front();
    }
    recs.iter().map(|&(_, r)| r).max().unwrap_or(want)
}

fn stabilization_window(pass: &Pass) -> f64 {
    secs(pass.spec.scaling.scale_down.stabilization_window)
}

/// `to` within the rate limits, relative to the counts within each period.
fn rate_limit(pass: &Pass, history: &VecDeque<(f64, u32)>, to: u32) -> u32 {
    let (cur, now, scaling) = (pass.cur(), pass.now, &pass.spec.scaling);
    let (up, down) = (&scaling.scale_up, &scaling.scale_down);
    let base_up = counts_since(history, now - secs(up.period), cur).0;
    let up_limit = base_up
        + (up.max_pods.max(1) as u32)
            .max((f64::from(base_up) * f64::from(up.max_percent.max(1)) / 100.0).ceil() as u32);
    let base_down = counts_since(history, now - secs(down.period), cur).1;
    let down_step = (down.max_pods.max(1) as u32)
        .max((f64::from(base_down) * f64::from(down.max_percent.max(1)) / 100.0).floor() as u32);
    let down_limit = base_down.saturating_sub(down_step);
    if to > cur {
        to.min(up_limit.max(cur))
    } else if to < cur {
        to.max(down_limit.min(cur))
    } else {
        to
    }
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

/// Why replicas move from the current count to `to`.
fn reason(
    pass: &Pass,
    load: &Load,
    pressure: &Pressure,
    model: &Estimate,
    want: Want,
    to: u32,
) -> String {
    let cur = pass.cur();
    // A count outside [min, max] that lands on the bound: the bound alone explains it.
    if let Some(bound) = pass.limits.bound_reason(cur, to) {
        return bound;
    }
    let worst = pressure.describe_worst();
    let why = match want.basis {
        Basis::FloorOver => format!(
            "latency is over target even without queueing ({worst}): a cold cache or a slow dependency, which replicas do not fix; holding {} replicas",
            want.n
        ),
        Basis::Feedback => format!(
            "{worst}: breached although the model expected {} replicas to suffice; adding capacity",
            load.ready
        ),
        Basis::Model => format!(
            "{} replicas meet every latency objective at {:.0} rps forecast ({:.0} rps now; model: k={:.0} per replica, S={}){}",
            want.n,
            load.forecast,
            load.rate,
            model.concurrency,
            model.service_time.map_or("?".into(), ms),
            pass.headroom
                .as_ref()
                .map_or(String::new(), |h| format!(", {h}"))
        ),
    };
    let reason = if to > cur && want.basis != Basis::Feedback {
        format!("{why}; {worst}")
    } else if to > cur {
        why
    } else {
        format!(
            "{why}; lowest recommendation held for {}",
            governor_crds::Duration::from_secs(stabilization_window(pass) as u64)
        )
    };
    reason.trim_end_matches("; ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testing::{SpecBuilder, healthy};
    use governor_crds::Quantile;

    fn spec() -> governor_crds::ServiceLevelObjectiveSpec {
        SpecBuilder::new()
            .p99("100ms")
            .replicas(1, 50)
            .scale_up(4, 100, "15s")
            .scale_down(1, 50, "60s")
            .stabilization("5m")
            .build()
    }

    #[test]
    fn rate_limits_count_from_the_counts_within_each_period() {
        let spec = spec();
        let pass = Pass::at(&spec, &healthy(100.0), 4, None, 100.0);
        let steady = VecDeque::from([(0.0, 4)]);
        // Up: the larger of 4 pods and 100 % of 4.
        assert_eq!(rate_limit(&pass, &steady, 20), 8);
        // Down: the larger of 1 pod and 50 % of 4.
        assert_eq!(rate_limit(&pass, &steady, 1), 2);
        assert_eq!(rate_limit(&pass, &steady, 4), 4);
        // A scale-up from 2 within the last 15 s: the limit counts from 2.
        let recent = VecDeque::from([(0.0, 2), (95.0, 4)]);
        assert_eq!(rate_limit(&pass, &recent, 20), 6);
    }

    #[test]
    fn counts_since_includes_the_count_in_effect_at_the_start() {
        let history = VecDeque::from([(0.0, 3), (50.0, 8), (90.0, 5)]);
        assert_eq!(counts_since(&history, 60.0, 5), (5, 8));
        assert_eq!(counts_since(&history, 95.0, 5), (5, 5));
        assert_eq!(counts_since(&history, 40.0, 5), (3, 8));
        assert_eq!(counts_since(&VecDeque::new(), 40.0, 5), (5, 5));
    }

    #[test]
    fn stabilization_keeps_the_highest_recommendation_in_the_window() {
        let spec = spec();
        let mut recs = VecDeque::new();
        let first = Pass::at(&spec, &healthy(0.0), 10, None, 0.0);
        assert_eq!(
            stabilize(&mut recs, &first, 4),
            10,
            "a fresh state counts what runs"
        );
        let later = Pass::at(&spec, &healthy(200.0), 10, None, 200.0);
        assert_eq!(stabilize(&mut recs, &later, 3), 10, "200 s < 5 min");
        let after = Pass::at(&spec, &healthy(301.0), 10, None, 301.0);
        assert_eq!(
            stabilize(&mut recs, &after, 2),
            3,
            "the first ones left the window"
        );
        assert_eq!(recs.len(), 2);
    }

    #[test]
    fn a_slow_floor_holds_the_count_and_is_not_queueing() {
        let spec = spec();
        let mut model = Estimate::default();
        model.base[Quantile::P99.index()] = Some(0.15); // P99 floor over the 100 ms target
        let mut obs = healthy(0.0);
        obs.latency.p99 = Some(0.16);
        let pass = Pass::at(&spec, &obs, 6, None, 0.0);
        assert!(floor_over(&pass, &model));
        assert!(
            !queueing_visible(&pass, &model),
            "160 ms is within 1.2 x 150 ms"
        );
        model.base[Quantile::P99.index()] = Some(0.05);
        assert!(!floor_over(&pass, &model));
        assert!(queueing_visible(&pass, &model));
    }
}
