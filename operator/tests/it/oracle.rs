//! The oracle of `governor simulate`: a lower bound on cost found with the
//! simulator itself, whose schedule replays to zero minutes over target, and
//! which says so where no schedule meets the objectives.

use std::process::Command;

use governor::actuate::Request;
use governor::decide::{Actuation, connection_budget};
use governor::observe::Observation;
use governor::sim::bench::{INTERVAL, meets_objectives, replay, run};
use governor::sim::oracle::{self, error_limit};
use governor::sim::policy::{Action, Policy};
use governor::sim::scenario::Scenario;

/// A fixed replica count from the first evaluation, with the pool at the
/// budget's share and the caches warmed: a policy that meets every objective
/// when the count is high enough.
struct Fixed {
    replicas: u32,
    pool: u32,
}

impl Policy for Fixed {
    fn name(&self) -> &'static str {
        "fixed"
    }
    fn evaluate(&mut self, _: &Observation, current: Actuation, now: f64) -> Action {
        Action {
            request: Request {
                replicas: (current.replicas != self.replicas).then_some(self.replicas),
                pool_size: (current.pool_size != Some(self.pool)).then_some(self.pool),
                warm_up: now <= INTERVAL,
            },
            bottleneck: None,
        }
    }
}

#[test]
fn the_oracle_is_never_dearer_than_a_policy_that_met_every_objective() {
    let mut compared = Vec::new();
    for name in ["diurnal", "flash-crowd", "slow-ramp"] {
        let scenario = Scenario::built_in(name).unwrap();
        let budget = connection_budget(&scenario.spec).unwrap();
        let seed = 1;
        let oracle = run(&scenario, "oracle", seed).unwrap();
        assert_eq!(
            oracle.oracle_feasible,
            Some(true),
            "{name} seed {seed}: {oracle:?}"
        );
        let mut others = Vec::new();
        for policy in ["governor", "hpa-cpu", "hpa-latency", "static"] {
            others.push(run(&scenario, policy, seed).unwrap());
        }
        // The cheapest fixed count that meets every objective.
        for n in 2..=20 {
            let mut fixed = Fixed {
                replicas: n,
                pool: budget / n,
            };
            let f = replay(&scenario, "fixed", &mut fixed, seed);
            if meets_objectives(&scenario, &f) {
                others.push(f);
                break;
            }
        }
        for f in others {
            if !meets_objectives(&scenario, &f) {
                continue;
            }
            compared.push(format!("{name}/{}", f.policy));
            assert!(
                oracle.replica_minutes <= f.replica_minutes,
                "{name} seed {seed}: the oracle ({:.1} replica-min) costs more than {} ({:.1}), which met every objective",
                oracle.replica_minutes,
                f.policy,
                f.replica_minutes
            );
        }
    }
    eprintln!("compared with: {compared:?}");
    assert!(
        compared.len() >= 3,
        "too few policies met every objective: {compared:?}"
    );
}

#[test]
fn the_oracle_schedule_replayed_meets_every_objective_within_its_limits() {
    for (name, seed) in [("audit", 3), ("flash-crowd", 4), ("cold-cache", 4)] {
        let scenario = Scenario::built_in(name).unwrap();
        let plan = oracle::plan(&scenario, seed);
        assert!(plan.feasible(), "{name}: {plan:?}");
        let f = replay(&scenario, "oracle", &mut plan.policy(&scenario), seed);
        assert_eq!(
            (
                f.p50_violation_minutes,
                f.p90_violation_minutes,
                f.p99_violation_minutes
            ),
            (0.0, 0.0, 0.0),
            "{name}: {f:?}"
        );
        assert!(f.error_rate <= error_limit(&scenario), "{name}: {f:?}");
        let (min, max) = (
            scenario.spec.scaling.min_replicas as u32,
            scenario.spec.scaling.max_replicas as u32,
        );
        assert!(
            f.min_replicas_seen >= min && f.max_replicas_seen <= max,
            "{name}: {f:?}"
        );
        let budget = connection_budget(&scenario.spec).unwrap();
        assert!(f.peak_db_connections <= f64::from(budget), "{name}: {f:?}");
        // The plan obeys the startup delay: it is not free to scale.
        assert!(plan.replicas.iter().all(|n| (min..=max).contains(n)));
    }
}

#[test]
fn db_bound_is_reported_infeasible_with_a_best_effort_schedule() {
    let out = Command::new(env!("CARGO_BIN_EXE_governor"))
        .args([
            "simulate",
            "--scenario",
            "db-bound",
            "--policy",
            "static,oracle",
            "--seeds",
            "1",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("oracle: 1 runs"),
        "the oracle's time: {stderr}"
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["policy"], "static");
    assert!(rows[0].get("oracle_feasible").is_none(), "{}", rows[0]);
    assert_eq!(rows[1]["policy"], "oracle");
    assert_eq!(rows[1]["oracle_feasible"], false, "{}", rows[1]);
    // Its best effort is still a schedule: no worse than static's 2 replicas
    // on minutes over target, within the bounds.
    let p99 = |r: &serde_json::Value| r["p99_violation_minutes"].as_f64().unwrap();
    assert!(p99(&rows[1]) <= p99(&rows[0]), "{rows:?}");
    assert!(rows[1]["max_replicas_seen"].as_u64().unwrap() <= 20);
}
