use super::indicators::{histogram_quantile, seconds_text};
use super::*;

#[test]
fn histogram_quantile_gives_the_quantile_and_the_bucket_rates() {
    let (q, x) =
        histogram_quantile("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))").unwrap();
    assert_eq!(q, Quantile::P99);
    assert_eq!(x, "sum by (le) (rate(h_bucket[5m]))");
    assert!(histogram_quantile("histogram_quantile(0.42, rate(h_bucket[5m]))").is_none());
    assert!(histogram_quantile("max(h)").is_none());
    assert_eq!(seconds_text(0.1), "100ms");
    assert_eq!(seconds_text(0.0005), "0.0005s");
}

fn jaeger_slo(source_spec: &str) -> Documents {
    let mut docs = Documents::default();
    docs.add(&format!(
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {{name: voice}}\nspec:\n  service: voice\n  budgetingMethod: Occurrences\n  indicator:\n    metadata: {{name: voice-p99}}\n    spec:\n      thresholdMetric:\n        metricSource: {{type: Jaeger, spec: {source_spec}}}\n  objectives: [{{op: lte, value: 0.25, target: 0.99}}]\n"
    ))
    .unwrap();
    docs
}

#[test]
fn a_jaeger_threshold_metric_is_a_latency_target_read_from_traces() {
    let out = import(
        &jaeger_slo("{quantile: 0.99, service: tts, operation: POST /api/voice}"),
        "shop",
    )
    .unwrap();
    let spec = &out[0]["spec"];
    assert_eq!(spec["objectives"]["latency"]["p99"], "250ms");
    assert_eq!(spec["indicators"]["source"], "jaeger");
    assert_eq!(spec["indicators"]["jaeger"]["service"], "tts");
    assert_eq!(spec["indicators"]["jaeger"]["operation"], "POST /api/voice");

    let refused = import(&jaeger_slo("{service: tts}"), "shop").unwrap_err();
    assert_eq!(
        refused[0].field,
        "spec.indicator.spec.thresholdMetric.metricSource.spec.quantile"
    );
}
