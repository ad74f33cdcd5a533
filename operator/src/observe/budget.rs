//! Each SLO's error budget, read once per cycle: the recorded
//! `governor_slo:error_budget_remaining:ratio` of every SLO in one query (the
//! budget rule group Governor applies with the burn-rate alerts). An SLO
//! without it (alerting off, or its rules not loaded by Prometheus yet) is
//! read by a direct query over its whole window from the raw counters, at
//! most once per [`REFRESH`]; every read is reused for that long when the
//! next one fails. Missing data is never a full budget: no requests in the
//! window leave the budget unknown.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use governor_crds::promql::escape_regex_literal;
use governor_crds::{ObjectiveBudget, ServiceLevelObjective};
use serde::Serialize;

use super::answer::Data;
use super::prometheus::{PrometheusSource, QueryError};
use crate::error_budget::{ErrorBudget, remaining};
use crate::rules::{self, BudgetObjective};

/// How long a budget read is reused: an SLO read by a direct query is read
/// again after this long, and a read is kept this long when the next fails.
pub const REFRESH: Duration = Duration::from_secs(300);

/// How long a direct read that found no requests in the window is reused: a
/// service that has only just started taking traffic shows its budget within
/// a minute, not after a whole [`REFRESH`].
pub const RETRY_EMPTY: Duration = Duration::from_secs(30);

/// Direct queries per cycle at most, the SLOs never read first, then the
/// oldest reads: each reads the window's raw samples, so a cycle's cost stays
/// bounded however many SLOs have no recorded budget.
pub const DIRECT_PER_CYCLE: usize = 8;

/// Where a budget was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetSource {
    /// The budget rule group's recording.
    Recorded,
    /// A direct query over the window.
    Direct,
}

/// One SLO's budget as read.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetReading {
    pub budget: ErrorBudget,
    pub source: BudgetSource,
}

/// Why an SLO has no budget this cycle.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BudgetError {
    #[error(
        "no objective has a budget: latency from Jaeger or raw PromQL cannot be counted \
         as a ratio SLI, and there is no error objective"
    )]
    NoObjective,
    /// The objectives have a budget, but no direct query could be written.
    #[error("no objective has a budget")]
    NoDirectQuery,
    /// The one query for every recorded budget failed.
    #[error("query failed: {0}")]
    Recorded(#[source] QueryError),
    #[error(
        "not read yet: no recorded budget, and at most {DIRECT_PER_CYCLE} direct \
         queries a cycle (the SLOs never read first)"
    )]
    NotReadYet,
    #[error("direct query over the window failed: {0}; tried again in {secs} s", secs = REFRESH.as_secs())]
    Direct(#[source] QueryError),
}

type Read = Result<BudgetReading, BudgetError>;

/// The last read of each SLO, and when; kept across cycles.
#[derive(Default)]
pub struct Budgets(Mutex<HashMap<String, (Instant, Read)>>);

impl Budgets {
    fn fresh(&self, key: &str, now: Instant) -> Option<Read> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (at, read) = all.get(key)?;
        let empty =
            matches!(read, Ok(r) if r.source == BudgetSource::Direct && r.budget.worst().is_none());
        let keep = if empty { RETRY_EMPTY } else { REFRESH };
        (now.saturating_duration_since(*at) < keep).then(|| read.clone())
    }

    /// The last read of `key`, however old, and when it was made.
    fn last(&self, key: &str) -> Option<(Instant, Read)> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.get(key).cloned()
    }

    fn keep(&self, key: String, now: Instant, read: &Read) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.insert(key, (now, read.clone()));
    }

    /// Forgets every SLO not in `live`.
    fn retain(&self, live: &HashSet<String>) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|k, _| live.contains(k));
    }
}

/// An SLO's identity in the cache: a new generation (its objectives may
/// have changed) starts afresh.
fn key(slo: &ServiceLevelObjective) -> String {
    let m = &slo.metadata;
    format!(
        "{}/{}/{}/{}",
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default(),
        m.uid.as_deref().unwrap_or_default(),
        m.generation.unwrap_or(0)
    )
}

/// The budgets of one cycle.
#[derive(Debug, Default)]
pub struct BudgetCycle {
    /// Per SLO, its budget or why there is none.
    pub readings: Vec<Read>,
    pub queries: usize,
    pub failed: usize,
}

/// The one query for every SLO's recorded budget: the newest sample of the
/// last two evaluations of the slowest budget group, in the SLOs' namespaces.
pub fn recorded_query(slos: &[&ServiceLevelObjective]) -> String {
    let mut namespaces: Vec<String> = slos
        .iter()
        .map(|s| escape_regex_literal(s.metadata.namespace.as_deref().unwrap_or_default()))
        .collect();
    namespaces.sort();
    namespaces.dedup();
    let lookback = slos
        .iter()
        .map(|s| rules::budget_interval(s.spec.objectives.window.as_secs_f64()))
        .max()
        .unwrap_or(300)
        * 2;
    format!(
        "last_over_time({}{{namespace=~\"{}\"}}[{}])",
        rules::BUDGET_REMAINING,
        namespaces.join("|"),
        rules::duration(lookback)
    )
}

/// (namespace, slo) -> objective -> budget left, from the recorded query's answer.
fn recorded_values(data: &Data) -> HashMap<(String, String), BTreeMap<String, f64>> {
    let mut out: HashMap<(String, String), BTreeMap<String, f64>> = HashMap::new();
    if let Data::Vector(v) = data {
        for s in v {
            let m = s.metric();
            if let (Some(ns), Some(slo), Some(o)) =
                (m.get("namespace"), m.get("slo"), m.get("objective"))
            {
                out.entry((ns.clone(), slo.clone()))
                    .or_default()
                    .insert(o.clone(), s.sample().value());
            }
        }
    }
    out
}

/// The SLO's objectives with the recorded values; unknown where none was recorded.
fn from_recorded(objectives: &[BudgetObjective], values: &BTreeMap<String, f64>) -> ErrorBudget {
    ErrorBudget {
        objectives: objectives
            .iter()
            .map(|o| ObjectiveBudget {
                objective: o.id.clone(),
                error_budget_remaining: values.get(&o.id).copied().filter(|v| v.is_finite()),
            })
            .collect(),
    }
}

/// The SLO's objectives from the direct query's bad and total rates.
fn from_direct(objectives: &[BudgetObjective], data: &Data) -> ErrorBudget {
    let mut rates: HashMap<(String, String), f64> = HashMap::new();
    if let Data::Vector(v) = data {
        for s in v {
            let m = s.metric();
            if let (Some(o), Some(kind)) = (m.get("objective"), m.get("events")) {
                rates.insert((o.clone(), kind.clone()), s.sample().value());
            }
        }
    }
    let get = |o: &str, kind: &str| rates.get(&(o.to_string(), kind.to_string())).copied();
    ErrorBudget {
        objectives: objectives
            .iter()
            .map(|o| ObjectiveBudget {
                objective: o.id.clone(),
                error_budget_remaining: get(&o.id, rules::DIRECT_BAD)
                    .zip(get(&o.id, rules::DIRECT_TOTAL))
                    .and_then(|(bad, total)| remaining(bad, total, o.allowed)),
            })
            .collect(),
    }
}

/// Reads the budget of every SLO: one query for the recorded budgets, then a
/// direct query for each SLO that has none and no fresh read.
pub async fn read(source: &PrometheusSource, slos: &[&ServiceLevelObjective]) -> BudgetCycle {
    let now = Instant::now();
    let cache = &source.budgets;
    let mut cycle = BudgetCycle {
        readings: vec![Err(BudgetError::NotReadYet); slos.len()],
        ..BudgetCycle::default()
    };
    let objectives: Vec<Vec<BudgetObjective>> =
        slos.iter().map(|s| rules::budget_objectives(s)).collect();
    let recorded = read_recorded(source, slos, &objectives, &mut cycle).await;
    let mut direct = Vec::new();
    for (i, slo) in slos.iter().enumerate() {
        if objectives[i].is_empty() {
            cycle.readings[i] = Err(BudgetError::NoObjective);
            continue;
        }
        let k = key(slo);
        let id = (
            slo.metadata.namespace.clone().unwrap_or_default(),
            slo.metadata.name.clone().unwrap_or_default(),
        );
        if let Ok(Some(values)) = recorded.as_ref().map(|r| r.get(&id)) {
            let read = Ok(BudgetReading {
                budget: from_recorded(&objectives[i], values),
                source: BudgetSource::Recorded,
            });
            cache.keep(k, now, &read);
            cycle.readings[i] = read;
            continue;
        }
        cycle.readings[i] = match (cache.fresh(&k, now), &recorded) {
            (Some(read), _) => read,
            (None, Err(e)) => Err(BudgetError::Recorded(e.clone())),
            (None, Ok(_)) => match rules::direct_query(slo, &objectives[i]) {
                Some(q) => {
                    direct.push((i, k, q));
                    continue;
                }
                None => Err(BudgetError::NoDirectQuery),
            },
        };
    }
    read_direct(source, direct, &objectives, now, &mut cycle).await;
    cache.retain(&slos.iter().map(|s| key(s)).collect());
    cycle
}

type Recorded = HashMap<(String, String), BTreeMap<String, f64>>;

/// The recorded budgets of every SLO with objectives to count, in one query.
async fn read_recorded(
    source: &PrometheusSource,
    slos: &[&ServiceLevelObjective],
    objectives: &[Vec<BudgetObjective>],
    cycle: &mut BudgetCycle,
) -> Result<Recorded, QueryError> {
    let counted: Vec<&ServiceLevelObjective> = slos
        .iter()
        .zip(objectives)
        .filter(|(_, o)| !o.is_empty())
        .map(|(s, _)| *s)
        .collect();
    if counted.is_empty() {
        return Ok(HashMap::new());
    }
    cycle.queries += 1;
    let recorded = source
        .query(&recorded_query(&counted))
        .await
        .map(|d| recorded_values(&d));
    if recorded.is_err() {
        cycle.failed += 1;
    }
    recorded
}

/// The direct queries of this cycle (`(SLO index, cache key, query)`): the
/// SLOs never read first, then the oldest reads, at most
/// [`DIRECT_PER_CYCLE`]; the rest keep their last read.
async fn read_direct(
    source: &PrometheusSource,
    mut direct: Vec<(usize, String, String)>,
    objectives: &[Vec<BudgetObjective>],
    now: Instant,
    cycle: &mut BudgetCycle,
) {
    let cache = &source.budgets;
    direct.sort_by_key(|(_, k, _)| cache.last(k).map(|(at, _)| at));
    for (i, k, _) in direct.split_off(DIRECT_PER_CYCLE.min(direct.len())) {
        cycle.readings[i] = cache
            .last(&k)
            .map_or(Err(BudgetError::NotReadYet), |(_, read)| read);
    }
    let answers: Vec<_> = futures::stream::iter(direct)
        .map(|(i, k, q)| async move { (i, k, source.query(&q).await) })
        .buffer_unordered(source.concurrency.max(1))
        .collect()
        .await;
    for (i, k, answer) in answers {
        cycle.queries += 1;
        let read = match answer {
            Ok(data) => Ok(BudgetReading {
                budget: from_direct(&objectives[i], &data),
                source: BudgetSource::Direct,
            }),
            Err(e) => {
                cycle.failed += 1;
                Err(BudgetError::Direct(e))
            }
        };
        cache.keep(k, now, &read);
        cycle.readings[i] = read;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor_crds::manifest::parse_documents;

    fn slo(name: &str, namespace: &str) -> ServiceLevelObjective {
        let text = include_str!("../../../examples/api.yaml")
            .replace("name: roadtrip-api\n", &format!("name: {name}\n"))
            .replace(
                "namespace: roadtrip\n",
                &format!("namespace: {namespace}\n"),
            );
        parse_documents(&text)
            .into_iter()
            .next()
            .unwrap()
            .result
            .unwrap()
    }

    #[test]
    fn one_query_reads_every_recorded_budget() {
        let (a, b) = (slo("a", "shop"), slo("b", "pay.ments"));
        let q = recorded_query(&[&a, &b, &a]);
        assert_eq!(
            q,
            r#"last_over_time(governor_slo:error_budget_remaining:ratio{namespace=~"pay\\.ments|shop"}[10m])"#
        );
        promql_parser::parser::parse(&q).unwrap();
        let direct = rules::direct_query(&a, &rules::budget_objectives(&a)).unwrap();
        promql_parser::parser::parse(&direct).unwrap_or_else(|e| panic!("{direct}: {e}"));
        assert!(direct.contains("[30d]"), "{direct}");
    }

    #[test]
    fn values_fill_the_objectives_and_gaps_stay_unknown() {
        let objectives = rules::budget_objectives(&slo("a", "shop"));
        let ids: Vec<&str> = objectives.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["latency-p50", "latency-p90", "latency-p99", "errors"]);
        let answer: Data = serde_json::from_value(serde_json::json!({
            "resultType": "vector",
            "result": [
                {"metric": {"objective": "latency-p99", "events": "bad"}, "value": [1, "2"]},
                {"metric": {"objective": "latency-p99", "events": "total"}, "value": [1, "400"]},
                {"metric": {"objective": "errors", "events": "bad"}, "value": [1, "0"]},
                {"metric": {"objective": "errors", "events": "total"}, "value": [1, "0"]},
                {"metric": {"objective": "latency-p50", "events": "total"}, "value": [1, "400"]},
            ]
        }))
        .unwrap();
        let b = from_direct(&objectives, &answer);
        let values: Vec<Option<f64>> = b
            .objectives
            .iter()
            .map(|o| o.error_budget_remaining)
            .collect();
        // p50 has no bad series (its bucket is missing), p90 nothing, errors no traffic.
        assert_eq!(values, [None, None, Some(0.5), None]);
        assert_eq!(b.worst(), Some(0.5));
    }
}
