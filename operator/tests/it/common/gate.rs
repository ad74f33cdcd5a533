//! One pool of slots for the tests that start real servers (API server and
//! etcd, Prometheus, Alertmanager, Jaeger, the simulator, Chromium).
//!
//! These tests used to be spread over one test binary per file, and cargo runs
//! test binaries one after another: at most the tests of one file ran side by
//! side. In one binary, every test shares the test threads, so without a gate
//! the operator's end-to-end tests would overlap with each other and with
//! every other server test. A test holds its slot for its whole body (bind it
//! first: `let _slot = gate::heavy().await;`, so that it drops after the
//! servers); a panic releases it too.
//!
//! - `heavy()`: one slot. The pool has `GOVERNOR_HEAVY_TESTS` slots, 2 by
//!   default: what two test threads ran at once before, whatever the cores.
//! - `alone()`: the whole pool, for the tests that measure time or memory with
//!   the machine to themselves and had a binary to themselves (or nearly)
//!   before: the operator's end-to-end tests.
//!
//! Tokio's semaphore is not bound to a runtime, so each `#[tokio::test]` (a
//! runtime of its own) can wait on it; it is fair, so `alone()` is not starved
//! by a stream of `heavy()` tests.

use std::sync::LazyLock;

use tokio::sync::{Semaphore, SemaphorePermit};

struct Pool {
    slots: Semaphore,
    size: u32,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| {
    let size = std::env::var("GOVERNOR_HEAVY_TESTS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(2);
    Pool {
        slots: Semaphore::new(size as usize),
        size,
    }
});

/// Waits for one slot; it is free again when the permit drops.
pub async fn heavy() -> SemaphorePermit<'static> {
    POOL.slots
        .acquire()
        .await
        .expect("the gate is never closed")
}

/// Waits until no other server test runs, and keeps it so until the permit drops.
pub async fn alone() -> SemaphorePermit<'static> {
    POOL.slots
        .acquire_many(POOL.size)
        .await
        .expect("the gate is never closed")
}
