//! `governor import openslo FILE...` and `governor export openslo FILE|DIR...`:
//! OpenSLO v1 documents to ServiceLevelObjectives (YAML on stdout, each
//! checked as `governor validate` checks it) and back, for what both can say.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::Error;
use crate::openslo::{self, Documents};

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Namespace of the ServiceLevelObjectives, unless an SLO's
    /// governor.dev/namespace annotation names one.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// OpenSLO v1 files (SLO, SLI, AlertPolicy and DataSource documents; refs
    /// resolve across all of them).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// ServiceLevelObjective manifests.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
}

/// Prints the ServiceLevelObjectives; exit 1, with each refusal on stderr,
/// when a field cannot be mapped.
pub fn import(args: &ImportArgs, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let mut docs = Documents::default();
    let mut failed = false;
    for file in &args.files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::Usage(format!("{}: cannot read: {e}", file.display())))?;
        if let Err(e) = docs.add(&text) {
            eprintln!("{}: {e}", file.display());
            failed = true;
        }
    }
    if failed {
        return Ok(ExitCode::from(1));
    }
    let manifests = match openslo::import(&docs, &args.namespace) {
        Ok(m) => m,
        Err(refusals) => {
            for r in refusals {
                eprintln!("{r}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    if manifests.is_empty() {
        return Err(Error::Usage("no OpenSLO SLO in the files".into()));
    }
    let mut texts = Vec::new();
    for m in &manifests {
        let text = serde_yaml_ng::to_string(m)
            .map_err(|e| Error::Failed(format!("cannot write YAML: {e}")))?;
        // What `governor validate` would say: an import never prints an invalid SLO.
        for doc in governor_crds::manifest::parse_documents(&text) {
            if let Err(problems) = doc.result {
                for p in problems {
                    eprintln!("{}: {p}", doc.object);
                    failed = true;
                }
            }
        }
        texts.push(text);
    }
    if failed {
        return Ok(ExitCode::from(1));
    }
    out.write_all(texts.join("---\n").as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the OpenSLO documents of the SLOs in the files; what OpenSLO
/// cannot say goes to stderr as notes.
pub fn export(args: &ExportArgs, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let (slos, failed) = super::validate::load_valid(&args.paths);
    let mut texts = Vec::new();
    for (file, slo) in &slos {
        let (docs, notes) = openslo::export(slo);
        let name = slo.metadata.name.as_deref().unwrap_or_default();
        for n in notes {
            eprintln!("{file}: {name}: note: {n}");
        }
        for d in docs {
            texts.push(
                serde_yaml_ng::to_string(&d)
                    .map_err(|e| Error::Failed(format!("cannot write YAML: {e}")))?,
            );
        }
    }
    out.write_all(texts.join("---\n").as_bytes())?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
