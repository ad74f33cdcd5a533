//! Governor: an SLO autopilot for Kubernetes. The library behind the `governor`
//! binary; each subcommand lives in `commands/`, the control loop's steps in
//! `observe` → `decide` → `actuate` → `report`, run by `controller` on a
//! cluster and by `sim` in the simulator and the demo. See ARCHITECTURE.md.

pub mod actuate;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod controller;
pub mod decide;
pub mod error;
pub mod error_budget;
pub mod estimate;
pub mod grafana;
pub mod observe;
pub mod openslo;
pub mod queueing;
pub mod report;
pub mod rules;
pub mod scope;
pub mod sim;
pub mod telemetry;

pub use error::Error;

#[cfg(test)]
mod layout;

/// The git commit this binary was built from (`build.rs`): 12 hex digits, or
/// "unknown" when built outside a checkout without `GOVERNOR_GIT_COMMIT`.
pub const GIT_COMMIT: &str = env!("GOVERNOR_GIT_COMMIT");

/// What `governor --version` prints after the name: the package version and the
/// commit, e.g. `0.1.0 (0123456789ab)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("GOVERNOR_GIT_COMMIT"),
    ")"
);
