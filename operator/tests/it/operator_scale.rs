//! The operator with 1,000 SLOs on a real API server, against a real
//! Prometheus scraping 200 simulated services: every SLO is reconciled, and
//! the operator's resident memory is measured against its own idle baseline in
//! the same run (printed; a benchmark, not an assertion).
//!
//! `cargo test -p governor --test it operator_scale:: -- --nocapture`

use std::time::{Duration, Instant};

use futures::StreamExt;
use governor_crds::ServiceLevelObjective;
use governor_tests::{Prometheus, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};

use crate::common;
use crate::common::gate;
use crate::common::operator::{deployment, start_operator};

const SLOS: usize = 1000;
const SERVICES: usize = 200;

/// Resident and peak resident memory of `pid`, in MiB, from /proc.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
            .unwrap_or(f64::NAN)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test]
async fn a_thousand_slos_are_reconciled_and_memory_is_measured() {
    // A benchmark of time and memory: it had a binary to itself before.
    let _alone = gate::alone().await;
    let common::operator::Cluster {
        cp,
        ns,
        kubeconfig,
        dir: _dir,
    } = common::operator::cluster("scale").await;

    let services = SERVICES.to_string();
    let (_sim, sim) = common::start_sim(&["--scenario", "diurnal", "--services", &services]).await;
    let prom = Prometheus::start(std::slice::from_ref(&sim)).await.unwrap();
    let operator = start_operator("a", &kubeconfig, &ns.name, &prom.url, &[]);
    let pid = operator.server.pid().unwrap();
    wait_until("the operator to lead", Duration::from_secs(30), || async {
        common::operator::leading(&operator).await?.then_some(())
    })
    .await
    .unwrap();
    // Idle baseline: leading, watching, nothing to reconcile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (idle, _) = memory_mib(pid);

    let params = PatchParams::apply("governor-tests");
    let deployments: Api<Deployment> = Api::namespaced(cp.client.clone(), &ns.name);
    let slos: Api<ServiceLevelObjective> = Api::namespaced(cp.client.clone(), &ns.name);
    let created = Instant::now();
    futures::stream::iter(0..SLOS)
        .map(|i| {
            let (deployments, slos, params) = (&deployments, &slos, &params);
            async move {
                let name = format!("app-{i}");
                deployments
                    .patch(&name, params, &Patch::Apply(deployment(&name, 2)))
                    .await
                    .unwrap();
                let slo = serde_json::json!({
                    "apiVersion": "governor.dev/v1alpha1",
                    "kind": "ServiceLevelObjective",
                    "metadata": {"name": name},
                    "spec": {
                        "service": format!("svc-{}", i % SERVICES),
                        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                        "objectives": {"latency": {"p90": "200ms", "p99": "400ms"}, "window": "1d", "evaluationInterval": "15s"},
                        "scaling": {"minReplicas": 1, "maxReplicas": 10},
                        "alerting": {"enabled": false}
                    }
                });
                slos.patch(&name, params, &Patch::Apply(slo)).await.unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    println!(
        "created {SLOS} Deployments and SLOs in {:.1} s",
        created.elapsed().as_secs_f64()
    );

    // Every SLO reconciled with data: status with an observation.
    let done = wait_until(
        "every SLO to be reconciled",
        Duration::from_secs(180),
        || async {
            let list = slos.list(&ListParams::default()).await.ok()?;
            let observed = list
                .items
                .iter()
                .filter(|s| s.status.as_ref().is_some_and(|st| st.observed.is_some()))
                .count();
            (observed == SLOS).then_some(())
        },
    )
    .await;
    if let Err(e) = done {
        let list = slos.list(&ListParams::default()).await.unwrap();
        let without: Vec<_> = list
            .items
            .iter()
            .filter(|s| s.status.as_ref().is_none_or(|st| st.observed.is_none()))
            .take(3)
            .map(|s| (s.metadata.name.clone(), s.status.clone()))
            .collect();
        panic!("{e}; for example: {without:#?}");
    }
    let all_in = created.elapsed();
    // Two more evaluation intervals of steady operation.
    let mut samples = Vec::new();
    let steady = Instant::now();
    while steady.elapsed() < Duration::from_secs(30) {
        samples.push(memory_mib(pid).0);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (rss, peak) = memory_mib(pid);
    let highest = samples.iter().copied().fold(rss, f64::max);
    let metrics = reqwest::get(&operator.metrics)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let (sum, count) = (
        value("governor_reconcile_duration_seconds_sum"),
        value("governor_reconcile_duration_seconds_count"),
    );
    println!(
        "operator memory: {idle:.1} MiB idle; with {SLOS} SLOs {rss:.1} MiB resident \
         (highest sample {highest:.1}, peak {peak:.1}; {:.2}x idle; target < 100 MiB)",
        highest / idle
    );
    println!(
        "all {SLOS} SLOs reconciled {:.1} s after creation began; {count:.0} passes, mean {:.1} ms",
        all_in.as_secs_f64(),
        sum / count * 1e3
    );
    assert!(rss.is_finite() && idle.is_finite(), "no memory figures");
}
