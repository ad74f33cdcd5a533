//! Headroom: the share of each latency target the replica count is planned
//! for. Fixed at 90 %; with `headroom.policy: BudgetAware`, moved by the error
//! budget's lead over its linear burn schedule, within the spec's bounds and at
//! a bounded pace, so that it never flaps.

use governor_crds::{HeadroomPolicy, ServiceLevelObjectiveSpec as Spec};

use super::LATENCY_MARGIN;
use crate::error_budget::BudgetPosition;

/// A lead of this share of the window's allowance plans at `aheadAim`.
pub const LEAD_FOR_AHEAD: f64 = 0.25;
/// A lag of this share plans at `behindAim`: headroom comes back faster than
/// it is given up.
pub const LAG_FOR_BEHIND: f64 = 0.1;
/// The aim rises (less headroom) at most this much per minute...
pub const RISE_PER_MINUTE: f64 = 0.01;
/// ... and falls (more headroom) at most this much per minute.
pub const FALL_PER_MINUTE: f64 = 0.05;
/// A new goal is taken up only when it is at least this far from the one
/// being followed: budget readings come in steps and jitter.
pub const DEAD_BAND: f64 = 0.01;

/// The aim in effect: the share of each latency target planned for, the goal
/// it moves towards, and when it was last worked out (seconds on the decision
/// clock).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aim {
    pub share: f64,
    pub goal: f64,
    pub at: f64,
}

impl Aim {
    /// The fixed aim, at rest, from `at`.
    pub fn fixed(at: f64) -> Self {
        Self {
            share: LATENCY_MARGIN,
            goal: LATENCY_MARGIN,
            at,
        }
    }
}

/// The headroom of one budget-aware pass.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadroomAim {
    /// Share of each latency target planned for.
    pub share: f64,
    /// The budget's lead over its linear burn schedule, when known.
    pub lead: Option<f64>,
    /// Why the aim is where it is, in words.
    pub why: String,
}

/// The spec's bounds on the aim: (behind, ahead), each within its documented
/// range and NaN read as the fixed aim, so a bad spec never plans above the
/// target or below the floor.
fn bounds(spec: &Spec) -> (f64, f64) {
    let h = spec.headroom.clone().unwrap_or_default();
    let within = |v: f64, lo: f64, hi: f64| {
        if v.is_finite() {
            v.clamp(lo, hi)
        } else {
            LATENCY_MARGIN
        }
    };
    (
        within(h.behind_aim, 0.5, LATENCY_MARGIN),
        within(h.ahead_aim, LATENCY_MARGIN, 1.0),
    )
}

/// Where the aim heads for at `lead`: the fixed aim on schedule, `ahead` at a
/// lead of [`LEAD_FOR_AHEAD`] or more, `behind` at a lag of
/// [`LAG_FOR_BEHIND`] or more, linear in between.
pub fn goal(lead: f64, behind: f64, ahead: f64) -> f64 {
    if lead >= 0.0 {
        LATENCY_MARGIN + (ahead - LATENCY_MARGIN) * (lead / LEAD_FOR_AHEAD).min(1.0)
    } else {
        LATENCY_MARGIN - (LATENCY_MARGIN - behind) * (-lead / LAG_FOR_BEHIND).min(1.0)
    }
}

/// The pressure (observed / target) that marks the knee at `aim`, from the
/// one at the fixed aim: in the same proportion to the aim, so running
/// closer to the target is not read as a knee.
pub fn knee_pressure(at_fixed: f64, aim: f64) -> f64 {
    at_fixed * aim / LATENCY_MARGIN
}

/// The aim of this pass, from the one before; `None` for the fixed policy
/// (the plan then uses [`LATENCY_MARGIN`] and keeps no state). Without a
/// budget position the aim is never above the fixed one: it drops to it at
/// once, and climbs back to it from below at the usual pace.
pub(super) fn aim(
    spec: &Spec,
    position: Option<BudgetPosition>,
    prev: Option<Aim>,
    now: f64,
) -> Option<(HeadroomAim, Aim)> {
    let policy = spec.headroom.as_ref().map(|h| h.policy);
    if policy != Some(HeadroomPolicy::BudgetAware) {
        return None;
    }
    let (behind, ahead) = bounds(spec);
    let prev = prev
        .filter(|a| a.share.is_finite() && a.goal.is_finite() && a.at.is_finite() && a.at <= now)
        .unwrap_or(Aim::fixed(now));
    let from = prev.share.clamp(behind, ahead);
    let lead = position.map(|p| p.lead());
    let wanted = lead.map_or(LATENCY_MARGIN, |l| goal(l, behind, ahead));
    // Hysteresis: keep following the goal taken up until the wanted one is a
    // dead band away from it; without a budget, the fixed aim at once.
    let target = if lead.is_none() || (wanted - prev.goal).abs() >= DEAD_BAND {
        wanted
    } else {
        prev.goal.clamp(behind, ahead)
    };
    let minutes = (now - prev.at).max(0.0) / 60.0;
    let share = if lead.is_none() && from > LATENCY_MARGIN {
        LATENCY_MARGIN
    } else if target > from {
        (from + RISE_PER_MINUTE * minutes).min(target)
    } else {
        (from - FALL_PER_MINUTE * minutes).max(target)
    };
    let why = describe(share, lead);
    let next = Aim {
        share,
        goal: target,
        at: now,
    };
    Some((HeadroomAim { share, lead, why }, next))
}

/// "planned at 95.5 % of each latency target: the error budget is 31 % of
/// the window's allowance ahead of its linear burn schedule".
fn describe(share: f64, lead: Option<f64>) -> String {
    let position = match lead {
        None => "the error budget is unknown, so never less headroom than the fixed 10 %".into(),
        Some(l) if l >= 0.0 => format!(
            "the error budget is {:.0} % of the window's allowance ahead of its linear burn schedule",
            l * 100.0
        ),
        Some(l) => format!(
            "the error budget is {:.0} % of the window's allowance behind its linear burn schedule",
            -l * 100.0
        ),
    };
    format!(
        "planned at {:.1} % of each latency target: {position}",
        share * 100.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testing::SpecBuilder;

    fn spec() -> Spec {
        let mut spec = SpecBuilder::new().p99("100ms").replicas(1, 50).build();
        spec.headroom = Some(governor_crds::Headroom {
            policy: HeadroomPolicy::BudgetAware,
            ahead_aim: 0.97,
            behind_aim: 0.8,
        });
        spec
    }

    fn at(remaining: f64, elapsed: f64) -> Option<BudgetPosition> {
        BudgetPosition::new(remaining, elapsed)
    }

    /// The aim after `minutes` of passes every 15 s at one budget position.
    fn settle(
        spec: &Spec,
        position: Option<BudgetPosition>,
        start: Option<Aim>,
        minutes: u32,
    ) -> Aim {
        let mut state = start;
        let t0 = start.map_or(0.0, |a| a.at);
        for i in 0..=minutes * 4 {
            let now = t0 + 15.0 * f64::from(i);
            state = aim(spec, position, state, now).map(|(_, a)| a);
        }
        state.expect("budget-aware keeps an aim")
    }

    #[test]
    fn ahead_aims_closer_to_the_target_behind_further_and_unknown_at_the_fixed_aim() {
        let spec = spec();
        let after = |position| settle(&spec, position, None, 30).share;
        let (ahead, behind, unknown) = (after(at(0.8, 0.5)), after(at(-0.5, 0.5)), after(None));
        assert!(ahead > LATENCY_MARGIN && ahead <= 1.0, "ahead: {ahead}");
        assert!(behind < LATENCY_MARGIN, "behind: {behind}");
        // No reading is not a full budget: missing data is never read as zero spent.
        assert_eq!(unknown, LATENCY_MARGIN);
        // The knee moves with the aim, and is the fixed one at the fixed aim.
        assert!(knee_pressure(0.8, ahead) > 0.8 && knee_pressure(0.8, behind) < 0.8);
        assert!((knee_pressure(0.8, LATENCY_MARGIN) - 0.8).abs() < 1e-12);
    }

    #[test]
    fn the_fixed_policy_keeps_no_aim() {
        let fixed = SpecBuilder::new().p99("100ms").build();
        assert_eq!(aim(&fixed, at(0.9, 1.0), None, 0.0), None);
    }

    #[test]
    fn ahead_of_schedule_the_aim_rises_to_the_ahead_aim_and_no_further() {
        let spec = spec();
        // A third of the window gone, 90 % of the budget left: 30 % ahead.
        let a = settle(&spec, at(0.9, 1.0 / 3.0), None, 30);
        assert!((a.share - 0.97).abs() < 1e-9, "{a:?}");
        // Less ahead: between the fixed aim and the ahead aim.
        let half = settle(&spec, at(0.5, 0.25), None, 30);
        let want = 0.9 + 0.07 * 0.125 / LEAD_FOR_AHEAD;
        assert!(
            half.share < 0.97 && (half.share - want).abs() <= DEAD_BAND,
            "{half:?}"
        );
        // Never above the target itself, whatever the spec says.
        let mut over = spec.clone();
        over.headroom.as_mut().unwrap().ahead_aim = 1.4;
        assert!(settle(&over, at(1.0, 1.0), None, 60).share <= 1.0);
    }

    #[test]
    fn behind_schedule_the_aim_falls_to_the_behind_aim_and_no_further() {
        let spec = spec();
        let a = settle(&spec, at(-0.3, 1.0), None, 10);
        assert!((a.share - 0.8).abs() < 1e-9, "{a:?}");
        let mut under = spec.clone();
        under.headroom.as_mut().unwrap().behind_aim = f64::NAN;
        assert_eq!(settle(&under, at(-1.0, 1.0), None, 10).share, 0.9);
        under.headroom.as_mut().unwrap().behind_aim = 0.1;
        assert_eq!(
            settle(&under, at(-1.0, 1.0), None, 30).share,
            0.5,
            "the floor"
        );
    }

    #[test]
    fn a_missing_budget_is_never_ahead() {
        let spec = spec();
        let ahead = Aim {
            share: 0.97,
            goal: 0.97,
            at: 0.0,
        };
        let (h, a) = aim(&spec, None, Some(ahead), 15.0).unwrap();
        assert_eq!(a.share, 0.9, "back to the fixed aim at once");
        assert_eq!(h.lead, None);
        assert!(h.why.contains("unknown"), "{}", h.why);
        // From behind, the extra headroom is given up at the usual pace.
        let behind = Aim {
            share: 0.8,
            goal: 0.8,
            at: 0.0,
        };
        let (_, a) = aim(&spec, None, Some(behind), 60.0).unwrap();
        assert!((a.share - 0.81).abs() < 1e-9, "{a:?}");
        // A broken reading is no reading.
        assert_eq!(at(f64::NAN, 0.5), None);
    }

    #[test]
    fn the_aim_moves_at_a_bounded_pace_and_holds_within_the_dead_band() {
        let spec = spec();
        let start = Aim::fixed(0.0);
        // One minute at a full lead: at most RISE_PER_MINUTE.
        let (_, a) = aim(&spec, at(1.0, 1.0), Some(start), 60.0).unwrap();
        assert!((a.share - 0.91).abs() < 1e-9, "{a:?}");
        // Falling is faster, but bounded too.
        let high = Aim {
            share: 0.97,
            goal: 0.97,
            at: 0.0,
        };
        let (_, a) = aim(&spec, at(-1.0, 1.0), Some(high), 60.0).unwrap();
        assert!((a.share - 0.92).abs() < 1e-9, "{a:?}");
        // A goal within the dead band leaves the aim where it is: a budget
        // that jitters around a position does not move it back and forth.
        let mut near = Aim {
            share: 0.95,
            goal: 0.95,
            at: 0.0,
        };
        for (i, lead) in [0.18, 0.2, 0.17, 0.19, 0.2].into_iter().enumerate() {
            let now = 15.0 * (i + 1) as f64;
            near = aim(&spec, at(lead, 1.0), Some(near), now).unwrap().1;
            assert_eq!(
                near.share,
                0.95,
                "lead {lead}: goal {}",
                goal(lead, 0.8, 0.97)
            );
        }
        // A goal a dead band away is taken up and followed all the way.
        let far = settle(&spec, at(0.25, 1.0), Some(near), 10);
        assert!((far.share - 0.97).abs() < 1e-9, "{far:?}");
        // A clock that went backwards restarts from the fixed aim, unmoved.
        let future = Aim {
            share: 0.97,
            goal: 0.97,
            at: 1e9,
        };
        let (_, a) = aim(&spec, at(1.0, 1.0), Some(future), 15.0).unwrap();
        assert_eq!(a.share, 0.9);
    }

    #[test]
    fn the_reason_says_which_way_and_how_far() {
        let spec = spec();
        let (h, _) = aim(
            &spec,
            at(0.6, 0.5),
            Some(Aim {
                share: 0.95,
                goal: 0.95,
                at: 15.0,
            }),
            15.0,
        )
        .unwrap();
        assert_eq!(
            h.why,
            "planned at 95.0 % of each latency target: the error budget is 30 % of the window's allowance ahead of its linear burn schedule"
        );
        let (h, _) = aim(
            &spec,
            at(-0.2, 1.0),
            Some(Aim {
                share: 0.85,
                goal: 0.85,
                at: 0.0,
            }),
            15.0,
        )
        .unwrap();
        assert!(
            h.why.contains("20 % of the window's allowance behind"),
            "{}",
            h.why
        );
    }
}
