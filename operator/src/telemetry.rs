//! Logging setup: human-readable by default, JSON for log pipelines.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Logs go to stderr so stdout stays clean for command output (JSON, YAML).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("GOVERNOR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Metrics the operator exports; `alerts/governor.rules.yaml` and the
/// dashboard read them by these names.
pub mod metrics {
    pub const RECONCILE_ERRORS: &str = "governor_reconcile_errors_total";
    pub const QUERIES: &str = "governor_queries_total";
    pub const QUERY_FAILURES: &str = "governor_query_failures_total";
    pub const ACTUATION_ERRORS: &str = "governor_actuation_errors_total";
    /// A state set: 1 for the SLO's current objective state (label `state`).
    pub const SLO_STATE: &str = "governor_slo_state";
    pub const SLO_BUDGET_REMAINING: &str = governor_dashboard::model::series::BUDGET_REMAINING;
    pub const SLO_REPLICAS: &str = governor_dashboard::model::series::REPLICAS;
    pub const SLO_POOL_SIZE: &str = governor_dashboard::model::series::POOL_SIZE;

    pub const ALL: [&str; 8] = [
        RECONCILE_ERRORS,
        QUERIES,
        QUERY_FAILURES,
        ACTUATION_ERRORS,
        SLO_STATE,
        SLO_BUDGET_REMAINING,
        SLO_REPLICAS,
        SLO_POOL_SIZE,
    ];
}
