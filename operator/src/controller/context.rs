//! What every pass shares: the client, the Lease, metrics, the Event recorder,
//! the clock, and one memory per SLO (keyed by UID, pruned when the SLO goes).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use governor_crds::{ServiceLevelObjective, ServiceLevelObjectiveStatus as Status};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::Recorder;
use kube::{Client, ResourceExt};

use super::{Leader, Metrics};
use crate::decide::ControllerState;
use crate::observe::prometheus::Reading;

/// The time, injected so the controller's timing can be tested.
pub trait Clock: Send + Sync {
    /// Monotonic time, for intervals.
    fn now(&self) -> Instant;
    /// Wall-clock time, for decisions and status.
    fn wall(&self) -> SystemTime;
}

/// The system's clocks.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Seconds since the Unix epoch of `t`.
pub fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// An SLO's identity in memory: its UID, so a deleted and re-created SLO of
/// the same name starts afresh.
pub type Uid = String;

pub fn uid(slo: &ServiceLevelObjective) -> Uid {
    slo.uid()
        .unwrap_or_else(|| format!("{}/{}", slo.namespace().unwrap_or_default(), slo.name_any()))
}

/// What the controller keeps about one SLO between passes.
#[derive(Default)]
pub struct Memory {
    pub namespace: String,
    pub name: String,
    /// The newest reading, with the number of the cycle that read it.
    pub reading: Option<(u64, Reading)>,
    /// Since when the request rate has been back after a gap, if it went missing.
    pub gap_since: Option<Instant>,
    /// The decision engine's state.
    pub state: ControllerState,
    /// Whether `state` must be seeded from the SLO's status before the next
    /// decision: when first seen, and after a spell as a follower (another
    /// replica decided meanwhile).
    pub stale: bool,
    /// The last status written, and when (to skip writes that change nothing).
    pub written: Option<(Status, Instant)>,
    /// When the SLO was last decided, and on which cycle's reading.
    pub decided: Option<(Instant, u64)>,
    /// The spec generation and labels whose alert rules were applied (the
    /// SLO's labels go on its recordings; changing them bumps no generation).
    pub rules_applied: Option<(i64, std::collections::BTreeMap<String, String>)>,
    /// Why the alert rules were refused, while they are.
    pub rules_refused: Option<String>,
}

/// Every SLO's memory.
#[derive(Default)]
pub struct Memories(Mutex<HashMap<Uid, Memory>>);

impl Memories {
    /// Runs `f` on the memory of `slo`, created empty when new.
    pub fn with<R>(&self, slo: &ServiceLevelObjective, f: impl FnOnce(&mut Memory) -> R) -> R {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let m = all.entry(uid(slo)).or_insert_with(|| Memory {
            namespace: slo.namespace().unwrap_or_default(),
            name: slo.name_any(),
            stale: true,
            ..Memory::default()
        });
        f(m)
    }

    /// Forgets every SLO not in `live`; returns the (namespace, name) of those forgotten.
    pub fn retain(&self, live: &[&ServiceLevelObjective]) -> Vec<(String, String)> {
        let keep: std::collections::HashSet<Uid> = live.iter().map(|s| uid(s)).collect();
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<Uid> = all.keys().filter(|k| !keep.contains(*k)).cloned().collect();
        gone.into_iter()
            .filter_map(|k| all.remove(&k))
            .map(|m| (m.namespace, m.name))
            .collect()
    }
}

/// What every pass shares.
pub struct Context {
    pub client: Client,
    pub leader: Leader,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub clock: Box<dyn Clock>,
    pub memories: Memories,
    /// Whether the cluster serves prometheus-operator's PrometheusRule.
    pub prometheus_operator: bool,
    /// Every HorizontalPodAutoscaler, to find the one scaling a target.
    pub hpas: crate::scope::Stores<HorizontalPodAutoscaler>,
    pub dashboard_url: Option<String>,
    /// Labels and annotations for the objects holding each SLO's rules.
    pub rules_metadata: crate::rules::ExtraMetadata,
    /// Prometheus's scrape interval, the floor of the rules' windows.
    pub scrape_interval: std::time::Duration,
    /// The background queue of cache warm-ups.
    pub warm_ups: super::warm_up::WarmUps,
}

impl Context {
    /// Seconds since the Unix epoch, by the injected clock.
    pub fn unix_now(&self) -> f64 {
        unix(self.clock.wall())
    }

    /// Now, as a Kubernetes timestamp, by the injected clock.
    pub fn time(&self) -> Time {
        Time(Timestamp::try_from(self.clock.wall()).unwrap_or_default())
    }

    /// How long until `slo` is due, when it is not: at most one decision per
    /// evaluation interval, and each on a reading not decided on before (unless
    /// the observer has not delivered one for two intervals).
    pub fn not_due(&self, slo: &ServiceLevelObjective, interval: Duration) -> Option<Duration> {
        let now = self.clock.now();
        self.memories.with(slo, |m| {
            let (at, cycle) = m.decided?;
            let newest = m.reading.as_ref().map(|(n, _)| *n);
            let elapsed = now.saturating_duration_since(at);
            if elapsed < interval.mul_f64(0.9) {
                return Some(interval.saturating_sub(elapsed));
            }
            (newest.is_none_or(|n| n == cycle) && elapsed < 2 * interval).then_some(interval)
        })
    }
}
