//! Report: the status Governor writes back after each decision — observed
//! signals, error budget, current and desired values, conditions and the
//! bounded decision log. Pure: the operator and `governor demo` share it.

use governor_crds::conditions::{FALSE, TRUE, kind, reason};
use governor_crds::{
    CurrentDesired, DECISION_LOG_LIMIT, Decision, HeadroomStatus, Knob, Latency, ObjectiveState,
    ObservedSignals, ServiceLevelObjectiveSpec as Spec, ServiceLevelObjectiveStatus as Status,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::decide::{Actuation, Plan, connection_budget};
use crate::error_budget::ErrorBudget;
use crate::observe::Observation;

/// Longest reason kept in the decision log (the CRD's limit).
pub const REASON_LIMIT: usize = 1024;

/// What one pass produced, for the status.
pub struct Pass<'a> {
    pub spec: &'a Spec,
    pub generation: Option<i64>,
    pub observation: &'a Observation,
    pub plan: &'a Plan,
    /// What the target ran with when the decision was made.
    pub current: Actuation,
    /// The error budget of each objective, as read this pass.
    pub error_budget: ErrorBudget,
    /// How the target was reached (the `TargetFound` condition).
    pub target: Reach,
    /// Why the alert rules were refused, when they were (the `AlertRules`
    /// condition); actuation goes on regardless.
    pub rules_refused: Option<String>,
    pub now: Time,
}

/// How a pass reached its target: the reason and message of `TargetFound`.
#[derive(Clone, Debug, PartialEq)]
pub struct Reach {
    pub reason: &'static str,
    pub message: String,
}

fn latency(v: Option<f64>) -> Option<Latency> {
    v.filter(|x| x.is_finite() && *x >= 0.0 && *x < 1e9)
        .map(|s| Latency(std::time::Duration::from_secs_f64(s)))
}

/// `s` cut to the CRD's and Events' 1024-byte limit.
pub fn truncate_note(s: &str) -> String {
    if s.len() <= REASON_LIMIT {
        return s.to_string();
    }
    let mut end = REASON_LIMIT - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn condition(
    prev: &[Condition],
    kind: &str,
    status: bool,
    reason: &str,
    message: String,
    p: &Pass,
) -> Condition {
    condition_at(prev, kind, status, reason, &message, p.generation, &p.now)
}

/// A condition as of `now`; its transition time moves only when its status does.
fn condition_at(
    prev: &[Condition],
    kind: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let status = if status { TRUE } else { FALSE }.to_string();
    let since = prev
        .iter()
        .find(|c| c.type_ == kind && c.status == status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    Condition {
        type_: kind.to_string(),
        status,
        reason: reason.to_string(),
        message: truncate_note(message),
        last_transition_time: since,
        observed_generation: generation,
    }
}

/// Conditions for a pass. `Ready` is false while actuation is held.
pub fn conditions(prev: &[Condition], p: &Pass) -> Vec<Condition> {
    vec![
        metrics_available(prev, p),
        objective_met(prev, p),
        bottleneck(prev, p),
        target_found(prev, p),
        alert_rules(prev, p),
        ready(prev, p),
    ]
}

/// `AlertRules`: false while the SLO's burn-rate rules could not be applied.
fn alert_rules(prev: &[Condition], p: &Pass) -> Condition {
    match &p.rules_refused {
        Some(why) => condition(
            prev,
            kind::ALERT_RULES,
            false,
            reason::RULES_REFUSED,
            why.clone(),
            p,
        ),
        None => condition(
            prev,
            kind::ALERT_RULES,
            true,
            reason::RULES_APPLIED,
            "alert rules applied for this generation".into(),
            p,
        ),
    }
}

/// `MetricsAvailable`: false while the pass holds for want of signals.
fn metrics_available(prev: &[Condition], p: &Pass) -> Condition {
    match &p.plan.hold {
        Some(why) => condition(
            prev,
            kind::METRICS_AVAILABLE,
            false,
            reason::METRICS_UNAVAILABLE,
            why.clone(),
            p,
        ),
        None => condition(
            prev,
            kind::METRICS_AVAILABLE,
            true,
            reason::METRICS_READ,
            "signals read for this pass".into(),
            p,
        ),
    }
}

/// `ObjectiveMet`: the state of the objectives (met, at risk, breached, unknown).
fn objective_met(prev: &[Condition], p: &Pass) -> Condition {
    match p.plan.objective_state.unwrap_or_default() {
        ObjectiveState::Met => condition(
            prev,
            kind::OBJECTIVE_MET,
            true,
            reason::MET,
            "every objective is met with margin".into(),
            p,
        ),
        ObjectiveState::AtRisk => condition(
            prev,
            kind::OBJECTIVE_MET,
            true,
            reason::AT_RISK,
            "met, but within 10 % of a target".into(),
            p,
        ),
        ObjectiveState::Breached => condition(
            prev,
            kind::OBJECTIVE_MET,
            false,
            reason::BREACHED,
            "at least one objective is not met".into(),
            p,
        ),
        ObjectiveState::Unknown => condition(
            prev,
            kind::OBJECTIVE_MET,
            false,
            reason::UNKNOWN,
            "no usable data".into(),
            p,
        ),
    }
}

/// `Bottleneck`: true when a saturated downstream was found.
fn bottleneck(prev: &[Condition], p: &Pass) -> Condition {
    match &p.plan.bottleneck {
        Some(b) => condition(
            prev,
            kind::BOTTLENECK,
            true,
            reason::DOWNSTREAM_SATURATED,
            b.clone(),
            p,
        ),
        None => condition(
            prev,
            kind::BOTTLENECK,
            false,
            reason::NONE,
            "no downstream bottleneck found".into(),
            p,
        ),
    }
}

/// `TargetFound`: always true, with the target's own reason and message.
fn target_found(prev: &[Condition], p: &Pass) -> Condition {
    condition(
        prev,
        kind::TARGET_FOUND,
        true,
        p.target.reason,
        p.target.message.clone(),
        p,
    )
}

/// `Ready`: false while actuation is held.
fn ready(prev: &[Condition], p: &Pass) -> Condition {
    match &p.plan.hold {
        Some(why) => condition(prev, kind::READY, false, reason::HOLDING, why.clone(), p),
        None => condition(
            prev,
            kind::READY,
            true,
            reason::RECONCILED,
            "observed, decided and applied".into(),
            p,
        ),
    }
}

/// The decisions of a pass, as log entries.
pub fn decisions(p: &Pass) -> Vec<Decision> {
    let mut out = Vec::new();
    let entry = |knob, from: u32, to: u32, reason: &str| Decision {
        time: p.now.clone(),
        knob,
        from: i32::try_from(from).unwrap_or(i32::MAX),
        to: i32::try_from(to).unwrap_or(i32::MAX),
        reason: truncate_note(reason),
        dry_run: p.plan.dry_run,
    };
    if let Some(c) = &p.plan.pool_size {
        out.push(entry(Knob::PoolSize, c.from, c.to, &c.reason));
    }
    if let Some(c) = &p.plan.replicas {
        out.push(entry(Knob::Replicas, c.from, c.to, &c.reason));
    }
    if let Some(reason) = &p.plan.warm_up {
        out.push(entry(Knob::CacheWarmUp, 0, 1, reason));
    }
    out
}

/// The decisions of a pass worth logging after `log`: a DryRun decision that
/// repeats the newest one for its knob is left out, so a DryRun SLO's log keeps
/// its history instead of one decision 20 times.
pub fn new_decisions(log: &[Decision], p: &Pass) -> Vec<Decision> {
    decisions(p)
        .into_iter()
        .filter(|d| {
            !d.dry_run
                || log
                    .iter()
                    .rev()
                    .find(|e| e.knob == d.knob)
                    .is_none_or(|e| !e.dry_run || e.from != d.from || e.to != d.to)
        })
        .collect()
}

/// The status after a pass, from the status before it.
pub fn status(prev: Option<&Status>, p: &Pass) -> Status {
    let prev_conditions = prev.map_or(&[][..], |s| &s.conditions[..]);
    let o = p.observation.sanitized();
    let mut log: Vec<Decision> = prev.map(|s| s.decisions.clone()).unwrap_or_default();
    let new = new_decisions(&log, p);
    log.extend(new);
    if log.len() > DECISION_LOG_LIMIT {
        log.drain(..log.len() - DECISION_LOG_LIMIT);
    }
    let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let replicas = CurrentDesired {
        current: to_i32(p.current.replicas),
        desired: to_i32(
            p.plan
                .replicas
                .as_ref()
                .map_or(p.current.replicas, |c| c.to),
        ),
    };
    let pool_size = connection_budget(p.spec)
        .and(p.current.pool_size)
        .map(|cur| CurrentDesired {
            current: to_i32(cur),
            desired: to_i32(p.plan.pool_size.as_ref().map_or(cur, |c| c.to)),
        });
    let observed = (p.plan.hold.is_none() || o.request_rate.is_some()).then(|| ObservedSignals {
        time: p.now.clone(),
        p50: latency(o.latency.p50),
        p90: latency(o.latency.p90),
        p95: latency(o.latency.p95),
        p99: latency(o.latency.p99),
        p999: latency(o.latency.p999),
        request_rate: o.request_rate,
        error_rate: o.error_rate,
        cache_hit_rate: o.cache_hit_rate,
        pool_utilization: match (o.pool_in_use, o.pool_max) {
            (Some(u), Some(m)) if m > 0.0 => Some(u / m),
            _ => None,
        },
    });
    Status {
        observed_generation: p.generation,
        objective_state: p.plan.objective_state.unwrap_or_default(),
        tightest_target: p.spec.objectives.latency.tightest(),
        observed,
        error_budget_remaining: p.error_budget.worst(),
        objectives: p.error_budget.objectives.clone(),
        headroom: p.plan.headroom.as_ref().map(|h| HeadroomStatus {
            aim: h.share,
            budget_lead: h.lead,
        }),
        replicas: Some(replicas),
        pool_size,
        last_warm_up: if p.plan.warm_up.is_some() && !p.plan.dry_run {
            Some(p.now.clone())
        } else {
            prev.and_then(|s| s.last_warm_up.clone())
        },
        bottleneck: p.plan.bottleneck.clone(),
        conditions: conditions(prev_conditions, p),
        decisions: log,
    }
}

/// The status of an SLO whose pass was refused: the `kinds` conditions false
/// with `reason` and `message`, the rest of the status kept.
pub fn refused(
    prev: Option<&Status>,
    generation: Option<i64>,
    kinds: &[&str],
    why: &str,
    message: &str,
    now: Time,
) -> Status {
    let mut status = prev.cloned().unwrap_or_default();
    let conditions: Vec<Condition> = kinds
        .iter()
        .map(|kind| {
            condition_at(
                &status.conditions,
                kind,
                false,
                why,
                message,
                generation,
                &now,
            )
        })
        .collect();
    for c in conditions {
        match status.conditions.iter_mut().find(|x| x.type_ == c.type_) {
            Some(x) => *x = c,
            None => status.conditions.push(c),
        }
    }
    status.observed_generation = generation;
    status
}

#[cfg(test)]
mod tests {
    fn reach() -> Reach {
        Reach {
            reason: reason::SCALE_SUBRESOURCE,
            message: "Deployment ns/app".into(),
        }
    }

    use super::*;
    use crate::decide::Change;
    use k8s_openapi::jiff::Timestamp;

    fn spec() -> Spec {
        crate::sim::scenario::audit_spec()
    }

    fn at(s: i64) -> Time {
        Time(Timestamp::from_second(s).unwrap())
    }

    #[test]
    fn the_log_is_bounded_newest_last_and_transitions_keep_their_time() {
        let spec = spec();
        let obs = Observation {
            request_rate: Some(142.0),
            ..Observation::default()
        };
        let mut prev: Option<Status> = None;
        for i in 0..30 {
            let plan = Plan {
                replicas: Some(Change {
                    from: i,
                    to: i + 1,
                    reason: "x".repeat(5000),
                }),
                objective_state: Some(ObjectiveState::Breached),
                ..Plan::default()
            };
            let pass = Pass {
                spec: &spec,
                generation: Some(3),
                observation: &obs,
                plan: &plan,
                current: Actuation {
                    replicas: i,
                    pool_size: Some(40),
                },
                error_budget: ErrorBudget::from_counts([("latency-p99", 5.0, 1000.0, 0.01)]),
                target: reach(),
                rules_refused: None,
                now: at(1_800_000_000 + i64::from(i) * 15),
            };
            prev = Some(status(prev.as_ref(), &pass));
        }
        let s = prev.unwrap();
        assert_eq!(s.decisions.len(), DECISION_LOG_LIMIT);
        assert_eq!(s.decisions.last().unwrap().to, 30);
        assert!(s.decisions.iter().all(|d| d.reason.len() <= REASON_LIMIT));
        let met = s
            .conditions
            .iter()
            .find(|c| c.type_ == "ObjectiveMet")
            .unwrap();
        assert_eq!(met.status, "False");
        assert_eq!(
            met.last_transition_time,
            at(1_800_000_000),
            "unchanged since the first pass"
        );
        assert_eq!(met.observed_generation, Some(3));
        assert_eq!(
            s.replicas,
            Some(CurrentDesired {
                current: 29,
                desired: 30
            })
        );
        assert_eq!(
            s.pool_size,
            Some(CurrentDesired {
                current: 40,
                desired: 40
            })
        );
    }

    #[test]
    fn held_passes_say_why_and_keep_missing_values_missing() {
        let spec = spec();
        let obs = Observation::default();
        let plan = Plan {
            hold: Some("request rate or latency is missing".into()),
            objective_state: Some(ObjectiveState::Unknown),
            ..Plan::default()
        };
        let pass = Pass {
            spec: &spec,
            generation: None,
            observation: &obs,
            plan: &plan,
            current: Actuation {
                replicas: 2,
                pool_size: None,
            },
            error_budget: ErrorBudget::default(),
            target: reach(),
            rules_refused: None,
            now: at(0),
        };
        let s = status(None, &pass);
        assert!(s.observed.is_none());
        assert_eq!(s.objective_state, ObjectiveState::Unknown);
        let m = s
            .conditions
            .iter()
            .find(|c| c.type_ == "MetricsAvailable")
            .unwrap();
        assert_eq!(
            (m.status.as_str(), m.reason.as_str()),
            ("False", "MetricsUnavailable")
        );
        assert!(m.message.contains("missing"));
        assert!(s.decisions.is_empty());
    }

    #[test]
    fn a_repeated_dry_run_decision_is_logged_once() {
        let spec = spec();
        let obs = Observation::default();
        let plan = |to: u32| Plan {
            replicas: Some(Change {
                from: 2,
                to,
                reason: "p99 over target".into(),
            }),
            dry_run: true,
            ..Plan::default()
        };
        let mut prev: Option<Status> = None;
        for (i, to) in [6, 6, 6, 7, 7, 6].into_iter().enumerate() {
            let plan = plan(to);
            let pass = Pass {
                spec: &spec,
                generation: None,
                observation: &obs,
                plan: &plan,
                current: Actuation {
                    replicas: 2,
                    pool_size: None,
                },
                error_budget: ErrorBudget::default(),
                target: reach(),
                rules_refused: None,
                now: at(i as i64),
            };
            prev = Some(status(prev.as_ref(), &pass));
        }
        let log: Vec<(i32, bool)> = prev
            .unwrap()
            .decisions
            .iter()
            .map(|d| (d.to, d.dry_run))
            .collect();
        assert_eq!(log, [(6, true), (7, true), (6, true)]);
    }
}
