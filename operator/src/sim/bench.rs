//! `governor simulate`: scenarios x policies x seeds, the same seeds for every
//! policy, and the figures that compare them.

use serde::Serialize;

use crate::decide::{Actuation, connection_budget};
use crate::error_budget::{BudgetPosition, ErrorBudget};
use crate::observe::Observation;
use crate::rules::BudgetObjective;

use super::engine::{MinuteStats, SimPort, Simulation};
use super::oracle;
use super::policy::{Action, Policy, by_name, canonical_name};
use super::scenario::Scenario;

/// Seconds between evaluations (Governor's default, the HPA's sync period).
pub const INTERVAL: f64 = 15.0;

/// Figures of one run, or of several seeds averaged.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Figures {
    pub scenario: String,
    pub policy: String,
    pub seeds: u32,
    pub p50_violation_minutes: f64,
    pub p90_violation_minutes: f64,
    pub p99_violation_minutes: f64,
    pub replica_minutes: f64,
    pub scaling_actions: f64,
    /// Highest database connections open at once, after the first evaluation
    /// had a chance to act (the starting state is the scenario's, not the policy's).
    pub peak_db_connections: f64,
    pub db_connection_limit: u32,
    pub db_connection_budget: Option<u32>,
    pub error_rate: f64,
    pub cache_hit_rate: f64,
    pub bottleneck_reported: bool,
    pub min_replicas_seen: u32,
    pub max_replicas_seen: u32,
    /// Replicas before the first minute over the P99 target (db-bound's check).
    pub replicas_before_breach: Option<u32>,
    /// The oracle only: whether its schedule met every objective (on every seed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle_feasible: Option<bool>,
    /// Wall time of the run (summed over seeds), planning included.
    #[serde(skip)]
    pub run_seconds: f64,
    /// Share of the error budget spent over the run, the worst objective's
    /// `(bad / total) / allowed` (1 spends exactly the allowance); the `month`
    /// scenario's run is its SLO's whole window.
    pub error_budget_spent: Option<f64>,
}

/// One run in progress: the simulation and what it tracks between evaluations.
/// A clone continues exactly as the original would (the oracle's search).
#[derive(Clone)]
pub(crate) struct Run<'a> {
    scenario: &'a Scenario,
    policy: &'a str,
    pub(crate) sim: Simulation,
    target99: Option<f64>,
    bottleneck: bool,
    peak_db: u32,
    lo: u32,
    hi: u32,
    before_breach: Option<u32>,
    /// The objectives whose budget is counted, as on a cluster.
    objectives: Vec<BudgetObjective>,
}

/// Runs one policy on one scenario with one seed.
pub fn run(scenario: &Scenario, policy: &str, seed: u64) -> Result<Figures, crate::Error> {
    let started = std::time::Instant::now();
    let mut figures = if policy == "oracle" {
        let plan = oracle::plan(scenario, seed);
        let mut f = replay(scenario, policy, &mut plan.policy(scenario), seed);
        f.oracle_feasible = Some(meets_objectives(scenario, &f));
        f
    } else {
        let mut p = by_name(policy, scenario).ok_or_else(|| {
            crate::Error::Usage(
                canonical_name(policy)
                    .err()
                    .unwrap_or_else(|| format!("unknown policy {policy:?}")),
            )
        })?;
        replay(scenario, policy, p.as_mut(), seed)
    };
    figures.run_seconds = started.elapsed().as_secs_f64();
    Ok(figures)
}

/// Runs `p` (named `name` in the figures) on one scenario with one seed: the
/// ordinary simulation every policy gets.
pub fn replay(scenario: &Scenario, name: &str, p: &mut dyn Policy, seed: u64) -> Figures {
    let mut run = Run::new(scenario, name, seed);
    for t in evaluation_times(scenario.duration) {
        run.step(p, t);
    }
    run.figures()
}

/// The evaluation times of a run: every `INTERVAL`, and the end.
pub(crate) fn evaluation_times(duration: f64) -> impl Iterator<Item = f64> {
    let steps = (duration / INTERVAL).ceil().max(0.0) as usize;
    (1..=steps).map(move |k| (k as f64 * INTERVAL).min(duration))
}

/// No minute over a latency target, and errors within the error-rate objective
/// (none without one).
pub fn meets_objectives(scenario: &Scenario, f: &Figures) -> bool {
    f.p50_violation_minutes == 0.0
        && f.p90_violation_minutes == 0.0
        && f.p99_violation_minutes == 0.0
        && f.error_rate <= oracle::error_limit(scenario)
}

impl<'a> Run<'a> {
    pub(crate) fn new(scenario: &'a Scenario, policy: &'a str, seed: u64) -> Self {
        let sim = Simulation::new(
            scenario.model.clone(),
            &scenario.initial,
            scenario.peak_rate() * 1.02 + 1.0,
            seed,
        );
        let target99 = scenario
            .spec
            .objectives
            .latency
            .p99
            .map(|l| l.as_secs_f64());
        Self {
            scenario,
            policy,
            sim,
            target99,
            bottleneck: false,
            peak_db: 0,
            lo: u32::MAX,
            hi: 0,
            before_breach: None,
            objectives: crate::rules::budget_objectives(
                &governor_crds::ServiceLevelObjective::new(&scenario.name, scenario.spec.clone()),
            ),
        }
    }

    /// The budget as the operator reads it: counted from the start of the run,
    /// which is the start of the SLO's window.
    fn budget(&self) -> ErrorBudget {
        let (total, bad) = self.sim.counters.missed(&self.objectives);
        ErrorBudget::from_counts(
            self.objectives
                .iter()
                .zip(bad)
                .map(|(o, bad)| (o.id.as_str(), bad, total, o.allowed)),
        )
    }

    /// Runs the simulation to `t`, then lets the policy evaluate and act.
    pub(crate) fn step(&mut self, p: &mut dyn Policy, t: f64) {
        let scenario = self.scenario;
        let sim = &mut self.sim;
        sim.run_until(t, &|t: f64| scenario.rate(t));
        if t > INTERVAL + 30.0 {
            self.peak_db = self.peak_db.max(sim.peak_db_connections);
        }
        sim.peak_db_connections = sim.db_connections();
        let mut obs = sim.observe();
        let window = scenario.spec.objectives.window.as_secs_f64();
        obs.error_budget = self
            .budget()
            .worst()
            .and_then(|r| BudgetPosition::new(r, t / window));
        let sim = &mut self.sim;
        let current = Actuation {
            replicas: sim.replicas(),
            pool_size: Some(sim.pool_size()),
        };
        if self.before_breach.is_none()
            && let (Some(p99), Some(target)) = (obs.latency.p99, self.target99)
            && p99 > target
            && t > 300.0
        {
            self.before_breach = Some(current.replicas);
        }
        let action = p.evaluate(&obs, current, t);
        if std::env::var("GOVERNOR_SIM_TRACE").is_ok_and(|v| v == self.policy) {
            trace(t, &obs, current, &action);
        }
        self.bottleneck |= action.bottleneck.is_some();
        let _ = crate::actuate::apply_now(&mut SimPort { sim }, action.request);
        self.lo = self.lo.min(sim.replicas());
        self.hi = self.hi.max(sim.replicas());
    }

    /// The figures of the finished run.
    pub(crate) fn figures(self) -> Figures {
        let sim = &self.sim;
        let targets = &self.scenario.spec.objectives.latency;
        let over = |target, pick| violation_minutes(&sim.minutes, target, pick);
        let lookups = sim.total_hits + sim.total_misses;
        Figures {
            scenario: self.scenario.name.clone(),
            policy: self.policy.to_string(),
            seeds: 1,
            p50_violation_minutes: over(targets.p50, |m| m.p50),
            p90_violation_minutes: over(targets.p90, |m| m.p90),
            p99_violation_minutes: over(targets.p99, |m| m.p99),
            replica_minutes: sim.replica_seconds / 60.0,
            scaling_actions: f64::from(sim.scaling_actions),
            peak_db_connections: f64::from(self.peak_db),
            db_connection_limit: self.scenario.model.db_max_connections,
            db_connection_budget: connection_budget(&self.scenario.spec),
            error_rate: if sim.total_requests == 0 {
                0.0
            } else {
                sim.total_errors as f64 / sim.total_requests as f64
            },
            cache_hit_rate: if lookups == 0 {
                0.0
            } else {
                sim.total_hits as f64 / lookups as f64
            },
            bottleneck_reported: self.bottleneck,
            min_replicas_seen: self.lo,
            max_replicas_seen: self.hi,
            replicas_before_breach: self.before_breach,
            oracle_feasible: None,
            run_seconds: 0.0,
            error_budget_spent: self.budget().worst().map(|r| 1.0 - r),
        }
    }
}

/// Minutes with requests whose `pick`ed quantile was over `target` (0 without one).
fn violation_minutes(
    minutes: &[MinuteStats],
    target: Option<governor_crds::Latency>,
    pick: fn(&MinuteStats) -> f64,
) -> f64 {
    target.map_or(0.0, |t| {
        minutes
            .iter()
            .filter(|m| m.requests > 0 && pick(m) > t.as_secs_f64())
            .count() as f64
    })
}

/// One evaluation on stderr, for `GOVERNOR_SIM_TRACE=<policy>`.
fn trace(t: f64, obs: &Observation, current: Actuation, action: &Action) {
    eprintln!(
        "t={t:>5.0} rate={:>5.0} ready={:>2} repl={:>2} pool={:>2} p50={:>4.0} p90={:>4.0} p99={:>4.0} hit={:.2} inuse={:.0} pend={:.0} -> {:?}",
        obs.request_rate.unwrap_or(-1.0),
        obs.ready_replicas.unwrap_or(0),
        current.replicas,
        current.pool_size.unwrap_or(0),
        obs.latency.p50.unwrap_or(-1.0) * 1e3,
        obs.latency.p90.unwrap_or(-1.0) * 1e3,
        obs.latency.p99.unwrap_or(-1.0) * 1e3,
        obs.cache_hit_rate.unwrap_or(-1.0),
        obs.pool_in_use.unwrap_or(-1.0),
        obs.pool_pending.unwrap_or(-1.0),
        (
            action.request.replicas,
            action.request.pool_size,
            action.request.warm_up,
            action.bottleneck.is_some()
        )
    );
}

/// Averages runs of the same (scenario, policy).
pub fn average(runs: &[Figures]) -> Figures {
    let n = runs.len().max(1) as f64;
    let mut out = runs.first().cloned().unwrap_or_default();
    out.seeds = runs.len() as u32;
    let avg = |f: fn(&Figures) -> f64| runs.iter().map(f).sum::<f64>() / n;
    out.p50_violation_minutes = avg(|r| r.p50_violation_minutes);
    out.p90_violation_minutes = avg(|r| r.p90_violation_minutes);
    out.p99_violation_minutes = avg(|r| r.p99_violation_minutes);
    out.replica_minutes = avg(|r| r.replica_minutes);
    out.scaling_actions = avg(|r| r.scaling_actions);
    out.error_rate = avg(|r| r.error_rate);
    out.cache_hit_rate = avg(|r| r.cache_hit_rate);
    out.peak_db_connections = runs
        .iter()
        .map(|r| r.peak_db_connections)
        .fold(0.0, f64::max);
    out.bottleneck_reported = runs.iter().any(|r| r.bottleneck_reported);
    out.min_replicas_seen = runs.iter().map(|r| r.min_replicas_seen).min().unwrap_or(0);
    out.max_replicas_seen = runs.iter().map(|r| r.max_replicas_seen).max().unwrap_or(0);
    out.replicas_before_breach = runs.iter().filter_map(|r| r.replicas_before_breach).max();
    out.oracle_feasible = runs
        .iter()
        .filter_map(|r| r.oracle_feasible)
        .reduce(|a, b| a && b);
    out.run_seconds = runs.iter().map(|r| r.run_seconds).sum();
    let spent: Vec<f64> = runs.iter().filter_map(|r| r.error_budget_spent).collect();
    out.error_budget_spent =
        (!spent.is_empty()).then(|| spent.iter().sum::<f64>() / spent.len() as f64);
    out
}

/// Runs every (scenario, policy, seed) on `threads` threads, reporting progress.
pub fn suite(
    scenarios: &[Scenario],
    policies: &[String],
    seeds: u32,
    threads: usize,
    progress: &(dyn Fn(usize, usize, &Figures) + Sync),
) -> Result<Vec<Figures>, crate::Error> {
    let mut jobs: Vec<(usize, usize, u64)> = (0..scenarios.len())
        .flat_map(|s| {
            (0..policies.len())
                .flat_map(move |p| (0..seeds).map(move |seed| (s, p, u64::from(seed) + 1)))
        })
        .collect();
    let total = jobs.len();
    // The longest runs first (the oracle's search, then the longest scenarios),
    // so no thread is left with a long run while the others are idle. Results
    // go back to their place in the order above.
    let slot = |&(s, p, seed): &(usize, usize, u64)| {
        (s * policies.len() + p) * seeds as usize + (seed - 1) as usize
    };
    let work = |&(s, p, _): &(usize, usize, u64)| {
        let search = if policies[p] == "oracle" { 4.0 } else { 1.0 };
        scenarios[s].duration * search
    };
    jobs.sort_by(|a, b| work(b).total_cmp(&work(a)));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<Result<Figures, crate::Error>>>> =
        std::sync::Mutex::new((0..total).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(&(s, p, seed)) = jobs.get(i) else {
                        break;
                    };
                    let r = run(&scenarios[s], &policies[p], seed);
                    let i = slot(&(s, p, seed));
                    let finished = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    if let Ok(f) = &r {
                        progress(finished, total, f);
                    }
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(r);
                    }
                }
            });
        }
    });
    let mut all = results
        .into_inner()
        .map_err(|_| crate::Error::Failed("a simulation thread panicked".into()))?;
    let mut out = Vec::new();
    for s in 0..scenarios.len() {
        for p in 0..policies.len() {
            let mut runs = Vec::new();
            for seed in 0..seeds as usize {
                let idx = (s * policies.len() + p) * seeds as usize + seed;
                match all.get_mut(idx).and_then(Option::take) {
                    Some(Ok(f)) => runs.push(f),
                    Some(Err(e)) => return Err(e),
                    None => {
                        return Err(crate::Error::Failed("a simulation did not finish".into()));
                    }
                }
            }
            out.push(average(&runs));
        }
    }
    Ok(out)
}
