//! `governor rules FILE|DIR...`: the burn-rate alert rules Governor generates for
//! the SLOs in the files, printed for GitOps — as a Prometheus rule file, or as
//! the PrometheusRule or ConfigMap objects the operator would own.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;
use governor_crds::ServiceLevelObjective;

use crate::error::Error;
use crate::observe::answer::Data;
use crate::observe::backend::PrometheusAccess;
use crate::observe::prometheus::PrometheusSource;
use crate::rules::backends::PartialResponse;
use crate::rules::{self, Buckets, ExtraMetadata, Known, Options, RuleFile, Unchecked};

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Output {
    /// One Prometheus rule file with a group per SLO.
    #[default]
    Rules,
    /// A PrometheusRule object per SLO (prometheus-operator).
    Prometheusrule,
    /// A ConfigMap per SLO holding its rule file.
    Configmap,
    /// One Thanos Ruler rule file: each group with `partial_response_strategy`.
    Thanos,
    /// One Mimir or Cortex ruler namespace file (`mimirtool rules load`).
    Mimir,
    /// A VMRule object per SLO (VictoriaMetrics operator).
    Vmrule,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// rules: one Prometheus rule file; prometheusrule or configmap: the objects the operator owns;
    /// thanos, mimir, vmrule: the same groups for Thanos Ruler, the Mimir/Cortex ruler, VictoriaMetrics.
    #[arg(long, value_enum, default_value_t = Output::Rules)]
    pub output: Output,
    /// With --output thanos: what Thanos Ruler does when a store answers only in part.
    #[arg(long, value_enum, default_value_t = PartialResponse::Abort)]
    pub partial_response_strategy: PartialResponse,
    /// With --output mimir: the ruler namespace the groups go in.
    #[arg(long, default_value = "governor", value_parser = rules::backends::parse_ruler_namespace)]
    pub ruler_namespace: String,
    /// Prometheus base URL, to check that each latency target is a bucket boundary.
    #[arg(long, env = "GOVERNOR_PROMETHEUS_URL")]
    pub prometheus: Option<String>,
    #[command(flatten)]
    pub prometheus_access: PrometheusAccess,
    /// Dashboard base URL, linked from every alert.
    #[arg(long, env = "GOVERNOR_DASHBOARD_URL")]
    pub dashboard_url: Option<String>,
    /// Runbook for SLOs whose alerting.runbookUrl is not set.
    #[arg(long)]
    pub runbook_url: Option<String>,
    #[command(flatten)]
    pub scrape: ScrapeArgs,
    /// Instead of printing, apply the rules of the cluster's SLOs (KUBECONFIG): a
    /// PrometheusRule per SLO when the CRD exists, else a ConfigMap; owned by the SLO.
    #[arg(long, conflicts_with = "paths")]
    pub apply: bool,
    /// With --apply: only this namespace's SLOs.
    #[arg(long, requires = "apply")]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub metadata: MetadataArgs,
    #[arg(required_unless_present = "apply", value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
}

/// The scrape interval the rules are written for: the flag of `governor
/// operator` and `governor rules`.
#[derive(clap::Args, Debug, Clone)]
pub struct ScrapeArgs {
    /// Prometheus's scrape interval for the SLOs' metrics: no alert window is
    /// shorter than two of them (rate() needs two samples), in whole minutes.
    #[arg(
        long,
        default_value = "1m",
        env = "GOVERNOR_SCRAPE_INTERVAL",
        value_parser = crate::cli::scrape_interval
    )]
    pub scrape_interval: Duration,
}

/// Labels and annotations for the objects holding each SLO's rules: the flags
/// of `governor operator` and `governor rules`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MetadataArgs {
    /// A label for every PrometheusRule or ConfigMap holding an SLO's rules, as
    /// KEY=VALUE (repeatable), e.g. release=kube-prometheus-stack for a
    /// Prometheus whose ruleSelector wants it. Governor's own labels
    /// (app.kubernetes.io/managed-by, governor.dev/*) cannot be set.
    #[arg(
        long = "rules-label",
        value_name = "KEY=VALUE",
        env = "GOVERNOR_RULES_LABELS",
        value_delimiter = ',',
        value_parser = rules::metadata::parse_label
    )]
    pub labels: Vec<(String, String)>,
    /// An annotation for the same objects, as KEY=VALUE (repeatable).
    #[arg(long = "rules-annotation", value_name = "KEY=VALUE", value_parser = rules::metadata::parse_annotation)]
    pub annotations: Vec<(String, String)>,
}

impl MetadataArgs {
    /// The labels and annotations, each key once.
    pub fn resolve(&self) -> Result<ExtraMetadata, Error> {
        ExtraMetadata::new(&self.labels, &self.annotations).map_err(Error::Usage)
    }
}

/// Prints the rules of the SLOs in the files, or with `--apply` applies the
/// cluster's.
pub async fn run(args: Args) -> Result<ExitCode, Error> {
    if args.apply {
        apply(args).await
    } else {
        print(args, &mut std::io::stdout()).await
    }
}

/// Reads every bucket boundary the SLOs' latency alerts need.
async fn boundaries(
    source: &PrometheusSource,
    slos: &[&ServiceLevelObjective],
) -> Result<Known, Error> {
    let url = source.url();
    let mut known = Known::default();
    for slo in slos {
        let Some((metric, selector)) = rules::bucket_series(slo) else {
            continue;
        };
        if known.0.contains_key(&(metric.clone(), selector.clone())) {
            continue;
        }
        let q = format!("count by (le) ({metric}{{{selector}}})");
        let data = source.query(&q).await.map_err(|source| Error::Query {
            what: format!("reading bucket boundaries from {url}"),
            source,
        })?;
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
    metadata: ExtraMetadata,
}

impl Generator {
    async fn new(
        args: &Args,
        slos: &[&ServiceLevelObjective],
        metadata: ExtraMetadata,
    ) -> Result<Self, Error> {
        let known = match &args.prometheus {
            Some(url) => {
                let source = PrometheusSource::with_access(
                    url,
                    &args.prometheus_access.access(),
                    Duration::from_secs(10),
                )?;
                Some(boundaries(&source, slos).await?)
            }
            None => None,
        };
        Ok(Self {
            known,
            opts: Options {
                dashboard_url: args.dashboard_url.clone(),
                default_runbook_url: args.runbook_url.clone(),
                scrape_interval: args.scrape.scrape_interval,
            },
            metadata,
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

async fn print(args: Args, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let metadata = args.metadata.resolve()?;
    let (slos, mut failed) = super::validate::load_valid(&args.paths);
    let refs: Vec<&ServiceLevelObjective> = slos.iter().map(|(_, s)| s).collect();
    let generator = Generator::new(&args, &refs, metadata).await?;
    let mut file = RuleFile::default();
    let mut documents = Vec::new();
    for (path, slo) in &slos {
        let Some(generated) = generator.generate(&format!("{path}: {}", object(slo)), slo) else {
            failed = true;
            continue;
        };
        let groups = generated.groups();
        if groups.is_empty() {
            continue;
        }
        match args.output {
            Output::Rules | Output::Thanos | Output::Mimir => file.groups.extend(groups),
            Output::Prometheusrule => documents.push(Ok(rules::prometheus_rule(
                slo,
                &groups,
                &generator.metadata,
            ))),
            Output::Configmap => {
                documents.push(rules::config_map(slo, &groups, &generator.metadata))
            }
            Output::Vmrule => documents.push(Ok(rules::vm_rule(slo, &groups, &generator.metadata))),
        }
    }
    let text = match args.output {
        Output::Rules => rules::to_yaml(&file),
        Output::Thanos => rules::backends::thanos(&file.groups, args.partial_response_strategy),
        Output::Mimir => rules::backends::mimir(&args.ruler_namespace, &file.groups),
        _ => documents
            .into_iter()
            .map(|d| d.and_then(|v| serde_yaml_ng::to_string(&v)))
            .collect::<Result<Vec<_>, _>>()
            .map(|docs| docs.join("---\n")),
    };
    let text = text.map_err(|source| Error::Yaml {
        what: "the rules",
        source,
    })?;
    out.write_all(text.as_bytes())?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--apply`: the rules of every SLO in the cluster (or one namespace), applied.
async fn apply(args: Args) -> Result<ExitCode, Error> {
    let metadata = args.metadata.resolve()?;
    let client = super::kube_client().await?;
    let api: kube::Api<ServiceLevelObjective> =
        crate::scope::api(&client, args.namespace.as_deref());
    let slos = api
        .list(&Default::default())
        .await
        .map_err(|e| Error::kube("listing ServiceLevelObjectives", e))?
        .items;
    let prometheus_operator = rules::has_prometheus_rule(&client)
        .await
        .map_err(|e| Error::kube("discovering monitoring.coreos.com", e))?;
    let refs: Vec<&ServiceLevelObjective> = slos.iter().collect();
    let generator = Generator::new(&args, &refs, metadata).await?;
    let mut failed = false;
    for slo in &slos {
        let object = object(slo);
        let Some(generated) = generator.generate(&object, slo) else {
            failed = true;
            continue;
        };
        let groups = generated.groups();
        let applied = rules::apply(
            &client,
            slo,
            &groups,
            prometheus_operator,
            &generator.metadata,
        );
        match applied.await {
            Ok(rules::Applied::PrometheusRule(n)) => println!("{object}: PrometheusRule {n}"),
            Ok(rules::Applied::ConfigMap(n)) => println!("{object}: ConfigMap {n}"),
            Ok(rules::Applied::Nothing) => println!("{object}: no rules"),
            Err(e) => {
                failed = true;
                eprintln!("{object}: {e}");
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
