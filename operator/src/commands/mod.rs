//! The subcommands, one module each.

pub mod crdgen;
pub mod simulate;
pub mod validate;
