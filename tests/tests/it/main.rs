//! The harness's own tests, one test binary (`it`): each server starts, answers
//! and stops as the operator's tests expect. Run one module with a filter, e.g.
//! `cargo test -p governor-tests --test it kube_api::`.

mod kube_api;
mod observability;
mod tools;
