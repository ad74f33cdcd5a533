//! The Prometheus signal source: runs the cycle's query plan with bounded
//! concurrency and a timeout per query, and turns answers into one Observation
//! per SLO. NaN, Inf and empty answers are missing (with the reason), never 0; a
//! failed query affects only the SLOs it serves: a batch that fails is split in
//! halves and retried (within a number of extra queries per cycle), so that one
//! SLO whose query Prometheus refuses (a huge label value, a query too slow or
//! an answer too large) leaves only its own signals missing.
//!
//! Queries are POSTed as forms (no URL length limit), and every answer is read
//! within `max_response_bytes` and `timeout`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::StreamExt;
use governor_crds::ServiceLevelObjectiveSpec as Spec;
use serde::Serialize;

use super::answer::{Data, Envelope, RangeVector};
use super::backend::{Access, AccessError, Backend, BackendClient, SendError};
use super::http::{Body, BodyError, ByteSize, excerpt, read_body};
use super::queries::{PlannedQuery, QueryPlan, Signal};
use super::{Observation, clean};

/// Why a Prometheus source could not be built: a flag that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Access(#[from] AccessError),
}

/// Why one query has no answer.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// No connection: nothing to do with the query itself.
    #[error("Prometheus could not be reached: {0}")]
    Unreachable(String),
    /// The TLS handshake failed (an unknown CA, an expired or refused
    /// certificate): the text names the cause and the flag.
    #[error("{0}")]
    Tls(String),
    /// A credentials file could not be read; nothing was sent.
    #[error("{0}")]
    Credentials(String),
    /// 401 or 403: the credentials were refused, or none were given.
    #[error("Prometheus answered {status}: {hint}{}", if message.is_empty() { String::new() } else { format!(" ({message})") })]
    Denied {
        status: u16,
        /// Which flags to look at.
        hint: String,
        message: String,
    },
    #[error("query timed out after {0:?}")]
    Timeout(Duration),
    /// Prometheus (or a proxy in front of it) refused or failed the query.
    #[error("Prometheus answered {status}{}: {message}", if kind.is_empty() { String::new() } else { format!(" {kind}") })]
    Refused {
        status: u16,
        /// Prometheus's errorType (bad_data, execution, timeout...), when it sent one.
        kind: String,
        message: String,
    },
    #[error("Prometheus's answer is larger than the {limit} limit{} (--max-response-bytes)", declared.map(|d| format!(": it declares {d} bytes")).unwrap_or_default())]
    TooLarge {
        limit: ByteSize,
        declared: Option<u64>,
    },
    #[error("Prometheus's answer is not the expected JSON: {0}")]
    Decode(String),
    #[error("Prometheus answered a {0} where a {1} was expected")]
    Shape(&'static str, &'static str),
    #[error("reading Prometheus's answer failed: {0}")]
    Read(String),
}

impl QueryError {
    /// Whether a smaller batch may succeed where this one failed: anything but
    /// a Prometheus that cannot be reached at all, or not with these TLS
    /// settings or credentials.
    pub fn worth_splitting(&self) -> bool {
        !matches!(
            self,
            QueryError::Unreachable(_)
                | QueryError::Tls(_)
                | QueryError::Credentials(_)
                | QueryError::Denied { .. }
        )
    }
}

/// The signals of one SLO and, for each missing one, why.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Reading {
    pub observation: Observation,
    /// Signal name -> reason it is missing.
    pub missing: BTreeMap<String, String>,
    /// The error budget of each objective over the window, when read.
    pub budget: Option<super::budget::BudgetReading>,
}

impl Reading {
    /// Why the signals a decision needs (request rate, sample time, latency)
    /// are missing, each cause once with the signals it affects; `None` when
    /// none is.
    pub fn hold_causes(&self) -> Option<String> {
        let mut by_cause: Vec<(&str, Vec<&str>)> = Vec::new();
        let needed = [Signal::Requests.name(), Signal::SampleTime.name()];
        for (signal, why) in self
            .missing
            .iter()
            .filter(|(k, _)| needed.contains(k) || k.starts_with("latency"))
        {
            match by_cause.iter_mut().find(|(w, _)| *w == why) {
                Some((_, signals)) => signals.push(signal),
                None => by_cause.push((why, vec![signal])),
            }
        }
        (!by_cause.is_empty()).then(|| {
            by_cause
                .iter()
                .map(|(why, signals)| format!("{}: {why}", signals.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// One observation cycle over many SLOs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Cycle {
    pub readings: Vec<Reading>,
    /// PromQL queries issued, the retries of split batches included.
    pub queries: usize,
    /// Queries that failed or timed out (a batch and its failing halves each count).
    pub failed: usize,
    /// Of `queries`, those issued to retry the halves of failed batches.
    pub split_queries: usize,
}

pub struct PrometheusSource {
    client: BackendClient,
    pub concurrency: usize,
    pub timeout: Duration,
    pub window: super::Window,
    /// The largest answer read; a larger one fails its query.
    pub max_response_bytes: ByteSize,
    /// Extra queries a cycle may issue to split failed batches.
    pub max_split_queries: usize,
    /// The last error budget read of each SLO, reused between direct queries.
    pub budgets: super::budget::Budgets,
}

/// A planned query being run, with the size of the batch it was split from.
struct Attempt {
    query: PlannedQuery,
    /// Members of the plan's query this one comes from.
    batch: usize,
}

impl PrometheusSource {
    pub const DEFAULT_MAX_SPLIT_QUERIES: usize = 256;

    /// A source of `url` without TLS settings or credentials.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, SourceError> {
        Self::with_access(url, &Access::default(), timeout)
    }

    /// A source of `url` with the TLS and authentication of `access`.
    pub fn with_access(url: &str, access: &Access, timeout: Duration) -> Result<Self, SourceError> {
        let client = BackendClient::new(Backend::Prometheus, url, access, timeout)?;
        Ok(Self {
            client,
            concurrency: 8,
            timeout,
            window: super::Window::default(),
            max_response_bytes: ByteSize::default(),
            max_split_queries: Self::DEFAULT_MAX_SPLIT_QUERIES,
            budgets: super::budget::Budgets::default(),
        })
    }

    /// The base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        self.client.base()
    }

    /// Reads every SLO's signals: one plan, its queries run at most
    /// `concurrency` at a time; then the halves of the batches that failed,
    /// round after round, until every SLO is read or alone in a failing
    /// query, or the cycle's `max_split_queries` are spent.
    pub async fn observe(&self, slos: &[&Spec]) -> Cycle {
        let plan = QueryPlan::build(slos, &self.window.to_string());
        let mut cycle = Cycle {
            readings: vec![Reading::default(); slos.len()],
            ..Cycle::default()
        };
        let mut raw: Vec<HashMap<Signal, f64>> = vec![HashMap::new(); slos.len()];
        let mut spare = self.max_split_queries;
        let mut round: Vec<Attempt> = plan
            .queries
            .into_iter()
            .map(|query| Attempt {
                batch: query.members.len(),
                query,
            })
            .collect();
        // Each round halves the failing batches: at most log2(SLOs) + 1 rounds.
        while !round.is_empty() {
            let answers = self.run_all(&round).await;
            cycle.queries += round.len();
            let mut next = Vec::new();
            for (attempt, answer) in round.into_iter().zip(answers) {
                let q = &attempt.query;
                let e = match answer {
                    Ok(data) => {
                        assign(q, &data, &mut raw, &mut cycle.readings, slos);
                        continue;
                    }
                    Err(e) => e,
                };
                cycle.failed += 1;
                let halves = (e.worth_splitting() && spare >= 2)
                    .then(|| q.split())
                    .flatten();
                if let Some((a, b)) = halves {
                    spare -= 2;
                    cycle.split_queries += 2;
                    for query in [a, b] {
                        next.push(Attempt {
                            query,
                            batch: attempt.batch,
                        });
                    }
                    continue;
                }
                let reason = self.reason(&attempt, &e);
                for (id, _) in &q.members {
                    cycle.readings[*id]
                        .missing
                        .insert(q.signal.name(), reason.clone());
                }
            }
            round = next;
        }
        for (id, values) in raw.into_iter().enumerate() {
            finish(&mut cycle.readings[id], &values);
        }
        cycle
    }

    /// Why the members of a failed query that is not split further miss its signal.
    fn reason(&self, attempt: &Attempt, e: &QueryError) -> String {
        let members = attempt.query.members.len();
        if !e.worth_splitting() || attempt.batch == 1 {
            format!("query failed: {e}")
        } else if members == 1 {
            format!(
                "query failed: {e}; it fails for this SLO alone (its batch of {} SLOs was split, and the others were queried without it)",
                attempt.batch
            )
        } else {
            format!(
                "query failed: {e}; in a batch of {members} SLOs, not split further: this cycle's {} extra queries are spent (--max-split-queries)",
                self.max_split_queries
            )
        }
    }

    /// The answers of `attempts`, in their order, at most `concurrency` at a time.
    async fn run_all(&self, attempts: &[Attempt]) -> Vec<Result<Data, QueryError>> {
        // Owned queries: the closure takes no borrowed argument, so the future
        // stays Send for spawned tasks.
        let queries: Vec<String> = attempts.iter().map(|a| a.query.promql.clone()).collect();
        futures::stream::iter(queries)
            .map(|promql| async move { self.query(&promql).await })
            .buffered(self.concurrency.max(1))
            .collect()
            .await
    }

    /// One instant query.
    pub async fn query(&self, promql: &str) -> Result<Data, QueryError> {
        self.post("/api/v1/query", &[("query", promql.to_string())])
            .await
    }

    /// One range query over [start, end] (Unix seconds) at `step` seconds.
    pub async fn range(
        &self,
        promql: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Vec<RangeVector>, QueryError> {
        let form = [
            ("query", promql.to_string()),
            ("start", format!("{}", start as i64)),
            ("end", format!("{}", end as i64)),
            ("step", format!("{step}")),
        ];
        match self.post("/api/v1/query_range", &form).await? {
            Data::Matrix(m) => Ok(m),
            other => Err(QueryError::Shape(other.kind(), "matrix")),
        }
    }

    /// POSTs `form` to `path`; the whole exchange within the timeout, the
    /// answer within the size limit.
    async fn post(&self, path: &str, form: &[(&str, String)]) -> Result<Data, QueryError> {
        let exchange = async {
            let response = self
                .client
                .send(self.client.post(path).form(form))
                .await
                .map_err(|e| self.send_error(e))?;
            let status = response.status();
            let body = read_body(response, self.max_response_bytes)
                .await
                .map_err(|e| match e {
                    BodyError::TooLarge { limit, declared } => {
                        QueryError::TooLarge { limit, declared }
                    }
                    BodyError::Read(e) => match self.send_error(self.client.explain(&e)) {
                        QueryError::Unreachable(text) => QueryError::Read(text),
                        other => other,
                    },
                })?;
            if matches!(status.as_u16(), 401 | 403) {
                return Err(QueryError::Denied {
                    status: status.as_u16(),
                    hint: self.client.denied_hint(),
                    message: body.excerpt(200).trim().to_string(),
                });
            }
            parse(status, &body)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(QueryError::Timeout(self.timeout)))
    }

    fn send_error(&self, e: SendError) -> QueryError {
        match e {
            SendError::Timeout => QueryError::Timeout(self.timeout),
            SendError::Connect(text) => QueryError::Unreachable(text),
            SendError::Tls(text) => QueryError::Tls(text),
            // QueryError is cloned into every SLO it served: the text is kept.
            SendError::Credentials(e) => QueryError::Credentials(e.to_string()),
            SendError::Other(text) => QueryError::Read(text),
        }
    }
}

/// An answer's data, or why there is none. Prometheus's own error (bad_data,
/// execution, timeout) is kept; any other body is quoted in part.
fn parse(status: reqwest::StatusCode, body: &Body) -> Result<Data, QueryError> {
    let envelope = body.json::<Envelope>();
    if !status.is_success() && !matches!(envelope, Ok(Envelope::Error { .. })) {
        return Err(QueryError::Refused {
            status: status.as_u16(),
            kind: String::new(),
            message: body.excerpt(300),
        });
    }
    match envelope {
        Ok(Envelope::Success { data }) => Ok(data),
        Ok(Envelope::Error { error_type, error }) => Err(QueryError::Refused {
            status: status.as_u16(),
            kind: error_type,
            message: excerpt(error.as_bytes(), 300),
        }),
        // QueryError is cloned into every SLO it served: the text is kept.
        Err(e) => Err(QueryError::Decode(e.to_string())),
    }
}

/// Whether a series with `labels` is the one a planned query answers for `member`:
/// its grouping labels equal the member's key, or, for a raw query, its service
/// label names the service.
pub fn is_members_series(
    q: &PlannedQuery,
    member: &[String],
    service: &str,
    labels: &HashMap<String, String>,
) -> bool {
    if q.by.is_empty() {
        labels.get(&q.service_label).is_none_or(|s| s == service)
    } else {
        q.by.iter()
            .zip(member)
            .all(|(l, v)| labels.get(l).map_or(v.is_empty(), |x| x == v))
    }
}

/// Files each member's value of one answered query.
fn assign(
    q: &PlannedQuery,
    data: &Data,
    raw: &mut [HashMap<Signal, f64>],
    readings: &mut [Reading],
    slos: &[&Spec],
) {
    let name = q.signal.name();
    let mut by_key: HashMap<Vec<String>, f64> = HashMap::new();
    let mut series = Vec::new();
    match data {
        Data::Vector(v) => {
            for s in v {
                let key: Vec<String> =
                    q.by.iter()
                        .map(|l| s.metric().get(l).cloned().unwrap_or_default())
                        .collect();
                by_key.insert(key, s.sample().value());
                series.push((
                    s.metric().get(&q.service_label).cloned(),
                    s.sample().value(),
                ));
            }
        }
        Data::Scalar(s) => series.push((None, s.value())),
        Data::Matrix(_) | Data::String(_) => {}
    }
    for (id, key) in &q.members {
        let value = if q.by.is_empty() {
            // A raw query: its series for this service, or its only series.
            let service = &slos[*id].service;
            match series
                .iter()
                .find(|(svc, _)| svc.as_deref() == Some(service.as_str()))
            {
                Some((_, v)) => Some(*v),
                None if series.len() == 1 => Some(series[0].1),
                None if series.is_empty() => None,
                None => {
                    readings[*id].missing.insert(
                        name.clone(),
                        format!("raw query returned {} series and none has {}={service:?}; group it by {}", series.len(), q.service_label, q.service_label),
                    );
                    continue;
                }
            }
        } else {
            by_key.get(key).copied()
        };
        match value {
            None => {
                readings[*id].missing.insert(
                    name.clone(),
                    "no data: the query returned no series for this SLO".into(),
                );
            }
            Some(v) if !v.is_finite() => {
                readings[*id].missing.insert(
                    name.clone(),
                    format!("not a number: Prometheus returned {v}"),
                );
            }
            Some(v) => {
                raw[*id].insert(q.signal, v);
            }
        }
    }
}

/// Derives the Observation from raw values; ratios need both sides.
fn finish(reading: &mut Reading, values: &HashMap<Signal, f64>) {
    let o = &mut reading.observation;
    for (signal, v) in values {
        if let Signal::Latency(q) = signal {
            o.latency.set(*q, clean(Some(*v)));
        }
    }
    o.request_rate = clean(values.get(&Signal::Requests).copied());
    o.sampled_at = values.get(&Signal::SampleTime).copied();
    if let (Some(errors), Some(requests)) = (values.get(&Signal::Errors), o.request_rate) {
        if requests > 0.0 {
            o.error_rate = clean(Some(errors / requests)).map(|r| r.min(1.0));
        } else {
            reading
                .missing
                .insert("error_rate".into(), "no requests in the window".into());
        }
    }
    if let (Some(h), Some(m)) = (
        values.get(&Signal::CacheHits),
        values.get(&Signal::CacheMisses),
    ) {
        if h + m > 0.0 {
            o.cache_hit_rate = clean(Some(h / (h + m)));
        } else {
            reading.missing.insert(
                "cache_hit_rate".into(),
                "no cache lookups in the window".into(),
            );
        }
    }
    o.pool_in_use = clean(values.get(&Signal::PoolInUse).copied());
    o.pool_max = clean(values.get(&Signal::PoolMax).copied());
    o.pool_pending = clean(values.get(&Signal::PoolPending).copied());
    o.pool_wait = clean(values.get(&Signal::PoolWait).copied());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_causes_name_each_cause_once_and_only_what_a_decision_needs() {
        let mut reading = Reading::default();
        assert_eq!(reading.hold_causes(), None);
        for signal in ["Requests", "latency_p99"] {
            reading
                .missing
                .insert(signal.into(), "query failed: connection refused".into());
        }
        reading.missing.insert(
            "cache_hit_rate".into(),
            "no cache lookups in the window".into(),
        );
        assert_eq!(
            reading.hold_causes().as_deref(),
            Some("Requests, latency_p99: query failed: connection refused")
        );
    }
}
