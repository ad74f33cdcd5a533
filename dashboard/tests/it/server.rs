//! The dashboard's handlers, driven through `tower::ServiceExt::oneshot`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use governor_dashboard::crds::{CurrentDesired, Decision, Knob, ServiceLevelObjective};
use governor_dashboard::read::LatencyView;
use governor_dashboard::{Config, Fixed, HistoryPoint, SloView, Snapshot, Standing, TraceRow};
use http_body_util::BodyExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use tower::ServiceExt;

const HOSTILE: &str = "<script>alert(\"x\")</script>'&";

fn view(namespace: &str, name: &str, state: Standing, p99: Option<f64>) -> SloView {
    let lat = |q: &str, observed: Option<f64>| LatencyView {
        quantile: q.parse().unwrap(),
        target: Some(0.1),
        observed,
        standing: Standing::of(observed, Some(0.1)),
    };
    SloView {
        namespace: namespace.into(),
        name: name.into(),
        service: format!("{name}-svc"),
        state,
        dry_run: false,
        latency: vec![
            lat("p50", Some(0.04)),
            lat("p90", Some(0.08)),
            lat("p99", p99),
        ],
        request_rate: Some(142.0),
        error_rate: Some(0.0004),
        error_rate_target: Some(0.001),
        error_budget_remaining: Some(0.62),
        objective_budgets: vec![
            governor_crds::ObjectiveBudget {
                objective: "latency-p99".into(),
                error_budget_remaining: Some(0.62),
            },
            governor_crds::ObjectiveBudget {
                objective: "errors".into(),
                error_budget_remaining: None,
            },
        ],
        burn_rate: Some(2.5),
        replicas: Some(CurrentDesired {
            current: 2,
            desired: 6,
        }),
        pool_size: Some(CurrentDesired {
            current: 50,
            desired: 13,
        }),
        cache_hit_rate: Some(0.42),
        cache_hit_target: Some(0.8),
        bottleneck: None,
        observed_at: Some("2026-11-27T10:00:00Z".into()),
        conditions: Vec::new(),
        decisions: vec![Decision {
            time: Time(Timestamp::from_second(1_800_000_000).unwrap()),
            knob: Knob::Replicas,
            from: 2,
            to: 6,
            reason: format!("P99 450ms over 100ms {HOSTILE}"),
            dry_run: false,
        }],
    }
}

fn fixed(slos: Vec<SloView>) -> Fixed {
    Fixed {
        snapshot: Snapshot {
            slos: Arc::new(slos),
            warnings: Vec::new(),
            version: 0,
        },
        ..Fixed::default()
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn get(model: Fixed, uri: &str, headers: &[(&str, &str)]) -> Reply {
    get_with(model, Config::default(), uri, headers).await
}

async fn get_with(model: Fixed, config: Config, uri: &str, headers: &[(&str, &str)]) -> Reply {
    let app = governor_dashboard::router(model, config);
    let mut req = Request::get(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn overview_lists_every_slo_against_its_targets() {
    let r = get(
        fixed(vec![
            view("roadtrip", "api", Standing::Breached, Some(0.45)),
            view("roadtrip", "voice", Standing::Met, Some(0.05)),
        ]),
        "/",
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(html.contains("<table id=\"slos\">"), "{html}");
    assert!(html.contains("450 ms"), "observed P99 shown");
    assert!(html.contains("/ 100 ms"), "target shown");
    assert!(html.contains("2 → 6"), "replicas current -> desired");
    assert!(html.contains("50 → 13"), "pool current -> desired");
    assert!(
        html.contains("42 %") && html.contains("/ 80 %"),
        "cache against target"
    );
    assert!(html.contains("<meter"), "error budget bar");
    assert!(html.contains("2.5×"), "burn rate");
    assert!(html.contains("replicas 2 → 6"), "last action");
    // Worst state first by default.
    assert!(html.find("/slos/roadtrip/api").unwrap() < html.find("/slos/roadtrip/voice").unwrap());
    assert!(html.contains("class=\"count breached\" href=\"/?state=breached\"><strong>1</strong>"));
}

#[tokio::test]
async fn hostile_names_and_values_are_escaped_and_missing_is_a_dash() {
    let mut v = view(HOSTILE, HOSTILE, Standing::Unknown, None);
    v.service = HOSTILE.into();
    v.request_rate = None;
    v.cache_hit_rate = Some(f64::NAN);
    v.error_budget_remaining = None;
    v.burn_rate = Some(f64::INFINITY);
    v.name = format!("{}{HOSTILE}", "n".repeat(5000));
    let model = fixed(vec![v.clone()]);
    let r = get(model.clone(), "/", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(!html.contains("<script>"), "a script tag reached the page");
    assert!(
        html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
        "{html}"
    );
    assert!(!html.contains("alert(\"x\")"), "quotes are escaped");
    assert!(html.contains("—"), "missing values read as a dash");
    assert!(
        !html.contains("NaN") && !html.contains("inf"),
        "no NaN or inf on the page"
    );
    // The detail link percent-encodes the hostile segments and resolves back.
    let href = format!("/slos/{}/{}", percent(&v.namespace), percent(&v.name));
    assert!(
        html.contains(&href.replace('&', "&#38;")) || html.contains(&href),
        "link {href}"
    );
    let d = get(model.clone(), &href, &[]).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text());
    assert!(!d.text().contains("<script>"));
    let api = get(model, "/api/v1/slos", &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
    assert_eq!(json["items"][0]["namespace"], HOSTILE);
    assert!(
        json["items"][0]["requestRate"].is_null(),
        "missing stays null in JSON"
    );
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn many(n: usize) -> Vec<SloView> {
    (0..n)
        .map(|i| {
            let state = [
                Standing::Met,
                Standing::AtRisk,
                Standing::Breached,
                Standing::Unknown,
            ][i % 4];
            let mut v = view(
                &format!("team-{}", i % 7),
                &format!("service-{i:04}"),
                state,
                Some(0.02 + (i % 13) as f64 * 0.01),
            );
            v.error_budget_remaining = Some((10 - i % 10) as f64 / 10.0);
            v
        })
        .collect()
}

#[tokio::test]
async fn filters_sort_search_and_pages() {
    let model = fixed(many(230));
    let r = get(model.clone(), "/?namespace=team-3&state=breached", &[]).await;
    let html = r.text();
    let rows = html.matches("<tr class=").count();
    let expected = many(230)
        .iter()
        .filter(|s| s.namespace == "team-3" && s.state == Standing::Breached)
        .count();
    assert_eq!(rows, expected);
    assert!(!html.contains("team-4/"));

    let r = get(model.clone(), "/?q=SERVICE-0042", &[]).await;
    assert_eq!(r.text().matches("<tr class=").count(), 1);

    let r = get(model.clone(), "/?sort=budget", &[]).await;
    let html = r.text();
    let first = html.find("<tr class=").unwrap();
    let row = &html[first..first + html[first..].find("</tr>").unwrap()];
    assert!(row.contains("10 %</td>"), "least budget first: {row}");

    let r = get(model.clone(), "/?sort=name&page=2", &[]).await;
    let html = r.text();
    assert_eq!(html.matches("<tr class=").count(), 50);
    assert!(
        html.contains("Showing 51–100 of 230"),
        "{}",
        &html[..2000.min(html.len())]
    );
    assert!(html.contains("rel=\"prev\"") && html.contains("rel=\"next\""));
    assert!(html.contains("page=3"));

    // A page past the end shows the last page; a bad number the first.
    let r = get(model.clone(), "/?page=99", &[]).await;
    assert!(r.text().contains("Page 5 of 5"));
    let r = get(model, "/?page=abc", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("Page 1 of 5"));
}

#[tokio::test]
async fn a_fifty_row_page_is_small() {
    let model = fixed(many(1000));
    let raw = get(model.clone(), "/", &[]).await;
    let gz = get(model.clone(), "/", &[("accept-encoding", "gzip")]).await;
    let br = get(model, "/", &[("accept-encoding", "br")]).await;
    assert_eq!(gz.headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(br.headers[header::CONTENT_ENCODING], "br");
    println!(
        "50-row page: {} bytes raw, {} gzip, {} brotli",
        raw.body.len(),
        gz.body.len(),
        br.body.len()
    );
    assert!(raw.body.len() <= 100 * 1024, "{} bytes raw", raw.body.len());
    assert!(gz.body.len() <= 20 * 1024, "{} bytes gzip", gz.body.len());
}

#[tokio::test]
async fn empty_cluster_and_unknown_slo_have_friendly_pages() {
    let r = get(fixed(vec![]), "/", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("No ServiceLevelObjectives yet"));

    let r = get(fixed(vec![]), "/slos/roadtrip/nope", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.text()
            .contains("no ServiceLevelObjective named \"nope\" in namespace \"roadtrip\"")
            || r.text()
                .contains("There is no ServiceLevelObjective named &#34;nope&#34;"),
        "{}",
        r.text()
    );

    let r = get(fixed(vec![]), "/api/v1/slos/roadtrip/nope", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(json["error"], "no ServiceLevelObjective roadtrip/nope");

    let r = get(fixed(vec![]), "/no/such/page", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("Page not found"));
}

fn history(n: usize) -> Vec<HistoryPoint> {
    (0..n)
        .map(|i| HistoryPoint {
            t: 1_800_000_000.0 + i as f64 * 15.0,
            p50: Some(0.04),
            p90: Some(0.09),
            p99: if i % 50 == 10 {
                None
            } else {
                Some(0.45 - i as f64 * 0.001)
            },
            request_rate: Some(142.0 + i as f64),
            error_rate: Some(0.0005),
            replicas: Some(2.0 + (i / 40) as f64),
            pool_size: Some(50.0 - (i / 40) as f64),
            budget_remaining: Some(1.0 - i as f64 / 1000.0),
        })
        .collect()
}

#[tokio::test]
async fn detail_draws_charts_conditions_decisions_and_traces() {
    let mut model = fixed(vec![view(
        "roadtrip",
        "api",
        Standing::Breached,
        Some(0.45),
    )]);
    model
        .history
        .insert(("roadtrip".into(), "api".into()), Ok(history(300)));
    model.traces = Ok(vec![TraceRow {
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        operation: "GET /api/stories".into(),
        start: 1_800_000_000.0,
        duration: 0.61,
    }]);
    let cfg = Config {
        jaeger_ui: Some("http://jaeger.example:16686/".into()),
        ..Config::default()
    };
    let r = get_with(model.clone(), cfg, "/slos/roadtrip/api?range=6h", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    for id in ["latency", "requests", "errors", "capacity", "budget"] {
        assert!(html.contains(&format!("id=\"chart-{id}\"")), "chart {id}");
    }
    assert!(
        html.matches("<polyline").count() >= 6,
        "P50/P90/P99 and the rest drawn"
    );
    assert!(html.contains("class=\"target\""), "target line drawn");
    assert!(
        html.contains("P50, P90, P99 target"),
        "equal targets share a line"
    );
    assert!(html.contains("aria-current=\"page\">6h"));
    assert!(html.contains("<table id=\"decisions\">"));
    assert!(
        html.contains(
            "href=\"http://jaeger.example:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736\""
        )
    );
    assert!(html.contains("610 ms"));
    // Each objective's budget, an unknown one as a dash.
    assert!(
        html.contains("<dt>Budget: P99 latency</dt><dd>62 %</dd>"),
        "{html}"
    );
    assert!(html.contains("<dt>Budget: Errors</dt><dd>—</dd>"), "{html}");

    let r = get(model.clone(), "/slos/roadtrip/api?range=2y", &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("choose 1h, 6h, 24h or 7d"));

    let r = get(model, "/api/v1/slos/roadtrip/api?range=1h", &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(json["slo"]["name"], "api");
    assert_eq!(json["history"]["range"], "1h");
    assert_eq!(
        json["slo"]["objectiveBudgets"][0],
        serde_json::json!({"objective": "latency-p99", "errorBudgetRemaining": 0.62})
    );
    // 1 h of 15 s points, counted inclusively at both ends.
    assert_eq!(json["history"]["points"].as_array().unwrap().len(), 241);
}

#[tokio::test]
async fn an_unreachable_source_is_said_not_drawn_as_zero() {
    let mut model = fixed(vec![view("roadtrip", "api", Standing::Unknown, None)]);
    model.snapshot.warnings =
        vec!["Prometheus at http://127.0.0.1:1 is unreachable: connection refused".into()];
    model.history.insert(
        ("roadtrip".into(), "api".into()),
        Err(governor_dashboard::Error::backend(
            "Prometheus at http://127.0.0.1:1 is unreachable",
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"),
        )),
    );
    model.traces = Err(governor_dashboard::Error::NotConfigured(
        "Jaeger is not configured (--jaeger)".into(),
    ));
    let html = get(model.clone(), "/", &[]).await.text();
    assert!(html.contains(
        "class=\"warning\" role=\"alert\">Prometheus at http://127.0.0.1:1 is unreachable"
    ));
    let r = get(model, "/slos/roadtrip/api", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(
        html.contains("History is unavailable: Prometheus at http://127.0.0.1:1 is unreachable")
    );
    assert!(!html.contains("<polyline"), "no chart drawn from no data");
    assert!(html.contains("Jaeger is not configured"));
}

#[tokio::test]
async fn headers_etag_and_compression() {
    let model = fixed(many(20));
    let r = get(model.clone(), "/", &[]).await;
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(r.headers["x-frame-options"], "DENY");
    assert_eq!(r.headers["referrer-policy"], "no-referrer");
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-cache");
    let tag = r.headers[header::ETAG].to_str().unwrap().to_string();
    assert!(tag.starts_with("W/\""));

    let again = get(model.clone(), "/", &[("if-none-match", &tag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    let other = get(model.clone(), "/", &[("if-none-match", "W/\"0\"")]).await;
    assert_eq!(other.status, StatusCode::OK);

    // A changed model changes the tag.
    let changed = get(fixed(many(21)), "/", &[("if-none-match", &tag)]).await;
    assert_eq!(changed.status, StatusCode::OK);

    let css = get(
        model,
        "/static/governor.css",
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(css.headers[header::CACHE_CONTROL], "public, max-age=3600");
    assert_eq!(css.headers[header::CONTENT_ENCODING], "gzip");
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let model = fixed(vec![]);
    assert_eq!(
        get(model.clone(), "/healthz", &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(model.clone(), "/readyz", &[]).await.status,
        StatusCode::OK
    );
    let app = governor_dashboard::router(model, Config::default());
    for uri in ["/", "/", "/slos/a/b"] {
        let _ = app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
    }
    let res = app
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(
        text.contains("governor_dashboard_http_requests_total{route=\"/\",code=\"200\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("route=\"/slos/{namespace}/{name}\",code=\"404\"} 1"),
        "{text}"
    );
    assert!(text.contains("governor_dashboard_http_request_duration_seconds_bucket"));
}

#[test]
fn a_resource_becomes_a_view_with_missing_values_missing() {
    let slo: ServiceLevelObjective = serde_yaml_ng_from(
        r#"
apiVersion: governor.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: api, namespace: roadtrip}
spec:
  service: roadtrip-api
  targetRef: {name: roadtrip-api}
  objectives:
    latency: {p50: 100ms, p90: 100ms, p99: 100ms}
    errorRate: 0.001
  scaling: {mode: DryRun}
status:
  objectiveState: Breached
  observed: {time: "2026-11-27T10:00:00Z", p90: 450ms, p99: 95ms, requestRate: 142}
  errorBudgetRemaining: 0.4
  replicas: {current: 2, desired: 6}
"#,
    );
    let v = SloView::from_resource(&slo, Some(3.0));
    assert_eq!(v.state, Standing::Breached);
    assert!(v.dry_run);
    assert_eq!(v.latency[0].observed, None);
    assert_eq!(v.latency[0].standing, Standing::Unknown);
    assert_eq!(v.latency[1].standing, Standing::Breached);
    assert_eq!(v.latency[2].standing, Standing::AtRisk);
    assert_eq!(v.error_rate, None);
    assert_eq!(v.error_rate_target, Some(0.001));
    assert_eq!(v.cache_hit_target, None);
    assert_eq!(v.burn_rate, Some(3.0));
}

/// A P95 objective and an observed P99.9 are shown on the detail page, not only acted on.
#[tokio::test]
async fn p95_and_p999_are_shown_when_held_or_read() {
    let slo: ServiceLevelObjective = serde_yaml_ng_from(
        r#"
apiVersion: governor.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: api, namespace: roadtrip}
spec:
  service: roadtrip-api
  targetRef: {name: roadtrip-api}
  objectives:
    latency: {p95: 200ms, p99: 400ms}
status:
  objectiveState: Breached
  observed: {time: "2026-11-27T10:00:00Z", p95: 250ms, p99: 300ms, p999: 900ms, requestRate: 142}
"#,
    );
    let v = SloView::from_resource(&slo, None);
    let rows: Vec<(String, Option<f64>, Option<f64>)> = v
        .latency
        .iter()
        .map(|l| (l.quantile.to_string(), l.target, l.observed))
        .collect();
    assert_eq!(
        rows,
        [
            ("p50".to_string(), None, None),
            ("p90".to_string(), None, None),
            ("p95".to_string(), Some(0.2), Some(0.25)),
            ("p99".to_string(), Some(0.4), Some(0.3)),
            ("p999".to_string(), None, Some(0.9)),
        ]
    );
    assert_eq!(v.latency[2].standing, Standing::Breached);
    let html = get(fixed(vec![v]), "/slos/roadtrip/api", &[]).await.text();
    for label in [
        "<dt>P95</dt><dd>250 ms",
        "<dt>P99</dt><dd>300 ms",
        "<dt>P999</dt><dd>900 ms",
    ] {
        assert!(
            html.contains(label),
            "{label} missing from the detail page:\n{html}"
        );
    }
}

fn serde_yaml_ng_from(s: &str) -> ServiceLevelObjective {
    let doc = governor_dashboard::crds::manifest::parse_documents(s);
    match &doc[0].result {
        Ok(slo) => slo.clone(),
        Err(p) => panic!("{p:?}"),
    }
}

/// A model whose snapshot a test can replace.
#[derive(Clone, Default)]
struct Changing(Arc<std::sync::Mutex<Snapshot>>);

impl governor_dashboard::ReadModel for Changing {
    async fn snapshot(&self) -> Snapshot {
        self.0.lock().unwrap().clone()
    }
    async fn history(
        &self,
        _: &str,
        _: &str,
        _: governor_dashboard::Range,
    ) -> Result<Vec<HistoryPoint>, governor_dashboard::Error> {
        Ok(Vec::new())
    }
    async fn slowest_traces(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Vec<TraceRow>, governor_dashboard::Error> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn pages_are_rendered_once_per_snapshot_version() {
    let model = Changing::default();
    *model.0.lock().unwrap() = Snapshot {
        slos: Arc::new(many(3)),
        warnings: Vec::new(),
        version: 1,
    };
    let app = governor_dashboard::router(model.clone(), Config::default());
    let fetch = |uri: &'static str| {
        let app = app.clone();
        async move {
            let res = app
                .oneshot(Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let tag = res.headers()[header::ETAG].to_str().unwrap().to_string();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            (tag, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let (tag1, page1) = fetch("/").await;
    assert_eq!(page1.matches("<tr class=").count(), 3);
    // Same version: the same page even though the model changed underneath
    // (a source only changes content together with its version).
    model.0.lock().unwrap().slos = Arc::new(many(5));
    let (tag2, page2) = fetch("/").await;
    assert_eq!(
        (tag1.as_str(), page1.as_str()),
        (tag2.as_str(), page2.as_str())
    );
    // A new version renders afresh.
    model.0.lock().unwrap().version = 2;
    let (tag3, page3) = fetch("/").await;
    assert_ne!(tag1, tag3);
    assert_eq!(page3.matches("<tr class=").count(), 5);
    let (_, json) = fetch("/api/v1/slos").await;
    assert!(json.contains("\"total\":5"), "{json}");
}
