//! Governor's dashboard: P50/P90/P99 against targets, error budgets, and why
//! Governor did what it did. Server-rendered, no JavaScript needed, no
//! external assets. It renders from a [`read::ReadModel`]; this crate never
//! imports the operator.
//!
//! Laid out by page: each module of [`pages`] holds a page's handler and its
//! view model, beside its template in `templates/`; [`server`] routes to them,
//! [`serve`] serves the routes within bounds, and [`flight`] is the single-flight
//! cache read models keep their backends' answers in.

pub mod chart;
pub mod error;
pub mod flight;
pub mod format;
pub mod pages;
pub mod read;
pub mod sample;
pub mod serve;
pub mod server;

pub use error::Error;
pub use governor_crds as crds;
pub use pages::Config;
pub use read::{Fixed, HistoryPoint, Range, ReadModel, SloView, Snapshot, Standing, TraceRow};
pub use serve::{Limits, Server};
pub use server::router;
