//! How Governor reaches Prometheus and Jaeger: the base URL, TLS (a CA bundle,
//! a client certificate, or no verification when asked for by name) and
//! authentication (a bearer token or basic auth read from files, extra
//! headers). Every flag is checked at start and a bad one named; a failed
//! exchange is explained with the flag to look at. Credential files are read
//! again for every request, as Prometheus does for its own `*_file` settings:
//! a rotated token is used from the next query on, and a file that is gone
//! fails the query (the last token read is never used instead).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

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
    fn tls_flags(&self) -> Vec<&'static str> {
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

fn refuse(flag: impl Into<String>, cause: impl Into<String>) -> AccessError {
    AccessError {
        flag: flag.into(),
        cause: cause.into(),
    }
}

/// A file named by a flag, and the flag.
#[derive(Clone, Debug)]
struct FlagFile {
    flag: String,
    path: PathBuf,
}

impl FlagFile {
    fn new(backend: Backend, suffix: &str, path: &Path) -> Self {
        Self {
            flag: backend.flag(suffix),
            path: path.to_path_buf(),
        }
    }

    /// `--prometheus-ca-file /etc/ca.pem`
    fn named(&self) -> String {
        format!("{} {}", self.flag, self.path.display())
    }

    fn read(&self) -> Result<Vec<u8>, AccessError> {
        std::fs::read(&self.path).map_err(|e| refuse(self.named(), format!("cannot read it: {e}")))
    }

    /// The secret the file holds, trimmed; read again on every call.
    async fn secret(&self) -> Result<String, String> {
        let text = tokio::fs::read_to_string(&self.path)
            .await
            .map_err(|e| format!("cannot read {}: {e}", self.named()))?;
        secret_of(&text).ok_or_else(|| format!("{} is empty", self.named()))
    }

    /// As `secret`, at start.
    fn secret_now(&self) -> Result<String, AccessError> {
        let bytes = self.read()?;
        let text = String::from_utf8(bytes).map_err(|_| refuse(self.named(), "not UTF-8 text"))?;
        secret_of(&text).ok_or_else(|| refuse(self.named(), "the file is empty"))
    }
}

fn secret_of(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The credentials sent with every request.
#[derive(Debug)]
enum Credentials {
    Bearer(FlagFile),
    Basic { user: String, password: FlagFile },
}

/// What TLS was set up with, to explain a failed handshake.
#[derive(Debug, Default)]
struct TlsFacts {
    ca_file: Option<FlagFile>,
    /// The client certificate and when it stops being valid.
    client_cert: Option<(FlagFile, NotAfter)>,
}

#[derive(Debug, Clone)]
struct NotAfter {
    unix: i64,
    text: String,
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// A credentials file could not be read (the request was not sent).
    #[error("{0}")]
    Credentials(String),
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
            Err(cause) => return Err(refuse(format!("{url_flag} {url:?}"), cause)),
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
            Some(Credentials::Bearer(file)) => {
                request.bearer_auth(file.secret().await.map_err(SendError::Credentials)?)
            }
            Some(Credentials::Basic { user, password }) => request.basic_auth(
                user,
                Some(password.secret().await.map_err(SendError::Credentials)?),
            ),
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

    /// A failed handshake in words, with the flag to look at.
    fn tls_text(&self, e: &rustls::Error) -> String {
        let b = self.backend;
        let why = match e {
            rustls::Error::InvalidCertificate(c) => {
                let hint = match (c, &self.tls.ca_file) {
                    (CertificateError::UnknownIssuer, Some(ca)) => format!(
                        "{}: the server's certificate is not signed by a CA in it",
                        ca.named()
                    ),
                    (CertificateError::UnknownIssuer, None) => format!(
                        "{}: the server's certificate is not signed by a CA the system trusts; name its CA with it",
                        b.flag("ca-file")
                    ),
                    (
                        CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. },
                        _,
                    ) => format!(
                        "{}: the server's certificate does not name this host",
                        b.flag("")
                    ),
                    _ => "the server's certificate".to_string(),
                };
                format!(
                    "certificate verify failed: {} ({hint})",
                    certificate_error(c)
                )
            }
            rustls::Error::AlertReceived(alert) => {
                let hint = match &self.tls.client_cert {
                    Some((file, not_after)) if not_after.unix < unix_now() => format!(
                        "{}: the client certificate expired at {}",
                        file.named(),
                        not_after.text
                    ),
                    Some((file, _)) => format!(
                        "{}: the server refused the client certificate (not signed by a CA it trusts?)",
                        file.named()
                    ),
                    None => format!(
                        "the server may require a client certificate: set {} and {}",
                        b.flag("cert-file"),
                        b.flag("key-file")
                    ),
                };
                format!("the server ended the TLS handshake with alert {alert:?} ({hint})")
            }
            other => format!(
                "{other} (is {} an https:// URL of a server that speaks TLS?)",
                b.flag("")
            ),
        };
        format!("TLS with {} failed: {why}", b.name())
    }
}

/// The short name of a certificate error, e.g. `UnknownIssuer` or
/// `Expired: …` with the times when rustls gave them.
fn certificate_error(c: &CertificateError) -> String {
    match c {
        CertificateError::ExpiredContext { .. } => format!("Expired: {c}"),
        CertificateError::NotValidYetContext { .. } => format!("NotValidYet: {c}"),
        CertificateError::NotValidForNameContext { .. } => format!("NotValidForName: {c}"),
        CertificateError::Other(_) => c.to_string(),
        _ => format!("{c:?}"),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The scheme of a base URL, which must be http or https.
fn url_scheme(url: &str) -> Result<&'static str, String> {
    let https = if url.starts_with("https://") {
        true
    } else if url.starts_with("http://") {
        false
    } else if url.contains("://") {
        return Err("only http:// and https:// URLs are supported".into());
    } else {
        return Err("the URL has no scheme: write http://HOST:PORT or https://HOST:PORT".into());
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a valid URL: {e}"))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("a base URL takes no query or fragment".into());
    }
    Ok(if https { "https" } else { "http" })
}

/// The credentials `access` names, each file read once now to check it.
fn credentials(backend: Backend, access: &Access) -> Result<Option<Credentials>, AccessError> {
    let b = backend;
    let basic = access.basic_auth_user.is_some() || access.basic_auth_password_file.is_some();
    if access.bearer_token_file.is_some() && basic {
        return Err(refuse(
            format!(
                "{} and {}",
                b.flag("bearer-token-file"),
                b.flag("basic-auth-user")
            ),
            "a bearer token and basic auth are both set: keep one",
        ));
    }
    if let Some(path) = &access.bearer_token_file {
        let file = FlagFile::new(b, "bearer-token-file", path);
        file.secret_now()?;
        return Ok(Some(Credentials::Bearer(file)));
    }
    match (&access.basic_auth_user, &access.basic_auth_password_file) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(refuse(
            b.flag("basic-auth-user"),
            format!("needs {}", b.flag("basic-auth-password-file")),
        )),
        (None, Some(_)) => Err(refuse(
            b.flag("basic-auth-password-file"),
            format!("needs {}", b.flag("basic-auth-user")),
        )),
        (Some(user), Some(path)) => {
            if user.is_empty() || user.contains(':') {
                return Err(refuse(
                    b.flag("basic-auth-user"),
                    "a user name is not empty and has no ':'",
                ));
            }
            let password = FlagFile::new(b, "basic-auth-password-file", path);
            password.secret_now()?;
            Ok(Some(Credentials::Basic {
                user: user.clone(),
                password,
            }))
        }
    }
}

/// The rustls configuration: ring as the crypto provider (reqwest is built
/// without one of its own), the CA file's certificates or the system's roots,
/// the client certificate when given; HTTP/1.1.
fn tls_config(
    backend: Backend,
    access: &Access,
    https: bool,
) -> Result<(rustls::ClientConfig, TlsFacts), AccessError> {
    let b = backend;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| refuse(b.flag(""), e.to_string()))?;
    let mut facts = TlsFacts::default();
    if access.insecure_skip_verify && access.ca_file.is_some() {
        return Err(refuse(
            format!(
                "{} and {}",
                b.flag("insecure-skip-verify"),
                b.flag("ca-file")
            ),
            "no certificate is verified with the first, so the second would be ignored: keep one",
        ));
    }
    let builder = if access.insecure_skip_verify {
        tracing::warn!(
            "{}: the certificate of {} is not verified",
            b.flag("insecure-skip-verify"),
            b.name()
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(
                provider.signature_verification_algorithms,
            )))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(path) = &access.ca_file {
            let file = FlagFile::new(b, "ca-file", path);
            for cert in certificates(&file)? {
                roots.add(cert).map_err(|e| {
                    refuse(file.named(), format!("not a usable CA certificate: {e}"))
                })?;
            }
            facts.ca_file = Some(file);
        } else if https {
            // Without a CA file, the system's roots; a certificate none of
            // them signed fails at the first query, naming --…-ca-file.
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                tracing::warn!(
                    "no trusted CA certificates found on this system; {} is needed for {}",
                    b.flag("ca-file"),
                    b.name()
                );
            }
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match (&access.cert_file, &access.key_file) {
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => {
            return Err(refuse(
                b.flag("cert-file"),
                format!("needs {}", b.flag("key-file")),
            ));
        }
        (None, Some(_)) => {
            return Err(refuse(
                b.flag("key-file"),
                format!("needs {}", b.flag("cert-file")),
            ));
        }
        (Some(cert), Some(key)) => {
            let cert = FlagFile::new(b, "cert-file", cert);
            let key = FlagFile::new(b, "key-file", key);
            let chain = certificates(&cert)?;
            let not_after = validity(&cert, &chain[0])?;
            let key_der = PrivateKeyDer::from_pem_slice(&key.read()?)
                .map_err(|e| refuse(key.named(), format!("no PEM private key in it: {e}")))?;
            let config = builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                refuse(
                    format!("{} and {}", cert.named(), key.named()),
                    format!("the key does not go with the certificate: {e}"),
                )
            })?;
            facts.client_cert = Some((cert, not_after));
            config
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((config, facts))
}

/// Every certificate of a PEM file; at least one.
fn certificates(file: &FlagFile) -> Result<Vec<CertificateDer<'static>>, AccessError> {
    let pem = file.read()?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refuse(file.named(), format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(refuse(file.named(), "no PEM certificate in it"));
    }
    Ok(certs)
}

/// When a client certificate stops being valid; refused if it already has,
/// or is not valid yet.
fn validity(file: &FlagFile, cert: &CertificateDer<'_>) -> Result<NotAfter, AccessError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| refuse(file.named(), format!("not an X.509 certificate: {e}")))?;
    let v = parsed.validity();
    let now = unix_now();
    if v.not_after.timestamp() < now {
        return Err(refuse(
            file.named(),
            format!("the certificate expired at {}", v.not_after),
        ));
    }
    if v.not_before.timestamp() > now {
        return Err(refuse(
            file.named(),
            format!("the certificate is not valid before {}", v.not_before),
        ));
    }
    Ok(NotAfter {
        unix: v.not_after.timestamp(),
        text: v.not_after.to_string(),
    })
}

/// The rustls error behind a failed request, if TLS is what failed. The
/// chain passes through `std::io::Error`, whose `source()` skips the error
/// it wraps, so each link's wrapped error is looked at too.
fn rustls_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                return Some(r);
            }
            if let Some(r) = rustls_cause(inner) {
                return Some(r);
            }
        }
        next = err.source();
    }
    None
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

/// Accepts any server certificate (`--…-insecure-skip-verify`); the
/// handshake's signatures are still checked.
#[derive(Debug)]
struct NoVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Flags {
        #[command(flatten)]
        prometheus: PrometheusAccess,
        #[command(flatten)]
        jaeger: JaegerAccess,
    }

    #[test]
    fn the_cli_is_well_formed() {
        crate::cli::Cli::command().debug_assert();
        Flags::command().debug_assert();
    }

    #[test]
    fn every_flag_has_its_environment_variable() {
        let cmd = Flags::command();
        let mut seen = 0;
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_default();
            let expected = if long.ends_with("-header") {
                format!("GOVERNOR_{}S", long.to_uppercase().replace('-', "_"))
            } else {
                format!("GOVERNOR_{}", long.to_uppercase().replace('-', "_"))
            };
            assert_eq!(env, expected, "--{long}");
            seen += 1;
        }
        assert_eq!(seen, 16);
    }

    #[test]
    fn flags_of_each_backend_stay_apart() {
        let f = Flags::try_parse_from([
            "x",
            "--prometheus-ca-file",
            "/p/ca.pem",
            "--jaeger-bearer-token-file",
            "/j/token",
            "--prometheus-header",
            "X-Scope-OrgID=tenant-a",
            "--prometheus-header",
            "X-A=1,X-B=2",
            "--jaeger-insecure-skip-verify",
        ])
        .unwrap();
        let p = f.prometheus.access();
        let j = f.jaeger.access();
        assert_eq!(p.ca_file.as_deref(), Some(Path::new("/p/ca.pem")));
        assert!(p.bearer_token_file.is_none() && !p.insecure_skip_verify);
        assert_eq!(j.bearer_token_file.as_deref(), Some(Path::new("/j/token")));
        assert!(j.insecure_skip_verify && j.ca_file.is_none());
        let names: Vec<_> = p.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["x-scope-orgid", "x-a", "x-b"]);
        assert!(j.headers.is_empty());
        for bad in ["novalue", "=v", "bad name=v", "X-A=line\nbreak"] {
            let e = Flags::try_parse_from(["x", "--jaeger-header", bad]).unwrap_err();
            assert!(e.to_string().contains("--jaeger-header"), "{bad:?}: {e}");
            assert_eq!(e.exit_code(), 2);
        }
    }

    fn refused(url: &str, access: &Access) -> String {
        BackendClient::new(Backend::Prometheus, url, access, Duration::from_secs(1))
            .unwrap_err()
            .to_string()
    }

    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn bad_urls_are_refused_naming_the_flag() {
        let a = Access::default();
        for (url, cause) in [
            ("127.0.0.1:9090", "no scheme"),
            ("localhost:9090", "no scheme"),
            ("ftp://prometheus:9090", "only http:// and https://"),
            ("https://", "not a valid URL"),
            ("http://p:9090/?x=1", "no query"),
        ] {
            let e = refused(url, &a);
            assert!(
                e.starts_with("--prometheus ") && e.contains(cause),
                "{url}: {e}"
            );
        }
        for url in [
            "http://127.0.0.1:9090",
            "https://prometheus.example/prefix/",
        ] {
            BackendClient::new(Backend::Prometheus, url, &a, Duration::from_secs(1)).unwrap();
        }
    }

    #[test]
    fn bad_tls_and_credentials_are_refused_naming_the_flag_and_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let pki = governor_tests::tls::Pki::generate().unwrap();
        let https = "https://127.0.0.1:9090";
        let missing = d.join("missing.pem");
        let junk = file(d, "junk.pem", "not a certificate");
        let empty = file(d, "empty", "\n");
        let token = file(d, "token", "abc\n");
        let cases: Vec<(&str, Access, &str)> = vec![
            (
                https,
                Access {
                    ca_file: Some(missing.clone()),
                    ..Access::default()
                },
                "--prometheus-ca-file",
            ),
            (
                https,
                Access {
                    ca_file: Some(junk.clone()),
                    ..Access::default()
                },
                "no PEM certificate",
            ),
            (
                https,
                Access {
                    cert_file: Some(pki.client_cert.clone()),
                    ..Access::default()
                },
                "--prometheus-cert-file: needs --prometheus-key-file",
            ),
            (
                https,
                Access {
                    key_file: Some(pki.client_key.clone()),
                    ..Access::default()
                },
                "--prometheus-key-file: needs --prometheus-cert-file",
            ),
            (
                https,
                Access {
                    cert_file: Some(pki.client_cert.clone()),
                    key_file: Some(missing.clone()),
                    ..Access::default()
                },
                "--prometheus-key-file",
            ),
            (
                https,
                Access {
                    cert_file: Some(pki.client_cert.clone()),
                    key_file: Some(junk.clone()),
                    ..Access::default()
                },
                "no PEM private key",
            ),
            (
                https,
                Access {
                    cert_file: Some(pki.client_cert.clone()),
                    key_file: Some(pki.server_key.clone()),
                    ..Access::default()
                },
                "the key does not go with the certificate",
            ),
            (
                https,
                Access {
                    cert_file: Some(pki.expired_cert.clone()),
                    key_file: Some(pki.expired_key.clone()),
                    ..Access::default()
                },
                "the certificate expired at",
            ),
            (
                https,
                Access {
                    bearer_token_file: Some(token.clone()),
                    basic_auth_user: Some("u".into()),
                    basic_auth_password_file: Some(token.clone()),
                    ..Access::default()
                },
                "both set",
            ),
            (
                https,
                Access {
                    basic_auth_user: Some("u".into()),
                    ..Access::default()
                },
                "--prometheus-basic-auth-user: needs --prometheus-basic-auth-password-file",
            ),
            (
                https,
                Access {
                    basic_auth_password_file: Some(token.clone()),
                    ..Access::default()
                },
                "needs --prometheus-basic-auth-user",
            ),
            (
                https,
                Access {
                    bearer_token_file: Some(missing.clone()),
                    ..Access::default()
                },
                "--prometheus-bearer-token-file",
            ),
            (
                https,
                Access {
                    bearer_token_file: Some(empty.clone()),
                    ..Access::default()
                },
                "empty",
            ),
            (
                "http://127.0.0.1:9090",
                Access {
                    ca_file: Some(pki.ca.clone()),
                    ..Access::default()
                },
                "--prometheus-ca-file: TLS settings need an https:// URL",
            ),
            (
                https,
                Access {
                    ca_file: Some(pki.ca.clone()),
                    insecure_skip_verify: true,
                    ..Access::default()
                },
                "keep one",
            ),
            (
                https,
                Access {
                    bearer_token_file: Some(token.clone()),
                    headers: vec!["Authorization=Basic x".parse().unwrap()],
                    ..Access::default()
                },
                "--prometheus-header",
            ),
        ];
        for (url, access, want) in cases {
            let e = refused(url, &access);
            assert!(e.contains(want), "{access:?}: {e}");
            assert!(e.starts_with("--prometheus"), "{e}");
        }
        // And what is right is taken.
        let good = Access {
            ca_file: Some(pki.ca.clone()),
            cert_file: Some(pki.client_cert.clone()),
            key_file: Some(pki.client_key.clone()),
            basic_auth_user: Some("governor".into()),
            basic_auth_password_file: Some(token),
            headers: vec!["X-Scope-OrgID=a".parse().unwrap()],
            ..Access::default()
        };
        BackendClient::new(Backend::Jaeger, https, &good, Duration::from_secs(1)).unwrap();
    }

    /// An error that wraps the rustls error in an `io::Error`, as the
    /// connector does, under another error.
    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_handshake_failure_is_found_in_the_chain_and_explained() {
        let pki = governor_tests::tls::Pki::generate().unwrap();
        let access = Access {
            ca_file: Some(pki.ca.clone()),
            cert_file: Some(pki.client_cert.clone()),
            key_file: Some(pki.client_key.clone()),
            ..Access::default()
        };
        let mut client = BackendClient::new(
            Backend::Prometheus,
            "https://p:9090",
            &access,
            Duration::from_secs(1),
        )
        .unwrap();
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let e = Outer(std::io::Error::other(unknown));
        let found = rustls_cause(&e).unwrap();
        let text = client.tls_text(found);
        assert!(
            text.starts_with("TLS with Prometheus failed: certificate verify failed: UnknownIssuer (--prometheus-ca-file "),
            "{text}"
        );
        assert!(rustls_cause(&Outer(std::io::Error::other("plain"))).is_none());

        // A client certificate that expired after the start.
        let refused = rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate);
        let text = client.tls_text(&refused);
        assert!(
            text.contains("the server refused the client certificate"),
            "{text}"
        );
        if let Some((_, not_after)) = client.tls.client_cert.as_mut() {
            not_after.unix = 0;
        }
        let text = client.tls_text(&refused);
        assert!(
            text.contains("alert BadCertificate (--prometheus-cert-file ")
                && text.contains(": the client certificate expired at "),
            "{text}"
        );
    }

    #[test]
    fn a_missing_ca_file_names_the_jaeger_flag_for_jaeger() {
        let access = Access {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Access::default()
        };
        let e = BackendClient::new(
            Backend::Jaeger,
            "https://j:16686",
            &access,
            Duration::from_secs(1),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("--jaeger-ca-file /nonexistent/ca.pem: cannot read it:"),
            "{e}"
        );
    }
}
