use super::*;
use governor_crds::manifest::parse_documents;

fn spec(service: &str, route: Option<&str>) -> Spec {
    let mut s = crate::sim::scenario::audit_spec();
    s.service = service.to_string();
    if let Some(r) = route {
        s.indicators
            .prometheus
            .labels
            .insert("http_route".into(), r.into());
    }
    s
}

#[test]
fn queries_do_not_grow_with_slos_sharing_a_layout() {
    let few: Vec<Spec> = (0..3).map(|i| spec(&format!("svc-{i}"), None)).collect();
    let many: Vec<Spec> = (0..300).map(|i| spec(&format!("svc-{i}"), None)).collect();
    let a = QueryPlan::build(&few.iter().collect::<Vec<_>>(), "1m");
    let b = QueryPlan::build(&many.iter().collect::<Vec<_>>(), "1m");
    assert_eq!(a.queries.len(), b.queries.len());
    assert!(b.queries.iter().all(|q| q.members.len() == 300));
    for q in &a.queries {
        promql_parser::parser::parse(&q.promql).unwrap_or_else(|e| panic!("{}: {e}", q.promql));
    }
}

#[test]
fn layouts_split_and_raw_queries_stand_alone() {
    let mut raw = spec("bookings", Some("/api/bookings"));
    raw.indicators.prometheus.errors.query = Some("sum by (service) (rate(x_total[5m]))".into());
    let specs = [
        spec("api", None),
        spec("stories", Some("/api/stories")),
        raw,
    ];
    let plan = QueryPlan::build(&specs.iter().collect::<Vec<_>>(), "1m");
    let requests: Vec<_> = plan
        .queries
        .iter()
        .filter(|q| q.signal == Signal::Requests)
        .collect();
    assert_eq!(
        requests.len(),
        2,
        "with and without the route label: {requests:#?}"
    );
    let errors: Vec<_> = plan
        .queries
        .iter()
        .filter(|q| q.signal == Signal::Errors)
        .collect();
    assert_eq!(errors.len(), 3, "api, stories by route, and bookings raw");
    assert!(
        errors
            .iter()
            .any(|q| q.promql == "sum by (service) (rate(x_total[5m]))" && q.by.is_empty())
    );
    let grouped = requests.iter().find(|q| q.by.len() == 2).unwrap();
    assert_eq!(grouped.by, ["service", "http_route"]);
    assert!(
        grouped
            .members
            .contains(&(1, vec!["stories".into(), "/api/stories".into()]))
    );
    assert!(
        grouped
            .members
            .contains(&(2, vec!["bookings".into(), "/api/bookings".into()]))
    );
    assert!(
        grouped
            .promql
            .contains(r#"http_route=~"/api/bookings|/api/stories""#),
        "{}",
        grouped.promql
    );
}

#[test]
fn a_batch_splits_into_halves_down_to_one_slo() {
    let specs: Vec<Spec> = (0..5)
        .map(|i| spec(&format!("svc-{i}"), Some("/r")))
        .collect();
    let mut raw = spec("raw", None);
    raw.indicators.prometheus.requests.query = Some("sum(rate(req_total[1m]))".into());
    let mut all: Vec<&Spec> = specs.iter().collect();
    all.push(&raw);
    let plan = QueryPlan::build(&all, "1m");
    let q = plan
        .queries
        .iter()
        .find(|q| q.signal == Signal::Requests && !q.by.is_empty())
        .unwrap();
    let (a, b) = q.split().unwrap();
    let ids = |q: &PlannedQuery| q.members.iter().map(|m| m.0).collect::<Vec<_>>();
    assert_eq!((ids(&a), ids(&b)), (vec![0, 1], vec![2, 3, 4]));
    // Each half is the query the plan would make for those SLOs alone.
    let alone = QueryPlan::build(&all[2..5], "1m");
    let same = alone
        .queries
        .iter()
        .find(|x| x.signal == Signal::Requests)
        .unwrap();
    assert_eq!(b.promql, same.promql);
    assert!(!a.promql.contains("svc-2") && a.promql.contains("svc-1"));
    // Down to one SLO, and never for a raw query.
    let (one, _) = a.split().unwrap();
    assert_eq!(ids(&one), vec![0]);
    assert!(one.split().is_none());
    let raw_q = plan.queries.iter().find(|q| q.by.is_empty()).unwrap();
    assert!(raw_q.split().is_none());
}

#[test]
fn hostile_values_stay_inside_their_matcher() {
    let hostile = [
        "a\"} or vector(1) #",
        "x\\\"}",
        "new\nline",
        "dots.and|pipes",
        "\"}",
    ];
    let specs: Vec<Spec> = hostile.iter().map(|h| spec(h, Some(h))).collect();
    let plan = QueryPlan::build(&specs.iter().collect::<Vec<_>>(), "1m");
    for q in &plan.queries {
        let expr =
            promql_parser::parser::parse(&q.promql).unwrap_or_else(|e| panic!("{}: {e}", q.promql));
        let text = format!("{expr:?}");
        assert!(
            !text.contains("vector(1)")
                && !text.contains("Call(Call { func: Function { name: \"vector\""),
            "{}",
            q.promql
        );
    }
    // The manifest path accepts such values too (they are only label values).
    let _ = parse_documents("");
}

#[test]
fn signals_follow_the_spec() {
    let mut s = spec("api", None);
    s.cache = None;
    s.connection_pool = None;
    s.objectives.error_rate = None;
    s.objectives.availability = None;
    let plan = QueryPlan::build(&[&s], "1m");
    let signals: Vec<Signal> = plan.queries.iter().map(|q| q.signal).collect();
    assert_eq!(
        signals,
        vec![
            Signal::Latency(Quantile::P50),
            Signal::Latency(Quantile::P90),
            Signal::Latency(Quantile::P99),
            Signal::Requests,
            Signal::SampleTime
        ]
    );
}

/// The full text of every query for SLOs that use every signal, a native
/// histogram, an extra quantile, route labels and raw queries.
#[test]
fn every_signal_renders_the_pinned_text() {
    let full = spec("api", None);
    let mut native = spec("stories", Some("/api/stories"));
    native.indicators.prometheus.latency.histogram = HistogramKind::Native;
    native.objectives.latency.p95 = native.objectives.latency.p50;
    let mut raw = spec("bookings", Some("/api/bookings"));
    raw.indicators.prometheus.latency.query = Some("sum by (le) (rate(lat_bucket[1m]))".into());
    raw.indicators.prometheus.requests.query = Some("sum(rate(req_total[1m]))".into());
    raw.indicators.prometheus.pool_wait_time.query = Some("max(pool_wait)".into());
    let specs = [full, native, raw];
    let plan = QueryPlan::build(&specs.iter().collect::<Vec<_>>(), "2m");
    let text: String = plan
        .queries
        .iter()
        .map(|q| {
            format!(
                "{} by={:?} members={:?} service_label={}\n{}\n",
                q.signal.name(),
                q.by,
                q.members,
                q.service_label,
                q.promql
            )
        })
        .collect();
    assert_eq!(text, PINNED, "\n{text}");
}

const PINNED: &str = r#"latency_p50 by=["service"] members=[(0, ["api"])] service_label=service
histogram_quantile(0.5, sum by (le, service) (rate(http_server_request_duration_seconds_bucket{service="api"}[2m])))
latency_p50 by=["service", "http_route"] members=[(1, ["stories", "/api/stories"])] service_label=service
histogram_quantile(0.5, sum by (service, http_route) (rate(http_server_request_duration_seconds{service="stories", http_route="/api/stories"}[2m])))
latency_p90 by=["service"] members=[(0, ["api"])] service_label=service
histogram_quantile(0.9, sum by (le, service) (rate(http_server_request_duration_seconds_bucket{service="api"}[2m])))
latency_p90 by=["service", "http_route"] members=[(1, ["stories", "/api/stories"])] service_label=service
histogram_quantile(0.9, sum by (service, http_route) (rate(http_server_request_duration_seconds{service="stories", http_route="/api/stories"}[2m])))
latency_p95 by=["service", "http_route"] members=[(1, ["stories", "/api/stories"])] service_label=service
histogram_quantile(0.95, sum by (service, http_route) (rate(http_server_request_duration_seconds{service="stories", http_route="/api/stories"}[2m])))
latency_p99 by=["service"] members=[(0, ["api"])] service_label=service
histogram_quantile(0.99, sum by (le, service) (rate(http_server_request_duration_seconds_bucket{service="api"}[2m])))
latency_p99 by=["service", "http_route"] members=[(1, ["stories", "/api/stories"])] service_label=service
histogram_quantile(0.99, sum by (service, http_route) (rate(http_server_request_duration_seconds{service="stories", http_route="/api/stories"}[2m])))
Requests by=["service"] members=[(0, ["api"])] service_label=service
sum by (service) (rate(http_server_request_duration_seconds_count{service="api"}[2m]))
Requests by=["service", "http_route"] members=[(1, ["stories", "/api/stories"])] service_label=service
sum by (service, http_route) (rate(http_server_request_duration_seconds_count{service="stories", http_route="/api/stories"}[2m]))
Errors by=["service"] members=[(0, ["api"])] service_label=service
sum by (service) (rate(http_server_request_duration_seconds_count{service="api", http_response_status_code=~"5.."}[2m])) or (0 * sum by (service) (rate(http_server_request_duration_seconds_count{service="api"}[2m])))
Errors by=["service", "http_route"] members=[(1, ["stories", "/api/stories"]), (2, ["bookings", "/api/bookings"])] service_label=service
sum by (service, http_route) (rate(http_server_request_duration_seconds_count{service=~"bookings|stories", http_route=~"/api/bookings|/api/stories", http_response_status_code=~"5.."}[2m])) or (0 * sum by (service, http_route) (rate(http_server_request_duration_seconds_count{service=~"bookings|stories", http_route=~"/api/bookings|/api/stories"}[2m])))
CacheHits by=["service"] members=[(0, ["api"])] service_label=service
sum by (service) (rate(cache_hits_total{service="api"}[2m]))
CacheHits by=["service", "http_route"] members=[(1, ["stories", "/api/stories"]), (2, ["bookings", "/api/bookings"])] service_label=service
sum by (service, http_route) (rate(cache_hits_total{service=~"bookings|stories", http_route=~"/api/bookings|/api/stories"}[2m]))
CacheMisses by=["service"] members=[(0, ["api"])] service_label=service
sum by (service) (rate(cache_misses_total{service="api"}[2m]))
CacheMisses by=["service", "http_route"] members=[(1, ["stories", "/api/stories"]), (2, ["bookings", "/api/bookings"])] service_label=service
sum by (service, http_route) (rate(cache_misses_total{service=~"bookings|stories", http_route=~"/api/bookings|/api/stories"}[2m]))
PoolInUse by=["service"] members=[(0, ["api"])] service_label=service
sum by (service) (db_client_connections_usage{service="api", state="used"})
PoolInUse by=["service", "http_route"] members=[(1, ["stories", "/api/stories"]), (2, ["bookings", "/api/bookings"])] service_label=service
sum by (service, http_route) (db_client_connections_usage{service=~"bookings|stories", http_route=~"/api/bookings|/api/stories", state="used"})
PoolMax by=["service"] members=[(0, ["api"])] service_label=service
sum by (service) (db_client_connections_max{service="api"})
PoolMax by=["service", "http_route"] members=[(1, ["stories", "/api/stories"]), (2, ["bookings", "/api/bookings"])] service_label=service
sum by (service, http_route) (db_client_connections_max{service=~"bookings|stories", http_route=~"/api/bookings|/api/stories"})
PoolPending by=["service"] members=[(0, ["api"])] service_label=service
sum by (service) (db_client_connections_pending_requests{service="api"})
PoolPending by=["service", "http_route"] members=[(1, ["stories", "/api/stories"]), (2, ["bookings", "/api/bookings"])] service_label=service
sum by (service, http_route) (db_client_connections_pending_requests{service=~"bookings|stories", http_route=~"/api/bookings|/api/stories"})
PoolWait by=["service"] members=[(0, ["api"])] service_label=service
sum by (service) (rate(db_client_connections_wait_time_seconds_sum{service="api"}[2m])) / sum by (service) (rate(db_client_connections_wait_time_seconds_count{service="api"}[2m]))
PoolWait by=["service", "http_route"] members=[(1, ["stories", "/api/stories"])] service_label=service
sum by (service, http_route) (rate(db_client_connections_wait_time_seconds_sum{service="stories", http_route="/api/stories"}[2m])) / sum by (service, http_route) (rate(db_client_connections_wait_time_seconds_count{service="stories", http_route="/api/stories"}[2m]))
SampleTime by=["service"] members=[(0, ["api"])] service_label=service
max by (service) (timestamp(http_server_request_duration_seconds_count{service="api"}))
SampleTime by=["service", "http_route"] members=[(1, ["stories", "/api/stories"])] service_label=service
max by (service, http_route) (timestamp(http_server_request_duration_seconds_count{service="stories", http_route="/api/stories"}))
latency_p50 by=[] members=[(2, ["bookings", "/api/bookings"])] service_label=service
histogram_quantile(0.5, sum by (le) (rate(lat_bucket[1m])))
latency_p90 by=[] members=[(2, ["bookings", "/api/bookings"])] service_label=service
histogram_quantile(0.9, sum by (le) (rate(lat_bucket[1m])))
latency_p99 by=[] members=[(2, ["bookings", "/api/bookings"])] service_label=service
histogram_quantile(0.99, sum by (le) (rate(lat_bucket[1m])))
Requests by=[] members=[(2, ["bookings", "/api/bookings"])] service_label=service
sum(rate(req_total[1m]))
PoolWait by=[] members=[(2, ["bookings", "/api/bookings"])] service_label=service
max(pool_wait)
"#;
