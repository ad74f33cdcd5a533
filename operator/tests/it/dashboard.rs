//! `governor dashboard` against a real kube-apiserver and a real Prometheus
//! scraping the simulator: SLOs come from the API server, history from
//! Prometheus range queries, cached so viewers do not multiply queries.

use std::path::Path;
use std::time::Duration;

use governor_crds::ServiceLevelObjective;
use governor_tests::{ControlPlane, Prometheus, Server, free_port, repo_root, wait_until};
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::common;
use crate::common::gate;

fn example(file: &str, namespace: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo_root().join("examples").join(file)).unwrap();
    let mut v: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    v["metadata"]["namespace"] = namespace.into();
    v
}

async fn query_range_count(prom: &Prometheus) -> f64 {
    prom.answered("/api/v1/query_range").await.unwrap()
}

async fn text(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_cluster_dashboard_reads_slos_from_the_api_server_and_history_from_prometheus() {
    let _slot = gate::heavy().await;
    let cp = ControlPlane::start().await.unwrap();
    cp.install_crds().await.unwrap();
    let ns = cp.temp_namespace("dash").await.unwrap();
    let api: Api<ServiceLevelObjective> = Api::namespaced(cp.client.clone(), &ns.name);
    let params = PatchParams::apply("governor-tests");
    for file in ["api.yaml", "stories.yaml"] {
        let v = example(file, &ns.name);
        api.patch(
            v["metadata"]["name"].as_str().unwrap(),
            &params,
            &Patch::Apply(&v),
        )
        .await
        .unwrap();
    }
    // The operator's report, as it would write it.
    let status = serde_json::json!({
        "apiVersion": "governor.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "status": {
            "objectiveState": "Breached",
            "observed": {"time": "2026-11-27T10:00:00Z", "p50": "125ms", "p90": "450ms", "p99": "1200ms", "requestRate": 142.0, "cacheHitRate": 0.42},
            "errorBudgetRemaining": 0.8,
            "replicas": {"current": 2, "desired": 6},
            "decisions": [{"time": "2026-11-27T10:00:00Z", "knob": "Replicas", "from": 2, "to": 6, "reason": "p90 450ms vs target 100ms"}]
        }
    });
    api.patch_status(
        "roadtrip-api",
        &params.clone().force(),
        &Patch::Apply(&status),
    )
    .await
    .unwrap();

    let (_sim, sim_addr) = common::start_sim(&["--speed", "1"]).await;
    let mut prom = Prometheus::start(&[sim_addr]).await.unwrap();

    let dir = tempfile::Builder::new()
        .prefix("governor-dashboard-")
        .tempdir()
        .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cp.admin_kubeconfig()).unwrap();
    let port = free_port().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let args: Vec<String> = [
        "dashboard",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--prometheus",
        &prom.url,
        "--namespace",
        &ns.name,
        "--refresh",
        "3s",
        "--timeout",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let kc = kubeconfig.display().to_string();
    let mut dash = Server::start_env(
        "governor-dashboard",
        Path::new(env!("CARGO_BIN_EXE_governor")),
        &args,
        &[("KUBECONFIG", &kc)],
        dir,
    )
    .unwrap();
    let http = reqwest::Client::new();
    let ready = format!("{base}/readyz");
    dash.wait_ready(Duration::from_secs(60), || {
        governor_tests::process::http_ok(&http, &ready)
    })
    .await
    .unwrap();

    // Both SLOs, with the status the operator wrote.
    let list: serde_json::Value = reqwest::get(format!("{base}/api/v1/slos?sort=name"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    let api_view = items.iter().find(|i| i["name"] == "roadtrip-api").unwrap();
    assert_eq!(api_view["state"], "breached");
    assert_eq!(api_view["latency"][1]["observed"], 0.45);
    assert_eq!(api_view["replicas"]["desired"], 6);
    let (_, overview) = text(&format!("{base}/")).await;
    assert!(
        overview.contains("450 ms") && overview.contains("2 → 6"),
        "{overview}"
    );

    // History from Prometheus, once it has scraped a minute's rates.
    let detail = format!("{base}/api/v1/slos/{}/roadtrip-api?range=1h", ns.name);
    let points = wait_until(
        "history from Prometheus",
        Duration::from_secs(90),
        || async {
            let v: serde_json::Value = reqwest::get(&detail).await.ok()?.json().await.ok()?;
            let points = v["history"]["points"].as_array()?.clone();
            points
                .iter()
                .any(|p| p["p99"].is_number() && p["requestRate"].as_f64().is_some_and(|r| r > 0.0))
                .then_some(points)
        },
    )
    .await
    .unwrap();
    assert!(
        points.iter().all(|p| p["replicas"].is_null()),
        "no operator metrics exported here, so replicas stay missing, not zero"
    );

    // Twenty viewers of one page within the refresh interval: one history load.
    let before = query_range_count(&prom).await;
    let page = format!("{base}/slos/{}/roadtrip-stories?range=6h", ns.name);
    let loads = (0..20).map(|_| text(&page));
    for (status, html) in futures::future::join_all(loads).await {
        assert_eq!(status, 200);
        assert!(html.contains("id=\"chart-latency\""));
    }
    let after = query_range_count(&prom).await;
    let issued = after - before;
    println!("20 viewers -> {issued} range queries");
    assert!(issued <= 8.0, "{issued} range queries for 20 viewers");

    // Prometheus gone: the page says so instead of drawing zeros.
    prom.server.stop();
    let missing = wait_until(
        "the unreachable banner",
        Duration::from_secs(30),
        || async {
            let (_, html) = text(&format!("{base}/")).await;
            html.contains("is unreachable").then_some(html)
        },
    )
    .await
    .unwrap();
    assert!(missing.contains(&prom.url), "names the Prometheus URL");
    let (status, html) = text(&format!("{base}/slos/{}/roadtrip-api?range=24h", ns.name)).await;
    assert_eq!(status, 200);
    assert!(html.contains("History is unavailable"), "{html}");
    assert!(!html.contains("<polyline"));
    // The SLOs themselves still come from the API server.
    assert!(html.contains("450 ms"));
    let (status, _) = text(&format!("{base}/slos/{}/nope", ns.name)).await;
    assert_eq!(status, 404);
}
