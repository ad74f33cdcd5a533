//! `governor observe --prometheus URL [--jaeger URL] FILE|DIR...`: one
//! observation cycle for the SLOs in the files, printed as JSON — what Governor
//! sees, with the reason for every missing value and the queries it cost.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use governor_crds::{IndicatorSource, ServiceLevelObjective};
use serde_json::json;

use crate::observe::jaeger::JaegerSource;
use crate::observe::prometheus::PrometheusSource;

pub struct Args {
    pub prometheus: String,
    pub jaeger: Option<String>,
    pub timeout: Duration,
    /// Range of rate() and histogram_quantile(), e.g. "1m".
    pub window: String,
    pub paths: Vec<PathBuf>,
}

pub async fn run(args: Args) -> ExitCode {
    let mut slos: Vec<ServiceLevelObjective> = Vec::new();
    let mut invalid = Vec::new();
    for path in &args.paths {
        let files = match super::validate::load(path) {
            Ok(f) => f,
            Err(e) => {
                invalid.push(json!({"file": path.display().to_string(), "problems": [e]}));
                continue;
            }
        };
        for manifest in files {
            let file = manifest.file.display().to_string();
            let documents = match manifest.documents {
                Ok(d) => d,
                Err(e) => {
                    invalid.push(json!({"file": file, "problems": [e]}));
                    continue;
                }
            };
            for doc in documents {
                match doc.result {
                    Ok(slo) => slos.push(slo),
                    Err(problems) => invalid.push(json!({
                        "file": file,
                        "object": doc.object,
                        "problems": problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    })),
                }
            }
        }
    }
    let source = match PrometheusSource::new(&args.prometheus, args.timeout) {
        Ok(mut s) => {
            s.window = args.window.clone();
            s
        }
        Err(e) => {
            eprintln!("governor observe: {e}");
            return ExitCode::from(2);
        }
    };
    let jaeger = match args
        .jaeger
        .as_deref()
        .map(|u| JaegerSource::new(u, args.timeout))
        .transpose()
    {
        Ok(j) => j,
        Err(e) => {
            eprintln!("governor observe: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let specs: Vec<_> = slos.iter().map(|s| &s.spec).collect();
    let mut cycle = source.observe(&specs).await;
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    for (slo, reading) in slos.iter().zip(cycle.readings.iter_mut()) {
        if slo.spec.indicators.source != IndicatorSource::Jaeger {
            continue;
        }
        let j = slo.spec.indicators.jaeger.as_ref();
        let service = j
            .and_then(|j| j.service.clone())
            .unwrap_or_else(|| slo.spec.service.clone());
        let operation = j.and_then(|j| j.operation.clone());
        match &jaeger {
            None => {
                reading.missing.insert(
                    "latency".into(),
                    "indicators.source is jaeger: pass --jaeger URL".into(),
                );
            }
            Some(source) => match source
                .percentiles(
                    &service,
                    operation.as_deref(),
                    Duration::from_secs(60),
                    now_us,
                )
                .await
            {
                Ok(p) => reading.observation.latency = p,
                Err(e) => {
                    reading.missing.insert("latency".into(), e.to_string());
                }
            },
        }
    }
    let rows: Vec<serde_json::Value> = slos
        .iter()
        .zip(&cycle.readings)
        .map(|(slo, r)| {
            json!({
                "namespace": slo.metadata.namespace,
                "name": slo.metadata.name,
                "service": slo.spec.service,
                "observation": r.observation,
                "missing": r.missing,
            })
        })
        .collect();
    let out = json!({
        "prometheus": args.prometheus,
        "queries": cycle.queries,
        "failed_queries": cycle.failed,
        "duration_ms": started.elapsed().as_secs_f64() * 1000.0,
        "slos": rows,
        "invalid": invalid,
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    if invalid.is_empty() && !slos.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
