//! PromQL safety: names are validated, label values escaped, raw queries parsed.
//! Every value that comes from a resource passes through here before it reaches
//! Prometheus.

/// True for a valid Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// True for a valid label name that users may set: `[a-zA-Z_][a-zA-Z0-9_]*`, not
/// reserved (`__` prefix).
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

/// Escapes a value for a double-quoted PromQL string literal.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a literal string so it matches only itself inside a PromQL regex
/// matcher (`=~`), then for the string literal around it.
pub fn escape_regex_literal(value: &str) -> String {
    let mut re = String::with_capacity(value.len() * 2);
    for c in value.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            re.push('\\');
        }
        re.push(c);
    }
    escape_label_value(&re)
}

/// Parses a PromQL expression; the error names what is wrong.
pub fn check_query(query: &str) -> Result<(), String> {
    if query.trim().is_empty() {
        return Err("PromQL query is empty".into());
    }
    promql_parser::parser::parse(query)
        .map(|_| ())
        .map_err(|e| format!("invalid PromQL: {e}"))
}

/// Checks that `regex` is a valid PromQL (RE2) regular expression.
pub fn check_regex(regex: &str) -> Result<(), String> {
    let probe = format!("up{{x=~\"{}\"}}", escape_label_value(regex));
    promql_parser::parser::parse(&probe)
        .map(|_| ())
        .map_err(|e| format!("invalid regular expression: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_metric_name("http_server_request_duration_seconds"));
        assert!(is_metric_name("ns:rate5m"));
        assert!(!is_metric_name("1abc"));
        assert!(!is_metric_name("a-b"));
        assert!(!is_metric_name(""));
        assert!(is_label_name("http_route"));
        assert!(!is_label_name("__name__"));
        assert!(!is_label_name("a:b"));
    }

    #[test]
    fn hostile_values_stay_literal() {
        for hostile in [
            "a\"} or vector(1) #",
            "back\\slash",
            "new\nline",
            "\"}",
            "x\\\"}",
        ] {
            let q = format!("up{{service=\"{}\"}}", escape_label_value(hostile));
            let expr = promql_parser::parser::parse(&q).expect("escaped query parses");
            let text = format!("{expr:?}");
            assert!(
                !text.contains("Binary"),
                "{hostile:?} changed the query: {text}"
            );
        }
    }

    #[test]
    fn regex_literal_matches_only_itself() {
        assert_eq!(escape_regex_literal("a.b"), "a\\\\.b");
        check_regex("5..").unwrap();
        assert!(check_regex("5(").is_err());
    }

    #[test]
    fn queries() {
        check_query("sum by (service) (rate(x_total[1m]))").unwrap();
        assert!(
            check_query("sum by (service (rate(x[1m]))")
                .unwrap_err()
                .contains("invalid PromQL")
        );
        assert!(check_query("  ").is_err());
    }
}
