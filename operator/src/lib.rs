//! Governor: an SLO autopilot for Kubernetes. The library behind the `governor`
//! binary; each subcommand lives in `commands/`.

pub mod cli;
pub mod commands;
pub mod telemetry;
