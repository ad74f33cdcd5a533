//! The hard limits of one SLO: replica bounds, pool bounds and the connection
//! budget. Every step applies them through here, with or without data.

use governor_crds::ServiceLevelObjectiveSpec as Spec;

use super::budget::ConnectionBudget;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// minReplicas, at least 1.
    pub min: u32,
    /// maxReplicas, at least `min`.
    pub max: u32,
    /// Pool bounds per replica (1..=u32::MAX without a managed pool).
    pub pool_min: u32,
    pub pool_max: u32,
    pub budget: Option<ConnectionBudget>,
}

impl Limits {
    pub fn of(spec: &Spec) -> Self {
        let min = spec.scaling.min_replicas.max(1) as u32;
        let pool = spec.connection_pool.as_ref();
        let pool_min = pool.map_or(1, |p| p.min_size.max(1) as u32);
        Self {
            min,
            max: (spec.scaling.max_replicas.max(1) as u32).max(min),
            pool_min,
            pool_max: pool.map_or(u32::MAX, |p| (p.max_size.max(1) as u32).max(pool_min)),
            budget: ConnectionBudget::of(spec),
        }
    }

    /// The most replicas the budget allows at the smallest pool; never under
    /// `min`, which validation keeps within the budget.
    fn replica_cap(&self) -> u32 {
        self.budget
            .map_or(u32::MAX, |b| b.replica_cap(self.pool_min))
            .max(self.min)
    }

    /// `n` replicas brought within [min, max] and the budget.
    pub fn bound(&self, n: u32) -> u32 {
        n.clamp(self.min, self.max).min(self.replica_cap())
    }

    /// The largest pool each of `replicas` may have: the budget's share, within
    /// the pool bounds' maximum.
    pub fn pool_limit(&self, replicas: u32) -> u32 {
        self.budget
            .map_or(self.pool_max, |b| b.pool_limit(replicas))
            .min(self.pool_max)
    }

    /// What moving from `cur` to `to` does to a count outside [min, max], when
    /// the bound alone explains the change.
    pub fn bound_reason(&self, cur: u32, to: u32) -> Option<String> {
        if cur < self.min && to == self.min {
            Some(format!(
                "{cur} replicas is under minReplicas {}: raised to minReplicas {}",
                self.min, self.min
            ))
        } else if cur > self.max && to == self.max {
            Some(format!(
                "{cur} replicas is over maxReplicas {}: lowered to maxReplicas {}",
                self.max, self.max
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testing::SpecBuilder;

    #[test]
    fn bound_applies_replica_bounds_then_the_budget() {
        // Budget 80 at pool min 10: at most 8 replicas, although maxReplicas is 20.
        let l = Limits::of(
            &SpecBuilder::new()
                .replicas(3, 20)
                .pool(10, 50)
                .database(100, 0.8)
                .build(),
        );
        assert_eq!((l.min, l.max, l.pool_min, l.pool_max), (3, 20, 10, 50));
        assert_eq!(l.bound(1), 3);
        assert_eq!(l.bound(5), 5);
        assert_eq!(l.bound(12), 8);
        assert_eq!(l.pool_limit(3), 26);
        assert_eq!(l.pool_limit(1), 50, "pool max wins over the budget share");
    }

    #[test]
    fn without_a_pool_only_replica_bounds_apply() {
        let l = Limits::of(&SpecBuilder::new().replicas(2, 6).build());
        assert_eq!(l.budget, None);
        assert_eq!(l.bound(100), 6);
        assert_eq!(l.pool_limit(4), u32::MAX);
    }

    #[test]
    fn a_bound_reason_only_when_the_count_lands_on_the_bound() {
        let l = Limits::of(&SpecBuilder::new().replicas(3, 20).build());
        assert_eq!(
            l.bound_reason(2, 3).as_deref(),
            Some("2 replicas is under minReplicas 3: raised to minReplicas 3")
        );
        assert_eq!(
            l.bound_reason(25, 20).as_deref(),
            Some("25 replicas is over maxReplicas 20: lowered to maxReplicas 20")
        );
        assert_eq!(l.bound_reason(2, 5), None, "more than the bound asks");
        assert_eq!(l.bound_reason(25, 12), None, "fewer than the bound asks");
        assert_eq!(l.bound_reason(4, 3), None, "in bounds");
    }
}
