//! Leader election with a `coordination.k8s.io/v1` Lease: one replica acts,
//! the others wait; a leader that stops renewing loses the lease after its
//! duration, and a leader that shuts down releases it at once.
//!
//! As client-go's leaderelection: the Lease lasts `duration` for the others, but
//! this replica holds it only for a *renew deadline* (two thirds of it) after
//! the start of its last successful renew, by the monotonic clock. A renew that
//! hangs is abandoned at that deadline, and `is_leader` compares the clock with
//! the last renew on every call, so a renew task that is stuck, or a process that
//! was frozen and just resumed, stops leading at once, before the others may
//! take the Lease. Every write to the cluster calls [`Leader::guard`] right
//! before it is sent.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use super::Error;

/// When this replica's leadership was last confirmed, by the monotonic clock,
/// and for how long a confirmation holds.
#[derive(Debug)]
pub struct Term {
    renewed: Mutex<Option<Instant>>,
    deadline: Duration,
}

impl Term {
    pub fn new(deadline: Duration) -> Self {
        Self {
            renewed: Mutex::new(None),
            deadline,
        }
    }

    fn renewed(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.renewed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a renew that started at most `deadline` before `now` succeeded.
    pub fn holds_at(&self, now: Instant) -> bool {
        self.renewed()
            .is_some_and(|at| now.saturating_duration_since(at) < self.deadline)
    }

    /// How long a renew started at `now` may take: until the term ends, or a
    /// whole deadline when no term holds.
    pub fn budget_at(&self, now: Instant) -> Duration {
        let renewed = *self.renewed();
        match renewed {
            Some(at) if now.saturating_duration_since(at) < self.deadline => {
                (at + self.deadline) - now
            }
            _ => self.deadline,
        }
    }

    /// A renew that started at `started` succeeded.
    pub fn renew(&self, started: Instant) {
        let mut r = self.renewed();
        // Never moves back: a slow renew does not shorten a newer one.
        if r.is_none_or(|at| started > at) {
            *r = Some(started);
        }
    }

    /// Leadership ends now; returns whether it held.
    pub fn end(&self, now: Instant) -> bool {
        let held = self.holds_at(now);
        *self.renewed() = None;
        held
    }
}

#[derive(Clone)]
pub struct Leader {
    api: Api<Lease>,
    name: String,
    pub identity: String,
    pub duration: Duration,
    /// How often the Lease is renewed, or tried for by a follower.
    pub retry: Duration,
    term: Arc<Term>,
}

impl Leader {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
            retry: (duration / 5).max(Duration::from_millis(200)),
            term: Arc::new(Term::new(renew_deadline(duration))),
        }
    }

    /// Whether this replica leads now: its last renew started less than the
    /// renew deadline ago, by the monotonic clock.
    pub fn is_leader(&self) -> bool {
        self.term.holds_at(Instant::now())
    }

    /// Called right before each write to the cluster: refuses it unless this
    /// replica leads now.
    pub fn guard(&self) -> Result<(), Error> {
        if self.is_leader() {
            Ok(())
        } else {
            Err(Error::NotLeader)
        }
    }

    fn spec(&self, transitions: i32, acquired: Option<MicroTime>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration.as_secs().max(1) as i32),
            acquire_time: acquired.or_else(|| Some(MicroTime(Timestamp::now()))),
            renew_time: Some(MicroTime(Timestamp::now())),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// One attempt to take or keep the lease; returns whether this replica leads.
    pub async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let lease = match self.api.get_opt(&self.name).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(0, None)),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    // Another replica created it first.
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                };
            }
            Some(l) => l,
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.identity;
        let expired = spec.renew_time.as_ref().is_none_or(|t| {
            let d = i64::from(spec.lease_duration_seconds.unwrap_or(15));
            t.0.checked_add(SignedDuration::from_secs(d))
                .is_ok_and(|end| end < Timestamp::now())
        });
        if !(ours || holder.is_empty() || expired) {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!ours);
        let acquired = if ours {
            spec.acquire_time.clone()
        } else {
            None
        };
        let mut next = lease.clone();
        next.spec = Some(self.spec(transitions, acquired));
        // replace carries the resourceVersion: a concurrent taker gets a 409.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One renew (or attempt to take the lease), abandoned when it cannot end
    /// before the term does; returns whether this replica leads after it.
    pub async fn renew(&self) -> bool {
        let started = Instant::now();
        let budget = self.term.budget_at(started);
        match tokio::time::timeout(budget, self.try_acquire()).await {
            Ok(Ok(true)) => self.term.renew(started),
            Ok(Ok(false)) => {
                self.term.end(Instant::now());
            }
            // A failed renew is tried again until the term ends on its own.
            Ok(Err(e)) => tracing::warn!(error = %e, "lease {}: cannot renew", self.name),
            Err(_) => {
                if self.term.end(Instant::now()) {
                    tracing::warn!(
                        "lease {}: no answer within the renew deadline ({:?}); leadership given up",
                        self.name,
                        budget
                    );
                }
            }
        }
        self.is_leader()
    }

    /// Renews every `retry` until the process ends; `gauge` shows 1 while leading.
    pub fn spawn(
        &self,
        gauge: prometheus_client::metrics::gauge::Gauge,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut was = false;
            loop {
                let leading = me.renew().await;
                gauge.set(i64::from(leading));
                if leading != was {
                    tracing::info!(identity = %me.identity, leading, "leadership changed");
                    was = leading;
                }
                tokio::time::sleep(me.retry).await;
            }
        })
    }

    /// Gives the lease up so another replica takes over at once.
    pub async fn release(&self) {
        if !self.term.end(Instant::now()) {
            return;
        }
        tracing::info!(identity = %self.identity, "releasing the lease");
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await
            && lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(self.identity.as_str())
        {
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
                spec.lease_duration_seconds = Some(1);
                spec.renew_time = Some(MicroTime(Timestamp::now()));
            }
            let _ = self
                .api
                .replace(&self.name, &PostParams::default(), &lease)
                .await;
        }
    }
}

/// How long a renew holds for this replica: two thirds of the lease (client-go's
/// defaults are 10 s of 15 s), so that the others, who wait the whole lease
/// from the renew time, find it expired only after this replica stopped.
pub fn renew_deadline(lease: Duration) -> Duration {
    lease * 2 / 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_holds_until_the_renew_deadline_by_the_monotonic_clock() {
        let lease = Duration::from_secs(15);
        let term = Term::new(renew_deadline(lease));
        let t0 = Instant::now();
        assert!(!term.holds_at(t0), "no renew yet");
        term.renew(t0);
        assert!(term.holds_at(t0 + Duration::from_millis(9_999)));
        // However the renew task fares: stuck, or the process frozen and
        // resumed, the clock alone ends the term.
        assert!(!term.holds_at(t0 + Duration::from_secs(10)));
        assert!(!term.holds_at(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn a_renew_may_take_only_what_is_left_of_the_term() {
        let term = Term::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(term.budget_at(t0), Duration::from_secs(10));
        term.renew(t0);
        assert_eq!(
            term.budget_at(t0 + Duration::from_secs(7)),
            Duration::from_secs(3)
        );
        // Past the term, an attempt to take the lease again gets a whole deadline.
        assert_eq!(
            term.budget_at(t0 + Duration::from_secs(12)),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn a_slow_renew_never_moves_the_term_back_and_an_end_is_at_once() {
        let term = Term::new(Duration::from_secs(10));
        let t0 = Instant::now();
        term.renew(t0 + Duration::from_secs(5));
        term.renew(t0);
        assert!(term.holds_at(t0 + Duration::from_secs(14)));
        assert!(term.end(t0 + Duration::from_secs(6)));
        assert!(!term.holds_at(t0 + Duration::from_secs(6)));
        assert!(!term.end(t0 + Duration::from_secs(6)), "ended already");
    }
}
