//! The signal readers against a loopback server that misbehaves: answers of
//! 200 MB (streamed, declared or not), garbage, a body that never ends, and a
//! batch refused because of one SLO. Every reader fails with an error naming
//! the backend and the bound, reads no more than the bound, and a refused
//! batch is split so that only the offending SLO's signals go missing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use governor::observe::http::ByteSize;
use governor::observe::jaeger::{JaegerError, JaegerSource};
use governor::observe::prometheus::{PrometheusSource, QueryError};
use governor::sim::scenario::audit_spec;
use governor_crds::ServiceLevelObjectiveSpec;

const HUGE: u64 = 200 << 20;
const CHUNK: usize = 64 << 10;

#[derive(Default)]
struct Seen {
    /// Bytes of every streamed body the server has produced so far.
    streamed: AtomicU64,
    queries: AtomicUsize,
}

/// `HUGE` bytes of JSON-looking text, produced a chunk at a time as the
/// client reads (never allocated at once); `streamed` counts what was produced.
fn huge_body(seen: Arc<Seen>) -> Body {
    let chunk = Bytes::from(vec![b' '; CHUNK]);
    let chunks = HUGE / CHUNK as u64;
    let stream = futures::stream::iter(0..chunks).map(move |_| {
        seen.streamed.fetch_add(CHUNK as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(chunk.clone())
    });
    Body::from_stream(stream)
}

/// One answer per kind of misbehaviour, chosen by a word in the query
/// (Prometheus) or the service (Jaeger).
fn misbehave(word: &str, seen: Arc<Seen>) -> Option<Response> {
    Some(match word {
        "huge" => huge_body(seen).into_response(),
        "declared" => (
            [(header::CONTENT_LENGTH, HUGE.to_string())],
            huge_body(seen),
        )
            .into_response(),
        "garbage" => "<html>this is not JSON</html>".into_response(),
        "stall" => {
            let first = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from("{")) });
            Body::from_stream(first.chain(futures::stream::pending())).into_response()
        }
        _ => return None,
    })
}

#[derive(serde::Deserialize)]
struct PromForm {
    query: String,
}

async fn prometheus(State(seen): State<Arc<Seen>>, Form(f): Form<PromForm>) -> Response {
    seen.queries.fetch_add(1, Ordering::Relaxed);
    for word in ["huge", "declared", "garbage", "stall"] {
        if f.query.contains(&format!("<{word}>")) {
            return misbehave(word, seen).unwrap();
        }
    }
    if f.query.contains("poison") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({
                "status": "error", "errorType": "bad_data",
                "error": "parse error: this batch holds the poisoned SLO",
            })),
        )
            .into_response();
    }
    // Every service of the test, at 1 (including SLOs not asked for: their
    // series are ignored).
    let result: Vec<_> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|s| serde_json::json!({"metric": {"service": s}, "value": [1.0, "1"]}))
        .collect();
    axum::Json(serde_json::json!({
        "status": "success",
        "data": {"resultType": "vector", "result": result},
    }))
    .into_response()
}

#[derive(serde::Deserialize)]
struct TraceQuery {
    service: String,
}

async fn jaeger(State(seen): State<Arc<Seen>>, Query(q): Query<TraceQuery>) -> Response {
    misbehave(&q.service, seen)
        .unwrap_or_else(|| axum::Json(serde_json::json!({"data": []})).into_response())
}

async fn start() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/api/v1/query", post(prometheus))
        .route("/api/traces", get(jaeger))
        .with_state(seen.clone());
    (crate::common::serve_loopback(app).await, seen)
}

/// Peak resident memory of this process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Most bytes the server may have produced beyond what the client read:
/// the loopback socket buffers on both sides, and a chunk in flight.
const IN_FLIGHT: u64 = 24 << 20;

#[tokio::test]
async fn answers_beyond_the_limit_fail_naming_the_backend_and_are_not_buffered() {
    let (url, seen) = start().await;
    let prom = PrometheusSource::new(&url, Duration::from_secs(30)).unwrap();
    assert_eq!(prom.max_response_bytes, ByteSize(16 << 20));
    let before = peak_rss();

    // Streamed with no Content-Length: reading stops at the limit.
    let e = prom.query("up{x=\"<huge>\"}").await.unwrap_err();
    assert!(
        matches!(e, QueryError::TooLarge { limit: ByteSize(l), declared: None } if l == 16 << 20),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "Prometheus's answer is larger than the 16MiB limit (--max-response-bytes)"
    );
    let streamed = seen.streamed.swap(0, Ordering::Relaxed);
    assert!(
        streamed <= (16 << 20) + IN_FLIGHT,
        "the server produced {streamed} bytes before the client stopped"
    );

    // Declared too large: refused before the body is read.
    let e = prom.query("up{x=\"<declared>\"}").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "Prometheus's answer is larger than the 16MiB limit: it declares {HUGE} bytes (--max-response-bytes)"
        )
    );
    let streamed = seen.streamed.swap(0, Ordering::Relaxed);
    assert!(streamed <= IN_FLIGHT, "{streamed} bytes produced");

    // The same for Jaeger, with a configured limit.
    let mut j = JaegerSource::new(&url, Duration::from_secs(30)).unwrap();
    j.max_response_bytes = "1MiB".parse().unwrap();
    let window = Duration::from_secs(60);
    let e = j.percentiles("huge", None, window, 0).await.unwrap_err();
    assert!(matches!(e, JaegerError::TooLarge { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "Jaeger's answer is larger than the 1MiB limit (--max-response-bytes)"
    );
    let streamed = seen.streamed.swap(0, Ordering::Relaxed);
    assert!(
        streamed <= (1 << 20) + IN_FLIGHT,
        "{streamed} bytes produced"
    );
    let e = j.slowest("declared", 5, window, 0).await.unwrap_err();
    assert!(e.to_string().contains("it declares"), "{e}");

    // Six answers of 200 MB at once hold no more than six limits.
    let six = futures::future::join_all((0..6).map(|_| prom.query("up{x=\"<huge>\"}"))).await;
    assert!(
        six.iter()
            .all(|r| matches!(r, Err(QueryError::TooLarge { .. })))
    );
    let grown = peak_rss().saturating_sub(before);
    eprintln!(
        "peak RSS grew by {:.1} MiB over 8 answers of 200 MiB",
        grown as f64 / 1048576.0
    );
    assert!(
        grown < 6 * (16 << 20) + (32 << 20),
        "peak RSS grew by {grown} bytes"
    );
}

#[tokio::test]
async fn garbage_and_endless_answers_fail_with_their_cause() {
    let (url, _seen) = start().await;
    let mut prom = PrometheusSource::new(&url, Duration::from_secs(1)).unwrap();
    prom.max_split_queries = 0;
    let e = prom.query("up{x=\"<garbage>\"}").await.unwrap_err();
    assert!(matches!(e, QueryError::Decode(_)), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("Prometheus's answer is not the expected JSON")
            && e.to_string().contains("<html>this is not JSON"),
        "{e}"
    );
    let started = Instant::now();
    let e = prom.query("up{x=\"<stall>\"}").await.unwrap_err();
    assert_eq!(e, QueryError::Timeout(Duration::from_secs(1)));
    assert!(started.elapsed() < Duration::from_secs(5));

    let j = JaegerSource::new(&url, Duration::from_secs(1)).unwrap();
    let window = Duration::from_secs(60);
    let e = j.percentiles("garbage", None, window, 0).await.unwrap_err();
    assert!(matches!(e, JaegerError::Decode(_)), "{e:?}");
    let started = Instant::now();
    let e = j.percentiles("stall", None, window, 0).await.unwrap_err();
    assert!(matches!(e, JaegerError::Timeout(_)), "{e:?}");
    assert_eq!(e.to_string(), "Jaeger query timed out after 1s");
    assert!(started.elapsed() < Duration::from_secs(5));
}

fn spec(service: &str) -> ServiceLevelObjectiveSpec {
    let mut s = audit_spec();
    s.service = service.into();
    s
}

#[tokio::test]
async fn a_refused_batch_is_split_until_only_the_offending_slo_is_missing() {
    let (url, seen) = start().await;
    let prom = PrometheusSource::new(&url, Duration::from_secs(10)).unwrap();
    let specs: Vec<_> = ["a", "b", "poison", "c", "d", "e"]
        .iter()
        .map(|s| spec(s))
        .collect();
    let refs: Vec<_> = specs.iter().collect();
    let cycle = prom.observe(&refs).await;
    let plan = cycle.queries - cycle.split_queries;
    assert_eq!(
        seen.queries.load(Ordering::Relaxed),
        cycle.queries,
        "every query counted"
    );
    // 6 SLOs: 6 -> 3 -> 2 -> 1 for the poisoned half, 2 queries a level.
    assert_eq!(cycle.split_queries, plan * 6, "{cycle:#?}");
    for (spec, reading) in specs.iter().zip(&cycle.readings) {
        if spec.service == "poison" {
            assert_eq!(reading.observation.request_rate, None);
            let why = &reading.missing["Requests"];
            assert!(
                why.starts_with("query failed: Prometheus answered 400 bad_data: parse error: this batch holds the poisoned SLO; it fails for this SLO alone (its batch of 6 SLOs was split"),
                "{why}"
            );
            assert!(reading.hold_causes().unwrap().contains("alone"));
        } else {
            assert_eq!(
                reading.observation.request_rate,
                Some(1.0),
                "{}: {:#?}",
                spec.service,
                reading.missing
            );
            assert!(
                !reading.missing.values().any(|w| w.contains("query failed")),
                "{}: {:#?}",
                spec.service,
                reading.missing
            );
        }
    }

    // With no extra queries allowed, every SLO of a failing batch is missing,
    // and says why it was not split; none reads as zero.
    let mut stingy = PrometheusSource::new(&url, Duration::from_secs(10)).unwrap();
    stingy.max_split_queries = 0;
    let cycle = stingy.observe(&refs).await;
    assert_eq!(cycle.split_queries, 0);
    assert_eq!(cycle.failed, cycle.queries);
    for reading in &cycle.readings {
        assert_eq!(reading.observation.request_rate, None);
        assert!(
            reading.missing["Requests"].contains(
                "in a batch of 6 SLOs, not split further: this cycle's 0 extra queries are spent"
            ),
            "{:#?}",
            reading.missing
        );
    }

    // A Prometheus that cannot be reached is not split: one query per plan entry.
    let down = PrometheusSource::new("http://127.0.0.1:9", Duration::from_secs(5)).unwrap();
    let cycle = down.observe(&refs).await;
    assert_eq!(cycle.split_queries, 0);
    assert_eq!(cycle.failed, cycle.queries);
    assert!(
        cycle.readings[0].missing["Requests"]
            .starts_with("query failed: Prometheus could not be reached"),
        "{:#?}",
        cycle.readings[0].missing
    );
}
