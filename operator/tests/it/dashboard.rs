//! `governor dashboard` against a real kube-apiserver and a real Prometheus
//! scraping the simulator: SLOs come from the API server, history from
//! Prometheus range queries, cached so viewers do not multiply queries. In a
//! second namespace `governor operator` computes the error budget on the same
//! cluster: from the rules it applied (loaded into Prometheus here) and, for an
//! SLO with alerting off, from a direct query; status, metrics, `governor
//! observe` and the dashboard all show it.

use std::path::Path;
use std::time::Duration;

use governor_crds::ServiceLevelObjective;
use governor_tests::{ControlPlane, Prometheus, Server, free_port, repo_root, wait_until};
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::common;
use crate::common::gate;
use crate::common::operator::{deployment, start_operator};

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

    // The error budget's namespace: the operator acts there, in DryRun.
    let budget_ns = cp.temp_namespace("budget").await.unwrap();
    let budget_slos = tempfile::tempdir().unwrap();
    budget_slo(&cp, &budget_ns.name, "api.yaml", true, budget_slos.path()).await;

    let (_sim, sim_addr) = common::start_sim(&["--speed", "1"]).await;
    let rules_dir = tempfile::tempdir().unwrap();
    let mut prom = Prometheus::start_with(
        std::slice::from_ref(&sim_addr),
        &[rules_dir.path().join("*.rules.yaml")],
        None,
    )
    .await
    .unwrap();

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
    let budget_arg = format!("--namespace={}", budget_ns.name);
    let operator = start_operator(
        "budget",
        &kubeconfig,
        &budget_ns.name,
        &prom.url,
        &[&budget_arg],
    );
    let args: Vec<String> = args.into_iter().chain([budget_arg.clone()]).collect();
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

    // Prometheus loads the rules the operator applied, as prometheus-operator
    // would: read back from the API server.
    load_rules(&cp, &budget_ns.name, &prom, rules_dir.path()).await;

    // Both SLOs, with the status the operator wrote.
    let list: serde_json::Value = reqwest::get(format!(
        "{base}/api/v1/slos?sort=name&namespace={}",
        ns.name
    ))
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

    error_budget_on_the_cluster(
        &cp,
        &budget_ns.name,
        budget_slos.path(),
        &prom,
        &operator.metrics,
        &base,
    )
    .await;

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

/// Applies one of the error budget's SLOs in `namespace`, on the simulator's
/// service, and writes it to `dir` for `governor observe`: a one-hour window
/// (the budget group runs every minute), DryRun, decided every 3 s.
async fn budget_slo(cp: &ControlPlane, namespace: &str, file: &str, alerting: bool, dir: &Path) {
    let params = PatchParams::apply("governor-tests");
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(cp.client.clone(), namespace);
    let api: Api<ServiceLevelObjective> = Api::namespaced(cp.client.clone(), namespace);
    let mut v = example(file, namespace);
    let name = v["metadata"]["name"].as_str().unwrap().to_string();
    v["spec"]["objectives"]["window"] = "1h".into();
    v["spec"]["objectives"]["evaluationInterval"] = "3s".into();
    v["spec"]["scaling"]["mode"] = "DryRun".into();
    v["spec"]["alerting"]["enabled"] = alerting.into();
    deployments
        .patch(&name, &params, &Patch::Apply(deployment(&name, 2)))
        .await
        .unwrap();
    api.patch(&name, &params, &Patch::Apply(&v)).await.unwrap();
    std::fs::write(
        dir.join(format!("{name}.yaml")),
        serde_yaml_ng::to_string(&v).unwrap(),
    )
    .unwrap();
}

/// Copies the rule file of the operator's ConfigMap into Prometheus's rule
/// folder and reloads it.
async fn load_rules(cp: &ControlPlane, namespace: &str, prom: &Prometheus, dir: &Path) {
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(cp.client.clone(), namespace);
    let text = wait_until("the operator's rules", Duration::from_secs(60), || async {
        let cm = maps.get_opt("roadtrip-api-slo-rules").await.ok()??;
        cm.data?.remove("roadtrip-api.rules.yaml")
    })
    .await
    .unwrap();
    assert!(
        text.contains("interval: 1m") && text.contains("governor_slo:error_budget_remaining:ratio")
    );
    std::fs::write(dir.join("roadtrip-api.rules.yaml"), text).unwrap();
    prom.reload().await.unwrap();
}

/// The bad share `1 - budget` stands for, against an objective's allowed share.
fn bad_share(budget: f64, objective: &str) -> f64 {
    let allowed = match objective {
        "latency-p50" => 0.5,
        "latency-p90" => 0.1,
        "latency-p99" => 0.01,
        _ => 0.001,
    };
    (1.0 - budget) * allowed
}

/// Each objective's bad share over the last hour, straight from the raw
/// counters (written here, not by Governor).
async fn direct_shares(prom: &Prometheus, selector: &str) -> Vec<(String, f64)> {
    let count =
        format!("sum(increase(http_server_request_duration_seconds_count{{{selector}}}[1h]))");
    let mut out = Vec::new();
    for q in ["p50", "p90", "p99"] {
        let fast = format!(
            "sum(increase(http_server_request_duration_seconds_bucket{{{selector}, le=\"0.1\"}}[1h]))"
        );
        let v = prom.query(&format!("1 - {fast} / {count}")).await.unwrap();
        out.push((format!("latency-{q}"), number(&v[0]["value"][1])));
    }
    let errors = format!(
        "(sum(increase(http_server_request_duration_seconds_count{{{selector}, http_response_status_code=~\"5..\"}}[1h])) or vector(0)) / {count}"
    );
    let v = prom.query(&errors).await.unwrap();
    out.push(("errors".into(), number(&v[0]["value"][1])));
    out
}

fn number(v: &serde_json::Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or(v.as_f64())
        .unwrap()
}

/// The SLO's budget and each objective's, from its status.
type Budgets = (Option<f64>, Vec<(String, Option<f64>)>);

async fn status_budgets(api: &Api<ServiceLevelObjective>, name: &str) -> Option<Budgets> {
    let status = api.get(name).await.ok()?.status?;
    let objectives = status
        .objectives
        .iter()
        .map(|o| (o.objective.clone(), o.error_budget_remaining))
        .collect();
    Some((status.error_budget_remaining, objectives))
}

/// Every objective known, the SLO's budget their minimum, each bad share
/// within `relative` of the test's own computation from the raw counters
/// (plus a ten-thousandth: shares of a few requests in a thousand).
fn assert_plausible(what: &str, b: &Budgets, direct: &[(String, f64)], relative: f64) {
    let (worst, objectives) = b;
    let ids: Vec<&str> = objectives.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(
        ids,
        ["latency-p50", "latency-p90", "latency-p99", "errors"],
        "{what}"
    );
    let values: Vec<f64> = objectives.iter().map(|(_, v)| v.unwrap()).collect();
    assert_eq!(*worst, values.iter().copied().reduce(f64::min), "{what}");
    for ((o, v), (_, share)) in objectives.iter().zip(direct) {
        let seen = bad_share(v.unwrap(), o);
        println!(
            "{what} {o}: budget {:.4}, bad share {seen:.4}; from the raw counters {share:.4}",
            v.unwrap()
        );
        let tolerance = relative * seen.max(*share) + 1e-4;
        assert!(
            (seen - share).abs() <= tolerance && (-1e-9..=1.0 + 1e-9).contains(&seen),
            "{what} {o}: bad share {seen} against {share} from the raw counters"
        );
    }
}

/// The operator's error budgets on the cluster, in status, metrics, `governor
/// observe` and the dashboard: read from the recorded series when the rules
/// are loaded, by a direct query when alerting is off.
async fn error_budget_on_the_cluster(
    cp: &ControlPlane,
    namespace: &str,
    slo_files: &Path,
    prom: &Prometheus,
    metrics_url: &str,
    base: &str,
) {
    let api: Api<ServiceLevelObjective> = Api::namespaced(cp.client.clone(), namespace);
    // Recorded: the status carries exactly what the budget rules recorded.
    let recorded_query = format!(
        "last_over_time(governor_slo:error_budget_remaining:ratio{{namespace=\"{namespace}\"}}[2m])"
    );
    let recorded = wait_until(
        "the recorded budget in the status",
        Duration::from_secs(180),
        || async {
            let series = prom.query(&recorded_query).await.ok()?;
            let values: std::collections::HashMap<String, f64> = series
                .iter()
                .filter(|s| s["metric"]["slo"] == "roadtrip-api")
                .map(|s| {
                    (
                        s["metric"]["objective"].as_str().unwrap().to_string(),
                        number(&s["value"][1]),
                    )
                })
                .collect();
            let b = status_budgets(&api, "roadtrip-api").await?;
            let same = b.1.len() == 4
                && b.1.iter().all(|(o, v)| {
                    v.zip(values.get(o))
                        .is_some_and(|(a, r)| (a - r).abs() < 1e-9)
                });
            same.then_some(b)
        },
    )
    .await
    .unwrap();
    let direct = direct_shares(prom, "service=\"roadtrip-api\"").await;
    // The recording counts from when Prometheus loaded the rules, the raw
    // counters from the simulator's start.
    assert_plausible("recorded roadtrip-api", &recorded, &direct, 0.5);

    // Alerting off: a direct query over the window, made as soon as the
    // SLO appears (now that Prometheus holds a few minutes of data).
    budget_slo(cp, namespace, "stories.yaml", false, slo_files).await;
    let stories_sel = "service=\"roadtrip-stories\", http_route=\"/api/stories\"";
    let direct_read = wait_until("the direct budget", Duration::from_secs(60), || async {
        status_budgets(&api, "roadtrip-stories")
            .await
            .filter(|b| b.0.is_some())
    })
    .await
    .unwrap();
    let direct = direct_shares(prom, stories_sel).await;
    assert_plausible("direct roadtrip-stories", &direct_read, &direct, 0.2);
    let series = prom.query(&recorded_query).await.unwrap();
    assert!(
        series.iter().all(|s| s["metric"]["slo"] == "roadtrip-api"),
        "no rules for the SLO with alerting off: {series:?}"
    );

    // `governor observe`: the same budgets, and where each came from; the
    // direct one read just now agrees closely with the raw counters.
    let cycle = tokio::task::spawn_blocking({
        let (url, dir) = (prom.url.clone(), slo_files.to_path_buf());
        move || common::observe(&url, &dir, "1m")
    })
    .await
    .unwrap();
    let direct = direct_shares(prom, stories_sel).await;
    for (name, source) in [("roadtrip-api", "recorded"), ("roadtrip-stories", "direct")] {
        let row = common::slo(&cycle, name);
        assert_eq!(row["errorBudgetSource"], source, "{row}");
        let objectives: Vec<(String, Option<f64>)> = row["objectives"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["objective"].as_str().unwrap().to_string(),
                    o["errorBudgetRemaining"].as_f64(),
                )
            })
            .collect();
        let b = (row["errorBudgetRemaining"].as_f64(), objectives);
        if source == "direct" {
            assert_plausible("observe roadtrip-stories", &b, &direct, 0.05);
        } else {
            assert!(b.0.is_some(), "{row}");
        }
    }

    // The metrics: the worst objective's and each objective's, as in the status.
    let http = reqwest::Client::new();
    wait_until("the budget metrics", Duration::from_secs(30), || async {
        let text = http.get(metrics_url).send().await.ok()?.text().await.ok()?;
        let (worst, objectives) = status_budgets(&api, "roadtrip-api").await?;
        let value = |prefix: String| -> Option<f64> {
            text.lines()
                .find(|l| l.starts_with(&prefix))?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        };
        let slo = format!("namespace=\"{namespace}\",slo=\"roadtrip-api\"");
        let exported = value(format!("governor_slo_error_budget_remaining{{{slo}}} "))?;
        let p99 = value(format!(
            "governor_slo_objective_error_budget_remaining{{{slo},objective=\"latency-p99\"}} "
        ))?;
        let want = objectives.iter().find(|(o, _)| o == "latency-p99")?.1?;
        ((exported - worst?).abs() < 1e-9 && (p99 - want).abs() < 1e-9).then_some(())
    })
    .await
    .unwrap();

    // The dashboard over the cluster: the budget bar of the overview, and
    // each objective's budget on the detail page.
    let percent = governor_dashboard::format::percent;
    wait_until(
        "the budget on the dashboard",
        Duration::from_secs(30),
        || async {
            let (worst, objectives) = status_budgets(&api, "roadtrip-api").await?;
            let (_, overview) = text(&format!("{base}/?namespace={namespace}")).await;
            let (_, detail) = text(&format!("{base}/slos/{namespace}/roadtrip-api")).await;
            let p99 = objectives.iter().find(|(o, _)| o == "latency-p99")?.1;
            let shown = overview.contains(&format!("{}</td>", percent(worst)))
                && overview.contains("<meter")
                && detail.contains(&format!(
                    "<dt>Budget: P99 latency</dt><dd>{}</dd>",
                    percent(p99)
                ));
            shown.then_some(())
        },
    )
    .await
    .unwrap();
}
