//! Discovery documents and the published signing keys, for relying parties.

use super::AppState;
use super::token::{CR_TOKEN, REFRESH_TOKEN, TOKEN_EXCHANGE};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/jwks.json", get(jwks))
}

async fn metadata(State(state): State<AppState>) -> Json<Value> {
    let base = &state.exchange.public_url;
    Json(json!({
        "issuer": base,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "token_endpoint": format!("{base}/oauth2/token"),
        "grant_types_supported": [TOKEN_EXCHANGE, CR_TOKEN, REFRESH_TOKEN],
        "token_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint": format!("{base}/oauth2/introspect"),
        "introspection_endpoint_auth_methods_supported": ["bearer"],
        "revocation_endpoint": format!("{base}/oauth2/revoke"),
        "revocation_endpoint_auth_methods_supported": ["bearer"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": state.exchange.signing_algorithms(),
    }))
}

async fn jwks(State(state): State<AppState>) -> Json<Value> {
    Json(state.exchange.jwks())
}
