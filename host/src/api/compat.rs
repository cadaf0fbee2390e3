//! Compatibility shapes of the exchange: Chainguard's `/sts/exchange` and Infisical's
//! Kubernetes login.

use super::token::no_store;
use super::{AppState, ClientAddr, OAuthError};
use crate::exchange::ExchangeInput;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sts/exchange", get(chainguard).post(chainguard))
        .route("/api/v1/auth/kubernetes-auth/login", post(infisical))
}

#[derive(Deserialize)]
struct ChainguardQuery {
    identity: Option<String>,
    aud: Option<String>,
    scope: Option<String>,
}

async fn chainguard(
    State(state): State<AppState>,
    ClientAddr(client_address): ClientAddr,
    headers: HeaderMap,
    query: Result<Query<ChainguardQuery>, QueryRejection>,
) -> Result<impl IntoResponse, OAuthError> {
    let Query(query) = query.map_err(|_| {
        OAuthError::invalid_request("the query string is malformed or repeats a parameter")
    })?;
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .ok_or(OAuthError::invalid_request(
            "a bearer subject token is required",
        ))?;
    let identity = query
        .identity
        .ok_or(OAuthError::invalid_request("`identity` is required"))?;
    let input = ExchangeInput {
        identity,
        subject_token: token,
        scopes: query
            .scope
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        audience: query.aud,
        client_address,
    };
    let issued = super::run_exchange(&state, input).await?;
    Ok(no_store(Json(json!({"token": issued.access_token}))))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfisicalLogin {
    identity_id: String,
    jwt: String,
}

async fn infisical(
    State(state): State<AppState>,
    ClientAddr(client_address): ClientAddr,
    body: Result<Json<InfisicalLogin>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, OAuthError> {
    let Json(login) = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => OAuthError::unreadable_body(StatusCode::PAYLOAD_TOO_LARGE),
        _ => OAuthError::invalid_request("expected JSON with `identityId` and `jwt`"),
    })?;
    let input = ExchangeInput {
        identity: login.identity_id,
        subject_token: login.jwt,
        client_address,
        ..Default::default()
    };
    let issued = super::run_exchange(&state, input).await?;
    Ok(no_store(Json(json!({
        "accessToken": issued.access_token,
        "expiresIn": issued.expires_in,
        "accessTokenMaxTTL": issued.max_ttl,
        "tokenType": "Bearer",
    }))))
}
