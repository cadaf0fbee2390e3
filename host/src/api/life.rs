//! The issued token's life over HTTP: RFC 7662 introspection and RFC 7009 revocation, both
//! authenticated by a tenant's API key (an `introspect` key is the one to give resource
//! servers), and renewal, in Infisical's shape (`POST /api/v1/auth/token/renew`) here and as
//! RFC 6749's `refresh_token` grant on `/oauth2/token` (`token.rs`).

use super::auth::Principal;
use super::form::FormParams;
use super::token::no_store;
use super::{AppState, ClientAddr, OAuthError};
use crate::exchange::{ExchangeError, Introspection};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth2/introspect", post(introspect))
        .route("/oauth2/revoke", post(revoke))
        .route("/api/v1/auth/token/renew", post(renew))
}

/// The tenant whose tokens the caller's key may introspect and revoke.
pub struct TokenTenant(String);

impl FromRequestParts<AppState> for TokenTenant {
    type Rejection = OAuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let who = Principal::from_request_parts(parts, state)
            .await
            .map_err(|_| OAuthError::invalid_client())?;
        who.token_tenant()
            .map(|tenant| Self(tenant.to_owned()))
            .ok_or_else(OAuthError::unauthorized_client)
    }
}

/// The `token` of an introspection or revocation form, and its other parameters.
fn token_param(
    FormParams(mut params): FormParams,
) -> Result<(String, std::collections::HashMap<String, String>), OAuthError> {
    let token = params
        .remove("token")
        .filter(|t| !t.is_empty())
        .ok_or(OAuthError::invalid_request("`token` is required"))?;
    Ok((token, params))
}

/// `POST /oauth2/introspect`: `{"active": false}` for anything that is not a live token of the
/// caller's tenant; else its claims, and `uses_remaining` when its uses are limited.
/// `client_address` is where the resource server saw the token come from: given, it must be
/// in the token's trusted ranges.
async fn introspect(
    State(state): State<AppState>,
    TokenTenant(tenant): TokenTenant,
    ClientAddr(caller): ClientAddr,
    form: FormParams,
) -> Result<impl IntoResponse, OAuthError> {
    let (token, params) = token_param(form)?;
    let presented_from = params.get("client_address").map(String::as_str);
    let found = state
        .exchange
        .introspect(&tenant, &token, presented_from, caller)
        .await?;
    Ok(no_store(Json(match found {
        Some(active) => active_body(&active),
        None => json!({"active": false}),
    })))
}

fn active_body(found: &Introspection) -> Value {
    let claims = &found.claims;
    let mut body = json!({
        "active": true,
        "scope": claims.scope,
        "client_id": claims.client_id,
        "token_type": "Bearer",
        "exp": claims.exp,
        "iat": claims.iat,
        "nbf": claims.iat,
        "sub": claims.sub,
        "aud": claims.aud,
        "iss": claims.iss,
        "jti": claims.jti,
    });
    if let Some(left) = found.uses_remaining {
        body["uses_remaining"] = json!(left);
    }
    body
}

/// `POST /oauth2/revoke`: 200 whatever the token (RFC 7009 §2.2); a live token of the caller's
/// tenant has its session (it and its renewals) revoked.
async fn revoke(
    State(state): State<AppState>,
    TokenTenant(tenant): TokenTenant,
    ClientAddr(caller): ClientAddr,
    form: FormParams,
) -> Result<impl IntoResponse, OAuthError> {
    let (token, _) = token_param(form)?;
    state.exchange.revoke(&tenant, &token, caller).await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RenewBody {
    access_token: String,
}

/// `POST /api/v1/auth/token/renew` (Infisical's shape): a new token of the same session.
async fn renew(
    State(state): State<AppState>,
    ClientAddr(client_address): ClientAddr,
    body: Result<Json<RenewBody>, JsonRejection>,
) -> Result<impl IntoResponse, OAuthError> {
    let Json(body) = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => OAuthError::unreadable_body(StatusCode::PAYLOAD_TOO_LARGE),
        _ => OAuthError::invalid_request("expected JSON with `accessToken`"),
    })?;
    let issued = renew_token(&state, &body.access_token, client_address).await?;
    Ok(no_store(Json(json!({
        "accessToken": issued.access_token,
        "expiresIn": issued.expires_in,
        "accessTokenMaxTTL": issued.max_ttl,
        "tokenType": "Bearer",
    }))))
}

/// Renews, counting the outcome with the exchanges' metrics.
pub async fn renew_token(
    state: &AppState,
    token: &str,
    client_address: Option<String>,
) -> Result<crate::exchange::Issued, OAuthError> {
    let result = state.exchange.renew(token, client_address).await;
    let outcome = match &result {
        Ok(_) => crate::metrics::Outcome::Allowed,
        Err(ExchangeError::Internal(_)) => crate::metrics::Outcome::Errored,
        Err(_) => crate::metrics::Outcome::Denied,
    };
    crate::metrics::count_exchange(outcome);
    Ok(result?)
}
