//! The policies compared in `governor simulate`: Governor itself and the
//! baselines SREs use today, driven through the same actuation port.

use std::collections::VecDeque;

use crate::actuate::Request;
use crate::decide::{Actuation, ControllerState, decide};
use crate::observe::Observation;

use super::scenario::Scenario;

/// What a policy asks for at one evaluation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Action {
    pub request: Request,
    pub bottleneck: Option<String>,
}

pub trait Policy {
    fn name(&self) -> &'static str;
    /// Called every evaluation interval with what the service shows.
    fn evaluate(&mut self, obs: &Observation, current: Actuation, now: f64) -> Action;
}

pub const POLICIES: [&str; 5] = ["governor", "hpa-cpu", "hpa-latency", "static", "oracle"];

/// Builds a policy by name for a scenario; the oracle is planned per seed
/// (`super::oracle`), so it is not built here.
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
        "static" => Box::new(Static { replicas: 2 }),
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
        "governor"
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
