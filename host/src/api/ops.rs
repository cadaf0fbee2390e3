//! Liveness, readiness and metrics.

use super::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(|| async { crate::metrics::render() }))
}

/// Longest `/readyz` waits for the database: a probe must answer within a second.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);

async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match tokio::time::timeout(READY_TIMEOUT, state.exchange.ready()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready"),
        Ok(Err(error)) => {
            tracing::warn!(%error, "store not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
        Err(_) => {
            tracing::warn!("store not ready: no answer within {READY_TIMEOUT:?}");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}
