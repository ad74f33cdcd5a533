//! Governor: an SLO autopilot for Kubernetes. The library behind the `governor`
//! binary; each subcommand lives in `commands/`.

pub mod actuate;
pub mod cli;
pub mod commands;
pub mod controller;
pub mod decide;
pub mod demo;
pub mod model;
pub mod observe;
pub mod queueing;
pub mod readmodel;
pub mod report;
pub mod rules;
pub mod sim;
pub mod telemetry;
