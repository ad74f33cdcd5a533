//! Faults injected under a running `governor operator`, through real fault
//! proxies on loopback: Toxiproxy (TCP) in front of HAProxy (HTTP, TLS
//! terminated) in front of the real kube-apiserver — the operator's
//! kubeconfig points at Toxiproxy — and Toxiproxy in front of the real
//! Prometheus (its `--prometheus`). In turn: API server connections reset,
//! the API server refusing connections, the API server answering every
//! request with 429, then 500, then 503 (HAProxy answers with a Kubernetes
//! `Status` body and cuts open watches), etcd killed and started again under
//! the API server, Prometheus 10 s slow, Prometheus answering garbage,
//! Prometheus answering 200 MB, and last the API server hanging (connections
//! held open, their data dropped).
//!
//! For each fault: the operator keeps running (/healthz answers, no
//! "panicked" in its log), svc-0's replicas never fall below what they were
//! before the fault (the load is steady), and after the fault is removed the
//! SLO's status catches up (a spec change made during the fault shows in
//! `observedGeneration`; after a Prometheus fault `MetricsAvailable` is True
//! again with an observation newer than the removal). The recovery time (fault
//! removed to that status write) is printed per fault.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use governor_crds::ServiceLevelObjective;
use governor_tests::haproxy::{self, HttpFaults};
use governor_tests::toxiproxy::{Proxy, Stream};
use governor_tests::{Prometheus, Toxic, Toxiproxy, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::common;
use crate::common::gate;
use crate::common::operator::{Operator, deployment, start_operator};

const NAME: &str = "svc-0";
/// How long each fault stays in place.
const HOLD: Duration = Duration::from_secs(10);
/// How long the status may take to catch up after a fault.
const RECOVERY: Duration = Duration::from_secs(45);
/// The operator's memory limit in the chart (`operator.resources`), 256Mi.
const CHART_MEMORY_LIMIT_MB: f64 = 256.0;

fn slo() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "governor.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "metadata": {"name": NAME},
        "spec": {
            "service": NAME,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
            "objectives": {"latency": {"p99": "100ms"}, "window": "1d", "evaluationInterval": "2s"},
            "scaling": {
                "minReplicas": 1, "maxReplicas": 20,
                "scaleUp": {"maxPods": 4, "maxPercent": 100, "period": "3s"},
                "scaleDown": {"maxPods": 2, "maxPercent": 50, "period": "5s", "stabilizationWindow": "20s"},
                "podStartupTime": "2s"
            },
            "alerting": {"enabled": false}
        }
    })
}

/// svc-0's replicas as the admin sees them (straight to the API server, not
/// through the proxy), polled every 200 ms: the last value and the lowest since
/// the last `reset`.
#[derive(Clone, Default)]
struct Replicas(Arc<Mutex<(i32, i32)>>);

impl Replicas {
    fn last(&self) -> i32 {
        self.0.lock().unwrap().0
    }
    fn lowest(&self) -> i32 {
        self.0.lock().unwrap().1
    }
    fn reset(&self) {
        let mut g = self.0.lock().unwrap();
        g.1 = g.0;
    }
}

/// Plays the kubelet (svc-0's replicas into the simulator) and tracks the replicas.
fn spawn_bridge(
    client: Client,
    namespace: String,
    sim: String,
    replicas: Replicas,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let deployments: Api<Deployment> = Api::namespaced(client, &namespace);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        while !stop.load(Ordering::SeqCst) {
            let got = tokio::time::timeout(Duration::from_secs(2), deployments.get(NAME)).await;
            if let Ok(Ok(d)) = got
                && let Some(r) = d.spec.replicas
            {
                {
                    let mut g = replicas.0.lock().unwrap();
                    if g.0 == 0 {
                        g.1 = r;
                    }
                    g.0 = r;
                    g.1 = g.1.min(r);
                }
                let _ = http
                    .post(format!("http://{sim}/control"))
                    .json(&serde_json::json!({"service": NAME, "replicas": r}))
                    .send()
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// A loopback HTTP server answering every request with garbage (mode 0) or a
/// 200 MB JSON answer naming no series of svc-0 (mode 1).
async fn start_bad_prometheus(mode: Arc<AtomicU8>) -> String {
    let mut huge = String::with_capacity(201 << 20);
    huge.push_str(r#"{"status":"success","data":{"resultType":"vector","result":["#);
    let item = r#"{"metric":{"service":"elsewhere","le":"0.1"},"value":[1700000000,"1"]},"#;
    while huge.len() < 200 << 20 {
        huge.push_str(item);
    }
    huge.push_str(r#"{"metric":{},"value":[1700000000,"1"]}]}}"#);
    let huge = Bytes::from(huge);
    let garbage = Bytes::from_static(b"\x00\xff<html>not prometheus {{{\"status\": 5");
    let app = axum::Router::new().fallback(move || {
        let (mode, huge, garbage) = (mode.clone(), huge.clone(), garbage.clone());
        async move {
            let body = if mode.load(Ordering::SeqCst) == 0 {
                garbage
            } else {
                huge
            };
            ([("content-type", "application/json")], body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Points a proxy at another upstream. Toxiproxy 2.5 stops a proxy whose
/// upstream changes and does not start it again: disable, then enable.
async fn set_upstream(proxy: &Proxy, api: &str, upstream: &str) {
    let http = reqwest::Client::new();
    let url = format!("{api}/proxies/{}", proxy.name);
    for body in [
        serde_json::json!({"upstream": upstream, "enabled": false}),
        serde_json::json!({"enabled": true}),
    ] {
        let r = http.post(&url).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
}

/// The operator's peak resident memory (VmHWM), in MB.
fn peak_rss_mb(op: &Operator) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", op.server.pid()?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// When a fault was removed: by the test's clock and by the wall clock.
#[derive(Clone, Copy)]
struct Healed {
    at: Instant,
    wall: Timestamp,
}

impl Healed {
    fn now() -> Self {
        Self {
            at: Instant::now(),
            wall: Timestamp::now(),
        }
    }
}

struct Harness {
    slos: Api<ServiceLevelObjective>,
    replicas: Replicas,
    healthz: String,
    http: reqwest::Client,
    /// Alternates the scale-down period between 5 s and 6 s: a spec change
    /// (a new generation) for the status to catch up with.
    flip: bool,
    /// What went wrong, per fault (reported together at the end).
    failures: Vec<String>,
    /// (fault, recovery) for the summary.
    recoveries: Vec<(String, Option<Duration>)>,
}

impl Harness {
    async fn healthy(&self) -> bool {
        governor_tests::process::http_ok(&self.http, &self.healthz).await
    }

    /// Changes the spec (admin client, straight to the API server); returns
    /// the new generation. Retried while the API server cannot write.
    async fn bump(&mut self) -> i64 {
        self.flip = !self.flip;
        let period = if self.flip { "6s" } else { "5s" };
        let patch = serde_json::json!({"spec": {"scaling": {"scaleDown": {"period": period}}}});
        wait_until(
            "a spec change to be accepted",
            Duration::from_secs(30),
            || {
                let slos = self.slos.clone();
                let patch = patch.clone();
                async move {
                    let done = tokio::time::timeout(
                        Duration::from_secs(3),
                        slos.patch(NAME, &PatchParams::default(), &Patch::Merge(&patch)),
                    )
                    .await;
                    done.ok()?.ok()?.metadata.generation
                }
            },
        )
        .await
        .unwrap()
    }

    /// Checks the operator while a fault is in place for `HOLD`.
    async fn hold(&mut self, op: &mut Operator, fault: &str) {
        let end = Instant::now() + HOLD;
        while Instant::now() < end {
            if let Err(e) = op.server.check_alive() {
                panic!("{fault}: the operator died under the fault: {e}");
            }
            if !self.healthy().await {
                self.failures
                    .push(format!("{fault}: /healthz did not answer during the fault"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits for the status to catch up after the fault was removed at
    /// `healed`, then checks replicas, liveness and log.
    async fn recover(
        &mut self,
        op: &mut Operator,
        fault: &str,
        before: i32,
        healed: Healed,
        generation: Option<i64>,
        metrics: bool,
    ) {
        let Healed {
            at: healed,
            wall: since,
        } = healed;
        let slos = self.slos.clone();
        let caught_up = wait_until(
            &format!("{fault}: the status to catch up"),
            RECOVERY,
            || {
                let slos = slos.clone();
                async move {
                    let slo = tokio::time::timeout(Duration::from_secs(2), slos.get(NAME))
                        .await
                        .ok()?
                        .ok()?;
                    let status = slo.status?;
                    let generation_ok =
                        generation.is_none_or(|g| status.observed_generation >= Some(g));
                    let fresh = status.observed.as_ref().is_some_and(|o| o.time.0 > since);
                    let metrics_ok = !metrics
                        || status
                            .conditions
                            .iter()
                            .any(|c| c.type_ == "MetricsAvailable" && c.status == "True")
                            && fresh;
                    (generation_ok && metrics_ok).then_some(())
                }
            },
        )
        .await;
        let took = healed.elapsed();
        match caught_up {
            Ok(()) => {
                println!(
                    "fault {fault}: recovered {:.1} s after it was removed",
                    took.as_secs_f64()
                );
                self.recoveries.push((fault.into(), Some(took)));
            }
            Err(e) => {
                let status = self.slos.get(NAME).await.ok().and_then(|s| s.status);
                self.failures.push(format!(
                    "{fault}: NOT RECOVERED: {e}; status: {status:?}\noperator log:\n{}",
                    op.server.log_tail(30)
                ));
                self.recoveries.push((fault.into(), None));
            }
        }
        if let Err(e) = op.server.check_alive() {
            panic!("{fault}: the operator died after the fault: {e}");
        }
        if !self.healthy().await {
            self.failures
                .push(format!("{fault}: /healthz does not answer after the fault"));
        }
        let lowest = self.replicas.lowest();
        if lowest < before {
            self.failures.push(format!(
                "{fault}: WRONG SCALE-DOWN: svc-0 went from {before} to {lowest} replicas \
                 under a steady load"
            ));
        }
        println!(
            "fault {fault}: replicas {before} before, lowest {lowest}, now {}",
            self.replicas.last()
        );
        let log = op.server.log_tail(usize::MAX);
        if log.contains("panicked") {
            let lines: Vec<&str> = log.lines().filter(|l| l.contains("panicked")).collect();
            self.failures
                .push(format!("{fault}: PANIC in the operator's log: {lines:?}"));
        }
    }
}

#[tokio::test]
async fn the_operator_survives_faults_of_the_api_server_etcd_and_prometheus() {
    // Restarts etcd under the API server: no other server test alongside.
    let _alone = gate::alone().await;
    let started = Instant::now();
    let common::operator::Cluster {
        mut cp,
        ns,
        kubeconfig,
        dir,
    } = common::operator::cluster("fault").await;

    let params = PatchParams::apply("governor-tests");
    let deployments: Api<Deployment> = Api::namespaced(cp.client.clone(), &ns.name);
    let slos: Api<ServiceLevelObjective> = Api::namespaced(cp.client.clone(), &ns.name);
    deployments
        .patch(NAME, &params, &Patch::Apply(deployment(NAME, 2)))
        .await
        .unwrap();
    slos.patch(NAME, &params, &Patch::Apply(slo()))
        .await
        .unwrap();

    // flash-crowd from 700 s: a steady 500 rps for the next 800 s.
    let (_sim, sim) = common::start_sim(&[
        "--scenario",
        "flash-crowd",
        "--services",
        "1",
        "--start",
        "700",
        "--speed",
        "1",
    ])
    .await;
    let prom = Prometheus::start(std::slice::from_ref(&sim)).await.unwrap();

    let http_faults = HttpFaults::start(cp.url.trim_start_matches("https://"))
        .await
        .unwrap();
    let toxiproxy = Toxiproxy::start().await.unwrap();
    let api_proxy = toxiproxy
        .proxy("apiserver", &http_faults.listen)
        .await
        .unwrap();
    let prom_proxy = toxiproxy
        .proxy("prometheus", prom.url.trim_start_matches("http://"))
        .await
        .unwrap();
    // The kubeconfig as the operator's ServiceAccount, through the proxy.
    let proxied = dir.path().join("kubeconfig-proxied");
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(text.contains(&cp.url));
    std::fs::write(
        &proxied,
        text.replace(&cp.url, &format!("https://{}", api_proxy.listen)),
    )
    .unwrap();

    let replicas = Replicas::default();
    let stop = Arc::new(AtomicBool::new(false));
    let bridge = spawn_bridge(
        cp.client.clone(),
        ns.name.clone(),
        sim.clone(),
        replicas.clone(),
        stop.clone(),
    );
    let mut op = start_operator(
        "a",
        &proxied,
        &ns.name,
        &format!("http://{}", prom_proxy.listen),
        &[],
    );
    let mut h = Harness {
        slos: slos.clone(),
        replicas: replicas.clone(),
        healthz: op.metrics.replace("/metrics", "/healthz"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap(),
        flip: false,
        failures: Vec::new(),
        recoveries: Vec::new(),
    };

    // Ready: metrics read, svc-0 scaled for the load (minReplicas 1: free to
    // go down) and steady for 12 s.
    wait_until("MetricsAvailable=True", Duration::from_secs(60), || async {
        let slo = slos.get(NAME).await.ok()?;
        slo.status?
            .conditions
            .iter()
            .any(|c| c.type_ == "MetricsAvailable" && c.status == "True")
            .then_some(())
    })
    .await
    .unwrap();
    let settling = Instant::now();
    loop {
        replicas.reset();
        let at = replicas.last();
        tokio::time::sleep(Duration::from_secs(12)).await;
        if replicas.lowest() == at && replicas.last() == at {
            break;
        }
        assert!(
            settling.elapsed() < Duration::from_secs(90),
            "svc-0 never settled: {} replicas now",
            replicas.last()
        );
    }
    println!(
        "settled at {} replicas, {:.0} s in",
        replicas.last(),
        started.elapsed().as_secs_f64()
    );

    // 1. API server: every connection reset, both ways.
    let fault = "apiserver reset_peer";
    let before = replicas.last();
    replicas.reset();
    api_proxy
        .add(&Toxic::reset_peer("reset-down", Duration::ZERO))
        .await
        .unwrap();
    api_proxy
        .add(&Toxic::reset_peer("reset-up", Duration::ZERO).stream(Stream::Upstream))
        .await
        .unwrap();
    let generation = h.bump().await;
    h.hold(&mut op, fault).await;
    api_proxy.remove("reset-down").await.unwrap();
    api_proxy.remove("reset-up").await.unwrap();
    let healed = Healed::now();
    h.recover(&mut op, fault, before, healed, Some(generation), false)
        .await;

    // 2. API server refusing connections (the proxy disabled: open ones closed).
    let fault = "apiserver down (connection refused)";
    let before = replicas.last();
    replicas.reset();
    api_proxy.set_enabled(false).await.unwrap();
    let generation = h.bump().await;
    h.hold(&mut op, fault).await;
    api_proxy.set_enabled(true).await.unwrap();
    let healed = Healed::now();
    h.recover(&mut op, fault, before, healed, Some(generation), false)
        .await;

    // 3. to 5. The API server answering every request with 429, 500, then
    // 503. HAProxy's counters show the operator met each (more answers of the
    // class than the harness's own check).
    for code in haproxy::STATUSES {
        let fault = format!("apiserver answers {code}");
        let class = (code / 100) as u8;
        let before = replicas.last();
        replicas.reset();
        let sent = http_faults.answered(class).await.unwrap();
        http_faults.answer(Some(code)).await.unwrap();
        let generation = h.bump().await;
        h.hold(&mut op, &fault).await;
        http_faults.answer(None).await.unwrap();
        let healed = Healed::now();
        let met = http_faults.answered(class).await.unwrap() - sent;
        println!("fault {fault}: {met} answers of {code} sent, the harness's check included");
        if met < 2 {
            h.failures.push(format!(
                "{fault}: the operator made no request while the API server answered {code}"
            ));
        }
        h.recover(&mut op, &fault, before, healed, Some(generation), false)
            .await;
    }

    // 6. etcd killed under the API server and started again (same data): the
    // API server answers 5xx and timeouts meanwhile.
    let fault = "etcd restart";
    let before = replicas.last();
    replicas.reset();
    cp.stop_etcd();
    h.hold(&mut op, fault).await;
    cp.start_etcd().await.unwrap();
    let healed = Healed::now();
    let generation = h.bump().await;
    println!(
        "etcd back; the admin's spec change went through {:.1} s later",
        healed.at.elapsed().as_secs_f64()
    );
    h.recover(&mut op, fault, before, healed, Some(generation), false)
        .await;

    // 7. Prometheus 10 s slow (the operator's query timeout is 2 s).
    let fault = "prometheus latency 10s";
    let before = replicas.last();
    replicas.reset();
    prom_proxy
        .add(&Toxic::latency(
            "slow",
            Duration::from_secs(10),
            Duration::ZERO,
        ))
        .await
        .unwrap();
    let generation = h.bump().await;
    h.hold(&mut op, fault).await;
    prom_proxy.remove("slow").await.unwrap();
    let healed = Healed::now();
    h.recover(&mut op, fault, before, healed, Some(generation), true)
        .await;

    // 8. and 9. Prometheus answering garbage, then 200 MB: the proxy's
    // upstream switched to a loopback server that does so.
    let mode = Arc::new(AtomicU8::new(0));
    let bad = start_bad_prometheus(mode.clone()).await;
    let prom_upstream = prom.url.trim_start_matches("http://").to_string();
    for (fault, m) in [("prometheus garbage", 0), ("prometheus 200 MB answer", 1)] {
        mode.store(m, Ordering::SeqCst);
        let before = replicas.last();
        replicas.reset();
        set_upstream(&prom_proxy, &toxiproxy.api, &bad).await;
        let generation = h.bump().await;
        h.hold(&mut op, fault).await;
        set_upstream(&prom_proxy, &toxiproxy.api, &prom_upstream).await;
        let healed = Healed::now();
        h.recover(&mut op, fault, before, healed, Some(generation), true)
            .await;
        let peak = peak_rss_mb(&op).unwrap_or(f64::NAN);
        println!("fault {fault}: operator peak RSS {peak:.0} MB");
        // The chart's memory limit for the operator is 256Mi: above it, the
        // pod is OOM-killed.
        if peak > CHART_MEMORY_LIMIT_MB {
            h.failures.push(format!(
                "{fault}: MEMORY: the operator's peak RSS reached {peak:.0} MB, above the \
                 chart's {CHART_MEMORY_LIMIT_MB:.0} MB limit (a pod would be OOM-killed): \
                 Prometheus answers are read whole, with no cap on their size"
            ));
        }
    }

    // 10. Last (it may leave requests stuck): the API server hangs, connections
    // held open and their data dropped both ways, until the toxics go.
    let fault = "apiserver hang";
    let before = replicas.last();
    replicas.reset();
    api_proxy
        .add(&Toxic::timeout("hang-down", Duration::ZERO))
        .await
        .unwrap();
    api_proxy
        .add(&Toxic::timeout("hang-up", Duration::ZERO).stream(Stream::Upstream))
        .await
        .unwrap();
    let generation = h.bump().await;
    h.hold(&mut op, fault).await;
    api_proxy.remove("hang-down").await.unwrap();
    api_proxy.remove("hang-up").await.unwrap();
    let healed = Healed::now();
    h.recover(&mut op, fault, before, healed, Some(generation), false)
        .await;

    stop.store(true, Ordering::SeqCst);
    bridge.await.unwrap();
    println!("recovery times (fault removed to the status caught up):");
    for (fault, took) in &h.recoveries {
        match took {
            Some(t) => println!("  {fault}: {:.1} s", t.as_secs_f64()),
            None => println!("  {fault}: not within {RECOVERY:?}"),
        }
    }
    println!("whole test: {:.0} s", started.elapsed().as_secs_f64());
    assert!(
        h.failures.is_empty(),
        "the operator misbehaved under faults:\n{}",
        h.failures.join("\n\n")
    );
}
