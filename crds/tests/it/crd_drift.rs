//! The committed CRD must be exactly what the Rust types generate.

use std::path::PathBuf;

use governor_crds::{CRD_FILE, crd_yaml};

fn committed() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(CRD_FILE);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn committed_crd_matches_the_types() {
    let generated = crd_yaml();
    let committed = committed();
    if generated != committed {
        let first = generated
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "length differs".to_string(),
                |i| format!("first difference at line {}", i + 1),
            );
        panic!("crds/{CRD_FILE} is stale ({first}); run `cargo run -p governor -- crdgen`");
    }
}

#[test]
fn doc_comments_become_descriptions() {
    let yaml = crd_yaml();
    for doc in [
        "Fewest replicas, whatever the load.",
        "Share of maxConnections Governor may hand out, in (0, 1].",
        "Seconds a finished Job is kept (ttlSecondsAfterFinished).",
    ] {
        assert!(yaml.contains(doc), "CRD lacks the description {doc:?}");
    }
}

#[test]
fn crd_names_and_columns() {
    let yaml = crd_yaml();
    let crd: serde_json::Value =
        serde_yaml_ng::from_str(yaml.trim_start_matches(|c| c != '-')).unwrap();
    assert_eq!(crd["spec"]["group"], "governor.dev");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(
        crd["spec"]["names"]["shortNames"],
        serde_json::json!(["gslo"]),
        "no short name Pyrra's CRD also claims"
    );
    assert_eq!(
        crd["spec"]["names"]["categories"],
        serde_json::json!(["governor"])
    );
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object());
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "P99", "Target", "Replicas", "Desired", "State", "Ready", "Age"
        ]
    );
    let column = |name: &str| {
        version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["jsonPath"]
            .clone()
    };
    assert_eq!(column("Target"), ".status.tightestTarget");
    assert_eq!(
        column("Ready"),
        r#".status.conditions[?(@.type=="Ready")].status"#
    );
}

/// Walks `spec.a.b` through the CRD's OpenAPI schema.
fn schema_has(schema: &serde_json::Value, path: &str) -> bool {
    let mut node = schema;
    for part in path.split('.') {
        match node["properties"].get(part) {
            Some(next) => node = next,
            None => return false,
        }
    }
    true
}

#[test]
fn readme_reference_matches_the_crd() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let start = readme
        .find("<!-- reference:start -->")
        .expect("reference start marker");
    let end = readme
        .find("<!-- reference:end -->")
        .expect("reference end marker");
    let yaml = crd_yaml();
    let crd: serde_json::Value =
        serde_yaml_ng::from_str(yaml.trim_start_matches(|c| c != '-')).unwrap();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut checked = 0;
    for row in readme[start..end].lines().filter(|l| l.starts_with("| `")) {
        // First cell: `spec.a.b` or `spec.a.b` / `c` / `d` (siblings of b).
        let cell = row.split('|').nth(1).unwrap_or_default();
        let names: Vec<&str> = cell.split('`').skip(1).step_by(2).collect();
        let first = names[0];
        let parent = first.rsplit_once('.').map_or("", |(p, _)| p);
        for name in &names {
            let path = if name.contains('.') {
                name.to_string()
            } else {
                format!("{parent}.{name}")
            };
            assert!(
                schema_has(schema, &path),
                "README documents {path}, which the CRD lacks"
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} fields checked");
    // And the other way: every top-level spec field is documented.
    for field in schema["properties"]["spec"]["properties"]
        .as_object()
        .unwrap()
        .keys()
    {
        assert!(
            readme[start..end].contains(&format!("`spec.{field}")),
            "README lacks spec.{field}"
        );
    }
}
