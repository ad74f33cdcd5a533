//! Warm-up: warm a cold cache while latency nears its target, and the new
//! replicas' caches with a scale-up.

use super::{Pass, pressure::Pressure, secs};

/// A cold cache is warmed once the worst objective passes this share of its
/// target: early enough to act before it is at risk.
const WARM_UP_PRESSURE: f64 = 0.8;

/// Why to warm the cache now, if at all; `last` is when the last warm-up was
/// started, and becomes now when this one is applied (not in DryRun).
pub(super) fn plan(
    pass: &Pass,
    pressure: &Pressure,
    scaling_up: bool,
    last: &mut Option<f64>,
) -> Option<String> {
    let cache = pass.spec.cache.as_ref().filter(|c| c.warm_up.is_some())?;
    let cooled = last.is_none_or(|t| pass.now - t >= secs(cache.cooldown));
    let hit_rate = pass.obs.cache_hit_rate;
    let cold = hit_rate.is_some_and(|h| h < cache.hit_rate_target);
    // The cooldown paces warm-ups for a cold cache; a warm-up that comes with a
    // scale-up is part of it (new replicas start cold).
    let warm = if scaling_up && cache.warm_before_scale_up {
        Some("warming the new replicas' caches with the scale-up".to_string())
    } else if cooled && cold && pressure.value > WARM_UP_PRESSURE {
        Some(format!(
            "cache hit rate {:.0}% under target {:.0}% while {}",
            hit_rate.unwrap_or(0.0) * 100.0,
            cache.hit_rate_target * 100.0,
            pressure.describe_worst()
        ))
    } else {
        None
    };
    if warm.is_some() && !pass.dry_run {
        *last = Some(pass.now);
    }
    warm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testing::{SpecBuilder, healthy};

    /// P99 at `p99` of a 100 ms target, the cache at 50 % hits (target 80 %).
    fn warm_up(
        spec: &governor_crds::ServiceLevelObjectiveSpec,
        p99: f64,
        scaling_up: bool,
        last: &mut Option<f64>,
    ) -> Option<String> {
        let mut obs = healthy(1000.0);
        obs.latency.p99 = Some(p99);
        obs.cache_hit_rate = Some(0.5);
        let pass = Pass::at(spec, &obs, 3, None, 1000.0);
        plan(&pass, &Pressure::of(&pass), scaling_up, last)
    }

    #[test]
    fn a_cold_cache_is_warmed_near_the_target_once_per_cooldown() {
        let spec = SpecBuilder::new().p99("100ms").cache(0.8, "10m").build();
        assert_eq!(
            warm_up(&spec, 0.05, false, &mut None),
            None,
            "latency far from target"
        );
        let mut last = None;
        let why = warm_up(&spec, 0.085, false, &mut last).expect("cold and near target");
        assert!(why.contains("cache hit rate 50% under target 80%"), "{why}");
        assert_eq!(last, Some(1000.0));
        let mut recent = Some(700.0);
        assert_eq!(
            warm_up(&spec, 0.085, false, &mut recent),
            None,
            "within the cooldown"
        );
        assert_eq!(recent, Some(700.0));
    }

    #[test]
    fn a_scale_up_warms_new_replicas_when_asked() {
        let eager = SpecBuilder::new()
            .p99("100ms")
            .cache(0.8, "10m")
            .warm_before_scale_up()
            .build();
        let mut recent = Some(900.0);
        let why = warm_up(&eager, 0.05, true, &mut recent).expect("with the scale-up");
        assert!(why.contains("scale-up"), "{why}");
        let lazy = SpecBuilder::new().p99("100ms").cache(0.8, "10m").build();
        assert_eq!(warm_up(&lazy, 0.05, true, &mut None), None);
    }

    #[test]
    fn dry_run_does_not_start_the_cooldown() {
        let spec = SpecBuilder::new()
            .p99("100ms")
            .cache(0.8, "10m")
            .dry_run()
            .build();
        let mut last = None;
        assert!(warm_up(&spec, 0.085, false, &mut last).is_some());
        assert_eq!(last, None);
    }
}
