//! Logging setup: human-readable by default, JSON for log pipelines; and,
//! when an OTLP endpoint is given, the same spans exported as OpenTelemetry
//! traces.

use clap::ValueEnum;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Where spans go as OTLP/HTTP, and under which service name.
#[derive(Clone, Debug)]
pub struct Otlp {
    /// Base URL such as `http://otel-collector:4318` (`/v1/traces` is added).
    pub endpoint: String,
    pub service_name: String,
}

/// Flushes and stops the trace exporter when dropped. Drop it outside any
/// async runtime: the exporter's HTTP client is a blocking one.
pub struct Traces(SdkTracerProvider);

impl Drop for Traces {
    fn drop(&mut self) {
        if let Err(e) = self.0.shutdown() {
            eprintln!("governor: flushing traces: {e}");
        }
    }
}

/// Logs go to stderr so stdout stays clean for command output (JSON, YAML).
/// With `otlp`, spans (each reconcile and its steps) are also exported.
pub fn init(format: LogFormat, otlp: Option<&Otlp>) -> Result<Option<Traces>, crate::Error> {
    let filter = EnvFilter::try_from_env("GOVERNOR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only on a terminal: a log file or a pipe gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    let provider = otlp.map(provider).transpose()?;
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("governor")));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init();
    Ok(provider.map(Traces))
}

fn provider(otlp: &Otlp) -> Result<SdkTracerProvider, crate::Error> {
    let url = otlp.endpoint.trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(crate::Error::Usage(format!(
            "--otlp-endpoint must be an http:// or https:// URL, got {:?}",
            otlp.endpoint
        )));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{url}/v1/traces"))
        .build()
        .map_err(|source| crate::Error::Otlp {
            endpoint: url.to_string(),
            source,
        })?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(otlp.service_name.clone())
                .build(),
        )
        .build())
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
    /// The worst objective's error budget left (labels `namespace`, `slo`).
    pub const SLO_BUDGET_REMAINING: &str = governor_dashboard::read::series::BUDGET_REMAINING;
    /// Each objective's error budget left (labels `namespace`, `slo`, `objective`).
    pub const SLO_OBJECTIVE_BUDGET_REMAINING: &str =
        "governor_slo_objective_error_budget_remaining";
    pub const SLO_REPLICAS: &str = governor_dashboard::read::series::REPLICAS;
    pub const SLO_POOL_SIZE: &str = governor_dashboard::read::series::POOL_SIZE;
    pub const SLO_LATENCY: &str = governor_dashboard::read::series::LATENCY;
    /// The share of each latency target the replicas are planned for (0.9
    /// with fixed headroom; moved by the budget with `headroom.policy: BudgetAware`).
    pub const SLO_LATENCY_AIM: &str = "governor_slo_latency_aim_ratio";

    /// Each latency target of the spec, in seconds (labels `namespace`, `slo`,
    /// `quantile`): the Grafana dashboard draws it against the observed.
    pub const SLO_LATENCY_TARGET: &str = "governor_slo_latency_target_seconds";
    /// Cache hit rate last observed (labels `namespace`, `slo`); absent when unread.
    pub const SLO_CACHE_HIT_RATIO: &str = "governor_slo_cache_hit_ratio";

    pub const ALL: [&str; 13] = [
        RECONCILE_ERRORS,
        QUERIES,
        QUERY_FAILURES,
        ACTUATION_ERRORS,
        SLO_STATE,
        SLO_BUDGET_REMAINING,
        SLO_OBJECTIVE_BUDGET_REMAINING,
        SLO_REPLICAS,
        SLO_POOL_SIZE,
        SLO_LATENCY,
        SLO_LATENCY_AIM,
        SLO_LATENCY_TARGET,
        SLO_CACHE_HIT_RATIO,
    ];
}
