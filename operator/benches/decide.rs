//! One decision cycle for 10,000 SLOs (target: at most 25 ms on one core).
//! Run: cargo bench -p governor --bench decide

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use governor::decide::{Actuation, ControllerState, decide};
use governor::observe::{Observation, Percentiles};
use governor::sim::scenario::audit_spec;

fn cycle(c: &mut Criterion) {
    let spec = audit_spec();
    let n = 10_000;
    // Each SLO with some history, as after a few minutes of operation.
    let mut states: Vec<ControllerState> = Vec::with_capacity(n);
    let mut observations = Vec::with_capacity(n);
    for i in 0..n {
        let rate = 50.0 + (i % 500) as f64;
        let p99 = 0.04 + (i % 97) as f64 / 1000.0;
        let obs = |t: f64| Observation {
            sampled_at: Some(t),
            request_rate: Some(rate),
            latency: Percentiles {
                p50: Some(0.02),
                p90: Some(0.045),
                p99: Some(p99),
                ..Percentiles::default()
            },
            error_rate: Some(0.0005),
            cache_hit_rate: Some(0.85),
            pool_in_use: Some(6.0),
            pool_max: Some(80.0),
            pool_pending: Some(0.0),
            pool_wait: Some(0.0),
            ready_replicas: Some(4),
            cpu_utilization: Some(0.5),
            error_budget: None,
        };
        let mut state = ControllerState::default();
        for k in 0..20 {
            let t = f64::from(k) * 15.0;
            state = decide(
                &spec,
                std::mem::take(&mut state),
                &obs(t),
                Actuation {
                    replicas: 4,
                    pool_size: Some(20),
                },
                t,
            )
            .1;
        }
        states.push(state);
        observations.push(obs(315.0));
    }
    c.bench_function("decide 10,000 SLOs (one cycle)", |b| {
        // Each iteration decides for every SLO and keeps the new state, as the
        // operator does; the states advance one cycle per iteration.
        b.iter(|| {
            for (state, obs) in states.iter_mut().zip(&observations) {
                let (plan, next) = decide(
                    &spec,
                    std::mem::take(state),
                    obs,
                    Actuation {
                        replicas: 4,
                        pool_size: Some(20),
                    },
                    315.0,
                );
                *state = next;
                black_box(plan);
            }
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = cycle
}
criterion_main!(benches);
