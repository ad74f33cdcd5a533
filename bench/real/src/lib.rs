//! Governor's real-workload benchmark, first stage: the reference service
//! (`service`), the open-loop load generator (`load`) and the calibration of
//! the simulator against them (`calibrate`). The binaries `bench-service`,
//! `bench-load` and `bench-calibrate` only parse arguments and call these.

pub mod calibrate;
pub mod load;
pub mod service;

pub type Result<T, E = anyhow::Error> = std::result::Result<T, E>;

/// Logs to stderr at `RUST_LOG` (default info).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
