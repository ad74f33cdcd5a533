//! The discrete-event simulation of one service: Poisson arrivals, replicas with
//! a fixed worker concurrency and startup delay, per-replica caches and
//! connection pools, one shared database. Deterministic for a seed.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};

use crate::observe::{Observation, Percentiles};

/// Histogram boundaries (seconds) of the simulated latency histogram.
pub const BUCKETS: [f64; 21] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5,
    2.0, 2.5, 5.0, 7.5, 10.0,
];

/// What the simulated service is made of.
#[derive(Clone, Debug)]
pub struct ServiceModel {
    /// Requests one replica serves at once.
    pub workers: u32,
    /// Mean CPU time of a request (seconds); lognormal.
    pub cpu_time: f64,
    /// Lognormal shape of service times.
    pub sigma: f64,
    /// Mean database query time of a cache miss (seconds), unloaded.
    pub db_time: f64,
    /// Database queries that run at full speed at once; more slow every query.
    pub db_cores: f64,
    pub db_max_connections: u32,
    /// Requests slower than this fail (seconds).
    pub timeout: f64,
    /// Seconds from a scale-up until a replica serves.
    pub startup: f64,
    /// Hit rate of a fully warm cache.
    pub cache_max: f64,
    /// Requests a replica serves to warm its cache to 63 % of `cache_max`.
    pub cache_warm_requests: f64,
    /// Multiplier on the query time of a miss (4 for the cold-cache scenario).
    pub miss_penalty: f64,
    /// Exponential instead of lognormal CPU times (for the M/M/c validation).
    pub exponential: bool,
}

impl ServiceModel {
    /// The road-trip API of the audit.
    pub fn audit() -> Self {
        Self {
            workers: 4,
            cpu_time: 0.02,
            sigma: 0.35,
            db_time: 0.03,
            db_cores: 32.0,
            db_max_connections: 100,
            timeout: 5.0,
            startup: 30.0,
            cache_max: 0.9,
            cache_warm_requests: 20_000.0,
            miss_penalty: 1.0,
            exponential: false,
        }
    }
}

/// Initial state of a run.
#[derive(Clone, Debug)]
pub struct InitialState {
    pub replicas: u32,
    pub pool_size: u32,
    /// Requests each initial replica has served (sets its cache warmth).
    pub served: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum EventKind {
    Arrival,
    DbDone(usize),
    Done(usize),
    Fail(usize),
    Ready(usize),
}

#[derive(Clone, Copy, Debug)]
struct Event {
    at: f64,
    seq: u64,
    kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    // Min-heap on (time, sequence).
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .total_cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

#[derive(Clone, Debug, Default)]
struct Request {
    arrival: f64,
    replica: usize,
    cpu: f64,
    db_start: f64,
    waited_for_pool: bool,
    pool_wait_start: f64,
}

#[derive(Clone, Debug)]
struct Replica {
    ready: bool,
    removed: bool,
    busy: u32,
    queue: VecDeque<usize>,
    pool_size: u32,
    pool_open: u32,
    pool_in_use: u32,
    pool_waiters: VecDeque<usize>,
    served: f64,
}

/// Per-second counters, kept for the observation window.
#[derive(Clone, Debug, Default)]
struct Second {
    buckets: [u64; BUCKETS.len() + 1],
    requests: u64,
    errors: u64,
    hits: u64,
    misses: u64,
    cpu: f64,
    pool_wait_sum: f64,
    pool_wait_count: u64,
}

/// Cumulative counters since the start (they only ever grow).
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Latency histogram of successful requests, per bucket (not cumulative) and +Inf.
    pub ok_buckets: [u64; BUCKETS.len() + 1],
    pub ok_sum: f64,
    pub error_buckets: [u64; BUCKETS.len() + 1],
    pub error_sum: f64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub pool_wait_sum: f64,
    pub pool_wait_count: u64,
    /// Latency of every request as a native (exponential-bucket) histogram.
    pub native: super::native::NativeHistogram,
}

/// What one simulated minute looked like (ground truth, from every request).
#[derive(Clone, Debug, Default)]
pub struct MinuteStats {
    pub requests: u64,
    pub errors: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub replicas: f64,
    pub hit_rate: f64,
}

/// The simulated service.
pub struct Simulation {
    pub model: ServiceModel,
    rng: ChaCha8Rng,
    now: f64,
    seq: u64,
    events: BinaryHeap<Event>,
    requests: Vec<Request>,
    free: Vec<usize>,
    replicas: Vec<Replica>,
    routable: Vec<usize>,
    rr: usize,
    pool_size: u32,
    db_open: u32,
    db_active: u32,
    pub peak_db_connections: u32,
    seconds: VecDeque<Second>,
    current_second: i64,
    minute_latencies: Vec<f32>,
    minute_requests: u64,
    minute_errors: u64,
    minute_hits: u64,
    minute_misses: u64,
    minute_replica_seconds: f64,
    current_minute: i64,
    last_replica_change: f64,
    pub minutes: Vec<MinuteStats>,
    pub replica_seconds: f64,
    pub scaling_actions: u32,
    pub total_requests: u64,
    pub total_errors: u64,
    pub total_hits: u64,
    pub total_misses: u64,
    /// Requests that started on a worker, and how many of them waited for one.
    pub worker_starts: u64,
    pub worker_waits: u64,
    pub worker_wait_time: f64,
    /// Cumulative counters, as a Prometheus client library keeps them.
    pub counters: Counters,
    /// Raw latencies of the last minute (ground truth), when `keep_recent`.
    pub recent: VecDeque<(f64, f32)>,
    pub keep_recent: bool,
    rate_max: f64,
    lognormal_cpu: LogNormal<f64>,
    lognormal_db: LogNormal<f64>,
}

/// The observation window, as `rate(...[1m])` reads it.
pub const WINDOW_SECONDS: usize = 60;

fn lognormal(mean: f64, sigma: f64) -> LogNormal<f64> {
    // mean = exp(mu + sigma^2 / 2)
    let mu = mean.max(1e-9).ln() - sigma * sigma / 2.0;
    LogNormal::new(mu, sigma).unwrap_or_else(|_| LogNormal::new(0.0, 0.0).expect("unit lognormal"))
}

impl Simulation {
    /// A service at time 0 with `initial` replicas ready; `rate_max` bounds the
    /// arrival rate (for thinning).
    pub fn new(model: ServiceModel, initial: &InitialState, rate_max: f64, seed: u64) -> Self {
        let lognormal_cpu = lognormal(model.cpu_time, model.sigma);
        let lognormal_db = lognormal(model.db_time * model.miss_penalty, model.sigma);
        let mut sim = Self {
            model,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now: 0.0,
            seq: 0,
            events: BinaryHeap::new(),
            requests: Vec::new(),
            free: Vec::new(),
            replicas: Vec::new(),
            routable: Vec::new(),
            rr: 0,
            pool_size: initial.pool_size.max(1),
            db_open: 0,
            db_active: 0,
            peak_db_connections: 0,
            seconds: VecDeque::new(),
            current_second: 0,
            minute_latencies: Vec::new(),
            minute_requests: 0,
            minute_errors: 0,
            minute_hits: 0,
            minute_misses: 0,
            minute_replica_seconds: 0.0,
            current_minute: 0,
            last_replica_change: 0.0,
            minutes: Vec::new(),
            replica_seconds: 0.0,
            scaling_actions: 0,
            total_requests: 0,
            total_errors: 0,
            total_hits: 0,
            total_misses: 0,
            worker_starts: 0,
            worker_waits: 0,
            worker_wait_time: 0.0,
            counters: Counters::default(),
            recent: VecDeque::new(),
            keep_recent: false,
            rate_max: rate_max.max(1e-6),
            lognormal_cpu,
            lognormal_db,
        };
        sim.seconds.push_back(Second::default());
        for _ in 0..initial.replicas.max(1) {
            sim.replicas.push(Replica {
                ready: true,
                removed: false,
                busy: 0,
                queue: VecDeque::new(),
                pool_size: sim.pool_size,
                pool_open: 0,
                pool_in_use: 0,
                pool_waiters: VecDeque::new(),
                served: initial.served,
            });
        }
        sim.rebuild_routable();
        sim.schedule_next_arrival();
        sim
    }

    pub fn now(&self) -> f64 {
        self.now
    }

    fn push(&mut self, at: f64, kind: EventKind) {
        self.seq += 1;
        self.events.push(Event {
            at,
            seq: self.seq,
            kind,
        });
    }

    fn schedule_next_arrival(&mut self) {
        let u: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
        let gap = -u.ln() / self.rate_max;
        self.push(self.now + gap, EventKind::Arrival);
    }

    fn rebuild_routable(&mut self) {
        self.routable = (0..self.replicas.len())
            .filter(|&i| self.replicas[i].ready && !self.replicas[i].removed)
            .collect();
    }

    /// Replicas that exist (starting or ready), not being removed.
    pub fn replicas(&self) -> u32 {
        self.replicas.iter().filter(|r| !r.removed).count() as u32
    }

    pub fn ready_replicas(&self) -> u32 {
        self.routable.len() as u32
    }

    pub fn pool_size(&self) -> u32 {
        self.pool_size
    }

    /// Runs until `until` seconds, with arrivals at `rate(t)` requests per second.
    pub fn run_until(&mut self, until: f64, rate: &dyn Fn(f64) -> f64) {
        while let Some(ev) = self.events.peek().copied() {
            if ev.at > until {
                break;
            }
            self.events.pop();
            self.advance_clock(ev.at);
            match ev.kind {
                EventKind::Arrival => {
                    let accept = rate(self.now).max(0.0) / self.rate_max;
                    if self.rng.random::<f64>() < accept {
                        self.arrive();
                    }
                    self.schedule_next_arrival();
                }
                EventKind::DbDone(id) => self.db_done(id),
                EventKind::Done(id) => self.done(id),
                EventKind::Fail(id) => self.finish(id, true),
                EventKind::Ready(r) => {
                    if !self.replicas[r].removed {
                        self.replicas[r].ready = true;
                        self.rebuild_routable();
                    }
                }
            }
        }
        self.advance_clock(until);
    }

    fn advance_clock(&mut self, to: f64) {
        if to <= self.now {
            return;
        }
        let n = f64::from(self.replicas());
        // Close out finished minutes and seconds on the way.
        loop {
            let minute_end = (self.current_minute + 1) as f64 * 60.0;
            let step_end = to.min(minute_end);
            self.replica_seconds += n * (step_end - self.now);
            self.minute_replica_seconds += n * (step_end - self.now);
            self.now = step_end;
            let sec = self.now.floor() as i64;
            while self.current_second < sec {
                self.current_second += 1;
                self.seconds.push_back(Second::default());
                if self.seconds.len() > WINDOW_SECONDS {
                    self.seconds.pop_front();
                }
            }
            if step_end >= minute_end {
                self.close_minute();
            } else {
                break;
            }
        }
    }

    fn close_minute(&mut self) {
        let mut lat = std::mem::take(&mut self.minute_latencies);
        lat.sort_by(f32::total_cmp);
        let q = |p: f64| -> f64 {
            if lat.is_empty() {
                0.0
            } else {
                f64::from(lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1])
            }
        };
        let lookups = self.minute_hits + self.minute_misses;
        self.minutes.push(MinuteStats {
            requests: self.minute_requests,
            errors: self.minute_errors,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            replicas: self.minute_replica_seconds / 60.0,
            hit_rate: if lookups == 0 {
                0.0
            } else {
                self.minute_hits as f64 / lookups as f64
            },
        });
        self.minute_requests = 0;
        self.minute_errors = 0;
        self.minute_hits = 0;
        self.minute_misses = 0;
        self.minute_replica_seconds = 0.0;
        self.current_minute += 1;
        lat.clear();
        self.minute_latencies = lat;
    }

    fn second(&mut self) -> &mut Second {
        self.seconds.back_mut().expect("a current second")
    }

    fn record(&mut self, latency: f64, error: bool) {
        let idx = BUCKETS
            .iter()
            .position(|b| latency <= *b)
            .unwrap_or(BUCKETS.len());
        self.counters.native.observe(latency);
        if error {
            self.counters.error_buckets[idx] += 1;
            self.counters.error_sum += latency;
        } else {
            self.counters.ok_buckets[idx] += 1;
            self.counters.ok_sum += latency;
        }
        if self.keep_recent {
            self.recent.push_back((self.now, latency as f32));
            while self
                .recent
                .front()
                .is_some_and(|(t, _)| *t < self.now - WINDOW_SECONDS as f64)
            {
                self.recent.pop_front();
            }
        }
        let s = self.second();
        s.requests += 1;
        s.buckets[idx] += 1;
        if error {
            s.errors += 1;
        }
        self.minute_latencies.push(latency as f32);
        self.minute_requests += 1;
        self.total_requests += 1;
        if error {
            self.minute_errors += 1;
            self.total_errors += 1;
        }
    }

    fn arrive(&mut self) {
        if self.routable.is_empty() {
            self.record(0.0, true);
            return;
        }
        self.rr = (self.rr + 1) % self.routable.len();
        let r = self.routable[self.rr];
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.requests.push(Request::default());
                self.requests.len() - 1
            }
        };
        self.requests[id] = Request {
            arrival: self.now,
            replica: r,
            ..Request::default()
        };
        if self.replicas[r].busy < self.model.workers {
            self.replicas[r].busy += 1;
            self.start(id);
        } else {
            self.replicas[r].queue.push_back(id);
        }
    }

    fn hit_probability(&self, r: usize) -> f64 {
        let rep = &self.replicas[r];
        self.model.cache_max * (1.0 - (-rep.served / self.model.cache_warm_requests).exp())
    }

    fn start(&mut self, id: usize) {
        let r = self.requests[id].replica;
        let waited = self.now - self.requests[id].arrival;
        self.worker_starts += 1;
        if waited > 0.0 {
            self.worker_waits += 1;
            self.worker_wait_time += waited;
        }
        let cpu = if self.model.exponential {
            let u: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
            -u.ln() * self.model.cpu_time
        } else {
            self.lognormal_cpu.sample(&mut self.rng)
        };
        self.requests[id].cpu = cpu;
        let hit = self.rng.random::<f64>() < self.hit_probability(r);
        self.replicas[r].served += 1.0;
        if hit {
            self.second().hits += 1;
            self.counters.cache_hits += 1;
            self.minute_hits += 1;
            self.total_hits += 1;
            self.push(self.now + cpu, EventKind::Done(id));
            return;
        }
        self.second().misses += 1;
        self.counters.cache_misses += 1;
        self.minute_misses += 1;
        self.total_misses += 1;
        let rep = &self.replicas[r];
        if rep.pool_in_use < rep.pool_open {
            self.begin_query(id);
        } else if rep.pool_open < rep.pool_size {
            if self.db_open >= self.model.db_max_connections {
                // "too many clients": the database refuses a new connection.
                self.push(self.now, EventKind::Fail(id));
                return;
            }
            self.replicas[r].pool_open += 1;
            self.db_open += 1;
            self.peak_db_connections = self.peak_db_connections.max(self.db_open);
            self.begin_query(id);
        } else {
            self.requests[id].waited_for_pool = true;
            self.requests[id].pool_wait_start = self.now;
            self.replicas[r].pool_waiters.push_back(id);
        }
    }

    fn begin_query(&mut self, id: usize) {
        let r = self.requests[id].replica;
        self.replicas[r].pool_in_use += 1;
        if self.requests[id].waited_for_pool {
            let waited = self.now - self.requests[id].pool_wait_start;
            self.counters.pool_wait_sum += waited;
            self.counters.pool_wait_count += 1;
            let s = self.second();
            s.pool_wait_sum += waited;
            s.pool_wait_count += 1;
        } else {
            self.counters.pool_wait_count += 1;
            self.second().pool_wait_count += 1;
        }
        self.db_active += 1;
        let slowdown = (f64::from(self.db_active) / self.model.db_cores).max(1.0);
        let t = self.lognormal_db.sample(&mut self.rng) * slowdown;
        self.requests[id].db_start = self.now;
        self.push(self.now + t, EventKind::DbDone(id));
    }

    fn db_done(&mut self, id: usize) {
        let r = self.requests[id].replica;
        self.db_active = self.db_active.saturating_sub(1);
        let rep = &mut self.replicas[r];
        rep.pool_in_use -= 1;
        // Shrink the pool when its size was lowered or the replica is leaving.
        let target = if rep.removed { 0 } else { rep.pool_size };
        if rep.pool_open > target {
            rep.pool_open -= 1;
            self.db_open -= 1;
        } else if let Some(next) = self.replicas[r].pool_waiters.pop_front() {
            self.begin_query(next);
        }
        let cpu = self.requests[id].cpu;
        self.push(self.now + cpu, EventKind::Done(id));
    }

    fn done(&mut self, id: usize) {
        let latency = self.now - self.requests[id].arrival;
        let error = latency > self.model.timeout;
        self.finish(id, error);
    }

    fn finish(&mut self, id: usize, error: bool) {
        let req = self.requests[id].clone();
        let latency = (self.now - req.arrival).min(self.model.timeout);
        self.record(latency, error);
        self.second().cpu += req.cpu;
        self.free.push(id);
        let r = req.replica;
        // Next queued request on this replica; requests queued past the timeout fail.
        while let Some(next) = self.replicas[r].queue.pop_front() {
            if self.now - self.requests[next].arrival > self.model.timeout {
                self.record(self.model.timeout, true);
                self.free.push(next);
                continue;
            }
            self.start(next);
            return;
        }
        self.replicas[r].busy -= 1;
    }

    /// Sets the replica count: new replicas start cold and become ready after the
    /// startup delay (`instant` skips it, for the oracle); removal takes starting
    /// replicas first, then the newest.
    pub fn set_replicas(&mut self, n: u32, instant: bool, warm: bool) {
        let n = n.max(1);
        let current = self.replicas();
        if n == current {
            return;
        }
        self.scaling_actions += 1;
        self.last_replica_change = self.now;
        if n > current {
            for _ in current..n {
                let idx = self.replicas.len();
                let served = if warm {
                    self.model.cache_warm_requests * 5.0
                } else {
                    0.0
                };
                self.replicas.push(Replica {
                    ready: instant,
                    removed: false,
                    busy: 0,
                    queue: VecDeque::new(),
                    pool_size: self.pool_size,
                    pool_open: 0,
                    pool_in_use: 0,
                    pool_waiters: VecDeque::new(),
                    served,
                });
                if !instant {
                    self.push(self.now + self.model.startup, EventKind::Ready(idx));
                }
            }
            self.rebuild_routable();
        } else {
            let mut to_remove = current - n;
            let mut order: Vec<usize> = (0..self.replicas.len())
                .filter(|&i| !self.replicas[i].removed)
                .collect();
            order.sort_by_key(|&i| (self.replicas[i].ready, std::cmp::Reverse(i)));
            for i in order {
                if to_remove == 0 {
                    break;
                }
                let rep = &mut self.replicas[i];
                rep.removed = true;
                // Idle connections close at once; busy ones when their query ends.
                let idle = rep.pool_open - rep.pool_in_use;
                rep.pool_open -= idle;
                self.db_open -= idle;
                to_remove -= 1;
            }
            self.rebuild_routable();
        }
    }

    /// Sets the per-replica pool size; surplus connections close as they free up.
    pub fn set_pool_size(&mut self, size: u32) {
        self.pool_size = size.max(1);
        for rep in self.replicas.iter_mut().filter(|r| !r.removed) {
            rep.pool_size = self.pool_size;
            let idle = rep.pool_open - rep.pool_in_use;
            let surplus = rep.pool_open.saturating_sub(rep.pool_size).min(idle);
            rep.pool_open -= surplus;
            self.db_open -= surplus;
        }
        // A larger pool serves waiters now.
        for r in 0..self.replicas.len() {
            while !self.replicas[r].removed
                && self.replicas[r].pool_open < self.replicas[r].pool_size
                && self.db_open < self.model.db_max_connections
                && !self.replicas[r].pool_waiters.is_empty()
            {
                let next = self.replicas[r].pool_waiters.pop_front().expect("a waiter");
                self.replicas[r].pool_open += 1;
                self.db_open += 1;
                self.peak_db_connections = self.peak_db_connections.max(self.db_open);
                self.begin_query(next);
            }
        }
    }

    /// Warms every replica's cache at once.
    pub fn warm_up(&mut self) {
        let warm = self.model.cache_warm_requests * 5.0;
        for rep in self.replicas.iter_mut() {
            rep.served = rep.served.max(warm);
        }
    }

    /// What a Prometheus scrape of the last minute would show.
    pub fn observe(&self) -> Observation {
        let mut buckets = [0u64; BUCKETS.len() + 1];
        let (mut requests, mut errors, mut hits, mut misses, mut cpu, mut wait_sum, mut wait_n) =
            (0u64, 0u64, 0u64, 0u64, 0.0, 0.0, 0u64);
        // Whole seconds only: the current second is still filling.
        let complete = self.seconds.len().saturating_sub(1);
        for s in self.seconds.iter().take(complete) {
            for (b, c) in buckets.iter_mut().zip(s.buckets.iter()) {
                *b += c;
            }
            requests += s.requests;
            errors += s.errors;
            hits += s.hits;
            misses += s.misses;
            cpu += s.cpu;
            wait_sum += s.pool_wait_sum;
            wait_n += s.pool_wait_count;
        }
        let window = complete.max(1) as f64;
        let mut latency = Percentiles::default();
        for q in governor_crds::Quantile::ALL {
            latency.set(q, histogram_quantile(q.value(), &BUCKETS, &buckets));
        }
        let live: Vec<&Replica> = self.replicas.iter().filter(|r| !r.removed).collect();
        let ready = self.ready_replicas();
        Observation {
            sampled_at: Some(self.now),
            request_rate: (complete > 0).then_some(requests as f64 / window),
            latency,
            error_rate: (requests > 0).then(|| errors as f64 / requests as f64),
            cache_hit_rate: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
            pool_in_use: Some(live.iter().map(|r| f64::from(r.pool_in_use)).sum()),
            pool_max: Some(live.iter().map(|r| f64::from(r.pool_size)).sum()),
            pool_pending: Some(live.iter().map(|r| r.pool_waiters.len() as f64).sum()),
            pool_wait: (wait_n > 0).then(|| wait_sum / wait_n as f64),
            ready_replicas: Some(ready),
            cpu_utilization: (ready > 0 && complete > 0)
                .then(|| cpu / (window * f64::from(ready) * f64::from(self.model.workers))),
        }
    }

    /// Pool gauges now: (in use, open and idle, pool size, waiting), summed over replicas.
    pub fn pool_gauges(&self) -> (u32, u32, u32, u32) {
        let live = self.replicas.iter().filter(|r| !r.removed);
        live.fold((0, 0, 0, 0), |acc, r| {
            (
                acc.0 + r.pool_in_use,
                acc.1 + (r.pool_open - r.pool_in_use),
                acc.2 + r.pool_size,
                acc.3 + r.pool_waiters.len() as u32,
            )
        })
    }

    /// Exact quantile of the latencies of the last `window` seconds (at most a
    /// minute; ground truth), if kept.
    pub fn recent_quantile(&self, q: f64, window: f64) -> Option<f64> {
        let since = self.now - window;
        let mut v: Vec<f32> = self
            .recent
            .iter()
            .filter(|(t, _)| *t >= since)
            .map(|(_, l)| *l)
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f32::total_cmp);
        let rank = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len());
        Some(f64::from(v[rank - 1]))
    }

    /// Database connections open now.
    pub fn db_connections(&self) -> u32 {
        self.db_open
    }
}

/// Prometheus's `histogram_quantile` on cumulative-by-construction bucket counts:
/// linear interpolation inside the bucket; the highest finite bound for +Inf.
pub fn histogram_quantile(q: f64, bounds: &[f64], counts: &[u64]) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut cumulative = 0u64;
    for (i, &c) in counts.iter().enumerate() {
        let prev = cumulative;
        cumulative += c;
        if cumulative as f64 >= rank && c > 0 {
            if i >= bounds.len() {
                return bounds.last().copied();
            }
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            let upper = bounds[i];
            let fraction = (rank - prev as f64) / c as f64;
            return Some(lower + (upper - lower) * fraction);
        }
    }
    bounds.last().copied()
}

/// The actuation port over a simulation. `instant` starts replicas at once with
/// warm caches (the oracle's privilege).
pub struct SimPort<'a> {
    pub sim: &'a mut Simulation,
    pub instant: bool,
}

impl crate::actuate::Port for SimPort<'_> {
    type Error = std::convert::Infallible;
    fn pool_size(&self) -> Option<u32> {
        Some(self.sim.pool_size())
    }
    async fn set_replicas(&mut self, replicas: u32) -> Result<u32, Self::Error> {
        self.sim.set_replicas(replicas, self.instant, self.instant);
        Ok(replicas)
    }
    async fn set_pool_size(&mut self, size: u32) -> Result<(), Self::Error> {
        self.sim.set_pool_size(size);
        Ok(())
    }
    async fn warm_up(&mut self) -> Result<(), Self::Error> {
        self.sim.warm_up();
        Ok(())
    }
}
