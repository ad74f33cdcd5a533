//! `governor crdgen`: the CRD YAML comes from the Rust types, never by hand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use governor_crds::{CRD_FILE, crd_yaml};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folders to write the CRD into.
    #[arg(long = "out", value_name = "DIR", default_values = ["crds"])]
    pub out: Vec<PathBuf>,
    /// Print the CRD on stdout instead of writing files.
    #[arg(long, conflicts_with = "check")]
    pub stdout: bool,
    /// Write nothing; exit non-zero when a committed CRD differs from the types.
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: &Args) -> ExitCode {
    let (out, check) = (&args.out, args.check);
    let yaml = crd_yaml();
    if args.stdout {
        print!("{yaml}");
        return ExitCode::SUCCESS;
    }
    let mut ok = true;
    for dir in out {
        let path = dir.join(CRD_FILE);
        if check {
            match std::fs::read_to_string(&path) {
                Ok(current) if current == yaml => println!("{}: up to date", path.display()),
                Ok(_) => {
                    eprintln!(
                        "{}: differs from the Rust types; run `governor crdgen`",
                        path.display()
                    );
                    ok = false;
                }
                Err(e) => {
                    eprintln!("{}: cannot read: {e}", path.display());
                    ok = false;
                }
            }
        } else if let Err(e) = write(dir, &path, &yaml) {
            eprintln!("{}: cannot write: {e}", path.display());
            ok = false;
        } else {
            println!("wrote {}", path.display());
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn write(dir: &Path, path: &Path, yaml: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(path, yaml)
}
