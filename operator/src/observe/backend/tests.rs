use super::*;
use clap::{CommandFactory, Parser};
use rustls::CertificateError;
use std::path::Path;

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
