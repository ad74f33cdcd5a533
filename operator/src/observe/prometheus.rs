//! The Prometheus signal source: runs the cycle's query plan with bounded
//! concurrency and a timeout per query, and turns answers into one Observation
//! per SLO. NaN, Inf and empty answers are missing (with the reason), never 0; a
//! failed query affects only the SLOs it serves.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::StreamExt;
use governor_crds::ServiceLevelObjectiveSpec as Spec;
use prometheus_http_query::Client;
use prometheus_http_query::response::Data;
use serde::Serialize;

use super::queries::{PlannedQuery, QueryPlan, Signal};
use super::{Observation, clean};

/// Why a Prometheus source could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("invalid Prometheus URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
}

/// The signals of one SLO and, for each missing one, why.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Reading {
    pub observation: Observation,
    /// Signal name -> reason it is missing.
    pub missing: BTreeMap<String, String>,
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
    /// PromQL queries issued.
    pub queries: usize,
    /// Queries that failed or timed out.
    pub failed: usize,
}

pub struct PrometheusSource {
    client: Client,
    pub concurrency: usize,
    pub timeout: Duration,
    pub window: super::Window,
}

impl PrometheusSource {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, SourceError> {
        if !url.starts_with("http://") {
            return Err(SourceError::InvalidUrl {
                url: url.into(),
                reason: "only http:// is supported for now (use a sidecar or in-cluster http endpoint for TLS)".into(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| SourceError::InvalidUrl {
                url: url.into(),
                reason: e.to_string(),
            })?;
        let client = Client::from(http, url).map_err(|e| SourceError::InvalidUrl {
            url: url.into(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            client,
            concurrency: 8,
            timeout,
            window: super::Window::default(),
        })
    }

    /// Reads every SLO's signals: one plan, its queries run at most
    /// `concurrency` at a time.
    pub async fn observe(&self, slos: &[&Spec]) -> Cycle {
        let plan = QueryPlan::build(slos, &self.window.to_string());
        // Owned queries: the closure takes no borrowed argument, so the future
        // stays Send for spawned tasks.
        let queries: Vec<(usize, String)> = plan
            .queries
            .iter()
            .enumerate()
            .map(|(i, q)| (i, q.promql.clone()))
            .collect();
        let answers: Vec<(usize, Result<Data, String>)> = futures::stream::iter(queries)
            .map(|(i, promql)| async move { (i, self.run(&promql).await) })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        let mut cycle = Cycle {
            readings: vec![Reading::default(); slos.len()],
            queries: plan.queries.len(),
            failed: 0,
        };
        let mut raw: Vec<HashMap<Signal, f64>> = vec![HashMap::new(); slos.len()];
        for (i, answer) in answers {
            let q = &plan.queries[i];
            match answer {
                Ok(data) => assign(q, &data, &mut raw, &mut cycle.readings, slos),
                Err(reason) => {
                    cycle.failed += 1;
                    for (id, _) in &q.members {
                        cycle.readings[*id]
                            .missing
                            .insert(q.signal.name(), reason.clone());
                    }
                }
            }
        }
        for (id, values) in raw.into_iter().enumerate() {
            finish(&mut cycle.readings[id], &values);
        }
        cycle
    }

    /// One instant query.
    pub async fn run(&self, promql: &str) -> Result<Data, String> {
        match tokio::time::timeout(self.timeout, self.client.query(promql).get()).await {
            Err(_) => Err(format!("query timed out after {:?}", self.timeout)),
            Ok(Err(e)) => Err(format!("query failed: {e}")),
            Ok(Ok(result)) => Ok(result.into_inner().0),
        }
    }
}

impl PrometheusSource {
    /// One range query over [start, end] (Unix seconds) at `step` seconds.
    pub async fn range(
        &self,
        promql: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Vec<prometheus_http_query::response::RangeVector>, String> {
        let request = self
            .client
            .query_range(promql, start as i64, end as i64, step)
            .get();
        match tokio::time::timeout(self.timeout, request).await {
            Err(_) => Err(format!("query timed out after {:?}", self.timeout)),
            Ok(Err(e)) => Err(format!("query failed: {e}")),
            Ok(Ok(result)) => match result.into_inner().0 {
                Data::Matrix(m) => Ok(m),
                _ => Err("Prometheus answered a range query without a matrix".into()),
            },
        }
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
        Data::Matrix(_) => {}
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
