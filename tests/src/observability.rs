//! Prometheus, Alertmanager and Jaeger on free loopback ports, each with a
//! generated config, ready when returned.

use std::time::Duration;

use crate::process::{Server, free_port, http_ok};
use crate::tools::tool;

/// Starts a Prometheus-family server (tool `name`) and waits for `/-/ready`.
async fn start_with_ready_endpoint(
    name: &str,
    args: &[String],
    dir: tempfile::TempDir,
    port: u16,
) -> crate::Result<(String, Server)> {
    let mut server = Server::start(name, &tool(name)?, args, dir)?;
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = format!("{url}/-/ready");
    server
        .wait_ready(Duration::from_secs(30), || http_ok(&http, &ready))
        .await?;
    Ok((url, server))
}

/// A major version of Prometheus: 2.x from Debian, 3.x built from its Go
/// module. They differ where Governor cares: 3.x writes classic bucket
/// boundaries as `le="1.0"` where 2.x keeps the client's `le="1"`, and scrapes
/// native histograms only when `scrape_native_histograms` is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V2,
    V3,
}

impl Version {
    /// Both, for tests that must hold on each.
    pub const ALL: [Version; 2] = [Version::V2, Version::V3];

    /// The server's tool name.
    pub fn prometheus(self) -> &'static str {
        match self {
            Version::V2 => "prometheus",
            Version::V3 => "prometheus3",
        }
    }

    /// Its promtool's tool name.
    pub fn promtool(self) -> &'static str {
        match self {
            Version::V2 => "promtool",
            Version::V3 => "promtool3",
        }
    }
}

/// A real Prometheus: 1 s scrape interval, remote-write receiver on.
pub struct Prometheus {
    pub url: String,
    pub server: Server,
    pub version: Version,
}

impl Prometheus {
    /// Starts Prometheus scraping each `host:port` in `targets` (path /metrics),
    /// with optional extra rule files and an Alertmanager to send alerts to.
    pub async fn start(targets: &[String]) -> crate::Result<Self> {
        Self::start_with(targets, &[], None).await
    }

    /// As `start`, on Prometheus `version`.
    pub async fn start_on(version: Version, targets: &[String]) -> crate::Result<Self> {
        Self::start_version(version, targets, "/metrics", &[], None).await
    }

    pub async fn start_with(
        targets: &[String],
        rule_files: &[std::path::PathBuf],
        alertmanager: Option<&str>,
    ) -> crate::Result<Self> {
        Self::start_version(Version::V2, targets, "/metrics", rule_files, alertmanager).await
    }

    /// Starts Prometheus `version` scraping `metrics_path` of each target.
    pub async fn start_version(
        version: Version,
        targets: &[String],
        metrics_path: &str,
        rule_files: &[std::path::PathBuf],
        alertmanager: Option<&str>,
    ) -> crate::Result<Self> {
        let path_json = serde_json::to_string(metrics_path)?;
        let dir = tempfile::Builder::new().prefix("prometheus-").tempdir()?;
        let port = free_port()?;
        let targets_json = serde_json::to_string(targets)?;
        let rules_json = serde_json::to_string(
            &rule_files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>(),
        )?;
        let alerting = alertmanager.map_or_else(String::new, |am| {
            let host = am.trim_start_matches("http://");
            format!(
                "alerting:\n  alertmanagers:\n  - static_configs:\n    - targets: [\"{host}\"]\n"
            )
        });
        // JSON is YAML: values are serialized, never spliced raw.
        // 3.x scrapes native histograms only when asked; 2.x by feature flag.
        let (native_config, native_flag) = match version {
            Version::V2 => ("", Some("--enable-feature=native-histograms")),
            Version::V3 => ("  scrape_native_histograms: true\n", None),
        };
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{native_config}\
             rule_files: {rules_json}\n{alerting}\
             scrape_configs:\n- job_name: test\n  scrape_interval: 1s\n  metrics_path: {path_json}\n  static_configs:\n  - targets: {targets_json}\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let mut args = vec![
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--web.enable-remote-write-receiver".into(),
            "--web.enable-lifecycle".into(),
            "--log.level=warn".into(),
        ];
        args.extend(native_flag.map(String::from));
        let (url, server) =
            start_with_ready_endpoint(version.prometheus(), &args, dir, port).await?;
        Ok(Self {
            url,
            server,
            version,
        })
    }

    /// Kills Prometheus (SIGKILL): queries fail until `restart`.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// Starts a stopped Prometheus again on the same port with the same data,
    /// and waits until it is ready.
    pub async fn restart(&mut self) -> crate::Result<()> {
        self.server.restart()?;
        let http = reqwest::Client::new();
        let ready = format!("{}/-/ready", self.url);
        self.server
            .wait_ready(Duration::from_secs(30), || http_ok(&http, &ready))
            .await
    }

    /// Reads the configuration and rule files again (`POST /-/reload`).
    pub async fn reload(&self) -> crate::Result<()> {
        let answer = reqwest::Client::new()
            .post(format!("{}/-/reload", self.url))
            .send()
            .await?;
        if !answer.status().is_success() {
            anyhow::bail!("Prometheus refused to reload: {}", answer.status());
        }
        Ok(())
    }

    /// Requests Prometheus has answered on an API `handler` (e.g.
    /// "/api/v1/query"), from its own /metrics: no scrape needed.
    pub async fn answered(&self, handler: &str) -> crate::Result<f64> {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await?
            .text()
            .await?;
        let wanted = format!("handler=\"{handler}\"");
        Ok(text
            .lines()
            .filter(|l| l.starts_with("prometheus_http_requests_total{") && l.contains(&wanted))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// Runs an instant query; returns the `data.result` array.
    pub async fn query(&self, promql: &str) -> crate::Result<Vec<serde_json::Value>> {
        let body: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await?
            .json()
            .await?;
        if body["status"] != "success" {
            anyhow::bail!("query {promql:?} failed: {body}");
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

/// A real Alertmanager routing every alert to one webhook, without grouping delays.
pub struct Alertmanager {
    pub url: String,
    pub server: Server,
}

impl Alertmanager {
    pub async fn start(webhook_url: &str) -> crate::Result<Self> {
        let dir = tempfile::Builder::new().prefix("alertmanager-").tempdir()?;
        let port = free_port()?;
        let webhook = serde_json::to_string(webhook_url)?;
        let config = format!(
            "route:\n  receiver: webhook\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n- name: webhook\n  webhook_configs:\n  - url: {webhook}\n    send_resolved: true\n"
        );
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config)?;
        let args = vec![
            format!("--config.file={}", config_path.display()),
            format!("--storage.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=".into(),
            "--log.level=warn".into(),
        ];
        let (url, server) = start_with_ready_endpoint("alertmanager", &args, dir, port).await?;
        Ok(Self { url, server })
    }
}

/// A real Jaeger (v2 all-in-one, in-memory storage) with OTLP receivers and the
/// query API on free ports.
pub struct Jaeger {
    /// Query API and UI, e.g. `http://127.0.0.1:PORT` (`/api/traces`, `/api/services`).
    pub query_url: String,
    /// OTLP over HTTP, e.g. `http://127.0.0.1:PORT` (POST `/v1/traces`).
    pub otlp_http_url: String,
    /// OTLP over gRPC, `http://127.0.0.1:PORT`.
    pub otlp_grpc_url: String,
    pub server: Server,
}

impl Jaeger {
    pub async fn start() -> crate::Result<Self> {
        let dir = tempfile::Builder::new().prefix("jaeger-").tempdir()?;
        let (query, query_grpc, otlp_http, otlp_grpc, health) = (
            free_port()?,
            free_port()?,
            free_port()?,
            free_port()?,
            free_port()?,
        );
        let config = format!(
            r#"service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{query}
    grpc:
      endpoint: 127.0.0.1:{query_grpc}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:{health}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{otlp_grpc}
      http:
        endpoint: 127.0.0.1:{otlp_http}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"#
        );
        let config_path = dir.path().join("jaeger.yaml");
        std::fs::write(&config_path, config)?;
        let args = vec![format!("--config={}", config_path.display())];
        let mut server = Server::start("jaeger", &tool("jaeger")?, &args, dir)?;
        let query_url = format!("http://127.0.0.1:{query}");
        let http = reqwest::Client::new();
        let services = format!("{query_url}/api/services");
        server
            .wait_ready(Duration::from_secs(60), || http_ok(&http, &services))
            .await?;
        // The OTLP receiver starts with the pipeline; wait for it too.
        let otlp_http_url = format!("http://127.0.0.1:{otlp_http}");
        crate::wait_until("Jaeger's OTLP receiver", Duration::from_secs(30), || {
            let http = http.clone();
            let url = format!("{otlp_http_url}/v1/traces");
            async move {
                let r = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body("{}")
                    .send()
                    .await
                    .ok()?;
                r.status().is_success().then_some(())
            }
        })
        .await?;
        Ok(Self {
            query_url,
            otlp_http_url,
            otlp_grpc_url: format!("http://127.0.0.1:{otlp_grpc}"),
            server,
        })
    }
}
