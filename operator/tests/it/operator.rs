//! The operator end to end: a real kube-apiserver + etcd, a real Prometheus
//! scraping the simulator, and two `governor operator` processes acting as the
//! chart's ServiceAccount with the chart's RBAC. A bridge in the test plays the
//! kubelet: it copies each Deployment's replicas and pool ConfigMap into the
//! simulated service, and runs a warm-up when a Job appears.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use governor_crds::ServiceLevelObjective;
use governor_tests::{Prometheus, repo_root, wait_until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};

use crate::common;
use crate::common::gate;
use crate::common::operator::{deployment, leading, start_operator};

fn slo(file: &str, edit: impl Fn(&mut serde_json::Value)) -> serde_json::Value {
    let text = std::fs::read_to_string(repo_root().join("examples").join(file)).unwrap();
    let mut v: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    v["metadata"].as_object_mut().unwrap().remove("namespace");
    // Time shortened for the test: evaluations every 3 s, scale-down after 20 s.
    v["spec"]["objectives"]["evaluationInterval"] = "3s".into();
    v["spec"]["scaling"]["scaleDown"] = serde_json::json!({"maxPods": 2, "maxPercent": 50, "period": "5s", "stabilizationWindow": "20s"});
    v["spec"]["scaling"]["podStartupTime"] = "2s".into();
    edit(&mut v);
    v
}

async fn replicas(api: &Api<Deployment>, name: &str) -> i32 {
    api.get(name).await.unwrap().spec.replicas.unwrap_or(0)
}

async fn pool(api: &Api<ConfigMap>, name: &str) -> Option<i64> {
    api.get(name)
        .await
        .ok()?
        .data?
        .get("pool_size")?
        .parse()
        .ok()
}

/// Plays the kubelet and the workload controllers for the simulated services.
fn spawn_bridge(
    client: Client,
    namespace: String,
    sim: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
        let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
        let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace);
        let http = reqwest::Client::new();
        let mut warmed: HashSet<String> = HashSet::new();
        while !stop.load(Ordering::SeqCst) {
            for service in ["roadtrip-api", "roadtrip-stories"] {
                let replicas = deployments
                    .get(service)
                    .await
                    .ok()
                    .and_then(|d| d.spec.replicas);
                let pool = pool(&config_maps, &format!("{service}-db")).await;
                let _ = http
                    .post(format!("http://{sim}/control"))
                    .json(&serde_json::json!({"service": service, "replicas": replicas, "pool_size": pool}))
                    .send()
                    .await;
            }
            if let Ok(list) = jobs.list(&ListParams::default()).await {
                for job in list.items {
                    let name = job.metadata.name.clone().unwrap_or_default();
                    let slo = job
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get("governor.dev/slo"))
                        .cloned();
                    if let Some(slo) = slo
                        && warmed.insert(name)
                    {
                        let _ = http
                            .post(format!("http://{sim}/control"))
                            .json(&serde_json::json!({"service": slo, "warm_up": true}))
                            .send()
                            .await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

#[tokio::test]
async fn the_operator_keeps_the_audit_inside_its_slo_on_a_real_cluster() {
    // The audit at 20x and a failover timed against the lease: it had a binary
    // to itself before, and keeps the servers to itself.
    let _alone = gate::alone().await;
    let common::operator::Cluster {
        cp,
        ns,
        kubeconfig,
        dir: _dir,
    } = common::operator::cluster("op").await;

    let params = PatchParams::apply("governor-tests");
    let deployments: Api<Deployment> = Api::namespaced(cp.client.clone(), &ns.name);
    let config_maps: Api<ConfigMap> = Api::namespaced(cp.client.clone(), &ns.name);
    for name in ["roadtrip-api", "roadtrip-stories"] {
        deployments
            .patch(name, &params, &Patch::Apply(deployment(name, 2)))
            .await
            .unwrap();
        // Opted in, and the key left to Governor: a value applied here would
        // belong to this test's field manager, and Governor never takes it.
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("{name}-db"), "annotations": {"governor.dev/managed": "true"}}});
        config_maps
            .patch(&format!("{name}-db"), &params, &Patch::Apply(cm))
            .await
            .unwrap();
    }
    // The warm-up CronJob of examples/api.yaml, as its README shows it.
    let cron = serde_json::json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "roadtrip-api-cache-warmer", "annotations": {"governor.dev/managed": "true"}},
        "spec": {"schedule": "@yearly", "suspend": true, "jobTemplate": {"spec": {"backoffLimit": 1,
            "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "warm", "image": "ghcr.io/roadtrip/cache-warmer:1.4.0"}]}}}}}});
    let cron_jobs: Api<CronJob> = Api::namespaced(cp.client.clone(), &ns.name);
    cron_jobs
        .patch("roadtrip-api-cache-warmer", &params, &Patch::Apply(cron))
        .await
        .unwrap();
    let slos: Api<ServiceLevelObjective> = Api::namespaced(cp.client.clone(), &ns.name);
    let api_slo = slo("api.yaml", |_| {});
    let stories_slo = slo("stories.yaml", |v| {
        v["spec"]["scaling"]["mode"] = "DryRun".into();
    });
    for v in [&api_slo, &stories_slo] {
        slos.patch(
            v["metadata"]["name"].as_str().unwrap(),
            &params,
            &Patch::Apply(v),
        )
        .await
        .unwrap();
    }

    // The audit's load at 20x: 142 rps rising to 500 within about a minute.
    let (_sim, sim_addr) = common::start_sim(&["--scenario", "audit", "--speed", "20"]).await;
    let prom = Prometheus::start(std::slice::from_ref(&sim_addr))
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let bridge = spawn_bridge(
        cp.client.clone(),
        ns.name.clone(),
        sim_addr.clone(),
        stop.clone(),
    );

    let mut a = start_operator("a", &kubeconfig, &ns.name, &prom.url, &[]);
    let mut b = start_operator("b", &kubeconfig, &ns.name, &prom.url, &[]);

    // Exactly one leader.
    let (leader_a, leader_b) = wait_until("a leader", Duration::from_secs(30), || async {
        let (x, y) = (leading(&a).await?, leading(&b).await?);
        (x || y).then_some((x, y))
    })
    .await
    .unwrap();
    assert!(
        leader_a != leader_b,
        "both or neither lead: a={leader_a} b={leader_b}"
    );

    // Load rises: replicas rise, the pool shrinks first, the budget always holds.
    let budget = 40; // examples/api.yaml: 100 x 0.8 - 40 reserved
    let started = Instant::now();
    let mut peak = 0;
    let mut first_write = None;
    while started.elapsed() < Duration::from_secs(150) {
        let r = replicas(&deployments, "roadtrip-api").await;
        let p = pool(&config_maps, "roadtrip-api-db").await.unwrap_or(50);
        if p != 50 {
            first_write.get_or_insert(started.elapsed());
            assert!(
                i64::from(r) * p <= budget,
                "{r} replicas x pool {p} over the budget {budget}"
            );
        }
        peak = peak.max(r);
        if peak >= 5 && first_write.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "replicas rose to {peak} in {:.0} s; pool first written after {:?}",
        started.elapsed().as_secs_f64(),
        first_write
    );
    assert!(peak >= 5, "replicas only reached {peak}");

    // One warm-up Job, never a second while it runs (no Job controller here, so it never finishes).
    let jobs: Api<Job> = Api::namespaced(cp.client.clone(), &ns.name);
    let warm = jobs
        .list(&ListParams::default().labels("governor.dev/slo=roadtrip-api"))
        .await
        .unwrap();
    assert_eq!(warm.items.len(), 1, "{} warm-up Jobs", warm.items.len());
    let owner = &warm.items[0].metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.kind, "ServiceLevelObjective");
    // Made from the CronJob's jobTemplate, as `kubectl create job --from` does.
    let made = warm.items[0].spec.as_ref().unwrap();
    assert_eq!(made.backoff_limit, Some(1));
    let containers = &made.template.spec.as_ref().unwrap().containers;
    assert_eq!(
        containers[0].image.as_deref(),
        Some("ghcr.io/roadtrip/cache-warmer:1.4.0")
    );

    // Status and Events.
    let api_now = slos.get("roadtrip-api").await.unwrap();
    let status = api_now.status.clone().unwrap();
    assert!(
        status
            .decisions
            .iter()
            .any(|d| d.knob == governor_crds::Knob::Replicas && !d.dry_run)
    );
    let generation = api_now.metadata.generation;
    for kind in ["MetricsAvailable", "ObjectiveMet", "Bottleneck", "Ready"] {
        let c = status
            .conditions
            .iter()
            .find(|c| c.type_ == kind)
            .unwrap_or_else(|| panic!("no {kind}"));
        assert_eq!(c.observed_generation, generation, "{kind}");
    }
    let events: Api<Event> = Api::namespaced(cp.client.clone(), &ns.name);
    let reasons = |list: &[Event], name: &str| -> HashSet<String> {
        list.iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .filter_map(|e| e.reason.clone())
            .collect()
    };
    let all = events.list(&ListParams::default()).await.unwrap().items;
    let api_reasons = reasons(&all, "roadtrip-api");
    assert!(
        api_reasons.contains("Scaled") && api_reasons.contains("PoolResized"),
        "{api_reasons:?}"
    );

    // DryRun: decided and reported, nothing written.
    assert_eq!(replicas(&deployments, "roadtrip-stories").await, 2);
    assert_eq!(pool(&config_maps, "roadtrip-stories-db").await, None);
    let stories = slos.get("roadtrip-stories").await.unwrap().status.unwrap();
    assert!(
        !stories.decisions.is_empty() && stories.decisions.iter().all(|d| d.dry_run),
        "{:?}",
        stories.decisions
    );
    assert!(reasons(&all, "roadtrip-stories").contains("WouldChange"));

    // Kill the leader: the other takes over within the lease duration.
    let (leader, follower) = if leader_a { (&mut a, &b) } else { (&mut b, &a) };
    leader.server.stop();
    let killed = Instant::now();
    wait_until("the follower to lead", Duration::from_secs(30), || async {
        leading(follower).await?.then_some(())
    })
    .await
    .unwrap();
    let failover = killed.elapsed();
    println!("failover in {:.1} s (lease 4 s)", failover.as_secs_f64());
    assert!(
        failover < Duration::from_secs(4 + 2 * 2),
        "failover took {failover:?}"
    );

    // Load falls (the audit's hour wraps from 500 back to 142 rps at about
    // 3 minutes in): replicas fall after the 20 s stabilization window.
    let mut highest = peak;
    let deadline = Instant::now() + Duration::from_secs(240);
    let fell = loop {
        let r = replicas(&deployments, "roadtrip-api").await;
        highest = highest.max(r);
        if r + 2 <= highest {
            break r;
        }
        if Instant::now() > deadline {
            let status = slos.get("roadtrip-api").await.unwrap().status.unwrap();
            let last: Vec<String> = status
                .decisions
                .iter()
                .rev()
                .take(6)
                .map(|d| format!("{:?} {}->{}: {}", d.knob, d.from, d.to, d.reason))
                .collect();
            panic!(
                "replicas never fell from {highest}; state {:?}, observed {:?}, last decisions {last:#?}",
                status.objective_state, status.observed
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("replicas fell from {highest} to {fell}");
    stop.store(true, Ordering::SeqCst);
    let _ = bridge.await;
}
