//! Errors of one pass, each keeping its source, with a fixed category for the
//! metric label and the requeue policy.

use std::time::Duration;

/// What stopped a pass.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("target {0} not found")]
    TargetMissing(String),
    #[error("{what}: {}", crate::error::api_text(.source))]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("warm-up from {target}: {reason}")]
    WarmUp { target: String, reason: String },
    /// An object Governor may not write: it did not opt in, or another field
    /// manager owns the field.
    #[error("{object}: {reason}")]
    NotManaged { object: String, reason: String },
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error("alert rules: {0}")]
    Rules(#[from] crate::rules::ApplyError),
    /// A write refused because this replica no longer holds the Lease.
    #[error("not the leader: the Lease was not renewed within its renew deadline")]
    NotLeader,
}

impl Error {
    /// `what` failed against the Kubernetes API.
    pub fn api(what: impl Into<String>, source: kube::Error) -> Self {
        Error::Api {
            what: what.into(),
            source,
        }
    }

    /// The metric label and log field: a fixed word, never a message.
    pub fn category(&self) -> &'static str {
        match self {
            Error::TargetMissing(_) => "target_missing",
            Error::Api { .. } => "api",
            Error::WarmUp { .. } => "warm_up",
            Error::NotManaged { .. } => "not_managed",
            Error::InvalidSpec(_) => "invalid_spec",
            Error::Rules(_) => "rules",
            Error::NotLeader => "not_leader",
        }
    }

    /// When to try again: an invalid spec waits for a change, a transient
    /// failure backs off briefly.
    pub fn requeue(&self) -> Duration {
        match self {
            Error::InvalidSpec(_) | Error::NotManaged { .. } => Duration::from_secs(60),
            // Deployments and StatefulSets are watched: their creation triggers a
            // pass sooner. Other kinds are looked for again after this.
            Error::TargetMissing(_) => Duration::from_secs(30),
            Error::Api { .. } | Error::WarmUp { .. } | Error::Rules(_) => Duration::from_secs(5),
            // The next pass finds out whether this replica leads again.
            Error::NotLeader => Duration::from_secs(5),
        }
    }
}
