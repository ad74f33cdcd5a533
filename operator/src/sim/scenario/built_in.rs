//! The built-in scenarios, one function each, on the audit's service.

use super::*;

impl Scenario {
    /// A built-in scenario by name.
    pub fn built_in(name: &str) -> Option<Self> {
        Some(match name {
            "audit" => audit(),
            "diurnal" => diurnal(),
            "flash-crowd" => flash_crowd(),
            "slow-ramp" => slow_ramp(),
            "db-bound" => db_bound(),
            "cold-cache" => cold_cache(),
            "sawtooth" => sawtooth(),
            "step-down" => step_down(),
            "noisy" => noisy(),
            "slow-dependency" => slow_dependency(),
            "weekly" => weekly(),
            "bad-pod" => bad_pod(),
            "month" => Self::month(MONTH_DAYS, MONTH_DAY_SECONDS),
            _ => return None,
        })
    }
}

/// A scenario on the audit's service and SLO, from 2 replicas with a warm cache.
fn base(name: &str, duration: f64, load: Vec<(f64, f64)>) -> Scenario {
    Scenario {
        name: name.to_string(),
        duration,
        load,
        model: ServiceModel::audit(),
        initial: InitialState {
            replicas: 2,
            pool_size: 40,
            served: 30_000.0,
        },
        spec: audit_spec(),
    }
}

/// The audit: 142 rps on 2 instances, cache at 42 %, pool 50 per instance
/// against 100 database connections; load ramps to 500 rps.
fn audit() -> Scenario {
    let mut s = base(
        "audit",
        3600.0,
        vec![
            (0.0, 142.0),
            (300.0, 142.0),
            (1500.0, 500.0),
            (3000.0, 500.0),
            (3600.0, 300.0),
        ],
    );
    s.initial = InitialState {
        replicas: 2,
        pool_size: 50,
        served: 10_900.0,
    };
    s
}

/// The diurnal scenario.
fn diurnal() -> Scenario {
    let mut points = Vec::new();
    for i in 0..=48 {
        let t = f64::from(i) * 75.0;
        let phase = (t / 3600.0) * std::f64::consts::TAU;
        points.push((t, 260.0 - 200.0 * phase.cos()));
    }
    base("diurnal", 3600.0, points)
}

/// The flash-crowd scenario.
fn flash_crowd() -> Scenario {
    base(
        "flash-crowd",
        2400.0,
        vec![
            (0.0, 100.0),
            (600.0, 100.0),
            (660.0, 500.0),
            (1500.0, 500.0),
            (1560.0, 100.0),
            (2400.0, 100.0),
        ],
    )
}

/// The slow-ramp scenario.
fn slow_ramp() -> Scenario {
    base(
        "slow-ramp",
        3600.0,
        vec![(0.0, 50.0), (3000.0, 450.0), (3600.0, 450.0)],
    )
}

/// The database is the bottleneck: few cores, slow queries, cache that
/// cannot warm. More replicas only add connections.
fn db_bound() -> Scenario {
    let mut s = base(
        "db-bound",
        2400.0,
        vec![
            (0.0, 150.0),
            (600.0, 150.0),
            (900.0, 250.0),
            (2400.0, 250.0),
        ],
    );
    s.model.workers = 32;
    s.model.db_cores = 8.0;
    s.model.db_time = 0.045;
    s.model.cache_max = 0.3;
    s.initial = InitialState {
        replicas: 4,
        pool_size: 20,
        served: 100_000.0,
    };
    s.spec.cache = None;
    s
}

/// New replicas start cold, and a miss costs 4x.
fn cold_cache() -> Scenario {
    let mut s = base(
        "cold-cache",
        2400.0,
        vec![
            (0.0, 120.0),
            (600.0, 120.0),
            (720.0, 400.0),
            (2400.0, 400.0),
        ],
    );
    s.model.miss_penalty = 4.0;
    s.model.cache_max = 0.995;
    s.initial.served = 100_000.0;
    s
}

/// 20 % and 100 % of the audit's peak, switching every 5 minutes.
fn sawtooth() -> Scenario {
    base(
        "sawtooth",
        2400.0,
        super::sawtooth(0.2 * AUDIT_PEAK, AUDIT_PEAK, 300.0, 2400.0),
    )
}

/// 400 rps on a service sized for it, then half of it for good.
fn step_down() -> Scenario {
    let mut s = base(
        "step-down",
        2400.0,
        vec![
            (0.0, 400.0),
            (900.0, 400.0),
            (900.0 + SWITCH, 200.0),
            (2400.0, 200.0),
        ],
    );
    s.initial = InitialState {
        replicas: 5,
        pool_size: 16,
        served: 100_000.0,
    };
    s
}

/// 200 rps times a Pareto multiplier (mean 1, tail index 2.5, at most
/// 3x) drawn every 30 s from a fixed seed: every policy and every run
/// sees the same bursts.
fn noisy() -> Scenario {
    base("noisy", 2400.0, super::noisy(200.0, 30.0, 2400.0, 14))
}

/// Steady 250 rps; the database is 3x slower from minute 10 to minute
/// 20. More replicas cannot help; their cold caches only add queries.
fn slow_dependency() -> Scenario {
    let mut s = base(
        "slow-dependency",
        2400.0,
        vec![(0.0, 250.0), (2400.0, 250.0)],
    );
    s.model.db_slowdown = vec![(600.0, 3.0), (1200.0, 1.0)];
    s.initial = InitialState {
        replicas: 3,
        pool_size: 26,
        served: 100_000.0,
    };
    s
}

/// Seven days of 10 minutes each: five weekdays of 60 to 460 rps, then
/// a weekend of 40 to 200 rps.
fn weekly() -> Scenario {
    base("weekly", 7.0 * DAY, super::weekly())
}

/// The first replica is 5x slower (a bad node): it gets its share of
/// requests round-robin like the others.
fn bad_pod() -> Scenario {
    let mut s = base(
        "bad-pod",
        2400.0,
        vec![
            (0.0, 150.0),
            (600.0, 150.0),
            (1200.0, 300.0),
            (2400.0, 300.0),
        ],
    );
    s.model.replica_slowdown = vec![5.0];
    s.initial = InitialState {
        replicas: 3,
        pool_size: 26,
        served: 100_000.0,
    };
    s
}
