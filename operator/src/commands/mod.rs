//! The subcommands, one module each.

pub mod crdgen;
pub mod dashboard;
pub mod demo;
pub mod observe;
pub mod operator;
pub mod rules;
pub mod sim_serve;
pub mod simulate;
pub mod validate;

/// Serves `app` until Ctrl-C or SIGTERM; `command` names the command in errors.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    command: &str,
) -> std::process::ExitCode {
    match axum::serve(listener, app)
        .with_graceful_shutdown(crate::controller::shutdown_signal())
        .await
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{command}: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

/// The Kubernetes client from KUBECONFIG or the pod's service account; `None`
/// after saying why, with `command` named.
pub async fn kube_client(command: &str) -> Option<kube::Client> {
    match kube::Client::try_default().await {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("{command}: no Kubernetes API ({e}); set KUBECONFIG or run in a cluster");
            None
        }
    }
}
