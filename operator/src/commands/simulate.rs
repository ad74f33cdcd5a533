//! `governor simulate`: compare Governor with the HPA baselines, a static
//! deployment and an oracle, on the same seeds.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::ValueEnum;

use crate::error::Error;

use crate::sim::bench::{Figures, suite};
use crate::sim::pareto::{self, Comparison};
use crate::sim::policy::{POLICIES, canonical_name};
use crate::sim::scenario::{BUILT_IN, LONG, Scenario};

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario name, comma-separated names, or "all": audit, diurnal, flash-crowd, slow-ramp, db-bound, cold-cache, sawtooth, step-down, noisy, slow-dependency, weekly, bad-pod; "month" (30 compressed days) by name only.
    #[arg(long, default_value = "all")]
    pub scenario: String,
    /// A CSV trace of `seconds,rps` lines instead of a built-in scenario.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Policy names (comma-separated) or "all": governor, hpa-cpu, hpa-latency, static, oracle;
    /// hpa-cpu:T sets the CPU target in percent (hpa-cpu is hpa-cpu:70), hpa-latency:F the
    /// P99 threshold as a fraction of the P99 target (hpa-latency is hpa-latency:1); "governor-budget-aware" by name only.
    #[arg(long, default_value = "all")]
    pub policy: String,
    /// Runs the cost-against-quality sweep instead of --policy: governor, oracle,
    /// hpa-cpu:30 to 90 by 10 and hpa-latency:0.5 to 1 by 0.1; prints the Pareto table.
    #[arg(long, conflicts_with = "policy")]
    pub sweep: bool,
    /// Writes each scenario's cost-against-quality chart to DIR/<scenario>.svg.
    #[arg(long, value_name = "DIR")]
    pub svg: Option<PathBuf>,
    /// Seeds per (scenario, policy); every policy sees the same seeds.
    #[arg(long, default_value_t = 3)]
    pub seeds: u32,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(args: &Args, out: &mut impl Write) -> Result<ExitCode, Error> {
    let figures = simulate(args)?;
    let charted = (args.sweep || args.svg.is_some()).then(|| pareto::compare(&figures));
    if let (Some(dir), Some(comparisons)) = (&args.svg, &charted) {
        write_charts(dir, comparisons)?;
    }
    write_figures(&figures, args.format, charted.as_deref(), out)?;
    Ok(ExitCode::SUCCESS)
}

/// One SVG chart per scenario in `dir`, created if missing.
fn write_charts(dir: &std::path::Path, comparisons: &[Comparison]) -> Result<(), Error> {
    let failed = |e: std::io::Error, what: &std::path::Path| {
        Error::Failed(format!("--svg {}: {e}", what.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| failed(e, dir))?;
    for c in comparisons {
        let path = dir.join(pareto::file_name(&c.scenario));
        std::fs::write(&path, pareto::svg(c)).map_err(|e| failed(e, &path))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn simulate(args: &Args) -> Result<Vec<Figures>, Error> {
    if args.seeds == 0 {
        return Err(Error::Usage("--seeds must be at least 1".into()));
    }
    let mut scenarios = Vec::new();
    if let Some(trace) = &args.trace {
        scenarios.push(Scenario::from_trace(trace)?);
    } else {
        let names: Vec<&str> = if args.scenario == "all" {
            BUILT_IN.to_vec()
        } else {
            args.scenario.split(',').collect()
        };
        for name in names {
            scenarios.push(Scenario::built_in(name.trim()).ok_or_else(|| {
                Error::Usage(format!(
                    "unknown scenario {name:?}; choose one of: all, {}, {}",
                    BUILT_IN.join(", "),
                    LONG.join(", ")
                ))
            })?);
        }
    }
    let policies: Vec<String> = if args.sweep {
        pareto::sweep_policies()
    } else if args.policy == "all" {
        POLICIES.iter().map(|s| s.to_string()).collect()
    } else {
        args.policy
            .split(',')
            .map(|p| canonical_name(p.trim()).map_err(|e| Error::Usage(format!("--policy: {e}"))))
            .collect::<Result<_, _>>()?
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let started = Instant::now();
    let total = scenarios.len() * policies.len() * args.seeds as usize;
    eprintln!(
        "simulating {total} runs ({} scenarios x {} policies x {} seeds) on {} threads",
        scenarios.len(),
        policies.len(),
        args.seeds,
        threads
    );
    let progress = |done: usize, total: usize, f: &Figures| {
        eprintln!(
            "[{done:>3}/{total}] {:<15} {:<15} p99 over target {:>4.0} min, {:>6.0} replica-min ({:.1}s)",
            f.scenario,
            f.policy,
            f.p99_violation_minutes,
            f.replica_minutes,
            started.elapsed().as_secs_f64()
        );
    };
    let figures = suite(&scenarios, &policies, args.seeds, threads, &progress)?;
    eprintln!("done in {:.1}s", started.elapsed().as_secs_f64());
    let oracle: Vec<&Figures> = figures.iter().filter(|f| f.policy == "oracle").collect();
    if !oracle.is_empty() {
        let runs: u32 = oracle.iter().map(|f| f.seeds).sum();
        let seconds: f64 = oracle.iter().map(|f| f.run_seconds).sum();
        eprintln!(
            "oracle: {runs} runs (search and replay) took {seconds:.1}s of thread time, {:.2}s each",
            seconds / f64::from(runs.max(1))
        );
    }
    Ok(figures)
}

fn find<'a>(all: &'a [Figures], scenario: &str, policy: &str) -> Option<&'a Figures> {
    all.iter()
        .find(|f| f.scenario == scenario && f.policy == policy)
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// Figures with their ratios against hpa-cpu and the oracle, as JSON values.
pub fn with_ratios(all: &[Figures]) -> Vec<serde_json::Value> {
    all.iter()
        .map(|f| {
            let mut v = serde_json::to_value(f).unwrap_or_default();
            let hpa = find(all, &f.scenario, "hpa-cpu");
            let oracle = find(all, &f.scenario, "oracle");
            v["p99_violation_minutes_vs_hpa_cpu"] = hpa
                .and_then(|h| ratio(f.p99_violation_minutes, h.p99_violation_minutes))
                .into();
            v["replica_minutes_vs_hpa_cpu"] = hpa
                .and_then(|h| ratio(f.replica_minutes, h.replica_minutes))
                .into();
            v["replica_minutes_vs_oracle"] = oracle
                .and_then(|o| ratio(f.replica_minutes, o.replica_minutes))
                .into();
            v
        })
        .collect()
}

/// Writes the figures in `format`, with their ratios to the baselines and,
/// for a sweep or chart, the HPA settings at least as good as Governor (the
/// Pareto table after the table; `dominated_by` on Governor's JSON rows).
fn write_figures(
    all: &[Figures],
    format: Format,
    charted: Option<&[Comparison]>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut rows = with_ratios(all);
    match format {
        Format::Json => {
            for (f, row) in all.iter().zip(rows.iter_mut()) {
                let compared = charted.and_then(|c| c.iter().find(|c| c.scenario == f.scenario));
                if let Some(c) = compared.filter(|_| f.policy == "governor") {
                    row["dominated_by"] = c.dominated_by.clone().into();
                }
            }
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&rows).unwrap_or_default()
            )
        }
        Format::Csv => write_csv(&rows, out),
        Format::Table => {
            write_table(all, &rows, out)?;
            if let Some(comparisons) = charted {
                writeln!(out)?;
                pareto::write_table(comparisons, out)?;
            }
            Ok(())
        }
    }
}

/// One CSV line per row, in a fixed column order.
fn write_csv(rows: &[serde_json::Value], out: &mut impl Write) -> std::io::Result<()> {
    let cols = [
        "scenario",
        "policy",
        "seeds",
        "p50_violation_minutes",
        "p90_violation_minutes",
        "p99_violation_minutes",
        "replica_minutes",
        "scaling_actions",
        "peak_db_connections",
        "db_connection_limit",
        "error_rate",
        "cache_hit_rate",
        "bottleneck_reported",
        "p99_violation_minutes_vs_hpa_cpu",
        "replica_minutes_vs_hpa_cpu",
        "replica_minutes_vs_oracle",
    ];
    writeln!(out, "{}", cols.join(","))?;
    for r in rows {
        let cells: Vec<String> = cols
            .iter()
            .map(|c| match &r[*c] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                v => v.to_string(),
            })
            .collect();
        writeln!(out, "{}", cells.join(","))?;
    }
    Ok(())
}

/// The aligned table for a terminal.
fn write_table(
    all: &[Figures],
    rows: &[serde_json::Value],
    out: &mut impl Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<15} {:<15} {:>6} {:>6} {:>6} {:>9} {:>7} {:>8} {:>7} {:>6} {:>5} {:>9} {:>9} {:>9}",
        "scenario",
        "policy",
        "p50>",
        "p90>",
        "p99>",
        "repl-min",
        "actions",
        "peak-db",
        "errors",
        "hit",
        "btlnk",
        "p99/hpa",
        "cost/hpa",
        "cost/orc"
    )?;
    let fmt = |v: &serde_json::Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.2}"));
    for (f, r) in all.iter().zip(rows) {
        let policy = if f.oracle_feasible == Some(false) {
            format!("{}*", f.policy)
        } else {
            f.policy.clone()
        };
        writeln!(
            out,
            "{:<15} {:<15} {:>6.1} {:>6.1} {:>6.1} {:>9.0} {:>7.1} {:>4.0}/{:<3} {:>6.2}% {:>5.0}% {:>5} {:>9} {:>9} {:>9}",
            f.scenario,
            policy,
            f.p50_violation_minutes,
            f.p90_violation_minutes,
            f.p99_violation_minutes,
            f.replica_minutes,
            f.scaling_actions,
            f.peak_db_connections,
            f.db_connection_limit,
            f.error_rate * 100.0,
            f.cache_hit_rate * 100.0,
            if f.bottleneck_reported { "yes" } else { "no" },
            fmt(&r["p99_violation_minutes_vs_hpa_cpu"]),
            fmt(&r["replica_minutes_vs_hpa_cpu"]),
            fmt(&r["replica_minutes_vs_oracle"]),
        )?;
    }
    if all.iter().any(|f| f.oracle_feasible == Some(false)) {
        writeln!(
            out,
            "* no schedule meets every objective there (on at least one seed): the oracle's \
             best effort, the fewest objectives missed per minute, then the fewest replicas"
        )?;
    }
    Ok(())
}
