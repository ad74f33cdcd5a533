//! The operator end to end, second part: a missing target, an HPA driven
//! through its minReplicas, a Prometheus outage and return, the operator's own
//! traces in a real Jaeger, and the time from a breach visible in Prometheus to
//! the scale request. Real kube-apiserver + etcd, real Prometheus scraping the
//! simulator, `governor operator` as the chart's ServiceAccount.
//!
//! The simulator runs flash-crowd at 6x from 480 s in: 100 rps for 20 s of wall
//! clock, then a step to 500 rps on svc-0 (250 on svc-1) that lasts until about
//! 170 s.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use governor::observe::queries::{QueryPlan, Signal};
use governor_crds::ServiceLevelObjective;
use governor_tests::{Jaeger, Prometheus, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};

use crate::common;
use crate::common::gate;
use crate::common::operator::{deployment, start_operator};

const SPEED: f64 = 6.0;
/// Simulated seconds (from the simulator's start) when the load starts to step up.
const STEP: f64 = 120.0;
/// ... and when it falls back.
const FALL: f64 = 1020.0;
const TARGET_P99: f64 = 0.1;

fn slo(name: &str, p99: &str, edit: impl Fn(&mut serde_json::Value)) -> serde_json::Value {
    let mut v = serde_json::json!({
        "apiVersion": "governor.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "metadata": {"name": name},
        "spec": {
            "service": name,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "objectives": {"latency": {"p99": p99}, "window": "1d", "evaluationInterval": "2s"},
            "scaling": {
                "minReplicas": 2, "maxReplicas": 20,
                "scaleUp": {"maxPods": 4, "maxPercent": 100, "period": "3s"},
                "scaleDown": {"maxPods": 2, "maxPercent": 50, "period": "5s", "stabilizationWindow": "20s"},
                "podStartupTime": "2s"
            },
            "alerting": {"enabled": false}
        }
    });
    edit(&mut v);
    v
}

/// Simulated seconds since the simulator started.
async fn sim_time(sim: &str) -> f64 {
    common::truth(sim, 5).await[0]["sim_time"].as_f64().unwrap()
}

async fn replicas(api: &Api<Deployment>, name: &str) -> i32 {
    api.get(name).await.unwrap().spec.replicas.unwrap_or(0)
}

fn condition(slo: &ServiceLevelObjective, kind: &str) -> Option<(String, String, String)> {
    slo.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn wait_condition(
    slos: &Api<ServiceLevelObjective>,
    name: &str,
    kind: &str,
    status: &str,
    timeout: Duration,
) -> (String, String, String) {
    wait_until(&format!("{name}: {kind}={status}"), timeout, || async {
        let slo = slos.get(name).await.ok()?;
        condition(&slo, kind).filter(|c| c.0 == status)
    })
    .await
    .unwrap()
}

async fn event_reasons(client: &Client, namespace: &str, name: &str) -> HashSet<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}

/// Plays the kubelet for svc-0 and the HPA controller for svc-1 (it keeps the
/// Deployment at or above the HPA's minReplicas, as the real one would).
fn spawn_bridge(
    client: Client,
    namespace: String,
    sim: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &namespace);
        let hpa_controller = PatchParams {
            field_manager: Some("horizontal-pod-autoscaler".into()),
            ..PatchParams::default()
        };
        let http = reqwest::Client::new();
        while !stop.load(Ordering::SeqCst) {
            let get = |name: &'static str| {
                let d = deployments.clone();
                async move { d.get(name).await.ok().and_then(|d| d.spec.replicas) }
            };
            let mut svc1 = get("svc-1").await;
            if let (Some(r), Ok(hpa)) = (svc1, hpas.get("svc-1").await)
                && let Some(min) = hpa.spec.min_replicas
                && r < min
            {
                let scaled = deployments
                    .patch_scale(
                        "svc-1",
                        &hpa_controller,
                        &Patch::Merge(serde_json::json!({"spec": {"replicas": min}})),
                    )
                    .await;
                if scaled.is_ok() {
                    svc1 = Some(min);
                }
            }
            for (service, replicas) in [("svc-0", get("svc-0").await), ("svc-1", svc1)] {
                let _ = http
                    .post(format!("http://{sim}/control"))
                    .json(&serde_json::json!({"service": service, "replicas": replicas}))
                    .send()
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// svc-0's P99 as the operator reads it (the same planned query), if any.
async fn p99(prom: &Prometheus, spec: &governor_crds::ServiceLevelObjectiveSpec) -> Option<f64> {
    let plan = QueryPlan::build(&[spec], "10s");
    let q = plan
        .queries
        .iter()
        .find(|q| q.signal == Signal::Latency(governor_crds::Quantile::P99))?;
    let result = prom.query(&q.promql).await.ok()?;
    result
        .iter()
        .find(|s| s["metric"]["service"] == "svc-0")
        .and_then(|s| s["value"][1].as_str()?.parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

/// Replicas over `span`, polled every 200 ms: (lowest, highest, last).
async fn watch_replicas(api: &Api<Deployment>, span: Duration) -> (i32, i32, i32) {
    let end = Instant::now() + span;
    let (mut lo, mut hi, mut last) = (i32::MAX, 0, 0);
    while Instant::now() < end {
        last = replicas(api, "svc-0").await;
        lo = lo.min(last);
        hi = hi.max(last);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (lo, hi, last)
}

#[tokio::test]
async fn the_operator_holds_through_an_outage_drives_hpas_and_traces_itself() {
    // Times breach to scale (quoted in the README): no other servers alongside.
    let _alone = gate::alone().await;
    let common::operator::Cluster {
        cp,
        ns,
        kubeconfig,
        dir: _dir,
    } = common::operator::cluster("res").await;

    let params = PatchParams::apply("governor-tests");
    let deployments: Api<Deployment> = Api::namespaced(cp.client.clone(), &ns.name);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(cp.client.clone(), &ns.name);
    let slos: Api<ServiceLevelObjective> = Api::namespaced(cp.client.clone(), &ns.name);
    for name in ["svc-0", "svc-1"] {
        deployments
            .patch(name, &params, &Patch::Apply(deployment(name, 2)))
            .await
            .unwrap();
    }
    let hpa = serde_json::json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "svc-1"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "svc-1"},
            "minReplicas": 2, "maxReplicas": 3,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]
        }
    });
    hpas.patch("svc-1", &params, &Patch::Apply(hpa))
        .await
        .unwrap();
    let svc0 = slo("svc-0", "100ms", |_| {});
    // svc-1 takes half of svc-0's load; after the step it needs more than
    // the HPA's maxReplicas allow.
    let svc1 = slo("svc-1", "100ms", |v| {
        v["spec"]["scaling"]["driveHpa"] = true.into();
    });
    let ghost = slo("ghost", "100ms", |_| {});
    for v in [&svc0, &svc1, &ghost] {
        slos.patch(
            v["metadata"]["name"].as_str().unwrap(),
            &params,
            &Patch::Apply(v),
        )
        .await
        .unwrap();
    }
    let svc0_spec: governor_crds::ServiceLevelObjectiveSpec =
        serde_json::from_value(svc0["spec"].clone()).unwrap();

    let jaeger = Jaeger::start().await.unwrap();
    let (_sim, sim) = common::start_sim(&[
        "--scenario",
        "flash-crowd",
        "--services",
        "2",
        "--start",
        "480",
        "--speed",
        "6",
    ])
    .await;
    let mut prom = Prometheus::start(std::slice::from_ref(&sim)).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let bridge = spawn_bridge(
        cp.client.clone(),
        ns.name.clone(),
        sim.clone(),
        stop.clone(),
    );
    let _operator = start_operator(
        "a",
        &kubeconfig,
        &ns.name,
        &prom.url,
        &["--otlp-endpoint", &jaeger.otlp_http_url],
    );

    // A missing target is a condition and one Event, not a crash.
    let (_, reason, message) = wait_condition(
        &slos,
        "ghost",
        "TargetFound",
        "False",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(reason, "TargetMissing");
    assert!(message.contains("ghost"), "{message}");
    let ready = condition(&slos.get("ghost").await.unwrap(), "Ready").unwrap();
    assert_eq!(
        (ready.0.as_str(), ready.1.as_str()),
        ("False", "TargetMissing")
    );
    assert!(
        event_reasons(&cp.client, &ns.name, "ghost")
            .await
            .contains("TargetMissing")
    );
    let (_, reason, _) = wait_condition(
        &slos,
        "svc-0",
        "TargetFound",
        "True",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(reason, "ScaleSubresource");

    // Breach to scale request. The load step starts at STEP; the breach is
    // visible when the operator's own P99 query first answers above target.
    let now = sim_time(&sim).await;
    assert!(
        now < STEP,
        "the load stepped up before the operator was ready ({now:.0} s)"
    );
    wait_until("the load step", Duration::from_secs(60), || async {
        (sim_time(&sim).await >= STEP).then_some(())
    })
    .await
    .unwrap();
    let at_step = replicas(&deployments, "svc-0").await;
    let started = Instant::now();
    let (mut visible, mut scaled, mut query_time) = (None, None, Duration::ZERO);
    while started.elapsed() < Duration::from_secs(90) && (visible.is_none() || scaled.is_none()) {
        if visible.is_none() {
            let asked = Instant::now();
            if p99(&prom, &svc0_spec).await.is_some_and(|v| v > TARGET_P99) {
                visible = Some(Instant::now());
                query_time = asked.elapsed();
            }
        }
        if scaled.is_none() && replicas(&deployments, "svc-0").await > at_step {
            scaled = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (visible, scaled) = (
        visible.expect("the breach never showed in Prometheus"),
        scaled.expect("svc-0 was never scaled after the load step"),
    );
    let lead = if scaled >= visible {
        format!("{:.1} s after", (scaled - visible).as_secs_f64())
    } else {
        format!("{:.1} s before", (visible - scaled).as_secs_f64())
    };
    println!(
        "breach to scale: the scale request came {lead} the breach was visible in Prometheus \
         (target: at most the 2 s evaluation interval plus query time; P99 query {:.0} ms)",
        query_time.as_secs_f64() * 1e3
    );

    // The HPA is driven through its minReplicas; the Deployment's scale is
    // never written by Governor.
    let (_, reason, _) = wait_condition(
        &slos,
        "svc-1",
        "TargetFound",
        "True",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(reason, "DrivingHpa");
    let rising = wait_until(
        "the HPA's minReplicas to rise",
        Duration::from_secs(60),
        || async {
            let min = hpas.get("svc-1").await.ok()?.spec.min_replicas?;
            (min > 2).then_some(min)
        },
    )
    .await;
    let min = match rising {
        Ok(min) => min,
        Err(e) => {
            let status = slos.get("svc-1").await.ok().and_then(|s| s.status);
            panic!("{e}; svc-1 status: {status:#?}");
        }
    };
    wait_until(
        "the HPA's maxReplicas to cap it",
        Duration::from_secs(60),
        || async {
            let reasons = event_reasons(&cp.client, &ns.name, "svc-1").await;
            reasons.contains("HpaMaxReplicas").then_some(())
        },
    )
    .await
    .unwrap();
    let hpa_now = hpas.get("svc-1").await.unwrap();
    assert!(
        hpa_now.spec.min_replicas.unwrap() <= 3,
        "minReplicas above maxReplicas"
    );
    let managers: Vec<String> = deployments
        .get("svc-1")
        .await
        .unwrap()
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| f.manager)
        .collect();
    assert!(
        !managers.iter().any(|m| m == "governor"),
        "Governor wrote the Deployment it should leave to the HPA: {managers:?}"
    );
    println!("HPA svc-1 minReplicas driven from 2 to {min}, capped at its maxReplicas 3");

    // Settle: svc-0 steady under the stepped load for longer than its
    // stabilization window (20 s).
    let settling = Instant::now();
    let steady = loop {
        let (lo, hi, last) = watch_replicas(&deployments, Duration::from_secs(12)).await;
        if lo == hi {
            break last;
        }
        assert!(
            settling.elapsed() < Duration::from_secs(70),
            "svc-0 never settled: {lo}..{hi} replicas within 12 s"
        );
    };

    // Prometheus killed: MetricsAvailable=False, replicas hold.
    prom.stop();
    let killed = Instant::now();
    let (_, reason, message) = wait_condition(
        &slos,
        "svc-0",
        "MetricsAvailable",
        "False",
        Duration::from_secs(30),
    )
    .await;
    println!(
        "MetricsAvailable=False {:.1} s after Prometheus stopped ({reason}: {message})",
        killed.elapsed().as_secs_f64()
    );
    let held = replicas(&deployments, "svc-0").await;
    // Longer than the stabilization window: stale recommendations age out.
    let during = watch_replicas(&deployments, Duration::from_secs(25)).await;
    assert_eq!(
        (during.0, during.1),
        (held, held),
        "replicas moved while the metrics were unavailable"
    );
    assert!(
        event_reasons(&cp.client, &ns.name, "svc-0")
            .await
            .contains("MetricsUnavailable")
    );

    // Prometheus back (same port, same data): normal operation, no scale-down burst.
    prom.restart().await.unwrap();
    let back = Instant::now();
    // Rates over a window that spans the gap read low: the operator waits a
    // whole window (10 s) of fresh data, and says so.
    let mut waited_for_window = false;
    loop {
        let slo = slos.get("svc-0").await.unwrap();
        match condition(&slo, "MetricsAvailable") {
            Some((status, _, _)) if status == "True" => break,
            Some((_, _, message)) => {
                waited_for_window |= message.contains("do not cover the gap yet");
            }
            None => {}
        }
        assert!(
            back.elapsed() < Duration::from_secs(60),
            "metrics never available again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        waited_for_window,
        "no pass waited for rates that cover the gap"
    );
    println!(
        "MetricsAvailable=True {:.1} s after Prometheus came back",
        back.elapsed().as_secs_f64()
    );
    // Inside the 20 s stabilization window that the held passes renewed: any
    // removal here would come from the outage, not from a window of fresh data.
    let watch_for = Duration::from_secs(15);
    let remaining = (FALL - sim_time(&sim).await) / SPEED;
    assert!(
        remaining > watch_for.as_secs_f64(),
        "the load falls in {remaining:.0} s: too soon to tell a burst from the load"
    );
    let after = watch_replicas(&deployments, watch_for).await;
    println!(
        "replicas: {steady} steady before the outage, {held} held through it, {}..{} in the {} s after",
        after.0,
        after.1,
        watch_for.as_secs()
    );
    let status = slos.get("svc-0").await.unwrap().status.unwrap();
    for d in status.decisions.iter().rev().take(3).rev() {
        println!(
            "  svc-0 decision {:?} {} -> {}: {}",
            d.knob, d.from, d.to, d.reason
        );
    }
    assert!(
        after.0 >= held,
        "replicas fell to {} right after Prometheus returned (held {held})",
        after.0
    );

    // A new target is found (the Deployment watch triggers the pass).
    deployments
        .patch("ghost", &params, &Patch::Apply(deployment("ghost", 2)))
        .await
        .unwrap();
    wait_condition(
        &slos,
        "ghost",
        "TargetFound",
        "True",
        Duration::from_secs(20),
    )
    .await;

    // The operator's spans are in Jaeger: a reconcile of svc-0 with its steps,
    // and an actuation span under a reconcile.
    let http = reqwest::Client::new();
    let traces = |operation: &'static str, tags: Option<&'static str>| {
        let http = http.clone();
        let url = format!("{}/api/traces", jaeger.query_url);
        async move {
            let mut query = vec![
                ("service", "governor-operator"),
                ("operation", operation),
                ("limit", "200"),
                ("lookback", "1h"),
            ];
            if let Some(t) = tags {
                query.push(("tags", t));
            }
            let v: serde_json::Value = http
                .get(&url)
                .query(&query)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            v["data"].as_array().cloned()
        }
    };
    let names = |trace: &serde_json::Value| -> HashSet<String> {
        trace["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["operationName"].as_str().map(String::from))
            .collect()
    };
    let reconcile = wait_until(
        "reconcile spans in Jaeger",
        Duration::from_secs(30),
        || async {
            traces("reconcile", Some(r#"{"slo":"svc-0"}"#))
                .await?
                .into_iter()
                .find(|t| {
                    let n = names(t);
                    ["reconcile", "read_target", "decide", "write_status"]
                        .iter()
                        .all(|x| n.contains(*x))
                })
        },
    )
    .await
    .unwrap();
    let spans = reconcile["spans"].as_array().unwrap().len();
    let acted = wait_until(
        "an actuation span in Jaeger",
        Duration::from_secs(30),
        || async {
            traces("act", Some(r#"{"knob":"replicas"}"#))
                .await?
                .into_iter()
                .find(|t| names(t).contains("reconcile"))
        },
    )
    .await
    .unwrap();
    println!(
        "Jaeger: a reconcile trace of svc-0 with {spans} spans; an actuation trace with {:?}",
        names(&acted)
    );

    stop.store(true, Ordering::SeqCst);
    let _ = bridge.await;
}

/// Without the CRD the operator keeps running and says what is wrong: in its
/// log, and as a watch error in its metrics.
#[tokio::test]
async fn a_missing_crd_is_reported_not_a_crash() {
    let _slot = gate::heavy().await;
    let common::operator::Cluster {
        cp: _cp,
        ns,
        kubeconfig,
        dir: _dir,
    } = common::operator::cluster_with("nocrd", false).await;
    let mut operator = start_operator("a", &kubeconfig, &ns.name, "http://127.0.0.1:9", &[]);
    let metrics = operator.metrics.clone();
    wait_until(
        "a watch error in the metrics",
        Duration::from_secs(60),
        || async {
            let text = reqwest::get(&metrics).await.ok()?.text().await.ok()?;
            text.lines()
                .any(|l| {
                    l.starts_with("governor_reconcile_errors_total{")
                        && l.contains("category=\"watch\"")
                        && !l.ends_with(" 0")
                })
                .then_some(())
        },
    )
    .await
    .unwrap();
    operator.server.check_alive().unwrap();
    let log = operator.server.log_tail(200);
    assert!(
        log.contains("is the ServiceLevelObjective CRD installed"),
        "{log}"
    );
}
