//! The db-bound scenario through the simulator: the database, not the replica
//! count, limits the service. Governor reports it within 2 evaluations of the
//! knee's onset (and not while the load is flat), and does not hold replicas
//! that do not help.

use governor::decide::Actuation;
use governor::sim::bench::{self, INTERVAL};
use governor::sim::engine::SimPort;
use governor::sim::policy::by_name;
use governor::sim::{Scenario, Simulation};

/// The load is flat at 150 rps until 600 s, then rises to 250 rps by 900 s.
const RISE: f64 = 600.0;

/// (evaluation time, observed P99, bottleneck reported) for each evaluation.
fn governor_run(seed: u64) -> Vec<(f64, Option<f64>, bool)> {
    let scenario = Scenario::built_in("db-bound").unwrap();
    let mut policy = by_name("governor", &scenario).unwrap();
    let mut sim = Simulation::new(
        scenario.model.clone(),
        &scenario.initial,
        scenario.peak_rate() * 1.02 + 1.0,
        seed,
    );
    let mut out = Vec::new();
    let mut t = 0.0;
    while t < scenario.duration {
        t = (t + INTERVAL).min(scenario.duration);
        sim.run_until(t, &|t: f64| scenario.rate(t));
        let obs = sim.observe();
        let current = Actuation {
            replicas: sim.replicas(),
            pool_size: Some(sim.pool_size()),
        };
        let action = policy.evaluate(&obs, current, t);
        out.push((t, obs.latency.p99, action.bottleneck.is_some()));
        governor::actuate::apply_now(&mut SimPort { sim: &mut sim }, action.request).unwrap();
    }
    out
}

#[test]
fn the_database_limit_is_reported_within_two_evaluations_of_the_knee() {
    for seed in [1, 2, 3] {
        let run = governor_run(seed);
        // The tail before the rise, once the first minute has filled the window.
        let flat: Vec<f64> = run
            .iter()
            .filter(|(t, _, _)| *t >= 300.0 && *t < RISE)
            .filter_map(|(_, p99, _)| *p99)
            .collect();
        let steady = flat.iter().sum::<f64>() / flat.len() as f64;
        // The knee's onset: the first evaluation in the rise with the tail
        // clearly over its flat level.
        let onset = run
            .iter()
            .find(|(t, p99, _)| *t >= RISE && p99.is_some_and(|p| p > steady * 1.2 + 0.002))
            .map(|r| r.0)
            .expect("the database knee shows in the tail");
        let reported = run
            .iter()
            .find(|(t, _, b)| *t >= RISE && *b)
            .map(|r| r.0)
            .expect("the bottleneck is reported");
        println!(
            "seed {seed}: flat p99 {:.0} ms; onset at {onset} s, reported at {reported} s",
            steady * 1000.0
        );
        assert!(
            reported <= onset + 2.0 * INTERVAL,
            "seed {seed}: onset at {onset} s, reported only at {reported} s"
        );
        assert!(
            run.iter().all(|(t, _, b)| *t >= RISE || !b),
            "seed {seed}: a bottleneck reported while the load was flat"
        );
    }
}

#[test]
fn replicas_that_do_not_help_are_released() {
    let scenario = Scenario::built_in("db-bound").unwrap();
    let seeds = [1, 2, 3];
    let cost = |policy: &str| {
        let runs: Vec<_> = seeds
            .iter()
            .map(|s| bench::run(&scenario, policy, *s).unwrap())
            .collect();
        bench::average(&runs)
    };
    let (governor, hpa) = (cost("governor"), cost("hpa-cpu"));
    let ratio = governor.replica_minutes / hpa.replica_minutes;
    println!(
        "db-bound: governor {:.1} replica-minutes, hpa-cpu {:.1}: {ratio:.2}x; p99 over target {:.1} vs {:.1} minutes; errors {:.2} % vs {:.2} %",
        governor.replica_minutes,
        hpa.replica_minutes,
        governor.p99_violation_minutes,
        hpa.p99_violation_minutes,
        governor.error_rate * 100.0,
        hpa.error_rate * 100.0
    );
    // The scenario starts at 4 replicas; the 5-minute stabilization window
    // holds them before any scale-down, which alone costs about 0.1x.
    assert!(ratio <= 1.15, "{ratio:.2}x hpa-cpu's cost");
    assert!(governor.p99_violation_minutes <= hpa.p99_violation_minutes);
    assert!(governor.error_rate <= hpa.error_rate + 1e-4);
}
