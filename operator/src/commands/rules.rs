//! `governor rules FILE|DIR...`: the burn-rate alert rules Governor generates for
//! the SLOs in the files, printed for GitOps — as a Prometheus rule file, or as
//! the PrometheusRule or ConfigMap objects the operator would own.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;
use governor_crds::ServiceLevelObjective;
use prometheus_http_query::response::Data;

use crate::observe::prometheus::PrometheusSource;
use crate::rules::{self, Buckets, Known, Options, RuleFile, Unchecked};

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Output {
    /// One Prometheus rule file with a group per SLO.
    #[default]
    Rules,
    /// A PrometheusRule object per SLO (prometheus-operator).
    Prometheusrule,
    /// A ConfigMap per SLO holding its rule file.
    Configmap,
}

pub struct Args {
    pub paths: Vec<PathBuf>,
    pub output: Output,
    pub prometheus: Option<String>,
    pub dashboard_url: Option<String>,
    pub runbook_url: Option<String>,
}

/// Reads every bucket boundary the SLOs' latency alerts need.
async fn boundaries(url: &str, slos: &[(String, ServiceLevelObjective)]) -> Result<Known, String> {
    let source = PrometheusSource::new(url, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let mut known = Known::default();
    for (_, slo) in slos {
        let Some((metric, selector)) = rules::bucket_series(slo) else {
            continue;
        };
        if known.0.contains_key(&(metric.clone(), selector.clone())) {
            continue;
        }
        let q = format!("count by (le) ({metric}{{{selector}}})");
        let data = source
            .run(&q)
            .await
            .map_err(|e| format!("reading bucket boundaries from {url}: {e}"))?;
        let mut bounds = Vec::new();
        if let Data::Vector(v) = data {
            for s in v {
                if let Some(le) = s.metric().get("le")
                    && let Ok(b) = le.parse::<f64>()
                    && b.is_finite()
                {
                    bounds.push((b, le.clone()));
                }
            }
        }
        bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        known.0.insert((metric, selector), bounds);
    }
    Ok(known)
}

pub async fn run(args: Args, out: &mut dyn Write) -> ExitCode {
    let mut slos: Vec<(String, ServiceLevelObjective)> = Vec::new();
    let mut failed = false;
    for path in &args.paths {
        let files = match super::validate::load(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                failed = true;
                continue;
            }
        };
        for manifest in files {
            let file = manifest.file.display().to_string();
            match manifest.documents {
                Err(e) => {
                    eprintln!("{file}: {e}");
                    failed = true;
                }
                Ok(docs) => {
                    for doc in docs {
                        match doc.result {
                            Ok(slo) => slos.push((file.clone(), slo)),
                            Err(problems) => {
                                failed = true;
                                for p in problems {
                                    eprintln!("{file}: {}: {p}", doc.object);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let known = match &args.prometheus {
        Some(url) => match boundaries(url, &slos).await {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("governor rules: {e}");
                return ExitCode::from(1);
            }
        },
        None => None,
    };
    let buckets: &dyn Buckets = match &known {
        Some(k) => k,
        None => &Unchecked,
    };
    let opts = Options {
        dashboard_url: args.dashboard_url.clone(),
        default_runbook_url: args.runbook_url.clone(),
    };
    let mut file = RuleFile::default();
    let mut documents = Vec::new();
    for (path, slo) in &slos {
        let object = format!(
            "{}/{}",
            slo.metadata.namespace.as_deref().unwrap_or("default"),
            slo.metadata.name.as_deref().unwrap_or_default()
        );
        match rules::generate(slo, &opts, buckets) {
            Err(problems) => {
                failed = true;
                for p in problems {
                    eprintln!("{path}: {object}: {p}");
                }
            }
            Ok(generated) => {
                for note in &generated.notes {
                    eprintln!("{path}: {object}: note: {note}");
                }
                let Some(group) = generated.group else {
                    continue;
                };
                match args.output {
                    Output::Rules => file.groups.push(group),
                    Output::Prometheusrule => {
                        documents.push(Ok(rules::prometheus_rule(slo, &group)))
                    }
                    Output::Configmap => documents.push(rules::config_map(slo, &group)),
                }
            }
        }
    }
    let text = match args.output {
        Output::Rules => rules::to_yaml(&file),
        _ => documents
            .into_iter()
            .map(|d| d.and_then(|v| serde_yaml_ng::to_string(&v).map_err(|e| e.to_string())))
            .collect::<Result<Vec<_>, _>>()
            .map(|docs| docs.join("---\n")),
    };
    match text {
        Ok(t) => {
            if let Err(e) = out.write_all(t.as_bytes()) {
                eprintln!("governor rules: {e}");
                return ExitCode::from(1);
            }
        }
        Err(e) => {
            eprintln!("governor rules: {e}");
            return ExitCode::from(1);
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `--apply`: the rules of every SLO in the cluster (or one namespace), applied.
pub async fn apply(args: Args, namespace: Option<String>) -> ExitCode {
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "governor rules --apply: no Kubernetes API ({e}); set KUBECONFIG or run in a cluster"
            );
            return ExitCode::from(1);
        }
    };
    let api: kube::Api<ServiceLevelObjective> = match &namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    };
    let slos = match api.list(&Default::default()).await {
        Ok(l) => l.items,
        Err(e) => {
            eprintln!("governor rules --apply: listing ServiceLevelObjectives: {e}");
            return ExitCode::from(1);
        }
    };
    let prometheus_operator = match rules::has_prometheus_rule(&client).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("governor rules --apply: discovering monitoring.coreos.com: {e}");
            return ExitCode::from(1);
        }
    };
    let named: Vec<(String, ServiceLevelObjective)> = slos
        .into_iter()
        .map(|s| (String::from("cluster"), s))
        .collect();
    let known = match &args.prometheus {
        Some(url) => match boundaries(url, &named).await {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("governor rules --apply: {e}");
                return ExitCode::from(1);
            }
        },
        None => None,
    };
    let buckets: &dyn Buckets = match &known {
        Some(k) => k,
        None => &Unchecked,
    };
    let opts = Options {
        dashboard_url: args.dashboard_url.clone(),
        default_runbook_url: args.runbook_url.clone(),
    };
    let mut failed = false;
    for (_, slo) in &named {
        let object = format!(
            "{}/{}",
            slo.metadata.namespace.as_deref().unwrap_or_default(),
            slo.metadata.name.as_deref().unwrap_or_default()
        );
        let generated = match rules::generate(slo, &opts, buckets) {
            Ok(g) => g,
            Err(problems) => {
                failed = true;
                for p in problems {
                    eprintln!("{object}: {p}");
                }
                continue;
            }
        };
        for note in &generated.notes {
            eprintln!("{object}: note: {note}");
        }
        match rules::apply(&client, slo, generated.group.as_ref(), prometheus_operator).await {
            Ok(rules::Applied::PrometheusRule(n)) => println!("{object}: PrometheusRule {n}"),
            Ok(rules::Applied::ConfigMap(n)) => println!("{object}: ConfigMap {n}"),
            Ok(rules::Applied::Nothing) => println!("{object}: no rules"),
            Err(e) => {
                failed = true;
                eprintln!("{object}: {e}");
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
