//! Governor beside the SLO ecosystem, with the real tools: the rule outputs
//! for Thanos, Mimir and VictoriaMetrics (promtool, the VMRule CRD on a real
//! API server, mimirtool when built), the Grafana dashboard (Grafana's
//! published JSON schema, promql-parser, and a real Prometheus with the
//! operator's metrics and rules answering every panel), and OpenSLO import
//! and export (validate, round trip, refusals).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use governor_crds::ServiceLevelObjective;
use governor_tests::{ControlPlane, Prometheus, PrometheusVersion, repo_root, tools, wait_until};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::Value;

use crate::common;
use crate::common::gate;
use crate::common::operator::{deployment, start_operator_at};
use crate::rules::governor;

fn examples() -> String {
    repo_root().join("examples").display().to_string()
}

fn fixture(path: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(path)
}

/// `promtool check rules FILE` on Prometheus 2.x and 3.x; both must pass.
fn promtool_check(file: &Path) {
    for v in PrometheusVersion::ALL {
        let out = Command::new(tools::tool(v.promtool()).unwrap())
            .args(["check", "rules", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} check rules {}: {}{}",
            v.promtool(),
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

// ----- rule outputs -----

#[test]
fn thanos_and_mimir_files_hold_the_prometheus_groups_and_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let (code, plain, notes) = governor(&["rules", &examples()]);
    assert_eq!(code, 0, "{notes}");
    let plain: Value = serde_yaml_ng::from_str(&plain).unwrap();
    let groups = plain["groups"].as_array().unwrap().clone();
    assert!(groups.len() >= 8, "two groups per example");

    // Thanos: the same groups, each with the strategy; promtool reads the
    // groups once the Thanos-only field is taken out.
    let (code, thanos, notes) = governor(&[
        "rules",
        "--output",
        "thanos",
        "--partial-response-strategy",
        "warn",
        &examples(),
    ]);
    assert_eq!(code, 0, "{notes}");
    let mut thanos: Value = serde_yaml_ng::from_str(&thanos).unwrap();
    for g in thanos["groups"].as_array_mut().unwrap() {
        assert_eq!(g["partial_response_strategy"], "warn", "{g}");
        g.as_object_mut()
            .unwrap()
            .remove("partial_response_strategy");
    }
    assert_eq!(thanos["groups"], Value::Array(groups.clone()));
    let file = dir.path().join("thanos-groups.yaml");
    std::fs::write(&file, serde_yaml_ng::to_string(&thanos).unwrap()).unwrap();
    promtool_check(&file);

    // Mimir: a namespace file of the same groups.
    let (code, mimir, notes) = governor(&[
        "rules",
        "--output",
        "mimir",
        "--ruler-namespace",
        "slo-rules",
        &examples(),
    ]);
    assert_eq!(code, 0, "{notes}");
    let mimir_file = dir.path().join("mimir.yaml");
    std::fs::write(&mimir_file, &mimir).unwrap();
    let mimir: Value = serde_yaml_ng::from_str(&mimir).unwrap();
    assert_eq!(mimir["namespace"], "slo-rules");
    assert_eq!(mimir["groups"], Value::Array(groups));
    let groups_only = dir.path().join("mimir-groups.yaml");
    std::fs::write(
        &groups_only,
        serde_yaml_ng::to_string(&serde_json::json!({"groups": mimir["groups"]})).unwrap(),
    )
    .unwrap();
    promtool_check(&groups_only);
    // mimirtool, when one was built (it is not part of tests/tools/install.sh).
    if let Ok(mimirtool) = std::env::var("GOVERNOR_MIMIRTOOL") {
        let out = Command::new(mimirtool)
            .args(["rules", "check", mimir_file.to_str().unwrap()])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("mimirtool rules check: {text}");
        assert!(out.status.success(), "mimirtool rules check: {text}");
    }

    // A namespace the ruler API cannot take is refused, naming the flag's value.
    let (code, _, err) = governor(&[
        "rules",
        "--output",
        "mimir",
        "--ruler-namespace",
        "a/b",
        &examples(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--ruler-namespace") && err.contains("'/'"),
        "{err}"
    );
}

#[tokio::test]
async fn vmrules_are_accepted_by_the_victoriametrics_crd_on_a_real_api_server() {
    let _slot = gate::heavy().await;
    let cp = ControlPlane::start().await.unwrap();
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(cp.client.clone());
    let crd: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("ecosystem/vmrule.crd.json")).unwrap(),
    )
    .unwrap();
    let params = PatchParams::apply("governor-tests").force();
    crds.patch(
        "vmrules.operator.victoriametrics.com",
        &params,
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    cp.crd_established("vmrules.operator.victoriametrics.com")
        .await
        .unwrap();
    let ns = cp.temp_namespace("vmrule").await.unwrap();

    let (code, text, notes) = governor(&["rules", "--output", "vmrule", &examples()]);
    assert_eq!(code, 0, "{notes}");
    let docs = yaml_docs(&text);
    assert_eq!(docs.len(), 4, "one VMRule per example");
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("operator.victoriametrics.com", "v1beta1", "VMRule"),
        "vmrules",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(cp.client.clone(), &ns.name, &ar);
    // Strict: a field the CRD's schema does not know is an error, not pruned.
    let strict =
        PatchParams::apply("governor-tests").validation(kube::api::ValidationDirective::Strict);
    for mut doc in docs {
        assert_eq!(doc["kind"], "VMRule");
        doc["metadata"]["namespace"] = ns.name.clone().into();
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        let object: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
        api.patch(&name, &strict, &Patch::Apply(&object))
            .await
            .unwrap_or_else(|e| panic!("VMRule {name} refused: {e}"));
        let stored = api.get(&name).await.unwrap();
        // The API server fills in the schema's defaults (the VMRule CRD has
        // `alert: ""` and `record: ""`), as Kubernetes documents for
        // structural schemas; Governor writes only the field a rule has.
        let mut expected = doc["spec"].clone();
        apply_schema_defaults(&crd_spec_schema(&crd), &mut expected);
        assert_eq!(stored.data["spec"]["groups"], expected["groups"]);
    }
    // The check can fail: a Thanos-only field in a group is refused.
    let (_, thanos, _) = governor(&["rules", "--output", "thanos", &examples()]);
    let thanos: Value = serde_yaml_ng::from_str(&thanos).unwrap();
    let wrong = serde_json::json!({
        "apiVersion": "operator.victoriametrics.com/v1beta1",
        "kind": "VMRule",
        "metadata": {"name": "wrong", "namespace": ns.name},
        "spec": {"groups": [thanos["groups"][0]]},
    });
    let wrong: DynamicObject = serde_json::from_value(wrong).unwrap();
    let err = api
        .patch("wrong", &strict, &Patch::Apply(&wrong))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("partial_response_strategy"),
        "{err}"
    );
}

/// The `spec` schema of a CRD's first version.
fn crd_spec_schema(crd: &Value) -> Value {
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
}

/// What the API server does on write and read for a structural schema: an
/// absent property with a `default` gets it, recursively through objects
/// and array items.
fn apply_schema_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, prop) in schema["properties"].as_object().into_iter().flatten() {
                if !map.contains_key(key)
                    && let Some(d) = prop.get("default")
                {
                    map.insert(key.clone(), d.clone());
                }
                if let Some(child) = map.get_mut(key) {
                    apply_schema_defaults(prop, child);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                apply_schema_defaults(&schema["items"], item);
            }
        }
        _ => {}
    }
}

// ----- Grafana -----

fn grafana_schema() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("ecosystem/grafana-dashboard.schema.json")).unwrap(),
    )
    .unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn schema_errors(validator: &jsonschema::Validator, dashboard: &Value) -> Vec<String> {
    validator
        .iter_errors(dashboard)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

/// The expression as Grafana sends it: variables replaced.
fn substituted(expr: &str, namespace: &str, window: &str) -> String {
    expr.replace("$namespace", namespace)
        .replace("$slo", ".*")
        .replace("$window", window)
        .replace("$__interval", "1m")
}

#[test]
fn the_grafana_dashboard_follows_grafanas_schema_and_its_promql_parses() {
    let validator = grafana_schema();
    let (code, templated, err) = governor(&["grafana"]);
    assert_eq!(code, 0, "{err}");
    let (code, from_files, err) = governor(&["grafana", &examples()]);
    assert_eq!(code, 0, "{err}");
    for text in [&templated, &from_files] {
        let d: Value = serde_json::from_str(text).unwrap();
        let errors = schema_errors(&validator, &d);
        assert!(errors.is_empty(), "{errors:#?}");
        let exprs = governor::grafana::expressions(&d);
        assert_eq!(exprs.len(), 10);
        for e in exprs {
            let promql = substituted(&e, "roadtrip", "5m");
            promql_parser::parser::parse(&promql).unwrap_or_else(|err| panic!("{promql}: {err}"));
        }
    }
    // The schema check bites: a dashboard without its templating is refused.
    let mut broken: Value = serde_json::from_str(&templated).unwrap();
    broken.as_object_mut().unwrap().remove("templating");
    broken["panels"][0]["gridPos"]["w"] = "wide".into();
    let errors = schema_errors(&validator, &broken);
    assert!(errors.len() >= 2, "{errors:#?}");

    // The chart's copy is the generated dashboard.
    let committed =
        std::fs::read_to_string(repo_root().join("charts/governor/files/governor-dashboard.json"))
            .unwrap();
    assert_eq!(
        committed, templated,
        "charts/governor/files/governor-dashboard.json is stale; regenerate it with `cargo run -p governor -- grafana > charts/governor/files/governor-dashboard.json`"
    );
    let (code, _, err) = governor(&["grafana", "/nonexistent"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("/nonexistent"), "{err}");
}

/// Every panel of the dashboard answers from a real Prometheus scraping the
/// simulator and the real operator (DryRun, on a real API server), with the
/// rules the operator applied.
#[tokio::test]
async fn every_grafana_panel_returns_data_from_the_operators_metrics_and_rules() {
    let _slot = gate::heavy().await;
    let cp = ControlPlane::start().await.unwrap();
    cp.install_crds().await.unwrap();
    let ns = cp.temp_namespace("grafana").await.unwrap();
    let params = PatchParams::apply("governor-tests");
    let mut slo: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(repo_root().join("examples/api.yaml")).unwrap(),
    )
    .unwrap();
    slo["metadata"]["namespace"] = ns.name.clone().into();
    slo["spec"]["objectives"]["window"] = "1h".into();
    slo["spec"]["objectives"]["evaluationInterval"] = "3s".into();
    slo["spec"]["scaling"]["mode"] = "DryRun".into();
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(cp.client.clone(), &ns.name);
    deployments
        .patch(
            "roadtrip-api",
            &params,
            &Patch::Apply(deployment("roadtrip-api", 2)),
        )
        .await
        .unwrap();
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(cp.client.clone(), &ns.name);
    let pool = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "roadtrip-api-db", "annotations": {"governor.dev/managed": "true"}, "labels": {"governor.dev/managed": "true"}},
        "data": {"pool_size": "10"},
    });
    maps.patch("roadtrip-api-db", &params, &Patch::Apply(&pool))
        .await
        .unwrap();
    let slos: Api<ServiceLevelObjective> = Api::namespaced(cp.client.clone(), &ns.name);
    slos.patch("roadtrip-api", &params, &Patch::Apply(&slo))
        .await
        .unwrap();
    let slo_file = tempfile::tempdir().unwrap();
    let slo_path = slo_file.path().join("api.yaml");
    std::fs::write(&slo_path, serde_yaml_ng::to_string(&slo).unwrap()).unwrap();

    let (_sim, sim_addr) = common::start_sim(&["--speed", "1"]).await;
    let operator_port = governor_tests::free_port().unwrap();
    let rules_dir = tempfile::tempdir().unwrap();
    let prom = Prometheus::start_with(
        &[sim_addr, format!("127.0.0.1:{operator_port}")],
        &[rules_dir.path().join("*.rules.yaml")],
        None,
    )
    .await
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let kubeconfig = work.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cp.admin_kubeconfig()).unwrap();
    let _operator = start_operator_at(
        operator_port,
        "grafana",
        &kubeconfig,
        &ns.name,
        &prom.url,
        &[&format!("--namespace={}", ns.name)],
    );

    // The rules the operator applied, loaded as prometheus-operator would,
    // with the groups evaluated every second so the test need not wait a
    // budget interval.
    let text = wait_until("the operator's rules", Duration::from_secs(90), || async {
        let cm = maps.get_opt("roadtrip-api-slo-rules").await.ok()??;
        cm.data?.remove("roadtrip-api.rules.yaml")
    })
    .await
    .unwrap();
    let mut rules: Value = serde_yaml_ng::from_str(&text).unwrap();
    for g in rules["groups"].as_array_mut().unwrap() {
        g["interval"] = "1s".into();
    }
    std::fs::write(
        rules_dir.path().join("roadtrip-api.rules.yaml"),
        serde_yaml_ng::to_string(&rules).unwrap(),
    )
    .unwrap();
    prom.reload().await.unwrap();

    let (code, dashboard, err) = governor(&["grafana", slo_path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let dashboard: Value = serde_json::from_str(&dashboard).unwrap();
    let window = dashboard["templating"]["list"][3]["current"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let namespace = ns.name.clone();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let promql = substituted(target["expr"].as_str().unwrap(), &namespace, &window);
            let title = panel["title"].as_str().unwrap();
            let series = wait_until(
                &format!("panel {title:?}: {promql}"),
                Duration::from_secs(120),
                || async { prom.query(&promql).await.ok().filter(|r| !r.is_empty()) },
            )
            .await
            .unwrap();
            println!("{title}: {promql} -> {} series", series.len());
        }
    }
    // Annotations: each query runs (DryRun changes nothing, so no events).
    for a in dashboard["annotations"]["list"].as_array().unwrap() {
        if let Some(expr) = a["expr"].as_str() {
            prom.query(&substituted(expr, &namespace, &window))
                .await
                .unwrap();
        }
    }
}

// ----- OpenSLO -----

fn import(files: &[&Path]) -> (i32, String, String) {
    let mut args = vec!["import", "openslo"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    governor(&args)
}

#[test]
fn openslo_documents_import_into_an_slo_that_validates() {
    let (code, yaml, err) = import(&[&fixture("openslo/checkout.yaml")]);
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkout.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let (code, out, _) = governor(&["validate", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{yaml}");
    let docs = yaml_docs(&yaml);
    assert_eq!(
        docs.len(),
        1,
        "two OpenSLO SLOs, one governor.dev/slo: {yaml}"
    );
    let slo = &docs[0];
    assert_eq!(slo["metadata"]["name"], "checkout");
    assert_eq!(slo["metadata"]["namespace"], "default");
    assert_eq!(slo["spec"]["targetRef"]["name"], "checkout-web");
    assert_eq!(slo["spec"]["objectives"]["latency"]["p99"], "250ms");
    assert_eq!(slo["spec"]["objectives"]["availability"], 0.999);
    assert_eq!(slo["spec"]["objectives"]["window"], "28d");
    let prom = &slo["spec"]["indicators"]["prometheus"];
    assert_eq!(
        prom["latency"]["query"],
        r#"sum by (le) (rate(http_server_request_duration_seconds_bucket{service="checkout"}[5m]))"#
    );
    assert_eq!(
        prom["errors"]["query"],
        r#"sum(rate(http_server_request_duration_seconds_count{service="checkout", http_response_status_code=~"5.."}[5m]))"#
    );
    assert_eq!(
        slo["spec"]["alerting"],
        serde_json::json!({"enabled": true, "page": true, "ticket": false})
    );
}

#[test]
fn export_then_import_keeps_every_objective_and_is_a_fixed_point() {
    let dir = tempfile::tempdir().unwrap();
    let (code, exported, err) = governor(&["export", "openslo", &examples()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("note: scaling"),
        "what is left out is said: {err}"
    );
    let first = dir.path().join("exported.yaml");
    std::fs::write(&first, &exported).unwrap();
    for doc in yaml_docs(&exported) {
        assert_eq!(doc["apiVersion"], "openslo/v1");
        assert_eq!(doc["kind"], "SLO");
        assert_eq!(doc["spec"]["budgetingMethod"], "Occurrences");
    }
    let (code, imported, err) = import(&[&first]);
    assert_eq!(code, 0, "{err}");
    let back = dir.path().join("imported.yaml");
    std::fs::write(&back, &imported).unwrap();
    let (code, out, _) = governor(&["validate", back.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");

    // Each example's objectives, window, namespace and target survive.
    let imported: Vec<Value> = yaml_docs(&imported);
    for entry in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let original: ServiceLevelObjective =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = original.metadata.name.clone().unwrap();
        let back = imported
            .iter()
            .find(|d| d["metadata"]["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} not imported"));
        let back: ServiceLevelObjective = serde_json::from_value(back.clone()).unwrap();
        assert_eq!(back.metadata.namespace, original.metadata.namespace);
        assert_eq!(back.spec.target_ref, original.spec.target_ref);
        assert_eq!(back.spec.objectives.window, original.spec.objectives.window);
        assert_eq!(
            back.spec.objectives.latency.targets(),
            original.spec.objectives.latency.targets()
        );
        let allowed = |s: &ServiceLevelObjective| {
            governor::rules::allowed_error_share(&s.spec.objectives)
                .map(|a| (a * 1e9).round() / 1e9)
        };
        assert_eq!(allowed(&back), allowed(&original), "{name}");
    }

    // Exporting the import gives the same OpenSLO documents.
    let (code, again, err) = governor(&["export", "openslo", back.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let sorted = |text: &str| {
        let mut docs: Vec<String> = yaml_docs(text).iter().map(|d| d.to_string()).collect();
        docs.sort();
        docs
    };
    assert_eq!(sorted(&again), sorted(&exported));
}

#[test]
fn what_openslo_says_and_governor_cannot_is_refused_naming_the_field() {
    let (code, out, err) = import(&[&fixture("openslo/refused.yaml")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.is_empty(), "nothing printed when refused: {out}");
    let expected = std::fs::read_to_string(fixture("openslo/refused.expected")).unwrap();
    for line in expected.lines().filter(|l| !l.is_empty()) {
        assert!(err.contains(line), "missing {line:?} in:\n{err}");
    }
    assert_eq!(err.lines().count(), expected.lines().count(), "{err}");

    // A reference to an SLI in no file, and a document that is not OpenSLO v1.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("refs.yaml");
    std::fs::write(
        &file,
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: lost}\nspec:\n  service: web\n  indicatorRef: nowhere\n  budgetingMethod: Occurrences\n  objectives: [{target: 0.99}]\n",
    )
    .unwrap();
    let (code, _, err) = import(&[&file]);
    assert_eq!(code, 1);
    assert!(
        err.contains(r#"SLO/lost: spec.indicatorRef: no SLI named "nowhere" in the files"#),
        "{err}"
    );
    std::fs::write(
        &file,
        "apiVersion: openslo/v2alpha\nkind: SLO\nmetadata: {name: x}\n",
    )
    .unwrap();
    let (code, _, err) = import(&[&file]);
    assert_eq!(code, 1);
    assert!(
        err.contains("apiVersion") && err.contains("openslo/v1"),
        "{err}"
    );
}
