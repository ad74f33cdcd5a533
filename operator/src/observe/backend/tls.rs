//! TLS to a backend: the rustls configuration from the CA, certificate and
//! key flags, and a failed handshake explained with the flag to look at.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use super::credentials::FlagFile;
use super::{Access, AccessError, Backend, BackendClient, refuse};

/// What TLS was set up with, to explain a failed handshake.
#[derive(Debug, Default)]
pub(super) struct TlsFacts {
    ca_file: Option<FlagFile>,
    /// The client certificate and when it stops being valid.
    pub(super) client_cert: Option<(FlagFile, NotAfter)>,
}

#[derive(Debug, Clone)]
pub(super) struct NotAfter {
    pub(super) unix: i64,
    text: String,
}

impl BackendClient {
    /// A failed handshake in words, with the flag to look at.
    pub(super) fn tls_text(&self, e: &rustls::Error) -> String {
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
pub(super) fn certificate_error(c: &CertificateError) -> String {
    match c {
        CertificateError::ExpiredContext { .. } => format!("Expired: {c}"),
        CertificateError::NotValidYetContext { .. } => format!("NotValidYet: {c}"),
        CertificateError::NotValidForNameContext { .. } => format!("NotValidForName: {c}"),
        CertificateError::Other(_) => c.to_string(),
        _ => format!("{c:?}"),
    }
}

pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The rustls configuration: ring as the crypto provider (reqwest is built
/// without one of its own), the CA file's certificates or the system's roots,
/// the client certificate when given; HTTP/1.1.
pub(super) fn tls_config(
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
        let (roots, ca_file) = roots(b, access, https)?;
        facts.ca_file = ca_file;
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

/// The CAs a server certificate is checked against: the CA file's (named
/// in the answer, to explain a failed handshake) or the system's roots.
fn roots(
    b: Backend,
    access: &Access,
    https: bool,
) -> Result<(rustls::RootCertStore, Option<FlagFile>), AccessError> {
    let mut ca_file = None;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = &access.ca_file {
        let file = FlagFile::new(b, "ca-file", path);
        for cert in certificates(&file)? {
            roots
                .add(cert)
                .map_err(|e| refuse(file.named(), format!("not a usable CA certificate: {e}")))?;
        }
        ca_file = Some(file);
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
    Ok((roots, ca_file))
}

/// Every certificate of a PEM file; at least one.
pub(super) fn certificates(file: &FlagFile) -> Result<Vec<CertificateDer<'static>>, AccessError> {
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
pub(super) fn validity(
    file: &FlagFile,
    cert: &CertificateDer<'_>,
) -> Result<NotAfter, AccessError> {
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
pub(super) fn rustls_cause<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
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

/// Accepts any server certificate (`--…-insecure-skip-verify`); the
/// handshake's signatures are still checked.
#[derive(Debug)]
pub(super) struct NoVerification(WebPkiSupportedAlgorithms);

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
