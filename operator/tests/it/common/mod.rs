//! Shared by the modules of this test binary: `governor sim serve` and its
//! readings, the gate for the tests that start servers (`gate`), and the
//! operator's cluster (`operator`).

pub mod gate;
pub mod operator;

/// One test per Prometheus major version for `async fn NAME(PrometheusVersion)`:
/// `NAME::v2` on 2.x (Debian) and `NAME::v3` on 3.x (built from its module).
#[macro_export]
macro_rules! on_each_prometheus {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn v2() {
                super::$name(governor_tests::PrometheusVersion::V2).await
            }
            #[tokio::test]
            async fn v3() {
                super::$name(governor_tests::PrometheusVersion::V3).await
            }
        }
    };
}

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use governor_tests::{Server, free_port, wait_until};

/// Starts `governor sim serve` on a free port with `args`; returns it and its address.
pub async fn start_sim(args: &[&str]) -> (Server, String) {
    let port = free_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let mut all: Vec<String> = vec![
        "sim".into(),
        "serve".into(),
        "--listen".into(),
        addr.clone(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    let dir = tempfile::Builder::new()
        .prefix("governor-sim-")
        .tempdir()
        .unwrap();
    let mut server = Server::start(
        "governor-sim",
        Path::new(env!("CARGO_BIN_EXE_governor")),
        &all,
        dir,
    )
    .unwrap();
    let http = reqwest::Client::new();
    let health = format!("http://{addr}/healthz");
    server
        .wait_ready(Duration::from_secs(30), || {
            governor_tests::process::http_ok(&http, &health)
        })
        .await
        .unwrap();
    (server, addr)
}

/// Serves `app` on a free loopback port; its base URL.
pub async fn serve_loopback(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// `governor observe` once, as JSON.
pub fn observe(prometheus: &str, file: &Path, window: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_governor"))
        .args([
            "observe",
            "--prometheus",
            prometheus,
            "--window",
            window,
            "--timeout",
            "5",
        ])
        .arg(file)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "observe printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `observe` off the async workers.
pub async fn observe_async(
    prometheus: &str,
    file: &Path,
    window: &str,
) -> Option<serde_json::Value> {
    let (url, file, window) = (
        prometheus.to_string(),
        file.to_path_buf(),
        window.to_string(),
    );
    tokio::task::spawn_blocking(move || observe(&url, &file, &window))
        .await
        .ok()
}

/// One SLO's row of a cycle.
pub fn slo<'a>(cycle: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    cycle["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

/// Waits until a cycle shows a number at `pointer` (e.g. `/observation/latency/p99`) for SLO `name`.
pub async fn wait_for_reading(prometheus: &str, file: &Path, name: &str, pointer: &str) {
    wait_until(
        &format!("{name}{pointer} from Prometheus"),
        Duration::from_secs(60),
        || async {
            let c = observe_async(prometheus, file, "15s").await?;
            slo(&c, name).pointer(pointer)?.is_number().then_some(())
        },
    )
    .await
    .unwrap();
}

/// The simulator's ground truth over the last `window` simulated seconds.
pub async fn truth(addr: &str, window: u32) -> serde_json::Value {
    reqwest::get(format!("http://{addr}/truth?window={window}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until the simulation has run `seconds` simulated seconds.
pub async fn wait_sim_time(addr: &str, seconds: f64) {
    wait_until("enough simulated time", Duration::from_secs(60), || async {
        let t: serde_json::Value = reqwest::get(format!("http://{addr}/truth"))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (t[0]["sim_time"].as_f64()? >= seconds).then_some(())
    })
    .await
    .unwrap();
}
