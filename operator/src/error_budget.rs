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

/// Where an SLO's error budget stands in its window, for budget-aware
/// headroom: the budget as read (a ratio over the window's requests so far)
/// and how much of the window has passed.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct BudgetPosition {
    /// The worst objective's budget left, `1 - (bad / total) / allowed` over
    /// the requests of the window so far; below 0 when overspent.
    pub remaining: f64,
    /// Share of the window passed, in (0, 1]: 1 once the window is full.
    pub elapsed: f64,
}

impl BudgetPosition {
    /// A position from finite values, `elapsed` clamped to (0, 1]; `None`
    /// otherwise, so a missing or broken reading is never a budget ahead.
    pub fn new(remaining: f64, elapsed: f64) -> Option<Self> {
        (remaining.is_finite() && elapsed.is_finite() && elapsed > 0.0).then(|| Self {
            remaining,
            elapsed: elapsed.min(1.0),
        })
    }

    /// How far the budget is ahead of its linear burn schedule, as a share of
    /// the whole window's allowance (negative: behind). Spending at the rate
    /// read so far, `(1 - remaining) x elapsed` of the allowance is gone; the
    /// schedule leaves `1 - elapsed`, so the lead is `remaining x elapsed`.
    pub fn lead(&self) -> f64 {
        self.remaining * self.elapsed
    }
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
    fn the_lead_over_the_linear_schedule() {
        // A third of the window gone, a tenth of the allowed share bad: 1/30
        // of the allowance spent where the schedule spent 1/3.
        let p = BudgetPosition::new(0.9, 1.0 / 3.0).unwrap();
        assert!((p.lead() - 0.3).abs() < 1e-12, "{}", p.lead());
        assert!(BudgetPosition::new(-0.5, 2.0).unwrap().lead() < 0.0);
        assert_eq!(BudgetPosition::new(f64::NAN, 0.5), None);
        assert_eq!(BudgetPosition::new(0.5, 0.0), None, "no window passed");
        assert_eq!(BudgetPosition::new(0.5, f64::INFINITY), None);
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
