//! Kubernetes label values and object names derived from an SLO's name.
//!
//! An SLO's name may be up to 253 characters (a DNS subdomain), but a label
//! value is at most 63, and a name with a suffix appended may pass 253. Every
//! label value and derived name Governor writes goes through [`label_value`] or
//! [`derived_name`], so writing and selecting always agree: a value that already
//! fits is kept as is, a longer one becomes a prefix, `-`, and a hash of the
//! whole value.

use ring::digest::{SHA256, digest};

/// Longest Kubernetes label value.
pub const MAX_LABEL_VALUE: usize = 63;
/// Longest Kubernetes object name (a DNS subdomain).
pub const MAX_OBJECT_NAME: usize = 253;
/// Hex digits of SHA-256 kept in a shortened value (64 bits).
const HASH_DIGITS: usize = 16;

/// Whether `s` is a valid label value: empty, or at most 63 characters of
/// `[-_.a-zA-Z0-9]` that begin and end with an alphanumeric.
pub fn is_label_value(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    let bytes = s.as_bytes();
    s.len() <= MAX_LABEL_VALUE
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `value` as a label value: unchanged when it is a valid one, otherwise the
/// longest usable prefix of it, `-`, and 16 hex digits of its SHA-256 — always a
/// valid label value, and the same for the same input.
pub fn label_value(value: &str) -> String {
    if is_label_value(value) {
        return value.to_string();
    }
    let hash = short_hash(value);
    let room = MAX_LABEL_VALUE - HASH_DIGITS - 1;
    let kept: String = value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(room)
        .collect();
    let prefix = kept.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

/// The name `<base><suffix>` for an object derived from the object `base` (e.g.
/// `<slo>-slo-rules`), kept within 253 characters: when too long, `base` is cut
/// and a hash of it added before the suffix. `base` should be a valid object
/// name and `suffix` short (well under 253 characters).
pub fn derived_name(base: &str, suffix: &str) -> String {
    if base.len() + suffix.len() <= MAX_OBJECT_NAME {
        return format!("{base}{suffix}");
    }
    let hash = short_hash(base);
    let room = MAX_OBJECT_NAME.saturating_sub(suffix.len() + HASH_DIGITS + 1);
    let kept: String = base.chars().take(room).collect();
    let prefix = kept.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if prefix.is_empty() {
        format!("{hash}{suffix}")
    } else {
        format!("{prefix}-{hash}{suffix}")
    }
}

/// The first 16 hex digits of the SHA-256 of `s`.
fn short_hash(s: &str) -> String {
    digest(&SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .take(HASH_DIGITS / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_values_are_kept() {
        for v in ["", "a", "roadtrip-api", "A.b_c-9", &"x".repeat(63)] {
            assert_eq!(label_value(v), v);
        }
    }

    #[test]
    fn long_values_are_cut_and_hashed() {
        let long = format!("checkout-{}", "a".repeat(240));
        let v = label_value(&long);
        assert!(is_label_value(&v), "{v}");
        assert_eq!(v.len(), 63);
        assert!(v.starts_with("checkout-aaaa"), "{v}");
        assert_eq!(v, label_value(&long), "stable");
        // Two names sharing the kept prefix still differ.
        let other = format!("checkout-{}b", "a".repeat(239));
        assert_ne!(label_value(&other), v);
        // Known hash: the first 8 bytes of SHA-256("x" * 64).
        let v = label_value(&"x".repeat(64));
        assert_eq!(
            v,
            format!("{}-{}", "x".repeat(46), short_hash(&"x".repeat(64)))
        );
        assert_eq!(short_hash("abc"), "ba7816bf8f01cfea");
    }

    #[test]
    fn invalid_characters_and_edges_are_dropped() {
        for v in ["-a-", "a b", "{{ x }}", "é", "--", ".a.", "a-"] {
            let got = label_value(v);
            assert!(is_label_value(&got), "{v:?} -> {got:?}");
            assert_ne!(got, v);
            assert!(got.len() <= MAX_LABEL_VALUE);
        }
        assert!(label_value("-a-").starts_with("a-"));
        assert_eq!(label_value("--").len(), HASH_DIGITS);
    }

    #[test]
    fn derived_names_stay_within_253() {
        assert_eq!(derived_name("api", "-slo-rules"), "api-slo-rules");
        let fits = "a".repeat(243);
        assert_eq!(
            derived_name(&fits, "-slo-rules"),
            format!("{fits}-slo-rules")
        );
        for len in [244, 250, 253] {
            let base = format!("{}.b-c", "a".repeat(len - 4));
            let name = derived_name(&base, "-slo-rules");
            assert_eq!(name.len(), 253, "{name}");
            assert!(name.ends_with("-slo-rules"));
            assert!(name.starts_with("aaaa"));
            assert_eq!(name, derived_name(&base, "-slo-rules"), "stable");
            let key = derived_name(&base, ".rules.yaml");
            assert!(key.len() <= 253 && key.ends_with(".rules.yaml"));
        }
    }

    fn is_dns_subdomain(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= MAX_OBJECT_NAME
            && s.split('.').all(|part| {
                let b = part.as_bytes();
                !b.is_empty()
                    && b[0].is_ascii_alphanumeric()
                    && b[b.len() - 1].is_ascii_alphanumeric()
                    && b.iter()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            })
    }

    proptest::proptest! {
        #[test]
        fn label_value_is_always_a_valid_label_value(s in "\\PC{0,300}") {
            let v = label_value(&s);
            proptest::prop_assert!(is_label_value(&v), "{:?} -> {:?}", s, v);
            proptest::prop_assert_eq!(&v, &label_value(&s));
            if is_label_value(&s) {
                proptest::prop_assert_eq!(&v, &s);
            }
        }

        #[test]
        fn label_value_of_object_names_is_valid(s in "[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?") {
            let v = label_value(&s);
            proptest::prop_assert!(is_label_value(&v), "{:?} -> {:?}", s, v);
            proptest::prop_assert!(!v.is_empty());
        }

        #[test]
        fn derived_names_are_object_names(s in "[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?") {
            for suffix in ["-slo-rules", "-warm"] {
                let name = derived_name(&s, suffix);
                proptest::prop_assert!(is_dns_subdomain(&name), "{:?} -> {:?}", s, name);
            }
        }
    }
}
