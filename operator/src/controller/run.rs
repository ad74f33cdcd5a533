//! Run: the operator's long-running tasks — the HPA reflector, the metrics
//! server, the Lease, the observer, and the controller over every SLO — until
//! Ctrl-C or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use governor_crds::ServiceLevelObjective;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::runtime::controller::Error as ControllerError;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Client, ResourceExt};

use super::context::{Memories, SystemClock};
use super::{Context, Leader, Metrics, error_policy, metrics, observer, reconcile};
use crate::error::Error;
use crate::observe::jaeger::JaegerSource;
use crate::observe::prometheus::PrometheusSource;
use crate::scope::{self, Scope, Stores};

/// Settings of `governor operator`, resolved from its arguments.
pub struct Settings {
    pub prometheus: PrometheusSource,
    pub jaeger: Option<JaegerSource>,
    pub observe_interval: Duration,
    pub lease_namespace: String,
    pub lease_name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub metrics_listen: std::net::SocketAddr,
    /// Most SLOs reconciled at once.
    pub concurrency: u16,
    /// Dashboard base URL, linked from generated alerts.
    pub dashboard_url: Option<String>,
    /// Labels and annotations for the objects holding each SLO's rules.
    pub rules_metadata: crate::rules::ExtraMetadata,
    /// Prometheus's scrape interval, the floor of the rules' windows.
    pub scrape_interval: Duration,
    /// How cache warm-ups run.
    pub warm_up: super::warm_up::Settings,
    /// The namespaces watched and acted in.
    pub scope: Scope,
}

/// Watches the HorizontalPodAutoscalers in scope (driveHpa looks there).
async fn hpa_stores(client: &Client, scope: &Scope) -> Stores<HorizontalPodAutoscaler> {
    let hpas = crate::scope::reflect(client, scope, "HorizontalPodAutoscalers");
    if tokio::time::timeout(Duration::from_secs(30), hpas.wait_until_ready())
        .await
        .is_err()
    {
        tracing::warn!("HorizontalPodAutoscalers not listed after 30 s; driveHpa waits for them");
    }
    hpas
}

/// Serves /metrics, /healthz and /readyz.
async fn serve_metrics(ctx: Arc<Context>, addr: std::net::SocketAddr) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                // Leadership as of now, by the clock, not as of the last renew.
                ctx.metrics.leader.set(i64::from(ctx.leader.is_leader()));
                let body = ctx.metrics.encode();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/readyz", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}

/// The SLOs whose target is the `kind` object named in the watch event.
fn by_target(
    kind: &'static str,
    store: Store<ServiceLevelObjective>,
) -> impl Fn(Option<String>, String) -> Vec<ObjectRef<ServiceLevelObjective>> {
    move |namespace, name| {
        store
            .state()
            .iter()
            .filter(|s| {
                s.namespace() == namespace
                    && s.spec.target_ref.name == name
                    && s.spec.target_ref.kind == kind
            })
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect()
    }
}

/// Runs until Ctrl-C or SIGTERM; releases the lease on the way out. `client`
/// makes requests (with a read timeout), `watches` holds the watches open.
pub async fn run(client: Client, watches: Client, settings: Settings) -> Result<(), Error> {
    let leader = Leader::new(
        client.clone(),
        &settings.lease_namespace,
        &settings.lease_name,
        &settings.identity,
        settings.lease_duration,
    );
    let reporter = Reporter {
        controller: "governor".into(),
        instance: Some(settings.identity.clone()),
    };
    let prometheus_operator = crate::rules::has_prometheus_rule(&client)
        .await
        .map_err(|e| Error::kube("discovering monitoring.coreos.com", e))?;
    let (warm_ups, warm_up_queue) = super::warm_up::WarmUps::new(settings.warm_up.clone());
    let ctx = Arc::new(Context {
        client: client.clone(),
        leader: leader.clone(),
        metrics: Metrics::new(),
        recorder: Recorder::new(client.clone(), reporter),
        clock: Box::new(SystemClock),
        memories: Memories::default(),
        prometheus_operator,
        hpas: hpa_stores(&watches, &settings.scope).await,
        dashboard_url: settings.dashboard_url.clone(),
        rules_metadata: settings.rules_metadata.clone(),
        scrape_interval: settings.scrape_interval,
        warm_ups,
    });
    let _warm_ups = super::warm_up::spawn(ctx.clone(), warm_up_queue);
    serve_metrics(ctx.clone(), settings.metrics_listen).await?;
    let _lease = leader.spawn(ctx.metrics.leader.clone());

    // One controller per namespace in scope (one for all when unscoped); the
    // observer reads every SLO of all of them in one cycle.
    let mut controllers = Vec::new();
    let mut stores = Vec::new();
    let mut triggers = Vec::new();
    for namespace in settings.scope.each() {
        let (run, store, observed) =
            namespace_controller(&ctx, &watches, namespace.as_deref(), settings.concurrency);
        controllers.push(run);
        stores.push(store);
        triggers.push(observed);
    }
    let _observer = observer::spawn(
        ctx.clone(),
        Stores::new(stores),
        settings.prometheus,
        settings.jaeger,
        settings.observe_interval,
        triggers,
    );
    tracing::info!(scope = %settings.scope.describe(), "watching");
    futures::future::join_all(controllers).await;
    leader.release().await;
    Ok(())
}

/// The kube-runtime Controller of one namespace (every namespace when `ns`
/// is `None`): its future, its store of SLOs, and the sender with which the
/// observer has it pass every SLO after a cycle. A change to an SLO or to a
/// Deployment or StatefulSet an SLO targets passes that SLO.
fn namespace_controller(
    ctx: &Arc<Context>,
    watches: &Client,
    ns: Option<&str>,
    concurrency: u16,
) -> (
    impl Future<Output = ()> + use<>,
    Store<ServiceLevelObjective>,
    futures::channel::mpsc::UnboundedSender<()>,
) {
    let wc = watcher::Config::default();
    let controller = Controller::new(scope::api::<ServiceLevelObjective>(watches, ns), wc.clone());
    let store = controller.store();
    let (observed, decide_all) = futures::channel::mpsc::unbounded();
    let deployments = by_target("Deployment", store.clone());
    let statefulsets = by_target("StatefulSet", store.clone());
    let watch_ctx = ctx.clone();
    let run = controller
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .reconcile_all_on(decide_all)
        .watches(
            scope::api::<Deployment>(watches, ns),
            wc.clone(),
            move |d| deployments(d.namespace(), d.name_any()),
        )
        .watches(scope::api::<StatefulSet>(watches, ns), wc, move |s| {
            statefulsets(s.namespace(), s.name_any())
        })
        .graceful_shutdown_on(shutdown_signal())
        .run(reconcile, error_policy, ctx.clone())
        .for_each(move |result| {
            count_watch_failure(&watch_ctx, &result);
            async {}
        });
    (run, store, observed)
}

/// Reconcile errors are counted and logged by `error_policy`; a failing watch
/// would otherwise go unseen.
fn count_watch_failure<T, E: std::fmt::Display>(
    ctx: &Context,
    result: &Result<T, ControllerError<E, watcher::Error>>,
) {
    if let Err(e @ (ControllerError::QueueError(_) | ControllerError::RunnerError(_))) = result {
        ctx.metrics
            .reconcile_errors
            .get_or_create(&metrics::Category {
                category: "watch".into(),
            })
            .inc();
        tracing::warn!(category = "watch", "{}", watch_hint(&e.to_string()));
    }
}

/// A failed watch, with what usually causes it.
fn watch_hint(error: &str) -> String {
    let hint = if error.contains("404") || error.contains("NotFound") {
        "; the API server does not serve a watched kind: is the ServiceLevelObjective CRD installed? (kubectl apply -f crds/, or the Helm chart)"
    } else if error.contains("403") || error.contains("Forbidden") {
        "; RBAC denies a watch: the operator needs the chart's ClusterRole (list and watch servicelevelobjectives, deployments, statefulsets, horizontalpodautoscalers)"
    } else {
        ""
    };
    format!("watching the cluster failed: {error}{hint}")
}

/// Ctrl-C or SIGTERM (what Kubernetes sends a pod it stops).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
