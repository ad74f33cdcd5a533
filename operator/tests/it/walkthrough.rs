//! The install walkthrough as an acceptance test, the guard against the demo
//! and the cluster drifting apart. As a user would: the chart rendered with
//! `helm template` and every object server-side applied to a real
//! kube-apiserver (its CRDs from `charts/governor/crds/`, with
//! prometheus-operator's kinds served, so Governor writes PrometheusRules);
//! every file of `examples/` applied in a namespace of its own with what it
//! acts on, opted in as `examples/README.md` shows; `governor sim serve
//! --scenario audit` playing the four services to a real Prometheus 3 and
//! their spans to a real Jaeger; the operator and the dashboard run as
//! processes from the rendered Deployments (their args and env, listening on
//! loopback) with the tokens of the chart's ServiceAccounts; and the rules
//! Governor applied read back from the API server into Prometheus, as
//! prometheus-operator would.
//!
//! Then, as a user looks: every cell of `/`, every figure, chart and table of
//! each detail page, every printer column of `kubectl get gslo`, and the page
//! and ticket alerts in Prometheus. Every example configures a pool and a
//! cache, so no field is legitimately empty. Each problem is named (SLO and
//! field) and all of them are reported at once, after the screenshots are
//! saved to `<target>/walkthrough/`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use governor_tests::control_plane::TempNamespace;
use governor_tests::{
    Chromium, ControlPlane, Jaeger, Prometheus, PrometheusVersion, Server, free_port, repo_root,
    wait_until,
};
use kube::Api;
use kube::api::{DynamicObject, GroupVersionKind, ListParams};
use serde_json::{Value, json};

use crate::common::gate;
use crate::common::operator::{apply_all, chart_objects, deployment, prometheus_operator_crd};
use crate::common::start_sim;

/// The Helm release, as `helm install governor charts/governor` names it.
const RELEASE: &str = "governor";
/// Simulated seconds per second: the audit's hour in 15 minutes, with a few
/// hundred spans a second to Jaeger.
const SPEED: &str = "4";
/// How long the fields may take to fill once the operator runs.
const FILL_TIMEOUT: Duration = Duration::from_secs(75);
/// What the page shows for a missing value.
const MISSING: &str = "—";

#[tokio::test]
async fn the_install_walkthrough_fills_every_field_a_user_reads() {
    let _slot = gate::heavy().await;
    let began = Instant::now();
    let install = Install::run().await;
    let mut problems = install.look_as_a_user().await;
    screenshots(&install.dashboard_url, &install.apps.name).await;
    for server in [&install.operator, &install.dashboard] {
        if server.log_tail(10_000).contains("panicked") {
            problems.push(format!(
                "{} panicked:\n{}",
                server.name,
                server.log_tail(40)
            ));
        }
    }
    println!("walkthrough took {:.0} s", began.elapsed().as_secs_f64());
    assert!(
        problems.is_empty(),
        "{} problems on the cluster path:\n- {}",
        problems.len(),
        problems.join("\n- ")
    );
}

/// Everything the walkthrough installed and started; stopped on drop.
struct Install {
    // Namespaces first: they are deleted before the API server stops.
    _release: TempNamespace,
    apps: TempNamespace,
    slos: Vec<String>,
    dashboard_url: String,
    /// When the operator was ready.
    started: Instant,
    operator: Server,
    dashboard: Server,
    prom: Prometheus,
    _rules: RuleFile,
    _sim: Server,
    _jaeger: Jaeger,
    cp: ControlPlane,
}

impl Install {
    /// The backends, the chart, the examples, the operator and the dashboard,
    /// and the rules Governor applied loaded into Prometheus.
    async fn run() -> Install {
        let began = Instant::now();
        let cp = ControlPlane::start().await.unwrap();
        let release = cp.temp_namespace("governor").await.unwrap();
        let apps = cp.temp_namespace("roadtrip").await.unwrap();
        let jaeger = Jaeger::start().await.unwrap();
        let otlp = jaeger.otlp_http_url.clone();
        let (sim, sim_addr) =
            start_sim(&["--scenario", "audit", "--speed", SPEED, "--otlp", &otlp]).await;
        let operator_addr = format!("127.0.0.1:{}", free_port().unwrap());
        let dashboard_addr = format!("127.0.0.1:{}", free_port().unwrap());
        let rules = RuleFile::new();
        // Prometheus scrapes the services and the operator (the chart's ServiceMonitor).
        let prom = Prometheus::start_version(
            PrometheusVersion::V3,
            &[sim_addr, operator_addr.clone()],
            "/metrics",
            std::slice::from_ref(&rules.path),
            None,
        )
        .await
        .unwrap();
        println!("servers up in {:.0} s", began.elapsed().as_secs_f64());

        let values = json!({
            "prometheus": {"url": prom.url},
            "jaeger": {"url": jaeger.query_url, "uiUrl": jaeger.query_url},
            "operator": {"observeInterval": "2s", "leaseDuration": "4s"},
            "dashboard": {"url": format!("http://{dashboard_addr}"), "refresh": "3s"},
            "serviceMonitor": {"enabled": true},
            "prometheusRule": {"enabled": true},
        });
        let chart = install_chart(&cp, &release.name, &values, &rules.dir).await;
        let slos = apply_examples(&cp, &apps.name).await;
        println!(
            "chart ({} objects) and examples ({}) applied at {:.0} s",
            chart.len(),
            slos.join(", "),
            began.elapsed().as_secs_f64()
        );

        // The operator's window shortened for the test, as in the other operator tests.
        let operator = Pod::run(
            &cp,
            &chart,
            "operator",
            ("--metrics-listen", &operator_addr),
        )
        .await
        .extra(&["--window=10s"])
        .start(&format!("http://{operator_addr}/healthz"))
        .await;
        let dashboard = Pod::run(&cp, &chart, "dashboard", ("--listen", &dashboard_addr))
            .await
            .start(&format!("http://{dashboard_addr}/readyz"))
            .await;
        let started = Instant::now();
        let namespaces = [release.name.as_str(), apps.name.as_str()];
        load_rules(&cp, &prom, &rules, &namespaces, &apps.name, &slos).await;
        println!(
            "rules read back into Prometheus {:.1} s after the operator started",
            started.elapsed().as_secs_f64()
        );
        Install {
            _release: release,
            apps,
            slos,
            dashboard_url: format!("http://{dashboard_addr}"),
            started,
            operator,
            dashboard,
            prom,
            _rules: rules,
            _sim: sim,
            _jaeger: jaeger,
            cp,
        }
    }

    /// Every problem a user would see: alerts, the overview (waited for until
    /// filled), the detail pages and `kubectl get gslo`.
    async fn look_as_a_user(&self) -> Vec<String> {
        let (base, ns, slos) = (&self.dashboard_url, &self.apps.name, &self.slos);
        let mut problems = alert_problems(&self.prom, ns, slos).await;
        let unfilled = settle(FILL_TIMEOUT, || overview_problems(base, slos)).await;
        println!(
            "overview {} {:.0} s after the operator started",
            if unfilled.is_empty() {
                "filled"
            } else {
                "still incomplete"
            },
            self.started.elapsed().as_secs_f64()
        );
        problems.extend(unfilled);
        // History comes from range queries cached for the refresh interval.
        let details = settle(Duration::from_secs(20), || async {
            let mut all = Vec::new();
            for slo in slos {
                all.extend(detail_problems(base, ns, slo).await);
            }
            all
        })
        .await;
        problems.extend(details);
        problems.extend(printer_column_problems(&self.cp, ns, slos).await);
        problems
    }
}

/// The rule file Prometheus loads, where the test writes what
/// prometheus-operator would hand it; no groups until the rules are read back.
struct RuleFile {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl RuleFile {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("governor-walkthrough-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("rules.yaml");
        std::fs::write(&path, "groups: []\n").unwrap();
        Self { dir, path }
    }
}

/// `helm template` with `values`, then every rendered object server-side
/// applied: the CRDs first (prometheus-operator's too, for the
/// ServiceMonitors and the PrometheusRule), each waited for until served.
async fn install_chart(
    cp: &ControlPlane,
    namespace: &str,
    values: &Value,
    scratch: &tempfile::TempDir,
) -> Vec<Value> {
    let file = scratch.path().join("values.yaml");
    // JSON is YAML.
    std::fs::write(&file, values.to_string()).unwrap();
    let file = file.display().to_string();
    let objects = chart_objects(RELEASE, namespace, &["--include-crds", "-f", &file]);
    let (crds, rest): (Vec<Value>, Vec<Value>) = objects
        .into_iter()
        .partition(|o| o["kind"] == "CustomResourceDefinition");
    assert!(
        !crds.is_empty(),
        "helm template --include-crds rendered no CRD"
    );
    let monitoring: Vec<Value> = ["ServiceMonitor", "PrometheusRule"]
        .into_iter()
        .map(prometheus_operator_crd)
        .collect();
    for crd in monitoring.iter().chain(&crds) {
        apply_all(&cp.client, namespace, std::slice::from_ref(crd)).await;
        let name = crd["metadata"]["name"].as_str().unwrap();
        cp.crd_established(name).await.unwrap();
    }
    apply_all(&cp.client, namespace, &rest).await;
    crds.into_iter().chain(rest).collect()
}

/// Every example SLO in `namespace` (evaluated every 3 s instead of 15 s),
/// after what it acts on: its target Deployment (two replicas, as the audit
/// found), pool ConfigMap and warm-up CronJob opted in, its warm-up Service.
/// Returns the SLOs' names.
async fn apply_examples(cp: &ControlPlane, namespace: &str) -> Vec<String> {
    let dir = repo_root().join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut slos = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        for doc in text.split("\n---") {
            let Ok(mut v) = serde_yaml_ng::from_str::<Value>(doc) else {
                continue;
            };
            if !v.is_object() {
                continue;
            }
            v["metadata"]["namespace"] = namespace.into();
            v["spec"]["objectives"]["evaluationInterval"] = "3s".into();
            slos.push(v);
        }
    }
    assert!(slos.len() >= 4, "{} SLOs in examples/", slos.len());
    let acted_on: Vec<Value> = slos.iter().flat_map(acted_on).collect();
    apply_all(&cp.client, namespace, &acted_on).await;
    apply_all(&cp.client, namespace, &slos).await;
    slos.iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// What one SLO names, as its owner would create it.
fn acted_on(slo: &Value) -> Vec<Value> {
    let spec = &slo["spec"];
    let opted_in = json!({"governor.dev/managed": "true"});
    let mut out = vec![deployment(spec["targetRef"]["name"].as_str().unwrap(), 2)];
    if let Some(cm) = spec["connectionPool"]["configMap"]["name"].as_str() {
        // No pool key: Governor writes it (examples/README.md).
        out.push(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": cm, "annotations": opted_in}}));
    }
    let warm_up = &spec["cache"]["warmUp"];
    if let Some(cron) = warm_up["job"]["fromCronJob"].as_str() {
        out.push(json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": cron, "annotations": opted_in},
            "spec": {"schedule": "@yearly", "suspend": true, "jobTemplate": {"spec": {"backoffLimit": 1,
                "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "warm",
                    "image": "ghcr.io/roadtrip/cache-warmer:1.4.0",
                    "args": ["--routes", "/api/stories,/api/locations", "--top", "500"]}]}}}}}}));
    }
    if let Some(service) = warm_up["http"]["service"].as_str() {
        out.push(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": service},
            "spec": {"selector": {"app": service},
                "ports": [{"port": warm_up["http"]["port"], "protocol": "TCP"}]}}),
        );
    }
    out
}

/// One of the chart's Deployments run as a local process, as its pod would
/// run: the rendered container's args (its listen address moved to loopback)
/// and env (pod fields filled in), with a kubeconfig holding a token of the
/// Deployment's ServiceAccount.
struct Pod {
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Pod {
    async fn run(cp: &ControlPlane, chart: &[Value], component: &str, listen: (&str, &str)) -> Pod {
        let name = format!("{RELEASE}-{component}");
        let d = chart
            .iter()
            .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == name.as_str())
            .unwrap_or_else(|| panic!("the chart rendered no Deployment {name}"));
        let namespace = d["metadata"]["namespace"].as_str().unwrap();
        let pod = &d["spec"]["template"]["spec"];
        let container = pod["containers"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == component))
            .unwrap_or_else(|| panic!("Deployment {name} has no container {component}"));
        let (flag, addr) = listen;
        let mut args: Vec<String> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let at = args
            .iter()
            .position(|a| a.starts_with(&format!("{flag}=")))
            .unwrap_or_else(|| panic!("{name}'s args have no {flag}: {args:?}"));
        args[at] = format!("{flag}={addr}");
        let pod_name = format!("{name}-walkthrough");
        let env = container["env"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let key = e["name"].as_str().unwrap().to_string();
                let value = match (
                    e["value"].as_str(),
                    e["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
                ) {
                    (Some(v), _) => v.to_string(),
                    (None, Some("metadata.name")) => pod_name.clone(),
                    (None, Some("metadata.namespace")) => namespace.to_string(),
                    _ => panic!(
                        "{name}: env {key} comes from {}, which the walkthrough does not provide",
                        e["valueFrom"]
                    ),
                };
                (key, value)
            })
            .collect();
        let account = pod["serviceAccountName"].as_str().unwrap();
        let token = cp.service_account_token(namespace, account).await.unwrap();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("kubeconfig"), cp.kubeconfig(&token)).unwrap();
        Pod {
            name,
            args,
            env,
            dir,
        }
    }

    /// More arguments, for what the chart has no value for.
    fn extra(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Starts the process and waits until `ready` answers.
    async fn start(self, ready: &str) -> Server {
        let kubeconfig = self.dir.path().join("kubeconfig").display().to_string();
        let mut env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.extend([
            ("KUBECONFIG", kubeconfig.as_str()),
            ("GOVERNOR_LOG", "info,kube=warn"),
        ]);
        let mut server = Server::start_env(
            &self.name,
            Path::new(env!("CARGO_BIN_EXE_governor")),
            &self.args,
            &env,
            self.dir,
        )
        .unwrap();
        let http = reqwest::Client::new();
        server
            .wait_ready(Duration::from_secs(60), || {
                governor_tests::process::http_ok(&http, ready)
            })
            .await
            .unwrap();
        server
    }
}

/// What prometheus-operator would do: once Governor has written a
/// PrometheusRule for every SLO, the groups of every PrometheusRule in
/// `namespaces` (the chart's own alerts too) go into the rule file, and
/// Prometheus reloads it.
async fn load_rules(
    cp: &ControlPlane,
    prom: &Prometheus,
    file: &RuleFile,
    namespaces: &[&str],
    apps: &str,
    slos: &[String],
) {
    let gvk = GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PrometheusRule");
    let (ar, _) = kube::discovery::pinned_kind(&cp.client, &gvk)
        .await
        .unwrap();
    let groups = wait_until(
        "Governor's PrometheusRule of every SLO",
        Duration::from_secs(60),
        || async {
            let mut rules = Vec::new();
            for ns in namespaces {
                let api: Api<DynamicObject> = Api::namespaced_with(cp.client.clone(), ns, &ar);
                rules.extend(api.list(&ListParams::default()).await.ok()?.items);
            }
            let written = |slo: &String| {
                rules.iter().any(|r| {
                    r.metadata.namespace.as_deref() == Some(apps)
                        && r.metadata.name.as_deref() == Some(&format!("{slo}-slo-rules"))
                })
            };
            slos.iter().all(written).then(|| {
                rules
                    .iter()
                    .flat_map(|r| {
                        r.data["spec"]["groups"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                    })
                    .collect::<Vec<Value>>()
            })
        },
    )
    .await
    .unwrap();
    std::fs::write(&file.path, json!({ "groups": groups }).to_string()).unwrap();
    let reload = reqwest::Client::new()
        .post(format!("{}/-/reload", prom.url))
        .send()
        .await
        .unwrap();
    let status = reload.status();
    let body = reload.text().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "Prometheus refused the rules ({status}): {body}"
    );
    let names: Vec<String> = groups
        .iter()
        .filter_map(|g| g["name"].as_str().map(String::from))
        .collect();
    wait_until(
        "Prometheus to list every group",
        Duration::from_secs(30),
        || async {
            let loaded = rule_groups(prom).await?;
            names
                .iter()
                .all(|n| loaded.iter().any(|g| g["name"] == n.as_str()))
                .then_some(())
        },
    )
    .await
    .unwrap();
}

/// Prometheus's `/api/v1/rules` groups.
async fn rule_groups(prom: &Prometheus) -> Option<Vec<Value>> {
    let body: Value = reqwest::get(format!("{}/api/v1/rules", prom.url))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    body["data"]["groups"].as_array().cloned()
}

/// The page and ticket alerts of every SLO listed, and every rule evaluated
/// without error.
async fn alert_problems(prom: &Prometheus, namespace: &str, slos: &[String]) -> Vec<String> {
    settle(Duration::from_secs(30), || async {
        let groups = rule_groups(prom).await.unwrap_or_default();
        let rules: Vec<&Value> = groups
            .iter()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        // Every rule, the chart's own alerts too, evaluates on Prometheus 3;
        // a group evaluated every few minutes (the budget's) may not have
        // run yet ("unknown"), but none may fail.
        let mut problems: Vec<String> = groups
            .iter()
            .flat_map(|g| {
                let slow = g["interval"].as_f64().is_some_and(|i| i > 60.0);
                g["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(move |r| r["health"] == "err" || (r["health"] != "ok" && !slow))
            })
            .map(|r| {
                format!(
                    "rule {} ({}) is {} in Prometheus: {}",
                    r["name"], r["labels"], r["health"], r["lastError"]
                )
            })
            .collect();
        for slo in slos {
            for alert in ["ErrorBudgetBurnPage", "ErrorBudgetBurnTicket"] {
                let of_slo: Vec<&&Value> = rules
                    .iter()
                    .filter(|r| r["type"] == "alerting" && r["name"] == alert)
                    .filter(|r| r["labels"]["slo"] == slo.as_str())
                    .filter(|r| r["labels"]["namespace"] == namespace)
                    .collect();
                if of_slo.is_empty() {
                    problems.push(format!(
                        "{slo}: no {alert} alert in Prometheus's /api/v1/rules"
                    ));
                }
            }
        }
        problems
    })
    .await
}

/// Polls `check` until it finds no problem or `timeout` passes, and returns
/// the problems it found last.
async fn settle<F, Fut>(timeout: Duration, mut check: F) -> Vec<String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let problems = check().await;
        if problems.is_empty() || Instant::now() >= deadline {
            return problems;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn get(url: &str) -> Result<String, String> {
    let r = reqwest::get(url).await.map_err(|e| format!("{url}: {e}"))?;
    let status = r.status();
    let text = r.text().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url} answered {status}"));
    }
    Ok(text)
}

/// A page's HTML and its JSON form.
async fn page(html_url: &str, json_url: &str) -> Result<(String, Value), String> {
    let (html, json) = tokio::join!(get(html_url), get(json_url));
    let value = serde_json::from_str(&json?).map_err(|e| format!("{json_url}: {e}"))?;
    Ok((html?, value))
}

/// The overview, in its JSON and its HTML: one row per SLO, every value present.
async fn overview_problems(base: &str, slos: &[String]) -> Vec<String> {
    let (html, list) = match page(&format!("{base}/"), &format!("{base}/api/v1/slos")).await {
        Ok(both) => both,
        Err(e) => return vec![e],
    };
    let mut problems: Vec<String> = list["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| format!("the dashboard warns: {w}"))
        .collect();
    let items = list["items"].as_array().cloned().unwrap_or_default();
    for slo in slos {
        match items.iter().find(|i| i["name"] == slo.as_str()) {
            Some(view) => problems.extend(view_problems(slo, view)),
            None => problems.push(format!("{slo}: not in /api/v1/slos")),
        }
    }
    problems.extend(table_problems(&html, slos));
    problems
}

/// The fields of one SLO's JSON view that are missing.
fn view_problems(slo: &str, v: &Value) -> Vec<String> {
    let mut missing = Vec::new();
    for q in ["p50", "p90", "p99"] {
        let l = v["latency"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["quantile"] == q));
        for what in ["observed", "target"] {
            if !l.is_some_and(|l| l[what].is_number()) {
                missing.push(format!("{q} {what}"));
            }
        }
    }
    for field in [
        "requestRate",
        "errorRate",
        "errorRateTarget",
        "errorBudgetRemaining",
        "burnRate",
        "cacheHitRate",
        "cacheHitTarget",
    ] {
        if !v[field].is_number() {
            missing.push(field.to_string());
        }
    }
    for field in ["replicas", "poolSize"] {
        if !v[field]["current"].is_number() || !v[field]["desired"].is_number() {
            missing.push(field.to_string());
        }
    }
    if !v["observedAt"].is_string() {
        missing.push("observedAt".into());
    }
    if v["decisions"].as_array().is_none_or(Vec::is_empty) {
        missing.push("last action (no decision)".into());
    }
    if v["state"] == "unknown" {
        missing.push("state (unknown)".into());
    }
    missing
        .into_iter()
        .map(|m| format!("{slo}: /api/v1/slos has no {m}"))
        .collect()
}

/// Every cell of the overview's table: no dash, no "no target", no "none yet".
fn table_problems(html: &str, slos: &[String]) -> Vec<String> {
    let Some(table) = between(html, "<table id=\"slos\">", "</table>") else {
        return vec!["/ has no table of SLOs".into()];
    };
    let head = between(table, "<thead>", "</thead>").unwrap_or_default();
    let columns: Vec<String> = elements(head, "th").iter().map(|c| text(c)).collect();
    let body = between(table, "<tbody>", "</tbody>").unwrap_or_default();
    let mut problems = Vec::new();
    let rows = elements(body, "tr");
    for slo in slos {
        let Some(row) = rows
            .iter()
            .find(|r| r.contains(&format!("</span>{slo}</a>")))
        else {
            problems.push(format!("{slo}: no row on /"));
            continue;
        };
        for (column, cell) in columns.iter().zip(elements(row, "td")) {
            let shown = text(cell);
            if let Some(why) = blank(&shown) {
                problems.push(format!("{slo}: / shows {column} as {shown:?} ({why})"));
            }
        }
    }
    problems
}

/// Why a shown value counts as empty, if it does.
fn blank(shown: &str) -> Option<&'static str> {
    if shown.trim().is_empty() {
        Some("blank")
    } else if shown.contains(MISSING) {
        Some("missing")
    } else if shown.contains("no target") {
        Some("no target")
    } else if shown.contains("none yet") {
        Some("nothing yet")
    } else if shown.contains("Unknown") {
        Some("unknown")
    } else {
        None
    }
}

/// One SLO's detail page: every figure, chart, table and condition; and the
/// history its JSON form carries.
async fn detail_problems(base: &str, namespace: &str, slo: &str) -> Vec<String> {
    let path = format!("/slos/{namespace}/{slo}");
    let (html, detail) = match page(&format!("{base}{path}"), &format!("{base}/api/v1{path}")).await
    {
        Ok(both) => both,
        Err(e) => return vec![e],
    };
    figure_problems(&html)
        .into_iter()
        .chain(chart_problems(&html))
        .chain(listing_problems(&html))
        .chain(history_problems(&detail))
        .map(|what| format!("{slo}: detail page {what}"))
        .collect()
}

/// The figures at the top of a detail page.
fn figure_problems(html: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if html.contains("signals read never") {
        problems.push("says the signals were never read".into());
    }
    let stats = between(html, "id=\"stats\">", "</dl>").unwrap_or_default();
    for (dt, dd) in elements(stats, "dt").iter().zip(elements(stats, "dd")) {
        let (label, shown) = (text(dt), text(dd));
        // A quantile read beyond P50/P90/P99 is shown as read, its target
        // absent because the SLO sets none, and the page says so.
        let unheld = !["P50", "P90", "P99"].contains(&label.as_str());
        if let Some(why) = blank(&shown).filter(|w| !(unheld && *w == "no target")) {
            problems.push(format!("shows {label} as {shown:?} ({why})"));
        }
    }
    problems
}

/// Each history chart draws each of its lines.
fn chart_problems(html: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(e) = between(html, "id=\"history-error\">", "</p>") {
        problems.push(format!("has no history: {}", text(e)));
    }
    for (chart, series) in [
        ("latency", &["p50", "p90", "p99"][..]),
        ("requests", &["rate"]),
        ("errors", &["errors"]),
        ("capacity", &["replicas", "pool"]),
        ("budget", &["budget"]),
    ] {
        let Some(figure) = between(html, &format!("id=\"chart-{chart}\""), "</figure>") else {
            problems.push(format!("has no {chart} chart"));
            continue;
        };
        for s in series {
            if !figure.contains(&format!("<polyline class=\"series {s}\"")) {
                problems.push(format!("draws no {s} line in the {chart} chart"));
            }
        }
    }
    problems
}

/// The conditions (each healthy), decisions and slowest traces are listed.
fn listing_problems(html: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (table, what) in [
        ("conditions", "conditions"),
        ("decisions", "decisions"),
        ("traces", "slowest traces"),
    ] {
        if !html.contains(&format!("<table id=\"{table}\">")) {
            problems.push(format!("lists no {what}"));
        }
    }
    let conditions = between(html, "<table id=\"conditions\">", "</table>").unwrap_or_default();
    // The first row is the header.
    for row in elements(conditions, "tr").iter().skip(1) {
        let cells: Vec<String> = elements(row, "td").iter().map(|c| text(c)).collect();
        let healthy = match cells.first().map(String::as_str) {
            // Breached is an answer; a bottleneck is reported, not a fault.
            Some("ObjectiveMet" | "Bottleneck") => true,
            _ => cells.get(1).is_some_and(|s| s == "True"),
        };
        if !healthy {
            problems.push(format!("shows condition {}", cells.join(" | ")));
        }
    }
    problems
}

/// The JSON form's history holds a point of every series.
fn history_problems(detail: &Value) -> Vec<String> {
    let points = detail["history"]["points"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    [
        "p50",
        "p90",
        "p99",
        "requestRate",
        "errorRate",
        "replicas",
        "poolSize",
        "budgetRemaining",
    ]
    .into_iter()
    .filter(|field| !points.iter().any(|p| p[*field].is_number()))
    .map(|field| format!("history has no {field} point"))
    .collect()
}

/// `kubectl get gslo`: the printer columns as the API server's Table form
/// gives them, every cell of every row filled.
async fn printer_column_problems(
    cp: &ControlPlane,
    namespace: &str,
    slos: &[String],
) -> Vec<String> {
    let request = axum::http::Request::get(format!(
        "/apis/governor.dev/v1alpha1/namespaces/{namespace}/servicelevelobjectives"
    ))
    .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
    .body(Vec::new())
    .unwrap();
    let table: Value =
        serde_json::from_str(&cp.client.request_text(request).await.unwrap()).unwrap();
    assert_eq!(table["kind"], "Table", "{table}");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default())
        .collect();
    let rows = table["rows"].as_array().cloned().unwrap_or_default();
    let mut problems = Vec::new();
    for slo in slos {
        let Some(row) = rows.iter().find(|r| r["cells"][0] == slo.as_str()) else {
            problems.push(format!("{slo}: no row in kubectl get gslo"));
            continue;
        };
        for (column, cell) in columns.iter().zip(row["cells"].as_array().unwrap()) {
            let empty = match cell {
                Value::Null => true,
                Value::String(s) => s.is_empty() || s == "<none>" || s == "Unknown",
                _ => false,
            };
            if empty {
                problems.push(format!("{slo}: kubectl get gslo shows {column} as {cell}"));
            }
        }
    }
    problems
}

/// The overview and one detail page in headless Chromium, saved for a person
/// to look at.
async fn screenshots(base: &str, namespace: &str) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("walkthrough");
    let shots = [
        (format!("{base}/"), dir.join("overview.png"), 900),
        (
            format!("{base}/slos/{namespace}/roadtrip-api"),
            dir.join("detail.png"),
            1800,
        ),
    ];
    tokio::task::spawn_blocking(move || {
        let browser = Chromium::new().unwrap();
        for (url, path, height) in shots {
            browser.screenshot(&url, &path, 1400, height).unwrap();
            println!("screenshot of {url}: {}", path.display());
        }
    })
    .await
    .unwrap();
}

/// The text between the first `start` and the next `end` after it.
fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let to = s[from..].find(end)? + from;
    Some(&s[from..to])
}

/// The inner HTML of each `<tag ...>...</tag>` in `html` (not nested in itself).
fn elements<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(&open) {
        let after = &rest[at + open.len()..];
        // `<th` must not match `<thead`.
        if !after.starts_with(['>', ' ']) {
            rest = after;
            continue;
        }
        let Some(body_at) = after.find('>') else {
            break;
        };
        let body = &after[body_at + 1..];
        let Some(end) = body.find(&close) else { break };
        out.push(&body[..end]);
        rest = &body[end + close.len()..];
    }
    out
}

/// Markup removed, the escapes the templates write undone, spaces collapsed.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&#x2f;", "/")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
