//! The oracle: offline, knowing the whole load trace and the seed, it searches
//! with the simulator itself for the cheapest replica schedule that keeps every
//! objective met, then runs it like any other policy.
//!
//! What it may do: know the future (the load and every random draw of the
//! seed), so it requests replicas `podStartupTime` ahead of the minute that
//! needs them; change replicas and pool size at any evaluation without
//! Governor's rate limits, stabilization window or warm-up cooldown; warm the
//! caches whenever the scenario's SLO lets Governor warm them.
//! What it may not do: make a replica serve before its startup delay, start a
//! replica with a warmer cache than the scenario gives every policy, leave
//! [minReplicas, maxReplicas], or give replicas x pool more connections than
//! the budget. Every action goes through the same actuation port and the same
//! simulation as every other policy.

use std::collections::BTreeMap;

use crate::actuate::Request;
use crate::decide::{Actuation, Limits};
use crate::observe::Observation;

use super::bench::{INTERVAL, Run, evaluation_times};
use super::engine::MinuteStats;
use super::policy::{Action, Policy};
use super::scenario::Scenario;

/// The oracle's schedule for one (scenario, seed).
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Replicas serving through each minute of the run.
    pub replicas: Vec<u32>,
    /// Minutes no replica count in [min, max] kept within every objective; for
    /// these the plan holds its best effort (fewest objectives missed, then
    /// fewest replicas).
    pub infeasible_minutes: Vec<usize>,
    /// Trials run while searching (each simulates one minute and the evaluations
    /// before it that lead into it).
    pub trials: usize,
}

impl Plan {
    pub fn feasible(&self) -> bool {
        self.infeasible_minutes.is_empty()
    }

    /// The policy that carries the plan out.
    pub fn policy(&self, scenario: &Scenario) -> Oracle {
        Oracle::new(self.replicas.clone(), scenario)
    }
}

/// Carries out a per-minute schedule: a minute's replicas are requested
/// `lead` seconds before it starts (podStartupTime rounded up to an
/// evaluation), and released when it starts.
pub struct Oracle {
    schedule: Vec<u32>,
    limits: Limits,
    lead: f64,
    /// Whether Governor could warm the caches in this scenario (`cache.warmUp`).
    warm_up: bool,
    /// Whether Governor manages the pool in this scenario (`connectionPool`).
    pool: bool,
}

impl Oracle {
    pub fn new(schedule: Vec<u32>, s: &Scenario) -> Self {
        Self {
            schedule,
            limits: Limits::of(&s.spec),
            lead: (s.model.startup.max(0.0) / INTERVAL).ceil() * INTERVAL,
            warm_up: s.spec.cache.as_ref().is_some_and(|c| c.warm_up.is_some()),
            pool: s.spec.connection_pool.is_some(),
        }
    }

    fn minute(&self, t: f64) -> usize {
        ((t.max(0.0) / 60.0) as usize).min(self.schedule.len().saturating_sub(1))
    }

    /// Replicas to have at `now`: the most any minute from now until a replica
    /// asked for now would be ready needs.
    fn wanted(&self, now: f64) -> Option<u32> {
        let (from, to) = (self.minute(now), self.minute(now + self.lead));
        self.schedule
            .get(from..=to)?
            .iter()
            .max()
            .map(|&n| self.limits.bound(n))
    }
}

impl Policy for Oracle {
    fn name(&self) -> &'static str {
        "oracle"
    }

    fn evaluate(&mut self, _: &Observation, current: Actuation, now: f64) -> Action {
        let Some(n) = self.wanted(now) else {
            return Action::default();
        };
        let pool = self
            .pool
            .then(|| self.limits.pool_limit(n).max(self.limits.pool_min))
            .filter(|p| Some(*p) != current.pool_size);
        // In the simulator a cache is only ever colder than warm at the start
        // and in new replicas, so these are the warm-ups that matter.
        let warm_up = self.warm_up && (n > current.replicas || now <= INTERVAL);
        Action {
            request: Request {
                replicas: (n != current.replicas).then_some(n),
                pool_size: pool,
                warm_up,
            },
            bottleneck: None,
        }
    }
}

/// The highest share of failed requests the SLO accepts: `errorRate` or
/// `1 - availability`, whichever is stricter; none without either.
pub fn error_limit(s: &Scenario) -> f64 {
    let o = &s.spec.objectives;
    let from_availability = o.availability.map(|a| 1.0 - a);
    match (o.error_rate, from_availability) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(0.0),
    }
}

/// Objectives one simulated minute missed, as `governor simulate` counts them:
/// each latency quantile over its target, and errors over the error limit.
fn missed(m: &MinuteStats, s: &Scenario, error_limit: f64) -> u32 {
    if m.requests == 0 {
        return 0;
    }
    let lat = &s.spec.objectives.latency;
    let over = |target: Option<governor_crds::Latency>, v: f64| {
        u32::from(target.is_some_and(|t| v > t.as_secs_f64()))
    };
    over(lat.p50, m.p50)
        + over(lat.p90, m.p90)
        + over(lat.p99, m.p99)
        + u32::from(m.errors as f64 > error_limit * m.requests as f64)
}

/// What trying one replica count for one minute showed.
struct Trial<'a> {
    /// Objectives the minute missed, plus those it newly broke in the minutes
    /// before it that this trial re-ran.
    missed: u32,
    /// The run at the first evaluation the next minute's choice can change.
    next: (Run<'a>, usize),
}

/// A search position: the run just before evaluation `step`, the first whose
/// action depends on the minute being decided.
struct Search<'s> {
    scenario: &'s Scenario,
    times: Vec<f64>,
    oracle: Oracle,
    error_limit: f64,
    /// Minutes that met every objective when they were decided.
    met: Vec<bool>,
    trials: usize,
}

impl<'s> Search<'s> {
    /// First evaluation whose action can depend on minute `m`'s replicas.
    fn first_step(&self, m: usize) -> usize {
        let start = 60.0 * m as f64;
        self.times
            .iter()
            .position(|&t| t + self.oracle.lead >= start)
            .unwrap_or(self.times.len())
    }

    /// Runs minute `m` with `n` replicas from it on, from `at` to the minute's end.
    fn trial(&mut self, at: &(Run<'s>, usize), m: usize, n: u32) -> Trial<'s> {
        for s in &mut self.oracle.schedule[m..] {
            *s = n;
        }
        let (mut run, mut step) = (at.0.clone(), at.1);
        let closed_before = run.sim.minutes.len();
        let next_step = self.first_step(m + 1);
        let end = 60.0 * (m + 1) as f64;
        let mut next = None;
        while step < self.times.len() {
            if step == next_step {
                next = Some((run.clone(), step));
            }
            let t = self.times[step];
            run.step(&mut self.oracle, t);
            step += 1;
            if t >= end {
                break;
            }
        }
        self.trials += 1;
        let mut total = 0;
        for (j, stats) in run.sim.minutes.iter().enumerate().skip(closed_before) {
            // A minute already missed when it was decided does not count again.
            if j == m || (j < m && self.met[j]) {
                total += missed(stats, self.scenario, self.error_limit);
            }
        }
        Trial {
            missed: total,
            next: next.unwrap_or((run, step)),
        }
    }
}

/// Searches the cheapest schedule for `scenario` with `seed`: minute by minute,
/// the fewest replicas whose trial (the simulation cloned at the first
/// evaluation that minute's replicas change, run to the minute's end) meets
/// every objective in that minute without breaking the minutes before it.
/// The count is found by probing next to the previous minute's and bisecting,
/// so most minutes cost two or three trials.
pub fn plan(scenario: &Scenario, seed: u64) -> Plan {
    let minutes = (scenario.duration / 60.0).ceil().max(1.0) as usize;
    let limits = Limits::of(&scenario.spec);
    let mut search = Search {
        scenario,
        times: evaluation_times(scenario.duration).collect(),
        oracle: Oracle::new(vec![limits.min; minutes], scenario),
        error_limit: error_limit(scenario),
        met: vec![true; minutes],
        trials: 0,
    };
    let (min, max) = (limits.min, limits.bound(u32::MAX));
    // Not "oracle": `GOVERNOR_SIM_TRACE=oracle` traces the run, not the search.
    let mut at = (Run::new(scenario, "oracle search", seed), 0);
    let mut previous = limits.bound(scenario.initial.replicas);
    let mut infeasible = Vec::new();
    for m in 0..minutes {
        let mut tried: BTreeMap<u32, Trial> = BTreeMap::new();
        let mut pass = |n: u32| {
            let t = search.trial(&at, m, n);
            let ok = t.missed == 0;
            tried.insert(n, t);
            ok
        };
        let feasible = if pass(previous) {
            Some(lowest_passing(min, previous, true, &mut pass))
        } else if previous < max && pass(previous + 1) {
            Some(previous + 1)
        } else if previous + 1 < max && pass(max) {
            Some(lowest_passing(previous + 2, max, false, &mut pass))
        } else {
            None
        };
        let chosen = match feasible {
            Some(n) => n,
            None => {
                infeasible.push(m);
                best_effort(&mut search, &at, m, (min, max), &mut tried)
            }
        };
        let Some(trial) = tried.remove(&chosen) else {
            break;
        };
        search.met[m] = feasible.is_some();
        for s in &mut search.oracle.schedule[m..] {
            *s = chosen;
        }
        at = trial.next;
        previous = chosen;
    }
    Plan {
        replicas: search.oracle.schedule,
        infeasible_minutes: infeasible,
        trials: search.trials,
    }
}

/// For a minute no count in [min, max] meets: the count that misses the fewest
/// objectives, then the fewest replicas. Counts are tried upwards from `min`
/// (maxReplicas was tried already) and the scan stops once one does as well as
/// maxReplicas and three more in a row do no better: more replicas that only
/// add connections (db-bound) are not all simulated.
fn best_effort<'s>(
    search: &mut Search<'s>,
    at: &(Run<'s>, usize),
    m: usize,
    (min, max): (u32, u32),
    tried: &mut BTreeMap<u32, Trial<'s>>,
) -> u32 {
    let at_max = tried.get(&max).map_or(u32::MAX, |t| t.missed);
    let mut best = (u32::MAX, max);
    let mut since_better = 0;
    for n in min..max {
        let missed = match tried.get(&n) {
            Some(t) => t.missed,
            None => {
                let t = search.trial(at, m, n);
                let missed = t.missed;
                tried.insert(n, t);
                missed
            }
        };
        if missed < best.0 {
            best = (missed, n);
            since_better = 0;
        } else {
            since_better += 1;
        }
        if best.0 <= at_max && since_better >= 3 {
            break;
        }
    }
    if at_max < best.0 { max } else { best.1 }
}

/// The lowest `n` in [lo, hi] that passes, given that `hi` passes, by
/// bisection; `near_top` probes `hi - 1` first (load changes little from one
/// minute to the next).
fn lowest_passing(
    mut lo: u32,
    mut hi: u32,
    near_top: bool,
    pass: &mut impl FnMut(u32) -> bool,
) -> u32 {
    let mut first = near_top;
    while lo < hi {
        let mid = if first { hi - 1 } else { lo + (hi - lo) / 2 };
        first = false;
        if pass(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::bench::replay;
    use crate::sim::engine::{InitialState, ServiceModel};

    /// One worker per replica, 10 ms of CPU, every request a cache hit: a
    /// replica serves at most 100 rps. The load steps from 20 to 330 rps at
    /// 600 s, so from minute 10 three replicas are overloaded (110 % each,
    /// their queues grow by 10 requests a second) and four are not (83 %).
    fn step_scenario() -> Scenario {
        let spec = serde_yaml_ng::from_str(
            r#"
service: step
targetRef: {name: step}
objectives:
  latency: {p99: 100ms}
scaling: {minReplicas: 1, maxReplicas: 10, podStartupTime: 30s}
"#,
        )
        .expect("the test SLO parses");
        Scenario {
            name: "step".into(),
            duration: 1200.0,
            load: vec![(0.0, 20.0), (600.0, 20.0), (601.0, 330.0), (1200.0, 330.0)],
            model: ServiceModel {
                workers: 1,
                cpu_time: 0.01,
                sigma: 0.05,
                db_time: 0.000_1,
                cache_max: 1.0,
                ..ServiceModel::audit()
            },
            initial: InitialState {
                replicas: 1,
                pool_size: 10,
                served: 1e12,
            },
            spec,
        }
    }

    #[test]
    fn a_step_is_met_by_replicas_requested_one_startup_early() {
        let s = step_scenario();
        let plan = plan(&s, 1);
        assert!(plan.feasible(), "{plan:?}");
        let mut want = vec![1; 10];
        want.extend([4; 10]);
        assert_eq!(plan.replicas, want, "{plan:?}");
        let f = replay(&s, "oracle", &mut plan.policy(&s), 1);
        assert_eq!(f.p99_violation_minutes, 0.0, "{f:?}");
        // One replica until the request at 570 s (600 s less the 30 s startup),
        // four from then on: 9.5 + 4 x 10.5 replica-minutes.
        assert!((f.replica_minutes - 51.5).abs() < 1e-6, "{f:?}");
        assert_eq!(f.scaling_actions, 1.0, "{f:?}");
    }

    #[test]
    fn a_step_needs_its_replicas_before_it_starts() {
        // The same schedule asked for at the minute itself (no lead) misses it:
        // the lead is what the physics demands, not a margin.
        let s = step_scenario();
        let mut late = Oracle::new([vec![1; 10], vec![4; 10]].concat(), &s);
        late.lead = 0.0;
        let f = replay(&s, "late", &mut late, 1);
        assert!(f.p99_violation_minutes >= 1.0, "{f:?}");
    }

    #[test]
    fn the_lowest_passing_count_is_found_from_either_side() {
        for threshold in 1..=9 {
            for near_top in [true, false] {
                let mut calls = 0;
                let got = lowest_passing(1, 9, near_top, &mut |n| {
                    calls += 1;
                    n >= threshold
                });
                assert_eq!(got, threshold);
                assert!(calls <= 4, "{calls} probes for {threshold}");
            }
        }
    }
}
