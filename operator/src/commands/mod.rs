//! The subcommands, one module each.

pub mod crdgen;
pub mod validate;
