//! `governor operator`: a kube-runtime Controller over ServiceLevelObjectives.
//! Each pass observes (from the shared batched cycle), decides, acts on the
//! target through the Kubernetes API, and reports status and Events. Only the
//! replica holding the Lease acts; one bad SLO never stalls the others.

pub mod leader;
pub mod metrics;
pub mod target;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use governor_crds::{Knob, ServiceLevelObjective, ServiceLevelObjectiveStatus as Status};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Error as ControllerError};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::Instrument;

use crate::decide::{Actuation, ControllerState, decide};
use crate::observe::jaeger::JaegerSource;
use crate::observe::prometheus::{PrometheusSource, Reading};
use crate::observe::queries::Signal;
use crate::report::{self, Pass, Reach};

pub use leader::Leader;
pub use metrics::Metrics;

/// Field manager of every write.
pub const MANAGER: &str = "governor";

/// Errors of one pass, by category (the metric label and the Event reason).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("target {0} not found")]
    TargetMissing(String),
    #[error("Kubernetes API: {0}")]
    Api(String),
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
}

impl Error {
    pub fn category(&self) -> &'static str {
        match self {
            Error::TargetMissing(_) => "target_missing",
            Error::Api(_) => "api",
            Error::InvalidSpec(_) => "invalid_spec",
        }
    }
}

type Key = (String, String);

/// What every pass shares.
pub struct Context {
    pub client: Client,
    pub leader: Leader,
    pub metrics: Metrics,
    pub recorder: Recorder,
    /// The newest reading per SLO, with the number of the cycle that read it.
    pub readings: Mutex<HashMap<Key, (u64, Reading)>>,
    pub states: Mutex<HashMap<Key, ControllerState>>,
    /// Last status written per SLO (to skip writes that change nothing).
    pub written: Mutex<HashMap<Key, (Status, Instant)>>,
    /// When each SLO was last decided, and on which cycle's reading: passes
    /// triggered sooner by watch events wait for the evaluation interval, and
    /// a reading is decided on once.
    pub decided: Mutex<HashMap<Key, (Instant, u64)>>,
    /// Generation whose alert rules were applied, per SLO.
    pub rules_applied: Mutex<HashMap<Key, i64>>,
    /// Whether the cluster serves prometheus-operator's PrometheusRule.
    pub prometheus_operator: bool,
    /// Every HorizontalPodAutoscaler, to find the one scaling a target.
    pub hpas: Store<HorizontalPodAutoscaler>,
    pub dashboard_url: Option<String>,
}

/// Applies the SLO's burn-rate rules once per spec generation.
async fn apply_rules(ctx: &Context, slo: &ServiceLevelObjective) -> Result<(), Error> {
    let k = key(slo);
    let generation = slo.metadata.generation.unwrap_or(0);
    if ctx
        .rules_applied
        .lock()
        .ok()
        .and_then(|m| m.get(&k).copied())
        == Some(generation)
    {
        return Ok(());
    }
    let opts = crate::rules::Options {
        dashboard_url: ctx.dashboard_url.clone(),
        default_runbook_url: None,
    };
    let generated = match crate::rules::generate(slo, &opts, &crate::rules::Unchecked) {
        Ok(g) => g,
        Err(problems) => {
            let text = problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            event(ctx, slo, EventType::Warning, "AlertRulesRefused", text).await;
            if let Ok(mut m) = ctx.rules_applied.lock() {
                m.insert(k, generation);
            }
            return Ok(());
        }
    };
    crate::rules::apply(
        &ctx.client,
        slo,
        generated.group.as_ref(),
        ctx.prometheus_operator,
    )
    .await
    .map_err(Error::Api)?;
    if let Ok(mut m) = ctx.rules_applied.lock() {
        m.insert(k, generation);
    }
    Ok(())
}

fn key(slo: &ServiceLevelObjective) -> Key {
    (slo.namespace().unwrap_or_default(), slo.name_any())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Observes every SLO in `store` once per `interval`, in one batched cycle,
/// then sends on `decide` so every SLO is passed on the new readings at once:
/// a breach seen by a cycle is acted on without waiting for a requeue.
pub fn spawn_observer(
    ctx: Arc<Context>,
    store: Store<ServiceLevelObjective>,
    source: PrometheusSource,
    jaeger: Option<JaegerSource>,
    interval: Duration,
    decide: futures::channel::mpsc::UnboundedSender<()>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut number = 0u64;
        // Rates over a window that spans a gap in the data (Prometheus down,
        // scrapes failing) read low: after a gap, a signal is trusted again
        // only once a whole window has passed.
        let window = source
            .window
            .parse::<governor_crds::Duration>()
            .map_or(Duration::from_secs(60), |d| d.std());
        let mut gaps: HashMap<Key, Instant> = HashMap::new();
        loop {
            tick.tick().await;
            let slos = store.state();
            if slos.is_empty() {
                continue;
            }
            let refs: Vec<&ServiceLevelObjective> = slos.iter().map(|s| s.as_ref()).collect();
            let cycle = crate::observe::cycle(&source, jaeger.as_ref(), &refs).await;
            ctx.metrics.queries.inc_by(cycle.queries as u64);
            ctx.metrics.query_failures.inc_by(cycle.failed as u64);
            number += 1;
            let mut fresh: HashMap<Key, (u64, Reading)> = HashMap::with_capacity(slos.len());
            for (slo, mut reading) in slos.iter().zip(cycle.readings) {
                let k = key(slo);
                if reading.observation.request_rate.is_none() {
                    gaps.insert(k.clone(), Instant::now());
                } else if let Some(since) = gaps.get(&k).map(Instant::elapsed) {
                    if since < window {
                        reading.observation.request_rate = None;
                        reading.missing.insert(
                            Signal::Requests.name(),
                            format!(
                                "data returned {:.0} s ago; rates over the {} window do not cover the gap yet",
                                since.as_secs_f64(),
                                source.window
                            ),
                        );
                    } else {
                        gaps.remove(&k);
                    }
                }
                fresh.insert(k, (number, reading));
            }
            gaps.retain(|k, _| fresh.contains_key(k));
            if let Ok(mut readings) = ctx.readings.lock() {
                *readings = fresh;
            }
            let _ = decide.unbounded_send(());
        }
    })
}

async fn event(
    ctx: &Context,
    slo: &ServiceLevelObjective,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let reference = slo.object_ref(&());
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(report::truncate_note(&note)),
        action: reason.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &reference).await {
        tracing::warn!(error = %e, "publishing event {reason}");
    }
}

/// Writes the status when it changed (the observed time alone does not count,
/// unless a minute has passed).
async fn write_status(
    ctx: &Context,
    slo: &ServiceLevelObjective,
    status: Status,
) -> Result<(), Error> {
    let k = key(slo);
    let comparable = |s: &Status| {
        let mut s = s.clone();
        if let Some(o) = s.observed.as_mut() {
            o.time = Time(Timestamp::UNIX_EPOCH);
        }
        s
    };
    if let Ok(written) = ctx.written.lock()
        && let Some((prev, at)) = written.get(&k)
        && comparable(prev) == comparable(&status)
        && at.elapsed() < Duration::from_secs(60)
    {
        return Ok(());
    }
    let api: Api<ServiceLevelObjective> = Api::namespaced(ctx.client.clone(), &k.0);
    let patch = serde_json::json!({
        "apiVersion": "governor.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "status": status,
    });
    api.patch_status(
        &k.1,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|e| Error::Api(format!("writing status of {}/{}: {e}", k.0, k.1)))?;
    if let Ok(mut written) = ctx.written.lock() {
        written.insert(k, (status, Instant::now()));
    }
    Ok(())
}

/// The condition of type `kind` in `status`, if any.
fn condition<'a>(status: Option<&'a Status>, kind: &str) -> Option<&'a Condition> {
    status?.conditions.iter().find(|c| c.type_ == kind)
}

fn interval_of(slo: &ServiceLevelObjective) -> Duration {
    slo.spec
        .objectives
        .evaluation_interval
        .std()
        .max(Duration::from_secs(1))
}

async fn reconcile(slo: Arc<ServiceLevelObjective>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.leader.is_leader() {
        return Ok(Action::requeue(interval_of(&slo)));
    }
    if let Some(wait) = not_due(&ctx, &slo) {
        return Ok(Action::requeue(wait));
    }
    let started = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        slo = %slo.name_any(),
        namespace = %slo.namespace().unwrap_or_default(),
        generation = slo.metadata.generation.unwrap_or(0),
        state = tracing::field::Empty,
        decisions = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    );
    let result = pass(&slo, &ctx).instrument(span.clone()).await;
    if let Err(e) = &result {
        span.record("otel.status_code", "ERROR");
        span.record("otel.status_description", e.to_string());
    }
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    result
}

/// Reads the target: its replicas, pool size, and the HPA that scales it.
async fn read_target(
    ctx: &Context,
    slo: &ServiceLevelObjective,
    namespace: &str,
) -> Result<(target::Target, u32, Option<u32>, Reach), Error> {
    let mut target = target::Target::resolve(&ctx.client, namespace, &slo.spec).await?;
    let replicas = target.replicas().await?;
    let pool = target.pool_size(&ctx.client, namespace, &slo.spec).await?;
    let hpa = target::hpa_for(&ctx.hpas.state(), namespace, &slo.spec);
    let hpa_name = |h: &target::Hpa| format!("HorizontalPodAutoscaler {}/{}", h.namespace, h.name);
    let reach = match (&hpa, slo.spec.scaling.drive_hpa) {
        (Some(h), true) => Reach {
            reason: Reach::DRIVING_HPA,
            message: format!(
                "{}: replicas set through the minReplicas of {} (at most its maxReplicas {})",
                target.describe,
                hpa_name(h),
                h.max_replicas
            ),
        },
        (Some(h), false) => Reach {
            reason: Reach::HPA_NOT_DRIVEN,
            message: format!(
                "{} is also scaled by {}; set spec.scaling.driveHpa so Governor moves its minReplicas instead of competing with it",
                target.describe,
                hpa_name(h)
            ),
        },
        (None, true) => Reach {
            reason: Reach::NO_HPA,
            message: format!(
                "spec.scaling.driveHpa is set but no HorizontalPodAutoscaler scales {}; replicas set through its scale subresource",
                target.describe
            ),
        },
        (None, false) => Reach {
            reason: Reach::SCALE_SUBRESOURCE,
            message: format!(
                "{}: replicas set through its scale subresource",
                target.describe
            ),
        },
    };
    if slo.spec.scaling.drive_hpa {
        target.driven_hpa = hpa;
    }
    Ok((target, replicas, pool, reach))
}

/// How long until the SLO is due, when it is not: at most one decision per
/// evaluation interval, and each on a reading not decided on before (unless
/// the observer has not delivered one for two intervals).
fn not_due(ctx: &Context, slo: &ServiceLevelObjective) -> Option<Duration> {
    let interval = interval_of(slo);
    let k = key(slo);
    let (at, cycle) = ctx.decided.lock().ok()?.get(&k).copied()?;
    let newest = ctx
        .readings
        .lock()
        .ok()
        .and_then(|r| r.get(&k).map(|(n, _)| *n));
    let elapsed = at.elapsed();
    if elapsed < interval.mul_f64(0.9) {
        return Some(interval.saturating_sub(elapsed));
    }
    (newest.is_none_or(|n| n == cycle) && elapsed < 2 * interval).then_some(interval)
}

async fn pass(slo: &ServiceLevelObjective, ctx: &Context) -> Result<Action, Error> {
    let interval = interval_of(slo);
    let (namespace, name) = key(slo);
    let problems = slo.spec.validate();
    if !problems.is_empty() {
        let text = problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        event(ctx, slo, EventType::Warning, "InvalidSpec", text.clone()).await;
        return Err(Error::InvalidSpec(text));
    }
    apply_rules(ctx, slo).await?;
    let prev = slo.status.as_ref();
    let was = |kind: &str| condition(prev, kind).map(|c| c.status.as_str());
    let read = read_target(ctx, slo, &namespace)
        .instrument(tracing::info_span!("read_target"))
        .await;
    let (target, replicas, pool, reach) = match read {
        Ok(r) => r,
        Err(e @ Error::TargetMissing(_)) => {
            // Announced once when it goes missing; the condition says it meanwhile.
            if was("TargetFound") != Some("False") {
                event(ctx, slo, EventType::Warning, "TargetMissing", e.to_string()).await;
            }
            let status = report::target_missing(
                prev,
                slo.metadata.generation,
                &e.to_string(),
                Time(Timestamp::now()),
            );
            write_status(ctx, slo, status).await?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if reach.reason == Reach::HPA_NOT_DRIVEN
        && condition(prev, "TargetFound").map(|c| c.reason.as_str()) != Some(Reach::HPA_NOT_DRIVEN)
    {
        event(
            ctx,
            slo,
            EventType::Warning,
            "HpaConflict",
            reach.message.clone(),
        )
        .await;
    }
    let (cycle, obs, hold_causes) = ctx
        .readings
        .lock()
        .ok()
        .and_then(|r| {
            r.get(&(namespace.clone(), name.clone()))
                .map(|(n, r)| (*n, r.observation.clone(), r.hold_causes()))
        })
        .unwrap_or_default();
    let now = unix_now();
    let current = Actuation {
        replicas,
        pool_size: pool.or_else(|| {
            slo.spec
                .connection_pool
                .as_ref()
                .map(|p| p.max_size.max(1) as u32)
        }),
    };
    let state = ctx
        .states
        .lock()
        .ok()
        .and_then(|mut s| s.remove(&(namespace.clone(), name.clone())))
        .unwrap_or_default();
    let (mut plan, next) =
        tracing::info_span!("decide").in_scope(|| decide(&slo.spec, state, &obs, current, now));
    // A hold names what was missing and why.
    if let Some(hold) = plan.hold.as_mut()
        && let Some(causes) = hold_causes
    {
        *hold = format!("{hold} ({causes})");
    }
    if let Ok(mut d) = ctx.decided.lock() {
        d.insert((namespace.clone(), name.clone()), (Instant::now(), cycle));
    }
    if let Ok(mut s) = ctx.states.lock() {
        s.insert((namespace.clone(), name.clone()), next);
    }
    // Act, unless DryRun.
    if !plan.dry_run {
        let request = crate::actuate::Request {
            replicas: plan.replicas.as_ref().map(|c| c.to),
            pool_size: plan.pool_size.as_ref().map(|c| c.to),
            warm_up: plan.warm_up.is_some(),
        };
        for step in crate::actuate::steps(request, current.pool_size) {
            let (knob, result) = match step {
                crate::actuate::Step::Replicas(n) => {
                    let result = target
                        .scale(&ctx.client, n)
                        .instrument(tracing::info_span!("act", knob = "replicas", to = n))
                        .await;
                    if let Ok(set) = result
                        && set != n
                        && let Some(h) = &target.driven_hpa
                    {
                        event(
                            ctx,
                            slo,
                            EventType::Warning,
                            "HpaMaxReplicas",
                            format!(
                                "wanted {n} replicas; HorizontalPodAutoscaler {}/{} allows at most {set}",
                                h.namespace, h.name
                            ),
                        )
                        .await;
                    }
                    ("replicas", result.map(|_| ()))
                }
                crate::actuate::Step::PoolSize(p) => (
                    "pool_size",
                    target
                        .set_pool_size(&ctx.client, &namespace, &slo.spec, p)
                        .instrument(tracing::info_span!("act", knob = "pool_size", to = p))
                        .await,
                ),
                crate::actuate::Step::WarmUp => (
                    "cache_warm_up",
                    target::warm_up(&ctx.client, slo)
                        .instrument(tracing::info_span!("act", knob = "cache_warm_up"))
                        .await,
                ),
            };
            if let Err(e) = result {
                ctx.metrics
                    .actuation_errors
                    .get_or_create(&metrics::SloKnob {
                        namespace: namespace.clone(),
                        slo: name.clone(),
                        knob: knob.into(),
                    })
                    .inc();
                event(
                    ctx,
                    slo,
                    EventType::Warning,
                    "ActuationFailed",
                    format!("{knob}: {e}"),
                )
                .await;
                // A later step never runs on a failed earlier one.
                return Err(e);
            }
        }
    }
    let pass = Pass {
        spec: &slo.spec,
        generation: slo.metadata.generation,
        observation: &obs,
        plan: &plan,
        current,
        error_budget_remaining: prev.and_then(|s| s.error_budget_remaining),
        target: reach,
        now: Time(Timestamp::now()),
    };
    let new = report::new_decisions(prev.map_or(&[][..], |s| &s.decisions[..]), &pass);
    let status = report::status(prev, &pass);
    for d in &new {
        let knob = match d.knob {
            Knob::Replicas => "replicas",
            Knob::PoolSize => "pool_size",
            Knob::CacheWarmUp => "cache_warm_up",
        };
        ctx.metrics
            .decisions
            .get_or_create(&metrics::Knob { knob: knob.into() })
            .inc();
        let reason = match (d.knob, d.dry_run) {
            (_, true) => "WouldChange",
            (Knob::Replicas, _) => "Scaled",
            (Knob::PoolSize, _) => "PoolResized",
            (Knob::CacheWarmUp, _) => "CacheWarmUp",
        };
        event(
            ctx,
            slo,
            EventType::Normal,
            reason,
            format!("{knob} {} -> {}: {}", d.from, d.to, d.reason),
        )
        .await;
    }
    // Problems are announced when they appear, not every pass.
    if condition(Some(&status), "MetricsAvailable").map(|c| c.status.as_str()) == Some("False")
        && was("MetricsAvailable") != Some("False")
    {
        event(
            ctx,
            slo,
            EventType::Warning,
            "MetricsUnavailable",
            plan.hold.clone().unwrap_or_default(),
        )
        .await;
    }
    if let Some(b) = &plan.bottleneck
        && was("Bottleneck") != Some("True")
    {
        event(
            ctx,
            slo,
            EventType::Warning,
            "DownstreamBottleneck",
            b.clone(),
        )
        .await;
    }
    let state = format!("{:?}", status.objective_state);
    tracing::Span::current().record("state", state.as_str());
    tracing::Span::current().record("decisions", new.len());
    ctx.metrics.set_state(&namespace, &name, &state);
    let labels = metrics::Slo {
        namespace: namespace.clone(),
        slo: name.clone(),
    };
    ctx.metrics
        .replicas
        .get_or_create(&labels)
        .set(i64::from(replicas));
    if let Some(p) = current
        .pool_size
        .filter(|_| slo.spec.connection_pool.is_some())
    {
        ctx.metrics
            .pool_size
            .get_or_create(&labels)
            .set(i64::from(p));
    }
    if let Some(b) = status.error_budget_remaining {
        ctx.metrics.budget.get_or_create(&labels).set(b);
    }
    write_status(ctx, slo, status)
        .instrument(tracing::info_span!("write_status"))
        .await?;
    Ok(Action::requeue(interval))
}

fn error_policy(slo: Arc<ServiceLevelObjective>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics
        .reconcile_errors
        .get_or_create(&metrics::Category {
            category: error.category().into(),
        })
        .inc();
    tracing::warn!(slo = %slo.name_any(), namespace = ?slo.namespace(), category = error.category(), "{error}");
    Action::requeue(match error {
        Error::InvalidSpec(_) => Duration::from_secs(60),
        // Deployments and StatefulSets are watched: their creation triggers a
        // pass sooner. Other kinds are looked for again after this.
        Error::TargetMissing(_) => Duration::from_secs(30),
        Error::Api(_) => Duration::from_secs(5),
    })
}

/// Settings of `governor operator`.
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
}

/// Runs until Ctrl-C or SIGTERM; releases the lease on the way out.
pub async fn run(client: Client, settings: Settings) -> Result<(), String> {
    let leader = Leader::new(
        client.clone(),
        &settings.lease_namespace,
        &settings.lease_name,
        &settings.identity,
        settings.lease_duration,
    );
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "governor".into(),
            instance: Some(settings.identity.clone()),
        },
    );
    let prometheus_operator = crate::rules::has_prometheus_rule(&client)
        .await
        .map_err(|e| format!("discovering monitoring.coreos.com: {e}"))?;
    let (hpas, hpa_writer) = reflector::store();
    let hpa_stream = reflector(
        hpa_writer,
        watcher(
            Api::<HorizontalPodAutoscaler>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .applied_objects();
    tokio::spawn(async move {
        futures::pin_mut!(hpa_stream);
        while let Some(item) = hpa_stream.next().await {
            if let Err(e) = item {
                tracing::warn!(error = %e, "watching HorizontalPodAutoscalers");
            }
        }
    });
    if tokio::time::timeout(Duration::from_secs(30), hpas.wait_until_ready())
        .await
        .is_err()
    {
        tracing::warn!("HorizontalPodAutoscalers not listed after 30 s; driveHpa waits for them");
    }
    let ctx = Arc::new(Context {
        client: client.clone(),
        leader: leader.clone(),
        metrics: Metrics::new(),
        recorder,
        readings: Mutex::new(HashMap::new()),
        states: Mutex::new(HashMap::new()),
        written: Mutex::new(HashMap::new()),
        rules_applied: Mutex::new(HashMap::new()),
        decided: Mutex::new(HashMap::new()),
        prometheus_operator,
        hpas,
        dashboard_url: settings.dashboard_url.clone(),
    });
    let listener = tokio::net::TcpListener::bind(settings.metrics_listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.metrics_listen))?;
    let metrics_ctx = ctx.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let body = metrics_ctx.metrics.encode();
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
    let _lease = leader.spawn(ctx.metrics.leader.clone());

    let slos: Api<ServiceLevelObjective> = Api::all(client.clone());
    let wc = watcher::Config::default();
    let controller = Controller::new(slos, wc.clone());
    let store = controller.store();
    let (observed, decide_all) = futures::channel::mpsc::unbounded();
    let _observer = spawn_observer(
        ctx.clone(),
        store.clone(),
        settings.prometheus,
        settings.jaeger,
        settings.observe_interval,
        observed,
    );
    let by_target = |kind: &'static str, store: Store<ServiceLevelObjective>| {
        move |namespace: Option<String>, name: String| -> Vec<ObjectRef<ServiceLevelObjective>> {
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
    };
    let deployments = by_target("Deployment", store.clone());
    let statefulsets = by_target("StatefulSet", store.clone());
    let shutdown_leader = leader.clone();
    let watch_ctx = ctx.clone();
    controller
        .with_config(kube::runtime::controller::Config::default().concurrency(settings.concurrency))
        .reconcile_all_on(decide_all)
        .watches(
            Api::<Deployment>::all(client.clone()),
            wc.clone(),
            move |d| deployments(d.namespace(), d.name_any()),
        )
        .watches(Api::<StatefulSet>::all(client.clone()), wc, move |s| {
            statefulsets(s.namespace(), s.name_any())
        })
        .graceful_shutdown_on(shutdown_signal())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            // Reconcile errors are counted and logged by error_policy; a
            // failing watch would otherwise go unseen.
            if let Err(e @ (ControllerError::QueueError(_) | ControllerError::RunnerError(_))) =
                &result
            {
                watch_ctx
                    .metrics
                    .reconcile_errors
                    .get_or_create(&metrics::Category {
                        category: "watch".into(),
                    })
                    .inc();
                tracing::warn!(category = "watch", "{}", watch_hint(&e.to_string()));
            }
            async {}
        })
        .await;
    shutdown_leader.release().await;
    Ok(())
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
