//! The connection-pool stage of the request path: workers per replica ->
//! connection pool per replica (size p) -> database (total budget B). Each
//! replica's pool is an M/M/p queue of queries (the cache misses), each holding
//! a connection for the query time learned by Little's law; a replica that
//! starts cold turns every hit into a query. Used to predict latency from
//! (replicas, pool) together and to see the database limit before the knee.

#[cfg(test)]
use governor_crds::Quantile;

use super::{Pass, ms};
use crate::estimate::Estimate;
use crate::queueing::WaitTail;

/// Connections in use over this share of the budget at the forecast load:
/// the database budget, not replicas, is the limit.
const BUDGET_SATURATION: f64 = 0.9;
/// A pool this full (in use / size) with queries waiting is saturated.
const POOL_SATURATION: f64 = 0.9;
/// Queries this much slower than unloaded, while the latency tail queues:
/// the database itself is slowing down.
const DATABASE_SLOWDOWN: f64 = 1.5;

/// What the model knows of the connection stage this pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct PoolStage {
    /// Share of requests that need no query (a missing hit rate reads as none:
    /// every request queries, the most connections it can need).
    hit: f64,
    /// Mean seconds a query holds a connection.
    query_time: f64,
    /// New replicas start with an empty cache (no warm-up before scale-up).
    cold_start: bool,
}

impl PoolStage {
    /// The stage, once a query time was learned and Governor manages a pool.
    pub fn of(pass: &Pass, model: &Estimate) -> Option<Self> {
        pass.spec.connection_pool.as_ref()?;
        let query_time = model.query_time.filter(|d| *d > 0.0)?;
        let cache = pass.spec.cache.as_ref();
        Some(Self {
            hit: pass.obs.cache_hit_rate.unwrap_or(0.0),
            query_time,
            cold_start: cache.is_some_and(|c| !c.warm_before_scale_up),
        })
    }

    /// Seconds a request on a cold replica takes over one on a warm replica:
    /// each of its hits is now a query.
    pub fn cold_penalty(&self) -> f64 {
        if self.cold_start {
            self.hit * self.query_time
        } else {
            0.0
        }
    }

    /// How many times longer a cold replica holds a worker per request than a
    /// warm one with mean service time `service_time` (1 when replicas do not
    /// start cold, or the service time is not known yet).
    pub fn cold_slowdown(&self, service_time: Option<f64>) -> f64 {
        match service_time {
            Some(s) if s > 0.0 => (s + self.cold_penalty()) / s,
            _ => 1.0,
        }
    }

    /// Predicted wait for a connection at quantile `q` on a replica with
    /// `rate` requests/s and a pool of `pool`; `cold`: its cache is empty.
    #[cfg(test)]
    pub fn wait(&self, q: Quantile, rate: f64, pool: u32, cold: bool) -> f64 {
        self.queue(rate, pool, cold).quantile(q.value())
    }

    /// The pool's queue of queries, for [`Self::wait`] at several quantiles.
    pub fn queue(&self, rate: f64, pool: u32, cold: bool) -> WaitTail {
        let hit = if cold && self.cold_start {
            0.0
        } else {
            self.hit
        };
        let queries = rate.max(0.0) * (1.0 - hit);
        WaitTail::new(pool.max(1), queries, 1.0 / self.query_time)
    }

    /// Connections the whole service holds at once at `rate` requests/s.
    pub fn connections(&self, rate: f64) -> f64 {
        rate.max(0.0) * (1.0 - self.hit) * self.query_time
    }
}

/// The database as the limit, in words, seen ahead of a breach: queries take
/// much longer than unloaded while the latency tail queues (`queueing`), at the
/// forecast load the service needs nearly the whole connection budget, or the
/// pools are saturated with queries waiting while one more replica would
/// exceed the budget.
pub(super) fn database_limit(
    pass: &Pass,
    model: &Estimate,
    forecast: f64,
    queueing: bool,
) -> Option<String> {
    let budget = pass.limits.budget?;
    let pool = pass.current.pool_size?;
    let obs = &pass.obs;
    let total = f64::from(budget.total());
    if let (Some(d), Some(floor)) = (model.query_time, model.query_time_floor)
        && queueing
        && floor > 0.0
        && obs
            .pool_in_use
            .is_some_and(|u| u >= crate::estimate::FLOOR_MIN_CONNECTIONS)
        && d >= DATABASE_SLOWDOWN * floor
    {
        return Some(format!(
            "the database is the limit: queries hold a connection {} against {} unloaded ({:.1}x) \
             while latency queues, with {:.0} connections in use — more replicas would not help",
            ms(d),
            ms(floor),
            d / floor,
            obs.pool_in_use.unwrap_or(0.0)
        ));
    }
    if let Some(stage) = PoolStage::of(pass, model) {
        let needed = stage.connections(forecast);
        if needed >= BUDGET_SATURATION * total {
            return Some(format!(
                "database connection budget is the limit: at {forecast:.0} rps forecast the queries \
                 hold {needed:.0} connections ({} each), {:.0}% of the budget {} — more replicas would not help",
                ms(stage.query_time),
                needed / total * 100.0,
                budget.total()
            ));
        }
    }
    let waiting =
        obs.pool_pending.is_some_and(|p| p >= 1.0) || obs.pool_wait.is_some_and(|w| w > 0.0);
    let saturated = match (obs.pool_in_use, obs.pool_max) {
        (Some(used), Some(size)) if size > 0.0 => used >= POOL_SATURATION * size,
        _ => false,
    };
    (waiting && saturated && budget.at_budget(pass.cur(), pool)).then(|| {
        format!(
            "database connection budget is the limit: {}, and one more replica would exceed the budget {} \
             — more replicas would not help",
            super::bottleneck::pools_in_use(obs, obs.pool_wait.unwrap_or(0.0)),
            budget.total()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::testing::{SpecBuilder, healthy};

    fn spec() -> governor_crds::ServiceLevelObjectiveSpec {
        // Budget 40, pool 2..=50.
        SpecBuilder::new()
            .p99("100ms")
            .replicas(2, 20)
            .pool(2, 50)
            .database(50, 0.8)
            .build()
    }

    fn stage(hit: f64, query_time: f64) -> PoolStage {
        PoolStage {
            hit,
            query_time,
            cold_start: true,
        }
    }

    #[test]
    fn a_pool_smaller_than_the_queries_need_waits() {
        let s = stage(0.5, 0.03);
        // 100 rps per replica, half of them queries of 30 ms: 1.5 connections busy.
        assert_eq!(s.wait(Quantile::P99, 100.0, 8, false), 0.0);
        let short = s.wait(Quantile::P99, 100.0, 2, false);
        assert!(short > 0.01, "{short}");
        assert!(s.wait(Quantile::P99, 100.0, 1, false).is_infinite());
    }

    #[test]
    fn a_cold_replica_queries_for_every_request() {
        let s = stage(0.9, 0.03);
        assert!((s.cold_penalty() - 0.027).abs() < 1e-9);
        assert!(s.wait(Quantile::P99, 100.0, 3, true) > s.wait(Quantile::P99, 100.0, 3, false));
        let warm_only = PoolStage {
            cold_start: false,
            ..s
        };
        assert_eq!(warm_only.cold_penalty(), 0.0);
        // 23 ms warm, 27 ms more cold: a cold replica is busy 50/23 as long.
        assert!((s.cold_slowdown(Some(0.023)) - 0.05 / 0.023).abs() < 1e-9);
        assert_eq!(warm_only.cold_slowdown(Some(0.023)), 1.0);
        assert_eq!(s.cold_slowdown(None), 1.0);
    }

    #[test]
    fn the_budget_is_reported_before_the_knee_at_the_forecast_load() {
        let spec = spec();
        let obs = healthy(0.0);
        let pass = Pass::at(&spec, &obs, 4, Some(10), 0.0);
        let model = Estimate {
            query_time: Some(0.1),
            ..Estimate::default()
        };
        // healthy: no hit rate known, every request queries: 100 rps x 0.1 s = 10.
        assert_eq!(database_limit(&pass, &model, 100.0, false), None);
        let why = database_limit(&pass, &model, 380.0, false).expect("38 of 40 connections");
        assert!(why.contains("budget 40"), "{why}");
        assert!(why.contains("380 rps forecast"), "{why}");
    }

    #[test]
    fn saturated_pools_with_waiters_at_the_budget_are_the_limit() {
        let spec = spec();
        let mut obs = healthy(0.0);
        (obs.pool_in_use, obs.pool_max, obs.pool_pending) = (Some(40.0), Some(40.0), Some(3.0));
        let model = Estimate::default();
        let at_budget = Pass::at(&spec, &obs, 4, Some(10), 0.0);
        assert!(database_limit(&at_budget, &model, 100.0, false).is_some());
        let room = Pass::at(&spec, &obs, 2, Some(10), 0.0);
        assert_eq!(
            database_limit(&room, &model, 100.0, false),
            None,
            "a 3rd replica fits"
        );
    }

    #[test]
    fn queries_slowing_while_latency_queues_is_the_database() {
        let spec = spec();
        let mut obs = healthy(0.0);
        obs.pool_in_use = Some(8.0);
        let pass = Pass::at(&spec, &obs, 2, Some(10), 0.0);
        let mut model = Estimate::default();
        (model.query_time, model.query_time_floor) = (Some(0.08), Some(0.045));
        let why = database_limit(&pass, &model, 100.0, true).expect("1.8x slower");
        assert!(why.contains("1.8x"), "{why}");
        assert_eq!(
            database_limit(&pass, &model, 100.0, false),
            None,
            "no queueing"
        );
        obs.pool_in_use = Some(1.0);
        let few = Pass::at(&spec, &obs, 2, Some(10), 0.0);
        assert_eq!(
            database_limit(&few, &model, 100.0, true),
            None,
            "one connection says little"
        );
        model.query_time = Some(0.05);
        assert_eq!(
            database_limit(&pass, &model, 100.0, true),
            None,
            "1.1x is noise"
        );
    }
}
