//! Prometheus, Alertmanager and Jaeger from the toolchain, proven on loopback:
//! a scrape answered by PromQL, an alert delivered to a webhook, a span stored
//! and returned by Jaeger's query API.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use governor_tests::{Alertmanager, Jaeger, Prometheus, Webhook, wait_until};

/// Serves `router` on a free loopback port; returns `host:port`.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

#[tokio::test]
async fn prometheus_scrapes_an_exporter_and_answers_promql() {
    let exporter = serve(Router::new().route(
        "/metrics",
        get(|| async {
            "# TYPE governor_test_requests_total counter\n\
             governor_test_requests_total{service=\"roadtrip-api\"} 42\n\
             governor_test_requests_total{service=\"roadtrip-voice\"} 7\n"
        }),
    ))
    .await;
    let prom = Prometheus::start(std::slice::from_ref(&exporter))
        .await
        .unwrap();

    let result = wait_until("the first scrape", Duration::from_secs(30), || async {
        let r = prom
            .query(r#"governor_test_requests_total{service="roadtrip-api"}"#)
            .await
            .ok()?;
        (!r.is_empty()).then_some(r)
    })
    .await
    .unwrap();
    assert_eq!(result.len(), 1);
    assert_eq!(result[0]["metric"]["instance"], exporter.as_str());
    assert_eq!(result[0]["value"][1], "42");

    let sum = prom
        .query("sum(governor_test_requests_total)")
        .await
        .unwrap();
    assert_eq!(sum[0]["value"][1], "49");
    // Invalid PromQL is an error, not an empty answer.
    assert!(prom.query("sum(").await.is_err());
}

#[tokio::test]
async fn alertmanager_delivers_an_alert_to_the_webhook() {
    let webhook = Webhook::start().await.unwrap();
    let am = Alertmanager::start(&webhook.url).await.unwrap();

    let alert = serde_json::json!([{
        "labels": {"alertname": "SLOBurnRateHigh", "slo": "roadtrip-api", "severity": "page"},
        "annotations": {"summary": "roadtrip-api is burning its error budget at 14.4x"}
    }]);
    let response = reqwest::Client::new()
        .post(format!("{}/api/v2/alerts", am.url))
        .json(&alert)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());

    let body = wait_until("the webhook call", Duration::from_secs(30), || async {
        webhook.received().first().map(|r| r.1.clone())
    })
    .await
    .unwrap();
    assert_eq!(body["status"], "firing");
    assert_eq!(body["alerts"][0]["labels"]["alertname"], "SLOBurnRateHigh");
    assert_eq!(body["alerts"][0]["labels"]["slo"], "roadtrip-api");
}

#[tokio::test]
async fn jaeger_stores_an_otlp_span_and_returns_it() {
    let jaeger = Jaeger::start().await.unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let trace_id = "5b8efff798038103d269b633813fc60c";
    let span = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "roadtrip-voice"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": trace_id,
            "spanId": "eee19b7ec3c1b174",
            "name": "POST /api/voice",
            "kind": 2,
            "startTimeUnixNano": (now - 800_000_000).to_string(),
            "endTimeUnixNano": now.to_string()
        }]}]
    }]});
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/v1/traces", jaeger.otlp_http_url))
        .json(&span)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());

    let start_us = (now / 1000 - 60_000_000).to_string();
    let end_us = (now / 1000 + 60_000_000).to_string();
    let url = format!("{}/api/traces", jaeger.query_url);
    let traces = wait_until("the span in Jaeger", Duration::from_secs(30), || {
        let (http, url, start_us, end_us) =
            (http.clone(), url.clone(), start_us.clone(), end_us.clone());
        async move {
            let body: serde_json::Value = http
                .get(&url)
                .query(&[
                    ("service", "roadtrip-voice"),
                    ("start", &start_us),
                    ("end", &end_us),
                    ("limit", "20"),
                ])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let data = body["data"].as_array()?.clone();
            (!data.is_empty()).then_some(data)
        }
    })
    .await
    .unwrap();
    assert_eq!(traces[0]["traceID"], trace_id);
    let span = &traces[0]["spans"][0];
    assert_eq!(span["operationName"], "POST /api/voice");
    assert_eq!(span["duration"], 800_000, "duration in microseconds");
}
