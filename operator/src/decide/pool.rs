//! Pool: each replica's connection pool, sized from observed demand within the
//! budget's share at the new replica count.

use super::{Change, Pass};

/// A mean wait for a connection over this (seconds) means the pool is short.
const NOTICEABLE_WAIT_S: f64 = 0.005;

/// The pool change of this pass, when Governor manages the pool. `to`: the
/// replicas planned; `ready`: the replicas serving now.
pub(super) fn resize(pass: &Pass, to: u32, ready: u32) -> Option<Change> {
    pass.spec.connection_pool.as_ref()?;
    let pool = pass.current.pool_size?;
    let (cur, l, obs) = (pass.cur(), &pass.limits, &pass.obs);
    let replicas_after = to.max(cur); // both counts coexist while pods roll
    let limit = l.pool_limit(replicas_after);
    // Each replica gets its share of the budget: a pool larger than demand costs
    // nothing but budget, a smaller one queues requests for connections.
    let waiting =
        obs.pool_pending.unwrap_or(0.0) >= 1.0 || obs.pool_wait.unwrap_or(0.0) > NOTICEABLE_WAIT_S;
    let mut desired = if waiting || pool > limit || to != cur {
        limit
    } else {
        pool.max(l.pool_min)
    };
    desired = desired.clamp(l.pool_min, l.pool_max).min(limit.max(1));
    let over_budget = l.budget.filter(|b| b.over(replicas_after, pool));
    // Hysteresis: a one-connection move is not worth a rollout unless forced.
    if over_budget.is_none() && desired.abs_diff(pool) <= 1 && desired >= l.pool_min {
        desired = pool;
    }
    if desired == pool {
        return None;
    }
    let reason = match over_budget {
        Some(b) => format!(
            "{replicas_after} replicas x pool {pool} would exceed the database budget of {}: pool to {desired}",
            b.total()
        ),
        None => format!(
            "observed {:.0} connections in use and {:.0} waiting across {ready} replicas: pool {pool} -> {desired}",
            obs.pool_in_use.unwrap_or(0.0),
            obs.pool_pending.unwrap_or(0.0)
        ),
    };
    Some(Change {
        from: pool,
        to: desired,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testing::{SpecBuilder, healthy};
    use crate::observe::Observation;

    fn resize_at(obs: &Observation, cur: u32, pool: u32, to: u32) -> Option<Change> {
        // Budget 80, pool 2..=30.
        let spec = SpecBuilder::new()
            .p99("100ms")
            .replicas(2, 20)
            .pool(2, 30)
            .database(100, 0.8)
            .build();
        resize(&Pass::at(&spec, obs, cur, Some(pool), 0.0), to, cur)
    }

    #[test]
    fn a_scale_up_shrinks_the_pool_to_the_new_share() {
        let c = resize_at(&healthy(0.0), 4, 20, 8).expect("8 x 20 > 80");
        assert_eq!((c.from, c.to), (20, 10));
        assert!(
            c.reason.contains("8 replicas x pool 20 would exceed"),
            "{}",
            c.reason
        );
    }

    #[test]
    fn waiting_grows_the_pool_to_its_share_within_max_size() {
        let mut obs = healthy(0.0);
        obs.pool_pending = Some(3.0);
        let c = resize_at(&obs, 4, 10, 4).expect("requests wait for connections");
        assert_eq!((c.from, c.to), (10, 20));
        let c = resize_at(&obs, 2, 10, 2).expect("40 each, but at most 30");
        assert_eq!(c.to, 30);
    }

    #[test]
    fn a_one_connection_move_is_not_worth_a_rollout() {
        let mut obs = healthy(0.0);
        obs.pool_pending = Some(3.0);
        assert_eq!(resize_at(&obs, 4, 19, 4), None, "20 is one away from 19");
        assert_eq!(
            resize_at(&healthy(0.0), 4, 12, 4),
            None,
            "no demand, no change"
        );
    }

    #[test]
    fn no_pool_change_without_a_managed_pool() {
        let spec = SpecBuilder::new().p99("100ms").build();
        let pass = Pass::at(&spec, &healthy(0.0), 4, Some(10), 0.0);
        assert_eq!(resize(&pass, 8, 4), None);
    }
}
