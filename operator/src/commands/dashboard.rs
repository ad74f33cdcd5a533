//! `governor dashboard`: the dashboard over the cluster's ServiceLevelObjectives,
//! with history from Prometheus and the slowest traces from Jaeger.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use governor_dashboard::Config;

use crate::observe::jaeger::JaegerSource;
use crate::observe::prometheus::PrometheusSource;
use crate::readmodel::ClusterModel;

pub struct Args {
    pub listen: SocketAddr,
    pub prometheus: String,
    pub jaeger: Option<String>,
    pub jaeger_ui: Option<String>,
    pub namespace: Option<String>,
    pub refresh: Duration,
    pub timeout: Duration,
}

pub async fn run(args: Args) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("governor dashboard: {msg}");
        ExitCode::from(2)
    };
    let prometheus = match PrometheusSource::new(&args.prometheus, args.timeout) {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    let jaeger = match JaegerSource::optional(args.jaeger.as_deref(), args.timeout) {
        Ok(j) => j,
        Err(e) => return fail(e.to_string()),
    };
    if let Some(ui) = &args.jaeger_ui
        && !(ui.starts_with("http://") || ui.starts_with("https://"))
    {
        return fail(format!(
            "--jaeger-ui must be an http:// or https:// URL, got {ui:?}"
        ));
    }
    let Some(client) = super::kube_client("governor dashboard").await else {
        return ExitCode::from(1);
    };
    let model = ClusterModel::start(
        client,
        args.namespace.as_deref(),
        prometheus,
        args.prometheus.clone(),
        jaeger,
        args.refresh,
    );
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("governor dashboard: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(1);
        }
    };
    let addr = listener
        .local_addr()
        .map_or_else(|_| args.listen.to_string(), |a| a.to_string());
    let config = Config {
        refresh_seconds: args.refresh.as_secs().clamp(1, 3600) as u32,
        jaeger_ui: args.jaeger_ui,
        ..Config::default()
    };
    tracing::info!(prometheus = %args.prometheus, "dashboard on http://{addr}/");
    let app = governor_dashboard::router(model, config);
    super::serve(listener, app, "governor dashboard").await
}
