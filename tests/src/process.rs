//! A server process: started with its output in a log file, stopped on drop, its
//! log printed when the test that owned it fails.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> crate::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// A running server process with its own temporary folder.
pub struct Server {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
    /// How it was started, to start it again.
    command: (PathBuf, Vec<String>, Vec<(String, String)>),
    /// Scratch folder for config, data and logs; removed on drop.
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts `program args` with stdout and stderr in `<dir>/<name>.log`.
    pub fn start(
        name: &str,
        program: &Path,
        args: &[String],
        dir: tempfile::TempDir,
    ) -> crate::Result<Self> {
        Self::start_env(name, program, args, &[], dir)
    }

    /// As `start`, with extra environment variables.
    pub fn start_env(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(&str, &str)],
        dir: tempfile::TempDir,
    ) -> crate::Result<Self> {
        let log = dir.path().join(format!("{name}.log"));
        let mut server = Self {
            name: name.to_string(),
            child: None,
            log,
            command: (
                program.to_path_buf(),
                args.to_vec(),
                envs.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            dir,
        };
        server.spawn()?;
        Ok(server)
    }

    /// Starts the process, its output appended to the log.
    fn spawn(&mut self) -> crate::Result<()> {
        // Whoever talks to the server next may build a reqwest client.
        crate::tls::install_crypto_provider();
        let out = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let err = out.try_clone()?;
        let (program, args, envs) = &self.command;
        let child = Command::new(program)
            .args(args)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Starts a stopped server again, same arguments, same folder (its data
    /// survives). Callers wait for readiness as after `start`.
    pub fn restart(&mut self) -> crate::Result<()> {
        self.stop();
        self.spawn()
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Fails with the log when the process has exited.
    pub fn check_alive(&mut self) -> crate::Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!(
                "{} exited ({status}) before it was ready:\n{}",
                self.name,
                self.log_tail(40)
            );
        }
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the process (SIGKILL) and waits for it; idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until `probe` succeeds, failing early (with the log) if the process dies.
    pub async fn wait_ready<F, Fut>(&mut self, timeout: Duration, mut probe: F) -> crate::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if probe().await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready after {timeout:?}:\n{}",
                    self.name,
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- {} log (last 60 lines) ----\n{}\n---- end of {} log ----",
                self.name,
                self.log_tail(60),
                self.name
            );
        }
        self.stop();
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `timeout`
/// naming `what`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> crate::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GET `url` and report whether it answered 2xx.
pub async fn http_ok(client: &reqwest::Client, url: &str) -> bool {
    matches!(client.get(url).send().await, Ok(r) if r.status().is_success())
}
