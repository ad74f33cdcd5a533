//! Bottleneck: the database connection budget, not the replica count, limits
//! the service, so Governor does not scale into it and says why.

use super::{Pass, ms, pressure::Pressure};

/// A pool this full is saturated: the last tenth goes within one burst.
const POOL_SATURATION: f64 = 0.9;
/// A mean connection wait over this share of the latency target explains a
/// real part of the breach, not noise.
const WAIT_SHARE_OF_TARGET: f64 = 0.1;
/// The latency target assumed without a latency objective (seconds).
const DEFAULT_TARGET_S: f64 = 0.1;

/// The bottleneck in words, when the pool is saturated, one more replica would
/// exceed the budget, an objective is breached and the connection wait shows.
pub(super) fn find(pass: &Pass, pressure: &Pressure) -> Option<String> {
    let obs = &pass.obs;
    let pending = obs.pool_pending.unwrap_or(0.0) >= 1.0;
    let saturated = match (obs.pool_in_use, obs.pool_max) {
        (Some(used), Some(size)) if size > 0.0 => used >= POOL_SATURATION * size || pending,
        _ => false,
    };
    let budget = pass.limits.budget?;
    let at_budget = pass
        .current
        .pool_size
        .is_some_and(|pool| budget.at_budget(pass.cur(), pool));
    let waiting = obs.pool_wait.unwrap_or(0.0);
    let target = pass
        .targets
        .first()
        .map_or(DEFAULT_TARGET_S, |t| t.1.as_secs_f64());
    let explains = waiting > WAIT_SHARE_OF_TARGET * target || pending;
    (saturated && at_budget && pressure.breached() && explains).then(|| {
        format!(
            "database connection budget exhausted: {}, budget {} — more replicas would not help",
            pools_in_use(obs, waiting),
            budget.total()
        )
    })
}

/// The pools' state in words: connections in use of the pools' size, queries
/// waiting and their mean wait.
pub(super) fn pools_in_use(obs: &crate::observe::Observation, wait: f64) -> String {
    format!(
        "{:.0}/{:.0} pooled connections in use, {:.0} waiting (mean wait {})",
        obs.pool_in_use.unwrap_or(0.0),
        obs.pool_max.unwrap_or(0.0),
        obs.pool_pending.unwrap_or(0.0),
        ms(wait)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testing::{SpecBuilder, healthy};
    use crate::observe::Observation;

    fn spec() -> governor_crds::ServiceLevelObjectiveSpec {
        // Budget 80.
        SpecBuilder::new()
            .p99("100ms")
            .replicas(2, 20)
            .pool(2, 50)
            .database(100, 0.8)
            .build()
    }

    /// P99 at 150 ms with `replicas` x `pool` connections all in use and a 20 ms wait.
    fn starved(replicas: u32, pool: u32) -> Observation {
        let mut obs = healthy(0.0);
        obs.latency.p99 = Some(0.15);
        obs.pool_in_use = Some(f64::from(replicas * pool));
        obs.pool_max = Some(f64::from(replicas * pool));
        obs.pool_wait = Some(0.02);
        obs
    }

    fn bottleneck(obs: &Observation, replicas: u32, pool: u32) -> Option<String> {
        let spec = spec();
        let pass = Pass::at(&spec, obs, replicas, Some(pool), 0.0);
        find(&pass, &Pressure::of(&pass))
    }

    #[test]
    fn a_saturated_pool_at_the_budget_is_the_bottleneck() {
        let why = bottleneck(&starved(4, 20), 4, 20).expect("4 x 20 = 80 is the budget");
        assert!(why.contains("budget 80"), "{why}");
        assert!(why.contains("80/80"), "{why}");
    }

    #[test]
    fn no_bottleneck_with_room_in_the_budget_or_without_a_breach() {
        assert_eq!(
            bottleneck(&starved(3, 20), 3, 20),
            None,
            "a 4th replica fits"
        );
        let mut calm = starved(4, 20);
        calm.latency.p99 = Some(0.05);
        assert_eq!(bottleneck(&calm, 4, 20), None, "not breached");
        let mut idle = starved(4, 20);
        idle.pool_in_use = Some(40.0);
        assert_eq!(bottleneck(&idle, 4, 20), None, "pool half used");
        let mut quick = starved(4, 20);
        quick.pool_wait = Some(0.005);
        assert_eq!(bottleneck(&quick, 4, 20), None, "a 5 ms wait is noise");
    }
}
