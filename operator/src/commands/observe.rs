//! `governor observe --prometheus URL [--jaeger URL] FILE|DIR...`: one
//! observation cycle for the SLOs in the files, printed as JSON — what Governor
//! sees, the error budget of each SLO and objective, the reason for every
//! missing value, and the queries it cost.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use governor_crds::ServiceLevelObjective;
use serde_json::json;

use crate::error::Error;
use crate::observe::Window;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub sources: super::Sources,
    /// Range of rate() and histogram_quantile(), and of the traces read from
    /// Jaeger: a PromQL duration.
    #[arg(long, default_value = "1m")]
    pub window: Window,
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
}

pub async fn run(args: Args) -> Result<ExitCode, Error> {
    let mut slos: Vec<ServiceLevelObjective> = Vec::new();
    let mut invalid = Vec::new();
    for path in &args.paths {
        let files = match super::validate::load(path) {
            Ok(f) => f,
            Err(e) => {
                invalid
                    .push(json!({"file": path.display().to_string(), "problems": [e.to_string()]}));
                continue;
            }
        };
        for manifest in files {
            let file = manifest.file.display().to_string();
            let documents = match manifest.documents {
                Ok(d) => d,
                Err(e) => {
                    invalid.push(json!({"file": file, "problems": [e.to_string()]}));
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
    let (source, jaeger) = args.sources.open(args.window)?;
    let started = Instant::now();
    let refs: Vec<&ServiceLevelObjective> = slos.iter().collect();
    let cycle = crate::observe::cycle(&source, jaeger.as_ref(), &refs).await;
    let rows: Vec<serde_json::Value> = slos
        .iter()
        .zip(&cycle.readings)
        .map(|(slo, r)| {
            let budget = r.budget.as_ref();
            json!({
                "namespace": slo.metadata.namespace,
                "name": slo.metadata.name,
                "service": slo.spec.service,
                "observation": r.observation,
                "errorBudgetRemaining": budget.and_then(|b| b.budget.worst()),
                "objectives": budget.map(|b| &b.budget.objectives[..]).unwrap_or_default()
                    .iter()
                    .map(|o| json!({"objective": o.objective, "errorBudgetRemaining": o.error_budget_remaining}))
                    .collect::<Vec<_>>(),
                "errorBudgetSource": budget.map(|b| b.source),
                "missing": r.missing,
            })
        })
        .collect();
    let out = json!({
        "prometheus": args.sources.prometheus,
        "queries": cycle.queries,
        "failed_queries": cycle.failed,
        "split_queries": cycle.split_queries,
        "duration_ms": started.elapsed().as_secs_f64() * 1000.0,
        "slos": rows,
        "invalid": invalid,
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(if invalid.is_empty() && !slos.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
