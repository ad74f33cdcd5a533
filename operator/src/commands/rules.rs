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
async fn boundaries(url: &str, slos: &[&ServiceLevelObjective]) -> Result<Known, String> {
    let source = PrometheusSource::new(url, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let mut known = Known::default();
    for slo in slos {
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

/// `namespace/name` of an SLO, for messages.
fn object(slo: &ServiceLevelObjective) -> String {
    format!(
        "{}/{}",
        slo.metadata.namespace.as_deref().unwrap_or("default"),
        slo.metadata.name.as_deref().unwrap_or_default()
    )
}

/// What generating needs besides the SLO: bucket boundaries read from
/// `--prometheus` when given, and the options from the command line.
struct Generator {
    known: Option<Known>,
    opts: Options,
}

impl Generator {
    async fn new(args: &Args, slos: &[&ServiceLevelObjective], command: &str) -> Option<Self> {
        let known = match &args.prometheus {
            Some(url) => match boundaries(url, slos).await {
                Ok(k) => Some(k),
                Err(e) => {
                    eprintln!("{command}: {e}");
                    return None;
                }
            },
            None => None,
        };
        Some(Self {
            known,
            opts: Options {
                dashboard_url: args.dashboard_url.clone(),
                default_runbook_url: args.runbook_url.clone(),
            },
        })
    }

    /// The SLO's rules, with each note on stderr after `prefix`; `None` after
    /// printing the problems that prevent them.
    fn generate(&self, prefix: &str, slo: &ServiceLevelObjective) -> Option<rules::Generated> {
        let buckets: &dyn Buckets = match &self.known {
            Some(k) => k,
            None => &Unchecked,
        };
        match rules::generate(slo, &self.opts, buckets) {
            Err(problems) => {
                for p in problems {
                    eprintln!("{prefix}: {p}");
                }
                None
            }
            Ok(generated) => {
                for note in &generated.notes {
                    eprintln!("{prefix}: note: {note}");
                }
                Some(generated)
            }
        }
    }
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
    let refs: Vec<&ServiceLevelObjective> = slos.iter().map(|(_, s)| s).collect();
    let Some(generator) = Generator::new(&args, &refs, "governor rules").await else {
        return ExitCode::from(1);
    };
    let mut file = RuleFile::default();
    let mut documents = Vec::new();
    for (path, slo) in &slos {
        let Some(generated) = generator.generate(&format!("{path}: {}", object(slo)), slo) else {
            failed = true;
            continue;
        };
        let Some(group) = generated.group else {
            continue;
        };
        match args.output {
            Output::Rules => file.groups.push(group),
            Output::Prometheusrule => documents.push(Ok(rules::prometheus_rule(slo, &group))),
            Output::Configmap => documents.push(rules::config_map(slo, &group)),
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
    let Some(client) = super::kube_client("governor rules --apply").await else {
        return ExitCode::from(1);
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
    let refs: Vec<&ServiceLevelObjective> = slos.iter().collect();
    let Some(generator) = Generator::new(&args, &refs, "governor rules --apply").await else {
        return ExitCode::from(1);
    };
    let mut failed = false;
    for slo in &slos {
        let object = object(slo);
        let Some(generated) = generator.generate(&object, slo) else {
            failed = true;
            continue;
        };
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
