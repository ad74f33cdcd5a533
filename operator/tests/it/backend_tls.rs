//! TLS and authentication to Prometheus and Jaeger. A real Prometheus serves
//! https with `--web.config.file` (a CA the test makes): behind basic auth, and
//! behind a required client certificate. `governor observe` and `governor
//! rules --prometheus` read through each; a wrong CA, a wrong password, a
//! missing, foreign or expired client certificate each give an error that
//! names the flag and the cause; the operator shows it in `MetricsAvailable`
//! and holds. Prometheus checks no bearer tokens, so the token file's
//! rotation is shown against a loopback server that does.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use governor::observe::backend::{Access, Header};
use governor::observe::jaeger::{JaegerError, JaegerSource};
use governor::observe::prometheus::{PrometheusSource, QueryError};
use governor_crds::ServiceLevelObjective;
use governor_tests::tls::{Pki, TlsPrometheus, WebAuth, replace_file};
use governor_tests::wait_until;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::common;
use crate::common::gate;
use crate::common::operator::{deployment, start_operator};

const USER: &str = "governor";
const PASSWORD: &str = "s3cret-for-the-test";

/// The SLO of the audit's `roadtrip-api`, as `governor sim serve` exports it.
const SLO: &str = "apiVersion: governor.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata: {name: roadtrip-api, namespace: sim}\nspec:\n  service: roadtrip-api\n  targetRef: {name: roadtrip-api}\n  objectives: {latency: {p99: 100ms}}\n";

/// A run of the governor binary: exit code, stdout, stderr.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("no JSON ({e}); stderr: {}", self.stderr))
    }
}

/// `governor ARGS` with `envs`, off the async workers.
async fn governor(args: Vec<String>, envs: Vec<(String, String)>) -> Run {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_governor"))
            .args(&args)
            .envs(envs)
            .env_remove("GOVERNOR_PROMETHEUS_URL")
            .output()
            .unwrap();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// `governor observe` of `file` over a 15 s window through `url`, with `flags`.
async fn observe(url: &str, file: &Path, flags: &[&str], envs: &[(&str, &Path)]) -> Run {
    let mut args: Vec<String> = [
        "observe",
        "--prometheus",
        url,
        "--window",
        "15s",
        "--timeout",
        "5",
    ]
    .iter()
    .chain(flags)
    .map(|s| s.to_string())
    .collect();
    args.push(file.display().to_string());
    let envs = envs
        .iter()
        .map(|(k, v)| (k.to_string(), v.display().to_string()))
        .collect();
    governor(args, envs).await
}

/// Why the request rate is missing in a cycle (the first SLO's).
fn why_missing(cycle: &serde_json::Value) -> String {
    cycle["slos"][0]["missing"]["Requests"]
        .as_str()
        .unwrap_or_else(|| panic!("Requests is not missing: {cycle:#}"))
        .to_string()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The flags of mutual TLS with `ca`, `cert` and `key`.
fn mutual_tls<'a>(ca: &'a Path, cert: &'a Path, key: &'a Path) -> [&'a str; 6] {
    [
        "--prometheus-ca-file",
        path(ca),
        "--prometheus-cert-file",
        path(cert),
        "--prometheus-key-file",
        path(key),
    ]
}

#[tokio::test]
async fn prometheus_over_tls_reads_through_and_each_failure_names_its_flag() {
    let _slot = gate::heavy().await;
    let pki = Pki::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slo.yaml");
    std::fs::write(&file, SLO).unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, format!("{PASSWORD}\n")).unwrap();
    let wrong_password = dir.path().join("wrong-password");
    std::fs::write(&wrong_password, "not-it").unwrap();

    let (_sim, sim) = common::start_sim(&["--scenario", "audit"]).await;
    let basic = WebAuth::Basic {
        user: USER.into(),
        password: PASSWORD.into(),
    };
    let (with_basic, with_cert) = (
        TlsPrometheus::start(std::slice::from_ref(&sim), &pki, &basic)
            .await
            .unwrap(),
        TlsPrometheus::start(std::slice::from_ref(&sim), &pki, &WebAuth::ClientCert)
            .await
            .unwrap(),
    );

    // 1. TLS and basic auth: the password file and CA from the environment,
    // as the chart sets them from Secrets.
    let envs = [
        ("GOVERNOR_PROMETHEUS_CA_FILE", pki.ca.as_path()),
        (
            "GOVERNOR_PROMETHEUS_BASIC_AUTH_PASSWORD_FILE",
            password.as_path(),
        ),
    ];
    let user = ["--prometheus-basic-auth-user", USER];
    wait_until(
        "a p99 read over TLS with basic auth",
        Duration::from_secs(60),
        || async {
            let run = observe(&with_basic.url, &file, &user, &envs).await;
            let cycle = run.json();
            (cycle["failed_queries"] == 0
                && cycle["slos"][0]["observation"]["latency"]["p99"].is_number())
            .then_some(())
        },
    )
    .await
    .unwrap();

    // A wrong password: 401, and the flags to look at.
    let run = observe(
        &with_basic.url,
        &file,
        &[
            &user[..],
            &[
                "--prometheus-basic-auth-password-file",
                path(&wrong_password),
            ],
        ]
        .concat(),
        &envs[..1],
    )
    .await;
    let cycle = run.json();
    let why = why_missing(&cycle);
    println!("wrong password: {why}");
    assert!(why.contains("401"), "{why}");
    assert!(
        why.contains(&format!(
            "--prometheus-basic-auth-password-file {}",
            wrong_password.display()
        )),
        "{why}"
    );
    // Refused credentials are not worth splitting batches for.
    assert_eq!(cycle["split_queries"], 0, "{cycle:#}");

    // No credentials at all: the hint says which flags to set.
    let run = observe(&with_basic.url, &file, &[], &envs[..1]).await;
    let why = why_missing(&run.json());
    assert!(
        why.contains("401") && why.contains("--prometheus-basic-auth-user"),
        "{why}"
    );

    // A CA that did not sign the server's certificate.
    let run = observe(
        &with_basic.url,
        &file,
        &[&user[..], &["--prometheus-ca-file", path(&pki.other_ca)]].concat(),
        &envs[1..],
    )
    .await;
    let why = why_missing(&run.json());
    println!("wrong CA: {why}");
    assert!(
        why.contains("certificate verify failed: UnknownIssuer (--prometheus-ca-file"),
        "{why}"
    );
    // The system's roots did not sign it either, and the hint names the flag.
    let run = observe(&with_basic.url, &file, &user, &envs[1..]).await;
    let why = why_missing(&run.json());
    assert!(
        why.contains("UnknownIssuer") && why.contains("--prometheus-ca-file"),
        "{why}"
    );

    // `rules --prometheus` reads the bucket boundaries through the same flags.
    let rules = |password: &Path| {
        [
            "rules",
            "--prometheus",
            &with_basic.url,
            "--prometheus-ca-file",
            path(&pki.ca),
            "--prometheus-basic-auth-user",
            USER,
            "--prometheus-basic-auth-password-file",
            path(password),
            path(&file),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
    };
    let run = governor(rules(&password), vec![]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("roadtrip-api"), "{}", run.stdout);
    let run = governor(rules(&wrong_password), vec![]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("401") && run.stderr.contains("--prometheus-basic-auth-password-file"),
        "{}",
        run.stderr
    );

    // Bad flags stop the command at start with exit 2, naming the flag.
    for (flags, want) in [
        (
            vec!["--prometheus-ca-file", "/nonexistent/ca.pem"],
            "--prometheus-ca-file /nonexistent/ca.pem: cannot read it",
        ),
        (
            vec!["--prometheus-cert-file", path(&pki.client_cert)],
            "--prometheus-cert-file: needs --prometheus-key-file",
        ),
        (
            vec![
                "--prometheus-cert-file",
                path(&pki.expired_cert),
                "--prometheus-key-file",
                path(&pki.expired_key),
            ],
            "the certificate expired at",
        ),
    ] {
        let run = observe(&with_cert.url, &file, &flags, &[]).await;
        assert_eq!(run.code, Some(2), "{flags:?}: {}", run.stderr);
        assert!(run.stderr.contains(want), "{flags:?}: {}", run.stderr);
    }
    let run = observe("127.0.0.1:9090", &file, &[], &[]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--prometheus \"127.0.0.1:9090\": the URL has no scheme"),
        "{}",
        run.stderr
    );
    let run = observe(
        &with_basic.url.replace("https", "http"),
        &file,
        &["--prometheus-ca-file", path(&pki.ca)],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("TLS settings need an https:// URL"),
        "{}",
        run.stderr
    );

    // 2. A client certificate required: read with it.
    let cert = mutual_tls(&pki.ca, &pki.client_cert, &pki.client_key);
    wait_until(
        "a p99 read over mutual TLS",
        Duration::from_secs(60),
        || async {
            let cycle = observe(&with_cert.url, &file, &cert, &[]).await.json();
            (cycle["failed_queries"] == 0
                && cycle["slos"][0]["observation"]["latency"]["p99"].is_number())
            .then_some(())
        },
    )
    .await
    .unwrap();
    // Without one.
    let run = observe(&with_cert.url, &file, &cert[..2], &[]).await;
    let why = why_missing(&run.json());
    println!("no client certificate: {why}");
    assert!(
        why.contains("--prometheus-cert-file and --prometheus-key-file"),
        "{why}"
    );
    // One the server's CA did not sign.
    let foreign = mutual_tls(&pki.ca, &pki.foreign_cert, &pki.foreign_key);
    let run = observe(&with_cert.url, &file, &foreign, &[]).await;
    let why = why_missing(&run.json());
    println!("foreign client certificate: {why}");
    assert!(
        why.contains(&format!(
            "--prometheus-cert-file {}: the server refused the client certificate",
            pki.foreign_cert.display()
        )),
        "{why}"
    );

    // Jaeger's client is built from the same settings: through mutual TLS the
    // exchange reaches HTTP (Prometheus has no /api/traces), with the wrong
    // CA it stops at the handshake, naming --jaeger-ca-file.
    let jaeger_access = |ca: &Path| Access {
        ca_file: Some(ca.to_path_buf()),
        cert_file: Some(pki.client_cert.clone()),
        key_file: Some(pki.client_key.clone()),
        ..Access::default()
    };
    let now_us = 1_700_000_000_000_000;
    let j = JaegerSource::with_access(
        &with_cert.url,
        &jaeger_access(&pki.ca),
        Duration::from_secs(5),
    )
    .unwrap();
    match j
        .durations("roadtrip-api", None, Duration::from_secs(60), now_us)
        .await
    {
        Err(JaegerError::Status { status, .. }) => assert!(status >= 400, "{status}"),
        other => panic!("expected an HTTP answer, got {other:?}"),
    }
    let j = JaegerSource::with_access(
        &with_cert.url,
        &jaeger_access(&pki.other_ca),
        Duration::from_secs(5),
    )
    .unwrap();
    let e = j
        .durations("roadtrip-api", None, Duration::from_secs(60), now_us)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("UnknownIssuer (--jaeger-ca-file"), "{e}");
}

/// What the loopback backend saw: the Authorization and X-Scope-OrgID
/// headers of each request.
#[derive(Default)]
struct Seen(Mutex<Vec<(String, String)>>);

const TOKEN_WANTED: &str = "token-two";

async fn record(seen: &Seen, headers: &HeaderMap) -> (String, String) {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let pair = (h("authorization"), h("x-scope-orgid"));
    seen.0.lock().unwrap().push(pair.clone());
    pair
}

async fn prometheus(State(seen): State<Arc<Seen>>, headers: HeaderMap) -> Response {
    let (auth, _) = record(&seen, &headers).await;
    if auth.starts_with("Bearer ")
        && auth != format!("Bearer {TOKEN_WANTED}")
        && auth != "Bearer token-one"
    {
        return (StatusCode::UNAUTHORIZED, "bad token").into_response();
    }
    axum::Json(serde_json::json!({
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "1"]}]},
    }))
    .into_response()
}

async fn jaeger(State(seen): State<Arc<Seen>>, headers: HeaderMap) -> Response {
    record(&seen, &headers).await;
    axum::Json(serde_json::json!({"data": []})).into_response()
}

#[tokio::test]
async fn a_bearer_token_file_is_read_again_for_every_request() {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/api/v1/query", post(prometheus))
        .route("/api/traces", get(jaeger))
        .with_state(seen.clone());
    let url = common::serve_loopback(app).await;

    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "token-one\n").unwrap();
    let tenant: Header = "X-Scope-OrgID=tenant-a".parse().unwrap();
    let access = Access {
        bearer_token_file: Some(token.clone()),
        headers: vec![tenant],
        ..Access::default()
    };
    let prom = PrometheusSource::with_access(&url, &access, Duration::from_secs(5)).unwrap();
    let last = || seen.0.lock().unwrap().last().cloned().unwrap_or_default();

    prom.query("up").await.unwrap();
    assert_eq!(last(), ("Bearer token-one".into(), "tenant-a".into()));
    // Rotated as Kubernetes does it: a new file renamed over the old one.
    replace_file(&token, TOKEN_WANTED).unwrap();
    prom.query("up").await.unwrap();
    assert_eq!(last().0, format!("Bearer {TOKEN_WANTED}"));

    // Gone: the query fails naming the flag, and nothing is sent (not the last token).
    std::fs::remove_file(&token).unwrap();
    let sent = seen.0.lock().unwrap().len();
    let e = prom.query("up").await.unwrap_err();
    assert!(matches!(e, QueryError::Credentials(_)), "{e:?}");
    assert!(!e.worth_splitting());
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot read --prometheus-bearer-token-file {}",
            token.display()
        )),
        "{text}"
    );
    assert_eq!(seen.0.lock().unwrap().len(), sent);

    // A token the server refuses: 401 with the file named.
    replace_file(&token, "token-stale").unwrap();
    let e = prom.query("up").await.unwrap_err();
    assert!(matches!(e, QueryError::Denied { status: 401, .. }), "{e:?}");
    assert!(
        e.to_string().contains("--prometheus-bearer-token-file"),
        "{e}"
    );
    println!("refused token: {e}");

    // Jaeger: the same flags, applied to its client.
    replace_file(&token, TOKEN_WANTED).unwrap();
    let j = JaegerSource::with_access(&url, &access, Duration::from_secs(5)).unwrap();
    let e = j
        .durations("svc", None, Duration::from_secs(60), 1_700_000_000_000_000)
        .await
        .unwrap_err();
    assert!(matches!(e, JaegerError::NoSpans { .. }), "{e:?}");
    assert_eq!(
        last(),
        (format!("Bearer {TOKEN_WANTED}"), "tenant-a".into())
    );
}

fn condition(slo: &ServiceLevelObjective, kind: &str) -> Option<(String, String)> {
    slo.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| (c.status.clone(), c.message.clone()))
}

#[tokio::test]
async fn the_operator_holds_and_says_why_when_tls_to_prometheus_fails() {
    let _slot = gate::heavy().await;
    let common::operator::Cluster {
        cp,
        ns,
        kubeconfig,
        dir,
    } = common::operator::cluster("tls").await;
    let pki = Pki::generate().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, PASSWORD).unwrap();
    let prom = TlsPrometheus::start(
        &[],
        &pki,
        &WebAuth::Basic {
            user: USER.into(),
            password: PASSWORD.into(),
        },
    )
    .await
    .unwrap();

    let params = PatchParams::apply("governor-tests");
    let deployments: Api<Deployment> = Api::namespaced(cp.client.clone(), &ns.name);
    deployments
        .patch("svc", &params, &Patch::Apply(deployment("svc", 4)))
        .await
        .unwrap();
    let slo = serde_json::json!({
        "apiVersion": "governor.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "metadata": {"name": "svc"},
        "spec": {
            "service": "svc",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "svc"},
            "objectives": {"latency": {"p99": "100ms"}, "evaluationInterval": "2s"},
            "scaling": {"minReplicas": 1, "maxReplicas": 10},
            "alerting": {"enabled": false}
        }
    });
    let slos: Api<ServiceLevelObjective> = Api::namespaced(cp.client.clone(), &ns.name);
    slos.patch("svc", &params, &Patch::Apply(&slo))
        .await
        .unwrap();

    let operator = start_operator(
        "a",
        &kubeconfig,
        &ns.name,
        &prom.url,
        &[
            "--prometheus-ca-file",
            path(&pki.other_ca),
            "--prometheus-basic-auth-user",
            USER,
            "--prometheus-basic-auth-password-file",
            path(&password),
        ],
    );
    // A pass before the first observation cycle holds without a cause; the
    // passes after it name the cause.
    let cause = "certificate verify failed: UnknownIssuer (--prometheus-ca-file";
    let seen = Mutex::new(String::new());
    let found = wait_until(
        "MetricsAvailable=False naming the TLS failure",
        Duration::from_secs(60),
        || async {
            let slo = slos.get("svc").await.ok()?;
            let (status, message) = condition(&slo, "MetricsAvailable")?;
            *seen.lock().unwrap() = format!("{status}: {message}");
            (status == "False" && message.contains(cause)).then_some(message)
        },
    )
    .await;
    let message =
        found.unwrap_or_else(|e| panic!("{e}; last MetricsAvailable: {}", seen.lock().unwrap()));
    println!("MetricsAvailable=False: {message}");
    // Several observation cycles (2 s each) and passes later: still 4 replicas.
    let watch_until = std::time::Instant::now() + Duration::from_secs(8);
    while std::time::Instant::now() < watch_until {
        let replicas = deployments.get("svc").await.unwrap().spec.replicas;
        assert_eq!(
            replicas,
            Some(4),
            "replicas moved while TLS to Prometheus failed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut operator = operator;
    operator.server.check_alive().unwrap();
}
