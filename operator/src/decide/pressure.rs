//! Pressure: how close each objective is (observed / target), the objective
//! state that follows, and the worst objective in words for the reasons.

use governor_crds::{AT_RISK_RATIO, ObjectiveState};

use super::{Pass, ms};

/// Observed / target of the objective nearest its target.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Pressure {
    /// The highest observed / target; over 1 is a breach, 0 without data.
    pub value: f64,
    /// The latency objective with the highest pressure: (name, observed, target).
    worst_latency: Option<(&'static str, f64, f64)>,
    /// The error rate, when breached and worse than any latency: (observed, target).
    worst_error: Option<(f64, f64)>,
}

impl Pressure {
    pub fn of(pass: &Pass) -> Self {
        let mut p = Self::default();
        for &(q, target) in &pass.targets {
            let name = q.name();
            if let Some(v) = pass.obs.latency.get(q) {
                let ratio = v / target.as_secs_f64().max(1e-9);
                if ratio > p.value {
                    p.value = ratio;
                    p.worst_latency = Some((name, v, target.as_secs_f64()));
                }
            }
        }
        if let (Some(err), Some(target)) = (pass.obs.error_rate, pass.spec.objectives.error_rate)
            && err / target > p.value
            && err > target
        {
            p.value = err / target;
            p.worst_error = Some((err, target));
        }
        p
    }

    /// An objective is over its target.
    pub fn breached(&self) -> bool {
        self.value > 1.0
    }

    pub fn state(&self) -> ObjectiveState {
        if self.breached() {
            ObjectiveState::Breached
        } else if self.value > AT_RISK_RATIO {
            ObjectiveState::AtRisk
        } else {
            ObjectiveState::Met
        }
    }

    /// The worst objective in words, e.g. "p99 180ms vs target 100ms".
    pub fn describe_worst(&self) -> String {
        match (self.worst_error, self.worst_latency) {
            (Some((err, target)), _) => format!(
                "error rate {:.2}% vs target {:.2}%",
                err * 100.0,
                target * 100.0
            ),
            (None, Some((name, v, t))) => format!("{name} {} vs target {}", ms(v), ms(t)),
            (None, None) => "no objective breached".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testing::{SpecBuilder, healthy};

    fn pressure(p99: f64, errors: f64) -> Pressure {
        let spec = SpecBuilder::new()
            .p50("50ms")
            .p99("100ms")
            .error_rate(0.01)
            .build();
        let mut obs = healthy(0.0);
        obs.latency.p50 = Some(0.02);
        obs.latency.p99 = Some(p99);
        obs.error_rate = Some(errors);
        Pressure::of(&Pass::at(&spec, &obs, 3, None, 0.0))
    }

    #[test]
    fn the_worst_objective_sets_the_pressure() {
        let p = pressure(0.08, 0.0);
        assert!((p.value - 0.8).abs() < 1e-9, "{p:?}");
        assert_eq!(p.describe_worst(), "p99 80ms vs target 100ms");
        let p = pressure(0.18, 0.0);
        assert!(p.breached());
        assert_eq!(p.describe_worst(), "p99 180ms vs target 100ms");
        // Errors at 3x their target are worse than latency at 1.8x.
        let p = pressure(0.18, 0.03);
        assert!((p.value - 3.0).abs() < 1e-9);
        assert_eq!(p.describe_worst(), "error rate 3.00% vs target 1.00%");
    }

    #[test]
    fn state_follows_the_shared_at_risk_ratio() {
        assert_eq!(AT_RISK_RATIO, 0.9);
        assert_eq!(pressure(0.085, 0.0).state(), ObjectiveState::Met);
        assert_eq!(pressure(0.095, 0.0).state(), ObjectiveState::AtRisk);
        assert_eq!(pressure(0.1, 0.0).state(), ObjectiveState::AtRisk);
        assert_eq!(pressure(0.11, 0.0).state(), ObjectiveState::Breached);
        assert_eq!(Pressure::default().state(), ObjectiveState::Met);
        assert_eq!(
            Pressure::default().describe_worst(),
            "no objective breached"
        );
    }
}
