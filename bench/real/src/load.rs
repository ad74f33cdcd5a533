//! The open-loop load generator: Poisson arrivals following a rate curve (a
//! constant, a built-in scenario's curve time-compressed, or a `seconds,rps`
//! trace), each request sent at its own time whatever the others are doing,
//! and its latency measured from that intended time, not from when it was sent
//! (no coordinated omission), into an HDR histogram.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::sim::Scenario;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

/// Arrivals per second over time.
#[derive(Clone, Debug)]
pub enum RateCurve {
    Constant(f64),
    /// A scenario's load (built in or from a trace), `speed` scenario seconds
    /// per wall-clock second.
    Scenario {
        scenario: Box<Scenario>,
        speed: f64,
    },
}

impl RateCurve {
    pub fn at(&self, t: f64) -> f64 {
        match self {
            Self::Constant(r) => *r,
            Self::Scenario { scenario, speed } => scenario.rate(t * speed),
        }
    }

    fn peak(&self) -> f64 {
        match self {
            Self::Constant(r) => *r,
            Self::Scenario { scenario, .. } => scenario.peak_rate(),
        }
    }
}

/// What to send, where and for how long.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    /// Base URLs of the replicas, sent to round-robin.
    pub targets: Vec<String>,
    pub curve: RateCurve,
    pub seconds: f64,
    /// Requests whose intended time falls before this are sent but not
    /// counted (connections opening, first queries).
    pub warmup: f64,
    /// Keys 0..keys are the cacheable ones.
    pub keys: u64,
    /// Share of requests for a cacheable key; the rest ask for a key never
    /// asked before (always a miss).
    pub cacheable: f64,
    pub seed: u64,
    /// A request unanswered after this is an error.
    pub timeout: Duration,
    /// Requests outstanding at once; past it an arrival is counted as an
    /// error without being sent (the generator's own limit, reported).
    pub max_in_flight: usize,
}

impl LoadPlan {
    /// Refuses a plan that cannot run, naming what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.targets.is_empty() {
            return Err("--target: at least one URL is needed".into());
        }
        if !(self.seconds.is_finite() && self.seconds > 0.0 && self.seconds <= 86_400.0) {
            return Err(format!(
                "--seconds must be above 0 and at most 86400, got {}",
                self.seconds
            ));
        }
        if !(self.warmup.is_finite() && self.warmup >= 0.0 && self.warmup < self.seconds) {
            return Err(format!(
                "--warmup must be at least 0 and below --seconds ({}), got {}",
                self.seconds, self.warmup
            ));
        }
        if !(self.cacheable.is_finite() && (0.0..=1.0).contains(&self.cacheable)) {
            return Err(format!(
                "--cacheable must be in 0..=1, got {}",
                self.cacheable
            ));
        }
        let peak = self.curve.peak();
        if !(peak.is_finite() && peak > 0.0 && peak <= 100_000.0) {
            return Err(format!(
                "the rate must be above 0 and at most 100000 per second, got {peak}"
            ));
        }
        if self.keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        Ok(())
    }

    /// The intended send times (seconds from the start): a Poisson process at
    /// the curve's peak, thinned to the curve.
    pub fn arrivals(&self) -> Vec<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        let peak = self.curve.peak();
        let mut t = 0.0;
        let mut out = Vec::with_capacity((peak * self.seconds * 1.1) as usize + 16);
        loop {
            let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            t += -u.ln() / peak;
            if t >= self.seconds {
                return out;
            }
            if rng.random::<f64>() < self.curve.at(t).max(0.0) / peak {
                out.push(t);
            }
        }
    }
}

/// What a run measured (latencies in seconds, over the counted requests).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    /// Requests whose intended time was in the counted part of the run.
    pub sent: u64,
    /// Of those, answered 2xx.
    pub ok: u64,
    /// Non-2xx answers, transport errors, timeouts and requests not sent
    /// because --max-in-flight was reached.
    pub errors: u64,
    /// Of the errors, those the generator itself dropped.
    pub dropped: u64,
    /// Counted seconds.
    pub seconds: f64,
    pub intended_rps: f64,
    pub achieved_rps: f64,
    /// None when no request was answered in the counted part (never 0).
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    /// How late the generator itself sent (after the intended time), P50 and
    /// P99: part of every latency above, and none of the service's doing.
    pub send_lag_p50: Option<f64>,
    pub send_lag_p99: Option<f64>,
}

#[derive(Default)]
struct Tally {
    ok: u64,
    errors: u64,
    dropped: u64,
}

/// Sends the plan's requests and waits for the last answer (or its timeout).
pub async fn run(plan: &LoadPlan) -> anyhow::Result<Summary> {
    plan.validate().map_err(anyhow::Error::msg)?;
    let arrivals = plan.arrivals();
    // reqwest is built without a default TLS provider in this workspace.
    governor_tests::tls::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(plan.timeout)
        .pool_max_idle_per_host(plan.max_in_flight)
        .build()?;
    // Microseconds, 1 µs to an hour, 3 significant figures.
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1,
        3_600_000_000,
        3,
    )?));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut lag = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(plan.max_in_flight));
    let mut rng = rand::rngs::StdRng::seed_from_u64(plan.seed ^ 0x5eed);
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now() + Duration::from_millis(50);
    let mut counted = 0u64;
    for (i, t) in arrivals.iter().enumerate() {
        let intended = start + Duration::from_secs_f64(*t);
        tokio::time::sleep_until(intended).await;
        let counts = *t >= plan.warmup;
        counted += u64::from(counts);
        if counts {
            let _ = lag.record((intended.elapsed().as_micros() as u64).max(1));
        }
        let key = if rng.random::<f64>() < plan.cacheable {
            rng.random_range(0..plan.keys).to_string()
        } else {
            format!("once-{}-{i}", plan.seed)
        };
        let url = format!("{}/item/{key}", plan.targets[i % plan.targets.len()]);
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            if counts {
                let mut t = tally
                    .lock()
                    .map_err(|_| anyhow::anyhow!("tally poisoned"))?;
                t.errors += 1;
                t.dropped += 1;
            }
            continue;
        };
        let (client, histogram, tally) = (client.clone(), histogram.clone(), tally.clone());
        tasks.spawn(async move {
            let ok = matches!(client.get(&url).send().await, Ok(r) if r.status().is_success());
            let latency = intended.elapsed();
            drop(permit);
            if !counts {
                return;
            }
            if let Ok(mut h) = histogram.lock() {
                let _ = h.record((latency.as_micros() as u64).max(1));
            }
            if let Ok(mut t) = tally.lock() {
                if ok {
                    t.ok += 1;
                } else {
                    t.errors += 1;
                }
            }
        });
        // Reap finished requests as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let h = histogram
        .lock()
        .map_err(|_| anyhow::anyhow!("histogram poisoned"))?;
    let t = tally
        .lock()
        .map_err(|_| anyhow::anyhow!("tally poisoned"))?;
    let seconds = plan.seconds - plan.warmup;
    let any = !h.is_empty();
    let q = |p: f64| any.then(|| h.value_at_quantile(p) as f64 / 1e6);
    Ok(Summary {
        sent: counted,
        ok: t.ok,
        errors: t.errors,
        dropped: t.dropped,
        seconds,
        intended_rps: counted as f64 / seconds,
        achieved_rps: t.ok as f64 / seconds,
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        max: any.then(|| h.max() as f64 / 1e6),
        mean: any.then(|| h.mean() / 1e6),
        send_lag_p50: (!lag.is_empty()).then(|| lag.value_at_quantile(0.5) as f64 / 1e6),
        send_lag_p99: (!lag.is_empty()).then(|| lag.value_at_quantile(0.99) as f64 / 1e6),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(curve: RateCurve, seconds: f64) -> LoadPlan {
        LoadPlan {
            targets: vec!["http://127.0.0.1:1".into()],
            curve,
            seconds,
            warmup: 0.0,
            keys: 10,
            cacheable: 0.9,
            seed: 3,
            timeout: Duration::from_secs(1),
            max_in_flight: 10,
        }
    }

    #[test]
    fn arrivals_are_poisson_at_the_rate_and_follow_the_curve() {
        let p = plan(RateCurve::Constant(200.0), 100.0);
        let a = p.arrivals();
        let n = a.len() as f64;
        // 20,000 expected; a Poisson count's standard deviation is about 141.
        assert!((n - 20_000.0).abs() < 600.0, "{n} arrivals");
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        // Gaps are exponential: their standard deviation equals their mean.
        let gaps: Vec<f64> = a.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((sd / mean - 1.0).abs() < 0.05, "cv {}", sd / mean);
        assert_eq!(a, p.arrivals(), "the same seed sends at the same times");

        let flash = Scenario::built_in("flash-crowd").expect("flash-crowd");
        let speed = 10.0;
        let p = plan(
            RateCurve::Scenario {
                scenario: Box::new(flash.clone()),
                speed,
            },
            flash.duration / speed,
        );
        let a = p.arrivals();
        let expected: f64 = (0..(flash.duration / speed) as usize)
            .map(|s| flash.rate((s as f64 + 0.5) * speed))
            .sum();
        let n = a.len() as f64;
        assert!((n / expected - 1.0).abs() < 0.05, "{n} against {expected}");
    }

    #[test]
    fn bad_plans_are_refused_naming_the_flag() {
        let mut p = plan(RateCurve::Constant(-1.0), 10.0);
        assert!(p.validate().is_err_and(|e| e.contains("rate")));
        p.curve = RateCurve::Constant(f64::NAN);
        assert!(p.validate().is_err_and(|e| e.contains("rate")));
        p.curve = RateCurve::Constant(10.0);
        p.warmup = 10.0;
        assert!(p.validate().is_err_and(|e| e.contains("--warmup")));
        p.warmup = 0.0;
        p.cacheable = 1.5;
        assert!(p.validate().is_err_and(|e| e.contains("--cacheable")));
        p.cacheable = 0.9;
        p.targets.clear();
        assert!(p.validate().is_err_and(|e| e.contains("--target")));
    }
}
