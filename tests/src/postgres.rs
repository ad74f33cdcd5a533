//! PostgreSQL (Debian's `postgresql` package) on loopback: a fresh cluster made
//! by `initdb` in a temporary folder, `max_connections=100`, TCP only, trust
//! authentication for the `postgres` user; ready when returned, stopped on drop.
//!
//! initdb and postgres refuse to run as root. When the tests run as root the
//! cluster is made and run as the `postgres` system user the package creates
//! (through `setpriv`, which execs, so the server's pid is postgres itself).
//!
//! ```no_run
//! # async fn f() -> governor_tests::Result<()> {
//! let db = governor_tests::Postgres::start().await?;
//! println!("{}", db.url()); // postgres://postgres@127.0.0.1:PORT/postgres
//! # Ok(()) }
//! ```

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::process::{Server, free_port};
use crate::tools::tool;

/// The connection limit of the benchmark's database (the audit's).
pub const MAX_CONNECTIONS: u32 = 100;

/// A running PostgreSQL server; stopped (fast shutdown) on drop.
pub struct Postgres {
    pub port: u16,
    server: Server,
}

impl Postgres {
    /// Makes a cluster with initdb in a temporary folder, starts it on a free
    /// loopback port and waits until `pg_isready` answers.
    pub async fn start() -> crate::Result<Self> {
        let dir = tempfile::Builder::new().prefix("postgres-").tempdir()?;
        let data = dir.path().join("data");
        let as_postgres = running_as_root();
        if as_postgres {
            // The postgres user must reach its data folder inside ours.
            run(Command::new("chmod").arg("755").arg(dir.path()))?;
        }
        std::fs::create_dir(&data).with_context(|| format!("creating {}", data.display()))?;
        if as_postgres {
            run(Command::new("chown").arg("postgres:postgres").arg(&data))?;
        }
        let initdb = server_binary("initdb")?;
        let mut cmd = user_command(as_postgres, &initdb);
        cmd.args([
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data);
        run(&mut cmd).context("initdb")?;

        let port = free_port()?;
        let postgres = server_binary("postgres")?;
        let mut args: Vec<String> = Vec::new();
        let program = if as_postgres {
            args.extend(setpriv_args(&postgres));
            Path::new("/usr/bin/setpriv").to_path_buf()
        } else {
            postgres.clone()
        };
        args.extend([
            "-D".to_string(),
            data.display().to_string(),
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            // TCP only: no socket file to place.
            "-c".into(),
            "unix_socket_directories=".into(),
            "-c".into(),
            format!("max_connections={MAX_CONNECTIONS}"),
            "-c".into(),
            "fsync=off".into(),
            "-c".into(),
            "shared_buffers=16MB".into(),
        ]);
        let mut server = Server::start("postgres", &program, &args, dir)?;
        let isready = tool("pg_isready")?;
        server
            .wait_ready(Duration::from_secs(60), || {
                let ok = Command::new(&isready)
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &port.to_string(),
                        "-U",
                        "postgres",
                        "-q",
                    ])
                    .status()
                    .is_ok_and(|s| s.success());
                async move { ok }
            })
            .await?;
        Ok(Self { port, server })
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.server.log_tail(lines)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Fast shutdown (SIGINT) so the backends go with the postmaster; the
        // Server's own drop kills what is left.
        if let Some(pid) = self.server.pid() {
            let _ = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists()
                && !is_zombie(pid)
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

/// A tool by its real path: initdb finds postgres beside its own resolved
/// path, and the postgres user cannot read the tools folder under /root.
fn server_binary(name: &str) -> crate::Result<std::path::PathBuf> {
    let link = tool(name)?;
    std::fs::canonicalize(&link).with_context(|| format!("resolving {}", link.display()))
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `setpriv` arguments that run `program` as the postgres user.
fn setpriv_args(program: &Path) -> Vec<String> {
    vec![
        "--reuid=postgres".into(),
        "--regid=postgres".into(),
        "--clear-groups".into(),
        "--".into(),
        program.display().to_string(),
    ]
}

fn user_command(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut c = Command::new("/usr/bin/setpriv");
        c.args(setpriv_args(program));
        c
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command) -> crate::Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}):\n{}{}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
