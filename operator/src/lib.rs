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
pub mod observe;
pub mod queueing;
pub mod report;
pub mod rules;
pub mod scope;
pub mod sim;
pub mod telemetry;

pub use error::Error;

/// The version `governor --version` prints.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
