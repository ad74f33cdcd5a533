//! The Helm chart with the real helm and the real API server: lint and
//! template clean, values checked by the schema, the CRD and Governor's alerts
//! identical to the repository's, every container locked down, the values
//! users expect (image digest and pull secrets, name overrides, ServiceAccounts,
//! pod metadata and scheduling, extra flags, an Ingress, TLS and auth from
//! Secrets, labels on the generated rules) rendered as promised, every
//! rendered object accepted by a server-side dry run, and the CRD upgrade path
//! the README gives.

use governor_tests::{ControlPlane, repo_root, tools};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;

use crate::common::gate;
use crate::common::operator::prometheus_operator_crd;

fn helm(args: &[&str]) -> (bool, String, String) {
    tools::helm(args).unwrap()
}

fn chart() -> String {
    repo_root().join("charts/governor").display().to_string()
}

fn render(namespace: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let chart = chart();
    let mut args = vec![
        "template",
        "gov",
        chart.as_str(),
        "--namespace",
        namespace,
        "--include-crds",
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = helm(&args);
    assert!(ok, "{err}");
    out.split("\n---")
        .filter_map(|doc| serde_yaml_ng::from_str::<serde_json::Value>(doc).ok())
        .filter(|v| v.is_object())
        .collect()
}

#[test]
fn lint_template_schema_and_copies() {
    let (ok, out, err) = helm(&["lint", "--strict", &chart()]);
    assert!(ok, "{out}{err}");

    let all = render(
        "governor",
        &[
            "--set",
            "serviceMonitor.enabled=true",
            "--set",
            "prometheusRule.enabled=true",
        ],
    );
    let kinds: Vec<&str> = all.iter().filter_map(|o| o["kind"].as_str()).collect();
    for kind in [
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceMonitor",
        "PrometheusRule",
    ] {
        assert!(kinds.contains(&kind), "{kind} not rendered: {kinds:?}");
    }
    // Two operator replicas (leader election), locked-down containers with probes.
    for d in all.iter().filter(|o| o["kind"] == "Deployment") {
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        for c in pod["containers"].as_array().unwrap() {
            let sc = &c["securityContext"];
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{}", c["name"]);
            assert_eq!(sc["allowPrivilegeEscalation"], false);
            assert_eq!(sc["capabilities"]["drop"][0], "ALL");
            assert!(c["livenessProbe"].is_object() && c["readinessProbe"].is_object());
            assert!(c["resources"]["limits"].is_object());
        }
    }
    let operator = all
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "gov-operator")
        .unwrap();
    assert_eq!(operator["spec"]["replicas"], 2);
    // Leases only in the release namespace; no wildcard anywhere.
    let role = all.iter().find(|o| o["kind"] == "Role").unwrap();
    assert_eq!(role["metadata"]["namespace"], "governor");
    assert_eq!(role["rules"][0]["resources"][0], "leases");
    for r in all
        .iter()
        .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
    {
        let text = r["rules"].to_string();
        assert!(
            !text.contains("\"*\""),
            "a wildcard in {}",
            r["metadata"]["name"]
        );
    }
    // The CRD and the alerts are the repository's.
    let crd =
        std::fs::read_to_string(repo_root().join("crds/governor.dev_servicelevelobjectives.yaml"))
            .unwrap();
    let copy = std::fs::read_to_string(
        repo_root().join("charts/governor/crds/governor.dev_servicelevelobjectives.yaml"),
    )
    .unwrap();
    assert!(
        crd == copy,
        "charts/governor/crds differs from crds/: copy it again"
    );
    let alerts = std::fs::read_to_string(repo_root().join("alerts/governor.rules.yaml")).unwrap();
    let copy =
        std::fs::read_to_string(repo_root().join("charts/governor/files/governor.rules.yaml"))
            .unwrap();
    assert!(
        alerts == copy,
        "charts/governor/files/governor.rules.yaml differs from alerts/"
    );

    // The schema refuses what would break the operator, naming the value.
    let chart = chart();
    let (ok, _, err) = helm(&[
        "template",
        "gov",
        chart.as_str(),
        "--set",
        "prometheus.url=prometheus:9090",
    ]);
    assert!(!ok);
    assert!(
        err.contains("prometheus.url") || err.contains("/prometheus/url"),
        "{err}"
    );
    let (ok, _, err) = helm(&[
        "template",
        "gov",
        chart.as_str(),
        "--set",
        "operator.replicas=0",
    ]);
    assert!(!ok, "{err}");
    let (ok, _, err) = helm(&["template", "gov", chart.as_str(), "--set", "typo=1"]);
    assert!(!ok, "{err}");
    let (ok, _, err) = helm(&[
        "template",
        "gov",
        chart.as_str(),
        "--set",
        "operator.otlp.endpoint=collector:4318",
    ]);
    assert!(!ok);
    assert!(err.contains("otlp"), "{err}");

    // Traces are off unless an endpoint is set; then the operator gets it.
    let args = |objects: &[serde_json::Value]| -> Vec<String> {
        let operator = objects
            .iter()
            .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "gov-operator")
            .unwrap();
        operator["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    };
    let plain = args(&render("governor", &[]));
    assert!(plain.iter().all(|a| !a.starts_with("--otlp")), "{plain:?}");
    assert!(plain.contains(&"--concurrency=32".to_string()), "{plain:?}");
    for flag in [
        "--max-response-bytes=16MiB",
        "--max-split-queries=256",
        "--warm-up-workers=4",
        "--warm-up-queue=64",
    ] {
        assert!(plain.contains(&flag.to_string()), "{flag} not in {plain:?}");
    }
    let tuned = args(&render(
        "governor",
        &[
            "--set",
            "operator.maxResponseBytes=64MiB",
            "--set",
            "operator.warmUp.workers=8",
        ],
    ));
    assert!(
        tuned.contains(&"--max-response-bytes=64MiB".to_string())
            && tuned.contains(&"--warm-up-workers=8".to_string()),
        "{tuned:?}"
    );
    let traced = args(&render(
        "governor",
        &["--set", "operator.otlp.endpoint=http://collector:4318"],
    ));
    assert!(
        traced.contains(&"--otlp-endpoint=http://collector:4318".to_string())
            && traced.contains(&"--otlp-service-name=governor-operator".to_string()),
        "{traced:?}"
    );
}

fn find<'a>(objects: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn container<'a>(deployment: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn args_of(c: &serde_json::Value) -> Vec<String> {
    c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// watchNamespaces: a Role and a RoleBinding per listed namespace with the
/// ClusterRole's rules, no cluster-wide grant, and `--namespace` for each.
#[test]
fn watch_namespaces_grants_roles_in_those_namespaces_only() {
    let cluster = render("governor", &[]);
    let scoped = render("governor", &["--set", "watchNamespaces={team-a,team-b}"]);
    for component in ["operator", "dashboard"] {
        let name = format!("gov-{component}");
        let cluster_rules = &find(&cluster, "ClusterRole", &name)["rules"];
        assert!(
            !scoped.iter().any(
                |o| o["kind"].as_str().is_some_and(|k| k.starts_with("Cluster"))
                    && o["metadata"]["name"] == name.as_str()
            ),
            "{name} is still cluster-wide"
        );
        for ns in ["team-a", "team-b"] {
            let role = scoped
                .iter()
                .find(|o| {
                    o["kind"] == "Role"
                        && o["metadata"]["name"] == name.as_str()
                        && o["metadata"]["namespace"] == ns
                })
                .unwrap_or_else(|| panic!("no Role {name} in {ns}"));
            assert_eq!(&role["rules"], cluster_rules, "{name} in {ns}");
            let binding = scoped
                .iter()
                .find(|o| {
                    o["kind"] == "RoleBinding"
                        && o["metadata"]["name"] == name.as_str()
                        && o["metadata"]["namespace"] == ns
                })
                .unwrap_or_else(|| panic!("no RoleBinding {name} in {ns}"));
            assert_eq!(binding["subjects"][0]["namespace"], "governor");
            assert_eq!(binding["roleRef"]["kind"], "Role");
        }
        let deployment = find(&scoped, "Deployment", &name);
        let args = args_of(container(deployment, component));
        for ns in ["team-a", "team-b"] {
            assert!(
                args.contains(&format!("--namespace={ns}")),
                "{component}: {args:?}"
            );
        }
    }
    let (ok, _, err) = helm(&[
        "template",
        "gov",
        &chart(),
        "--set",
        "watchNamespaces={Not_A_Namespace}",
    ]);
    assert!(!ok && err.contains("watchNamespaces"), "{err}");
}

const PROXY: &[&str] = &[
    "--set",
    "dashboard.authProxy.enabled=true",
    "--set",
    "dashboard.authProxy.existingSecret=dashboard-oauth",
    "--set",
    "dashboard.authProxy.emailDomains={example.com}",
    "--set",
    "dashboard.authProxy.oidcIssuerUrl=https://login.example.com",
    "--set",
    "dashboard.url=https://governor.example.com/",
];

/// Who may reach the dashboard: by default only its own namespace, else the
/// listed namespaces (and pods); the operator's metrics policy no longer
/// opens the dashboard's port. The server's bounds become flags.
#[test]
fn the_dashboard_network_policy_admits_only_the_listed_namespaces() {
    let plain = render("governor", &[]);
    let policy = find(&plain, "NetworkPolicy", "gov-dashboard");
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "dashboard"
    );
    let rule = &policy["spec"]["ingress"][0];
    assert_eq!(
        rule["ports"],
        serde_json::json!([{"port": 8080, "protocol": "TCP"}])
    );
    // A bare podSelector: pods of the release's namespace only.
    assert_eq!(rule["from"], serde_json::json!([{"podSelector": {}}]));
    assert_eq!(policy["spec"]["ingress"].as_array().unwrap().len(), 1);
    let operator = find(&plain, "NetworkPolicy", "gov-operator");
    assert_eq!(
        operator["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "operator"
    );
    assert_eq!(
        operator["spec"]["ingress"][0]["ports"],
        serde_json::json!([{"port": 9090, "protocol": "TCP"}])
    );
    let dashboard = container(find(&plain, "Deployment", "gov-dashboard"), "dashboard");
    let args = args_of(dashboard);
    for flag in [
        "--listen=0.0.0.0:8080",
        "--header-read-timeout=10s",
        "--request-timeout=30s",
        "--max-connections=512",
        "--shutdown-timeout=10s",
    ] {
        assert!(args.contains(&flag.to_string()), "{flag} not in {args:?}");
    }

    let listed = render(
        "governor",
        &[
            "--set",
            "dashboard.networkPolicy.allowedNamespaces={ingress-nginx,monitoring}",
            "--set",
            "dashboard.networkPolicy.allowedPodLabels.app\\.kubernetes\\.io/name=ingress-nginx",
            "--set",
            "dashboard.server.maxConnections=100",
        ],
    );
    let policy = find(&listed, "NetworkPolicy", "gov-dashboard");
    assert_eq!(
        policy["spec"]["ingress"][0]["from"],
        serde_json::json!([{
            "namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name",
                "operator": "In",
                "values": ["ingress-nginx", "monitoring"],
            }]},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}},
        }])
    );
    let args = args_of(container(
        find(&listed, "Deployment", "gov-dashboard"),
        "dashboard",
    ));
    assert!(
        args.contains(&"--max-connections=100".to_string()),
        "{args:?}"
    );

    // Namespace names are checked by the schema.
    let chart = chart();
    let (ok, _, err) = helm(&[
        "template",
        "gov",
        chart.as_str(),
        "--set",
        "dashboard.networkPolicy.allowedNamespaces={Not_A_Namespace}",
    ]);
    assert!(!ok);
    assert!(err.contains("allowedNamespaces"), "{err}");
}

/// Behind the auth proxy the dashboard listens on loopback only, and the
/// Service, the probes and the NetworkPolicy go to the proxy.
#[test]
fn the_auth_proxy_fronts_a_dashboard_bound_to_loopback() {
    let mut extra = PROXY.to_vec();
    extra.extend([
        "--set",
        "dashboard.networkPolicy.allowedNamespaces={ingress-nginx}",
    ]);
    let objects = render("governor", &extra);
    let deployment = find(&objects, "Deployment", "gov-dashboard");
    let dashboard = container(deployment, "dashboard");
    let args = args_of(dashboard);
    assert!(
        args.contains(&"--listen=127.0.0.1:8080".to_string()),
        "{args:?}"
    );
    assert!(!args.iter().any(|a| a.contains("0.0.0.0")), "{args:?}");
    assert!(dashboard["ports"].is_null(), "{}", dashboard["ports"]);
    // Probes reach the dashboard through the proxy, which skips the login for them.
    assert_eq!(dashboard["readinessProbe"]["httpGet"]["port"], 4180);
    assert_eq!(dashboard["livenessProbe"]["httpGet"]["port"], 4180);
    let proxy = container(deployment, "auth-proxy");
    let proxy_args = args_of(proxy);
    for flag in [
        "--http-address=0.0.0.0:4180",
        "--upstream=http://127.0.0.1:8080/",
        "--provider=oidc",
        "--oidc-issuer-url=https://login.example.com",
        "--email-domain=example.com",
        "--redirect-url=https://governor.example.com/oauth2/callback",
        "--skip-auth-route=GET=^/(healthz|readyz|metrics)$",
    ] {
        assert!(
            proxy_args.contains(&flag.to_string()),
            "{flag} not in {proxy_args:?}"
        );
    }
    assert_eq!(
        proxy["envFrom"][0]["secretRef"]["name"], "dashboard-oauth",
        "{}",
        proxy["envFrom"]
    );
    assert_eq!(proxy["ports"][0]["containerPort"], 4180);
    assert_eq!(proxy["securityContext"]["readOnlyRootFilesystem"], true);
    let service = find(&objects, "Service", "gov-dashboard");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "proxy");
    let policy = find(&objects, "NetworkPolicy", "gov-dashboard");
    assert_eq!(
        policy["spec"]["ingress"][0]["ports"],
        serde_json::json!([{"port": 4180, "protocol": "TCP"}])
    );
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"],
        serde_json::json!(["ingress-nginx"])
    );

    // Without the Secret or the allowed domains, the chart refuses, naming the value.
    let chart = chart();
    for (missing, value) in [
        ("dashboard.authProxy.existingSecret=", "existingSecret"),
        ("dashboard.authProxy.emailDomains=null", "emailDomains"),
    ] {
        let mut args = vec!["template", "gov", chart.as_str()];
        args.extend_from_slice(PROXY);
        args.extend(["--set", missing]);
        let (ok, _, err) = helm(&args);
        assert!(!ok, "rendered without {value}");
        assert!(err.contains(value), "{err}");
    }
}

/// The operator refuses an OTLP endpoint it cannot use, naming the flag.
#[test]
fn a_bad_otlp_endpoint_is_refused_by_name() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_governor"))
        .args([
            "operator",
            "--prometheus",
            "http://127.0.0.1:9",
            "--otlp-endpoint",
            "collector:4318",
        ])
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--otlp-endpoint") && err.contains("collector:4318"),
        "{err}"
    );
}

fn resource(v: &serde_json::Value) -> (ApiResource, bool) {
    let api_version = v["apiVersion"].as_str().unwrap();
    let kind = v["kind"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let plural = match kind {
        "NetworkPolicy" => "networkpolicies".to_string(),
        "Ingress" => "ingresses".to_string(),
        "PodDisruptionBudget" => "poddisruptionbudgets".to_string(),
        k => format!("{}s", k.to_lowercase()),
    };
    let namespaced = !matches!(
        kind,
        "ClusterRole" | "ClusterRoleBinding" | "CustomResourceDefinition"
    );
    (ApiResource::from_gvk_with_plural(&gvk, &plural), namespaced)
}

#[tokio::test]
async fn every_rendered_object_passes_a_server_side_dry_run() {
    let _slot = gate::heavy().await;
    let cp = ControlPlane::start().await.unwrap();
    // prometheus-operator's CRDs, reduced to what the API server needs.
    for kind in ["ServiceMonitor", "PrometheusRule"] {
        let crd = prometheus_operator_crd(kind);
        let (ar, _) = resource(&crd);
        let api: Api<DynamicObject> = Api::all_with(cp.client.clone(), &ar);
        api.patch(
            crd["metadata"]["name"].as_str().unwrap(),
            &PatchParams::apply("governor-tests"),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
    }
    cp.install_crds().await.unwrap();
    let ns = cp.temp_namespace("chart").await.unwrap();
    // Wait until the monitoring kinds are served.
    governor_tests::wait_until(
        "prometheus-operator kinds",
        std::time::Duration::from_secs(30),
        || async {
            let r = cp
                .client
                .list_api_group_resources("monitoring.coreos.com/v1")
                .await
                .ok()?;
            (r.resources.len() >= 2).then_some(())
        },
    )
    .await
    .unwrap();
    let objects = render(
        &ns.name,
        &[
            "--set",
            "serviceMonitor.enabled=true",
            "--set",
            "prometheusRule.enabled=true",
        ],
    );
    let mut with_proxy = PROXY.to_vec();
    with_proxy.extend([
        "--set",
        "dashboard.networkPolicy.allowedNamespaces={ingress-nginx,monitoring}",
        "--set",
        "dashboard.networkPolicy.allowedPodLabels.app=oauth",
    ]);
    let proxied = render(&ns.name, &with_proxy);
    let proxied = proxied.iter().filter(|o| {
        o["kind"] == "Deployment" || o["kind"] == "Service" || o["kind"] == "NetworkPolicy"
    });
    // Every conventional value set (other object names: fullnameOverride).
    let (_dir, values) = conventional_values();
    let conventional = render(&ns.name, &["-f", &values]);
    assert!(conventional.iter().any(|o| o["kind"] == "Ingress"));
    let mut checked = 0;
    for v in objects.iter().chain(proxied).chain(conventional.iter()) {
        let (ar, namespaced) = resource(v);
        let api: Api<DynamicObject> = if namespaced {
            Api::namespaced_with(cp.client.clone(), &ns.name, &ar)
        } else {
            Api::all_with(cp.client.clone(), &ar)
        };
        let name = v["metadata"]["name"].as_str().unwrap();
        let params = PatchParams::apply("governor-tests").dry_run();
        api.patch(name, &params, &Patch::Apply(v))
            .await
            .unwrap_or_else(|e| panic!("{} {name} refused by the API server: {e}", v["kind"]));
        checked += 1;
    }
    println!("{checked} rendered objects accepted by a server-side dry run");
    assert!(checked >= 30, "{checked}");
}

/// Values a production install sets: every convention of item 6 at once.
const CONVENTIONAL: &str = r#"
imagePullSecrets: [{name: regcred}]
image:
  tag: "9.9.9"
  digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
nameOverride: slo-autopilot-app
fullnameOverride: slo-autopilot
prometheus:
  url: https://mimir.monitoring:8080/prometheus
  tls:
    caSecret: {name: monitoring-ca}
    certSecret: {name: governor-client, certKey: client.crt, keyKey: client.key}
  auth:
    basicAuth: {user: governor, passwordSecret: {name: mimir-basic, key: pw}}
  headers: {X-Scope-OrgID: tenant-a}
jaeger:
  url: https://jaeger-query.tracing:16686
  tls: {caSecret: {name: monitoring-ca}, insecureSkipVerify: true}
  auth: {bearerTokenSecret: {name: jaeger-token}}
sloRules:
  labels: {release: kube-prometheus-stack}
  annotations: {example.com/owner: "sre: on call"}
operator:
  serviceAccount: {create: false, name: governor-irsa}
  podAnnotations: {example.com/checksum: abc}
  podLabels: {team: sre}
  priorityClassName: system-cluster-critical
  extraArgs: ["--warm-up-workers=8"]
  extraEnv: [{name: RUST_BACKTRACE, value: "1"}]
dashboard:
  serviceAccount:
    annotations: {eks.amazonaws.com/role-arn: "arn:aws:iam::111122223333:role/governor-dashboard"}
  podLabels: {team: sre}
  extraArgs: ["--refresh=30s"]
  extraEnv: [{name: TZ, value: UTC}]
  ingress:
    enabled: true
    className: nginx
    annotations: {nginx.ingress.kubernetes.io/auth-url: "https://auth.example.com/oauth2/auth"}
    hosts: [{host: governor.example.com}]
    tls: [{secretName: governor-tls, hosts: [governor.example.com]}]
"#;

/// CONVENTIONAL in a values file (keep the directory alive while rendering).
fn conventional_values() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("values.yaml");
    std::fs::write(&path, CONVENTIONAL).unwrap();
    let path = path.display().to_string();
    (dir, path)
}

fn env_of(c: &serde_json::Value) -> Vec<(String, String)> {
    c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["value"].is_string())
        .map(|e| {
            let value = e["value"].as_str().unwrap().to_string();
            (e["name"].as_str().unwrap().to_string(), value)
        })
        .collect()
}

/// The Secret volume and the key in it behind the file `path` of container
/// `c` in `deployment`: (secretName, key, readOnly).
fn secret_behind(
    deployment: &serde_json::Value,
    c: &serde_json::Value,
    path: &str,
) -> (String, String, bool) {
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            path.strip_prefix(m["mountPath"].as_str().unwrap())
                .is_some_and(|rest| rest.starts_with('/'))
        })
        .unwrap_or_else(|| panic!("nothing mounted at {path}"));
    let file = path.rsplit('/').next().unwrap();
    let volume = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    let secret = &volume["secret"];
    let item = secret["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["path"] == file)
        .unwrap_or_else(|| panic!("{file} not in {secret}"));
    assert!(
        mount["subPath"].is_null(),
        "a subPath never sees a rotated Secret"
    );
    (
        secret["secretName"].as_str().unwrap().to_string(),
        item["key"].as_str().unwrap().to_string(),
        mount["readOnly"] == true,
    )
}

/// The conventions users expect of a chart, rendered: the image by digest
/// with pull secrets, the name overrides, ServiceAccounts (an existing one for
/// the operator, an annotated one for the dashboard) consistent with every
/// binding, pod metadata, priority, the operator's replicas kept apart, extra
/// flags and variables, the Ingress, TLS and auth from Secrets for both
/// components, and the rules labels as operator flags.
#[test]
fn conventional_values_render_as_users_expect() {
    let (_dir, values) = conventional_values();
    let (ok, out, err) = helm(&["lint", "--strict", &chart(), "-f", &values]);
    assert!(ok, "{out}{err}");
    let all = render("governor", &["-f", &values]);
    for o in &all {
        let name = o["metadata"]["name"].as_str().unwrap();
        if o["kind"] != "CustomResourceDefinition" {
            assert!(name.starts_with("slo-autopilot"), "{} {name}", o["kind"]);
        }
        if o["metadata"]["labels"].is_object() {
            assert_eq!(
                o["metadata"]["labels"]["app.kubernetes.io/name"], "slo-autopilot-app",
                "{name}"
            );
        }
    }
    let operator = find(&all, "Deployment", "slo-autopilot-operator");
    let dashboard = find(&all, "Deployment", "slo-autopilot-dashboard");
    let digest = "ghcr.io/governor-dev/governor@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    for (d, component) in [(operator, "operator"), (dashboard, "dashboard")] {
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(
            container(d, component)["image"],
            digest,
            "the digest wins over the tag"
        );
        assert_eq!(
            pod["imagePullSecrets"],
            serde_json::json!([{"name": "regcred"}])
        );
        let labels = &d["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["team"], "sre");
        // The selector still matches the pods.
        for (k, v) in d["spec"]["selector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(&labels[k], v, "{component}: selector label {k}");
        }
    }
    let args = args_of(container(operator, "operator"));
    assert!(
        args.contains(&"--lease-name=slo-autopilot-operator".to_string()),
        "{args:?}"
    );

    // ServiceAccounts: the operator runs as an existing one (none rendered);
    // the dashboard's is created with its cloud-IAM annotation; every binding
    // names the account its component runs as.
    let accounts: Vec<&str> = all
        .iter()
        .filter(|o| o["kind"] == "ServiceAccount")
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(accounts, ["slo-autopilot-dashboard"]);
    let sa = find(&all, "ServiceAccount", "slo-autopilot-dashboard");
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::111122223333:role/governor-dashboard"
    );
    assert_eq!(
        operator["spec"]["template"]["spec"]["serviceAccountName"],
        "governor-irsa"
    );
    assert_eq!(
        dashboard["spec"]["template"]["spec"]["serviceAccountName"],
        "slo-autopilot-dashboard"
    );
    for (binding, account) in [
        ("slo-autopilot-operator", "governor-irsa"),
        ("slo-autopilot-leader-election", "governor-irsa"),
        ("slo-autopilot-dashboard", "slo-autopilot-dashboard"),
    ] {
        let b = all
            .iter()
            .find(|o| {
                o["kind"]
                    .as_str()
                    .is_some_and(|k| k.ends_with("RoleBinding"))
                    && o["metadata"]["name"] == binding
            })
            .unwrap_or_else(|| panic!("no binding {binding}"));
        assert_eq!(
            b["subjects"],
            serde_json::json!([{"kind": "ServiceAccount", "name": account, "namespace": "governor"}]),
            "{binding}"
        );
    }

    // Pod metadata, priority, and the default spread of the operator's replicas.
    let pod = &operator["spec"]["template"];
    assert_eq!(
        pod["metadata"]["annotations"]["example.com/checksum"],
        "abc"
    );
    assert_eq!(pod["spec"]["priorityClassName"], "system-cluster-critical");
    let term = &pod["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        [0];
    assert_eq!(
        term["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert_eq!(
        term["podAffinityTerm"]["labelSelector"]["matchLabels"],
        operator["spec"]["selector"]["matchLabels"]
    );

    // Extra flags and variables come after the chart's own.
    assert_eq!(args.last().unwrap(), "--warm-up-workers=8");
    assert_eq!(
        args_of(container(dashboard, "dashboard")).last().unwrap(),
        "--refresh=30s"
    );
    let operator_env = env_of(container(operator, "operator"));
    assert_eq!(
        operator_env.last().unwrap(),
        &("RUST_BACKTRACE".into(), "1".into())
    );
    let dashboard_env = env_of(container(dashboard, "dashboard"));
    assert_eq!(dashboard_env.last().unwrap(), &("TZ".into(), "UTC".into()));

    // The rules labels and annotations reach the operator as flags.
    for flag in [
        "--rules-label=release=kube-prometheus-stack",
        "--rules-annotation=example.com/owner=sre: on call",
    ] {
        assert!(args.contains(&flag.to_string()), "{flag} not in {args:?}");
    }

    // TLS and auth: the same variables in both components, each file backed by
    // its Secret's key, mounted read-only.
    for (d, component) in [(operator, "operator"), (dashboard, "dashboard")] {
        let c = container(d, component);
        let env: std::collections::BTreeMap<String, String> = env_of(c).into_iter().collect();
        for (var, secret, key) in [
            ("GOVERNOR_PROMETHEUS_CA_FILE", "monitoring-ca", "ca.crt"),
            (
                "GOVERNOR_PROMETHEUS_CERT_FILE",
                "governor-client",
                "client.crt",
            ),
            (
                "GOVERNOR_PROMETHEUS_KEY_FILE",
                "governor-client",
                "client.key",
            ),
            (
                "GOVERNOR_PROMETHEUS_BASIC_AUTH_PASSWORD_FILE",
                "mimir-basic",
                "pw",
            ),
            ("GOVERNOR_JAEGER_CA_FILE", "monitoring-ca", "ca.crt"),
            ("GOVERNOR_JAEGER_BEARER_TOKEN_FILE", "jaeger-token", "token"),
        ] {
            let path = env
                .get(var)
                .unwrap_or_else(|| panic!("{component}: no {var}"));
            let (name, k, read_only) = secret_behind(d, c, path);
            assert_eq!(
                (name.as_str(), k.as_str(), read_only),
                (secret, key, true),
                "{component} {var}"
            );
        }
        assert_eq!(env["GOVERNOR_PROMETHEUS_BASIC_AUTH_USER"], "governor");
        assert_eq!(env["GOVERNOR_PROMETHEUS_HEADERS"], "X-Scope-OrgID=tenant-a");
        assert_eq!(env["GOVERNOR_JAEGER_INSECURE_SKIP_VERIFY"], "true");
        for unset in [
            "GOVERNOR_PROMETHEUS_INSECURE_SKIP_VERIFY",
            "GOVERNOR_PROMETHEUS_BEARER_TOKEN_FILE",
            "GOVERNOR_JAEGER_CERT_FILE",
            "GOVERNOR_JAEGER_BASIC_AUTH_USER",
            "GOVERNOR_JAEGER_HEADERS",
        ] {
            assert!(!env.contains_key(unset), "{component}: {unset} set");
        }
        assert!(env.values().all(|v| !v.is_empty()), "{component}: {env:?}");
        let args = args_of(c);
        assert!(
            args.contains(&"--prometheus=https://mimir.monitoring:8080/prometheus".to_string())
        );
        assert!(args.contains(&"--jaeger=https://jaeger-query.tracing:16686".to_string()));
    }

    // The Ingress reaches the dashboard's Service by a port it has.
    let ingress = find(&all, "Ingress", "slo-autopilot-dashboard");
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-url"],
        "https://auth.example.com/oauth2/auth"
    );
    assert_eq!(
        ingress["spec"]["tls"],
        serde_json::json!([{"secretName": "governor-tls", "hosts": ["governor.example.com"]}])
    );
    let rule = &ingress["spec"]["rules"][0];
    assert_eq!(rule["host"], "governor.example.com");
    let path = &rule["http"]["paths"][0];
    assert_eq!(
        (path["path"].as_str(), path["pathType"].as_str()),
        (Some("/"), Some("Prefix"))
    );
    let backend = &path["backend"]["service"];
    let service = find(&all, "Service", backend["name"].as_str().unwrap());
    assert!(
        service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == backend["port"]["name"]),
        "{backend}"
    );
}

/// Unset values set nothing: no Ingress, no GOVERNOR_* variable, no Secret
/// volume; and the operator's anti-affinity can be hardened, dropped or replaced.
#[test]
fn defaults_set_nothing_and_the_spread_is_overridable() {
    let plain = render("governor", &[]);
    assert!(!plain.iter().any(|o| o["kind"] == "Ingress"));
    for component in ["operator", "dashboard"] {
        let d = find(&plain, "Deployment", &format!("gov-{component}"));
        let c = container(d, component);
        let env = env_of(c);
        assert!(
            env.iter().all(|(name, _)| !name.starts_with("GOVERNOR_")),
            "{component}: {env:?}"
        );
        assert!(
            c["volumeMounts"].is_null(),
            "{component}: {}",
            c["volumeMounts"]
        );
        assert_eq!(c["image"], "ghcr.io/governor-dev/governor:0.1.0");
        assert!(d["spec"]["template"]["spec"]["imagePullSecrets"].is_null());
        assert!(
            args_of(c).iter().all(|a| !a.starts_with("--rules-")),
            "{component}"
        );
    }
    let spread = |extra: &[&str]| -> serde_json::Value {
        let all = render("governor", extra);
        find(&all, "Deployment", "gov-operator")["spec"]["template"]["spec"]["affinity"].clone()
    };
    assert!(
        spread(&[])["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            .is_array()
    );
    let hard = spread(&["--set", "operator.podAntiAffinity=hard"]);
    assert_eq!(
        hard["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert!(spread(&["--set", "operator.podAntiAffinity=none"]).is_null());
    let own = spread(&[
        "--set",
        "operator.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=pool",
        "--set",
        "operator.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
    ]);
    assert!(
        own["podAntiAffinity"].is_null() && own["nodeAffinity"].is_object(),
        "{own}"
    );
    // The tag, when no digest: the chart's appVersion by default, else the tag.
    let tagged = render("governor", &["--set", "image.tag=1.2.3"]);
    assert_eq!(
        container(find(&tagged, "Deployment", "gov-operator"), "operator")["image"],
        "ghcr.io/governor-dev/governor:1.2.3"
    );
}

/// The schema refuses a wrong type or shape for every new value, naming it;
/// the templates refuse combinations that cannot work, naming the value.
#[test]
fn new_values_are_checked_by_name() {
    let chart = chart();
    let refused = |set: &[&str], named: &str| {
        let mut args = vec!["template", "gov", chart.as_str()];
        for s in set {
            args.extend(["--set", s]);
        }
        let (ok, _, err) = helm(&args);
        assert!(!ok, "{set:?} rendered");
        assert!(err.contains(named), "{set:?}: {err}");
    };
    // The schema: wrong types and shapes.
    refused(&["imagePullSecrets[0]=regcred"], "/imagePullSecrets/0");
    refused(&["image.digest=sha256:abc"], "/image/digest");
    refused(&["image.digest=latest"], "/image/digest");
    refused(&["fullnameOverride=Not_A_Name"], "/fullnameOverride");
    refused(&["nameOverride=1"], "/nameOverride");
    refused(
        &["operator.serviceAccount.create=yes"],
        "/operator/serviceAccount/create",
    );
    refused(
        &["dashboard.serviceAccount.annotations.a=1"],
        "/dashboard/serviceAccount/annotations/a",
    );
    refused(&["operator.podLabels.team=a b"], "/operator/podLabels/team");
    refused(
        &["operator.maxResponseBytes=lots"],
        "/operator/maxResponseBytes",
    );
    refused(&["operator.warmUp.workers=0"], "/operator/warmUp/workers");
    refused(
        &["operator.podAnnotations.a=true"],
        "/operator/podAnnotations/a",
    );
    refused(
        &["operator.priorityClassName=1"],
        "/operator/priorityClassName",
    );
    refused(
        &["operator.podAntiAffinity=sometimes"],
        "/operator/podAntiAffinity",
    );
    refused(&["operator.extraArgs=--x"], "/operator/extraArgs");
    refused(&["dashboard.extraEnv[0].value=x"], "/dashboard/extraEnv/0");
    refused(
        &["dashboard.ingress.enabled=1"],
        "/dashboard/ingress/enabled",
    );
    refused(
        &["dashboard.ingress.hosts[0].host=Bad_Host"],
        "/dashboard/ingress/hosts/0/host",
    );
    refused(
        &["dashboard.ingress.hosts[0].paths[0].path=relative"],
        "/dashboard/ingress/hosts/0/paths/0/path",
    );
    refused(&["prometheus.url=ftp://prometheus"], "/prometheus/url");
    refused(
        &["prometheus.tls.insecureSkipVerify=yes"],
        "/prometheus/tls/insecureSkipVerify",
    );
    refused(
        &["prometheus.tls.caSecret.name=Bad_Name"],
        "/prometheus/tls/caSecret/name",
    );
    refused(
        &["jaeger.auth.bearerTokenFile=token"],
        "/jaeger/auth/bearerTokenFile",
    );
    refused(
        &["prometheus.headers.X-Scope-OrgID=a\\,b"],
        "/prometheus/headers/X-Scope-OrgID",
    );
    // (helm's validator names the property, under a wrong path.)
    refused(
        &["prometheus.headers.Bad Header=a"],
        "invalid propertyName 'Bad Header'",
    );
    refused(
        &["sloRules.labels.bad key=a"],
        "invalid propertyName 'bad key'",
    );
    refused(
        &["sloRules.labels.release=true"],
        "/sloRules/labels/release",
    );
    refused(&["sloRules.labels.release=a b"], "/sloRules/labels/release");
    refused(
        &["sloRules.annotations.note=1"],
        "/sloRules/annotations/note",
    );
    // The templates: what the schema cannot see.
    refused(
        &["operator.serviceAccount.create=false"],
        "operator.serviceAccount.name is required",
    );
    refused(
        &["dashboard.serviceAccount.create=false"],
        "dashboard.serviceAccount.name is required",
    );
    refused(
        &[
            "prometheus.auth.bearerTokenSecret.name=t",
            "prometheus.auth.bearerTokenFile=/t",
        ],
        "prometheus.auth: set bearerTokenSecret or bearerTokenFile",
    );
    refused(
        &[
            "prometheus.auth.bearerTokenFile=/t",
            "prometheus.auth.basicAuth.user=u",
            "prometheus.auth.basicAuth.passwordSecret.name=p",
        ],
        "prometheus.auth: a bearer token and basic auth",
    );
    refused(
        &["prometheus.auth.basicAuth.user=u"],
        "prometheus.auth.basicAuth.passwordSecret.name is required",
    );
    refused(
        &[
            "jaeger.url=http://j:16686",
            "jaeger.auth.basicAuth.passwordSecret.name=p",
        ],
        "jaeger.auth.basicAuth.user is required",
    );
    refused(
        &["dashboard.ingress.enabled=true"],
        "dashboard.ingress.hosts is required",
    );
    refused(
        &["operator.podLabels.app\\.kubernetes\\.io/instance=x"],
        "operator.podLabels: app.kubernetes.io/instance",
    );
    refused(
        &["sloRules.labels.governor\\.dev/slo=x"],
        "sloRules.labels: governor.dev/slo",
    );
    refused(
        &["sloRules.labels.app\\.kubernetes\\.io/managed-by=x"],
        "sloRules.labels: app.kubernetes.io/managed-by",
    );
}

/// The upgrade path the README gives: Helm created the CRD on the first
/// install and never changes it; until the new CRD is applied server-side,
/// a status field the old schema lacks is dropped on every write; after
/// `kubectl apply --server-side --force-conflicts -f charts/governor/crds/`
/// (the same request, field manager kubectl) it is kept, and the SLOs stay.
#[tokio::test]
async fn the_crd_upgrade_path_keeps_slos_and_new_fields() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let _slot = gate::heavy().await;
    let cp = ControlPlane::start().await.unwrap();
    let text = std::fs::read_to_string(
        repo_root().join("charts/governor/crds/governor.dev_servicelevelobjectives.yaml"),
    )
    .unwrap();
    let new: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    // An older release's CRD: no errorBudgetRemaining in status, a printer
    // column worded differently.
    let mut old = new.clone();
    let version = &mut old["spec"]["versions"][0];
    version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
        .as_object_mut()
        .unwrap()
        .remove("errorBudgetRemaining")
        .expect("the status schema has errorBudgetRemaining");
    version["additionalPrinterColumns"][0]["description"] = "P99 latency".into();
    let crds: Api<CustomResourceDefinition> = Api::all(cp.client.clone());
    let old: CustomResourceDefinition = serde_json::from_value(old).unwrap();
    // As `helm install` creates what crds/ holds.
    let pp = kube::api::PostParams {
        field_manager: Some("helm".into()),
        ..Default::default()
    };
    crds.create(&pp, &old).await.unwrap();
    let name = new["metadata"]["name"].as_str().unwrap().to_string();
    let established = |crds: Api<CustomResourceDefinition>, name: String| async move {
        let crd = crds.get(&name).await.ok()?;
        crd.status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    };
    governor_tests::wait_until("the old CRD", std::time::Duration::from_secs(30), || {
        established(crds.clone(), name.clone())
    })
    .await
    .unwrap();

    let ns = cp.temp_namespace("upgrade").await.unwrap();
    let slos: Api<governor_crds::ServiceLevelObjective> =
        Api::namespaced(cp.client.clone(), &ns.name);
    crate::common::operator::apply_api_example(&cp.client, &ns.name).await;
    let status =
        serde_json::json!({"status": {"objectiveState": "Met", "errorBudgetRemaining": 0.5}});
    let budget = |slos: Api<governor_crds::ServiceLevelObjective>| {
        let status = status.clone();
        async move {
            slos.patch_status(
                "roadtrip-api",
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await
            .unwrap();
            let raw: Api<DynamicObject> = Api::namespaced_with(
                slos.clone().into_client(),
                slos.namespace().unwrap_or_default(),
                &ApiResource::erase::<governor_crds::ServiceLevelObjective>(&()),
            );
            let got = raw.get("roadtrip-api").await.unwrap();
            (
                got.data["status"]["objectiveState"].clone(),
                got.data["status"]["errorBudgetRemaining"].clone(),
            )
        }
    };
    // Upgrade skipped: the field the old schema lacks is pruned on write.
    let (state, remaining) = budget(slos.clone()).await;
    assert_eq!(state, "Met");
    assert!(remaining.is_null(), "kept by the old schema: {remaining}");

    // The documented step, as kubectl sends it: a server-side apply of the new
    // CRD. Without --force-conflicts it conflicts with the fields Helm owns.
    let new: CustomResourceDefinition = serde_json::from_value(new).unwrap();
    let unforced = crds
        .patch(&name, &PatchParams::apply("kubectl"), &Patch::Apply(&new))
        .await;
    match unforced {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 409, "{s:?}"),
        other => panic!("applied over Helm's fields without forcing: {other:?}"),
    }
    crds.patch(
        &name,
        &PatchParams::apply("kubectl").force(),
        &Patch::Apply(&new),
    )
    .await
    .unwrap();
    let served = governor_tests::wait_until(
        "the new schema served",
        std::time::Duration::from_secs(30),
        || async {
            let (_, remaining) = budget(slos.clone()).await;
            remaining.as_f64()
        },
    )
    .await
    .unwrap();
    assert_eq!(served, 0.5);
    let crd = crds.get(&name).await.unwrap();
    assert_eq!(
        crd.spec.versions[0]
            .additional_printer_columns
            .as_ref()
            .unwrap()[0]
            .description
            .as_deref(),
        Some("Observed P99 latency")
    );
    assert!(
        slos.get_opt("roadtrip-api").await.unwrap().is_some(),
        "the SLO survived"
    );
}

#[test]
fn the_grafana_dashboard_configmap_is_off_by_default_and_holds_the_generated_dashboard() {
    let default = render("governor", &[]);
    assert!(
        !default
            .iter()
            .any(|o| o["metadata"]["labels"]["grafana_dashboard"].is_string()),
        "no dashboard ConfigMap unless asked"
    );
    let all = render(
        "governor",
        &[
            "--set",
            "grafanaDashboard.enabled=true",
            "--set",
            "grafanaDashboard.namespace=monitoring",
            "--set",
            "grafanaDashboard.annotations.grafana_folder=SLOs",
        ],
    );
    let cm = find(&all, "ConfigMap", "gov-grafana-dashboard");
    assert_eq!(cm["metadata"]["namespace"], "monitoring");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(cm["metadata"]["annotations"]["grafana_folder"], "SLOs");
    let shipped: serde_json::Value =
        serde_json::from_str(cm["data"]["governor-dashboard.json"].as_str().unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_governor"))
        .arg("grafana")
        .output()
        .unwrap();
    let generated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        shipped, generated,
        "the chart ships what governor grafana prints; regenerate it with \
         `cargo run -p governor -- grafana > charts/governor/files/governor-dashboard.json`"
    );
    let (ok, _, err) = helm(&[
        "template",
        "gov",
        &chart(),
        "--set",
        "grafanaDashboard.namespace=Not_A_Namespace",
    ]);
    assert!(
        !ok && (err.contains("grafanaDashboard.namespace")
            || err.contains("/grafanaDashboard/namespace")),
        "{err}"
    );
}
