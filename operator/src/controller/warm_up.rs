//! Cache warm-ups, run in a bounded background queue outside the reconcile
//! slots: a pass only enqueues one, so a slow service never holds a slot.
//!
//! Both kinds stay within what the SLO's author could do in their namespace:
//! a Job is instantiated from a CronJob they made (and opted in with the
//! `governor.dev/managed` annotation), as `kubectl create job --from=cronjob/…`
//! does; HTTP requests go to a Service of that namespace, by name and port,
//! GET or HEAD only, with no redirects and a capped timeout, bodies unread.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor_crds::conditions::event;
use governor_crds::{
    HttpMethod, ServiceLevelObjective, WARM_UP_MAX_PATHS, WARM_UP_MAX_TIMEOUT, WarmUpHttp,
    WarmUpJob,
};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Service;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::{Semaphore, mpsc};
use tracing::Instrument;

use super::context::{Uid, uid};
use super::target::{MANAGED_ANNOTATION, SLO_LABEL, opted_in};
use super::{Context, Error, Leader, events};

/// How warm-ups run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Warm-ups running at once.
    pub workers: usize,
    /// Warm-ups waiting; beyond this a pass's warm-up is refused and retried.
    pub queue: usize,
    /// The cluster's DNS domain: a Service is reached as
    /// `NAME.NAMESPACE.svc.DOMAIN`.
    pub cluster_domain: String,
    /// Host names resolved to a fixed address instead of by DNS (for an
    /// operator run outside the cluster).
    pub resolve: Vec<(String, SocketAddr)>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            workers: 4,
            queue: 64,
            cluster_domain: "cluster.local".into(),
            resolve: Vec::new(),
        }
    }
}

/// The queue: a bounded channel, and the SLOs with a warm-up waiting or running
/// (never two for one SLO).
pub struct WarmUps {
    tx: mpsc::Sender<Arc<ServiceLevelObjective>>,
    pending: Arc<Mutex<HashSet<Uid>>>,
    settings: Settings,
}

/// The receiving end, handed to [`spawn`] once the context exists.
pub struct Queue(mpsc::Receiver<Arc<ServiceLevelObjective>>);

impl WarmUps {
    pub fn new(settings: Settings) -> (Self, Queue) {
        let (tx, rx) = mpsc::channel(settings.queue.max(1));
        let pending = Arc::default();
        (
            Self {
                tx,
                pending,
                settings,
            },
            Queue(rx),
        )
    }

    /// Queues a warm-up of `slo`; one already waiting or running counts.
    pub fn enqueue(&self, slo: &ServiceLevelObjective) -> Result<(), Error> {
        let key = uid(slo);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.contains(&key) {
            return Ok(());
        }
        self.tx
            .try_send(Arc::new(slo.clone()))
            .map_err(|_| Error::WarmUp {
                target: slo.name_any(),
                reason: format!(
                    "the warm-up queue is full ({} waiting); tried again on a later pass",
                    self.settings.queue
                ),
            })?;
        pending.insert(key);
        Ok(())
    }

    fn done(&self, slo: &ServiceLevelObjective) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.remove(&uid(slo));
    }
}

/// Runs the queue's warm-ups, `workers` at a time, until the process ends. A
/// failure is an Event and a metric on its SLO.
pub fn spawn(ctx: Arc<Context>, Queue(mut rx): Queue) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(ctx.warm_ups.settings.workers.max(1)));
        while let Some(slo) = rx.recv().await {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let span = tracing::info_span!("warm_up", slo = %slo.name_any());
                let result = run(&ctx, &slo).instrument(span).await;
                ctx.warm_ups.done(&slo);
                drop(slot);
                if let Err(e) = result
                    && !matches!(e, Error::NotLeader)
                {
                    ctx.metrics
                        .actuation_failed(&slo, governor_crds::Knob::CacheWarmUp);
                    events::warning(&ctx, &slo, event::WARM_UP_FAILED, e.to_string()).await;
                }
            });
        }
    })
}

async fn run(ctx: &Context, slo: &ServiceLevelObjective) -> Result<(), Error> {
    let Some(action) = slo.spec.cache.as_ref().and_then(|c| c.warm_up.as_ref()) else {
        return Ok(());
    };
    if !ctx.leader.is_leader() {
        return Ok(());
    }
    if let Some(job) = &action.job {
        return from_cron_job(&ctx.client, &ctx.leader, slo, job).await;
    }
    if let Some(http) = &action.http {
        return requests(&ctx.client, &ctx.warm_ups.settings, slo, http).await;
    }
    Ok(())
}

fn job_running(job: &Job) -> bool {
    let status = job.status.clone().unwrap_or_default();
    let finished = status
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True");
    !finished
}

/// Creates a Job from the CronJob's jobTemplate (owned by the SLO, with a TTL;
/// never a second while one runs).
async fn from_cron_job(
    client: &Client,
    leader: &Leader,
    slo: &ServiceLevelObjective,
    spec: &WarmUpJob,
) -> Result<(), Error> {
    let namespace = slo.namespace().unwrap_or_default();
    let name = slo.name_any();
    let refused = |reason: String| Error::WarmUp {
        target: format!("CronJob {namespace}/{}", spec.from_cron_job),
        reason,
    };
    let cron_jobs: Api<CronJob> = Api::namespaced(client.clone(), &namespace);
    let cron = cron_jobs
        .get_opt(&spec.from_cron_job)
        .await
        .map_err(|e| {
            Error::api(
                format!("reading CronJob {namespace}/{}", spec.from_cron_job),
                e,
            )
        })?
        .ok_or_else(|| {
            refused(
                "not found: create it (suspend: true) with the warm-up Job as its jobTemplate"
                    .into(),
            )
        })?;
    if !opted_in(&cron.metadata) {
        return Err(refused(format!(
            "not annotated {MANAGED_ANNOTATION}: \"true\"; Governor instantiates only CronJobs that opt in"
        )));
    }
    let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace);
    let existing = jobs
        .list(&ListParams::default().labels(&format!(
            "{SLO_LABEL}={}",
            governor_crds::label_value(&name)
        )))
        .await
        .map_err(|e| Error::api("listing warm-up Jobs", e))?;
    if existing.items.iter().any(job_running) {
        return Ok(());
    }
    let template = cron.spec.job_template;
    let mut meta = template.metadata.unwrap_or_default();
    meta.name = None;
    // A Job's name becomes a label value of its pods: with the 5 characters
    // generateName adds, it stays well within 63.
    let short: String = governor_crds::label_value(&name).chars().take(46).collect();
    meta.generate_name = Some(format!(
        "{}-warm-",
        short.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
    ));
    meta.namespace = Some(namespace.clone());
    meta.labels
        .get_or_insert_with(Default::default)
        .insert(SLO_LABEL.into(), governor_crds::label_value(&name));
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert("cronjob.kubernetes.io/instantiate".into(), "manual".into());
    meta.owner_references = slo.controller_owner_ref(&()).map(|r| vec![r]);
    let mut job_spec = template.spec.unwrap_or_default();
    job_spec.ttl_seconds_after_finished = Some(spec.ttl_seconds_after_finished);
    let job = Job {
        metadata: meta,
        spec: Some(job_spec),
        status: None,
    };
    leader.guard()?;
    jobs.create(&PostParams::default(), &job)
        .await
        .map_err(|e| Error::api("creating the warm-up Job", e))?;
    Ok(())
}

/// The host a Service of `namespace` answers on.
fn service_host(service: &str, namespace: &str, domain: &str) -> String {
    format!("{service}.{namespace}.svc.{}", domain.trim_matches('.'))
}

/// Sends the requests to the Service; every path is tried, and a failure names
/// how many failed and the first.
async fn requests(
    client: &Client,
    settings: &Settings,
    slo: &ServiceLevelObjective,
    spec: &WarmUpHttp,
) -> Result<(), Error> {
    let namespace = slo.namespace().unwrap_or_default();
    let target = format!("Service {namespace}/{}:{}", spec.service, spec.port);
    let refused = |reason: String| Error::WarmUp {
        target: target.clone(),
        reason,
    };
    let services: Api<Service> = Api::namespaced(client.clone(), &namespace);
    let service = services
        .get_opt(&spec.service)
        .await
        .map_err(|e| Error::api(format!("reading Service {namespace}/{}", spec.service), e))?
        .ok_or_else(|| refused("not found".into()))?;
    let service_spec = service.spec.unwrap_or_default();
    if service_spec.type_.as_deref() == Some("ExternalName") {
        return Err(refused(
            "is of type ExternalName: warm-ups reach only Services served in the namespace".into(),
        ));
    }
    if !service_spec
        .ports
        .unwrap_or_default()
        .iter()
        .any(|p| p.port == spec.port)
    {
        return Err(refused(format!("the Service has no port {}", spec.port)));
    }
    let host = service_host(&spec.service, &namespace, &settings.cluster_domain);
    let http = http_client(settings, spec.timeout.std())
        .map_err(|e| refused(format!("HTTP client: {e}")))?;
    let mut failed = Vec::new();
    for path in spec.paths.iter().take(WARM_UP_MAX_PATHS) {
        if let Err(reason) = request(&http, spec.method, &host, spec.port, path).await {
            failed.push(format!("{path}: {reason}"));
        }
    }
    match failed.first() {
        None => Ok(()),
        Some(first) => Err(refused(format!(
            "{} of {} paths failed (first: {first})",
            failed.len(),
            spec.paths.len().min(WARM_UP_MAX_PATHS)
        ))),
    }
}

/// A client that follows no redirect, uses no proxy from the environment,
/// and gives up after the capped timeout.
fn http_client(settings: &Settings, timeout: Duration) -> reqwest::Result<reqwest::Client> {
    let timeout = timeout.clamp(Duration::from_millis(100), WARM_UP_MAX_TIMEOUT);
    let mut builder = crate::observe::backend::plain_http(reqwest::Client::builder())
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)));
    for (host, addr) in &settings.resolve {
        builder = builder.resolve(host, *addr);
    }
    builder.build()
}

/// Why one warm-up request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("not a valid path{}", .0.map(|e| format!(" ({e})")).unwrap_or_default())]
    Path(Option<url::ParseError>),
    #[error("HTTP {0} (redirects are not followed)")]
    Redirect(u16),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("timed out")]
    Timeout,
    #[error("could not connect")]
    Connect,
    /// The client's own words are kept as the source, not shown in the
    /// status: they may quote the Service's answer.
    #[error("the request failed")]
    Failed(#[source] reqwest::Error),
}

/// One request; the body is never read. Only a 2xx counts: a redirect is
/// reported, not followed.
async fn request(
    http: &reqwest::Client,
    method: HttpMethod,
    host: &str,
    port: i32,
    path: &str,
) -> Result<(), RequestError> {
    let url = reqwest::Url::parse(&format!("http://{host}:{port}{path}"))
        .map_err(|e| RequestError::Path(Some(e)))?;
    // The path cannot move the request elsewhere.
    if url.host_str() != Some(host) || url.port() != u16::try_from(port).ok() {
        return Err(RequestError::Path(None));
    }
    let builder = match method {
        HttpMethod::GET => http.get(url),
        HttpMethod::HEAD => http.head(url),
    };
    match builder.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) if r.status().is_redirection() => Err(RequestError::Redirect(r.status().as_u16())),
        Ok(r) => Err(RequestError::Status(r.status().as_u16())),
        Err(e) if e.is_timeout() => Err(RequestError::Timeout),
        Err(e) if e.is_connect() => Err(RequestError::Connect),
        Err(e) => Err(RequestError::Failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_is_reached_by_its_cluster_name() {
        assert_eq!(
            service_host("stories", "roadtrip", "cluster.local."),
            "stories.roadtrip.svc.cluster.local"
        );
    }

    #[tokio::test]
    async fn a_path_cannot_leave_the_service() {
        let http = crate::observe::backend::plain_http(reqwest::Client::builder())
            .build()
            .unwrap();
        let host = "stories.roadtrip.svc.cluster.local";
        // Without the leading slash validation asks for, the path would name
        // another host; the request refuses before any connection.
        let e = request(
            &http,
            HttpMethod::GET,
            host,
            8080,
            "@169.254.169.254/latest",
        )
        .await
        .unwrap_err();
        assert!(matches!(e, RequestError::Path(None)), "{e:?}");
        assert_eq!(e.to_string(), "not a valid path");
    }
}
