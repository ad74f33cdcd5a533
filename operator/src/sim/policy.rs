//! The policies compared in `governor simulate`: Governor itself and the
//! baselines SREs use today, driven through the same actuation port.

use std::collections::VecDeque;

use crate::actuate::Request;
use crate::decide::{Actuation, ConnectionBudget, ControllerState, decide};
use crate::observe::Observation;
use crate::queueing::mmc_wait_quantile;

use super::scenario::Scenario;

/// What a policy asks for at one evaluation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Action {
    pub request: Request,
    pub bottleneck: Option<String>,
    /// Apply at once, with warm caches (the oracle only).
    pub instant: bool,
}

pub trait Policy {
    fn name(&self) -> &'static str;
    /// Called every evaluation interval with what the service shows.
    fn evaluate(&mut self, obs: &Observation, current: Actuation, now: f64) -> Action;
}

pub const POLICIES: [&str; 5] = ["governor", "hpa-cpu", "hpa-latency", "static", "oracle"];

/// Policies run by name only, not with "all".
pub const EXTRA_POLICIES: [&str; 1] = [BUDGET_AWARE];

/// Governor with `headroom.policy: BudgetAware` (the spec's default aims).
pub const BUDGET_AWARE: &str = "governor-budget-aware";

/// Builds a policy by name for a scenario.
pub fn by_name(name: &str, scenario: &Scenario) -> Option<Box<dyn Policy>> {
    Some(match name {
        "governor" => Box::new(Governor {
            spec: scenario.spec.clone(),
            state: ControllerState::default(),
        }),
        "hpa-cpu" => Box::new(Hpa::new(HpaMetric::Cpu { target: 0.7 }, scenario)),
        "hpa-latency" => {
            let target = scenario
                .spec
                .objectives
                .latency
                .p99
                .map_or(0.1, |l| l.as_secs_f64());
            Box::new(Hpa::new(HpaMetric::P99 { target }, scenario))
        }
        BUDGET_AWARE => Box::new(Governor {
            spec: governor_crds::ServiceLevelObjectiveSpec {
                headroom: Some(governor_crds::Headroom {
                    policy: governor_crds::HeadroomPolicy::BudgetAware,
                    ..governor_crds::Headroom::default()
                }),
                ..scenario.spec.clone()
            },
            state: ControllerState::default(),
        }),
        "static" => Box::new(Static { replicas: 2 }),
        "oracle" => Box::new(Oracle::new(scenario)),
        _ => return None,
    })
}

/// Governor's decision engine.
pub struct Governor {
    pub spec: governor_crds::ServiceLevelObjectiveSpec,
    pub state: ControllerState,
}

impl Policy for Governor {
    fn name(&self) -> &'static str {
        let policy = self.spec.headroom.as_ref().map(|h| h.policy);
        if policy == Some(governor_crds::HeadroomPolicy::BudgetAware) {
            BUDGET_AWARE
        } else {
            "governor"
        }
    }
    fn evaluate(&mut self, obs: &Observation, current: Actuation, now: f64) -> Action {
        let (plan, next) = decide(
            &self.spec,
            std::mem::take(&mut self.state),
            obs,
            current,
            now,
        );
        self.state = next;
        Action {
            request: Request::from_plan(&plan),
            bottleneck: plan.bottleneck,
            instant: false,
        }
    }
}

/// Fixed replicas: the audit's two instances.
pub struct Static {
    pub replicas: u32,
}

impl Policy for Static {
    fn name(&self) -> &'static str {
        "static"
    }
    fn evaluate(&mut self, _: &Observation, current: Actuation, _: f64) -> Action {
        Action {
            request: Request {
                replicas: (current.replicas != self.replicas).then_some(self.replicas),
                ..Request::default()
            },
            ..Action::default()
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum HpaMetric {
    /// Mean CPU utilization of ready pods against a target.
    Cpu { target: f64 },
    /// Observed P99 (seconds) against a target, as KEDA's Prometheus scaler drives it.
    P99 { target: f64 },
}

/// The Kubernetes HPA algorithm (v2 defaults): 10 % tolerance, 300 s scale-down
/// stabilization, scale-up by max(100 %, 4 pods) per 15 s, scale-down by 100 %
/// per 15 s; not-yet-ready pods count as 0 % when scaling up; missing metrics
/// change nothing.
pub struct Hpa {
    metric: HpaMetric,
    min: u32,
    max: u32,
    recommendations: VecDeque<(f64, u32)>,
    history: VecDeque<(f64, u32)>,
}

impl Hpa {
    pub fn new(metric: HpaMetric, scenario: &Scenario) -> Self {
        Self {
            metric,
            min: scenario.spec.scaling.min_replicas.max(1) as u32,
            max: scenario.spec.scaling.max_replicas.max(1) as u32,
            recommendations: VecDeque::new(),
            history: VecDeque::new(),
        }
    }
}

impl Policy for Hpa {
    fn name(&self) -> &'static str {
        match self.metric {
            HpaMetric::Cpu { .. } => "hpa-cpu",
            HpaMetric::P99 { .. } => "hpa-latency",
        }
    }

    fn evaluate(&mut self, obs: &Observation, current: Actuation, now: f64) -> Action {
        let obs = obs.sanitized();
        let cur = current.replicas;
        let ready = obs.ready_replicas.unwrap_or(cur).min(cur);
        let ratio = match self.metric {
            HpaMetric::Cpu { target } => obs.cpu_utilization.map(|u| u / target),
            HpaMetric::P99 { target } => obs.latency.p99.map(|p| p / target),
        };
        let Some(mut ratio) = ratio else {
            return Action::default();
        };
        let tolerance = 0.1;
        let mut desired = cur;
        if (ratio - 1.0).abs() > tolerance {
            if ratio > 1.0 && ready < cur {
                // Unready pods are assumed to use nothing while scaling up.
                ratio = ratio * f64::from(ready) / f64::from(cur);
                if ratio <= 1.0 + tolerance {
                    ratio = 1.0;
                }
            }
            if (ratio - 1.0).abs() > tolerance {
                let basis = if ratio > 1.0 { cur } else { ready.max(1) };
                desired = (ratio * f64::from(basis)).ceil() as u32;
            }
        }
        // Scale-down stabilization: the highest recommendation in 300 s.
        self.recommendations.push_back((now, desired));
        while self
            .recommendations
            .front()
            .is_some_and(|&(t, _)| t < now - 300.0)
        {
            self.recommendations.pop_front();
        }
        if desired < cur {
            desired = self
                .recommendations
                .iter()
                .map(|r| r.1)
                .max()
                .unwrap_or(desired)
                .min(cur);
        }
        // Scale-up policies: max(100 %, 4 pods) per 15 s.
        self.history.retain(|&(t, _)| t >= now - 15.0);
        let base = self
            .history
            .iter()
            .map(|h| h.1)
            .min()
            .unwrap_or(cur)
            .min(cur);
        let up_limit = base + (base).max(4);
        desired = desired.min(up_limit).clamp(self.min, self.max);
        if desired != cur {
            self.history.push_back((now, cur));
            return Action {
                request: Request {
                    replicas: Some(desired),
                    ..Request::default()
                },
                ..Action::default()
            };
        }
        Action::default()
    }
}

/// A lower bound on cost: each minute, the fewest replicas that meet the targets
/// at that minute's peak load, by the service's true parameters, applied at once
/// with warm caches.
pub struct Oracle {
    schedule: Vec<u32>,
    pools: Vec<u32>,
}

impl Oracle {
    pub fn new(s: &Scenario) -> Self {
        let m = &s.model;
        // Warm service times, by Monte Carlo with a fixed seed.
        use rand::{Rng, SeedableRng};
        use rand_distr::{Distribution, LogNormal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let ln = |mean: f64| {
            LogNormal::new(mean.ln() - m.sigma * m.sigma / 2.0, m.sigma).expect("lognormal")
        };
        let (cpu, db) = (ln(m.cpu_time), ln(m.db_time * m.miss_penalty));
        let mut samples: Vec<f64> = (0..50_000)
            .map(|_| {
                let c = cpu.sample(&mut rng);
                if rng.random::<f64>() < m.cache_max {
                    c
                } else {
                    c + db.sample(&mut rng)
                }
            })
            .collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / samples.len() as f64;
        // Allen-Cunneen: M/G/c waits are M/M/c waits scaled by (1 + CV^2) / 2.
        let scale = (1.0 + var / (mean * mean)) / 2.0;
        samples.sort_by(f64::total_cmp);
        let targets = s.spec.objectives.latency.targets();
        let min = s.spec.scaling.min_replicas.max(1) as u32;
        let max = s.spec.scaling.max_replicas.max(1) as u32;
        let budget = ConnectionBudget::of(&s.spec).unwrap_or(ConnectionBudget::new(u32::MAX));
        let minutes = (s.duration / 60.0).ceil() as usize;
        let mut schedule = Vec::with_capacity(minutes);
        let mut pools = Vec::with_capacity(minutes);
        for minute in 0..minutes {
            let peak = (0..=60)
                .map(|sec| s.rate(minute as f64 * 60.0 + f64::from(sec)))
                .fold(0.0, f64::max);
            let mut n = max;
            for candidate in min..=max {
                let per = peak / f64::from(candidate);
                let ok = targets.iter().all(|(q, t)| {
                    let q = &q.value();
                    let base =
                        samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
                    base + scale * mmc_wait_quantile(m.workers, per, 1.0 / mean, *q)
                        <= t.as_secs_f64()
                });
                if ok {
                    n = candidate;
                    break;
                }
            }
            schedule.push(n);
            pools.push(budget.pool_limit(n).min(50));
        }
        Self { schedule, pools }
    }
}

impl Policy for Oracle {
    fn name(&self) -> &'static str {
        "oracle"
    }
    fn evaluate(&mut self, _: &Observation, current: Actuation, now: f64) -> Action {
        // Looks one interval ahead: perfect foresight.
        let minute = (((now + 15.0) / 60.0) as usize).min(self.schedule.len().saturating_sub(1));
        let n = self
            .schedule
            .get(minute)
            .copied()
            .unwrap_or(current.replicas);
        let pool = self.pools.get(minute).copied();
        Action {
            request: Request {
                replicas: (n != current.replicas).then_some(n),
                pool_size: pool.filter(|p| Some(*p) != current.pool_size),
                warm_up: false,
            },
            bottleneck: None,
            instant: true,
        }
    }
}
