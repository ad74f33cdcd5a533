//! The dashboard's integration tests, one test binary (`it`), named as in the
//! other packages: `cargo test -p governor-dashboard --test it`.

mod limits;
mod server;
