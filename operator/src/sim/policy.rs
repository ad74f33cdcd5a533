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

/// Policies run by name only, not with "all".
pub const EXTRA_POLICIES: [&str; 1] = [BUDGET_AWARE];

/// Governor with `headroom.policy: BudgetAware` (the spec's default aims).
pub const BUDGET_AWARE: &str = "governor-budget-aware";

/// Builds a policy by name for a scenario; `hpa-cpu:T` and `hpa-latency:F` name
/// an HPA setting (see [`HpaSetting::parse`]). The oracle is planned per seed
/// (`super::oracle`), so it is not built here.
pub fn by_name(name: &str, scenario: &Scenario) -> Option<Box<dyn Policy>> {
    if let Some(setting) = HpaSetting::parse(name).ok().flatten() {
        return Some(Box::new(Hpa::with_setting(setting, scenario)));
    }
    Some(match name {
        "governor" => Box::new(Governor {
            spec: scenario.spec.clone(),
            state: ControllerState::default(),
        }),
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
        _ => return None,
    })
}

/// Checks a policy name and returns it as the figures name it: plain names as
/// given, a spelled setting with its number in the shortest form
/// (`hpa-cpu:50.0` is `hpa-cpu:50`).
pub fn canonical_name(name: &str) -> Result<String, String> {
    match HpaSetting::parse(name)? {
        Some(setting) if name.contains(':') => Ok(setting.to_string()),
        Some(_) => Ok(name.to_string()),
        None if POLICIES.contains(&name) || EXTRA_POLICIES.contains(&name) => Ok(name.to_string()),
        None => Err(format!(
            "unknown policy {name:?}; choose from: all, governor, hpa-cpu[:T], hpa-latency[:F], static, oracle, {BUDGET_AWARE}"
        )),
    }
}

/// An HPA baseline's setting, as `--policy` spells it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HpaSetting {
    /// `hpa-cpu:T`: the CPU target in percent (plain `hpa-cpu` is 70).
    Cpu(f64),
    /// `hpa-latency:F`: the P99 threshold as a fraction of the P99 target
    /// (plain `hpa-latency` is 1, the target itself).
    Latency(f64),
}

impl HpaSetting {
    /// Parses `hpa-cpu[:T]` (0 < T <= 100) and `hpa-latency[:F]` (0 < F <= 10);
    /// `Ok(None)` for a name of another policy.
    pub fn parse(name: &str) -> Result<Option<Self>, String> {
        let (kind, value) = match name.split_once(':') {
            Some((kind, value)) => (kind, Some(value)),
            None => (name, None),
        };
        let number = |what: &str, low: f64, high: f64, default: f64| -> Result<f64, String> {
            let Some(text) = value else {
                return Ok(default);
            };
            match text.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v > low && v <= high => Ok(v),
                _ => Err(format!(
                    "{name:?}: {what} must be a number above {low} and at most {high}, found {text:?}"
                )),
            }
        };
        match kind {
            "hpa-cpu" => {
                number("the CPU target (percent)", 0.0, 100.0, 70.0).map(|t| Some(Self::Cpu(t)))
            }
            "hpa-latency" => number(
                "the P99 threshold (a fraction of the P99 target)",
                0.0,
                10.0,
                1.0,
            )
            .map(|f| Some(Self::Latency(f))),
            _ if value.is_some() && POLICIES.contains(&kind) => Err(format!(
                "{name:?}: only hpa-cpu and hpa-latency take a setting after ':'"
            )),
            _ => Ok(None),
        }
    }
}

impl std::fmt::Display for HpaSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu(t) => write!(f, "hpa-cpu:{t}"),
            Self::Latency(x) => write!(f, "hpa-latency:{x}"),
        }
    }
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
    /// The HPA at a setting, against the scenario's P99 target (100 ms without one).
    pub fn with_setting(setting: HpaSetting, scenario: &Scenario) -> Self {
        let metric = match setting {
            HpaSetting::Cpu(percent) => HpaMetric::Cpu {
                target: percent / 100.0,
            },
            HpaSetting::Latency(fraction) => {
                let target = scenario
                    .spec
                    .objectives
                    .latency
                    .p99
                    .map_or(0.1, |l| l.as_secs_f64());
                HpaMetric::P99 {
                    target: fraction * target,
                }
            }
        };
        Self::new(metric, scenario)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpa_settings_parse_with_the_old_names_kept() {
        assert_eq!(
            HpaSetting::parse("hpa-cpu"),
            Ok(Some(HpaSetting::Cpu(70.0)))
        );
        assert_eq!(
            HpaSetting::parse("hpa-latency"),
            Ok(Some(HpaSetting::Latency(1.0)))
        );
        assert_eq!(
            HpaSetting::parse("hpa-cpu:50"),
            Ok(Some(HpaSetting::Cpu(50.0)))
        );
        assert_eq!(
            HpaSetting::parse("hpa-latency:0.8"),
            Ok(Some(HpaSetting::Latency(0.8)))
        );
        assert_eq!(HpaSetting::parse("governor"), Ok(None));
        assert_eq!(canonical_name("hpa-cpu").unwrap(), "hpa-cpu");
        assert_eq!(canonical_name("hpa-cpu:50.0").unwrap(), "hpa-cpu:50");
        assert_eq!(
            canonical_name("hpa-latency:0.50").unwrap(),
            "hpa-latency:0.5"
        );
        assert_eq!(canonical_name("oracle").unwrap(), "oracle");
    }

    #[test]
    fn bad_settings_are_refused_with_the_value() {
        for (name, says) in [
            ("hpa-cpu:0", "above 0"),
            ("hpa-cpu:abc", "\"abc\""),
            ("hpa-cpu:", "found \"\""),
            ("hpa-cpu:101", "at most 100"),
            ("hpa-cpu:NaN", "CPU target"),
            ("hpa-latency:-1", "\"-1\""),
            ("hpa-latency:inf", "P99 threshold"),
            ("static:3", "only hpa-cpu and hpa-latency"),
            ("keda", "unknown policy \"keda\""),
            ("keda:3", "unknown policy"),
        ] {
            let err = canonical_name(name).expect_err(name);
            assert!(err.contains(says), "{name}: {err}");
        }
    }

    #[test]
    fn a_setting_sets_the_hpa_target() {
        let scenario = Scenario::built_in("audit").unwrap();
        let cpu = Hpa::with_setting(HpaSetting::Cpu(50.0), &scenario);
        assert!(matches!(cpu.metric, HpaMetric::Cpu { target } if (target - 0.5).abs() < 1e-12));
        let p99 = Hpa::with_setting(HpaSetting::Latency(0.8), &scenario);
        // The audit's P99 target is 100 ms.
        assert!(matches!(p99.metric, HpaMetric::P99 { target } if (target - 0.08).abs() < 1e-12));
    }
}
