//! Property tests of the safety rules over random and adversarial inputs: NaN,
//! missing and stale data, replicas out of bounds, and load that flips to make
//! the decision flap.

use governor::decide::{Actuation, ControllerState, Plan, connection_budget, decide};
use governor::observe::{Observation, Percentiles};
use governor::sim::scenario::audit_spec;
use governor_crds::{Mode, ServiceLevelObjectiveSpec as Spec};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

fn any_value() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        4 => (0.0f64..2.0).prop_map(Some),
        2 => (0.0f64..2000.0).prop_map(Some),
        1 => Just(None),
        1 => Just(Some(f64::NAN)),
        1 => Just(Some(f64::INFINITY)),
        1 => Just(Some(-1.0)),
    ]
}

#[derive(Debug, Clone)]
struct Step {
    dt: f64,
    rate: Option<f64>,
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
    hit: Option<f64>,
    in_use: Option<f64>,
    pending: Option<f64>,
    staleness: f64,
    timestamp: bool,
    ready_fraction: f64,
}

fn step() -> impl Strategy<Value = Step> {
    (
        (
            1.0f64..120.0,
            any_value(),
            any_value(),
            any_value(),
            any_value(),
        ),
        (any_value(), any_value(), any_value()),
        (
            prop_oneof![4 => Just(0.0), 1 => 0.0f64..3600.0],
            prop::bool::weighted(0.9),
            0.0f64..=1.0,
        ),
    )
        .prop_map(
            |(
                (dt, rate, p50, p90, p99),
                (hit, in_use, pending),
                (staleness, timestamp, ready_fraction),
            )| Step {
                dt,
                rate: rate.map(|r| r * 300.0),
                p50,
                p90,
                p99,
                hit,
                in_use,
                pending,
                staleness,
                timestamp,
                ready_fraction,
            },
        )
}

#[derive(Debug, Clone)]
struct Setup {
    min: i32,
    max: i32,
    pool_min: i32,
    pool_max: i32,
    max_connections: i32,
    ratio: f64,
    reserved: i32,
    up_pods: i32,
    up_percent: i32,
    down_pods: i32,
    down_percent: i32,
    window_s: u64,
    dry_run: bool,
    start_replicas: u32,
    start_pool: u32,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        (1i32..8, 0i32..30, 1i32..6, 0i32..60),
        (1i32..400, 0.3f64..=1.0, 0i32..10),
        (1i32..6, 1i32..200, 1i32..4, 1i32..100, 0u64..900),
        (prop::bool::weighted(0.1), 0u32..60, 1u32..80),
    )
        .prop_map(
            |(
                (min, span, pool_min, pool_span),
                (max_connections, ratio, reserved),
                (up_pods, up_percent, down_pods, down_percent, window_s),
                (dry_run, start_replicas, start_pool),
            )| Setup {
                min,
                max: min + span,
                pool_min,
                pool_max: pool_min + pool_span,
                max_connections,
                ratio,
                reserved,
                up_pods,
                up_percent,
                down_pods,
                down_percent,
                window_s,
                dry_run,
                start_replicas,
                start_pool,
            },
        )
}

fn spec_for(s: &Setup) -> Spec {
    let mut spec = audit_spec();
    spec.scaling.min_replicas = s.min;
    spec.scaling.max_replicas = s.max;
    spec.scaling.scale_up.max_pods = s.up_pods;
    spec.scaling.scale_up.max_percent = s.up_percent;
    spec.scaling.scale_down.max_pods = s.down_pods;
    spec.scaling.scale_down.max_percent = s.down_percent;
    spec.scaling.scale_down.stabilization_window = governor_crds::Duration::from_secs(s.window_s);
    spec.scaling.mode = if s.dry_run {
        Mode::DryRun
    } else {
        Mode::Enforce
    };
    let pool = spec.connection_pool.as_mut().unwrap();
    pool.min_size = s.pool_min;
    pool.max_size = s.pool_max;
    pool.database.max_connections = s.max_connections;
    pool.database.budget_ratio = s.ratio;
    pool.database.reserved_connections = s.reserved;
    spec
}

fn observation(step: &Step, now: f64, replicas: u32, pool: u32) -> Observation {
    Observation {
        sampled_at: step.timestamp.then_some(now - step.staleness),
        request_rate: step.rate,
        latency: Percentiles {
            p50: step.p50,
            p90: step.p90,
            p99: step.p99,
            ..Percentiles::default()
        },
        error_rate: Some(0.0),
        cache_hit_rate: step.hit,
        pool_in_use: step.in_use.map(|u| u.min(1.0) * f64::from(replicas * pool)),
        pool_max: Some(f64::from(replicas * pool)),
        pool_pending: step.pending,
        pool_wait: step.pending.map(|p| p / 100.0),
        ready_replicas: Some((f64::from(replicas) * step.ready_fraction).round() as u32),
        cpu_utilization: step.hit,
        error_budget: None,
    }
}

fn holds(plan: &Plan) -> bool {
    plan.hold.is_some()
}

proptest! {
    // Failures are kept in decide_props.proptest-regressions beside this file.
    // proptest's default would look for a main.rs above it, find this test
    // binary's, and use tests/proptest-regressions/decide_props.txt instead.
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn safety_rules_hold(setup in setup(), steps in prop::collection::vec(step(), 1..40)) {
        let spec = spec_for(&setup);
        // Only specs that pass validation reach decide.
        prop_assume!(spec.validate().is_empty());
        let budget = connection_budget(&spec).unwrap();
        let (min, max) = (setup.min as u32, setup.max as u32);
        let mut state = ControllerState::default();
        let mut replicas = setup.start_replicas;
        let mut pool = setup.start_pool;
        let mut now = 1_000.0;
        let mut applied: Vec<(f64, u32, u32)> = Vec::new(); // (time, from, to)
        for step in &steps {
            now += step.dt;
            let obs = observation(step, now, replicas, pool);
            let current = Actuation { replicas, pool_size: Some(pool) };
            let (plan, next) = decide(&spec, std::mem::take(&mut state), &obs, current, now);
            state = next;
            prop_assert_eq!(plan.dry_run, setup.dry_run);
            let in_bounds = (min..=max).contains(&replicas);
            if let Some(c) = &plan.replicas {
                prop_assert_eq!(c.from, replicas);
                prop_assert!((min..=max).contains(&c.to), "replicas {} outside [{}, {}]", c.to, min, max);
                prop_assert!(!c.reason.is_empty());
                if holds(&plan) && in_bounds {
                    prop_assert!(c.to <= replicas, "scaled up on missing data");
                    prop_assert!(u64::from(replicas) * u64::from(setup.pool_min as u32) > u64::from(budget), "scaled down on missing data");
                }
            }
            if setup.dry_run {
                continue;
            }
            let before = replicas;
            if let Some(c) = &plan.pool_size {
                prop_assert!(c.to >= 1);
                pool = c.to;
            }
            if let Some(c) = &plan.replicas {
                replicas = c.to;
                applied.push((now, before, c.to));
            }
            // The budget holds after every decision once replicas are in bounds.
            if (min..=max).contains(&replicas) {
                prop_assert!(
                    u64::from(replicas) * u64::from(pool) <= u64::from(budget),
                    "{} replicas x pool {} > budget {}", replicas, pool, budget
                );
            }
            // Metric-driven scale-ups respect the rate limit; scale-downs respect
            // the stabilization window.
            if in_bounds && replicas > before {
                let period = 15.0;
                let base = applied.iter().filter(|a| a.0 > now - period).map(|a| a.1).chain([before]).min().unwrap_or(before);
                let limit = base + (setup.up_pods as u32).max((f64::from(base) * f64::from(setup.up_percent) / 100.0).ceil() as u32);
                prop_assert!(replicas <= limit.max(min), "scaled {} -> {} past the rate limit {}", before, replicas, limit);
            }
            if in_bounds && replicas < before && u64::from(before) * (setup.pool_min as u64) <= u64::from(budget) {
                let window = setup.window_s as f64;
                let recent_up = applied.iter().any(|a| a.2 > a.1 && a.0 > now - window && a.0 < now);
                prop_assert!(!recent_up, "scaled down within the stabilization window of a scale-up");
            }
        }
    }

    #[test]
    fn flapping_load_does_not_flap_replicas(high in 200.0f64..600.0, period in 1usize..6) {
        // Latency alternates between breach and comfort every `period` decisions.
        let mut spec = spec_for(&Setup {
            min: 2, max: 20, pool_min: 1, pool_max: 50, max_connections: 100, ratio: 0.8, reserved: 0,
            up_pods: 4, up_percent: 100, down_pods: 1, down_percent: 50, window_s: 300, dry_run: false,
            start_replicas: 4, start_pool: 10,
        });
        spec.cache = None;
        let mut state = ControllerState::default();
        let (mut replicas, mut pool, mut now) = (4u32, 10u32, 0.0);
        let mut directions = Vec::new();
        for i in 0..120 {
            now += 15.0;
            let breach = (i / period) % 2 == 0;
            let p = if breach { 0.25 } else { 0.03 };
            let obs = Observation {
                sampled_at: Some(now),
                request_rate: Some(high),
                latency: Percentiles { p50: Some(p / 3.0), p90: Some(p / 1.5), p99: Some(p), ..Percentiles::default() },
                error_rate: Some(0.0),
                ready_replicas: Some(replicas),
                pool_in_use: Some(1.0),
                pool_max: Some(f64::from(replicas * pool)),
                pool_pending: Some(0.0),
                ..Observation::default()
            };
            let (plan, next) = decide(&spec, std::mem::take(&mut state), &obs, Actuation { replicas, pool_size: Some(pool) }, now);
            state = next;
            if let Some(c) = plan.pool_size { pool = c.to; }
            if let Some(c) = plan.replicas {
                directions.push((now, c.to > c.from));
                replicas = c.to;
            }
        }
        // Every scale-down comes at least a stabilization window after the last scale-up.
        for w in directions.windows(2) {
            if w[0].1 && !w[1].1 {
                prop_assert!(w[1].0 - w[0].0 >= 300.0, "down {}s after up", w[1].0 - w[0].0);
            }
        }
    }
}

#[test]
fn missing_data_holds_and_says_why() {
    let spec = audit_spec();
    let obs = Observation {
        sampled_at: Some(100.0),
        request_rate: None,
        ..Observation::default()
    };
    let (plan, _) = decide(
        &spec,
        ControllerState::default(),
        &obs,
        Actuation {
            replicas: 5,
            pool_size: Some(10),
        },
        100.0,
    );
    assert!(plan.is_empty(), "{plan:?}");
    assert!(plan.hold.unwrap().contains("missing"));
    let stale = Observation {
        sampled_at: Some(0.0),
        request_rate: Some(100.0),
        ..Observation::default()
    };
    let (plan, _) = decide(
        &spec,
        ControllerState::default(),
        &stale,
        Actuation {
            replicas: 5,
            pool_size: Some(10),
        },
        1000.0,
    );
    assert!(plan.hold.unwrap().contains("stale"));
}

/// Little load on 10 ready replicas: far fewer would do.
fn calm(now: f64) -> Observation {
    Observation {
        sampled_at: Some(now),
        request_rate: Some(20.0),
        latency: Percentiles {
            p50: Some(0.01),
            p90: Some(0.02),
            p99: Some(0.03),
            ..Percentiles::default()
        },
        ready_replicas: Some(10),
        ..Observation::default()
    }
}

#[test]
fn an_outage_longer_than_the_stabilization_window_ends_without_a_scale_down_burst() {
    let mut spec = audit_spec();
    spec.scaling.scale_down.stabilization_window = governor_crds::Duration::from_secs(20);
    let current = Actuation {
        replicas: 10,
        pool_size: Some(4),
    };
    let mut state = ControllerState::default();
    let mut now = 0.0;
    // 30 s without data (Prometheus down): held.
    for _ in 0..10 {
        now += 3.0;
        let (plan, next) = decide(&spec, state, &Observation::default(), current, now);
        assert!(plan.hold.is_some() && plan.replicas.is_none(), "{plan:?}");
        state = next;
    }
    // Data returns: no replica goes until a whole window of fresh data says so.
    let back = now;
    let mut first_down = None;
    while now < back + 40.0 {
        now += 3.0;
        let (plan, next) = decide(&spec, state, &calm(now), current, now);
        state = next;
        if plan.replicas.as_ref().is_some_and(|c| c.to < c.from) {
            first_down = Some(now - back);
            break;
        }
    }
    let after = first_down.expect("calm load never scaled down");
    assert!(
        after >= 20.0,
        "scaled down {after} s after the data returned, inside the 20 s window"
    );
}

#[test]
fn a_fresh_state_waits_a_window_before_scaling_down() {
    let mut spec = audit_spec();
    spec.scaling.scale_down.stabilization_window = governor_crds::Duration::from_secs(20);
    let current = Actuation {
        replicas: 10,
        pool_size: Some(4),
    };
    let (plan, _) = decide(
        &spec,
        ControllerState::default(),
        &calm(100.0),
        current,
        100.0,
    );
    assert!(
        plan.replicas.as_ref().is_none_or(|c| c.to >= c.from),
        "a new leader scaled down on its first pass: {plan:?}"
    );
}

#[test]
fn over_budget_pool_is_reduced_even_without_data() {
    let spec = audit_spec(); // budget 80
    let obs = Observation::default();
    let (plan, _) = decide(
        &spec,
        ControllerState::default(),
        &obs,
        Actuation {
            replicas: 2,
            pool_size: Some(50),
        },
        10.0,
    );
    let pool = plan.pool_size.expect("pool reduced");
    assert_eq!(pool.to, 40);
    assert!(pool.reason.contains("budget"), "{}", pool.reason);
}

#[test]
fn breach_by_queueing_scales_up_with_a_reason() {
    let spec = audit_spec();
    let mut state = ControllerState::default();
    let mut now = 0.0;
    // Calm at 100 rps on 2 replicas, then load doubles and P99 breaches.
    for (rate, p99) in [
        (100.0, 0.05),
        (100.0, 0.05),
        (100.0, 0.05),
        (200.0, 0.16),
        (200.0, 0.18),
    ] {
        now += 15.0;
        let obs = Observation {
            sampled_at: Some(now),
            request_rate: Some(rate),
            latency: Percentiles {
                p50: Some(0.02),
                p90: Some(0.04),
                p99: Some(p99),
                ..Percentiles::default()
            },
            ready_replicas: Some(2),
            ..Observation::default()
        };
        let (plan, next) = decide(
            &spec,
            std::mem::take(&mut state),
            &obs,
            Actuation {
                replicas: 2,
                pool_size: Some(40),
            },
            now,
        );
        state = next;
        if rate > 100.0 {
            let c = plan.replicas.expect("a scale-up on breach");
            assert!(c.to > 2);
            assert!(c.reason.contains("p99"), "{}", c.reason);
            return;
        }
        assert!(
            plan.replicas.as_ref().is_none_or(|c| c.to <= 2),
            "scaled up while calm: {plan:?}"
        );
    }
}

#[test]
fn dry_run_decides_but_marks_the_plan() {
    let mut spec = audit_spec();
    spec.scaling.mode = Mode::DryRun;
    let obs = Observation::default();
    let (plan, _) = decide(
        &spec,
        ControllerState::default(),
        &obs,
        Actuation {
            replicas: 30,
            pool_size: Some(50),
        },
        10.0,
    );
    assert!(plan.dry_run);
    assert_eq!(plan.replicas.unwrap().to, 20);
}
