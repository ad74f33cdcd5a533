//! `governor rules --apply` on a real kube-apiserver: a ConfigMap rule file when
//! prometheus-operator is absent, a PrometheusRule once its CRD exists; both
//! owned by the SLO, the stale kind removed, nothing left when alerting is off;
//! and the installation's labels and annotations on both (`--rules-label`,
//! `--rules-annotation`), from the CLI and from the operator.

use std::process::Command;
use std::time::Duration;

use governor_crds::ServiceLevelObjective;
use governor_tests::{ControlPlane, wait_until};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};

use crate::common::gate;
use crate::common::operator::{apply_api_example, prometheus_operator_crd, start_operator};

fn apply_rules(kubeconfig: &std::path::Path, namespace: &str) -> (i32, String, String) {
    apply_rules_with(kubeconfig, namespace, &[], &[])
}

/// `governor rules --apply` with more flags and environment variables.
fn apply_rules_with(
    kubeconfig: &std::path::Path,
    namespace: &str,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_governor"))
        .args(["rules", "--apply", "--namespace", namespace])
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("GOVERNOR_RULES_LABELS")
        .envs(envs.iter().copied())
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
    let (v, slo) = apply_api_example(&cp.client, &ns.name).await;
    let params = PatchParams::apply("governor-tests");
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
    assert!(
        file.contains("ErrorBudgetBurnPage")
            && file.contains("governor_slo:sli_error:ratio_rate5m")
    );
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

/// Key-value pairs of a label or annotation map, in key order.
type Pairs = Vec<(String, String)>;

/// The labels and annotations of a rules object.
fn metadata_of(object: &kube::api::ObjectMeta) -> (Pairs, Pairs) {
    let pairs = |m: &Option<std::collections::BTreeMap<String, String>>| -> Pairs {
        m.iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    (pairs(&object.labels), pairs(&object.annotations))
}

fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// `--rules-label` and `--rules-annotation` (the chart's `sloRules`) reach the
/// ConfigMap and the PrometheusRule, from `governor rules --apply` and from the
/// operator, beside Governor's own labels, which they can never replace; the
/// PrometheusRule is found by a label selector as a Prometheus's
/// `ruleSelector` finds it; a label dropped from the flags leaves the object.
#[tokio::test]
async fn rules_objects_carry_the_installations_labels_and_annotations() {
    let _slot = gate::heavy().await;
    let cp = ControlPlane::start().await.unwrap();
    cp.install_crds().await.unwrap();
    let ns = cp.temp_namespace("rules-labels").await.unwrap();
    apply_api_example(&cp.client, &ns.name).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cp.admin_kubeconfig()).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(cp.client.clone(), &ns.name);
    let name = "roadtrip-api-slo-rules";

    // Refused before anything is written, naming the flag and the cause.
    for (args, envs, cause) in [
        (
            vec!["--rules-label", "governor.dev/slo=other"],
            vec![],
            "Governor sets itself",
        ),
        (
            vec!["--rules-label", "app.kubernetes.io/managed-by=helm"],
            vec![],
            "Governor sets itself",
        ),
        (
            vec!["--rules-label", "team=a b"],
            vec![],
            "not a label value",
        ),
        (
            vec!["--rules-annotation", "governor.dev/x=y"],
            vec![],
            "Governor's own",
        ),
        (
            vec![],
            vec![("GOVERNOR_RULES_LABELS", "release=x,Bad Key=y")],
            "not a label key",
        ),
        (
            vec!["--rules-label", "team=a", "--rules-label", "team=b"],
            vec![],
            "given twice",
        ),
    ] {
        let (code, out, err) = apply_rules_with(&kubeconfig, &ns.name, &args, &envs);
        assert_eq!(code, 2, "{args:?} {envs:?}: {out}{err}");
        let flag = if args.contains(&"--rules-annotation") {
            "--rules-annotation"
        } else {
            "--rules-label"
        };
        assert!(err.contains(flag) && err.contains(cause), "{args:?}: {err}");
        assert!(cms.get_opt(name).await.unwrap().is_none(), "{args:?} wrote");
    }

    // The CLI, with the labels from the environment: the ConfigMap carries them.
    let (code, out, err) = apply_rules_with(
        &kubeconfig,
        &ns.name,
        &["--rules-annotation", "example.com/owner=SRE, on call: #1"],
        &[(
            "GOVERNOR_RULES_LABELS",
            "release=kube-prometheus-stack,team=sre",
        )],
    );
    assert_eq!(code, 0, "{out}{err}");
    let cm = cms.get(name).await.unwrap();
    let (labels, annotations) = metadata_of(&cm.metadata);
    assert_eq!(
        labels,
        [
            pair("app.kubernetes.io/managed-by", "governor"),
            pair("governor.dev/slo", "roadtrip-api"),
            pair("release", "kube-prometheus-stack"),
            pair("team", "sre"),
        ]
    );
    assert_eq!(annotations, [pair("example.com/owner", "SRE, on call: #1")]);

    // The operator, once prometheus-operator is installed: a PrometheusRule
    // that a ruleSelector `release: kube-prometheus-stack` selects.
    let crds: Api<CustomResourceDefinition> = Api::all(cp.client.clone());
    let crd: CustomResourceDefinition =
        serde_json::from_value(prometheus_operator_crd("PrometheusRule")).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PrometheusRule"),
        "prometheusrules",
    );
    let rules: Api<DynamicObject> = Api::namespaced_with(cp.client.clone(), &ns.name, &ar);
    wait_until(
        "the PrometheusRule API",
        Duration::from_secs(30),
        || async { rules.list(&Default::default()).await.ok().map(|_| ()) },
    )
    .await
    .unwrap();
    let operator = start_operator(
        "rules-labels",
        &kubeconfig,
        &ns.name,
        // Signals are not needed to apply rules; nothing listens here.
        "http://127.0.0.1:9",
        &[
            "--namespace",
            &ns.name,
            "--rules-label",
            "release=kube-prometheus-stack",
            "--rules-annotation",
            "example.com/owner=sre",
        ],
    );
    let selector = kube::api::ListParams::default().labels("release=kube-prometheus-stack");
    let selected = wait_until(
        "the operator's PrometheusRule",
        Duration::from_secs(60),
        || async {
            let list = rules.list(&selector).await.ok()?;
            list.items
                .into_iter()
                .find(|r| r.metadata.name.as_deref() == Some(name))
        },
    )
    .await
    .unwrap();
    let (labels, annotations) = metadata_of(&selected.metadata);
    assert_eq!(
        labels,
        [
            pair("app.kubernetes.io/managed-by", "governor"),
            pair("governor.dev/slo", "roadtrip-api"),
            pair("release", "kube-prometheus-stack"),
        ]
    );
    assert_eq!(annotations, [pair("example.com/owner", "sre")]);
    assert_eq!(
        selected.data["spec"]["groups"][0]["name"],
        format!("governor-slo-{}-roadtrip-api", ns.name)
    );
    wait_until(
        "the stale ConfigMap removed",
        Duration::from_secs(30),
        || async { cms.get_opt(name).await.ok()?.is_none().then_some(()) },
    )
    .await
    .unwrap();
    drop(operator);

    // Applied again without the flags: Governor's own labels stay, the
    // installation's leave (server-side apply drops what its manager no longer sets).
    let (code, out, err) = apply_rules(&kubeconfig, &ns.name);
    assert_eq!(code, 0, "{out}{err}");
    let plain = rules.get(name).await.unwrap();
    let (labels, annotations) = metadata_of(&plain.metadata);
    assert_eq!(
        labels,
        [
            pair("app.kubernetes.io/managed-by", "governor"),
            pair("governor.dev/slo", "roadtrip-api"),
        ]
    );
    assert!(annotations.is_empty(), "{annotations:?}");
    assert!(rules.list(&selector).await.unwrap().items.is_empty());
}
