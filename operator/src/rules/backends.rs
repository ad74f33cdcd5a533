//! The rule files of the Prometheus-compatible rulers that read Prometheus's
//! groups with a field or a wrapper of their own: Thanos Ruler
//! (`partial_response_strategy` per group) and the Mimir or Cortex ruler (a
//! namespace file, as `mimirtool rules load|sync|check` reads it).

use serde::Serialize;

use super::RuleGroup;

/// What Thanos Ruler does when a store answers only in part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PartialResponse {
    /// Fail the evaluation: an alert is never computed from half the data.
    #[default]
    Abort,
    /// Evaluate on what answered, with a warning.
    Warn,
}

#[derive(Serialize)]
struct ThanosGroup<'a> {
    #[serde(flatten)]
    group: &'a RuleGroup,
    partial_response_strategy: PartialResponse,
}

#[derive(Serialize)]
struct ThanosFile<'a> {
    groups: Vec<ThanosGroup<'a>>,
}

/// A Thanos Ruler rule file: the groups, each with `partial_response_strategy`.
pub fn thanos(
    groups: &[RuleGroup],
    strategy: PartialResponse,
) -> Result<String, serde_yaml_ng::Error> {
    let file = ThanosFile {
        groups: groups
            .iter()
            .map(|group| ThanosGroup {
                group,
                partial_response_strategy: strategy,
            })
            .collect(),
    };
    serde_yaml_ng::to_string(&file)
}

#[derive(Serialize)]
struct MimirNamespace<'a> {
    namespace: &'a str,
    groups: &'a [RuleGroup],
}

/// A Mimir (or Cortex) ruler namespace file: the groups under `namespace`.
pub fn mimir(namespace: &str, groups: &[RuleGroup]) -> Result<String, serde_yaml_ng::Error> {
    serde_yaml_ng::to_string(&MimirNamespace { namespace, groups })
}

/// A ruler namespace name as Mimir accepts it: not empty, and no `/` (it
/// becomes a path segment of the ruler API).
pub fn parse_ruler_namespace(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains('/') || s.chars().any(char::is_control) {
        return Err(format!(
            "{s:?} cannot be a ruler namespace: it must be non-empty, without '/' or control characters"
        ));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Rule;

    fn group() -> RuleGroup {
        RuleGroup {
            name: "g".into(),
            interval: Some("1m".into()),
            rules: vec![Rule {
                record: Some("r".into()),
                expr: "1".into(),
                ..Rule::default()
            }],
        }
    }

    #[test]
    fn thanos_groups_carry_the_strategy_beside_prometheus_fields() {
        let text = thanos(&[group()], PartialResponse::Abort).unwrap();
        let v: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(v["groups"][0]["name"], "g");
        assert_eq!(v["groups"][0]["interval"], "1m");
        assert_eq!(v["groups"][0]["partial_response_strategy"], "abort");
        assert_eq!(v["groups"][0]["rules"][0]["record"], "r");
    }

    #[test]
    fn the_mimir_file_names_its_namespace() {
        let v: serde_json::Value =
            serde_yaml_ng::from_str(&mimir("governor", &[group()]).unwrap()).unwrap();
        assert_eq!(v["namespace"], "governor");
        assert_eq!(v["groups"][0]["name"], "g");
        assert!(parse_ruler_namespace("a/b").unwrap_err().contains("'/'"));
        assert!(parse_ruler_namespace("").is_err());
    }
}
