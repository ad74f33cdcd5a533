//! The API's integration tests, one test binary (`it`), named as in the other
//! packages: `cargo test -p governor-crds --test it`.

mod crd_drift;
