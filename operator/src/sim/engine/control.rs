//! Acting on a simulation: replica count, pool size and cache warm-up, and the
//! actuation port the operator's `actuate` code drives.

use std::collections::VecDeque;

use super::{EventKind, Replica, ReplicaLatency, Simulation};

impl Simulation {
    /// Sets the replica count: new replicas start cold and become ready after the
    /// startup delay; removal takes starting replicas first, then the newest.
    pub fn set_replicas(&mut self, n: u32) {
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
                let slowdown = self.model.replica_factor(idx);
                self.per_replica.push(ReplicaLatency::default());
                self.replicas.push(Replica {
                    ready: false,
                    removed: false,
                    busy: 0,
                    queue: VecDeque::new(),
                    pool_size: self.pool_size,
                    pool_open: 0,
                    pool_in_use: 0,
                    pool_waiters: VecDeque::new(),
                    served: 0.0,
                    slowdown,
                });
                self.push(self.now + self.model.startup, EventKind::Ready(idx));
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
}

/// The actuation port over a simulation: every policy, the oracle included,
/// acts through it under the same physics.
pub struct SimPort<'a> {
    pub sim: &'a mut Simulation,
}

impl crate::actuate::Port for SimPort<'_> {
    type Error = std::convert::Infallible;
    fn pool_size(&self) -> Option<u32> {
        Some(self.sim.pool_size())
    }
    async fn set_replicas(&mut self, replicas: u32) -> Result<u32, Self::Error> {
        self.sim.set_replicas(replicas);
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
