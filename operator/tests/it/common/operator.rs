//! Shared by the operator's end-to-end tests: the chart's RBAC on a real API
//! server, and `governor operator` started as a process.

use std::path::{Path, PathBuf};

use governor_tests::control_plane::TempNamespace;
use governor_tests::{ControlPlane, Server, free_port, repo_root, tools};
use kube::api::{DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::Scope;
use kube::{Api, Client};

/// Every object `helm template` renders for release `release` in
/// `namespace`, with extra `helm template` arguments.
pub fn chart_objects(release: &str, namespace: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let chart = repo_root().join("charts/governor");
    let mut args = vec![
        "template",
        release,
        chart.to_str().unwrap(),
        "--namespace",
        namespace,
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = tools::helm(&args).unwrap();
    assert!(ok, "{err}");
    out.split("\n---")
        .filter_map(|d| serde_yaml_ng::from_str::<serde_json::Value>(d).ok())
        .filter(serde_json::Value::is_object)
        .collect()
}

/// The chart's ServiceAccounts and RBAC for release `release` in `namespace`,
/// rendered with extra `helm template` arguments.
pub fn chart_rbac_with(release: &str, namespace: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    chart_objects(release, namespace, extra)
        .into_iter()
        .filter(|v| {
            matches!(
                v["kind"].as_str(),
                Some(
                    "ServiceAccount"
                        | "ClusterRole"
                        | "ClusterRoleBinding"
                        | "Role"
                        | "RoleBinding"
                )
            )
        })
        .collect()
}

/// Server-side applies each object, for real, as the API server serves its
/// kind (resource name and scope from discovery); a namespaced object goes to
/// its own namespace, or `namespace` when it names none.
pub async fn apply_all(client: &Client, namespace: &str, objects: &[serde_json::Value]) {
    for v in objects {
        let api_version = v["apiVersion"].as_str().unwrap();
        let kind = v["kind"].as_str().unwrap();
        let name = v["metadata"]["name"].as_str().unwrap();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .unwrap_or_else(|e| panic!("{api_version} {kind} is not served: {e}"));
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Cluster => Api::all_with(client.clone(), &ar),
            Scope::Namespaced => {
                let ns = v["metadata"]["namespace"].as_str().unwrap_or(namespace);
                Api::namespaced_with(client.clone(), ns, &ar)
            }
        };
        api.patch(
            name,
            &PatchParams::apply("governor-tests"),
            &Patch::Apply(v),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {kind} {name}: {e}"));
    }
}

/// A Deployment that opts in to Governor's writes.
pub fn deployment(name: &str, replicas: i32) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "annotations": {"governor.dev/managed": "true"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}
        }
    })
}

pub struct Operator {
    pub server: Server,
    pub metrics: String,
}

pub fn start_operator(
    identity: &str,
    kubeconfig: &Path,
    namespace: &str,
    prometheus: &str,
    extra: &[&str],
) -> Operator {
    start_operator_at(
        free_port().unwrap(),
        identity,
        kubeconfig,
        namespace,
        prometheus,
        extra,
    )
}

/// As `start_operator`, serving /metrics on `port` (known before the
/// operator starts, e.g. to a Prometheus that scrapes it).
pub fn start_operator_at(
    port: u16,
    identity: &str,
    kubeconfig: &Path,
    namespace: &str,
    prometheus: &str,
    extra: &[&str],
) -> Operator {
    let dir = tempfile::Builder::new()
        .prefix("governor-operator-")
        .tempdir()
        .unwrap();
    let args: Vec<String> = [
        "operator",
        "--prometheus",
        prometheus,
        "--observe-interval",
        "2s",
        // 10 s of wall clock is over 3 simulated minutes at 20x.
        "--window",
        "10s",
        "--timeout",
        "2",
        "--lease-namespace",
        namespace,
        "--lease-duration",
        "4s",
        "--identity",
        identity,
        "--metrics-listen",
        &format!("127.0.0.1:{port}"),
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    let kc = kubeconfig.display().to_string();
    let server = Server::start_env(
        &format!("operator-{identity}"),
        Path::new(env!("CARGO_BIN_EXE_governor")),
        &args,
        &[("KUBECONFIG", &kc), ("GOVERNOR_LOG", "info,kube=warn")],
        dir,
    )
    .unwrap();
    Operator {
        server,
        metrics: format!("http://127.0.0.1:{port}/metrics"),
    }
}

pub async fn leading(op: &Operator) -> Option<bool> {
    let text = reqwest::get(&op.metrics).await.ok()?.text().await.ok()?;
    let line = text.lines().find(|l| l.starts_with("governor_leader "))?;
    Some(line.ends_with(" 1"))
}

/// A real API server with the CRDs and a namespace holding the chart's RBAC
/// (release named after the namespace); `kubeconfig` acts as the chart's
/// operator ServiceAccount.
pub struct Cluster {
    pub ns: TempNamespace,
    pub cp: ControlPlane,
    pub kubeconfig: PathBuf,
    /// Holds the kubeconfig: keep it alive with the test.
    pub dir: tempfile::TempDir,
}

pub async fn cluster(prefix: &str) -> Cluster {
    cluster_with(prefix, true).await
}

/// As `cluster`, with the chart's `watchNamespaces` set to the namespace: the
/// operator holds Roles in it and no ClusterRole.
pub async fn cluster_scoped(prefix: &str) -> Cluster {
    cluster_rbac(prefix, true, true).await
}

/// As `cluster`, with or without Governor's CRD installed.
pub async fn cluster_with(prefix: &str, crds: bool) -> Cluster {
    cluster_rbac(prefix, crds, false).await
}

async fn cluster_rbac(prefix: &str, crds: bool, scoped: bool) -> Cluster {
    let cp = ControlPlane::start().await.unwrap();
    if crds {
        cp.install_crds().await.unwrap();
    }
    let ns = cp.temp_namespace(prefix).await.unwrap();
    let watch = format!("watchNamespaces={{{}}}", ns.name);
    let extra: &[&str] = if scoped { &["--set", &watch] } else { &[] };
    let rbac = chart_rbac_with(&ns.name, &ns.name, extra);
    if scoped {
        assert!(
            rbac.iter()
                .all(|o| !o["kind"].as_str().unwrap_or("").starts_with("Cluster")),
            "watchNamespaces still renders cluster-wide RBAC"
        );
    }
    apply_all(&cp.client, &ns.name, &rbac).await;
    let token = cp
        .service_account_token(&ns.name, &format!("{}-operator", ns.name))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cp.kubeconfig(&token)).unwrap();
    Cluster {
        ns,
        cp,
        kubeconfig,
        dir,
    }
}

/// examples/api.yaml (the SLO `roadtrip-api`) applied in `namespace`: the
/// manifest as sent, and the object as the API server stored it.
pub async fn apply_api_example(
    client: &Client,
    namespace: &str,
) -> (serde_json::Value, governor_crds::ServiceLevelObjective) {
    let text = std::fs::read_to_string(repo_root().join("examples/api.yaml")).unwrap();
    let mut v: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    v["metadata"]["namespace"] = namespace.into();
    let slos: Api<governor_crds::ServiceLevelObjective> =
        Api::namespaced(client.clone(), namespace);
    let slo = slos
        .patch(
            "roadtrip-api",
            &PatchParams::apply("governor-tests"),
            &Patch::Apply(&v),
        )
        .await
        .unwrap();
    (v, slo)
}

/// prometheus-operator's CRD of `kind` (`ServiceMonitor`, `PrometheusRule`),
/// reduced to what the API server needs to serve it.
pub fn prometheus_operator_crd(kind: &str) -> serde_json::Value {
    let singular = kind.to_lowercase();
    let plural = format!("{singular}s");
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.monitoring.coreos.com")},
        "spec": {
            "group": "monitoring.coreos.com",
            "names": {"kind": kind, "plural": plural, "singular": singular, "listKind": format!("{kind}List")},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            }],
        },
    })
}
