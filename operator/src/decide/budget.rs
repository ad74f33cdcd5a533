//! The database connection budget: replicas x pool size never exceeds it. One
//! place for the arithmetic, in u64 so no product of two u32 can overflow.

use governor_crds::ServiceLevelObjectiveSpec as Spec;

/// Connections Governor may hand out across all replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionBudget(u32);

impl ConnectionBudget {
    pub fn new(total: u32) -> Self {
        Self(total)
    }

    /// The spec's budget, when Governor manages a pool (clamped into u32).
    pub fn of(spec: &Spec) -> Option<Self> {
        spec.connection_pool
            .as_ref()
            .map(|p| Self(p.database.budget().clamp(0, i64::from(u32::MAX)) as u32))
    }

    pub fn total(self) -> u32 {
        self.0
    }

    /// `replicas` x `pool` connections stay within the budget.
    pub fn fits(self, replicas: u32, pool: u32) -> bool {
        u64::from(replicas) * u64::from(pool) <= u64::from(self.0)
    }

    /// `replicas` x `pool` connections exceed the budget.
    pub fn over(self, replicas: u32, pool: u32) -> bool {
        !self.fits(replicas, pool)
    }

    /// One more replica at `pool` would exceed the budget.
    pub fn at_budget(self, replicas: u32, pool: u32) -> bool {
        // (replicas + 1) x pool, without replicas + 1 overflowing u32.
        u64::from(replicas) * u64::from(pool) + u64::from(pool) > u64::from(self.0)
    }

    /// The most replicas at a pool of `pool_min`; at least one, since a service
    /// always runs.
    pub fn replica_cap(self, pool_min: u32) -> u32 {
        (self.0 / pool_min.max(1)).max(1)
    }

    /// The largest pool each of `replicas` may have; at least one connection.
    pub fn pool_limit(self, replicas: u32) -> u32 {
        (self.0 / replicas.max(1)).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testing::SpecBuilder;

    #[test]
    fn budget_from_the_spec() {
        let spec = SpecBuilder::new().pool(1, 50).database(100, 0.8).build();
        assert_eq!(ConnectionBudget::of(&spec), Some(ConnectionBudget::new(80)));
        let reserved = SpecBuilder::new()
            .pool(1, 50)
            .database(100, 0.8)
            .reserved(30)
            .build();
        assert_eq!(ConnectionBudget::of(&reserved).unwrap().total(), 50);
        assert_eq!(ConnectionBudget::of(&SpecBuilder::new().build()), None);
    }

    #[test]
    fn fits_is_replicas_times_pool_within_the_total() {
        let b = ConnectionBudget::new(80);
        assert!(b.fits(8, 10));
        assert!(b.over(9, 10));
        assert!(b.fits(0, u32::MAX), "no replicas use no connections");
        // The product of two u32 does not wrap.
        assert!(ConnectionBudget::new(u32::MAX).over(u32::MAX, u32::MAX));
        assert!(ConnectionBudget::new(u32::MAX).fits(1, u32::MAX));
    }

    #[test]
    fn at_budget_when_one_more_replica_would_exceed() {
        let b = ConnectionBudget::new(80);
        assert!(!b.at_budget(7, 10), "8 x 10 = 80 still fits");
        assert!(b.at_budget(8, 10));
        assert!(b.at_budget(u32::MAX, u32::MAX), "no overflow at the top");
        assert!(!ConnectionBudget::new(u32::MAX).at_budget(0, u32::MAX));
    }

    #[test]
    fn caps_and_limits_round_down_but_never_to_zero() {
        let b = ConnectionBudget::new(80);
        assert_eq!(b.replica_cap(3), 26);
        assert_eq!(b.replica_cap(0), 80, "a zero pool counts as one");
        assert_eq!(b.pool_limit(3), 26);
        assert_eq!(b.pool_limit(0), 80);
        assert_eq!(b.pool_limit(200), 1, "every replica keeps one connection");
        assert_eq!(ConnectionBudget::new(0).replica_cap(5), 1);
    }
}
