//! Act: the actuation port over the Kubernetes API. The order of the changes
//! and the plan's translation into them live in `crate::actuate`; this is only
//! how each change is written to the cluster.

use governor_crds::ServiceLevelObjective;
use kube::Client;
use tracing::Instrument;

use super::target::Target;
use super::warm_up::WarmUps;
use super::{Error, Leader};
use crate::actuate::Port;

/// One SLO's target, as a port for one pass.
pub struct ClusterPort<'a> {
    pub client: &'a Client,
    /// Each write is fenced: refused unless this replica leads.
    pub leader: &'a Leader,
    pub slo: &'a ServiceLevelObjective,
    pub namespace: &'a str,
    pub target: &'a Target,
    /// The pool size read at the start of the pass.
    pub pool: Option<u32>,
    /// Where warm-ups wait: a pass only enqueues one.
    pub warm_ups: &'a WarmUps,
}

impl Port for ClusterPort<'_> {
    type Error = Error;

    fn pool_size(&self) -> Option<u32> {
        self.pool
    }

    async fn set_replicas(&mut self, replicas: u32) -> Result<u32, Error> {
        self.target
            .scale(self.client, self.leader, replicas)
            .instrument(tracing::info_span!("act", knob = "replicas", to = replicas))
            .await
    }

    async fn set_pool_size(&mut self, size: u32) -> Result<(), Error> {
        self.target
            .set_pool_size(
                self.client,
                self.leader,
                self.namespace,
                &self.slo.spec,
                size,
            )
            .instrument(tracing::info_span!("act", knob = "pool_size", to = size))
            .await?;
        self.pool = Some(size);
        Ok(())
    }

    async fn warm_up(&mut self) -> Result<(), Error> {
        let _span = tracing::info_span!("act", knob = "cache_warm_up").entered();
        self.warm_ups.enqueue(self.slo)
    }
}
