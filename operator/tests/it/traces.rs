//! Trace latency against the real Jaeger: `governor sim serve --otlp` exports
//! its requests as spans; the Jaeger source's percentiles must agree with the
//! simulator's exact quantiles, and the slowest traces must come back.
//!
//! Tolerance: P50 within 10 %, P90 within 15 %, P99 within 30 % (the voice
//! service exports every request; a 15 s window holds about 400 of them).

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::observe::jaeger::JaegerSource;
use governor_tests::{Jaeger, wait_until};

use crate::common::gate;
use crate::common::{start_sim, truth, wait_sim_time};

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

#[tokio::test]
async fn jaeger_percentiles_match_ground_truth() {
    let _slot = gate::heavy().await;
    let jaeger = Jaeger::start().await.unwrap();
    let (_sim, addr) = start_sim(&["--scenario", "audit", "--otlp", &jaeger.otlp_http_url]).await;

    let source = JaegerSource::new(&jaeger.query_url, Duration::from_secs(5)).unwrap();
    let window = Duration::from_secs(15);
    // Wait until Jaeger holds a full window of the voice service's spans.
    wait_sim_time(&addr, 20.0).await;
    // Spans are batched: give the exporter a moment to flush the latest ones.
    let p = wait_until("voice percentiles", Duration::from_secs(30), || {
        let source = &source;
        async move {
            source
                .percentiles("roadtrip-voice", Some("POST /api/voice"), window, now_us())
                .await
                .ok()
        }
    })
    .await
    .unwrap();
    let truth = truth(&addr, 15).await;
    let voice = truth
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["service"] == "roadtrip-voice")
        .unwrap();
    for (q, est, tolerance) in [
        ("p50", p.p50, 0.10),
        ("p90", p.p90, 0.15),
        ("p99", p.p99, 0.30),
    ] {
        let est = est.unwrap();
        let real = voice[q].as_f64().unwrap();
        assert!(
            (est - real).abs() <= tolerance * real,
            "{q}: Jaeger {est:.4}s vs truth {real:.4}s (tolerance {:.0} %)",
            tolerance * 100.0
        );
    }

    // The slowest traces, slowest first, each a real trace of the service.
    let slowest = source
        .slowest("roadtrip-voice", 5, window, now_us())
        .await
        .unwrap();
    assert_eq!(slowest.len(), 5);
    assert!(
        slowest
            .windows(2)
            .all(|w| w[0].duration_ms >= w[1].duration_ms)
    );
    assert_eq!(slowest[0].root_operation, "POST /api/voice");
    assert_eq!(slowest[0].trace_id.len(), 32);
    assert!(slowest[0].duration_ms >= p.p99.unwrap() * 1000.0 * 0.9);

    // An unknown service is an error that names it, not zeros.
    let err = source
        .percentiles("no-such-service", None, window, now_us())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no-such-service"), "{err}");

    // And governor observe reads the voice SLO's latency from Jaeger.
    let example = governor_tests::repo_root().join("examples/voice.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_governor"))
        .args([
            "observe",
            "--prometheus",
            "http://127.0.0.1:1",
            "--jaeger",
            &jaeger.query_url,
            "--timeout",
            "2",
        ])
        .arg(&example)
        .output()
        .unwrap();
    let cycle: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let slo = &cycle["slos"][0];
    assert!(slo["observation"]["latency"]["p99"].is_number(), "{slo:#}");
    assert!(
        slo["missing"]["Requests"]
            .as_str()
            .unwrap()
            .contains("query failed"),
        "Prometheus is unreachable here: {slo:#}"
    );
}
