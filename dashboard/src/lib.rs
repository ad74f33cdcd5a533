//! Governor's dashboard: P50/P90/P99 against targets, error budgets, and why
//! Governor did what it did. Server-rendered, no JavaScript needed, no
//! external assets. It renders from a [`model::ReadModel`]; this crate never
//! imports the operator.

pub mod chart;
pub mod format;
pub mod model;
pub mod pages;
pub mod sample;
pub mod server;

pub use governor_crds as crds;
pub use model::{Fixed, HistoryPoint, Range, ReadModel, SloView, Snapshot, Standing, TraceRow};
pub use pages::Config;
pub use server::router;
