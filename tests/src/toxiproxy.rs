//! Toxiproxy (`toxiproxy-server`) on loopback: TCP proxies in front of the real
//! servers, with faults ("toxics") added and removed through its HTTP API.
//!
//! ```no_run
//! # async fn f() -> governor_tests::Result<()> {
//! use governor_tests::toxiproxy::{Toxic, Toxiproxy};
//! let toxiproxy = Toxiproxy::start().await?;
//! let proxy = toxiproxy.proxy("apiserver", "127.0.0.1:6443").await?;
//! proxy.add(&Toxic::reset_peer("reset", std::time::Duration::ZERO)).await?; // every connection reset
//! proxy.remove("reset").await?;
//! proxy.set_enabled(false).await?;                  // refused, open ones closed
//! # Ok(()) }
//! ```

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::process::{Server, free_port};
use crate::tools::tool;

/// A running toxiproxy-server; stopped on drop.
pub struct Toxiproxy {
    /// `http://127.0.0.1:PORT`, its API.
    pub api: String,
    http: reqwest::Client,
    server: Server,
}

impl Toxiproxy {
    /// Starts toxiproxy-server on a free port and waits until its API answers.
    pub async fn start() -> crate::Result<Self> {
        let dir = tempfile::Builder::new().prefix("toxiproxy-").tempdir()?;
        let port = free_port()?;
        let args: Vec<String> = vec![
            "-host".into(),
            "127.0.0.1".into(),
            "-port".into(),
            port.to_string(),
        ];
        let mut server = Server::start("toxiproxy", &tool("toxiproxy-server")?, &args, dir)?;
        let api = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let version = format!("{api}/version");
        server
            .wait_ready(Duration::from_secs(30), || {
                crate::process::http_ok(&http, &version)
            })
            .await?;
        Ok(Self { api, http, server })
    }

    /// A new proxy named `name` listening on a free loopback port, forwarding
    /// to `upstream` (`host:port`).
    pub async fn proxy(&self, name: &str, upstream: &str) -> crate::Result<Proxy> {
        let listen = format!("127.0.0.1:{}", free_port()?);
        let body = json!({"name": name, "listen": listen, "upstream": upstream, "enabled": true});
        self.send(self.http.post(format!("{}/proxies", self.api)).json(&body))
            .await
            .with_context(|| format!("creating proxy {name} -> {upstream}"))?;
        Ok(Proxy {
            name: name.into(),
            listen,
            url: format!("{}/proxies/{name}", self.api),
            http: self.http.clone(),
        })
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.server.log_tail(lines)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> crate::Result<Value> {
        send(req).await
    }
}

async fn send(req: reqwest::RequestBuilder) -> crate::Result<Value> {
    let resp = req.send().await.context("calling the Toxiproxy API")?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("Toxiproxy answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// One proxy of a `Toxiproxy`.
#[derive(Clone)]
pub struct Proxy {
    pub name: String,
    /// `127.0.0.1:PORT`, where clients connect.
    pub listen: String,
    url: String,
    http: reqwest::Client,
}

impl Proxy {
    /// Adds a toxic (applies to open connections too).
    pub async fn add(&self, toxic: &Toxic) -> crate::Result<()> {
        send(
            self.http
                .post(format!("{}/toxics", self.url))
                .json(&toxic.to_json()),
        )
        .await
        .with_context(|| format!("adding toxic {} to {}", toxic.name, self.name))?;
        Ok(())
    }

    /// Removes the toxic named `name`.
    pub async fn remove(&self, name: &str) -> crate::Result<()> {
        send(self.http.delete(format!("{}/toxics/{name}", self.url)))
            .await
            .with_context(|| format!("removing toxic {name} from {}", self.name))?;
        Ok(())
    }

    /// The toxics in place, as Toxiproxy lists them.
    pub async fn toxics(&self) -> crate::Result<Vec<Value>> {
        let v = send(self.http.get(format!("{}/toxics", self.url))).await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Disabled: the listener closes and every open connection is dropped;
    /// enabled again: it listens on the same address.
    pub async fn set_enabled(&self, enabled: bool) -> crate::Result<()> {
        send(self.http.post(&self.url).json(&json!({"enabled": enabled})))
            .await
            .with_context(|| format!("setting {} enabled={enabled}", self.name))?;
        Ok(())
    }
}

/// Which direction a toxic acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Server to client (Toxiproxy's default).
    Downstream,
    /// Client to server.
    Upstream,
}

/// A fault: Toxiproxy's type name and attributes.
#[derive(Clone, Debug)]
pub struct Toxic {
    pub name: String,
    pub kind: &'static str,
    pub stream: Stream,
    /// Share of connections it applies to, in [0, 1].
    pub toxicity: f64,
    pub attributes: Value,
}

impl Toxic {
    fn new(name: &str, kind: &'static str, attributes: Value) -> Self {
        Self {
            name: name.into(),
            kind,
            stream: Stream::Downstream,
            toxicity: 1.0,
            attributes,
        }
    }

    /// Every answer delayed by `latency` (± `jitter`).
    pub fn latency(name: &str, latency: Duration, jitter: Duration) -> Self {
        Self::new(
            name,
            "latency",
            json!({"latency": latency.as_millis() as u64, "jitter": jitter.as_millis() as u64}),
        )
    }

    /// Data stops; the connection closes after `timeout` (never when zero:
    /// held open, its data dropped, until the toxic is removed).
    pub fn timeout(name: &str, timeout: Duration) -> Self {
        Self::new(
            name,
            "timeout",
            json!({"timeout": timeout.as_millis() as u64}),
        )
    }

    /// Connections reset (TCP RST) after `timeout` (at once when zero).
    pub fn reset_peer(name: &str, timeout: Duration) -> Self {
        Self::new(
            name,
            "reset_peer",
            json!({"timeout": timeout.as_millis() as u64}),
        )
    }

    /// A connection closed after `bytes` bytes.
    pub fn limit_data(name: &str, bytes: u64) -> Self {
        Self::new(name, "limit_data", json!({"bytes": bytes}))
    }

    /// Throughput capped at `kb_per_second` KB/s.
    pub fn bandwidth(name: &str, kb_per_second: u64) -> Self {
        Self::new(name, "bandwidth", json!({"rate": kb_per_second}))
    }

    /// The same toxic on the other direction.
    pub fn stream(mut self, stream: Stream) -> Self {
        self.stream = stream;
        self
    }

    /// Applied to a share of connections only.
    pub fn toxicity(mut self, toxicity: f64) -> Self {
        self.toxicity = toxicity;
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "stream": match self.stream {
                Stream::Downstream => "downstream",
                Stream::Upstream => "upstream",
            },
            "toxicity": self.toxicity,
            "attributes": self.attributes,
        })
    }
}
