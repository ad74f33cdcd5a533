//! Labels and annotations an installation adds to the objects holding an SLO's
//! rules (`--rules-label`, `--rules-annotation`): e.g. the label a
//! Prometheus's `ruleSelector` picks PrometheusRules by. Checked once, when the
//! flags are parsed; Governor's own labels can never be overridden.

use std::collections::BTreeMap;

use governor_crds::names::{MAX_LABEL_VALUE, is_label_value};

/// The labels Governor sets on its rules objects itself: who manages them,
/// and the SLO they belong to (selected by).
pub const OWN_LABELS: [&str; 2] = ["app.kubernetes.io/managed-by", "governor.dev/slo"];
/// Keys under this prefix are Governor's own.
const OWN_PREFIX: &str = "governor.dev/";
/// Kubernetes refuses an object whose annotations pass 256 KiB in all.
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// What an installation adds to every rules object, besides Governor's own
/// labels and owner reference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtraMetadata {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl ExtraMetadata {
    /// Collects the parsed `--rules-label` and `--rules-annotation` values;
    /// one key given two different values is refused, naming the flag.
    pub fn new(
        labels: &[(String, String)],
        annotations: &[(String, String)],
    ) -> Result<Self, String> {
        let labels = collect("--rules-label", labels)?;
        let annotations = collect("--rules-annotation", annotations)?;
        let size: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_ANNOTATIONS_BYTES {
            return Err(format!(
                "--rules-annotation: {size} bytes in all; Kubernetes allows at most {MAX_ANNOTATIONS_BYTES}"
            ));
        }
        Ok(Self {
            labels,
            annotations,
        })
    }
}

fn collect(flag: &str, pairs: &[(String, String)]) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for (key, value) in pairs {
        if let Some(earlier) = map.insert(key.clone(), value.clone())
            && &earlier != value
        {
            return Err(format!(
                "{flag}: {key} is given twice, as {earlier:?} and {value:?}"
            ));
        }
    }
    Ok(map)
}

/// Parses one `--rules-label KEY=VALUE`: a label key and a label value as
/// Kubernetes accepts them, and not one of Governor's own.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let (key, value) = split(s)?;
    check_key(key, "a label")?;
    if OWN_LABELS.contains(&key) || key.starts_with(OWN_PREFIX) {
        return Err(format!(
            "{key} is a label Governor sets itself on its rules objects (it owns and selects them by it); use another key"
        ));
    }
    if !is_label_value(value) {
        return Err(format!(
            "{value:?} is not a label value: at most {MAX_LABEL_VALUE} characters of A-Z, a-z, 0-9, '-', '_' and '.', beginning and ending with a letter or digit"
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// Parses one `--rules-annotation KEY=VALUE`: an annotation key as Kubernetes
/// accepts it, not under `governor.dev/`; the value is free text.
pub fn parse_annotation(s: &str) -> Result<(String, String), String> {
    let (key, value) = split(s)?;
    check_key(key, "an annotation")?;
    if key.starts_with(OWN_PREFIX) {
        return Err(format!(
            "{key}: keys under {OWN_PREFIX} are Governor's own; use another key"
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

fn split(s: &str) -> Result<(&str, &str), String> {
    s.split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// A key as Kubernetes accepts it for labels and annotations: an optional DNS
/// subdomain prefix and `/`, then a name of at most 63 characters.
fn check_key(key: &str, what: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Err(format!(
            "{key:?} is not {what} key: the prefix before '/' must be a DNS subdomain (lower-case letters, digits, '-' and '.', at most 253 characters)"
        ));
    }
    if name.is_empty() || !is_label_value(name) {
        return Err(format!(
            "{key:?} is not {what} key: the name must be 1 to {MAX_LABEL_VALUE} characters of A-Z, a-z, 0-9, '-', '_' and '.', beginning and ending with a letter or digit"
        ));
    }
    Ok(())
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_as_kubernetes_accepts_them() {
        for (s, key, value) in [
            (
                "release=kube-prometheus-stack",
                "release",
                "kube-prometheus-stack",
            ),
            ("prometheus=", "prometheus", ""),
            ("example.com/team=sre_1.a", "example.com/team", "sre_1.a"),
            ("A.b_c-9=X", "A.b_c-9", "X"),
        ] {
            assert_eq!(parse_label(s), Ok((key.into(), value.into())), "{s}");
        }
        for (s, why) in [
            ("release", "expected KEY=VALUE"),
            ("=x", "not a label key"),
            ("Example.com/team=x", "DNS subdomain"),
            ("/team=x", "DNS subdomain"),
            ("example.com/=x", "not a label key"),
            ("team name=x", "not a label key"),
            (&format!("{}=x", "k".repeat(64)), "not a label key"),
            ("team=a b", "not a label value"),
            ("team=-a", "not a label value"),
            ("a=b=c", "not a label value"),
            (&format!("team={}", "v".repeat(64)), "not a label value"),
            ("app.kubernetes.io/managed-by=helm", "Governor sets itself"),
            ("governor.dev/slo=x", "Governor sets itself"),
            ("governor.dev/other=x", "Governor sets itself"),
        ] {
            let err = parse_label(s).unwrap_err();
            assert!(err.contains(why), "{s}: {err}");
        }
    }

    #[test]
    fn annotations_take_free_text_values_under_valid_keys() {
        assert_eq!(
            parse_annotation("example.com/note=a, b: c=d"),
            Ok(("example.com/note".into(), "a, b: c=d".into()))
        );
        for (s, why) in [
            ("note", "expected KEY=VALUE"),
            ("bad key=x", "not an annotation key"),
            ("governor.dev/x=y", "Governor's own"),
        ] {
            let err = parse_annotation(s).unwrap_err();
            assert!(err.contains(why), "{s}: {err}");
        }
    }

    #[test]
    fn a_key_given_two_values_is_refused() {
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        let same = ExtraMetadata::new(&[pair("a", "1"), pair("a", "1")], &[]).unwrap();
        assert_eq!(same.labels.len(), 1);
        let err = ExtraMetadata::new(&[pair("a", "1"), pair("a", "2")], &[]).unwrap_err();
        assert!(
            err.contains("--rules-label") && err.contains("twice"),
            "{err}"
        );
        let big = "x".repeat(MAX_ANNOTATIONS_BYTES);
        let err = ExtraMetadata::new(&[], &[pair("note", &big)]).unwrap_err();
        assert!(err.contains("--rules-annotation"), "{err}");
    }
}
