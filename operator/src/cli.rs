//! Command-line interface: one binary, several subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::commands;
use crate::telemetry::LogFormat;

#[derive(Parser, Debug)]
#[command(name = "governor", version, about = "An SLO autopilot for Kubernetes", long_about = None)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, env = "GOVERNOR_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Watch Governor work: the audit's services simulated, driven by the decision engine,
    /// shown on the dashboard. No cluster or Prometheus needed.
    Demo {
        /// Where the dashboard listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Simulated seconds per wall-clock second (1 = real time; 20 runs the audit's hour in 3 minutes).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Serve the dashboard over the cluster's ServiceLevelObjectives (KUBECONFIG or in-cluster).
    Dashboard {
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: SocketAddr,
        /// Prometheus base URL, for history and burn rates.
        #[arg(long, env = "GOVERNOR_PROMETHEUS_URL")]
        prometheus: String,
        /// Jaeger query base URL, for the slowest traces.
        #[arg(long, env = "GOVERNOR_JAEGER_URL")]
        jaeger: Option<String>,
        /// Jaeger UI base URL that trace links open (e.g. https://jaeger.example.com).
        #[arg(long, env = "GOVERNOR_JAEGER_UI_URL")]
        jaeger_ui: Option<String>,
        /// Only this namespace's SLOs (default: every namespace).
        #[arg(long)]
        namespace: Option<String>,
        /// How long answers are reused, and how often pages reload.
        #[arg(long, default_value = "15s")]
        refresh: governor_crds::Duration,
        /// Timeout per Prometheus or Jaeger query, seconds.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Print the burn-rate alert rules for the SLOs in the files (for GitOps).
    Rules {
        /// rules: one Prometheus rule file; prometheusrule or configmap: the objects the operator owns.
        #[arg(long, value_enum, default_value_t = commands::rules::Output::Rules)]
        output: commands::rules::Output,
        /// Prometheus base URL, to check that each latency target is a bucket boundary.
        #[arg(long, env = "GOVERNOR_PROMETHEUS_URL")]
        prometheus: Option<String>,
        /// Dashboard base URL, linked from every alert.
        #[arg(long, env = "GOVERNOR_DASHBOARD_URL")]
        dashboard_url: Option<String>,
        /// Runbook for SLOs whose alerting.runbookUrl is not set.
        #[arg(long)]
        runbook_url: Option<String>,
        /// Instead of printing, apply the rules of the cluster's SLOs (KUBECONFIG): a
        /// PrometheusRule per SLO when the CRD exists, else a ConfigMap; owned by the SLO.
        #[arg(long, conflicts_with = "paths")]
        apply: bool,
        /// With --apply: only this namespace's SLOs.
        #[arg(long, requires = "apply")]
        namespace: Option<String>,
        #[arg(required_unless_present = "apply", value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
    },
    /// Run the operator: observe, decide, act and report for every SLO in the cluster.
    Operator {
        /// Prometheus base URL.
        #[arg(long, env = "GOVERNOR_PROMETHEUS_URL")]
        prometheus: String,
        /// Jaeger query base URL, for SLOs whose latency comes from traces.
        #[arg(long, env = "GOVERNOR_JAEGER_URL")]
        jaeger: Option<String>,
        /// How often every SLO's signals are read, in one batched cycle.
        #[arg(long, default_value = "15s")]
        observe_interval: governor_crds::Duration,
        /// Range of rate() and histogram_quantile(), a PromQL duration.
        #[arg(long, default_value = "1m")]
        window: String,
        /// Timeout per query, seconds.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Namespace of the leader-election Lease (the operator's own).
        #[arg(long, env = "POD_NAMESPACE", default_value = "governor")]
        lease_namespace: String,
        #[arg(long, default_value = "governor-operator")]
        lease_name: String,
        /// This replica's identity in the Lease (default: hostname and pid).
        #[arg(long, env = "POD_NAME")]
        identity: Option<String>,
        /// A leader that stops renewing loses the Lease after this long.
        #[arg(long, default_value = "15s")]
        lease_duration: governor_crds::Duration,
        /// Where /metrics, /healthz and /readyz listen.
        #[arg(long, default_value = "0.0.0.0:9090")]
        metrics_listen: SocketAddr,
        /// Most SLOs reconciled at once (each pass makes a few API calls).
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
        concurrency: u16,
        /// Dashboard base URL, linked from the generated alerts.
        #[arg(long, env = "GOVERNOR_DASHBOARD_URL")]
        dashboard_url: Option<String>,
        /// OTLP/HTTP endpoint to export a trace of each reconcile to, e.g.
        /// http://otel-collector:4318 (off when unset).
        #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
        otlp_endpoint: Option<String>,
        /// Service name of the exported traces.
        #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "governor-operator")]
        otlp_service_name: String,
    },
    /// Check ServiceLevelObjective manifests; prints OK or every problem with its field path.
    Validate {
        /// Files or folders (searched recursively for .yaml, .yml and .json).
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
    },
    /// Write the CustomResourceDefinition generated from the Rust types.
    Crdgen {
        /// Folders to write the CRD into.
        #[arg(long = "out", value_name = "DIR", default_values = ["crds"])]
        out: Vec<PathBuf>,
        /// Print the CRD on stdout instead of writing files.
        #[arg(long, conflicts_with = "check")]
        stdout: bool,
        /// Write nothing; exit non-zero when a committed CRD differs from the types.
        #[arg(long)]
        check: bool,
    },
    /// The simulator in real time.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// One observation cycle for the SLOs in the files, printed as JSON.
    Observe {
        /// Prometheus base URL, e.g. http://127.0.0.1:9090.
        #[arg(long, env = "GOVERNOR_PROMETHEUS_URL")]
        prometheus: String,
        /// Jaeger query base URL, for SLOs whose indicators.source is jaeger.
        #[arg(long, env = "GOVERNOR_JAEGER_URL")]
        jaeger: Option<String>,
        /// Timeout per query, seconds.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Range of rate() and histogram_quantile(), a PromQL duration.
        #[arg(long, default_value = "1m")]
        window: String,
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
    },
    /// Compare Governor with hpa-cpu, hpa-latency, static and an oracle on simulated scenarios.
    Simulate {
        /// Scenario name, comma-separated names, or "all": audit, diurnal, flash-crowd, slow-ramp, db-bound, cold-cache.
        #[arg(long, default_value = "all")]
        scenario: String,
        /// A CSV trace of `seconds,rps` lines instead of a built-in scenario.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Policy names (comma-separated) or "all": governor, hpa-cpu, hpa-latency, static, oracle.
        #[arg(long, default_value = "all")]
        policy: String,
        /// Seeds per (scenario, policy); every policy sees the same seeds.
        #[arg(long, default_value_t = 3)]
        seeds: u32,
        #[arg(long, value_enum, default_value_t = commands::simulate::Format::Table)]
        format: commands::simulate::Format,
        /// Worker threads (default: the machine's cores).
        #[arg(long)]
        threads: Option<usize>,
    },
}

#[derive(Subcommand, Debug)]
pub enum SimCommand {
    /// Serve /metrics for simulated services in real time.
    Serve {
        /// Scenario whose load and service model to run.
        #[arg(long, default_value = "audit")]
        scenario: String,
        /// Number of services (default: the audit's four, else one).
        #[arg(long)]
        services: Option<usize>,
        #[arg(long, default_value = "127.0.0.1:9464")]
        listen: SocketAddr,
        /// Simulated seconds per wall-clock second.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Start this many simulated seconds into the scenario's load (the
        /// pattern still repeats: what is skipped comes at the end).
        #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
        start: f64,
        /// Also export a sample of requests as spans over OTLP/HTTP to this base URL
        /// (e.g. Jaeger's http://127.0.0.1:4318).
        #[arg(long, value_name = "URL")]
        otlp: Option<String>,
    },
}

fn block_on<F: std::future::Future<Output = ExitCode>>(f: F) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("governor: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

impl Cli {
    /// Where to export traces: only `governor operator` does, when asked.
    pub fn otlp(&self) -> Option<crate::telemetry::Otlp> {
        match &self.command {
            Command::Operator {
                otlp_endpoint: Some(endpoint),
                otlp_service_name,
                ..
            } => Some(crate::telemetry::Otlp {
                endpoint: endpoint.clone(),
                service_name: otlp_service_name.clone(),
            }),
            _ => None,
        }
    }
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Demo {
            listen,
            speed,
            seed,
        } => block_on(commands::demo::run(commands::demo::Args {
            listen,
            speed,
            seed,
        })),
        Command::Dashboard {
            listen,
            prometheus,
            jaeger,
            jaeger_ui,
            namespace,
            refresh,
            timeout,
        } => {
            if !(timeout.is_finite() && timeout > 0.0 && timeout <= 600.0) {
                eprintln!("governor dashboard: --timeout must be in (0, 600] seconds");
                return ExitCode::from(2);
            }
            if refresh.as_secs_f64() < 1.0 {
                eprintln!("governor dashboard: --refresh must be at least 1s");
                return ExitCode::from(2);
            }
            block_on(commands::dashboard::run(commands::dashboard::Args {
                listen,
                prometheus,
                jaeger,
                jaeger_ui,
                namespace,
                refresh: refresh.std(),
                timeout: Duration::from_secs_f64(timeout),
            }))
        }
        Command::Rules {
            output,
            prometheus,
            dashboard_url,
            runbook_url,
            apply,
            namespace,
            paths,
        } => block_on(async move {
            let args = commands::rules::Args {
                paths,
                output,
                prometheus,
                dashboard_url,
                runbook_url,
            };
            if apply {
                commands::rules::apply(args, namespace).await
            } else {
                commands::rules::run(args, &mut std::io::stdout()).await
            }
        }),
        Command::Operator {
            prometheus,
            jaeger,
            observe_interval,
            window,
            timeout,
            lease_namespace,
            lease_name,
            identity,
            lease_duration,
            metrics_listen,
            concurrency,
            dashboard_url,
            otlp_endpoint: _,
            otlp_service_name: _,
        } => {
            if !(timeout.is_finite() && timeout > 0.0 && timeout <= 600.0) {
                eprintln!("governor operator: --timeout must be in (0, 600] seconds");
                return ExitCode::from(2);
            }
            if window.parse::<governor_crds::Duration>().is_err()
                || window.contains(['d', 'w', '.'])
            {
                eprintln!(
                    "governor operator: --window must be a PromQL duration such as 30s or 1m, got {window:?}"
                );
                return ExitCode::from(2);
            }
            if observe_interval.as_secs_f64() < 1.0 || lease_duration.as_secs_f64() < 2.0 {
                eprintln!(
                    "governor operator: --observe-interval must be at least 1s and --lease-duration at least 2s"
                );
                return ExitCode::from(2);
            }
            block_on(commands::operator::run(commands::operator::Args {
                prometheus,
                jaeger,
                observe_interval: observe_interval.std(),
                window,
                timeout: Duration::from_secs_f64(timeout),
                lease_namespace,
                lease_name,
                identity,
                lease_duration: lease_duration.std(),
                metrics_listen,
                concurrency,
                dashboard_url,
            }))
        }
        Command::Validate { paths } => commands::validate::run(&paths, &mut std::io::stdout()),
        Command::Crdgen { out, stdout, check } => commands::crdgen::run(&out, stdout, check),
        Command::Sim {
            command:
                SimCommand::Serve {
                    scenario,
                    services,
                    listen,
                    speed,
                    seed,
                    start,
                    otlp,
                },
        } => block_on(commands::sim_serve::run(commands::sim_serve::Args {
            scenario,
            services,
            listen,
            speed,
            seed,
            start,
            otlp,
        })),
        Command::Observe {
            prometheus,
            jaeger,
            timeout,
            window,
            paths,
        } => {
            if window.parse::<governor_crds::Duration>().is_err()
                || window.contains(['d', 'w', '.'])
            {
                eprintln!(
                    "governor observe: --window must be a PromQL duration such as 30s or 1m, got {window:?}"
                );
                return ExitCode::from(2);
            }
            if !(timeout.is_finite() && timeout > 0.0 && timeout <= 600.0) {
                eprintln!("governor observe: --timeout must be in (0, 600] seconds");
                return ExitCode::from(2);
            }
            let timeout = Duration::from_secs_f64(timeout);
            block_on(commands::observe::run(commands::observe::Args {
                prometheus,
                jaeger,
                timeout,
                window,
                paths,
            }))
        }
        Command::Simulate {
            scenario,
            trace,
            policy,
            seeds,
            format,
            threads,
        } => {
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let args = commands::simulate::Args {
                scenario,
                trace,
                policy,
                seeds,
                format,
                threads,
            };
            commands::simulate::run(&args, &mut std::io::stdout())
        }
    }
}
