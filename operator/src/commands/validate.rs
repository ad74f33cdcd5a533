//! `governor validate FILE|DIR...`: every problem in every manifest, by file,
//! object and field path; exit status 1 on any problem.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use governor_crds::manifest::{Document, MAX_MANIFEST_BYTES, parse_documents};

/// What a validation run found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub valid: usize,
    pub invalid: usize,
    pub unreadable: usize,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files or folders (searched recursively for .yaml, .yml and .json).
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
}

pub fn run(paths: &[PathBuf], out: &mut impl Write) -> ExitCode {
    let summary = validate_paths(paths, out);
    let _ = writeln!(
        out,
        "{} valid, {} invalid, {} unreadable",
        summary.valid, summary.invalid, summary.unreadable
    );
    if summary.invalid + summary.unreadable == 0 && summary.valid > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Why a manifest, or the folder of manifests, could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot open: {0}")]
    Open(#[source] std::io::Error),
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    #[error("cannot list {}: {source}", dir.display())]
    List {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("larger than the {MAX_MANIFEST_BYTES}-byte manifest limit; not read")]
    TooLarge,
    #[error("not UTF-8 text (byte {})", .0.utf8_error().valid_up_to())]
    NotUtf8(#[source] std::string::FromUtf8Error),
}

/// One manifest file and its documents, or why it could not be read.
pub(crate) struct ManifestFile {
    pub file: PathBuf,
    pub documents: Result<Vec<Document>, ManifestError>,
}

/// The manifests under `path` (a file, or a folder searched recursively), each
/// read within the size limit and parsed; `Err` when `path` cannot be listed.
pub(crate) fn load(path: &Path) -> Result<Vec<ManifestFile>, ManifestError> {
    Ok(collect(path)?
        .into_iter()
        .map(|file| {
            let documents = read_limited(&file).map(|text| parse_documents(&text));
            ManifestFile { file, documents }
        })
        .collect())
}

/// The valid SLOs under `paths`, each with its file; every problem goes to
/// stderr as `file: object: problem`, and the flag says whether there was one.
pub(crate) fn load_valid(
    paths: &[PathBuf],
) -> (Vec<(String, governor_crds::ServiceLevelObjective)>, bool) {
    let mut slos = Vec::new();
    let mut failed = false;
    for path in paths {
        let files = match load(path) {
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
    (slos, failed)
}

/// Validates every manifest under `paths`, writing one line per object or problem.
pub fn validate_paths(paths: &[PathBuf], out: &mut impl Write) -> Summary {
    let mut summary = Summary::default();
    for path in paths {
        match load(path) {
            Ok(files) if files.is_empty() => {
                let _ = writeln!(
                    out,
                    "{}: no .yaml, .yml or .json files found",
                    path.display()
                );
                summary.unreadable += 1;
            }
            Ok(files) => {
                for manifest in files {
                    report(manifest, out, &mut summary);
                }
            }
            Err(e) => {
                let _ = writeln!(out, "{}: {e}", path.display());
                summary.unreadable += 1;
            }
        }
    }
    summary
}

fn report(manifest: ManifestFile, out: &mut impl Write, summary: &mut Summary) {
    let name = manifest.file.display();
    let docs = match manifest.documents {
        Ok(docs) => docs,
        Err(e) => {
            let _ = writeln!(out, "{name}: {e}");
            summary.unreadable += 1;
            return;
        }
    };
    if docs.is_empty() {
        let _ = writeln!(out, "{name}: no objects in file");
        summary.unreadable += 1;
    }
    for doc in docs {
        match doc.result {
            Ok(_) => {
                let _ = writeln!(out, "{name}: {}: OK", doc.object);
                summary.valid += 1;
            }
            Err(problems) => {
                for p in problems {
                    let _ = writeln!(out, "{name}: {}: {p}", doc.object);
                }
                summary.invalid += 1;
            }
        }
    }
}

/// Reads a file as UTF-8, refusing files over the manifest limit without reading them whole.
fn read_limited(file: &Path) -> Result<String, ManifestError> {
    let f = std::fs::File::open(file).map_err(ManifestError::Open)?;
    let mut bytes = Vec::new();
    f.take(MAX_MANIFEST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(ManifestError::Read)?;
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge);
    }
    String::from_utf8(bytes).map_err(ManifestError::NotUtf8)
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// The files to read: a file as given, or a folder's manifests recursively, sorted.
fn collect(path: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let meta = std::fs::metadata(path).map_err(ManifestError::Read)?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| ManifestError::List {
            dir: dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let p = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() && is_manifest(&p) => files.push(p),
                _ => {}
            }
        }
    }
    files.sort();
    Ok(files)
}
