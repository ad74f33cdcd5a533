//! OpenSLO v1 (`openslo/v1`) to and from ServiceLevelObjectives, for what
//! both can say: an `SLO` with a rolling window and the `Occurrences` method,
//! its `SLI` (inline or by `indicatorRef`) read from Prometheus — a
//! `ratioMetric` of bad or good over total requests becomes the availability
//! objective, a `thresholdMetric` on `histogram_quantile(q, ...)` a latency
//! target, or on a `Jaeger` source (Governor's own: `service`, `operation`,
//! `quantile`) a latency target read from traces — and its `AlertPolicy`
//! (inline or by `alertPolicyRef`), whose
//! severities switch Governor's page and ticket tiers. OpenSLO SLOs that
//! carry the same `governor.dev/slo` annotation become one
//! ServiceLevelObjective, which is how `export` writes them. What cannot be
//! mapped is an error naming its document and field.

use std::collections::BTreeMap;

use governor_crds::{Quantile, ServiceLevelObjective};
use serde_json::{Map, Value, json};

use crate::rules::{Tier, duration};

mod export;
mod import;
mod indicators;
#[cfg(test)]
mod tests;

pub use export::export;
pub use import::import;

pub const API_VERSION: &str = "openslo/v1";
/// Groups OpenSLO SLOs into one ServiceLevelObjective (its name).
pub const SLO_ANNOTATION: &str = "governor.dev/slo";
/// The ServiceLevelObjective's namespace.
pub const NAMESPACE_ANNOTATION: &str = "governor.dev/namespace";
/// The workload, as `Kind/name` or `apiVersion/Kind/name`; default `Deployment/<service>`.
pub const TARGET_ANNOTATION: &str = "governor.dev/target-ref";
/// The `metricSource.type` of a latency read from Jaeger traces. OpenSLO
/// leaves a source's type and `spec` to the tools; this one's `spec` is
/// `service`, `operation` (optional) and `quantile`.
pub const JAEGER_SOURCE: &str = "Jaeger";

/// A field that cannot be mapped: the document (`SLO/name`) and the path in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub document: String,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.document, self.field, self.message)
    }
}

fn refuse(document: &str, field: &str, message: impl Into<String>) -> Refusal {
    Refusal {
        document: document.into(),
        field: field.into(),
        message: message.into(),
    }
}

/// The OpenSLO documents of some files, by kind and name.
#[derive(Debug, Default)]
pub struct Documents {
    slos: Vec<Value>,
    slis: BTreeMap<String, Value>,
    policies: BTreeMap<String, Value>,
    sources: BTreeMap<String, Value>,
}

impl Documents {
    /// Adds the documents of one YAML text (several documents allowed).
    pub fn add(&mut self, text: &str) -> Result<(), String> {
        for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let doc: Value = serde::Deserialize::deserialize(de)
                .map_err(|e| format!("document {}: not YAML: {e}", i + 1))?;
            if doc.is_null() {
                continue;
            }
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let at = format!("document {} ({kind}/{name})", i + 1);
            if doc["apiVersion"] != API_VERSION {
                return Err(format!(
                    "{at}: apiVersion: {} is not {API_VERSION}",
                    doc["apiVersion"]
                ));
            }
            if name.is_empty() {
                return Err(format!("{at}: metadata.name: required"));
            }
            match kind.as_str() {
                "SLO" => self.slos.push(doc),
                "SLI" => drop(self.slis.insert(name, doc)),
                "AlertPolicy" => drop(self.policies.insert(name, doc)),
                "DataSource" => drop(self.sources.insert(name, doc)),
                // Conditions and targets are read through the policies; a
                // Service says nothing Governor keeps.
                "AlertCondition" | "AlertNotificationTarget" | "Service" => {}
                other => return Err(format!("{at}: kind: {other:?} is not an OpenSLO v1 kind")),
            }
        }
        Ok(())
    }
}
