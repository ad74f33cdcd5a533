//! A single-flight cache: answers kept by key for a time to live, and while
//! one is being fetched, everyone asking for that key waits for the same
//! fetch. Keys never wait on each other: the map's lock is held only to find
//! or make a key's entry, never while fetching.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// One key's answer: empty while it is fetched, then the answer and when it came.
struct Entry<V>(OnceCell<(Instant, V)>);

impl<V> Entry<V> {
    /// Still worth keeping: being fetched, or fetched within `ttl`.
    fn live(&self, ttl: Duration) -> bool {
        self.0.get().is_none_or(|(at, _)| at.elapsed() < ttl)
    }
}

/// Answers by key, each fetched once per `ttl` however many ask at once.
pub struct Flights<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, Arc<Entry<V>>>>,
}

impl<K: Eq + Hash, V: Clone> Flights<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The answer for `key`: the cached one if younger than the time to live,
    /// else the one being fetched, else `fetch`'s (which then is kept). If the
    /// caller fetching is cancelled, one of those waiting fetches instead.
    pub async fn get<F, Fut>(&self, key: K, fetch: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let entry = {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            entries.retain(|_, e| e.live(self.ttl));
            entries
                .entry(key)
                .or_insert_with(|| Arc::new(Entry(OnceCell::new())))
                .clone()
        };
        let (_, v) = entry
            .0
            .get_or_init(|| async {
                let v = fetch().await;
                (Instant::now(), v)
            })
            .await;
        v.clone()
    }

    /// Keys held now, being fetched or fresh.
    pub fn len(&self) -> usize {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.values().filter(|e| e.live(self.ttl)).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Notify;

    use super::*;

    const BOUND: Duration = Duration::from_secs(5);

    /// Many readers of one key while its fetch is under way: one fetch, one
    /// answer. On the current-thread runtime a reader runs from asking to
    /// waiting without interruption, so once all have asked, all are waiting.
    #[tokio::test]
    async fn concurrent_reads_of_one_key_share_one_fetch() {
        const READERS: usize = 50;
        let flights = Arc::new(Flights::<&str, u32>::new(Duration::from_secs(3600)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let asked = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Notify::new());
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (flights, fetches, asked, release) = (
                    flights.clone(),
                    fetches.clone(),
                    asked.clone(),
                    release.clone(),
                );
                tokio::spawn(async move {
                    asked.fetch_add(1, Ordering::SeqCst);
                    flights
                        .get("a", || async move {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            release.notified().await;
                            7
                        })
                        .await
                })
            })
            .collect();
        let deadline = Instant::now() + BOUND;
        while asked.load(Ordering::SeqCst) < READERS {
            assert!(Instant::now() < deadline, "the readers did not all ask");
            tokio::task::yield_now().await;
        }
        assert!(readers.iter().all(|r| !r.is_finished()));
        release.notify_one();
        for r in readers {
            assert_eq!(tokio::time::timeout(BOUND, r).await.unwrap().unwrap(), 7);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // Within the time to live, later readers get the kept answer.
        assert_eq!(flights.get("a", || async { 8 }).await, 7);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    /// A key whose fetch hangs does not hold up another key, nor a second
    /// reader of the other key.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_key_does_not_delay_another() {
        let flights = Arc::new(Flights::<&str, u32>::new(Duration::from_secs(3600)));
        let started = Arc::new(Notify::new());
        let slow = {
            let (flights, started) = (flights.clone(), started.clone());
            tokio::spawn(async move {
                flights
                    .get("slow", || async move {
                        started.notify_one();
                        std::future::pending::<u32>().await
                    })
                    .await
            })
        };
        tokio::time::timeout(BOUND, started.notified())
            .await
            .expect("the slow fetch starts");
        let t = Instant::now();
        let fast = tokio::time::timeout(BOUND, flights.get("fast", || async { 1 }))
            .await
            .expect("the fast key is answered while the slow one hangs");
        assert_eq!(fast, 1);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert!(!slow.is_finished());
        assert_eq!(flights.len(), 2);
        slow.abort();
    }

    /// An answer older than the time to live is fetched again; a cancelled
    /// fetch leaves the key to the next reader.
    #[tokio::test]
    async fn expired_answers_and_cancelled_fetches_are_fetched_again() {
        let flights = Flights::<u8, usize>::new(Duration::ZERO);
        let fetches = AtomicUsize::new(0);
        let fetch = || async { fetches.fetch_add(1, Ordering::SeqCst) + 1 };
        assert_eq!(flights.get(1, fetch).await, 1);
        assert_eq!(flights.get(1, fetch).await, 2);
        assert!(flights.is_empty());

        let kept = Flights::<u8, u32>::new(Duration::from_secs(3600));
        let cancelled =
            tokio::time::timeout(Duration::from_millis(10), kept.get(1, std::future::pending))
                .await;
        assert!(cancelled.is_err());
        assert_eq!(kept.get(1, || async { 3 }).await, 3);
        assert_eq!(kept.get(1, || async { 4 }).await, 3);
    }
}
