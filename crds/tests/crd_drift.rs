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
        serde_json::json!(["slo", "slos"])
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
        ["P99", "Target", "Replicas", "Desired", "State", "Age"]
    );
}
