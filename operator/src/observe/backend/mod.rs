//! How Governor reaches Prometheus and Jaeger: the base URL, TLS (a CA bundle,
//! a client certificate, or no verification when asked for by name) and
//! authentication (a bearer token or basic auth read from files, extra
//! headers). Every flag is checked at start and a bad one named; a failed
//! exchange is explained with the flag to look at. Credential files are read
//! again for every request, as Prometheus does for its own `*_file` settings:
//! a rotated token is used from the next query on, and a file that is gone
//! fails the query (the last token read is never used instead).

//!
//! `credentials.rs` holds the token and password files, `tls.rs` the rustls
//! configuration and the words for a failed handshake.

mod credentials;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

pub use credentials::SecretError;
use credentials::{Credentials, credentials};
use tls::{TlsFacts, rustls_cause, tls_config};

/// The backend a client reaches, for flag names and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Prometheus,
    Jaeger,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Prometheus => "Prometheus",
            Backend::Jaeger => "Jaeger",
        }
    }

    /// The flag of the URL (`suffix` empty) or of one of its settings, e.g.
    /// `--prometheus-ca-file`.
    pub fn flag(self, suffix: &str) -> String {
        let prefix = match self {
            Backend::Prometheus => "--prometheus",
            Backend::Jaeger => "--jaeger",
        };
        if suffix.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}-{suffix}")
        }
    }
}

/// One extra request header, `NAME=VALUE`.
#[derive(Clone, Debug)]
pub struct Header {
    pub name: HeaderName,
    pub value: HeaderValue,
}

impl std::str::FromStr for Header {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, value) = s
            .split_once('=')
            .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("{name:?} is not a valid header name"))?;
        let mut value = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("the value of {name} has a character a header cannot carry"))?;
        // Tenant ids and API keys stay out of Debug output and logs.
        value.set_sensitive(true);
        Ok(Self { name, value })
    }
}

/// The TLS and authentication settings of one backend, as given on the
/// command line (see [`PrometheusAccess`] and [`JaegerAccess`]).
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub bearer_token_file: Option<PathBuf>,
    pub basic_auth_user: Option<String>,
    pub basic_auth_password_file: Option<PathBuf>,
    pub headers: Vec<Header>,
}

impl Access {
    /// The TLS flags that are set, by suffix.
    pub(super) fn tls_flags(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        if self.ca_file.is_some() {
            set.push("ca-file");
        }
        if self.cert_file.is_some() {
            set.push("cert-file");
        }
        if self.key_file.is_some() {
            set.push("key-file");
        }
        if self.insecure_skip_verify {
            set.push("insecure-skip-verify");
        }
        set
    }
}

/// The same flags for each backend, `--prometheus-…` and `--jaeger-…`, each
/// also read from `GOVERNOR_PROMETHEUS_…` / `GOVERNOR_JAEGER_…`.
macro_rules! access_flags {
    ($(#[$doc:meta])* $name:ident, $id:literal, $flag:literal, $env:literal) => {
        $(#[$doc])*
        #[derive(clap::Args, Debug, Clone, Default)]
        pub struct $name {
            /// PEM file of the CA certificates that sign the server's
            /// certificate; they replace the system's roots (needs an https:// URL).
            #[arg(id = concat!($id, "_ca_file"), long = concat!($flag, "-ca-file"), env = concat!($env, "_CA_FILE"), value_name = "FILE")]
            pub ca_file: Option<PathBuf>,
            /// PEM file of the client certificate (chain) for mutual TLS; with the key file.
            #[arg(id = concat!($id, "_cert_file"), long = concat!($flag, "-cert-file"), env = concat!($env, "_CERT_FILE"), value_name = "FILE")]
            pub cert_file: Option<PathBuf>,
            /// PEM file of the client certificate's private key; with the certificate file.
            #[arg(id = concat!($id, "_key_file"), long = concat!($flag, "-key-file"), env = concat!($env, "_KEY_FILE"), value_name = "FILE")]
            pub key_file: Option<PathBuf>,
            /// Accept any server certificate (no verification at all): for tests only.
            #[arg(id = concat!($id, "_insecure_skip_verify"), long = concat!($flag, "-insecure-skip-verify"), env = concat!($env, "_INSECURE_SKIP_VERIFY"), action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
            pub insecure_skip_verify: bool,
            /// File holding a bearer token, read again for every request
            /// (service-account tokens rotate).
            #[arg(id = concat!($id, "_bearer_token_file"), long = concat!($flag, "-bearer-token-file"), env = concat!($env, "_BEARER_TOKEN_FILE"), value_name = "FILE")]
            pub bearer_token_file: Option<PathBuf>,
            /// Basic-auth user name; with the password file.
            #[arg(id = concat!($id, "_basic_auth_user"), long = concat!($flag, "-basic-auth-user"), env = concat!($env, "_BASIC_AUTH_USER"), value_name = "USER")]
            pub basic_auth_user: Option<String>,
            /// File holding the basic-auth password, read again for every request.
            #[arg(id = concat!($id, "_basic_auth_password_file"), long = concat!($flag, "-basic-auth-password-file"), env = concat!($env, "_BASIC_AUTH_PASSWORD_FILE"), value_name = "FILE")]
            pub basic_auth_password_file: Option<PathBuf>,
            /// Extra request header, e.g. X-Scope-OrgID=tenant-a (repeatable;
            /// the environment variable takes a comma-separated list).
            #[arg(id = concat!($id, "_header"), long = concat!($flag, "-header"), env = concat!($env, "_HEADERS"), value_name = "NAME=VALUE", value_delimiter = ',')]
            pub headers: Vec<Header>,
        }

        impl $name {
            pub fn access(&self) -> Access {
                Access {
                    ca_file: self.ca_file.clone(),
                    cert_file: self.cert_file.clone(),
                    key_file: self.key_file.clone(),
                    insecure_skip_verify: self.insecure_skip_verify,
                    bearer_token_file: self.bearer_token_file.clone(),
                    basic_auth_user: self.basic_auth_user.clone(),
                    basic_auth_password_file: self.basic_auth_password_file.clone(),
                    headers: self.headers.clone(),
                }
            }
        }
    };
}

access_flags!(
    /// TLS and authentication to Prometheus.
    PrometheusAccess,
    "prometheus",
    "prometheus",
    "GOVERNOR_PROMETHEUS"
);
access_flags!(
    /// TLS and authentication to Jaeger.
    JaegerAccess,
    "jaeger",
    "jaeger",
    "GOVERNOR_JAEGER"
);

/// A flag whose value cannot be used, found at start.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {cause}")]
pub struct AccessError {
    /// The flag (or flags) at fault, e.g. `--prometheus-ca-file /etc/ca.pem`.
    pub flag: String,
    pub cause: String,
}

pub(super) fn refuse(flag: impl Into<String>, cause: impl Into<String>) -> AccessError {
    AccessError {
        flag: flag.into(),
        cause: cause.into(),
    }
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// A credentials file could not be read (the request was not sent).
    #[error(transparent)]
    Credentials(#[from] credentials::SecretError),
    /// The TLS handshake failed; the text names the cause and the flag.
    #[error("{0}")]
    Tls(String),
    #[error("timed out")]
    Timeout,
    /// No connection (refused, no route, DNS).
    #[error("{0}")]
    Connect(String),
    #[error("{0}")]
    Other(String),
}

/// An HTTP client of one backend with its TLS and credentials.
#[derive(Debug)]
pub struct BackendClient {
    backend: Backend,
    /// The base URL, without a trailing slash.
    base: String,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    tls: TlsFacts,
}

impl BackendClient {
    /// A client of `url` with `access`; every problem named by its flag.
    /// `timeout` bounds the connection (the caller bounds the exchange).
    pub fn new(
        backend: Backend,
        url: &str,
        access: &Access,
        timeout: Duration,
    ) -> Result<Self, AccessError> {
        let url_flag = backend.flag("");
        let https = match url_scheme(url) {
            Ok(s) => s == "https",
            Err(cause) => return Err(refuse(format!("{url_flag} {url:?}"), cause.to_string())),
        };
        let tls_flags = access.tls_flags();
        if !https && !tls_flags.is_empty() {
            return Err(refuse(
                tls_flags
                    .iter()
                    .map(|s| backend.flag(s))
                    .collect::<Vec<_>>()
                    .join(", "),
                format!("TLS settings need an https:// URL, and {url_flag} is {url:?}"),
            ));
        }
        let credentials = credentials(backend, access)?;
        if credentials.is_some() && !https {
            tracing::warn!(
                url,
                "{} credentials are sent over plain http://",
                backend.name()
            );
        }
        let mut headers = HeaderMap::new();
        for h in &access.headers {
            if h.name == AUTHORIZATION && credentials.is_some() {
                return Err(refuse(
                    backend.flag("header"),
                    "an Authorization header and a bearer token or basic auth are both set: keep one",
                ));
            }
            headers.append(h.name.clone(), h.value.clone());
        }
        let (config, tls) = tls_config(backend, access, https)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .default_headers(headers)
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| refuse(url_flag, error_chain(&e)))?;
        Ok(Self {
            backend,
            base: url.trim_end_matches('/').to_string(),
            http,
            credentials,
            tls,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base))
    }

    /// Sends `request` with the credentials read now.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SendError> {
        let request = match &self.credentials {
            None => request,
            Some(Credentials::Bearer(file)) => request.bearer_auth(file.secret().await?),
            Some(Credentials::Basic { user, password }) => {
                request.basic_auth(user, Some(password.secret().await?))
            }
        };
        request.send().await.map_err(|e| self.explain(&e))
    }

    /// What went wrong with a request or the reading of its answer.
    pub fn explain(&self, e: &reqwest::Error) -> SendError {
        if let Some(tls) = rustls_cause(e) {
            SendError::Tls(self.tls_text(tls))
        } else if e.is_timeout() {
            SendError::Timeout
        } else if e.is_connect() {
            SendError::Connect(error_chain(e))
        } else if e.is_request()
            && self.base.starts_with("https://")
            && self.tls.client_cert.is_none()
        {
            // Under TLS 1.3 a server that requires a client certificate
            // closes the connection after the handshake; the client may see
            // only the closing, not the server's alert.
            let b = self.backend;
            SendError::Other(format!(
                "{} (if {} requires a client certificate, set {} and {})",
                error_chain(e),
                b.name(),
                b.flag("cert-file"),
                b.flag("key-file")
            ))
        } else {
            SendError::Other(error_chain(e))
        }
    }

    /// For a 401 or 403 answer: which settings were refused, or that none
    /// were given.
    pub fn denied_hint(&self) -> String {
        let b = self.backend;
        match &self.credentials {
            Some(Credentials::Bearer(file)) => format!("the token of {} was refused", file.named()),
            Some(Credentials::Basic { password, .. }) => format!(
                "the user of {} or the password of {} was refused",
                b.flag("basic-auth-user"),
                password.named()
            ),
            None => format!(
                "{} wants credentials: set {} or {} and {}",
                b.name(),
                b.flag("bearer-token-file"),
                b.flag("basic-auth-user"),
                b.flag("basic-auth-password-file")
            ),
        }
    }
}

/// Why a base URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("only http:// and https:// URLs are supported")]
    Scheme,
    #[error("the URL has no scheme: write http://HOST:PORT or https://HOST:PORT")]
    NoScheme,
    #[error("not a valid URL: {0}")]
    Invalid(#[source] url::ParseError),
    #[error("the URL has no host")]
    NoHost,
    #[error("a base URL takes no query or fragment")]
    QueryOrFragment,
}

/// The scheme of a base URL, which must be http or https.
fn url_scheme(url: &str) -> Result<&'static str, UrlError> {
    let https = if url.starts_with("https://") {
        true
    } else if url.starts_with("http://") {
        false
    } else if url.contains("://") {
        return Err(UrlError::Scheme);
    } else {
        return Err(UrlError::NoScheme);
    };
    let parsed = reqwest::Url::parse(url).map_err(UrlError::Invalid)?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(UrlError::NoHost);
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(UrlError::QueryOrFragment);
    }
    Ok(if https { "https" } else { "http" })
}

/// An error and its sources, e.g. "error sending request: connection refused".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// `builder` with a TLS configuration that trusts no CA and carries ring,
/// for clients of plain http:// URLs (the cache warm-ups): reqwest then needs
/// no process-wide crypto provider.
pub fn plain_http(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => builder.tls_backend_preconfigured(
            b.with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        ),
        // ring has every default version; were it not so, the process
        // default that main installs applies.
        Err(_) => builder,
    }
}

#[cfg(test)]
mod tests;
