//! TLS made for a test: a CA, a server certificate for 127.0.0.1 and
//! localhost, a client certificate, an expired client certificate and a
//! second CA that signed none of them; and a real Prometheus serving https
//! with `--web.config.file`, behind basic auth or a required client
//! certificate.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use crate::process::{Server, free_port};
use crate::tools::tool;

/// Installs ring as the process's rustls crypto provider, which a reqwest
/// client built without a TLS configuration of its own needs (the workspace's
/// reqwest has rustls without a provider). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// PEM files in a temporary folder, removed on drop.
pub struct Pki {
    pub dir: tempfile::TempDir,
    /// The CA that signed every certificate below.
    pub ca: PathBuf,
    /// A CA that signed nothing here: the wrong CA to trust.
    pub other_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// Signed by `ca`, valid in 2020 only.
    pub expired_cert: PathBuf,
    pub expired_key: PathBuf,
    /// A valid client certificate signed by `other_ca`.
    pub foreign_cert: PathBuf,
    pub foreign_key: PathBuf,
}

fn ca_params(name: &str) -> crate::Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

fn leaf_params(name: &str, usage: ExtendedKeyUsagePurpose) -> crate::Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![usage];
    Ok(p)
}

impl Pki {
    pub fn generate() -> crate::Result<Self> {
        let dir = tempfile::Builder::new().prefix("governor-pki-").tempdir()?;
        let write = |name: &str, pem: String| -> crate::Result<PathBuf> {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        };
        let ca =
            CertifiedIssuer::self_signed(ca_params("governor test CA")?, KeyPair::generate()?)?;
        let other = CertifiedIssuer::self_signed(ca_params("another CA")?, KeyPair::generate()?)?;

        let mut server = leaf_params("127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth)?;
        server.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into()?),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ];
        let server_key = KeyPair::generate()?;
        let server_cert = server.signed_by(&server_key, &ca)?;

        let client = leaf_params("governor", ExtendedKeyUsagePurpose::ClientAuth)?;
        let client_key = KeyPair::generate()?;
        let client_cert = client.signed_by(&client_key, &ca)?;

        let mut expired = leaf_params("governor-expired", ExtendedKeyUsagePurpose::ClientAuth)?;
        expired.not_before = rcgen::date_time_ymd(2020, 1, 1);
        expired.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let expired_key = KeyPair::generate()?;
        let expired_cert = expired.signed_by(&expired_key, &ca)?;

        let foreign = leaf_params("governor-foreign", ExtendedKeyUsagePurpose::ClientAuth)?;
        let foreign_key = KeyPair::generate()?;
        let foreign_cert = foreign.signed_by(&foreign_key, &other)?;

        Ok(Self {
            ca: write("ca.pem", ca.pem())?,
            other_ca: write("other-ca.pem", other.pem())?,
            server_cert: write("server.pem", server_cert.pem())?,
            server_key: write("server-key.pem", server_key.serialize_pem())?,
            client_cert: write("client.pem", client_cert.pem())?,
            client_key: write("client-key.pem", client_key.serialize_pem())?,
            expired_cert: write("expired.pem", expired_cert.pem())?,
            expired_key: write("expired-key.pem", expired_key.serialize_pem())?,
            foreign_cert: write("foreign.pem", foreign_cert.pem())?,
            foreign_key: write("foreign-key.pem", foreign_key.serialize_pem())?,
            dir,
        })
    }
}

/// Who Prometheus lets in.
pub enum WebAuth {
    /// Basic auth: one user and its password (stored bcrypt-hashed).
    Basic { user: String, password: String },
    /// A client certificate signed by the test CA
    /// (`client_auth_type: RequireAndVerifyClientCert`).
    ClientCert,
}

/// A real Prometheus serving https on a free loopback port.
pub struct TlsPrometheus {
    /// `https://127.0.0.1:PORT`
    pub url: String,
    pub server: Server,
}

/// The web config file's text (JSON is YAML).
fn web_config(pki: &Pki, auth: &WebAuth) -> crate::Result<String> {
    let mut tls = serde_json::json!({
        "cert_file": pki.server_cert,
        "key_file": pki.server_key,
    });
    let mut config = serde_json::json!({});
    match auth {
        WebAuth::Basic { user, password } => {
            // The lowest cost: Prometheus checks the hash on every request.
            let hash = bcrypt::hash(password, 4).context("hashing the password")?;
            config["basic_auth_users"] = serde_json::json!({ user: hash });
        }
        WebAuth::ClientCert => {
            tls["client_auth_type"] = "RequireAndVerifyClientCert".into();
            tls["client_ca_file"] = serde_json::json!(pki.ca);
        }
    }
    config["tls_server_config"] = tls;
    Ok(serde_json::to_string_pretty(&config)?)
}

/// A client that passes `auth` with the test CA, to wait for readiness.
fn ready_client(
    pki: &Pki,
    auth: &WebAuth,
) -> crate::Result<(reqwest::Client, Option<(String, String)>)> {
    install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca)?)?;
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(2));
    let mut basic = None;
    match auth {
        WebAuth::Basic { user, password } => basic = Some((user.clone(), password.clone())),
        WebAuth::ClientCert => {
            let mut pem = std::fs::read(&pki.client_cert)?;
            pem.extend(std::fs::read(&pki.client_key)?);
            builder = builder.identity(reqwest::Identity::from_pem(&pem)?);
        }
    }
    Ok((builder.build()?, basic))
}

impl TlsPrometheus {
    /// Starts Prometheus scraping each plain-http `host:port` in `targets`
    /// (path /metrics, every second) and serving https with `pki`'s server
    /// certificate to clients that pass `auth`; ready when returned.
    pub async fn start(targets: &[String], pki: &Pki, auth: &WebAuth) -> crate::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("prometheus-tls-")
            .tempdir()?;
        let port = free_port()?;
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n- job_name: test\n  scrape_interval: 1s\n  static_configs:\n  - targets: {}\n",
            serde_json::to_string(targets)?
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let web_path = dir.path().join("web.yml");
        std::fs::write(&web_path, web_config(pki, auth)?)?;
        let args = vec![
            format!("--config.file={}", config_path.display()),
            format!("--web.config.file={}", web_path.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=warn".into(),
        ];
        let mut server = Server::start("prometheus-tls", &tool("prometheus")?, &args, dir)?;
        let url = format!("https://127.0.0.1:{port}");
        let (http, basic) = ready_client(pki, auth)?;
        let ready = format!("{url}/-/ready");
        server
            .wait_ready(Duration::from_secs(30), || async {
                let mut request = http.get(&ready);
                if let Some((user, password)) = &basic {
                    request = request.basic_auth(user, Some(password));
                }
                request.send().await.is_ok_and(|r| r.status().is_success())
            })
            .await?;
        Ok(Self { url, server })
    }
}

/// Writes `text` to `path` whole: a new file renamed over the old one, as
/// Kubernetes swaps a mounted Secret.
pub fn replace_file(path: &Path, text: &str) -> crate::Result<()> {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
