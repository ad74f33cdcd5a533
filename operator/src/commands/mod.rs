//! The subcommands, one module each.

pub mod crdgen;
pub mod dashboard;
pub mod demo;
pub mod observe;
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
use crate::observe::jaeger::JaegerSource;
use crate::observe::prometheus::PrometheusSource;

/// Where the signals come from: the flags every command that reads them shares.
#[derive(clap::Args, Debug, Clone)]
pub struct Sources {
    /// Prometheus base URL, e.g. http://127.0.0.1:9090.
    #[arg(long, env = "GOVERNOR_PROMETHEUS_URL")]
    pub prometheus: String,
    /// Jaeger query base URL, for SLOs whose latency comes from traces.
    #[arg(long, env = "GOVERNOR_JAEGER_URL")]
    pub jaeger: Option<String>,
    /// Timeout per Prometheus or Jaeger query, seconds.
    #[arg(long, default_value = "10", value_parser = crate::cli::timeout)]
    pub timeout: Duration,
}

impl Sources {
    /// The Prometheus source (reading over `window`) and the optional Jaeger source.
    pub fn open(&self, window: Window) -> Result<(PrometheusSource, Option<JaegerSource>), Error> {
        let mut prometheus = PrometheusSource::new(&self.prometheus, self.timeout)?;
        prometheus.window = window;
        let jaeger = JaegerSource::optional(self.jaeger.as_deref(), self.timeout)
            .map_err(|e| Error::Usage(e.to_string()))?;
        Ok((prometheus, jaeger))
    }
}

/// Binds `addr`, naming the address in the error.
pub async fn listen(addr: SocketAddr) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })
}

/// Serves `app` until Ctrl-C or SIGTERM.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
) -> Result<ExitCode, Error> {
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::controller::shutdown_signal())
        .await?;
    Ok(ExitCode::SUCCESS)
}

/// The Kubernetes client from KUBECONFIG or the pod's service account.
pub async fn kube_client() -> Result<kube::Client, Error> {
    kube::Client::try_default().await.map_err(Error::NoCluster)
}
