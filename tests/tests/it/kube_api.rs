//! The ServiceLevelObjective API on a real kube-apiserver + etcd: the CRD's
//! OpenAPI and CEL rules really run, status is a real subresource, RBAC applies.

use std::path::{Path, PathBuf};
use std::time::Duration;

use governor_crds::ServiceLevelObjective;
use governor_tests::{ControlPlane, repo_root, wait_until};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};

fn manifests(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn load(path: &Path, namespace: &str) -> serde_json::Value {
    let mut value: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    value["metadata"]["namespace"] = namespace.into();
    value
}

async fn apply(
    api: &Api<ServiceLevelObjective>,
    value: &serde_json::Value,
) -> Result<ServiceLevelObjective, String> {
    let name = value["metadata"]["name"].as_str().unwrap_or_default();
    let params = PatchParams::apply("governor-tests").validation_strict();
    api.patch(name, &params, &Patch::Apply(value))
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) => s.message,
            other => other.to_string(),
        })
}

#[tokio::test]
async fn api_server_enforces_the_crd() {
    let cp = ControlPlane::start().await.unwrap();
    // The API server was built with its real version stamped in.
    let version = cp.client.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, "v1.37.2");
    cp.install_crds().await.unwrap();
    let ns = cp.temp_namespace("crd").await.unwrap();
    let api: Api<ServiceLevelObjective> = Api::namespaced(cp.client.clone(), &ns.name);

    // Every example is accepted, and reads back as the Rust type.
    let examples = manifests(&repo_root().join("examples"));
    assert_eq!(examples.len(), 4);
    for example in &examples {
        let slo = apply(&api, &load(example, &ns.name))
            .await
            .unwrap_or_else(|e| panic!("{} refused: {e}", example.display()));
        assert!(slo.spec.validate().is_empty());
    }
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        4
    );

    // Every invalid fixture is refused with its message, unless the fixture says
    // the rule is one only `governor validate` can check.
    let mut refused = 0;
    for fixture in manifests(&repo_root().join("tests/fixtures/invalid")) {
        let expected = std::fs::read_to_string(fixture.with_extension("expected")).unwrap();
        let want = expected
            .lines()
            .find_map(|l| l.strip_prefix("apiserver: "))
            .unwrap_or_else(|| panic!("{}: no `apiserver:` line", fixture.display()));
        if want.starts_with("accepts") {
            continue;
        }
        let mut value = load(&fixture, &ns.name);
        value["metadata"]["name"] = format!("invalid-{refused}").into();
        match apply(&api, &value).await {
            Ok(_) => panic!("{} was accepted by the API server", fixture.display()),
            Err(message) => assert!(
                message.contains(want),
                "{}: expected {want:?} in the API server's answer:\n{message}",
                fixture.display()
            ),
        }
        refused += 1;
    }
    assert!(
        refused >= 15,
        "only {refused} fixtures are checked by the API server"
    );

    // Status is a subresource: a status patch does not touch spec, and the other
    // way round.
    let name = "roadtrip-api";
    let status = serde_json::json!({
        "apiVersion": "governor.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "status": {
            "observedGeneration": 1,
            "objectiveState": "Breached",
            "observed": {"time": "2026-11-27T08:00:00Z", "p50": "125ms", "p90": "450ms", "p99": "1.2s",
                         "requestRate": 142.0, "errorRate": 0.082, "cacheHitRate": 0.42, "poolUtilization": 0.98},
            "replicas": {"current": 2, "desired": 6},
            "decisions": [{"time": "2026-11-27T08:00:00Z", "knob": "Replicas", "from": 2, "to": 6,
                           "reason": "P99 1.2s over 100ms target"}]
        }
    });
    let patched = api
        .patch_status(
            name,
            &PatchParams::apply("governor-tests").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    let got = api.get(name).await.unwrap();
    assert_eq!(got.status, patched.status);
    let observed = got.status.as_ref().unwrap().observed.as_ref().unwrap();
    assert_eq!(observed.p90.unwrap().to_string(), "450ms");
    assert_eq!(got.status.as_ref().unwrap().decisions[0].to, 6);
    assert_eq!(
        got.spec.scaling.max_replicas, 20,
        "a status patch changed spec"
    );

    // A spec write through the main resource leaves status alone.
    let mut spec_change = load(&repo_root().join("examples/api.yaml"), &ns.name);
    spec_change["spec"]["scaling"]["maxReplicas"] = 25.into();
    spec_change["status"] = serde_json::json!({"objectiveState": "Met"});
    let after = apply(&api, &spec_change).await.unwrap();
    assert_eq!(after.spec.scaling.max_replicas, 25);
    assert_eq!(after.status, got.status, "a spec write changed status");

    // A status update through the main resource is ignored (status is a subresource).
    let mut replaced = api.get(name).await.unwrap();
    replaced
        .status
        .as_mut()
        .unwrap()
        .replicas
        .as_mut()
        .unwrap()
        .desired = 99;
    let stored = api
        .replace(name, &PostParams::default(), &replaced)
        .await
        .unwrap();
    assert_eq!(stored.status.unwrap().replicas.unwrap().desired, 6);
}

#[tokio::test]
async fn rbac_applies_to_service_accounts() {
    let cp = ControlPlane::start().await.unwrap();
    cp.install_crds().await.unwrap();
    let ns = cp.temp_namespace("rbac").await.unwrap();
    let as_sa = cp
        .service_account_client(&ns.name, "governor")
        .await
        .unwrap();
    let api: Api<ServiceLevelObjective> = Api::namespaced(as_sa, &ns.name);

    match api.list(&ListParams::default()).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "{e:?}"),
        other => panic!("a ServiceAccount without a Role listed SLOs: {other:?}"),
    }

    let role: Role = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "slo-reader"},
        "rules": [{"apiGroups": ["governor.dev"], "resources": ["servicelevelobjectives"], "verbs": ["get", "list", "watch"]}]
    }))
    .unwrap();
    let binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "slo-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "slo-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "governor", "namespace": ns.name}]
    }))
    .unwrap();
    Api::<Role>::namespaced(cp.client.clone(), &ns.name)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(cp.client.clone(), &ns.name)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    // The RBAC authorizer reads roles from an informer: wait for it, bounded.
    wait_until("the Role to take effect", Duration::from_secs(30), || {
        let api = api.clone();
        async move { api.list(&ListParams::default()).await.ok() }
    })
    .await
    .unwrap();

    // Reading is allowed now; writing still is not.
    let slo = load(&repo_root().join("examples/api.yaml"), &ns.name);
    match apply(&api, &slo).await {
        Err(message) => assert!(message.contains("forbidden"), "{message}"),
        Ok(_) => panic!("a read-only Role allowed a write"),
    }
}
