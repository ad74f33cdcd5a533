//! Estimate: what Governor has learned about a service, updated from each fresh
//! observation. Each replica is modelled as an M/M/k queue (k concurrent requests,
//! mean service time S); k is calibrated so the model reproduces the observed
//! tail, which keeps a wrong model from holding the SLO in breach.

use std::collections::VecDeque;

use governor_crds::Quantile;

use crate::observe::Observation;
use crate::queueing::WaitTail;

/// Learned state of one service.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// Latency per quantile without queueing (seconds), or None until seen: the
    /// lowest seen within `BASE_WINDOW`, since queueing only ever adds to it.
    pub base: [Option<f64>; 5],
    /// Recent (time, latency per quantile), for `base`.
    pub recent: VecDeque<(f64, [Option<f64>; 5])>,
    /// Mean service time (seconds).
    pub service_time: Option<f64>,
    /// Requests one replica serves at once (estimated).
    pub concurrency: f64,
    /// Holt's linear trend on the request rate: level and per-second trend.
    pub level: Option<f64>,
    pub trend: f64,
    pub updated_at: Option<f64>,
    /// The request rate read at `updated_at` (over the observation window).
    pub last_rate: Option<f64>,
    /// Requests per second since the reading before this one, when one was
    /// taken within a window: a step shows here within one interval, while
    /// the window's rate still averages it with the minute before.
    pub latest_rate: Option<f64>,
    /// Per-replica request rate at which queueing last breached an objective:
    /// plans stay below it (it relaxes by 0.5 % a minute).
    pub overload_rate: Option<f64>,
    /// Per-replica request rate at which queueing first took a latency
    /// objective over 80 % of its target: the knee, which a model fitted
    /// below it may place too far out. Plans stay below it; it relaxes like
    /// `overload_rate`.
    pub knee_rate: Option<f64>,
    /// Mean time a query holds a pooled connection (seconds), by Little's law
    /// on the pool's in-use gauge and the query rate; smoothed, since the
    /// gauge is a point sample.
    pub query_time: Option<f64>,
    /// The lowest smoothed query time seen: the database unloaded.
    pub query_time_floor: Option<f64>,
}

impl Default for Estimate {
    fn default() -> Self {
        Self {
            base: [None; 5],
            recent: VecDeque::new(),
            service_time: None,
            concurrency: 1.0,
            level: None,
            trend: 0.0,
            updated_at: None,
            last_rate: None,
            latest_rate: None,
            overload_rate: None,
            knee_rate: None,
            query_time: None,
            query_time_floor: None,
        }
    }
}

const MAX_CONCURRENCY: f64 = 512.0;
/// Weight of a new Little's-law sample of the query time (a point gauge).
const QUERY_TIME_SMOOTHING: f64 = 0.3;
/// Connections in use a reading needs to set the query time's floor.
pub const FLOOR_MIN_CONNECTIONS: f64 = 3.0;
/// Seconds of history the latency floor is taken over.
pub const BASE_WINDOW: f64 = 600.0;
/// Seconds the request rate is averaged over (`rate(...[1m])`).
pub const RATE_WINDOW: f64 = 60.0;
/// The latest rate amplifies the change of the window's rate by the window over
/// the gap between readings, at most this much: a shorter gap is mostly noise.
const MAX_LATEST_GAIN: f64 = 4.0;

impl Estimate {
    /// Predicted latency at `q` with `rate_per_replica` requests/s on `k`
    /// concurrent workers.
    pub fn predict_with(&self, q: Quantile, rate_per_replica: f64, k: f64) -> Option<f64> {
        let queue = self.queue(rate_per_replica, k, 0.0)?;
        self.predict_in(q, &queue, 0.0)
    }

    /// The queue of one replica at `rate_per_replica` with concurrency `k`,
    /// each request `extra` seconds slower: worked out once for every
    /// quantile predicted from it.
    pub fn queue(&self, rate_per_replica: f64, k: f64, extra: f64) -> Option<WaitTail> {
        let s = self.service_time? + extra;
        let k = k.round().clamp(1.0, MAX_CONCURRENCY) as u32;
        Some(WaitTail::new(k, rate_per_replica.max(0.0), 1.0 / s))
    }

    /// Predicted latency at `q` on a replica with `queue` (`extra`: as in
    /// [`Self::queue`]).
    pub fn predict_in(&self, q: Quantile, queue: &WaitTail, extra: f64) -> Option<f64> {
        Some((self.base(q)? + extra) + queue.quantile(q.value()))
    }

    /// The latency floor at `q` (no queueing), once seen.
    pub fn base(&self, q: Quantile) -> Option<f64> {
        self.base[q.index()]
    }

    /// Utilization of a replica at `rate_per_replica`.
    pub fn utilization(&self, rate_per_replica: f64) -> Option<f64> {
        Some(rate_per_replica * self.service_time? / self.concurrency.max(1.0))
    }

    /// Folds in a fresh, sanitized observation taken with `ready` replicas.
    /// `settling` says the window still mixes in the state before the last
    /// scale-up; the queueing model is not recalibrated from such a window.
    pub fn update(&mut self, obs: &Observation, ready: u32, now: f64, settling: bool) {
        let Some(rate) = obs.request_rate else { return };
        if !self.track_load(rate, now) {
            return;
        }
        let ready = f64::from(ready.max(1));
        let per_replica = rate / ready;
        self.update_query_time(obs, rate);
        self.update_floor(obs, now);
        if settling {
            return;
        }
        self.calibrate(obs, per_replica);
    }

    /// Load trend (Holt), per second, and the ageing of the overload rate.
    /// False when the reading comes too soon after the last to say anything.
    fn track_load(&mut self, rate: f64, now: f64) -> bool {
        match (self.level, self.updated_at) {
            // Two readings less than a second apart say nothing about a trend
            // (and dividing by that gap would explode it).
            (Some(_), Some(at)) if now < at + 1.0 => return false,
            (Some(level), Some(at)) => {
                let dt = now - at;
                let (alpha, beta) = (0.5, 0.3);
                let predicted = level + self.trend * dt;
                let new_level = alpha * rate + (1.0 - alpha) * predicted;
                self.trend = beta * (new_level - level) / dt + (1.0 - beta) * self.trend;
                self.level = Some(new_level);
            }
            _ => self.level = Some(rate),
        }
        if let Some(at) = self.updated_at {
            let relax = 1.0 + 0.005 * (now - at).max(0.0) / 60.0;
            self.overload_rate = self.overload_rate.map(|o| o * relax);
            self.knee_rate = self.knee_rate.map(|o| o * relax);
        }
        self.latest_rate = match (self.last_rate, self.updated_at) {
            (Some(before), Some(at)) => Some(latest_rate(before, rate, now - at)),
            _ => None,
        };
        self.last_rate = Some(rate);
        self.updated_at = Some(now);
        true
    }

    /// Connection hold time by Little's law: connections in use over queries
    /// per second. Without a hit rate every request counts as a query: the
    /// offered connection load (rate x time) is the same either way.
    fn update_query_time(&mut self, obs: &Observation, rate: f64) {
        let Some(in_use) = obs.pool_in_use else {
            return;
        };
        let queries = rate * (1.0 - obs.cache_hit_rate.unwrap_or(0.0));
        if queries < 1.0 {
            return;
        }
        let sample = in_use / queries;
        let d = match self.query_time {
            Some(d) => d + QUERY_TIME_SMOOTHING * (sample - d),
            None => sample,
        };
        self.query_time = Some(d);
        // A few connections in use say little (a gauge at 0 or 1): the floor
        // is taken only from readings with enough of them, or noise sets it.
        if in_use >= FLOOR_MIN_CONNECTIONS {
            self.query_time_floor = Some(self.query_time_floor.map_or(d, |f| f.min(d)));
        }
    }

    /// Latency floor: the lowest of each quantile over the recent window, and
    /// the service time read from the median's floor.
    fn update_floor(&mut self, obs: &Observation, now: f64) {
        let mut sample = [None; 5];
        for q in Quantile::ALL {
            sample[q.index()] = obs.latency.get(q);
        }
        self.recent.push_back((now, sample));
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| *t < now - BASE_WINDOW)
            || self.recent.len() > 128
        {
            self.recent.pop_front();
        }
        let mut floor = [f64::INFINITY; 5];
        for (_, s) in &self.recent {
            for (f, v) in floor.iter_mut().zip(s) {
                // NaN never gets here (sanitized); a missing value reads as +inf.
                *f = f.min(v.unwrap_or(f64::INFINITY));
            }
        }
        for (b, f) in self.base.iter_mut().zip(floor) {
            *b = f.is_finite().then_some(f);
        }
        if let Some(p50) = self.base(Quantile::P50) {
            self.service_time = Some(p50 * 1.2);
        }
    }

    /// Calibrate k on the highest observed quantile: when queueing shows, the
    /// largest k whose prediction still reaches what was observed; when it does
    /// not, at least the smallest k that predicts no visible queueing.
    fn calibrate(&mut self, obs: &Observation, per_replica: f64) {
        let Some(qi) = Quantile::ALL
            .into_iter()
            .rev()
            .find(|q| obs.latency.get(*q).is_some() && self.base(*q).is_some())
        else {
            return;
        };
        let observed = obs.latency.get(qi).unwrap_or_default();
        let Some(s) = self.service_time else { return };
        let minimal = (per_replica * s).max(1.0);
        let predict_k = |k: f64| -> f64 {
            self.predict_with(qi, per_replica, k)
                .unwrap_or(f64::INFINITY)
        };
        let base = self.base(qi).unwrap_or(observed);
        // Queueing is visible once the tail is 15 % (plus 2 ms of noise) over its floor.
        let threshold = base * 1.15 + 0.002;
        let queueing = observed > threshold;
        let (mut lo, mut hi) = (minimal.floor().max(1.0), MAX_CONCURRENCY);
        if queueing {
            // Visible queueing means a utilization of at least ~25 %: k < 4a.
            hi = hi.min((minimal * 4.0).ceil() + 2.0);
            // Largest k with predict_with(k) >= observed.
            if predict_k(lo) < observed {
                self.concurrency = lo;
                return;
            }
            while hi - lo > 1.0 {
                let mid = ((lo + hi) / 2.0).floor();
                if predict_k(mid) >= observed {
                    lo = mid
                } else {
                    hi = mid
                }
            }
            self.concurrency = 0.5 * self.concurrency + 0.5 * lo;
        } else {
            // No visible queueing at this load: k is at least the smallest that
            // predicts no more than the visibility threshold.
            if predict_k(self.concurrency) <= threshold {
                return; // the current estimate already explains it
            }
            while hi - lo > 1.0 {
                let mid = ((lo + hi) / 2.0).floor();
                if predict_k(mid) <= threshold {
                    hi = mid
                } else {
                    lo = mid
                }
            }
            self.concurrency = self.concurrency.max(hi);
        }
        self.concurrency = self.concurrency.clamp(1.0, MAX_CONCURRENCY);
    }

    /// Request rate forecast `horizon` seconds ahead, never below the current
    /// level nor below the rate since the last reading (a step up).
    pub fn forecast(&self, horizon: f64) -> Option<f64> {
        let level = self.level?;
        let trend = (level + self.trend.max(0.0) * horizon).max(level);
        Some(trend.max(self.latest_rate.unwrap_or(0.0)))
    }
}

/// Requests per second over the `gap` seconds between two readings of the
/// window's rate, `before` and `now`: what entered the window in the gap,
/// taking what left it to have run at `before`. Past a whole window the
/// reading itself.
fn latest_rate(before: f64, now: f64, gap: f64) -> f64 {
    if gap >= RATE_WINDOW {
        return now;
    }
    let gain = (RATE_WINDOW / gap.max(1.0)).min(MAX_LATEST_GAIN);
    (before + (now - before) * gain).max(0.0)
}

#[cfg(test)]
mod trend_tests {
    use super::*;

    /// An observation of `rate` requests/s and nothing else.
    fn obs(rate: f64) -> Observation {
        Observation {
            request_rate: Some(rate),
            ..Observation::default()
        }
    }

    #[test]
    fn a_step_shows_in_the_latest_rate_before_the_window_catches_up() {
        // 100 rps for a minute, then 500 rps from 0 s: 15 s later the window
        // reads (45 x 100 + 15 x 500) / 60 = 200.
        assert_eq!(latest_rate(100.0, 200.0, 15.0), 500.0);
        assert_eq!(latest_rate(100.0, 100.0, 15.0), 100.0, "flat stays flat");
        assert_eq!(
            latest_rate(100.0, 300.0, 90.0),
            300.0,
            "a whole window apart"
        );
        assert_eq!(latest_rate(200.0, 100.0, 15.0), 0.0, "never negative");
        // Readings 5 s apart: the gain stops at 4, not 12.
        assert_eq!(latest_rate(100.0, 110.0, 5.0), 140.0);
        let mut m = Estimate::default();
        m.update(&obs(100.0), 2, 0.0, false);
        m.update(&obs(100.0), 2, 15.0, false);
        m.update(&obs(200.0), 2, 30.0, false);
        assert_eq!(m.latest_rate, Some(500.0));
        assert!(m.forecast(45.0).unwrap() >= 500.0);
    }

    #[test]
    fn readings_a_moment_apart_do_not_explode_the_trend() {
        let mut m = Estimate::default();
        m.update(&obs(100.0), 2, 0.0, false);
        m.update(&obs(200.0), 2, 15.0, false);
        let before = m.forecast(30.0).unwrap();
        // A watch event right after: 0.01 s later, a different reading.
        m.update(&obs(400.0), 2, 15.01, false);
        let after = m.forecast(30.0).unwrap();
        assert_eq!(
            before, after,
            "a 10 ms gap moved the forecast from {before} to {after}"
        );
        assert!(after < 1000.0, "{after}");
    }
}
