//! Leader election with a `coordination.k8s.io/v1` Lease: one replica acts,
//! the others wait; a leader that stops renewing loses the lease after its
//! duration, and a leader that shuts down releases it at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

#[derive(Clone)]
pub struct Leader {
    api: Api<Lease>,
    name: String,
    pub identity: String,
    pub duration: Duration,
    leading: Arc<AtomicBool>,
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
            leading: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
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

    /// Keeps trying every third of the lease duration until the process ends;
    /// `gauge` shows 1 while leading.
    pub fn spawn(
        &self,
        gauge: prometheus_client::metrics::gauge::Gauge,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let period = (me.duration / 3).max(Duration::from_millis(500));
            loop {
                let leading = match me.try_acquire().await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "lease {}: cannot renew", me.name);
                        false
                    }
                };
                gauge.set(i64::from(leading));
                let was = me.leading.swap(leading, Ordering::SeqCst);
                if leading != was {
                    tracing::info!(identity = %me.identity, leading, "leadership changed");
                }
                tokio::time::sleep(period).await;
            }
        })
    }

    /// Gives the lease up so another replica takes over at once.
    pub async fn release(&self) {
        if !self.leading.swap(false, Ordering::SeqCst) {
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
