//! `governor operator`: the controller, with leader election and its own metrics.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use crate::controller::{self, Settings};
use crate::observe::jaeger::JaegerSource;
use crate::observe::prometheus::PrometheusSource;

pub struct Args {
    pub prometheus: String,
    pub jaeger: Option<String>,
    pub observe_interval: Duration,
    pub window: String,
    pub timeout: Duration,
    pub lease_namespace: String,
    pub lease_name: String,
    pub identity: Option<String>,
    pub lease_duration: Duration,
    pub metrics_listen: SocketAddr,
    pub concurrency: u16,
    pub dashboard_url: Option<String>,
}

pub async fn run(args: Args) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("governor operator: {msg}");
        ExitCode::from(2)
    };
    let prometheus = match PrometheusSource::new(&args.prometheus, args.timeout) {
        Ok(mut p) => {
            p.window = args.window.clone();
            p
        }
        Err(e) => return fail(e.to_string()),
    };
    let jaeger = match JaegerSource::optional(args.jaeger.as_deref(), args.timeout) {
        Ok(j) => j,
        Err(e) => return fail(e.to_string()),
    };
    let Some(client) = super::kube_client("governor operator").await else {
        return ExitCode::from(1);
    };
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
    };
    match controller::run(client, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("governor operator: {e}");
            ExitCode::from(1)
        }
    }
}
