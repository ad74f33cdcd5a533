//! Queueing theory used by the model and to validate the simulator: Erlang C for
//! M/M/c, and tail-latency predictions built on it.

/// Probability that an arrival waits in an M/M/c queue with offered load
/// `a = lambda / mu` (Erlang C). 1.0 when the queue is unstable (a >= c).
pub fn erlang_c(c: u32, a: f64) -> f64 {
    if c == 0 || !a.is_finite() || a < 0.0 {
        return 1.0;
    }
    let c_f = f64::from(c);
    if a >= c_f {
        return 1.0;
    }
    // Erlang B by the stable recurrence, then C from B.
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (f64::from(k) + a * b);
    }
    let rho = a / c_f;
    b / (1.0 - rho + rho * b)
}

/// Mean wait in queue for M/M/c (seconds).
pub fn mmc_mean_wait(c: u32, lambda: f64, mu: f64) -> f64 {
    let a = lambda / mu;
    let c_f = f64::from(c);
    if a >= c_f {
        return f64::INFINITY;
    }
    erlang_c(c, a) / (c_f * mu - lambda)
}

/// The wait in queue of one M/M/c queue: 0 with probability 1 - C, else
/// exponential with rate c*mu - lambda. Erlang C is worked out once for every
/// quantile asked of it (a decision asks several of each queue).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WaitTail {
    /// P(wait); `None` when the queue is unstable (every quantile infinite).
    waits: Option<f64>,
    /// The rate of the exponential wait, c*mu - lambda.
    drain: f64,
}

impl WaitTail {
    pub fn new(c: u32, lambda: f64, mu: f64) -> Self {
        let a = lambda / mu;
        let c_f = f64::from(c);
        if a >= c_f {
            return Self {
                waits: None,
                drain: 0.0,
            };
        }
        Self {
            waits: Some(erlang_c(c, a)),
            drain: c_f * mu - lambda,
        }
    }

    /// The `q` quantile of the wait (seconds).
    pub fn quantile(&self, q: f64) -> f64 {
        let Some(pw) = self.waits else {
            return f64::INFINITY;
        };
        let tail = 1.0 - q;
        if pw <= tail {
            return 0.0;
        }
        (pw / tail).ln() / self.drain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_known_values() {
        // c = 1: P(wait) = rho.
        assert!((erlang_c(1, 0.5) - 0.5).abs() < 1e-12);
        // Textbook: c = 2, a = 1 -> 1/3.
        assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
        // c = 10, a = 8 -> 0.4092 (tables).
        assert!((erlang_c(10, 8.0) - 0.4092).abs() < 1e-3);
        assert_eq!(erlang_c(4, 4.0), 1.0);
        assert_eq!(erlang_c(4, f64::NAN), 1.0);
    }

    #[test]
    fn wait_quantile_is_monotone_in_load() {
        let mut last = 0.0;
        for lambda in [10.0, 50.0, 80.0, 95.0] {
            let w = WaitTail::new(4, lambda, 25.0).quantile(0.99);
            assert!(w >= last);
            last = w;
        }
        assert!(WaitTail::new(4, 100.0, 25.0).quantile(0.99).is_infinite());
    }
}
