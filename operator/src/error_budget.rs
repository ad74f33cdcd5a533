//! The error budget: per objective, the share of the window's allowed bad
//! requests not yet spent, `1 - (bad / total) / allowed`; per SLO, the worst
//! objective. One formula for every path: the recording rule's PromQL, the
//! operator's direct query, and the demo's counters all go through here.

use governor_crds::ObjectiveBudget;

/// Share of an error budget left: 1 - (bad / total) / allowed. `None` without
/// traffic or without an allowance: no requests is an unknown budget, not a
/// full one.
pub fn remaining(bad: f64, total: f64, allowed: f64) -> Option<f64> {
    (total > 0.0 && total.is_finite() && allowed > 0.0 && bad.is_finite() && bad >= 0.0)
        .then(|| 1.0 - (bad / total) / allowed)
}

/// How fast a budget burns: the bad share over the allowed share; 1 spends it
/// exactly over the window.
pub fn burn_rate(bad: f64, total: f64, allowed: f64) -> Option<f64> {
    remaining(bad, total, allowed).map(|r| 1.0 - r)
}

/// The same formula in PromQL over two expressions of bad and total requests
/// (any unit, the same for both): absent where the total is 0 or absent.
pub fn promql(bad: &str, total: &str, allowed: f64) -> String {
    format!("1 - ({bad} / ({total} > 0)) / {allowed}")
}

/// The budgets of one SLO's objectives.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ErrorBudget {
    /// Every objective that has a budget, in the rules' order; a value is
    /// `None` while unknown.
    pub objectives: Vec<ObjectiveBudget>,
}

impl ErrorBudget {
    /// The worst objective's budget; `None` when no objective's is known.
    pub fn worst(&self) -> Option<f64> {
        self.objectives
            .iter()
            .filter_map(|o| o.error_budget_remaining.filter(|v| v.is_finite()))
            .reduce(f64::min)
    }

    /// Budgets from (objective, bad, total, allowed) counts, by `remaining`.
    pub fn from_counts<'a>(counts: impl IntoIterator<Item = (&'a str, f64, f64, f64)>) -> Self {
        Self {
            objectives: counts
                .into_iter()
                .map(|(objective, bad, total, allowed)| ObjectiveBudget {
                    objective: objective.to_string(),
                    error_budget_remaining: remaining(bad, total, allowed),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_formula_and_its_gaps() {
        assert_eq!(remaining(5.0, 1000.0, 0.01), Some(0.5));
        assert_eq!(remaining(0.0, 1000.0, 0.01), Some(1.0));
        assert_eq!(remaining(20.0, 1000.0, 0.01), Some(-1.0), "overspent");
        assert_eq!(
            remaining(0.0, 0.0, 0.01),
            None,
            "no traffic is not a full budget"
        );
        assert_eq!(remaining(f64::NAN, 10.0, 0.01), None);
        assert_eq!(remaining(1.0, 10.0, 0.0), None);
        assert_eq!(burn_rate(5.0, 1000.0, 0.01), Some(0.5));
        assert_eq!(
            promql("b", "t", 0.01),
            "1 - (b / (t > 0)) / 0.01",
            "the recording rule's text"
        );
    }

    #[test]
    fn the_worst_known_objective_is_the_slo_budget() {
        let b = ErrorBudget::from_counts([
            ("latency-p99", 5.0, 1000.0, 0.01),
            ("errors", 1.0, 1000.0, 0.001),
            ("latency-p50", 0.0, 0.0, 0.5),
        ]);
        assert_eq!(b.worst(), Some(0.0));
        assert_eq!(b.objectives[2].error_budget_remaining, None);
        assert_eq!(ErrorBudget::default().worst(), None);
    }
}
