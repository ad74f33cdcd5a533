//! Stamps the git commit into the binary for `governor --version`: from
//! `GOVERNOR_GIT_COMMIT` when set (image builds, whose context has no `.git`),
//! else `git rev-parse --short=12 HEAD` in this checkout, else "unknown".

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GOVERNOR_GIT_COMMIT");
    let from_env = std::env::var("GOVERNOR_GIT_COMMIT")
        .ok()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    let commit = match from_env {
        Some(commit) => {
            let valid = commit.len() <= 64
                && commit
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            if !valid {
                panic!(
                    "GOVERNOR_GIT_COMMIT={commit:?}: expected a commit id (letters, digits, \
                     '.', '-', '_'; at most 64 characters)"
                );
            }
            commit
        }
        None => {
            let manifest =
                PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
            let workspace = manifest.parent().unwrap_or(&manifest).to_path_buf();
            git_commit(&workspace).unwrap_or_else(|| "unknown".to_owned())
        }
    };
    println!("cargo:rustc-env=GOVERNOR_GIT_COMMIT={commit}");
}

/// The short commit of `workspace`'s checkout, watching the files that move
/// when HEAD does (not the whole refs folder: a commit on another branch or
/// worktree must not rebuild this package). None outside a git checkout of
/// this workspace.
fn git_commit(workspace: &Path) -> Option<String> {
    let toplevel = git(workspace, &["rev-parse", "--show-toplevel"])?;
    if Path::new(&toplevel).canonicalize().ok()? != workspace.canonicalize().ok()? {
        return None; // a copy of the sources inside some other repository
    }
    let git_dir = PathBuf::from(git(workspace, &["rev-parse", "--absolute-git-dir"])?);
    let common = git(workspace, &["rev-parse", "--git-common-dir"]).map(|d| {
        let d = PathBuf::from(d);
        if d.is_absolute() {
            d
        } else {
            workspace.join(d)
        }
    })?;
    let head = git_dir.join("HEAD");
    watch(&head);
    if let Some(reference) = std::fs::read_to_string(&head)
        .ok()
        .and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_owned()))
    {
        watch(&common.join(reference));
        watch(&common.join("packed-refs"));
    }
    git(workspace, &["rev-parse", "--short=12", "HEAD"])
}

/// Cargo reruns a build script every time for a watched path that does not
/// exist, so only existing files are watched.
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}
