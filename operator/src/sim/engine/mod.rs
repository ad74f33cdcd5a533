//! The discrete-event simulation of one service: Poisson arrivals, replicas with
//! a fixed worker concurrency and startup delay, per-replica caches and
//! connection pools, one shared database. Deterministic for a seed.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};

mod control;
mod model;
mod readout;

pub use control::SimPort;
pub use model::{BUCKETS, Counters, InitialState, MinuteStats, ReplicaLatency, ServiceModel};
pub use readout::histogram_quantile;

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
    /// CPU-time multiplier (a bad pod is slower than its peers).
    slowdown: f64,
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

/// The simulated service. `Clone` copies its whole state, random generator
/// included, so a clone replays exactly what the original would (the oracle
/// searches this way).
#[derive(Clone)]
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
    /// What each replica served, by creation order (ground truth; the policies
    /// see only the shared histogram).
    pub per_replica: Vec<ReplicaLatency>,
    /// Raw latencies of the last minute (ground truth), when `keep_recent`.
    pub recent: VecDeque<(f64, f32)>,
    pub keep_recent: bool,
    rate_max: f64,
    lognormal_cpu: LogNormal<f64>,
    lognormal_db: LogNormal<f64>,
}

/// The observation window, as `rate(...[1m])` reads it.
pub const WINDOW_SECONDS: usize = 60;

/// The lognormal with this mean and shape (the service-time distributions; the
/// real-workload benchmark's service draws from the same).
pub fn lognormal(mean: f64, sigma: f64) -> LogNormal<f64> {
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
            per_replica: Vec::new(),
            recent: VecDeque::new(),
            keep_recent: false,
            rate_max: rate_max.max(1e-6),
            lognormal_cpu,
            lognormal_db,
        };
        sim.seconds.push_back(Second::default());
        for i in 0..initial.replicas.max(1) as usize {
            let slowdown = sim.model.replica_factor(i);
            sim.per_replica.push(ReplicaLatency::default());
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
                slowdown,
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

    fn record_replica(&mut self, r: usize, latency: f64) {
        if let Some(p) = self.per_replica.get_mut(r) {
            p.requests += 1;
            p.latency_sum += latency;
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
        } * self.replicas[r].slowdown;
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
        let t = self.lognormal_db.sample(&mut self.rng) * slowdown * self.model.db_factor(self.now);
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
        self.record_replica(req.replica, latency);
        self.second().cpu += req.cpu;
        self.free.push(id);
        let r = req.replica;
        // Next queued request on this replica; requests queued past the timeout fail.
        while let Some(next) = self.replicas[r].queue.pop_front() {
            if self.now - self.requests[next].arrival > self.model.timeout {
                self.record(self.model.timeout, true);
                self.record_replica(r, self.model.timeout);
                self.free.push(next);
                continue;
            }
            self.start(next);
            return;
        }
        self.replicas[r].busy -= 1;
    }
}
