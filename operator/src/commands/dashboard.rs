//! `governor dashboard`: the dashboard over the cluster's ServiceLevelObjectives,
//! with history from Prometheus and the slowest traces from Jaeger.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use governor_dashboard::Config;

use super::{ServeLimits, Sources};
use crate::cluster::ClusterReader;
use crate::error::Error;
use crate::observe::Window;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the dashboard listens.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub sources: Sources,
    /// Jaeger UI base URL that trace links open (e.g. https://jaeger.example.com).
    #[arg(long, env = "GOVERNOR_JAEGER_UI_URL")]
    pub jaeger_ui: Option<String>,
    /// Only this namespace's SLOs (repeatable; default: every namespace).
    #[arg(long = "namespace", value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,
    /// How long answers are reused, and how often pages reload.
    #[arg(long, default_value = "15s", value_parser = crate::cli::at_least_1s)]
    pub refresh: Duration,
    #[command(flatten)]
    pub limits: ServeLimits,
}

pub async fn run(args: Args) -> Result<ExitCode, Error> {
    let (prometheus, jaeger) = args.sources.open(Window::default())?;
    if let Some(ui) = &args.jaeger_ui
        && !(ui.starts_with("http://") || ui.starts_with("https://"))
    {
        return Err(Error::Usage(format!(
            "--jaeger-ui must be an http:// or https:// URL, got {ui:?}"
        )));
    }
    // It watches the SLOs.
    let client = super::kube_clients().await?.watches;
    let model = ClusterReader::start(
        client,
        &crate::scope::Scope::new(args.namespaces.clone()),
        prometheus,
        args.sources.prometheus.clone(),
        jaeger,
        args.refresh,
    );
    let listener = super::listen(args.listen).await?;
    let addr = listener
        .local_addr()
        .map_or_else(|_| args.listen.to_string(), |a| a.to_string());
    let config = Config {
        refresh_seconds: args.refresh.as_secs().clamp(1, 3600) as u32,
        jaeger_ui: args.jaeger_ui,
        ..Config::default()
    };
    tracing::info!(prometheus = %args.sources.prometheus, "dashboard on http://{addr}/");
    let app = governor_dashboard::router(model, config);
    super::serve(listener, app, args.limits.limits()).await
}
