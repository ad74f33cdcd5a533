//! The Jaeger signal source: latency percentiles from the durations of a
//! service's spans, and the slowest recent traces, through Jaeger's HTTP query
//! API. The server ignores `lookback`, so every query names `start` and `end`
//! in microseconds and a `limit`. Every answer is read within
//! `max_response_bytes` and the timeout.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Percentiles;
use super::backend::{Access, AccessError, Backend, BackendClient, SecretError, SendError};
use super::http::{BodyError, ByteSize, DecodeError, read_body};

#[derive(Debug, thiserror::Error)]
pub enum JaegerError {
    /// A flag that cannot be used (at start).
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("Jaeger query failed: {0}")]
    Http(String),
    /// The TLS handshake failed: the text names the cause and the flag.
    #[error("{0}")]
    Setup(String),
    /// A credentials file could not be read; nothing was sent.
    #[error(transparent)]
    Credentials(#[from] SecretError),
    /// 401 or 403: the credentials were refused, or none were given.
    #[error("Jaeger answered {status}: {hint}")]
    Denied { status: u16, hint: String },
    #[error("Jaeger answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("Jaeger query timed out after {0:?}")]
    Timeout(Duration),
    #[error("Jaeger's answer is larger than the {limit} limit{} (--max-response-bytes)", declared.map(|d| format!(": it declares {d} bytes")).unwrap_or_default())]
    TooLarge {
        limit: ByteSize,
        declared: Option<u64>,
    },
    #[error("Jaeger's answer is not the expected JSON: {0}")]
    Decode(#[source] DecodeError),
    #[error("no spans of service {service:?}{operation} in the window")]
    NoSpans { service: String, operation: String },
}

/// A trace for the dashboard's slowest-traces list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceSummary {
    pub trace_id: String,
    pub duration_ms: f64,
    pub root_operation: String,
    /// Start, microseconds since the epoch.
    pub start_time_us: i64,
}

#[derive(Deserialize)]
struct Traces {
    #[serde(default)]
    data: Option<Vec<Trace>>,
}

#[derive(Deserialize)]
struct Trace {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(default)]
    spans: Vec<Span>,
    #[serde(default)]
    processes: HashMap<String, Process>,
}

#[derive(Deserialize)]
struct Span {
    #[serde(rename = "operationName", default)]
    operation: String,
    #[serde(rename = "startTime", default)]
    start: i64,
    #[serde(default)]
    duration: i64,
    #[serde(rename = "processID", default)]
    process: String,
}

#[derive(Deserialize)]
struct Process {
    #[serde(rename = "serviceName", default)]
    service: String,
}

pub struct JaegerSource {
    client: BackendClient,
    /// Most traces fetched per query.
    pub limit: usize,
    pub timeout: Duration,
    /// The largest answer read; a larger one fails its query.
    pub max_response_bytes: ByteSize,
}

impl JaegerSource {
    /// A source of `url` without TLS settings or credentials.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, JaegerError> {
        Self::with_access(url, &Access::default(), timeout)
    }

    /// A source of `url` with the TLS and authentication of `access`.
    pub fn with_access(url: &str, access: &Access, timeout: Duration) -> Result<Self, JaegerError> {
        Ok(Self {
            client: BackendClient::new(Backend::Jaeger, url, access, timeout)?,
            limit: 1000,
            timeout,
            max_response_bytes: ByteSize::default(),
        })
    }

    async fn traces(
        &self,
        service: &str,
        operation: Option<&str>,
        window: Duration,
        now_us: i64,
    ) -> Result<Vec<Trace>, JaegerError> {
        let start = now_us - window.as_micros() as i64;
        let mut query = vec![
            ("service", service.to_string()),
            ("start", start.to_string()),
            ("end", now_us.to_string()),
            ("limit", self.limit.to_string()),
        ];
        if let Some(op) = operation {
            query.push(("operation", op.to_string()));
        }
        let exchange = async {
            let response = self
                .client
                .send(self.client.get("/api/traces").query(&query))
                .await
                .map_err(|e| self.error(e))?;
            let status = response.status();
            let body = read_body(response, self.max_response_bytes)
                .await
                .map_err(|e| match e {
                    BodyError::TooLarge { limit, declared } => {
                        JaegerError::TooLarge { limit, declared }
                    }
                    BodyError::Read(e) => self.error(self.client.explain(&e)),
                })?;
            if matches!(status.as_u16(), 401 | 403) {
                return Err(JaegerError::Denied {
                    status: status.as_u16(),
                    hint: self.client.denied_hint(),
                });
            }
            if !status.is_success() {
                return Err(JaegerError::Status {
                    status: status.as_u16(),
                    body: body.excerpt(300),
                });
            }
            body.json::<Traces>().map_err(JaegerError::Decode)
        };
        let traces = tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(JaegerError::Timeout(self.timeout)))?;
        Ok(traces.data.unwrap_or_default())
    }

    fn error(&self, e: SendError) -> JaegerError {
        match e {
            SendError::Timeout => JaegerError::Timeout(self.timeout),
            SendError::Tls(text) => JaegerError::Setup(text),
            SendError::Credentials(e) => JaegerError::Credentials(e),
            SendError::Connect(text) | SendError::Other(text) => JaegerError::Http(text),
        }
    }

    /// Per trace, the duration of the service's entry span (the named operation's
    /// span when one is given), in seconds.
    pub async fn durations(
        &self,
        service: &str,
        operation: Option<&str>,
        window: Duration,
        now_us: i64,
    ) -> Result<Vec<f64>, JaegerError> {
        let traces = self.traces(service, operation, window, now_us).await?;
        let mut out = Vec::new();
        for t in &traces {
            let entry = t
                .spans
                .iter()
                .filter(|s| {
                    t.processes
                        .get(&s.process)
                        .is_some_and(|p| p.service == service)
                })
                .filter(|s| operation.is_none_or(|op| s.operation == op))
                .min_by_key(|s| s.start);
            if let Some(s) = entry {
                out.push(s.duration as f64 / 1e6);
            }
        }
        if out.is_empty() {
            return Err(JaegerError::NoSpans {
                service: service.into(),
                operation: operation
                    .map(|o| format!(" operation {o:?}"))
                    .unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Latency percentiles from span durations (nearest rank).
    pub async fn percentiles(
        &self,
        service: &str,
        operation: Option<&str>,
        window: Duration,
        now_us: i64,
    ) -> Result<Percentiles, JaegerError> {
        let mut d = self.durations(service, operation, window, now_us).await?;
        Ok(percentiles_of(&mut d))
    }

    /// The slowest `n` traces of the service in the window, slowest first.
    pub async fn slowest(
        &self,
        service: &str,
        n: usize,
        window: Duration,
        now_us: i64,
    ) -> Result<Vec<TraceSummary>, JaegerError> {
        let traces = self.traces(service, None, window, now_us).await?;
        let mut out: Vec<TraceSummary> = traces
            .iter()
            .filter_map(|t| {
                let root = t.spans.iter().min_by_key(|s| s.start)?;
                let end = t.spans.iter().map(|s| s.start + s.duration).max()?;
                Some(TraceSummary {
                    trace_id: t.trace_id.clone(),
                    duration_ms: (end - root.start) as f64 / 1000.0,
                    root_operation: root.operation.clone(),
                    start_time_us: root.start,
                })
            })
            .collect();
        out.sort_by(|a, b| b.duration_ms.total_cmp(&a.duration_ms));
        out.truncate(n);
        Ok(out)
    }
}

/// Nearest-rank percentiles of `values` (sorted in place).
pub fn percentiles_of(values: &mut [f64]) -> Percentiles {
    values.sort_by(f64::total_cmp);
    let mut p = Percentiles::default();
    if values.is_empty() {
        return p;
    }
    for q in governor_crds::Quantile::ALL {
        let rank = ((values.len() as f64 * q.value()).ceil() as usize).clamp(1, values.len());
        p.set(q, Some(values[rank - 1]));
    }
    p
}
