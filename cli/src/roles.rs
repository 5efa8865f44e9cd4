//! The server roles: bind, run until SIGINT/SIGTERM, shut down in order.

use std::process::ExitCode;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A token cancelled by the first SIGINT or SIGTERM.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        t.cancel();
    });
    token
}

fn finish<E: std::fmt::Display>(role: &str, r: Result<(), E>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{role} failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))
}

pub async fn coordinator(config: ferrocache_coordinator::CoordinatorConfig) -> ExitCode {
    let listener = match bind(config.listen).await {
        Ok(l) => l,
        Err(e) => return finish("coordinator", Err(e)),
    };
    finish("coordinator", ferrocache_coordinator::run(config, listener, shutdown_token()).await)
}

pub async fn datanode(config: ferrocache_datanode::DatanodeConfig) -> ExitCode {
    let listener = match bind(config.listen).await {
        Ok(l) => l,
        Err(e) => return finish("datanode", Err(e)),
    };
    finish("datanode", ferrocache_datanode::run(config, listener, shutdown_token()).await)
}

pub async fn gateway(config: ferrocache_gateway::GatewayConfig) -> ExitCode {
    let listener = match bind(config.grpc_listen).await {
        Ok(l) => l,
        Err(e) => return finish("gateway", Err(e)),
    };
    finish("gateway", ferrocache_gateway::run(config, listener, shutdown_token()).await)
}
