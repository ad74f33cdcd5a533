//! `governor crdgen`: the CRD YAML comes from the Rust types, never by hand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use governor_crds::{CRD_FILE, crd_yaml};

pub fn run(out: &[PathBuf], to_stdout: bool, check: bool) -> ExitCode {
    let yaml = crd_yaml();
    if to_stdout {
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
