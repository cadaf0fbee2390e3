//! The accept loop: HTTP/1.1 connections served by hyper with the transport limits axum's
//! `serve` cannot set — a deadline for the request head (slowloris), a cap on open
//! connections, a bounded first request head (`head.rs`) — and graceful shutdown that lets
//! in-flight requests finish.

mod head;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Transport limits of the exchange server.
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    /// The whole request line and headers must arrive within this time, or the connection is
    /// closed. hyper starts the clock whenever it waits for a request head, so this also
    /// closes idle keep-alive connections.
    pub header_timeout: Duration,
    /// Connections open at once; when reached, new ones wait in the kernel's backlog.
    /// `None`: no cap.
    pub max_connections: Option<usize>,
}

/// How long shutdown waits for in-flight requests before giving up on them.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` completes, then drains open connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    transport: Transport,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(transport.header_timeout);
    let slots = transport
        .max_connections
        .map(|n| Arc::new(Semaphore::new(n)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // The permit is taken before `accept`, so a full server stops accepting instead of
        // accepting and holding sockets it will not serve.
        let permit = match &slots {
            Some(slots) => tokio::select! {
                permit = slots.clone().acquire_owned() => Some(permit.map_err(std::io::Error::other)?),
                () = &mut shutdown => break,
            },
            None => None,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_error(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            tower_service::Service::call(&mut app.clone(), request)
        });
        let stream = head::FirstHead::new(stream);
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_DEADLINE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: some connections did not finish in time");
    }
    Ok(())
}

/// Connection-level accept errors are the client's problem; anything else (e.g. out of file
/// descriptors) is logged and retried after a pause instead of spinning.
async fn accept_error(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
