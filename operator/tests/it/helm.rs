//! The Helm chart with the real helm and the real API server: lint and
//! template clean, values checked by the schema, the CRD and Governor's alerts
//! identical to the repository's, every container locked down, and every
//! rendered object accepted by a server-side dry run.

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
    let mut checked = 0;
    for v in objects.iter().chain(proxied) {
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
    assert!(checked >= 17, "{checked}");
}
