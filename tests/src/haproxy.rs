//! HAProxy (Debian's `haproxy`) on loopback as an HTTP fault proxy in front of
//! the real kube-apiserver. It terminates TLS with a test certificate, forwards
//! each request over TLS to the API server, and on demand answers every
//! request itself with 429, 500 or 503 and a Kubernetes `Status` body, as an
//! overloaded or failing API server does. The answer is switched at run time
//! through HAProxy's admin socket (a map entry), without a reload.
//!
//! ```no_run
//! # async fn f() -> governor_tests::Result<()> {
//! use governor_tests::haproxy::HttpFaults;
//! let faults = HttpFaults::start("127.0.0.1:6443").await?;
//! faults.answer(Some(503)).await?; // every request: 503, open streams cut
//! faults.answer(None).await?;      // forwarded again
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::process::{Server, free_port};
use crate::tls::Pki;
use crate::tools::tool;

/// The statuses HAProxy can be told to answer with.
pub const STATUSES: [u16; 3] = [429, 500, 503];

/// A running HAProxy; stopped on drop.
pub struct HttpFaults {
    /// `127.0.0.1:PORT`, where clients connect (https).
    pub listen: String,
    socket: PathBuf,
    map: PathBuf,
    /// A URL through the proxy, to check what it answers.
    probe: String,
    http: reqwest::Client,
    server: Server,
    _pki: Pki,
}

/// The `Status` object the API server sends with an error, for `code`.
fn status_body(code: u16) -> String {
    let (reason, message) = match code {
        429 => (
            "TooManyRequests",
            "Too many requests, please try again later.",
        ),
        500 => (
            "InternalError",
            "Internal error occurred: injected by the test",
        ),
        _ => (
            "ServiceUnavailable",
            "The server is currently unable to handle the request",
        ),
    };
    serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"retryAfterSeconds": 1},
        "code": code,
    })
    .to_string()
}

fn config(port: u16, pem: &Path, socket: &Path, map: &Path, upstream: &str, dir: &Path) -> String {
    let mut rules = String::new();
    for code in STATUSES {
        let retry = if code == 429 || code == 503 {
            " hdr Retry-After 1"
        } else {
            ""
        };
        rules.push_str(&format!(
            "  http-request return status {code} content-type application/json \
             file {body}{retry} if {{ var(txn.answer) -m str {code} }}\n",
            body = dir.join(format!("{code}.json")).display(),
        ));
    }
    format!(
        "global
  stats socket {socket} mode 600 level admin
  log stderr format raw local0 notice
defaults
  mode http
  log global
  timeout connect 5s
  timeout client 10m
  timeout server 10m
  timeout tunnel 10m
frontend api
  bind 127.0.0.1:{port} ssl crt {pem} alpn http/1.1
  http-request set-var(txn.answer) str(answer),map({map},forward)
{rules}  default_backend apiserver
backend apiserver
  server api {upstream} ssl verify none alpn http/1.1
",
        socket = socket.display(),
        pem = pem.display(),
        map = map.display(),
    )
}

impl HttpFaults {
    /// Starts HAProxy on a free port in front of `upstream` (`host:port`, an
    /// https server) and waits until it forwards.
    pub async fn start(upstream: &str) -> crate::Result<Self> {
        let dir = tempfile::Builder::new().prefix("haproxy-").tempdir()?;
        let pki = Pki::generate()?;
        // HAProxy reads the certificate and its key from one file.
        let pem = dir.path().join("server.pem");
        std::fs::write(
            &pem,
            std::fs::read_to_string(&pki.server_cert)? + &std::fs::read_to_string(&pki.server_key)?,
        )?;
        for code in STATUSES {
            std::fs::write(dir.path().join(format!("{code}.json")), status_body(code))?;
        }
        let map = dir.path().join("answer.map");
        std::fs::write(&map, "answer forward\n")?;
        let socket = dir.path().join("admin.sock");
        let port = free_port()?;
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(
            &cfg,
            config(port, &pem, &socket, &map, upstream, dir.path()),
        )?;
        let args = vec!["-db".to_string(), "-f".into(), cfg.display().to_string()];
        let mut server = Server::start("haproxy", &tool("haproxy")?, &args, dir)?;
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(5))
            .build()?;
        let probe = format!("https://127.0.0.1:{port}/readyz");
        let url = probe.clone();
        // Forwarding: the API server's answer (401/403 without a token, or ok)
        // comes back, not a refused connection or HAProxy's own 503.
        server
            .wait_ready(Duration::from_secs(30), || {
                let http = http.clone();
                let url = url.clone();
                async move {
                    http.get(&url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE)
                }
            })
            .await?;
        Ok(Self {
            listen: format!("127.0.0.1:{port}"),
            socket,
            map,
            probe,
            http,
            server,
            _pki: pki,
        })
    }

    /// From now on, answer every request with `status` (one of `STATUSES`),
    /// or forward again with `None`. Open connections are cut when a fault
    /// starts, so long-running watches meet it too. Checks that a request
    /// through the proxy now gets `status`.
    pub async fn answer(&self, status: Option<u16>) -> crate::Result<()> {
        let value = match status {
            Some(code) if STATUSES.contains(&code) => code.to_string(),
            Some(code) => bail!("HAProxy is set up to answer {STATUSES:?}, not {code}"),
            None => "forward".into(),
        };
        self.quiet(&format!("set map {} answer {value}", self.map.display()))
            .await?;
        if let Some(code) = status {
            self.quiet("shutdown sessions server apiserver/api").await?;
            let got = self.http.get(&self.probe).send().await?.status().as_u16();
            if got != code {
                bail!("HAProxy was told to answer {code} but a request got {got}");
            }
        }
        Ok(())
    }

    /// How many answers with a status of class `class` (4 for 4xx, 5 for
    /// 5xx) the proxy has sent so far, its own included.
    pub async fn answered(&self, class: u8) -> crate::Result<u64> {
        let csv = self.command("show stat").await?;
        let mut lines = csv.lines();
        let header = lines
            .next()
            .and_then(|h| h.strip_prefix("# "))
            .context("`show stat` without a header")?;
        let column = format!("hrsp_{class}xx");
        let at = header
            .split(',')
            .position(|c| c == column)
            .with_context(|| format!("`show stat` has no {column} column"))?;
        let row = lines
            .find(|l| l.starts_with("api,FRONTEND,"))
            .context("`show stat` has no row for the frontend")?;
        let value = row.split(',').nth(at).unwrap_or_default();
        value
            .parse()
            .with_context(|| format!("{column} is {value:?}"))
    }

    /// Runs one command on the admin socket and returns HAProxy's reply.
    async fn command(&self, line: &str) -> crate::Result<String> {
        let mut stream = UnixStream::connect(&self.socket)
            .await
            .with_context(|| format!("connecting to {}", self.socket.display()))?;
        stream.write_all(format!("{line}\n").as_bytes()).await?;
        let mut reply = String::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut reply))
            .await
            .context("HAProxy's admin socket did not answer in 5 s")??;
        Ok(reply)
    }

    /// A command that answers nothing when it succeeds.
    async fn quiet(&self, line: &str) -> crate::Result<()> {
        let reply = self.command(line).await?;
        if !reply.trim().is_empty() {
            bail!("HAProxy refused `{line}`: {}", reply.trim());
        }
        Ok(())
    }

    /// The last `lines` lines of HAProxy's log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.server.log_tail(lines)
    }
}
