//! `governor rules --apply` on a real kube-apiserver: a ConfigMap rule file when
//! prometheus-operator is absent, a PrometheusRule once its CRD exists; both
//! owned by the SLO, the stale kind removed, nothing left when alerting is off.

use std::process::Command;
use std::time::Duration;

use governor_crds::ServiceLevelObjective;
use governor_tests::{ControlPlane, repo_root, wait_until};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};

use crate::common::gate;
use crate::common::operator::prometheus_operator_crd;

fn apply_rules(kubeconfig: &std::path::Path, namespace: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_governor"))
        .args(["rules", "--apply", "--namespace", namespace])
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn rules_are_applied_as_a_config_map_or_a_prometheus_rule_owned_by_the_slo() {
    let _slot = gate::heavy().await;
    let cp = ControlPlane::start().await.unwrap();
    cp.install_crds().await.unwrap();
    let ns = cp.temp_namespace("rules").await.unwrap();
    let slos: Api<ServiceLevelObjective> = Api::namespaced(cp.client.clone(), &ns.name);
    let text = std::fs::read_to_string(repo_root().join("examples/api.yaml")).unwrap();
    let mut v: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    v["metadata"]["namespace"] = ns.name.clone().into();
    let params = PatchParams::apply("governor-tests");
    let slo = slos
        .patch("roadtrip-api", &params, &Patch::Apply(&v))
        .await
        .unwrap();
    let uid = slo.metadata.uid.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cp.admin_kubeconfig()).unwrap();

    // No prometheus-operator: a ConfigMap holding the rule file.
    let (code, out, err) = apply_rules(&kubeconfig, &ns.name);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ConfigMap roadtrip-api-slo-rules"), "{out}");
    let cms: Api<ConfigMap> = Api::namespaced(cp.client.clone(), &ns.name);
    let cm = cms.get("roadtrip-api-slo-rules").await.unwrap();
    let owner = &cm.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("ServiceLevelObjective", uid.as_str())
    );
    assert_eq!(owner.controller, Some(true));
    let file = &cm.data.as_ref().unwrap()["roadtrip-api.rules.yaml"];
    assert!(file.contains("ErrorBudgetBurnPage") && file.contains("slo:sli_error:ratio_rate5m"));
    let managers: Vec<String> = cm
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| f.manager)
        .collect();
    assert!(managers.contains(&"governor".to_string()), "{managers:?}");
    // Applying again changes nothing.
    let (code, _, _) = apply_rules(&kubeconfig, &ns.name);
    assert_eq!(code, 0);
    let again = cms.get("roadtrip-api-slo-rules").await.unwrap();
    assert_eq!(
        again.metadata.resource_version,
        cm.metadata.resource_version
    );

    // prometheus-operator installed: a PrometheusRule, and the ConfigMap goes.
    let crds: Api<CustomResourceDefinition> = Api::all(cp.client.clone());
    let crd: CustomResourceDefinition =
        serde_json::from_value(prometheus_operator_crd("PrometheusRule")).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let kubeconfig_path = kubeconfig.clone();
    let ns_name = ns.name.clone();
    let out = wait_until("the PrometheusRule API", Duration::from_secs(30), || {
        let (k, n) = (kubeconfig_path.clone(), ns_name.clone());
        async move {
            let (code, out, _) = tokio::task::spawn_blocking(move || apply_rules(&k, &n))
                .await
                .ok()?;
            (code == 0 && out.contains("PrometheusRule")).then_some(out)
        }
    })
    .await
    .unwrap();
    assert!(
        out.contains("PrometheusRule roadtrip-api-slo-rules"),
        "{out}"
    );
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PrometheusRule"),
        "prometheusrules",
    );
    let rules: Api<DynamicObject> = Api::namespaced_with(cp.client.clone(), &ns.name, &ar);
    let pr = rules.get("roadtrip-api-slo-rules").await.unwrap();
    assert_eq!(pr.metadata.owner_references.as_ref().unwrap()[0].uid, uid);
    let groups = pr.data["spec"]["groups"].as_array().unwrap();
    assert_eq!(
        groups[0]["name"],
        format!("governor-slo-{}-roadtrip-api", ns.name)
    );
    assert!(
        cms.get_opt("roadtrip-api-slo-rules")
            .await
            .unwrap()
            .is_none(),
        "the stale ConfigMap was removed"
    );

    // Alerting off: the rules go away.
    let mut off = v.clone();
    off["spec"]["alerting"]["enabled"] = false.into();
    slos.patch("roadtrip-api", &params, &Patch::Apply(&off))
        .await
        .unwrap();
    let (code, out, err) = apply_rules(&kubeconfig, &ns.name);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no rules"), "{out}");
    assert!(
        rules
            .get_opt("roadtrip-api-slo-rules")
            .await
            .unwrap()
            .is_none()
    );

    // A PrometheusRule of that name that is not the SLO's is never taken over,
    // and never removed.
    let mut foreign = serde_json::json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
        "metadata": {"name": "roadtrip-api-slo-rules", "namespace": ns.name},
        "spec": {"groups": [{"name": "someone-elses", "rules": []}]},
    });
    let foreign_rule: DynamicObject = serde_json::from_value(foreign.take()).unwrap();
    rules
        .create(&PostParams::default(), &foreign_rule)
        .await
        .unwrap();
    for alerting in [true, false] {
        let mut on = v.clone();
        on["spec"]["alerting"]["enabled"] = alerting.into();
        slos.patch("roadtrip-api", &params, &Patch::Apply(&on))
            .await
            .unwrap();
        let (code, out, err) = apply_rules(&kubeconfig, &ns.name);
        let kept = rules.get("roadtrip-api-slo-rules").await.unwrap();
        assert_eq!(kept.data["spec"]["groups"][0]["name"], "someone-elses");
        assert!(kept.metadata.owner_references.is_none());
        if alerting {
            assert_eq!(code, 1, "{out}{err}");
            assert!(
                err.contains("PrometheusRule")
                    && err.contains("exists and is not owned by this SLO"),
                "{err}"
            );
        }
    }
}
