//! Fencing of the leader on a real API server: two `governor operator`
//! processes, the leader frozen (SIGSTOP) past its lease while the other takes
//! over and writes, then resumed (SIGCONT). The resumed process must report not
//! leading at once and write nothing.
//!
//! Each operator reaches the API server through a recording proxy of its own,
//! so every request is known with the process that sent it; the SLO, its
//! Deployment and the namespace's Events are watched from before the resume,
//! every change recorded with its resourceVersion and managedFields.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode};
use futures::StreamExt;
use governor_crds::ServiceLevelObjective;
use governor_tests::{free_port, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use crate::common::gate;
use crate::common::operator::{Operator, deployment, leading, start_operator};

const LEASE: Duration = Duration::from_secs(4);
/// The freeze: past the lease, and past the follower's next try.
const FREEZE: Duration = Duration::from_secs(7);
const NAME: &str = "fenced";

/// One request an operator sent, as its proxy saw it.
#[derive(Clone, Debug)]
struct Sent {
    at: Instant,
    method: Method,
    path: String,
}

impl Sent {
    fn writes(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }
    fn lease(&self) -> bool {
        self.path.contains("/leases")
    }
}

/// A plain-HTTP proxy to the API server that records every request; the
/// operator behind it authenticates with `token`, which the proxy adds.
struct Proxy {
    url: String,
    log: Arc<Mutex<Vec<Sent>>>,
}

impl Proxy {
    async fn start(api_server: &str, token: &str) -> Self {
        let kubeconfig = Kubeconfig::from_yaml(&kubeconfig(api_server, token, true)).unwrap();
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .unwrap();
        let client = Client::try_from(config).unwrap();
        let log: Arc<Mutex<Vec<Sent>>> = Arc::default();
        let recorded = log.clone();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let (client, log) = (client.clone(), recorded.clone());
            async move { forward(&client, &log, req).await }
        });
        let port = free_port().unwrap();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn sent(&self) -> Vec<Sent> {
        self.log.lock().unwrap().clone()
    }
}

async fn forward(client: &Client, log: &Mutex<Vec<Sent>>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.to_string());
    log.lock().unwrap().push(Sent {
        at: Instant::now(),
        method: parts.method.clone(),
        path: path.clone(),
    });
    let Ok(bytes) = axum::body::to_bytes(body, 16 << 20).await else {
        return bad_gateway();
    };
    let mut out = Request::builder().method(parts.method).uri(path);
    for (k, v) in &parts.headers {
        if k != "host" && k != "authorization" {
            out = out.header(k, v);
        }
    }
    let Ok(out) = out.body(kube::client::Body::from(bytes.to_vec())) else {
        return bad_gateway();
    };
    match client.send(out).await {
        Ok(res) => res.map(Body::new),
        Err(_) => bad_gateway(),
    }
}

fn bad_gateway() -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::BAD_GATEWAY;
    r
}

fn kubeconfig(url: &str, token: &str, tls: bool) -> String {
    let skip = if tls {
        "\n    insecure-skip-tls-verify: true"
    } else {
        ""
    };
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: {url}{skip}
users:
- name: u
  user:
    token: {token}
contexts:
- name: c
  context: {{cluster: c, user: u, namespace: default}}
current-context: c
"
    )
}

/// Every change a watch delivered after it listed, with when it arrived.
struct History<K> {
    seen: Arc<Mutex<Vec<(Instant, K)>>>,
}

impl<K> History<K>
where
    K: Resource + Clone + std::fmt::Debug + Send + Sync + serde::de::DeserializeOwned + 'static,
    K::DynamicType: Default + Clone + Eq + std::hash::Hash,
{
    /// Watches `api`; returns once the initial list is done.
    async fn watch(api: Api<K>) -> Self {
        let seen: Arc<Mutex<Vec<(Instant, K)>>> = Arc::default();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let out = seen.clone();
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let stream = watcher(api, watcher::Config::default());
            futures::pin_mut!(stream);
            while let Some(e) = stream.next().await {
                match e {
                    Ok(watcher::Event::InitDone) => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(watcher::Event::Apply(k)) => out.lock().unwrap().push((Instant::now(), k)),
                    _ => {}
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(20), ready_rx)
            .await
            .unwrap()
            .unwrap();
        Self { seen }
    }

    fn since(&self, t: Instant) -> Vec<K> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|(at, _)| *at >= t)
            .map(|(_, k)| k.clone())
            .collect()
    }
}

/// "manager/operation/subresource@time" of each managedFields entry.
fn managers<K: Resource>(k: &K) -> Vec<String> {
    k.meta()
        .managed_fields
        .iter()
        .flatten()
        .map(|f| {
            format!(
                "{}/{}/{}@{}",
                f.manager.as_deref().unwrap_or(""),
                f.operation.as_deref().unwrap_or(""),
                f.subresource.as_deref().unwrap_or(""),
                f.time.as_ref().map(|t| t.0.to_string()).unwrap_or_default()
            )
        })
        .collect()
}

fn slo(max_replicas: u32) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "governor.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "metadata": {"name": NAME},
        "spec": {
            "service": NAME,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
            "objectives": {"latency": {"p99": "100ms"}, "window": "1d", "evaluationInterval": "2s"},
            "scaling": {"minReplicas": 2, "maxReplicas": max_replicas},
            "alerting": {"enabled": false}
        }
    })
}

/// The generation every condition of the status was written for, when all agree.
fn status_generation(slo: &ServiceLevelObjective) -> Option<i64> {
    let conditions = &slo.status.as_ref()?.conditions;
    let first = conditions.first()?.observed_generation;
    conditions
        .iter()
        .all(|c| c.observed_generation == first)
        .then_some(first)?
}

async fn wait_status(slos: &Api<ServiceLevelObjective>, generation: i64) {
    wait_until(
        &format!("the status of generation {generation}"),
        Duration::from_secs(30),
        || async {
            let s = slos.get(NAME).await.ok()?;
            (status_generation(&s) == Some(generation)).then_some(())
        },
    )
    .await
    .unwrap();
}

fn signal(op: &Operator, sig: &str) {
    let pid = op.server.pid().unwrap().to_string();
    let ok = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[tokio::test]
async fn a_leader_frozen_past_its_lease_writes_nothing_once_resumed() {
    let _alone = gate::alone().await;
    let c = crate::common::operator::cluster("fence").await;
    let ns = c.ns.name.clone();
    let params = PatchParams::apply("governor-tests");
    let deployments: Api<Deployment> = Api::namespaced(c.cp.client.clone(), &ns);
    deployments
        .patch(NAME, &params, &Patch::Apply(deployment(NAME, 2)))
        .await
        .unwrap();
    let slos: Api<ServiceLevelObjective> = Api::namespaced(c.cp.client.clone(), &ns);
    slos.patch(NAME, &params, &Patch::Apply(slo(20)))
        .await
        .unwrap();

    // Each operator behind a recording proxy, with the chart's ServiceAccount.
    let token =
        c.cp.service_account_token(&ns, &format!("{ns}-operator"))
            .await
            .unwrap();
    let mut ops = Vec::new();
    for identity in ["a", "b"] {
        let proxy = Proxy::start(&c.cp.url, &token).await;
        let file = c.dir.path().join(format!("kubeconfig-{identity}"));
        std::fs::write(&file, kubeconfig(&proxy.url, "via-proxy", false)).unwrap();
        // No Prometheus: every pass holds, and still writes status and Events.
        // start_operator sets a lease of 4 s (LEASE).
        let op = start_operator(identity, &file, &ns, "http://127.0.0.1:9", &[]);
        ops.push((identity, op, proxy));
    }
    let first = wait_until("a leader", Duration::from_secs(60), || async {
        let (x, y) = (leading(&ops[0].1).await?, leading(&ops[1].1).await?);
        assert!(!(x && y), "both lead");
        (x || y).then_some(usize::from(y))
    })
    .await
    .unwrap();
    let (old, new) = (&ops[first], &ops[1 - first]);
    let generation = slos.get(NAME).await.unwrap().metadata.generation.unwrap();
    wait_status(&slos, generation).await;
    let before: Vec<Sent> = old.2.sent().into_iter().filter(Sent::writes).collect();
    assert!(
        before.iter().any(|s| s.lease()) && before.iter().any(|s| s.path.contains("/status")),
        "the proxy saw the leader renew and write status: {before:?}"
    );

    // Freeze the leader past its lease; the other takes over and writes.
    signal(&old.1, "-STOP");
    let frozen = Instant::now();
    wait_until(
        "the other replica to lead",
        Duration::from_secs(20),
        || async { leading(&new.1).await?.then_some(()) },
    )
    .await
    .unwrap();
    let takeover = frozen.elapsed();
    let patched = slos
        .patch(NAME, &params, &Patch::Apply(slo(19)))
        .await
        .unwrap();
    let while_frozen = patched.metadata.generation.unwrap();
    wait_status(&slos, while_frozen).await;
    tokio::time::sleep(FREEZE.saturating_sub(frozen.elapsed())).await;

    // Watch everything it could write, from before the resume.
    let slo_history = History::watch(slos.clone()).await;
    let deployment_history = History::watch(deployments.clone()).await;
    let events: Api<Event> = Api::namespaced(c.cp.client.clone(), &ns);
    let event_history = History::watch(events).await;
    let at_resume = slos.get(NAME).await.unwrap();
    let rv_before = at_resume.resource_version().unwrap();

    let resumed = Instant::now();
    let freeze = resumed - frozen;
    signal(&old.1, "-CONT");
    let leading_after_resume = leading(&old.1).await;
    let answered = resumed.elapsed();
    assert_eq!(
        leading_after_resume,
        Some(false),
        "governor_leader of the resumed process"
    );

    // A change both see: only the leader writes its status.
    let patched = slos
        .patch(NAME, &params, &Patch::Apply(slo(18)))
        .await
        .unwrap();
    let after_resume = patched.metadata.generation.unwrap();
    wait_status(&slos, after_resume).await;
    // The resumed process has since tried the lease three times, and lost.
    wait_until(
        "three lease reads by the resumed process",
        Duration::from_secs(20),
        || async {
            let reads = old
                .2
                .sent()
                .iter()
                .filter(|s| s.at >= resumed && s.lease())
                .count();
            (reads >= 3).then_some(())
        },
    )
    .await
    .unwrap();
    assert_eq!(leading(&old.1).await, Some(false));
    assert_eq!(leading(&new.1).await, Some(true));

    let old_after: Vec<Sent> = old
        .2
        .sent()
        .into_iter()
        .filter(|s| s.at >= resumed)
        .collect();
    let new_writes: Vec<Sent> = new
        .2
        .sent()
        .into_iter()
        .filter(|s| s.at >= resumed && s.writes())
        .collect();
    let slo_changes = slo_history.since(resumed);
    let deployment_changes = deployment_history.since(resumed);
    let new_events = event_history.since(resumed);
    println!(
        "leader {} frozen {:.1} s (lease {} s); {} led after {:.1} s; /metrics said not leading {} ms after SIGCONT",
        old.0,
        freeze.as_secs_f64(),
        LEASE.as_secs(),
        new.0,
        takeover.as_secs_f64(),
        answered.as_millis()
    );
    println!(
        "after the resume: {} requests by {} ({} writes), {} writes by {}; SLO changed {} times (from resourceVersion {rv_before}), Deployment {} times, {} Events",
        old_after.len(),
        old.0,
        old_after.iter().filter(|s| s.writes()).count(),
        new_writes.len(),
        new.0,
        slo_changes.len(),
        deployment_changes.len(),
        new_events.len(),
    );
    for s in &slo_changes {
        println!(
            "  SLO rv {} gen {:?} status gen {:?}: {:?}",
            s.resource_version().unwrap_or_default(),
            s.metadata.generation,
            status_generation(s),
            managers(s)
        );
    }

    // Nothing written by the resumed process: no request, no Event.
    let old_writes: Vec<&Sent> = old_after.iter().filter(|s| s.writes()).collect();
    assert!(
        old_writes.is_empty(),
        "the resumed process wrote after it lost the lease: {old_writes:?}"
    );
    let by_old: Vec<&Event> = new_events
        .iter()
        .filter(|e| e.reporting_instance.as_deref() == Some(old.0))
        .collect();
    assert!(
        by_old.is_empty(),
        "Events from the resumed process: {by_old:?}"
    );
    // Every status change since is the new leader's: no more of them than its
    // status writes, and the last for the newest generation.
    let status_writes = new_writes
        .iter()
        .filter(|s| s.path.contains("servicelevelobjectives") && s.path.contains("/status"))
        .count();
    let mut status = at_resume.status.clone();
    let mut status_changes = 0;
    for s in &slo_changes {
        if s.status != status {
            status_changes += 1;
            status = s.status.clone();
        }
    }
    assert!(
        status_changes <= status_writes,
        "{status_changes} status changes, {status_writes} status writes by {}",
        new.0
    );
    let scale_writes = new_writes
        .iter()
        .filter(|s| s.path.contains("/deployments/"))
        .count();
    assert!(
        deployment_changes.len() <= scale_writes,
        "the Deployment changed {} times, {scale_writes} writes by {}",
        deployment_changes.len(),
        new.0
    );
    let lease: Api<Lease> = Api::namespaced(c.cp.client.clone(), &ns);
    let holder = lease
        .get("governor-operator")
        .await
        .unwrap()
        .spec
        .unwrap()
        .holder_identity;
    assert_eq!(holder.as_deref(), Some(new.0));
}
