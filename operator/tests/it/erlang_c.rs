//! The simulator against queueing theory: one replica with c workers,
//! exponential service and no cache misses is an M/M/c queue, so its probability
//! of waiting and mean wait must match Erlang C.
//!
//! Tolerance: 0.03 absolute on P(wait) and 10 % relative on the mean wait (plus
//! 0.5 ms), over 600,000 requests per case.

use governor::queueing::{erlang_c, mmc_mean_wait};
use governor::sim::{InitialState, ServiceModel, Simulation};

fn mmc(lambda: f64, mu: f64, c: u32, seed: u64) -> (f64, f64) {
    let model = ServiceModel {
        workers: c,
        cpu_time: 1.0 / mu,
        exponential: true,
        cache_max: 1.0,
        cache_warm_requests: 1.0,
        timeout: 1e9,
        ..ServiceModel::audit()
    };
    let initial = InitialState {
        replicas: 1,
        pool_size: 10,
        served: 1e12,
    };
    let mut sim = Simulation::new(model, &initial, lambda, seed);
    let duration = 600_000.0 / lambda;
    // Warm-up: discard the first 5 % (the queue starts empty).
    sim.run_until(duration * 0.05, &|_| lambda);
    let (starts0, waits0, time0) = (sim.worker_starts, sim.worker_waits, sim.worker_wait_time);
    sim.run_until(duration, &|_| lambda);
    let starts = (sim.worker_starts - starts0) as f64;
    let p_wait = (sim.worker_waits - waits0) as f64 / starts;
    let mean_wait = (sim.worker_wait_time - time0) / starts;
    (p_wait, mean_wait)
}

#[test]
fn simulated_mmc_matches_erlang_c() {
    // (arrival rate, service rate, servers): light to heavy load, 1 to 16 servers.
    let cases = [
        (5.0, 10.0, 1),
        (30.0, 10.0, 4),
        (70.0, 10.0, 8),
        (45.0, 25.0, 2),
        (140.0, 10.0, 16),
    ];
    for (i, (lambda, mu, c)) in cases.into_iter().enumerate() {
        let (p_sim, w_sim) = mmc(lambda, mu, c, 100 + i as u64);
        let p_theory = erlang_c(c, lambda / mu);
        let w_theory = mmc_mean_wait(c, lambda, mu);
        assert!(
            (p_sim - p_theory).abs() < 0.03,
            "lambda={lambda} mu={mu} c={c}: P(wait) simulated {p_sim:.4}, Erlang C {p_theory:.4}"
        );
        assert!(
            (w_sim - w_theory).abs() < 0.1 * w_theory + 0.0005,
            "lambda={lambda} mu={mu} c={c}: mean wait simulated {w_sim:.5}s, Erlang C {w_theory:.5}s"
        );
        eprintln!(
            "M/M/{c} lambda={lambda} mu={mu}: P(wait) {p_sim:.4} vs {p_theory:.4}, W {w_sim:.5}s vs {w_theory:.5}s"
        );
    }
}

#[test]
fn same_seed_same_run() {
    let a = mmc(30.0, 10.0, 4, 7);
    let b = mmc(30.0, 10.0, 4, 7);
    assert_eq!(a, b);
    assert_ne!(a, mmc(30.0, 10.0, 4, 8));
}
