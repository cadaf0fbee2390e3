//! The dev issuer's HTTP side: OIDC discovery and the JWKS at the paths Kubernetes serves.

use super::DevError;
use super::state::DevState;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::future::Future;
use std::sync::Arc;

/// Where Kubernetes serves its discovery document, relative to the issuer.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// Where Kubernetes serves its key set, relative to the issuer.
pub const JWKS_PATH: &str = "/openid/v1/jwks";

struct Issuer {
    state: DevState,
    issuer: String,
}

/// Checks an issuer URL: `http` or `https`, a host, no query or fragment; returns it without
/// a trailing slash.
pub fn normalize_issuer(issuer: &str) -> Result<String, DevError> {
    let invalid = |reason: &str| DevError::InvalidIssuer {
        issuer: issuer.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = issuer
        .strip_prefix("http://")
        .or_else(|| issuer.strip_prefix("https://"))
        .ok_or_else(|| invalid("it must start with http:// or https://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(invalid("it has no host"));
    }
    if rest.contains(['?', '#']) {
        return Err(invalid("it must not have a query or fragment"));
    }
    Ok(issuer.trim_end_matches('/').to_owned())
}

/// The path part of a normalized issuer URL (empty for a bare origin).
fn issuer_path(issuer: &str) -> &str {
    let rest = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    rest.find('/').map_or("", |at| &rest[at..])
}

/// The routes of an issuer whose keys live in `state`. They are served at the root, like
/// Kubernetes, and under the issuer URL's path when it has one, where OIDC discovery looks.
/// Keys are read from the state directory on every request, so a `dev rotate` run by
/// another process shows at once.
pub fn router(state: DevState, issuer: &str) -> Result<Router, DevError> {
    let issuer = normalize_issuer(issuer)?;
    let prefix = issuer_path(&issuer).to_owned();
    let shared = Arc::new(Issuer { state, issuer });
    let mut router = Router::new()
        .route(DISCOVERY_PATH, get(discovery))
        .route(JWKS_PATH, get(jwks));
    if !prefix.is_empty() {
        router = router
            .route(&format!("{prefix}{DISCOVERY_PATH}"), get(discovery))
            .route(&format!("{prefix}{JWKS_PATH}"), get(jwks));
    }
    Ok(router.with_state(shared))
}

async fn discovery(State(issuer): State<Arc<Issuer>>) -> Response {
    let document = json!({
        "issuer": issuer.issuer,
        "jwks_uri": format!("{}{JWKS_PATH}", issuer.issuer),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!("{document}\n"),
    )
        .into_response()
}

async fn jwks(State(issuer): State<Arc<Issuer>>) -> Response {
    match issuer.state.load() {
        Ok(Some(ring)) => (
            [(header::CONTENT_TYPE, "application/jwk-set+json")],
            format!("{}\n", ring.jwks()),
        )
            .into_response(),
        Ok(None) => (StatusCode::SERVICE_UNAVAILABLE, "no signing key yet\n").into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot read the dev issuer's keys");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")).into_response()
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, finishing requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DevError> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(DevError::Serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_urls_are_checked_and_trimmed() {
        assert_eq!(
            normalize_issuer("http://127.0.0.1:8081/").unwrap(),
            "http://127.0.0.1:8081"
        );
        assert_eq!(
            normalize_issuer("https://k8s.example/cluster-a").unwrap(),
            "https://k8s.example/cluster-a"
        );
        for bad in [
            "127.0.0.1:8081",
            "ftp://x",
            "http://",
            "http:///x",
            "http://x?a=b",
            "http://x#f",
        ] {
            assert!(normalize_issuer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_issuer_path_is_found() {
        assert_eq!(issuer_path("http://127.0.0.1:8081"), "");
        assert_eq!(issuer_path("https://k8s.example/a/b"), "/a/b");
    }
}
