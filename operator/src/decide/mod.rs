//! Decide: a pure function of (spec, controller state, observation, current
//! actuation, now) to a plan — replicas, pool size, warm-up, or nothing — with a
//! reason for every change. No I/O, no clock: this is where the safety rules live.
//! One pass is a chain of steps, each in its module: hold (missing or stale
//! data), pressure, bottleneck (with the connection-pool stage), replicas,
//! pool, warm-up.

use std::collections::VecDeque;

use governor_crds::{Latency, Mode, ObjectiveState, Quantile, ServiceLevelObjectiveSpec as Spec};

use crate::estimate::Estimate;
use crate::observe::Observation;

mod bottleneck;
mod budget;
pub mod headroom;
mod hold;
mod limits;
mod load;
mod pool;
mod pool_stage;
mod pressure;
mod replicas;
pub mod testing;
mod warm_up;

pub use budget::ConnectionBudget;
pub use headroom::{Aim, HeadroomAim};
pub use limits::Limits;
use load::Load;
use pressure::Pressure;

/// Plan latency with this share of each target, so noise does not breach it.
pub const LATENCY_MARGIN: f64 = governor_crds::AT_RISK_RATIO;

/// What the target runs with now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actuation {
    /// Replicas the workload asks for (spec.replicas).
    pub replicas: u32,
    /// Per-replica pool size, when Governor manages the pool.
    pub pool_size: Option<u32>,
}

/// One knob moved, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

/// The outcome of one decision. Empty (all `None`) means nothing changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub replicas: Option<Change>,
    pub pool_size: Option<Change>,
    pub warm_up: Option<String>,
    /// The downstream bottleneck that keeps Governor from adding replicas.
    pub bottleneck: Option<String>,
    /// Why actuation is frozen (missing or stale data).
    pub hold: Option<String>,
    pub objective_state: Option<ObjectiveState>,
    /// Decided in DryRun mode: report, do not apply.
    pub dry_run: bool,
    /// The budget-aware headroom of this pass (`None` with fixed headroom).
    pub headroom: Option<HeadroomAim>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.replicas.is_none() && self.pool_size.is_none() && self.warm_up.is_none()
    }
}

/// What Governor remembers about one SLO between decisions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ControllerState {
    pub model: Estimate,
    /// Replica recommendations (time, replicas) within the stabilization window.
    pub recommendations: VecDeque<(f64, u32)>,
    /// Replica counts in effect (time set, replicas), for rate limits.
    pub history: VecDeque<(f64, u32)>,
    pub last_warm_up: Option<f64>,
    /// The budget-aware headroom in effect (`None` with fixed headroom).
    pub aim: Option<Aim>,
}

impl ControllerState {
    /// The state of an SLO this process has not decided on yet (a new leader,
    /// a restart), from what its status records: the replica changes in its
    /// decision log (for the rate limits and the stabilization window) and the
    /// last warm-up (for the cooldown). A failover then never doubles a
    /// scale-up step, and never repeats a warm-up within its cooldown.
    pub fn seeded(status: Option<&governor_crds::ServiceLevelObjectiveStatus>) -> Self {
        let mut state = Self::default();
        let Some(status) = status else {
            return state;
        };
        let secs = |t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time| {
            t.0.as_millisecond() as f64 / 1000.0
        };
        state.last_warm_up = status.last_warm_up.as_ref().map(secs);
        // The aim goes on from where the last leader left it, at its pace.
        state.aim = status
            .headroom
            .as_ref()
            .zip(status.observed.as_ref())
            .map(|(h, o)| Aim {
                share: h.aim,
                goal: h.aim,
                at: secs(&o.time),
            });
        let changes = status
            .decisions
            .iter()
            .filter(|d| d.knob == governor_crds::Knob::Replicas && !d.dry_run);
        for d in changes {
            let (t, from, to) = (secs(&d.time), d.from.max(0) as u32, d.to.max(0) as u32);
            // `from` was in effect until `t`: a period that covers `t` counts it.
            state.history.push_back((t, from));
            state.history.push_back((t, to));
            state.recommendations.push_back((t, to));
        }
        state
    }
}

/// Connections Governor may hand out across replicas, when it manages a pool.
pub fn connection_budget(spec: &Spec) -> Option<u32> {
    ConnectionBudget::of(spec).map(ConnectionBudget::total)
}

fn secs(d: governor_crds::Duration) -> f64 {
    d.as_secs_f64()
}

fn ms(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2}s")
    } else {
        format!("{:.0}ms", s * 1000.0)
    }
}

/// The inputs of one decision, read once: every step takes what it needs.
struct Pass<'a> {
    spec: &'a Spec,
    /// The observation with NaN, infinite and negative values read as missing.
    obs: Observation,
    current: Actuation,
    now: f64,
    limits: Limits,
    /// The evaluation interval in seconds, at least one.
    interval: f64,
    targets: Vec<(Quantile, Latency)>,
    dry_run: bool,
    /// Share of each latency target the replicas are planned for.
    aim: f64,
    /// Why the aim is not the fixed one, for the reasons of changes.
    headroom: Option<String>,
}

impl<'a> Pass<'a> {
    fn new(spec: &'a Spec, obs: &Observation, current: Actuation, now: f64) -> Self {
        Self {
            spec,
            obs: obs.sanitized(),
            current,
            now,
            limits: Limits::of(spec),
            interval: secs(spec.objectives.evaluation_interval).max(1.0),
            targets: spec.objectives.latency.targets(),
            dry_run: spec.scaling.mode == Mode::DryRun,
            aim: LATENCY_MARGIN,
            headroom: None,
        }
    }

    fn cur(&self) -> u32 {
        self.current.replicas
    }

    /// A pass for a step's unit test.
    #[cfg(test)]
    fn at(spec: &'a Spec, obs: &Observation, replicas: u32, pool: Option<u32>, now: f64) -> Self {
        let current = Actuation {
            replicas,
            pool_size: pool,
        };
        Self::new(spec, obs, current, now)
    }
}

/// The decision. `state` is the state before (taken by value, so a cycle over
/// many SLOs copies nothing); the new state is returned with the plan.
pub fn decide(
    spec: &Spec,
    state: ControllerState,
    obs: &Observation,
    current: Actuation,
    now: f64,
) -> (Plan, ControllerState) {
    let mut next = state;
    let mut pass = Pass::new(spec, obs, current, now);
    let mut plan = Plan {
        dry_run: pass.dry_run,
        ..Plan::default()
    };
    if let Some((aim, kept)) = headroom::aim(spec, pass.obs.error_budget, next.aim, now) {
        (pass.aim, pass.headroom) = (aim.share, Some(aim.why.clone()));
        next.aim = Some(kept);
        plan.headroom = Some(aim);
    }
    if next.history.back().is_none_or(|&(_, r)| r != pass.cur()) {
        next.history.push_back((now, pass.cur()));
    }
    // Without data only the hard limits apply: the budget holds whatever the data says.
    if let Some(why) = hold::cause(&pass) {
        hold::hold(&pass, why, &mut plan, &mut next.recommendations);
        record(&pass, &plan, &mut next);
        return (plan, next);
    }
    let load = Load::update(&pass, &mut next.model, &next.history);
    let pressure = Pressure::of(&pass);
    plan.objective_state = Some(pressure.state());
    let queueing = replicas::queueing_visible(&pass, &next.model);
    plan.bottleneck = bottleneck::find(&pass, &pressure)
        .or_else(|| pool_stage::database_limit(&pass, &next.model, load.forecast, queueing));
    let bottleneck = plan.bottleneck.is_some();
    plan.replicas = replicas::decide(&pass, &load, &pressure, bottleneck, &mut next);
    let to = plan.replicas.as_ref().map_or(pass.cur(), |c| c.to);
    plan.pool_size = pool::resize(&pass, to, load.ready);
    let scaling_up = to > pass.cur();
    plan.warm_up = warm_up::plan(&pass, &pressure, scaling_up, &mut next.last_warm_up);
    record(&pass, &plan, &mut next);
    (plan, next)
}

/// Remembers a replica change that takes effect (not in DryRun), for rate limits.
fn record(pass: &Pass, plan: &Plan, next: &mut ControllerState) {
    if let Some(c) = &plan.replicas
        && !pass.dry_run
    {
        next.history.push_back((pass.now, c.to));
    }
    trim(next, pass.now, pass.spec);
}

/// Bounds on the remembered counts and recommendations, so a state stays small
/// whatever the periods and the evaluation interval.
const MAX_HISTORY: usize = 256;
const MAX_RECOMMENDATIONS: usize = 4096;

/// Forgets what no rate limit or stabilization window can still use.
fn trim(state: &mut ControllerState, now: f64, spec: &Spec) {
    let keep = secs(spec.scaling.scale_up.period)
        .max(secs(spec.scaling.scale_down.period))
        .max(secs(spec.scaling.scale_down.stabilization_window));
    while state.history.len() > 1 && state.history.get(1).is_some_and(|&(t, _)| t < now - keep) {
        state.history.pop_front();
    }
    while state.history.len() > MAX_HISTORY {
        state.history.pop_front();
    }
    while state.recommendations.len() > MAX_RECOMMENDATIONS {
        state.recommendations.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testing::{SpecBuilder, healthy};

    fn at(replicas: u32, pool: Option<u32>) -> Actuation {
        Actuation {
            replicas,
            pool_size: pool,
        }
    }

    /// `healthy` with P99 at `p99` and `ready` replicas.
    fn observed(now: f64, p99: f64, ready: u32) -> Observation {
        let mut obs = healthy(now);
        obs.latency.p99 = Some(p99);
        obs.ready_replicas = Some(ready);
        obs
    }

    /// Passes every 15 s over `p99s`, at a constant actuation; the last plan.
    fn run(spec: &Spec, p99s: &[f64], current: Actuation) -> (Plan, ControllerState) {
        let mut state = ControllerState::default();
        let mut plan = Plan::default();
        for (i, &p99) in p99s.iter().enumerate() {
            let now = 15.0 * (i + 1) as f64;
            let obs = observed(now, p99, current.replicas);
            (plan, state) = decide(spec, state, &obs, current, now);
        }
        (plan, state)
    }

    /// A status whose log says the previous leader scaled 2 -> 4 at t = 100 s
    /// and warmed the cache at t = 90 s.
    fn status_after_failover() -> governor_crds::ServiceLevelObjectiveStatus {
        serde_json::from_value(serde_json::json!({
            "lastWarmUp": "1970-01-01T00:01:30Z",
            "decisions": [
                {"time": "1970-01-01T00:01:40Z", "knob": "Replicas", "from": 2, "to": 4, "reason": "breach"},
                {"time": "1970-01-01T00:01:41Z", "knob": "Replicas", "from": 4, "to": 9, "reason": "dry", "dryRun": true},
            ],
        }))
        .unwrap()
    }

    #[test]
    fn a_new_leader_seeded_from_status_does_not_double_a_scale_up_step() {
        // At most +2 pods (or +100 %) per 60 s: the previous leader used this
        // period's step at t = 100 s.
        let spec = SpecBuilder::new()
            .p99("100ms")
            .replicas(2, 40)
            .scale_up(2, 100, "60s")
            .build();
        let seeded = ControllerState::seeded(Some(&status_after_failover()));
        assert_eq!(seeded.last_warm_up, Some(90.0));
        assert_eq!(seeded.history, VecDeque::from([(100.0, 2), (100.0, 4)]));
        let after = |mut state: ControllerState| {
            let mut plan = Plan::default();
            for (i, p99) in [0.05, 0.05, 0.05, 0.4].into_iter().enumerate() {
                let now = 102.0 + 2.0 * i as f64;
                let obs = observed(now, p99, 4);
                (plan, state) = decide(&spec, state, &obs, at(4, None), now);
            }
            plan.replicas.map_or(4, |c| c.to)
        };
        assert!(
            after(ControllerState::default()) > 4,
            "a fresh state would step again"
        );
        assert_eq!(after(seeded), 4, "the period's step is spent");
    }

    #[test]
    fn a_new_leader_seeded_from_status_keeps_the_warm_up_cooldown() {
        let spec = SpecBuilder::new()
            .p99("100ms")
            .replicas(2, 40)
            .cache(0.8, "10m")
            .build();
        let mut obs = observed(150.0, 0.095, 4);
        obs.cache_hit_rate = Some(0.4);
        let warm = |state| decide(&spec, state, &obs, at(4, None), 150.0).0.warm_up;
        assert!(
            warm(ControllerState::default()).is_some(),
            "cold, near the target"
        );
        let seeded = ControllerState::seeded(Some(&status_after_failover()));
        assert_eq!(warm(seeded), None, "warmed 60 s ago; cooldown 10m");
    }

    #[test]
    fn under_min_replicas_is_raised_with_a_reason_that_says_so() {
        // P99 over target with no queueing (a slow floor): replicas would not fix
        // it, but minReplicas 3 still applies to a workload at 2.
        let spec = SpecBuilder::new().p99("100ms").replicas(3, 20).build();
        let (plan, _) = run(&spec, &[0.15], at(2, None));
        let c = plan.replicas.expect("raised to minReplicas");
        assert_eq!((c.from, c.to), (2, 3));
        assert_eq!(
            c.reason,
            "2 replicas is under minReplicas 3: raised to minReplicas 3"
        );
    }

    #[test]
    fn over_max_replicas_is_lowered_with_a_reason_that_says_so() {
        let spec = SpecBuilder::new().p99("100ms").replicas(3, 20).build();
        // Even while breached, which otherwise never removes capacity.
        let (plan, _) = run(&spec, &[0.15], at(25, None));
        let c = plan.replicas.expect("lowered to maxReplicas");
        assert_eq!((c.from, c.to), (25, 20));
        assert_eq!(
            c.reason,
            "25 replicas is over maxReplicas 20: lowered to maxReplicas 20"
        );
        assert_eq!(plan.objective_state, Some(ObjectiveState::Breached));
    }

    #[test]
    fn a_breach_by_queueing_scales_up_and_names_the_objective() {
        let spec = SpecBuilder::new().p99("100ms").replicas(2, 20).build();
        let (plan, next) = run(&spec, &[0.05, 0.05, 0.05, 0.16], at(2, None));
        let c = plan.replicas.expect("a scale-up on breach");
        assert!(c.to > 2, "{c:?}");
        assert!(
            c.reason.contains("p99 160ms vs target 100ms"),
            "{}",
            c.reason
        );
        assert!(!c.reason.contains("minReplicas"), "{}", c.reason);
        assert_eq!(
            next.history.back(),
            Some(&(60.0, c.to)),
            "the change is recorded"
        );
        assert!(
            next.model.overload_rate.is_some(),
            "the breaching load is remembered"
        );
    }

    #[test]
    fn dry_run_plans_but_records_nothing_applied() {
        let spec = SpecBuilder::new()
            .p99("100ms")
            .replicas(2, 20)
            .dry_run()
            .build();
        let (plan, next) = run(&spec, &[0.05, 0.05, 0.05, 0.16], at(2, None));
        assert!(plan.dry_run);
        let c = plan.replicas.expect("a scale-up is still decided");
        assert!(next.history.iter().all(|&(_, r)| r != c.to), "{next:?}");
    }

    #[test]
    fn a_database_bottleneck_is_reported_and_not_scaled_into() {
        // Budget 80 = 4 x 20: a 5th replica would exceed it.
        let spec = SpecBuilder::new()
            .p99("100ms")
            .replicas(2, 20)
            .pool(2, 50)
            .database(100, 0.8)
            .build();
        let current = at(4, Some(20));
        let mut state = ControllerState::default();
        for i in 1..=3 {
            let now = 15.0 * f64::from(i);
            (_, state) = decide(&spec, state, &observed(now, 0.05, 4), current, now);
        }
        let mut starved = observed(60.0, 0.16, 4);
        (starved.pool_in_use, starved.pool_max) = (Some(80.0), Some(80.0));
        starved.pool_pending = Some(12.0);
        starved.pool_wait = Some(0.04);
        let (plan, _) = decide(&spec, state, &starved, current, 60.0);
        let why = plan.bottleneck.expect("the budget is the bottleneck");
        assert!(why.contains("budget 80"), "{why}");
        assert_eq!(plan.replicas, None, "no replica added into the bottleneck");
    }

    /// The replicas decided when P99 rises to `p99` at 200 rps on 4 replicas
    /// with the budget at `position` (remaining, elapsed), after a model
    /// learned at 100 rps, with the aim already settled where that position
    /// sends it.
    fn replicas_with_budget(spec: &Spec, p99: f64, position: Option<(f64, f64)>) -> (u32, Plan) {
        let (_, mut state) = run(spec, &[0.05; 8], at(4, None));
        let position = position.and_then(|(r, e)| crate::error_budget::BudgetPosition::new(r, e));
        let now = 15.0 * 9.0;
        if let Some((aim, kept)) = headroom::aim(spec, position, None, now) {
            // Settled: the goal reached.
            let goal = kept.goal;
            state.aim = Some(Aim {
                share: goal,
                goal,
                at: now,
            });
            assert!(aim.share <= 1.0);
        }
        let mut obs = observed(now, p99, 4);
        obs.request_rate = Some(200.0);
        obs.error_budget = position;
        let (plan, _) = decide(spec, state, &obs, at(4, None), now);
        (plan.replicas.as_ref().map_or(4, |c| c.to), plan)
    }

    #[test]
    fn a_budget_behind_schedule_gets_at_least_the_replicas_of_fixed_headroom() {
        let fixed = SpecBuilder::new()
            .p99("100ms")
            .replicas(1, 40)
            .scale_up(40, 1000, "15s")
            .build();
        let mut aware = fixed.clone();
        aware.headroom = Some(governor_crds::Headroom {
            policy: governor_crds::HeadroomPolicy::BudgetAware,
            ..governor_crds::Headroom::default()
        });
        let mut more = false;
        for p99 in [0.06, 0.07, 0.08, 0.085, 0.095] {
            let (base, _) = replicas_with_budget(&fixed, p99, Some((-0.5, 1.0)));
            let (behind, plan) = replicas_with_budget(&aware, p99, Some((-0.5, 1.0)));
            let (ahead, _) = replicas_with_budget(&aware, p99, Some((0.9, 0.5)));
            let (unknown, _) = replicas_with_budget(&aware, p99, None);
            println!("p99 {p99}: fixed {base}, behind {behind}, ahead {ahead}, unknown {unknown}");
            assert!(behind >= base, "p99 {p99}: behind {behind} < fixed {base}");
            assert!(ahead <= base, "p99 {p99}: ahead {ahead} > fixed {base}");
            assert_eq!(
                unknown, base,
                "p99 {p99}: an unknown budget is fixed headroom"
            );
            more |= behind > base;
            let h = plan.headroom.expect("budget-aware reports its aim");
            assert_eq!(h.share, 0.8);
            if let Some(c) = plan.replicas.filter(|c| c.to > 4) {
                assert!(c.reason.contains("planned at 80.0 % of each latency target: the error budget is 50 % of the window's allowance behind"), "{}", c.reason);
            }
        }
        assert!(more, "the extra headroom added no replica");
        // Fixed headroom keeps no aim and reports none.
        let (_, plan) = replicas_with_budget(&fixed, 0.08, Some((0.9, 0.5)));
        assert_eq!(plan.headroom, None);
    }

    #[test]
    fn a_hold_returns_the_plan_and_keeps_the_recommendation() {
        let spec = SpecBuilder::new().p99("100ms").replicas(2, 20).build();
        let (plan, next) = decide(
            &spec,
            ControllerState::default(),
            &Observation::default(),
            at(5, None),
            10.0,
        );
        assert!(plan.hold.unwrap().contains("stale"));
        assert!(plan.replicas.is_none());
        assert_eq!(next.recommendations, VecDeque::from([(10.0, 5)]));
        assert_eq!(next.history, VecDeque::from([(10.0, 5)]));
    }
}
