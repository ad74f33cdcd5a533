//! Signals against the real Prometheus: `governor sim serve` is scraped, and
//! `governor observe` must agree with the simulator's ground truth, issue a
//! number of queries that does not grow with the SLOs, keep hostile label
//! values inert, and survive Prometheus going away.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use governor_tests::{Prometheus, Server, free_port, wait_until};

async fn start_sim(args: &[&str]) -> (Server, String) {
    let port = free_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let mut all: Vec<String> = vec![
        "sim".into(),
        "serve".into(),
        "--listen".into(),
        addr.clone(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    let dir = tempfile::Builder::new()
        .prefix("governor-sim-")
        .tempdir()
        .unwrap();
    let mut server = Server::start(
        "governor-sim",
        Path::new(env!("CARGO_BIN_EXE_governor")),
        &all,
        dir,
    )
    .unwrap();
    let http = reqwest::Client::new();
    let health = format!("http://{addr}/healthz");
    server
        .wait_ready(Duration::from_secs(30), || {
            governor_tests::process::http_ok(&http, &health)
        })
        .await
        .unwrap();
    (server, addr)
}

fn slo_yaml(name: &str, service: &str) -> String {
    format!(
        "---\napiVersion: governor.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata: {{name: {name}, namespace: sim}}\nspec:\n  service: {}\n  targetRef: {{name: {name}}}\n  objectives: {{latency: {{p50: 100ms, p90: 100ms, p99: 100ms}}, errorRate: 0.001}}\n  connectionPool: {{configMap: {{name: db, key: pool}}, maxSize: 50, database: {{maxConnections: 100}}}}\n  cache: {{hitRateTarget: 0.8}}\n",
        serde_json::to_string(service).unwrap()
    )
}

fn observe(prometheus: &str, file: &Path, window: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_governor"))
        .args([
            "observe",
            "--prometheus",
            prometheus,
            "--window",
            window,
            "--timeout",
            "5",
        ])
        .arg(file)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "observe printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn slo<'a>(cycle: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    cycle["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

const BUCKETS: [f64; 21] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5,
    2.0, 2.5, 5.0, 7.5, 10.0,
];

fn bucket(v: f64) -> usize {
    BUCKETS
        .iter()
        .position(|b| v <= *b)
        .unwrap_or(BUCKETS.len())
}

/// Queries Prometheus has answered, from its own /metrics.
async fn answered_queries(prom: &Prometheus) -> f64 {
    let text = reqwest::get(format!("{}/metrics", prom.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("prometheus_http_requests_total{")
                && l.contains("handler=\"/api/v1/query\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn observed_percentiles_match_ground_truth_and_hostile_labels_stay_inert() {
    let (_sim, addr) = start_sim(&["--scenario", "audit"]).await;
    let prom = Prometheus::start(std::slice::from_ref(&addr))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slos.yaml");
    let mut text = String::new();
    for name in ["roadtrip-api", "roadtrip-stories", "roadtrip-bookings"] {
        text.push_str(&slo_yaml(name, name));
    }
    let hostile = [
        "roadtrip-api\"} or vector(1) #",
        "back\\slash\"}",
        "new\nline",
    ];
    for (i, h) in hostile.iter().enumerate() {
        text.push_str(&slo_yaml(&format!("hostile-{i}"), h));
    }
    std::fs::write(&file, text).unwrap();

    // Wait until Prometheus has data and the simulation 25 s behind it.
    let url = prom.url.clone();
    let first = file.clone();
    wait_until("data in Prometheus", Duration::from_secs(60), || {
        let (url, file) = (url.clone(), first.clone());
        async move {
            let c = tokio::task::spawn_blocking(move || observe(&url, &file, "15s"))
                .await
                .ok()?;
            slo(&c, "roadtrip-api")["observation"]["latency"]["p99"]
                .is_number()
                .then_some(())
        }
    })
    .await
    .unwrap();
    wait_until("enough simulated time", Duration::from_secs(60), || {
        let addr = addr.clone();
        async move {
            let t: serde_json::Value = reqwest::get(format!("http://{addr}/truth"))
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (t[0]["sim_time"].as_f64()? >= 25.0).then_some(())
        }
    })
    .await
    .unwrap();
    let url = prom.url.clone();
    let f = file.clone();
    let cycle = tokio::task::spawn_blocking(move || observe(&url, &f, "15s"))
        .await
        .unwrap();
    let truth: serde_json::Value = reqwest::get(format!("http://{addr}/truth?window=15"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(cycle["failed_queries"], 0, "{cycle:#}");
    for name in ["roadtrip-api", "roadtrip-stories", "roadtrip-bookings"] {
        let observed = &slo(&cycle, name)["observation"];
        let t = truth
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["service"] == name)
            .unwrap();
        for q in ["p50", "p90", "p99"] {
            let est = observed["latency"][q]
                .as_f64()
                .unwrap_or_else(|| panic!("{name} {q} missing: {cycle:#}"));
            let real = t[q].as_f64().unwrap();
            assert!(
                bucket(est).abs_diff(bucket(real)) <= 1,
                "{name} {q}: Prometheus {est:.4}s vs truth {real:.4}s, more than one bucket apart"
            );
        }
        assert!(observed["request_rate"].as_f64().unwrap() > 0.0);
        assert_eq!(
            observed["error_rate"], 0.0,
            "{name}: requests seen and none failed"
        );
    }
    // Hostile values matched nothing, broke no query, and took no one's data.
    for i in 0..hostile.len() {
        let s = slo(&cycle, &format!("hostile-{i}"));
        assert!(s["observation"]["request_rate"].is_null(), "{s:#}");
        assert!(
            s["missing"]["Requests"]
                .as_str()
                .unwrap()
                .contains("no data"),
            "{s:#}"
        );
    }
}

#[tokio::test]
async fn queries_do_not_grow_with_slos_and_prometheus_outage_is_survived() {
    let (_sim, addr) = start_sim(&["--scenario", "diurnal", "--services", "200"]).await;
    let mut prom = Prometheus::start(std::slice::from_ref(&addr))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for n in [10usize, 100, 200, 1000] {
        let file = dir.path().join(format!("slos-{n}.yaml"));
        let text: String = (0..n)
            .map(|i| slo_yaml(&format!("svc-{i}"), &format!("svc-{i}")))
            .collect();
        std::fs::write(&file, text).unwrap();
        files.push((n, file));
    }
    let url = prom.url.clone();
    let first = files[0].1.clone();
    wait_until("data for svc-0", Duration::from_secs(60), || {
        let (url, file) = (url.clone(), first.clone());
        async move {
            let c = tokio::task::spawn_blocking(move || observe(&url, &file, "15s"))
                .await
                .ok()?;
            slo(&c, "svc-0")["observation"]["request_rate"]
                .is_number()
                .then_some(())
        }
    })
    .await
    .unwrap();

    let mut counts = Vec::new();
    for (n, file) in &files {
        let before = answered_queries(&prom).await;
        let (url, file) = (prom.url.clone(), file.clone());
        let cycle = tokio::task::spawn_blocking(move || observe(&url, &file, "15s"))
            .await
            .unwrap();
        let after = answered_queries(&prom).await;
        let issued = cycle["queries"].as_u64().unwrap();
        assert_eq!(
            after - before,
            issued as f64,
            "Prometheus answered a different number of queries than reported"
        );
        let with_data = cycle["slos"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["observation"]["request_rate"].is_number())
            .count();
        eprintln!(
            "{n} SLOs: {issued} queries, {:.1} ms, {with_data} with data",
            cycle["duration_ms"].as_f64().unwrap()
        );
        assert_eq!(with_data, (*n).min(200), "{n} SLOs");
        counts.push(issued);
    }
    assert!(
        counts.windows(2).all(|w| w[0] == w[1]),
        "queries grew with SLOs: {counts:?}"
    );

    // Prometheus goes away: every SLO is missing its data, with the cause.
    prom.server.stop();
    let (url, file) = (prom.url.clone(), files[0].1.clone());
    let cycle = tokio::task::spawn_blocking(move || observe(&url, &file, "15s"))
        .await
        .unwrap();
    assert_eq!(cycle["failed_queries"], cycle["queries"]);
    for s in cycle["slos"].as_array().unwrap() {
        assert!(s["observation"]["request_rate"].is_null());
        assert!(
            s["missing"]["Requests"]
                .as_str()
                .unwrap()
                .contains("query failed"),
            "{s:#}"
        );
    }
    // And comes back: the next cycle reads data again.
    let prom2 = Prometheus::start(std::slice::from_ref(&addr))
        .await
        .unwrap();
    let url = prom2.url.clone();
    wait_until(
        "data after Prometheus returned",
        Duration::from_secs(60),
        || {
            let (url, file) = (url.clone(), files[0].1.clone());
            async move {
                let c = tokio::task::spawn_blocking(move || observe(&url, &file, "15s"))
                    .await
                    .ok()?;
                (c["failed_queries"] == 0
                    && slo(&c, "svc-0")["observation"]["request_rate"].is_number())
                .then_some(())
            }
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn native_histograms_are_read() {
    let (_sim, addr) = start_sim(&["--scenario", "audit"]).await;
    let prom = Prometheus::start_scraping(std::slice::from_ref(&addr), "/metrics/native")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("native.yaml");
    let yaml = slo_yaml("roadtrip-api", "roadtrip-api").replace(
        "  connectionPool:",
        "  indicators:\n    prometheus:\n      latency: {metric: http_server_request_duration_native_seconds, histogram: native}\n  connectionPool:",
    );
    std::fs::write(&file, yaml).unwrap();
    let url = prom.url.clone();
    let f = file.clone();
    wait_until("native histogram data", Duration::from_secs(60), || {
        let (url, f) = (url.clone(), f.clone());
        async move {
            let c = tokio::task::spawn_blocking(move || observe(&url, &f, "15s"))
                .await
                .ok()?;
            slo(&c, "roadtrip-api")["observation"]["latency"]["p99"]
                .is_number()
                .then_some(())
        }
    })
    .await
    .unwrap();
    wait_until("enough simulated time", Duration::from_secs(60), || {
        let addr = addr.clone();
        async move {
            let t: serde_json::Value = reqwest::get(format!("http://{addr}/truth"))
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (t[0]["sim_time"].as_f64()? >= 25.0).then_some(())
        }
    })
    .await
    .unwrap();
    let (url, f) = (prom.url.clone(), file.clone());
    let cycle = tokio::task::spawn_blocking(move || observe(&url, &f, "15s"))
        .await
        .unwrap();
    let truth: serde_json::Value = reqwest::get(format!("http://{addr}/truth?window=15"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = truth
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["service"] == "roadtrip-api")
        .unwrap();
    let observed = &slo(&cycle, "roadtrip-api")["observation"]["latency"];
    for q in ["p50", "p90", "p99"] {
        let est = observed[q]
            .as_f64()
            .unwrap_or_else(|| panic!("{q} missing: {cycle:#}"));
        let real = t[q].as_f64().unwrap();
        // Schema 3 buckets are 2^(1/8) wide: allow two of them.
        assert!(
            (est / real).log2().abs() <= 2.0 / 8.0,
            "{q}: native {est:.4}s vs truth {real:.4}s"
        );
    }
    assert!(cycle["queries"].as_u64().unwrap() > 0);
}
