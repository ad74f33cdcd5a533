//! The subcommands, one module each.

pub mod crdgen;
pub mod dashboard;
pub mod demo;
pub mod observe;
pub mod operator;
pub mod rules;
pub mod sim_serve;
pub mod simulate;
pub mod validate;
