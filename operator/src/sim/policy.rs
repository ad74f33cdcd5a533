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

/// Builds a policy by name for a scenario; `hpa-cpu:T` and `hpa-latency:F` name
/// an HPA setting (see [`HpaSetting::parse`]).
pub fn by_name(name: &str, scenario: &Scenario) -> Option<Box<dyn Policy>> {
    if let Some(setting) = HpaSetting::parse(name).ok().flatten() {
        return Some(Box::new(Hpa::with_setting(setting, scenario)));
    }
    Some(match name {
        "governor" => Box::new(Governor {
            spec: scenario.spec.clone(),
            state: ControllerState::default(),
        }),
        "static" => Box::new(Static { replicas: 2 }),
        "oracle" => Box::new(Oracle::new(scenario)),
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
        None if POLICIES.contains(&name) => Ok(name.to_string()),
        None => Err(format!(
            "unknown policy {name:?}; choose from: all, governor, hpa-cpu[:T], hpa-latency[:F], static, oracle"
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
