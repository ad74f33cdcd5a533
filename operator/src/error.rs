//! The errors a command ends with, each keeping its source; `main` prints
//! them and exits with their code.

use std::process::ExitCode;

/// The API server's own message when it sent one, else the client's.
pub fn api_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.reason),
        other => other.to_string(),
    }
}

/// Why a command stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag's value cannot be used (exit 2, like clap's own usage errors).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Source(#[from] crate::observe::prometheus::SourceError),
    /// A Prometheus query a command needed failed.
    #[error("{what}: query failed: {source}")]
    Query {
        what: String,
        #[source]
        source: crate::observe::prometheus::QueryError,
    },
    #[error("no Kubernetes API ({0}); set KUBECONFIG or run in a cluster")]
    NoCluster(#[source] kube::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The trace exporter could not be built for `--otlp-endpoint`.
    #[error("OTLP exporter for {endpoint}: {source}")]
    Otlp {
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// YAML could not be written.
    #[error("cannot write {what} as YAML: {source}")]
    Yaml {
        what: &'static str,
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    ReadFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A line of a `seconds,rps` trace that cannot be used.
    #[error("{path}:{line}: {message}")]
    Trace {
        path: String,
        line: usize,
        message: String,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("{what}: {}", api_text(.source))]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Anything else that ends a command, already worded for the user.
    #[error("{0}")]
    Failed(String),
}

impl Error {
    /// `what` failed against the Kubernetes API.
    pub fn kube(what: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube {
            what: what.into(),
            source,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) | Error::Source(_) | Error::Otlp { .. } | Error::Trace { .. } => {
                ExitCode::from(2)
            }
            _ => ExitCode::FAILURE,
        }
    }
}
