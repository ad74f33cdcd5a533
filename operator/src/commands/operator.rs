//! `governor operator`: the controller, with leader election and its own metrics.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use super::Sources;
use crate::controller::{self, Settings};
use crate::error::Error;
use crate::observe::Window;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub sources: Sources,
    /// How often every SLO's signals are read, in one batched cycle.
    #[arg(long, default_value = "15s", value_parser = crate::cli::at_least_1s)]
    pub observe_interval: Duration,
    /// Range of rate() and histogram_quantile(), and of the traces read from
    /// Jaeger: a PromQL duration.
    #[arg(long, default_value = "1m")]
    pub window: Window,
    /// Namespace of the leader-election Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "governor")]
    pub lease_namespace: String,
    #[arg(long, default_value = "governor-operator")]
    pub lease_name: String,
    /// This replica's identity in the Lease (default: hostname and pid).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// A leader that stops renewing loses the Lease after this long.
    #[arg(long, default_value = "15s", value_parser = crate::cli::at_least_2s)]
    pub lease_duration: Duration,
    /// Where /metrics, /healthz and /readyz listen.
    #[arg(long, default_value = "0.0.0.0:9090")]
    pub metrics_listen: SocketAddr,
    /// Most SLOs reconciled at once (each pass makes a few API calls).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
    /// Dashboard base URL, linked from the generated alerts.
    #[arg(long, env = "GOVERNOR_DASHBOARD_URL")]
    pub dashboard_url: Option<String>,
    /// OTLP/HTTP endpoint to export a trace of each reconcile to, e.g.
    /// http://otel-collector:4318 (off when unset).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Watch and act only in this namespace (repeatable; default: every
    /// namespace). With namespaces listed, Roles in them are enough.
    #[arg(long = "namespace", value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,
    /// Cache warm-ups running at once (outside the reconcile slots).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub warm_up_workers: u16,
    /// Cache warm-ups waiting; beyond this a warm-up is retried on a later pass.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub warm_up_queue: u16,
    /// The cluster's DNS domain: an HTTP warm-up reaches its Service as
    /// NAME.NAMESPACE.svc.DOMAIN.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Resolve HOST to IP for HTTP warm-ups instead of asking DNS, as
    /// HOST=IP (repeatable); for an operator run outside the cluster.
    #[arg(long = "resolve", value_name = "HOST=IP", value_parser = resolve)]
    pub resolve: Vec<(String, std::net::IpAddr)>,
    /// Service name of the exported traces.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "governor-operator")]
    pub otlp_service_name: String,
    #[command(flatten)]
    pub rules_metadata: super::rules::MetadataArgs,
    #[command(flatten)]
    pub scrape: super::rules::ScrapeArgs,
}

/// Parses HOST=IP.
fn resolve(s: &str) -> Result<(String, std::net::IpAddr), String> {
    let (host, ip) = s
        .split_once('=')
        .ok_or_else(|| format!("expected HOST=IP, got {s:?}"))?;
    let ip = ip
        .parse()
        .map_err(|e| format!("{ip:?} is not an IP address: {e}"))?;
    if host.is_empty() {
        return Err("expected HOST=IP, the host is empty".into());
    }
    Ok((host.to_string(), ip))
}

impl Args {
    /// Where to export traces, when asked.
    pub fn otlp(&self) -> Option<crate::telemetry::Otlp> {
        self.otlp_endpoint
            .as_ref()
            .map(|endpoint| crate::telemetry::Otlp {
                endpoint: endpoint.clone(),
                service_name: self.otlp_service_name.clone(),
            })
    }
}

pub async fn run(args: Args) -> Result<ExitCode, Error> {
    let rules_metadata = args.rules_metadata.resolve()?;
    let (prometheus, jaeger) = args.sources.open(args.window)?;
    let clients = super::kube_clients().await?;
    let identity = args.identity.unwrap_or_else(|| {
        format!(
            "{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "governor".into()),
            std::process::id()
        )
    });
    tracing::info!(
        identity = %identity,
        lease = %format!("{}/{}", args.lease_namespace, args.lease_name),
        metrics = %args.metrics_listen,
        "starting the operator"
    );
    let settings = Settings {
        prometheus,
        jaeger,
        observe_interval: args.observe_interval,
        lease_namespace: args.lease_namespace,
        lease_name: args.lease_name,
        identity,
        lease_duration: args.lease_duration,
        metrics_listen: args.metrics_listen,
        concurrency: args.concurrency,
        dashboard_url: args.dashboard_url,
        rules_metadata,
        scrape_interval: args.scrape.scrape_interval,
        scope: crate::scope::Scope::new(args.namespaces),
        warm_up: controller::warm_up::Settings {
            workers: usize::from(args.warm_up_workers),
            queue: usize::from(args.warm_up_queue),
            cluster_domain: args.cluster_domain,
            resolve: args
                .resolve
                .into_iter()
                .map(|(host, ip)| (host, SocketAddr::new(ip, 0)))
                .collect(),
        },
    };
    controller::run(clients.requests, clients.watches, settings).await?;
    Ok(ExitCode::SUCCESS)
}
