//! `governor grafana [FILE|DIR...]`: the Grafana dashboard (JSON) over
//! Governor's recording rules and metrics, for the SLOs in the files or, with
//! none, for any SLO (namespace and SLO chosen in the dashboard).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::Error;
use crate::grafana::{Scope, dashboard};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// SLO manifests: the dashboard offers these SLOs and their rules'
    /// windows; without any, every SLO Prometheus has series for.
    #[arg(value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
}

pub fn run(args: &Args, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let scope = if args.paths.is_empty() {
        Scope::default()
    } else {
        let (slos, failed) = super::validate::load_valid(&args.paths);
        if failed {
            return Ok(ExitCode::from(1));
        }
        if slos.is_empty() {
            return Err(Error::Usage(
                "no ServiceLevelObjective in the files given".into(),
            ));
        }
        let slos: Vec<_> = slos.into_iter().map(|(_, s)| s).collect();
        Scope::of(&slos)
    };
    let text = serde_json::to_string_pretty(&dashboard(&scope))
        .map_err(|e| Error::Failed(format!("cannot write the dashboard as JSON: {e}")))?;
    writeln!(out, "{text}")?;
    Ok(ExitCode::SUCCESS)
}
