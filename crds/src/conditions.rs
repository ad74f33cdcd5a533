//! Condition types, their reasons, and Event reasons: the words of the status
//! API, in one place, so the operator, the demo and the dashboard agree.

/// Condition types on `status.conditions`.
pub mod kind {
    pub const READY: &str = "Ready";
    pub const METRICS_AVAILABLE: &str = "MetricsAvailable";
    pub const OBJECTIVE_MET: &str = "ObjectiveMet";
    pub const BOTTLENECK: &str = "Bottleneck";
    pub const TARGET_FOUND: &str = "TargetFound";
    pub const ALERT_RULES: &str = "AlertRules";
}

/// Condition status values.
pub const TRUE: &str = "True";
pub const FALSE: &str = "False";

/// Reasons of the conditions.
pub mod reason {
    /// `Ready`
    pub const RECONCILED: &str = "Reconciled";
    pub const HOLDING: &str = "Holding";
    /// `MetricsAvailable`
    pub const METRICS_READ: &str = "MetricsRead";
    pub const METRICS_UNAVAILABLE: &str = "MetricsUnavailable";
    /// `ObjectiveMet`
    pub const MET: &str = "Met";
    pub const AT_RISK: &str = "AtRisk";
    pub const BREACHED: &str = "Breached";
    pub const UNKNOWN: &str = "Unknown";
    /// `Bottleneck`
    pub const DOWNSTREAM_SATURATED: &str = "DownstreamSaturated";
    pub const NONE: &str = "None";
    /// `TargetFound=True`: how the target is reached.
    pub const SCALE_SUBRESOURCE: &str = "ScaleSubresource";
    pub const DRIVING_HPA: &str = "DrivingHpa";
    /// An HPA scales the same workload and `driveHpa` is off: the two compete.
    pub const HPA_NOT_DRIVEN: &str = "HpaNotDriven";
    pub const NO_HPA: &str = "NoHpaFound";
    /// `TargetFound=False` (and `Ready=False`).
    pub const TARGET_MISSING: &str = "TargetMissing";
    /// An object Governor would write did not opt in, or another manager owns the field.
    pub const NOT_MANAGED: &str = "NotManaged";
    /// The alert rules could not be applied; actuation goes on.
    pub const RULES_REFUSED: &str = "AlertRulesRefused";
    pub const RULES_APPLIED: &str = "AlertRulesApplied";
}

/// Reasons of the Events Governor records on an SLO.
pub mod event {
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const ALERT_RULES_REFUSED: &str = "AlertRulesRefused";
    pub const TARGET_MISSING: &str = "TargetMissing";
    pub const HPA_CONFLICT: &str = "HpaConflict";
    pub const HPA_MAX_REPLICAS: &str = "HpaMaxReplicas";
    pub const ACTUATION_FAILED: &str = "ActuationFailed";
    pub const WARM_UP_FAILED: &str = "WarmUpFailed";
    pub const NOT_MANAGED: &str = "NotManaged";
    pub const METRICS_UNAVAILABLE: &str = "MetricsUnavailable";
    pub const DOWNSTREAM_BOTTLENECK: &str = "DownstreamBottleneck";
    /// A decision taken in DryRun: reported, not applied.
    pub const WOULD_CHANGE: &str = "WouldChange";
    pub const SCALED: &str = "Scaled";
    pub const POOL_RESIZED: &str = "PoolResized";
    pub const CACHE_WARM_UP: &str = "CacheWarmUp";
}
