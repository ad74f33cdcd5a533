//! A real Kubernetes control plane on loopback: etcd + kube-apiserver with RBAC,
//! service-account token signing and a static admin token (the envtest approach).

use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::process::{Server, free_port, http_ok};
use crate::tools::tool;

const ADMIN_TOKEN: &str = "governor-test-admin-token";

/// etcd and kube-apiserver, with an admin client. Both stop on drop.
pub struct ControlPlane {
    /// Client acting as cluster admin (group system:masters).
    pub client: Client,
    /// `https://127.0.0.1:PORT`
    pub url: String,
    apiserver: Server,
    etcd: Server,
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver on free ports and waits until /readyz is ok.
    pub async fn start() -> crate::Result<Self> {
        let etcd = start_etcd().await?;
        let client_port: u16 = std::fs::read_to_string(etcd.dir.path().join("client-port"))?
            .trim()
            .parse()?;

        let dir = tempfile::Builder::new()
            .prefix("kube-apiserver-")
            .tempdir()?;
        let port = free_port()?;
        let key = rcgen::KeyPair::generate().context("generating the service-account key")?;
        let key_file = dir.path().join("sa.key");
        std::fs::write(&key_file, key.serialize_pem())?;
        let pub_file = dir.path().join("sa.pub");
        std::fs::write(&pub_file, key.public_key_pem())?;
        let tokens = dir.path().join("tokens.csv");
        std::fs::write(
            &tokens,
            format!("{ADMIN_TOKEN},governor-test-admin,governor-test-admin,\"system:masters\"\n"),
        )?;
        let cert_dir = dir.path().join("certs");
        let args: Vec<String> = vec![
            format!("--etcd-servers=http://127.0.0.1:{client_port}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", cert_dir.display()),
            format!("--token-auth-file={}", tokens.display()),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://governor.test".into(),
            format!("--service-account-key-file={}", pub_file.display()),
            format!("--service-account-signing-key-file={}", key_file.display()),
            "--service-cluster-ip-range=10.96.0.0/24".into(),
            "--allow-privileged=true".into(),
            "--enable-priority-and-fairness=false".into(),
            "--endpoint-reconciler-type=none".into(),
            "--v=1".into(),
        ];
        let mut apiserver = Server::start("kube-apiserver", &tool("kube-apiserver")?, &args, dir)?;
        let url = format!("https://127.0.0.1:{port}");
        let client = client_for(&url, ADMIN_TOKEN).await?;
        apiserver
            .wait_ready(Duration::from_secs(90), || {
                let client = client.clone();
                async move {
                    let req = http::Request::get("/readyz").body(Vec::new());
                    match req {
                        Ok(req) => matches!(client.request_text(req).await, Ok(body) if body.trim() == "ok"),
                        Err(_) => false,
                    }
                }
            })
            .await?;
        Ok(Self {
            client,
            url,
            apiserver,
            etcd,
        })
    }

    /// A kubeconfig (YAML) for this API server, authenticating with `token`.
    pub fn kubeconfig(&self, token: &str) -> String {
        kubeconfig_yaml(&self.url, token)
    }

    /// The admin kubeconfig (YAML).
    pub fn admin_kubeconfig(&self) -> String {
        self.kubeconfig(ADMIN_TOKEN)
    }

    /// Applies every CRD in `crds/*.yaml` and waits until each is Established.
    pub async fn install_crds(&self) -> crate::Result<()> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let dir = crate::repo_root().join("crds");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let crd: CustomResourceDefinition =
                serde_yaml_ng::from_str(&std::fs::read_to_string(&path)?)
                    .with_context(|| format!("parsing {}", path.display()))?;
            let name = crd.metadata.name.clone().context("CRD without a name")?;
            api.patch(
                &name,
                &PatchParams::apply("governor-tests").force(),
                &Patch::Apply(&crd),
            )
            .await
            .with_context(|| format!("applying {}", path.display()))?;
            names.push(name);
        }
        for name in names {
            self.crd_established(&name).await?;
        }
        Ok(())
    }

    /// Waits until CRD `name` is Established (its kind served).
    pub async fn crd_established(&self, name: &str) -> crate::Result<()> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        crate::wait_until(
            &format!("CRD {name} Established"),
            Duration::from_secs(30),
            || {
                let api = api.clone();
                async move {
                    let crd = api.get(name).await.ok()?;
                    let established = crd
                        .status?
                        .conditions?
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True");
                    established.then_some(())
                }
            },
        )
        .await
    }

    /// Creates a namespace with a unique name; deleted when the guard drops.
    pub async fn temp_namespace(&self, prefix: &str) -> crate::Result<TempNamespace> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"generateName": format!("{prefix}-")}
        }))?;
        let created = api.create(&PostParams::default(), &ns).await?;
        let name = created.metadata.name.context("namespace without a name")?;
        Ok(TempNamespace { name, api })
    }

    /// A client acting as ServiceAccount `namespace/name` (created if absent), with a
    /// token from the TokenRequest API.
    pub async fn service_account_client(
        &self,
        namespace: &str,
        name: &str,
    ) -> crate::Result<Client> {
        let token = self.service_account_token(namespace, name).await?;
        client_for(&self.url, &token).await
    }

    /// A token of ServiceAccount `namespace/name` (created when missing), for a
    /// kubeconfig handed to another process.
    pub async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
    ) -> crate::Result<String> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let sa: ServiceAccount =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
        match api.create(&PostParams::default(), &sa).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e).context("creating the ServiceAccount"),
        }
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(vec!["https://governor.test".into()]),
                expiration_seconds: Some(3600),
                ..Default::default()
            }),
            ..Default::default()
        };
        let response = api
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .context("requesting a ServiceAccount token")?;
        let token = response
            .status
            .and_then(|s| s.token)
            .context("TokenRequest answered without a token")?;
        Ok(token)
    }

    /// Kills etcd (SIGKILL) under the running API server: reads and writes
    /// fail until `start_etcd`.
    pub fn stop_etcd(&mut self) {
        self.etcd.stop();
    }

    /// Starts etcd again (same port, same data) and waits for its /health.
    pub async fn start_etcd(&mut self) -> crate::Result<()> {
        let client_port = std::fs::read_to_string(self.etcd.dir.path().join("client-port"))?;
        let health = format!("http://127.0.0.1:{}/health", client_port.trim());
        self.etcd.restart()?;
        let http = reqwest::Client::new();
        self.etcd
            .wait_ready(Duration::from_secs(30), || http_ok(&http, &health))
            .await
    }

    /// Stops kube-apiserver and etcd now.
    pub fn stop(&mut self) {
        self.apiserver.stop();
        self.etcd.stop();
    }
}

/// A namespace deleted (in the background) on drop.
pub struct TempNamespace {
    pub name: String,
    api: Api<Namespace>,
}

impl Drop for TempNamespace {
    fn drop(&mut self) {
        let api = self.api.clone();
        let name = self.name.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = api.delete(&name, &DeleteParams::background()).await;
            });
        }
    }
}

async fn start_etcd() -> crate::Result<Server> {
    let dir = tempfile::Builder::new().prefix("etcd-").tempdir()?;
    let client_port = free_port()?;
    let peer_port = free_port()?;
    std::fs::write(dir.path().join("client-port"), client_port.to_string())?;
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let args: Vec<String> = vec![
        "--name=governor-test".into(),
        format!("--data-dir={}", dir.path().join("data").display()),
        format!("--listen-client-urls={client_url}"),
        format!("--advertise-client-urls={client_url}"),
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=governor-test={peer_url}"),
        "--unsafe-no-fsync=true".into(),
        "--log-level=warn".into(),
    ];
    let mut etcd = Server::start("etcd", &tool("etcd")?, &args, dir)?;
    let http = reqwest::Client::new();
    let health = format!("{client_url}/health");
    etcd.wait_ready(Duration::from_secs(30), || http_ok(&http, &health))
        .await?;
    Ok(etcd)
}

fn kubeconfig_yaml(url: &str, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: governor-test
  cluster:
    server: {url}
    insecure-skip-tls-verify: true
users:
- name: governor-test
  user:
    token: {token}
contexts:
- name: governor-test
  context:
    cluster: governor-test
    user: governor-test
    namespace: default
current-context: governor-test
"
    )
}

async fn client_for(url: &str, token: &str) -> crate::Result<Client> {
    let kubeconfig = Kubeconfig::from_yaml(&kubeconfig_yaml(url, token))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}
