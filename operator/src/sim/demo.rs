//! `governor demo`: the audit's services simulated in real time, driven by the
//! real decision engine through the actuation port, reported through the same
//! status the operator writes, and served by the dashboard.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use governor_crds::manifest::parse_documents;
use governor_crds::{Mode, ServiceLevelObjective};
use governor_dashboard::{HistoryPoint, Range, ReadModel, SloView, Snapshot, TraceRow};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::actuate;
use crate::decide::{Actuation, ControllerState, decide};
use crate::error_budget::{self, ErrorBudget};
use crate::report::{self, Pass};
use crate::rules::BudgetObjective;
use crate::sim::engine::SimPort;
use crate::sim::live::{LiveService, services};
use crate::sim::scenario::Scenario;

/// The SLOs the demo runs: the repository's examples, embedded.
pub const EXAMPLES: [&str; 4] = [
    include_str!("../../../examples/api.yaml"),
    include_str!("../../../examples/stories.yaml"),
    include_str!("../../../examples/bookings.yaml"),
    include_str!("../../../examples/voice.yaml"),
];

/// The demo starts this far into the audit's load cycle: about 215 rps, where
/// the audit's two fixed instances with a 42 % cache show P90 near 450 ms.
pub const START_OFFSET: f64 = 515.0;
/// For this much simulated time Governor watches in DryRun before enforcing,
/// so the breach and what Governor would do are both on the dashboard.
pub const HANDOVER: f64 = 120.0;

/// Simulated time kept in the history (the dashboard's longest range).
const HISTORY_SECONDS: f64 = 7.0 * 86_400.0;
/// The burn rate is measured over this much simulated time.
const BURN_WINDOW: f64 = 300.0;

/// Cumulative request counts at one time, for budgets and burn rates.
#[derive(Clone, Debug, Default)]
struct Tally {
    t: f64,
    total: f64,
    /// Per objective: requests that missed it.
    bad: Vec<f64>,
}

/// One simulated service and what Governor keeps about it.
pub struct DemoService {
    pub live: LiveService,
    pub slo: ServiceLevelObjective,
    /// The example's own mode, applied after the handover.
    mode: Mode,
    state: ControllerState,
    next_evaluation: f64,
    history: VecDeque<HistoryPoint>,
    tallies: VecDeque<Tally>,
    burn_rate: Option<f64>,
}

/// The objectives the budget is counted for: the same as on a cluster.
fn objectives(slo: &ServiceLevelObjective) -> Vec<BudgetObjective> {
    crate::rules::budget_objectives(slo)
}

impl DemoService {
    fn tally(&self) -> Tally {
        let (total, bad) = self.live.sim.counters.missed(&objectives(&self.slo));
        Tally {
            t: self.live.sim.now(),
            total,
            bad,
        }
    }

    /// Each objective's budget left in the window, and the worst objective's
    /// burn over the last 5 minutes. The window began when the demo did, with
    /// a clean history before it: what was spent so far is spent out of the
    /// whole window's requests at the current pace.
    fn budget(&mut self, now: &Tally) -> (ErrorBudget, Option<f64>) {
        let objectives = objectives(&self.slo);
        let window = self.slo.spec.objectives.window.as_secs_f64().max(1.0);
        let share = (now.t / window).clamp(1e-9, 1.0);
        let budget = ErrorBudget::from_counts(objectives.iter().enumerate().map(|(i, o)| {
            let bad = now.bad.get(i).copied().unwrap_or(f64::NAN);
            (o.id.as_str(), bad, now.total / share, o.allowed)
        }));
        while self
            .tallies
            .front()
            .is_some_and(|t| t.t < now.t - BURN_WINDOW)
        {
            self.tallies.pop_front();
        }
        let burn = self.tallies.front().and_then(|since| {
            objectives
                .iter()
                .enumerate()
                .filter_map(|(i, o)| {
                    error_budget::burn_rate(
                        now.bad.get(i)? - since.bad.get(i).copied().unwrap_or(0.0),
                        now.total - since.total,
                        o.allowed,
                    )
                })
                .reduce(f64::max)
        });
        self.tallies.push_back(now.clone());
        (budget, burn)
    }
}

/// The demo's shared state.
pub struct Demo {
    pub services: Mutex<Vec<DemoService>>,
    /// Unix seconds of simulated time 0.
    origin: f64,
    snapshot: RwLock<Snapshot>,
}

fn time(unix: f64) -> Time {
    Time(
        Timestamp::UNIX_EPOCH
            .checked_add(SignedDuration::from_secs_f64(unix.max(0.0)))
            .unwrap_or(Timestamp::UNIX_EPOCH),
    )
}

/// The example SLOs, parsed.
pub fn example_slos() -> Result<Vec<ServiceLevelObjective>, crate::Error> {
    let mut out = Vec::new();
    for text in EXAMPLES {
        for doc in parse_documents(text) {
            match doc.result {
                Ok(slo) => out.push(slo),
                Err(p) => {
                    return Err(crate::Error::Failed(format!(
                        "embedded example {} is invalid: {}",
                        doc.object,
                        p.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    )));
                }
            }
        }
    }
    Ok(out)
}

impl Demo {
    /// The audit scenario's four services with the examples' SLOs.
    pub fn new(seed: u64, origin: f64) -> Result<Self, crate::Error> {
        let scenario = Scenario::built_in("audit")
            .ok_or_else(|| crate::Error::Failed("the audit scenario is missing".into()))?;
        let slos = example_slos()?;
        let mut all = Vec::new();
        let scenario = scenario.starting_at(START_OFFSET);
        for live in services(&scenario, 4, seed) {
            let slo = slos
                .iter()
                .find(|s| s.spec.service == live.name)
                .cloned()
                .ok_or_else(|| {
                    crate::Error::Failed(format!("no example SLO for service {}", live.name))
                })?;
            let mode = slo.spec.scaling.mode;
            let mut slo = slo;
            slo.spec.scaling.mode = Mode::DryRun;
            all.push(DemoService {
                live,
                slo,
                mode,
                state: ControllerState::default(),
                next_evaluation: 0.0,
                history: VecDeque::new(),
                tallies: VecDeque::new(),
                burn_rate: None,
            });
        }
        let demo = Demo {
            services: Mutex::new(all),
            origin,
            snapshot: RwLock::new(Snapshot::default()),
        };
        demo.publish();
        Ok(demo)
    }

    /// Advances every service to simulated time `target`, evaluating each SLO
    /// at its interval on the way. Returns how many evaluations ran.
    pub fn advance(&self, target: f64) -> usize {
        let mut evaluations = 0;
        if let Ok(mut all) = self.services.lock() {
            for s in all.iter_mut() {
                let interval = s
                    .slo
                    .spec
                    .objectives
                    .evaluation_interval
                    .as_secs_f64()
                    .max(1.0);
                while s.next_evaluation <= target {
                    let at = s.next_evaluation;
                    self.run_until(s, at);
                    // The first evaluation waits for a minute of data.
                    if at >= 60.0 {
                        self.evaluate(s);
                        evaluations += 1;
                    }
                    s.next_evaluation = at + interval;
                }
                self.run_until(s, target);
            }
        }
        if evaluations > 0 {
            self.publish();
        }
        evaluations
    }

    fn run_until(&self, s: &mut DemoService, t: f64) {
        let LiveService {
            scenario,
            load_scale,
            sim,
            ..
        } = &mut s.live;
        let d = scenario.duration.max(1.0);
        sim.run_until(t, &|t: f64| scenario.rate(t % d) * *load_scale);
    }

    fn evaluate(&self, s: &mut DemoService) {
        let sim_t = s.live.sim.now();
        let name = s.slo.metadata.name.clone().unwrap_or_default();
        if sim_t >= HANDOVER && s.slo.spec.scaling.mode != s.mode {
            s.slo.spec.scaling.mode = s.mode;
            tracing::info!(slo = %name, mode = ?s.mode, "handing over: Governor now acts");
        }
        let obs = s.live.sim.observe();
        let current = Actuation {
            replicas: s.live.sim.replicas(),
            pool_size: Some(s.live.sim.pool_size()),
        };
        let (plan, next) = decide(
            &s.slo.spec,
            std::mem::take(&mut s.state),
            &obs,
            current,
            sim_t,
        );
        s.state = next;
        let _ = actuate::apply_now(
            &mut SimPort {
                sim: &mut s.live.sim,
            },
            actuate::Request::from_plan(&plan),
        );
        let tally = s.tally();
        let (budget, burn) = s.budget(&tally);
        s.burn_rate = burn;
        let now = self.origin + sim_t;
        let pass = Pass {
            spec: &s.slo.spec,
            generation: s.slo.metadata.generation,
            observation: &obs,
            plan: &plan,
            current,
            error_budget: budget.clone(),
            target: report::Reach {
                reason: governor_crds::conditions::reason::SCALE_SUBRESOURCE,
                message: format!("simulated service {name}"),
            },
            rules_refused: None,
            now: time(now),
        };
        let prev_log = s.slo.status.as_ref().map_or(&[][..], |p| &p.decisions[..]);
        for d in report::new_decisions(prev_log, &pass) {
            let knob = d.knob.label();
            let verb = if d.dry_run { "would change" } else { "changed" };
            tracing::info!(slo = %name, knob, from = d.from, to = d.to, dry_run = d.dry_run, "{verb} {knob}: {}", d.reason);
        }
        let status = report::status(s.slo.status.as_ref(), &pass);
        let state = status.objective_state;
        if s.slo
            .status
            .as_ref()
            .is_none_or(|p| p.objective_state != state)
        {
            tracing::info!(slo = %name, state = ?state, "objective state changed");
        }
        s.slo.status = Some(status);
        s.history.push_back(HistoryPoint {
            t: now,
            p50: obs.latency.p50,
            p90: obs.latency.p90,
            p99: obs.latency.p99,
            request_rate: obs.request_rate,
            error_rate: obs.error_rate,
            replicas: Some(f64::from(s.live.sim.replicas())),
            pool_size: Some(f64::from(s.live.sim.pool_size())),
            budget_remaining: budget.worst(),
        });
        while s
            .history
            .front()
            .is_some_and(|p| p.t < now - HISTORY_SECONDS)
        {
            s.history.pop_front();
        }
    }

    /// Rebuilds the snapshot viewers read, so requests never touch the simulation.
    fn publish(&self) {
        let views: Vec<SloView> = match self.services.lock() {
            Ok(all) => all
                .iter()
                .map(|s| SloView::from_resource(&s.slo, s.burn_rate))
                .collect(),
            Err(_) => return,
        };
        if let Ok(mut snap) = self.snapshot.write() {
            *snap = Snapshot {
                slos: Arc::new(views),
                warnings: Vec::new(),
                version: snap.version + 1,
            };
        }
    }

    fn with_service<T>(
        &self,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&DemoService) -> T,
    ) -> Option<T> {
        let all = self.services.lock().ok()?;
        all.iter()
            .find(|s| {
                s.slo.metadata.namespace.as_deref() == Some(namespace)
                    && s.slo.metadata.name.as_deref() == Some(name)
            })
            .map(f)
    }
}

/// The dashboard's read model over a running demo.
#[derive(Clone)]
pub struct DemoReader(pub Arc<Demo>);

impl ReadModel for DemoReader {
    async fn snapshot(&self) -> Snapshot {
        self.0
            .snapshot
            .read()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    async fn history(
        &self,
        namespace: &str,
        name: &str,
        range: Range,
    ) -> Result<Vec<HistoryPoint>, governor_dashboard::Error> {
        self.0
            .with_service(namespace, name, |s| {
                let newest = s.history.back().map_or(0.0, |p| p.t);
                s.history
                    .iter()
                    .filter(|p| p.t >= newest - range.seconds())
                    .copied()
                    .collect()
            })
            .ok_or_else(|| governor_dashboard::Error::not_found(namespace, name))
    }

    async fn slowest_traces(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<TraceRow>, governor_dashboard::Error> {
        let origin = self.0.origin;
        self.0
            .with_service(namespace, name, |s| {
                let mut recent: Vec<(f64, f32)> = s.live.sim.recent.iter().copied().collect();
                recent.sort_by(|a, b| b.1.total_cmp(&a.1));
                recent
                    .into_iter()
                    .take(10)
                    .map(|(end, latency)| TraceRow {
                        trace_id: String::new(),
                        operation: format!("{} {}", s.live.method, s.live.route),
                        start: origin + end - f64::from(latency),
                        duration: f64::from(latency),
                    })
                    .collect()
            })
            .ok_or_else(|| governor_dashboard::Error::not_found(namespace, name))
    }

    fn ready(&self) -> bool {
        self.0
            .snapshot
            .read()
            .is_ok_and(|s| s.slos.iter().any(|v| v.observed_at.is_some()))
    }
}

/// Advances the demo with the wall clock, `speed` simulated seconds per second.
pub fn spawn_clock(demo: Arc<Demo>, speed: f64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let demo = demo.clone();
            let target = started.elapsed().as_secs_f64() * speed;
            // The simulation is CPU work: keep it off the async workers.
            let _ = tokio::task::spawn_blocking(move || demo.advance(target)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::ConnectionBudget;

    #[test]
    fn the_audit_breach_is_visible_then_governor_brings_it_back() {
        use governor_crds::ObjectiveState::{Breached, Met};
        let demo = Demo::new(1, 1_800_000_000.0).unwrap();
        let (mut breached_while_watching, mut met_after) = (false, None);
        let mut t = 0.0;
        while t < 1500.0 {
            t += 15.0;
            demo.advance(t);
            let all = demo.services.lock().unwrap();
            for s in all.iter() {
                let name = s.slo.metadata.name.as_deref().unwrap();
                let budget = ConnectionBudget::of(&s.slo.spec).unwrap();
                let (replicas, pool) = (s.live.sim.replicas(), s.live.sim.pool_size());
                assert!(
                    budget.fits(replicas, pool) || t <= HANDOVER || s.mode == Mode::DryRun,
                    "{name} at {t}: {replicas} x {pool} connections over its budget {}",
                    budget.total()
                );
            }
            let api = all[0].slo.status.as_ref();
            let state = api.map(|s| s.objective_state);
            if t < HANDOVER {
                breached_while_watching |= state == Some(Breached);
                let decisions = api.map_or(0, |s| s.decisions.len());
                assert!(
                    api.is_none_or(|s| s.decisions.iter().all(|d| d.dry_run)),
                    "acted while watching"
                );
                assert_eq!(
                    all[0].live.sim.replicas(),
                    2,
                    "replicas changed in DryRun ({decisions} decisions)"
                );
            } else if met_after.is_none() && state == Some(Met) {
                met_after = Some(t);
            }
        }
        assert!(breached_while_watching, "the audit starts breached");
        let met = met_after.expect("the api never met its objectives after the handover");
        assert!(met <= HANDOVER + 300.0, "met only at {met} s");
        let all = demo.services.lock().unwrap();
        for s in all.iter() {
            let status = s.slo.status.as_ref().unwrap();
            let name = s.slo.metadata.name.as_deref().unwrap();
            if s.mode == Mode::DryRun {
                assert!(
                    status.decisions.iter().all(|d| d.dry_run),
                    "{name} acted in DryRun"
                );
                assert_eq!(
                    status.replicas.unwrap().current,
                    2,
                    "{name} changed in DryRun"
                );
            } else {
                assert!(
                    status.decisions.iter().any(|d| !d.dry_run),
                    "{name} never acted"
                );
                assert!(
                    status.replicas.unwrap().current >= 3,
                    "{name}: minReplicas is 3"
                );
            }
            // The objectives a cluster counts: voice's latency comes from
            // Jaeger, so only its error objective has a budget (and it had no
            // failed request); bookings' errors are raw PromQL.
            let ids: Vec<String> = status
                .objectives
                .iter()
                .map(|o| o.objective.clone())
                .collect();
            let expected: Vec<String> = crate::rules::budget_objectives(&s.slo)
                .into_iter()
                .map(|o| o.id)
                .collect();
            assert!(!ids.is_empty() && ids == expected, "{name}: {ids:?}");
            let jaeger = s.slo.spec.indicators.source == governor_crds::IndicatorSource::Jaeger;
            assert_eq!(jaeger, ids == ["errors"], "{name}: {ids:?}");
            let worst = status
                .objectives
                .iter()
                .filter_map(|o| o.error_budget_remaining)
                .reduce(f64::min);
            assert_eq!(status.error_budget_remaining, worst, "{name}");
            assert!(
                status
                    .error_budget_remaining
                    .is_some_and(|b| b <= 1.0 && b > 0.9 && (jaeger || b < 1.0)),
                "{name}: {:?}",
                status.error_budget_remaining
            );
        }
    }
}
