//! Deterministic sample data: for benchmarks, and for trying the dashboard
//! without a cluster.

use governor_crds::Quantile;
use std::sync::Arc;

use governor_crds::{CurrentDesired, Decision, Knob};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::read::{Fixed, LatencyView, SloView, Snapshot, Standing};

/// `n` SLOs over 7 namespaces in every state, each with a decision.
pub fn slos(n: usize) -> Vec<SloView> {
    (0..n)
        .map(|i| {
            let state = [
                Standing::Met,
                Standing::AtRisk,
                Standing::Breached,
                Standing::Unknown,
            ][i % 4];
            let p99 = 0.02 + (i % 13) as f64 * 0.01;
            let lat = |quantile: Quantile, observed: f64| LatencyView {
                quantile,
                target: Some(0.1),
                observed: Some(observed),
                standing: Standing::of(Some(observed), Some(0.1)),
            };
            SloView {
                namespace: format!("team-{}", i % 7),
                name: format!("service-{i:04}"),
                service: format!("service-{i:04}"),
                state,
                dry_run: i % 10 == 0,
                latency: vec![
                    lat(Quantile::P50, p99 / 3.0),
                    lat(Quantile::P90, p99 / 1.5),
                    lat(Quantile::P99, p99),
                ],
                request_rate: Some(50.0 + (i % 300) as f64),
                error_rate: Some(0.0004),
                error_rate_target: Some(0.001),
                error_budget_remaining: Some((10 - i % 10) as f64 / 10.0),
                objective_budgets: vec![governor_crds::ObjectiveBudget {
                    objective: "latency-p99".into(),
                    error_budget_remaining: Some((10 - i % 10) as f64 / 10.0),
                }],
                burn_rate: Some((i % 15) as f64),
                replicas: Some(CurrentDesired {
                    current: 2 + (i % 5) as i32,
                    desired: 3 + (i % 5) as i32,
                }),
                pool_size: Some(CurrentDesired {
                    current: 20,
                    desired: 13,
                }),
                cache_hit_rate: Some(0.42 + (i % 50) as f64 / 100.0),
                cache_hit_target: Some(0.8),
                bottleneck: None,
                observed_at: Some("2026-11-27 10:00:00 UTC".into()),
                conditions: Vec::new(),
                decisions: vec![Decision {
                    time: Time(Timestamp::from_second(1_800_000_000).unwrap_or(Timestamp::UNIX_EPOCH)),
                    knob: Knob::Replicas,
                    from: 2 + (i % 5) as i32,
                    to: 3 + (i % 5) as i32,
                    reason: format!(
                        "p99 {:.0}ms vs target 100ms: 3 replicas meet every latency objective at 142 rps forecast",
                        p99 * 1000.0
                    ),
                    dry_run: false,
                }],
            }
        })
        .collect()
}

/// A fixed read model of `n` sample SLOs.
pub fn model(n: usize) -> Fixed {
    Fixed {
        snapshot: Snapshot {
            slos: Arc::new(slos(n)),
            warnings: Vec::new(),
            version: 0,
        },
        ..Fixed::default()
    }
}
