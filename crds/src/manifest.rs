//! Reading ServiceLevelObjectives from YAML or JSON manifests, with every problem
//! reported by document and field path. Never panics, whatever the input.

use serde::Deserialize;
use serde_json::Value;

use crate::v1alpha1::ServiceLevelObjective;
use crate::validate::Problem;

/// Larger manifests are refused unread (the API server's own limit is about 1.5 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

pub const API_VERSION: &str = "governor.dev/v1alpha1";
pub const KIND: &str = "ServiceLevelObjective";

/// One document of a manifest and what came of it.
#[derive(Debug)]
pub struct Document {
    /// 1-based position in the file.
    pub index: usize,
    /// `namespace/name` when the document has them, else `name`, else `document N`.
    pub object: String,
    pub result: Result<ServiceLevelObjective, Vec<Problem>>,
}

/// Parses every document in `text`; empty documents are skipped. A UTF-8 byte
/// order mark at the start (as some Windows editors write) is ignored.
pub fn parse_documents(text: &str) -> Vec<Document> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.len() > MAX_MANIFEST_BYTES {
        return vec![Document {
            index: 1,
            object: "document 1".into(),
            result: Err(vec![Problem::new(
                "",
                format!(
                    "manifest is {} bytes; the limit is {MAX_MANIFEST_BYTES}",
                    text.len()
                ),
            )]),
        }];
    }
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let value = match Value::deserialize(doc) {
            Ok(Value::Null) => continue,
            Ok(v) => v,
            Err(e) => {
                out.push(Document {
                    index,
                    object: format!("document {index}"),
                    result: Err(vec![Problem::new("", format!("not valid YAML: {e}"))]),
                });
                // A syntax error leaves the stream unusable past this point.
                break;
            }
        };
        out.push(parse_value(index, value));
    }
    out
}

fn object_name(index: usize, value: &Value) -> String {
    let meta = value.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
    let ns = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str);
    match (ns, name) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        (None, Some(name)) => name.to_string(),
        _ => format!("document {index}"),
    }
}

/// Checks one decoded document: kind, shape (with the failing field's path), then
/// the spec's rules.
pub fn parse_value(index: usize, value: Value) -> Document {
    let object = object_name(index, &value);
    let result = check_value(value);
    Document {
        index,
        object,
        result,
    }
}

fn check_value(value: Value) -> Result<ServiceLevelObjective, Vec<Problem>> {
    let Value::Object(map) = &value else {
        return Err(vec![Problem::new(
            "",
            "expected a Kubernetes object (a YAML mapping)",
        )]);
    };
    let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    let mut problems = Vec::new();
    if kind != KIND {
        problems.push(Problem::new(
            "kind",
            format!("expected {KIND}, found {kind:?}"),
        ));
    }
    if api_version != API_VERSION {
        problems.push(Problem::new(
            "apiVersion",
            format!("expected {API_VERSION}, found {api_version:?}"),
        ));
    }
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str);
    if name.is_none_or(str::is_empty) {
        problems.push(Problem::new("metadata.name", "is required"));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let slo: ServiceLevelObjective = match serde_path_to_error::deserialize(&value) {
        Ok(slo) => slo,
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let message = e.into_inner().to_string();
            return Err(vec![Problem::new(path, message)]);
        }
    };
    let mut problems = slo.spec.validate();
    if let Some(spec) = value.get("spec") {
        match serde_json::to_value(&slo.spec) {
            Ok(typed) => unknown_fields("spec", spec, &typed, &mut problems),
            Err(e) => problems.push(Problem::new("spec", format!("cannot be serialized: {e}"))),
        }
    }
    if problems.is_empty() {
        Ok(slo)
    } else {
        Err(problems)
    }
}

/// Reports keys the user wrote that the API does not know (typos), which the API
/// server would silently prune.
fn unknown_fields(path: &str, given: &Value, known: &Value, problems: &mut Vec<Problem>) {
    match (given, known) {
        (Value::Object(g), Value::Object(k)) => {
            for (key, value) in g {
                let child = format!("{path}.{key}");
                match k.get(key) {
                    Some(kv) => unknown_fields(&child, value, kv, problems),
                    None if value.is_null() => {}
                    None => {
                        problems.push(Problem::new(child, "unknown field (check the spelling)"))
                    }
                }
            }
        }
        (Value::Array(g), Value::Array(k)) => {
            for (i, (gv, kv)) in g.iter().zip(k).enumerate() {
                unknown_fields(&format!("{path}[{i}]"), gv, kv, problems);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "apiVersion: governor.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: api, namespace: roadtrip}
spec:
  service: api
  targetRef: {name: api}
  objectives: {latency: {p99: 100ms}}
";

    #[test]
    fn minimal_is_valid_with_defaults() {
        let docs = parse_documents(MINIMAL);
        assert_eq!(docs.len(), 1);
        let slo = docs[0].result.as_ref().expect("valid");
        assert_eq!(docs[0].object, "roadtrip/api");
        assert_eq!(slo.spec.scaling.min_replicas, 1);
        assert_eq!(slo.spec.objectives.window.to_string(), "30d");
        assert_eq!(slo.spec.target_ref.kind, "Deployment");
    }

    #[test]
    fn bad_duration_names_its_field() {
        let text = MINIMAL.replace("p99: 100ms", "p99: fast");
        let err = parse_documents(&text).remove(0).result.unwrap_err();
        assert_eq!(err[0].path, "spec.objectives.latency.p99");
        assert!(
            err[0].message.contains("invalid duration"),
            "{}",
            err[0].message
        );
    }

    #[test]
    fn typo_is_reported() {
        let text = MINIMAL.replace(
            "targetRef: {name: api}",
            "targetRef: {name: api}\n  scalling: {}",
        );
        let err = parse_documents(&text).remove(0).result.unwrap_err();
        assert_eq!(err[0].path, "spec.scalling");
    }

    #[test]
    fn wrong_kind_and_garbage() {
        let err = parse_documents("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
            .remove(0)
            .result
            .unwrap_err();
        assert!(err.iter().any(|p| p.path == "kind"));
        assert!(parse_documents("{{{{ not yaml").remove(0).result.is_err());
        assert!(parse_documents("- a\n- b\n").remove(0).result.is_err());
        assert!(parse_documents("").is_empty());
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        for text in [
            format!("\u{feff}{MINIMAL}"),
            format!("\u{feff}---\n{MINIMAL}"),
            format!(
                "\u{feff}{MINIMAL}---\n{}",
                MINIMAL.replace("name: api,", "name: b,")
            ),
        ] {
            let docs = parse_documents(&text);
            assert!(!docs.is_empty());
            for doc in &docs {
                assert!(doc.result.is_ok(), "{:?}", doc.result);
            }
            assert_eq!(docs[0].object, "roadtrip/api");
        }
        assert_eq!(
            parse_documents(&format!("\u{feff}{MINIMAL}---\n{MINIMAL}")).len(),
            2
        );
    }

    #[test]
    fn huge_input_is_refused_unread() {
        let text = "a".repeat(MAX_MANIFEST_BYTES + 1);
        let err = parse_documents(&text).remove(0).result.unwrap_err();
        assert!(err[0].message.contains("limit"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,300}") {
            let _ = parse_documents(&s);
        }

        #[test]
        fn never_panics_on_mutated_manifest(cut in 0usize..300, insert in "\\PC{0,8}") {
            let mut text = MINIMAL.to_string();
            let at = text.char_indices().map(|(i, _)| i).nth(cut % MINIMAL.len()).unwrap_or(0);
            text.insert_str(at, &insert);
            let _ = parse_documents(&text);
        }
    }
}
