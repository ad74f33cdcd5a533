//! `governor demo` as a newcomer runs it, seen through a real headless Chromium.

use std::path::{Path, PathBuf};
use std::time::Duration;

use governor_tests::{Chromium, Server, free_port};

use crate::common::gate;

async fn start_demo(speed: &str) -> (Server, String) {
    let port = free_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let dir = tempfile::Builder::new()
        .prefix("governor-demo-")
        .tempdir()
        .unwrap();
    let args: Vec<String> = ["demo", "--listen", &addr, "--speed", speed]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut server = Server::start(
        "governor-demo",
        Path::new(env!("CARGO_BIN_EXE_governor")),
        &args,
        dir,
    )
    .unwrap();
    let http = reqwest::Client::new();
    let ready = format!("http://{addr}/readyz");
    server
        .wait_ready(Duration::from_secs(60), || {
            governor_tests::process::http_ok(&http, &ready)
        })
        .await
        .unwrap();
    (server, format!("http://{addr}"))
}

async fn get_json(url: &str) -> serde_json::Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

fn artifacts() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard")
}

#[tokio::test]
async fn the_demo_shows_governor_bringing_p99_back_under_target() {
    let _slot = gate::heavy().await;
    let (_demo, base) = start_demo("60").await;
    let api = format!("{base}/api/v1/slos/roadtrip/roadtrip-api");
    // The demo watches in DryRun for two simulated minutes (2 s here), then acts.
    let mut seen_breach = false;
    let mut history = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let slo = loop {
        let v = get_json(&api).await;
        let state = v["slo"]["state"].as_str().unwrap_or_default().to_string();
        seen_breach |= state == "breached";
        let acted = v["slo"]["decisions"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["dryRun"].is_null()));
        history.push(state.clone());
        if seen_breach && acted && state == "met" {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never back inside the objectives: states {history:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let latency = slo["slo"]["latency"].as_array().unwrap();
    let p99 = latency.iter().find(|l| l["quantile"] == "p99").unwrap();
    assert!(
        p99["observed"].as_f64().unwrap() <= p99["target"].as_f64().unwrap(),
        "{p99}"
    );
    let decisions = slo["slo"]["decisions"].as_array().unwrap();
    assert!(
        decisions
            .iter()
            .any(|d| d["knob"] == "Replicas" && d["dryRun"].is_null()),
        "replicas were scaled: {decisions:?}"
    );
    assert!(
        decisions.iter().any(|d| d["dryRun"] == true),
        "the DryRun phase is in the log"
    );
    let points = slo["history"]["points"].as_array().unwrap();
    assert!(
        points.len() >= 5,
        "history recorded: {} points",
        points.len()
    );
}

#[tokio::test]
async fn chromium_renders_the_overview_and_the_charts_without_console_errors() {
    let _slot = gate::heavy().await;
    let (_demo, base) = start_demo("30").await;
    let browser = Chromium::new().unwrap();

    // The console check can fail: a page that throws is caught.
    let control = browser
        .load("data:text/html,<p>x</p><script>throw new Error('control')</script>")
        .unwrap();
    assert!(
        control.console.iter().any(|l| l.contains("control")),
        "the console is not being read: {control:?}"
    );

    let overview = browser.load(&format!("{base}/")).unwrap();
    assert!(
        overview.console.is_empty(),
        "console: {:?}",
        overview.console
    );
    assert!(
        overview.dom.contains("<table id=\"slos\">"),
        "{}",
        overview.dom
    );
    assert_eq!(overview.dom.matches("<tr class=").count(), 4, "four SLOs");
    for name in [
        "roadtrip-api",
        "roadtrip-stories",
        "roadtrip-bookings",
        "roadtrip-voice",
    ] {
        assert!(overview.dom.contains(name), "{name} missing");
    }

    let detail_url = format!("{base}/slos/roadtrip/roadtrip-api?range=1h");
    let detail = browser.load(&detail_url).unwrap();
    assert!(detail.console.is_empty(), "console: {:?}", detail.console);
    for id in ["latency", "requests", "errors", "capacity", "budget"] {
        assert!(
            detail.dom.contains(&format!("id=\"chart-{id}\"")),
            "chart {id} missing"
        );
    }
    assert!(detail.dom.contains("<polyline"), "no line drawn");
    assert!(detail.dom.contains("<table id=\"decisions\">"));

    // The stylesheet and icon were fetched (not blocked by the CSP) and nothing failed.
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("route=\"/static/governor.css\",code=\"200\"")
            || metrics.contains("route=\"/static/governor.css\",code=\"304\""),
        "{metrics}"
    );
    for line in metrics.lines().filter(|l| {
        // /readyz answered 503 while the demo started, as it should.
        l.starts_with("governor_dashboard_http_requests_total") && !l.contains("/readyz")
    }) {
        assert!(
            !line.contains("code=\"4") && !line.contains("code=\"5"),
            "a request failed: {line}"
        );
    }

    let dir = artifacts();
    browser
        .screenshot(&format!("{base}/"), &dir.join("overview.png"), 1400, 900)
        .unwrap();
    browser
        .screenshot(&detail_url, &dir.join("detail.png"), 1400, 1800)
        .unwrap();
    println!("screenshots in {}", dir.display());
}
