//! Signals against the real Prometheus: `governor sim serve` is scraped, and
//! `governor observe` must agree with the simulator's ground truth, issue a
//! number of queries that does not grow with the SLOs, keep hostile label
//! values inert, and survive Prometheus going away. Each runs on Prometheus
//! 2.x and 3.x.

use std::time::Duration;

use governor_tests::{Prometheus, PrometheusVersion, wait_until};

use crate::common::gate;
use crate::common::{observe_async, slo, start_sim, truth, wait_for_reading, wait_sim_time};
use crate::on_each_prometheus;

fn slo_yaml(name: &str, service: &str) -> String {
    format!(
        "---\napiVersion: governor.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata: {{name: {name}, namespace: sim}}\nspec:\n  service: {}\n  targetRef: {{name: {name}}}\n  objectives: {{latency: {{p50: 100ms, p90: 100ms, p99: 100ms}}, errorRate: 0.001}}\n  connectionPool: {{configMap: {{name: db, key: pool}}, maxSize: 50, database: {{maxConnections: 100}}}}\n  cache: {{hitRateTarget: 0.8}}\n",
        serde_json::to_string(service).unwrap()
    )
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
    prom.answered("/api/v1/query").await.unwrap()
}

on_each_prometheus!(observed_percentiles_match_ground_truth_and_hostile_labels_stay_inert);
async fn observed_percentiles_match_ground_truth_and_hostile_labels_stay_inert(
    version: PrometheusVersion,
) {
    let _slot = gate::heavy().await;
    let (_sim, addr) = start_sim(&["--scenario", "audit"]).await;
    let prom = Prometheus::start_on(version, std::slice::from_ref(&addr))
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
    wait_for_reading(&prom.url, &file, "roadtrip-api", "/observation/latency/p99").await;
    wait_sim_time(&addr, 25.0).await;
    let cycle = observe_async(&prom.url, &file, "15s").await.unwrap();
    let truth = truth(&addr, 15).await;

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

on_each_prometheus!(queries_do_not_grow_with_slos_and_prometheus_outage_is_survived);
async fn queries_do_not_grow_with_slos_and_prometheus_outage_is_survived(
    version: PrometheusVersion,
) {
    let _slot = gate::heavy().await;
    let (_sim, addr) = start_sim(&["--scenario", "diurnal", "--services", "200"]).await;
    let mut prom = Prometheus::start_on(version, std::slice::from_ref(&addr))
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
    wait_for_reading(&prom.url, &files[0].1, "svc-0", "/observation/request_rate").await;

    let mut counts = Vec::new();
    for (n, file) in &files {
        let before = answered_queries(&prom).await;
        let cycle = observe_async(&prom.url, file, "15s").await.unwrap();
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
    let cycle = observe_async(&prom.url, &files[0].1, "15s").await.unwrap();
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
    let prom2 = Prometheus::start_on(version, std::slice::from_ref(&addr))
        .await
        .unwrap();
    wait_until(
        "data after Prometheus returned",
        Duration::from_secs(60),
        || async {
            let c = observe_async(&prom2.url, &files[0].1, "15s").await?;
            (c["failed_queries"] == 0
                && slo(&c, "svc-0")["observation"]["request_rate"].is_number())
            .then_some(())
        },
    )
    .await
    .unwrap();
}

on_each_prometheus!(native_histograms_are_read);
async fn native_histograms_are_read(version: PrometheusVersion) {
    let _slot = gate::heavy().await;
    let (_sim, addr) = start_sim(&["--scenario", "audit"]).await;
    let prom = Prometheus::start_version(
        version,
        std::slice::from_ref(&addr),
        "/metrics/native",
        &[],
        None,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("native.yaml");
    let yaml = slo_yaml("roadtrip-api", "roadtrip-api").replace(
        "  connectionPool:",
        "  indicators:\n    prometheus:\n      latency: {metric: http_server_request_duration_native_seconds, histogram: native}\n  connectionPool:",
    );
    std::fs::write(&file, yaml).unwrap();
    wait_for_reading(&prom.url, &file, "roadtrip-api", "/observation/latency/p99").await;
    wait_sim_time(&addr, 25.0).await;
    let cycle = observe_async(&prom.url, &file, "15s").await.unwrap();
    let truth = truth(&addr, 15).await;
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

on_each_prometheus!(one_slo_refused_by_prometheus_leaves_the_others_read);

/// SLOs of several namespaces share batched queries; one of them carries a
/// service value of 11 MB (past the 10 MiB of form Prometheus reads, so it
/// refuses every batch holding it with 400 bad_data), another one of 1.2 MB
/// (which a POSTed query carries). The cycle splits the refused batches: the
/// other SLOs read their signals, the offending one misses its own with the
/// reason, and nothing reads as zero. The SLOs are built in process: both
/// values are past what validation admits, so `governor observe` would not
/// query them.
async fn one_slo_refused_by_prometheus_leaves_the_others_read(version: PrometheusVersion) {
    let _slot = gate::heavy().await;
    let (_sim, addr) = start_sim(&["--scenario", "audit"]).await;
    let prom = Prometheus::start_on(version, std::slice::from_ref(&addr))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api.yaml");
    std::fs::write(&file, slo_yaml("roadtrip-api", "roadtrip-api")).unwrap();
    wait_for_reading(&prom.url, &file, "roadtrip-api", "/observation/latency/p99").await;

    let huge = "x".repeat(11_000_000);
    let big = "y".repeat(1_200_000);
    let services = [
        "roadtrip-api",
        huge.as_str(),
        "roadtrip-stories",
        big.as_str(),
        "roadtrip-bookings",
    ];
    let slos: Vec<governor_crds::ServiceLevelObjective> = services
        .iter()
        .enumerate()
        .map(|(i, service)| {
            let yaml = slo_yaml(&format!("slo-{i}"), "placeholder")
                .replace("namespace: sim", &format!("namespace: team-{i}"));
            let mut slo: governor_crds::ServiceLevelObjective =
                serde_yaml_ng::from_str(&yaml).unwrap();
            slo.spec.service = service.to_string();
            slo
        })
        .collect();
    let refs: Vec<_> = slos.iter().collect();
    let mut source =
        governor::observe::prometheus::PrometheusSource::new(&prom.url, Duration::from_secs(20))
            .unwrap();
    source.window = "15s".parse().unwrap();
    let cycle = governor::observe::cycle(&source, None, &refs).await;
    let plan = cycle.queries - cycle.split_queries;
    eprintln!(
        "{} queries in the plan, {} to split failed batches, {} failed",
        plan, cycle.split_queries, cycle.failed
    );
    assert!(cycle.split_queries > 0, "no batch was split");
    assert!(cycle.split_queries <= source.max_split_queries);

    for i in [0, 2, 4] {
        let r = &cycle.readings[i];
        let o = &r.observation;
        assert!(
            o.request_rate.is_some_and(|v| v > 0.0),
            "{}: {:#?}",
            services[i],
            r.missing
        );
        for q in [o.latency.p50, o.latency.p90, o.latency.p99] {
            assert!(q.is_some_and(|v| v > 0.0), "{}: {r:#?}", services[i]);
        }
        assert!(o.sampled_at.is_some() && o.error_rate.is_some());
        assert!(
            !r.missing.values().any(|w| w.contains("query failed")),
            "{}: {:#?}",
            services[i],
            r.missing
        );
    }
    // The 11 MB SLO: every signal missing, each because its query fails alone.
    let r = &cycle.readings[1];
    assert_eq!(r.observation, Default::default());
    for signal in ["Requests", "SampleTime", "latency_p99", "Errors", "PoolMax"] {
        let why = r
            .missing
            .get(signal)
            .unwrap_or_else(|| panic!("{signal} has no reason: {:#?}", r.missing));
        assert!(
            why.starts_with("query failed: ")
                && why.contains("it fails for this SLO alone (its batch of 5 SLOs was split"),
            "{signal}: {why}"
        );
        assert!(
            why.len() < 1000,
            "the reason quotes the query: {} bytes",
            why.len()
        );
    }
    eprintln!("why: {}", r.missing["Requests"]);
    // The 1.2 MB SLO is queried (no such service: no data), not read as zero.
    let r = &cycle.readings[3];
    assert_eq!(r.observation.request_rate, None);
    assert!(
        r.missing["Requests"].starts_with("no data"),
        "{:#?}",
        r.missing
    );
}
