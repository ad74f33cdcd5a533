//! Why the dashboard could not show something. Read models return it, pages
//! render its text, and the failure's own error stays reachable as its source.

use std::fmt;
use std::sync::Arc;

/// Why a read failed. Cloneable, so one answer can be shared by every waiter
/// of a single-flight read.
#[derive(Clone, Debug)]
pub enum Error {
    /// No such SLO, or nothing recorded for it.
    NotFound { namespace: String, name: String },
    /// A `?range=` the dashboard does not offer.
    Range(String),
    /// A backend the read model was not given (e.g. no Jaeger URL).
    NotConfigured(String),
    /// A backend failed; `what` says which and where.
    Backend {
        what: String,
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { namespace, name } => {
                write!(f, "no ServiceLevelObjective {namespace}/{name}")
            }
            Error::Range(r) => write!(
                f,
                "range {r:?} is not one Governor offers; choose 1h, 6h, 24h or 7d"
            ),
            Error::NotConfigured(what) => f.write_str(what),
            Error::Backend { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

/// Written out rather than derived so that `source()` is the backend's own
/// error, not the `Arc` around it: callers can downcast it.
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Backend { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

impl Error {
    pub fn not_found(namespace: &str, name: &str) -> Self {
        Error::NotFound {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// `what` (e.g. "Prometheus at http://…") failed with `source`.
    pub fn backend(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Backend {
            what: what.into(),
            source: Arc::new(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_failure_keeps_its_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::backend("Prometheus at http://127.0.0.1:9", io);
        assert_eq!(e.to_string(), "Prometheus at http://127.0.0.1:9: refused");
        let source = std::error::Error::source(&e).expect("a source");
        assert_eq!(source.to_string(), "refused");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }
}
