//! Harness for Governor's integration tests: the real servers (kube-apiserver +
//! etcd, Prometheus, Alertmanager, Jaeger, Toxiproxy, HAProxy, PostgreSQL) started on free loopback ports, ready
//! when returned, logs kept for failed tests, stopped on drop.

pub mod browser;
pub mod control_plane;
pub mod haproxy;
pub mod observability;
pub mod postgres;
pub mod process;
pub mod tls;
pub mod tools;
pub mod toxiproxy;
pub mod webhook;

use std::path::PathBuf;

pub use browser::Chromium;
pub use control_plane::ControlPlane;
pub use observability::{Alertmanager, Jaeger, Prometheus, Version as PrometheusVersion};
pub use postgres::Postgres;
pub use process::{Server, free_port, wait_until};
pub use toxiproxy::{Toxic, Toxiproxy};
pub use webhook::Webhook;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

pub type Result<T, E = anyhow::Error> = std::result::Result<T, E>;
