//! Where the installed tools are: `$GOVERNOR_TOOLS_BIN` (set by tests/run.sh), or
//! the installer's answer (it is idempotent and fast once cached).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail};

static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The folder holding prometheus, promtool, alertmanager, etcd, kube-apiserver,
/// jaeger, helm and chromium.
pub fn bin_dir() -> crate::Result<PathBuf> {
    BIN.get_or_init(|| locate().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn locate() -> crate::Result<PathBuf> {
    if let Ok(dir) = std::env::var("GOVERNOR_TOOLS_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let script = crate::repo_root().join("tests/tools/install.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default().trim();
    Ok(PathBuf::from(last))
}

/// The path of one tool, checked to exist.
pub fn tool(name: &str) -> crate::Result<PathBuf> {
    let path = bin_dir()?.join(name);
    if !path.exists() {
        bail!(
            "{} not found; run `bash tests/tools/install.sh`",
            path.display()
        );
    }
    Ok(path)
}

/// Runs the pinned helm with its caches in the temp folder; returns
/// (success, stdout, stderr).
pub fn helm(args: &[&str]) -> crate::Result<(bool, String, String)> {
    let tmp = std::env::temp_dir();
    let out = std::process::Command::new(tool("helm")?)
        .args(args)
        .env("HELM_CACHE_HOME", tmp.join("governor-helm-cache"))
        .env("HELM_CONFIG_HOME", tmp.join("governor-helm-config"))
        .env("HELM_DATA_HOME", tmp.join("governor-helm-data"))
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}
