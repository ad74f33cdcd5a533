//! The `governor` package's integration tests, one test binary (`it`): each
//! module was a binary of its own, and every one of them linked kube, axum and
//! the rest. Run one module with a filter, e.g.
//! `cargo test -p governor --test it operator_scale:: -- --nocapture`.
//!
//! The tests that start real servers take a slot of `common::gate` first.

mod common;

mod backend_limits;
mod backend_tls;
mod dashboard;
mod db_bound;
mod decide_props;
mod demo;
mod demo_climb;
mod ecosystem;
mod erlang_c;
mod faults;
mod helm;
mod image;
mod operator;
mod operator_fencing;
mod operator_resilience;
mod operator_scale;
mod oracle;
mod rules;
mod rules_cluster;
mod signals;
mod simulate;
mod sloth;
mod tenancy;
mod traces;
mod validate_cli;
mod walkthrough;
