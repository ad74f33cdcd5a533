//! Headless Chromium (the Debian package): loads a page with a fresh profile and
//! returns its DOM after load and every message its console printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// What a page left after loading.
#[derive(Debug)]
pub struct Loaded {
    /// The serialized DOM after the load event.
    pub dom: String,
    /// Console messages (errors, warnings, logs, CSP violations), one per line.
    pub console: Vec<String>,
}

pub struct Chromium {
    path: PathBuf,
    /// Longest a single load may take.
    pub timeout: Duration,
}

impl Chromium {
    pub fn new() -> crate::Result<Self> {
        Ok(Self {
            path: crate::tools::tool("chromium")?,
            timeout: Duration::from_secs(90),
        })
    }

    fn run(&self, extra: &[String], url: &str) -> crate::Result<(String, String)> {
        let profile = tempfile::Builder::new()
            .prefix("governor-chromium-")
            .tempdir()?;
        let out_path = profile.path().join("stdout");
        let err_path = profile.path().join("stderr");
        let mut child = Command::new(&self.path)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-extensions",
                "--no-first-run",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!(
                "--user-data-dir={}",
                profile.path().join("profile").display()
            ))
            .args(extra)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path)?)
            .stderr(std::fs::File::create(&err_path)?)
            .spawn()
            .with_context(|| format!("starting {}", self.path.display()))?;
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "chromium did not finish loading {url} within {:?}",
                    self.timeout
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        if !status.success() {
            bail!("chromium exited with {status} loading {url}:\n{stderr}");
        }
        Ok((stdout, stderr))
    }

    /// Loads `url` and returns its DOM and console messages.
    pub fn load(&self, url: &str) -> crate::Result<Loaded> {
        let (dom, stderr) = self.run(&["--dump-dom".to_string()], url)?;
        let console = stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE") || l.contains("Refused to"))
            .map(str::to_string)
            .collect();
        Ok(Loaded { dom, console })
    }

    /// Saves a PNG screenshot of `url` at `width` x `height` to `path`.
    pub fn screenshot(&self, url: &str, path: &Path, width: u32, height: u32) -> crate::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        self.run(
            &[
                format!("--screenshot={}", path.display()),
                format!("--window-size={width},{height}"),
                "--hide-scrollbars".to_string(),
            ],
            url,
        )?;
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if size == 0 {
            bail!("chromium wrote no screenshot to {}", path.display());
        }
        Ok(())
    }
}
