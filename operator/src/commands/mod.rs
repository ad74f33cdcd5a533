//! The subcommands, one module each.

pub mod crdgen;
pub mod dashboard;
pub mod demo;
pub mod grafana;
pub mod observe;
pub mod openslo;
pub mod operator;
pub mod rules;
pub mod sim_serve;
pub mod simulate;
pub mod validate;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use crate::error::Error;
use crate::observe::Window;
use crate::observe::backend::{JaegerAccess, PrometheusAccess};
use crate::observe::http::ByteSize;
use crate::observe::jaeger::JaegerSource;
use crate::observe::prometheus::PrometheusSource;

/// Where the signals come from: the flags every command that reads them shares.
#[derive(clap::Args, Debug, Clone)]
pub struct Sources {
    /// Prometheus base URL, e.g. http://127.0.0.1:9090 or https://prometheus.example:9090.
    #[arg(long, env = "GOVERNOR_PROMETHEUS_URL")]
    pub prometheus: String,
    #[command(flatten)]
    pub prometheus_access: PrometheusAccess,
    /// Jaeger query base URL, for SLOs whose latency comes from traces.
    #[arg(long, env = "GOVERNOR_JAEGER_URL")]
    pub jaeger: Option<String>,
    #[command(flatten)]
    pub jaeger_access: JaegerAccess,
    /// Timeout per Prometheus or Jaeger query (the whole exchange: connect,
    /// send, read the answer), seconds.
    #[arg(long, default_value = "10", value_parser = crate::cli::timeout)]
    pub timeout: Duration,
    /// Largest answer read from Prometheus or Jaeger, e.g. 16MiB; a larger
    /// one fails its query, and no more than this is ever held.
    #[arg(long, default_value_t = ByteSize::DEFAULT_RESPONSE_LIMIT)]
    pub max_response_bytes: ByteSize,
    /// Extra Prometheus queries one observation cycle may issue to split
    /// failed batches of SLOs in halves, so that one SLO's failing query
    /// leaves only its own signals missing.
    #[arg(long, default_value_t = PrometheusSource::DEFAULT_MAX_SPLIT_QUERIES)]
    pub max_split_queries: usize,
}

impl Sources {
    /// The Prometheus source (reading over `window`) and the optional Jaeger source.
    pub fn open(&self, window: Window) -> Result<(PrometheusSource, Option<JaegerSource>), Error> {
        let mut prometheus = PrometheusSource::with_access(
            &self.prometheus,
            &self.prometheus_access.access(),
            self.timeout,
        )?;
        prometheus.window = window;
        prometheus.max_response_bytes = self.max_response_bytes;
        prometheus.max_split_queries = self.max_split_queries;
        let mut jaeger = self
            .jaeger
            .as_deref()
            .map(|url| JaegerSource::with_access(url, &self.jaeger_access.access(), self.timeout))
            .transpose()
            .map_err(|e| Error::Usage(e.to_string()))?;
        if let Some(j) = &mut jaeger {
            j.max_response_bytes = self.max_response_bytes;
        }
        Ok((prometheus, jaeger))
    }
}

/// Binds `addr`, naming the address in the error.
pub async fn listen(addr: SocketAddr) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })
}

/// The bounds of an HTTP server: the flags of the commands that serve the dashboard.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeLimits {
    /// Time a client has to send a request's headers; an idle connection is closed after it too.
    #[arg(long, default_value = "10s", value_parser = crate::cli::at_least_1s)]
    pub header_read_timeout: Duration,
    /// Time to answer a request once its headers are in; then 408.
    #[arg(long, default_value = "30s", value_parser = crate::cli::at_least_1s)]
    pub request_timeout: Duration,
    /// Connections open at once; beyond it new ones wait in the listen backlog.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_connections: u32,
    /// On SIGTERM or Ctrl-C: how long in-flight requests may finish before
    /// the connections left are dropped.
    #[arg(long, default_value = "10s", value_parser = crate::cli::at_least_1s)]
    pub shutdown_timeout: Duration,
}

impl ServeLimits {
    pub fn limits(&self) -> governor_dashboard::Limits {
        governor_dashboard::Limits {
            header_read_timeout: self.header_read_timeout,
            request_timeout: self.request_timeout,
            max_connections: self.max_connections as usize,
            shutdown_timeout: self.shutdown_timeout,
        }
    }
}

/// Serves `app` within `limits` until Ctrl-C or SIGTERM, then drains it for
/// at most the shutdown timeout.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: governor_dashboard::Limits,
) -> Result<ExitCode, Error> {
    governor_dashboard::serve::serve(listener, app, limits, crate::controller::shutdown_signal())
        .await?;
    Ok(ExitCode::SUCCESS)
}

/// How long a connection to the API server may take to open, and a request to be sent.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
pub const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a request waits for its answer from the API server.
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Clients of the API server, from KUBECONFIG or the pod's service account.
pub struct KubeClients {
    /// For requests: each answer must come within `READ_TIMEOUT`.
    pub requests: kube::Client,
    /// For watches, which the server holds open for minutes: no read timeout
    /// (kube-runtime's watcher has an idle timeout of its own).
    pub watches: kube::Client,
}

pub async fn kube_clients() -> Result<KubeClients, Error> {
    let mut config = kube::Config::infer()
        .await
        .map_err(|e| Error::NoCluster(kube::Error::InferConfig(e)))?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.write_timeout = Some(WRITE_TIMEOUT);
    let watches = kube::Client::try_from(config.clone()).map_err(Error::NoCluster)?;
    config.read_timeout = Some(READ_TIMEOUT);
    // The timeout counts from the request, not from when its pooled
    // connection went idle.
    config.reset_reader_on_write = true;
    let requests = kube::Client::try_from(config).map_err(Error::NoCluster)?;
    Ok(KubeClients { requests, watches })
}

/// The client for requests (see [`KubeClients`]).
pub async fn kube_client() -> Result<kube::Client, Error> {
    Ok(kube_clients().await?.requests)
}
