//! Governor's dashboard: the read model it renders from. Pages come with the
//! dashboard work; this crate never imports the operator.

pub use governor_crds as crds;
