//! Hold: without fresh and complete data Governor does not act on the metrics;
//! it only restores the hard limits (replica bounds, connection budget).

use std::collections::VecDeque;

use governor_crds::ObjectiveState;

use super::{Change, Pass, Plan};

/// Data is stale after this many evaluation intervals plus `STALE_GRACE_S`: one
/// missed scrape is normal, two and a lag are not.
const STALE_INTERVALS: f64 = 2.0;
const STALE_GRACE_S: f64 = 30.0;
/// A sample up to this far in the future passes, for clock skew.
const FUTURE_SKEW_S: f64 = 1.0;

/// Why this pass holds, when the data is stale or incomplete.
pub(super) fn cause(pass: &Pass) -> Option<&'static str> {
    let (obs, now) = (&pass.obs, pass.now);
    let fresh = obs.sampled_at.is_some_and(|t| {
        now - t <= STALE_INTERVALS * pass.interval + STALE_GRACE_S && t <= now + FUTURE_SKEW_S
    });
    let missing = obs.request_rate.is_none()
        || (!pass.targets.is_empty()
            && pass
                .targets
                .iter()
                .all(|(q, _)| obs.latency.get(*q).is_none()));
    if !fresh {
        Some("metrics are stale or missing a timestamp: holding replicas and pool")
    } else if missing {
        Some("request rate or latency is missing: holding replicas and pool")
    } else {
        None
    }
}

/// The plan of a pass without data: the bounds and the budget are hard limits,
/// restored even then; nothing else moves.
pub(super) fn hold(
    pass: &Pass,
    why: &str,
    plan: &mut Plan,
    recommendations: &mut VecDeque<(f64, u32)>,
) {
    plan.hold = Some(why.to_string());
    plan.objective_state = Some(ObjectiveState::Unknown);
    let (cur, l) = (pass.cur(), &pass.limits);
    let bounded = l.bound(cur);
    if bounded != cur {
        plan.replicas = Some(Change {
            from: cur,
            to: bounded,
            reason: l.bound_reason(cur, bounded).unwrap_or_else(|| {
                format!(
                    "{cur} replicas is outside [{}, {}] or over the connection budget: {bounded}",
                    l.min, l.max
                )
            }),
        });
    }
    plan.pool_size = pool_within_budget(pass, bounded);
    // A pass without data recommends what runs now: once data returns, a
    // scale-down still needs a whole stabilization window of fresh
    // recommendations, so an outage longer than the window cannot end in
    // a burst of removals.
    recommendations.push_back((pass.now, bounded));
}

/// The pool cut to the budget's share at `replicas`, when it is over budget.
fn pool_within_budget(pass: &Pass, replicas: u32) -> Option<Change> {
    let (Some(b), Some(pool)) = (pass.limits.budget, pass.current.pool_size) else {
        return None;
    };
    let limit = pass.limits.pool_limit(replicas);
    (b.over(replicas, pool) && limit < pool).then(|| Change {
        from: pool,
        to: limit,
        reason: format!(
            "{replicas} replicas x pool {pool} exceeds the database budget of {}: pool to {limit}",
            b.total()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testing::{SpecBuilder, healthy};
    use crate::observe::Observation;

    #[test]
    fn fresh_complete_data_does_not_hold() {
        let spec = SpecBuilder::new().p99("100ms").build();
        assert_eq!(
            cause(&Pass::at(&spec, &healthy(100.0), 3, None, 100.0)),
            None
        );
        // Two intervals (15 s) and the grace: 60 s old is still fresh.
        assert_eq!(
            cause(&Pass::at(&spec, &healthy(40.0), 3, None, 100.0)),
            None
        );
    }

    #[test]
    fn stale_future_and_incomplete_data_hold() {
        let spec = SpecBuilder::new().p99("100ms").build();
        let stale = cause(&Pass::at(&spec, &healthy(39.0), 3, None, 100.0));
        assert!(stale.unwrap().contains("stale"));
        let future = cause(&Pass::at(&spec, &healthy(102.0), 3, None, 100.0));
        assert!(
            future.unwrap().contains("stale"),
            "a sample from the future"
        );
        let mut no_latency = healthy(100.0);
        no_latency.latency = Default::default();
        let missing = cause(&Pass::at(&spec, &no_latency, 3, None, 100.0));
        assert!(missing.unwrap().contains("missing"));
        // With no latency objective, latency is not needed.
        let errors_only = SpecBuilder::new().error_rate(0.01).build();
        assert_eq!(
            cause(&Pass::at(&errors_only, &no_latency, 3, None, 100.0)),
            None
        );
    }

    #[test]
    fn a_hold_restores_bounds_and_the_budget_only() {
        let spec = SpecBuilder::new()
            .p99("100ms")
            .replicas(3, 20)
            .pool(2, 50)
            .database(100, 0.8)
            .build();
        let mut plan = Plan::default();
        let mut recs = VecDeque::new();
        let pass = Pass::at(&spec, &Observation::default(), 2, Some(40), 10.0);
        hold(&pass, "no data", &mut plan, &mut recs);
        assert_eq!(plan.hold.as_deref(), Some("no data"));
        assert_eq!(plan.objective_state, Some(ObjectiveState::Unknown));
        let c = plan.replicas.as_ref().expect("raised to minReplicas");
        assert_eq!(c.to, 3);
        assert_eq!(
            c.reason,
            "2 replicas is under minReplicas 3: raised to minReplicas 3"
        );
        // 3 x 40 > 80: the pool goes to 80 / 3.
        assert_eq!(plan.pool_size.as_ref().map(|c| c.to), Some(26));
        assert_eq!(recs, VecDeque::from([(10.0, 3)]));

        let mut plan = Plan::default();
        let pass = Pass::at(&spec, &Observation::default(), 4, Some(20), 10.0);
        hold(&pass, "no data", &mut plan, &mut recs);
        assert!(plan.is_empty(), "in bounds and within budget: {plan:?}");

        // Over the budget at the smallest pool (80 / 2 = 40 replicas at most).
        let wide = SpecBuilder::new()
            .p99("100ms")
            .replicas(3, 60)
            .pool(2, 50)
            .database(100, 0.8)
            .build();
        let mut plan = Plan::default();
        let pass = Pass::at(&wide, &Observation::default(), 45, Some(2), 10.0);
        hold(&pass, "no data", &mut plan, &mut recs);
        let c = plan.replicas.expect("lowered to the budget");
        assert_eq!(c.to, 40);
        assert!(
            c.reason.contains("over the connection budget"),
            "{}",
            c.reason
        );
    }
}
