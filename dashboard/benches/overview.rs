//! Server time of the overview page over 1,000 SLOs, through the whole router
//! (filter, sort, render, ETag): p50 and p99 of many requests, plus page sizes.
//! Run: cargo bench -p governor-dashboard --bench overview

use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use governor_dashboard::{Config, router, sample};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let app = router(sample::model(1000), Config::default());
    for (label, uri, encoding) in [
        ("overview, worst first", "/", None),
        (
            "overview, sorted by burn, page 3",
            "/?sort=burn&page=3",
            None,
        ),
        (
            "overview, filtered by namespace and search",
            "/?namespace=team-3&q=service-01",
            None,
        ),
        ("overview, gzip", "/", Some("gzip")),
        ("JSON API, all 1000", "/api/v1/slos", None),
    ] {
        let mut times = Vec::with_capacity(3000);
        let mut bytes = 0;
        for i in 0..3200 {
            let mut req = Request::get(uri);
            if let Some(e) = encoding {
                req = req.header("accept-encoding", e);
            }
            let req = req.body(Body::empty()).expect("a request");
            let started = Instant::now();
            let body = rt.block_on(async {
                let res = app.clone().oneshot(req).await.expect("a response");
                res.into_body().collect().await.expect("a body").to_bytes()
            });
            let elapsed = started.elapsed().as_secs_f64() * 1e3;
            if i >= 200 {
                times.push(elapsed);
            }
            bytes = body.len();
        }
        times.sort_by(f64::total_cmp);
        let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "{label:<45} p50 {:.3} ms  p99 {:.3} ms  ({bytes} bytes)",
            p(0.5),
            p(0.99)
        );
    }
}
