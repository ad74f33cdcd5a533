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
