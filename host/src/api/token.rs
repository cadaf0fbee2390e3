//! `POST /oauth2/token`: RFC 8693 token exchange, and IBM's `cr-token` grant on the same
//! endpoint; `POST /identity/token` takes the same form where IBM's documentation sends it.
//! The `refresh_token` grant renews an access token (`life.rs`).

use super::form::FormParams;
use super::{AppState, ClientAddr, OAuthError};
use crate::exchange::ExchangeInput;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use std::collections::HashMap;

pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const CR_TOKEN: &str = "urn:ibm:params:oauth:grant-type:cr-token";
pub const REFRESH_TOKEN: &str = "refresh_token";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth2/token", post(token))
        .route("/identity/token", post(token))
}

fn required<'a>(
    params: &'a HashMap<String, String>,
    name: &str,
    missing: &'static str,
) -> Result<&'a str, OAuthError> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or(OAuthError::invalid_request(missing))
}

fn scopes(params: &HashMap<String, String>) -> Vec<String> {
    params
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

async fn token(
    State(state): State<AppState>,
    ClientAddr(client_address): ClientAddr,
    FormParams(params): FormParams,
) -> Result<impl IntoResponse, OAuthError> {
    let grant = required(&params, "grant_type", "`grant_type` is required")?;
    let (input, ibm) = match grant {
        TOKEN_EXCHANGE => {
            let subject_token = required(&params, "subject_token", "`subject_token` is required")?;
            let token_type = required(
                &params,
                "subject_token_type",
                "`subject_token_type` is required",
            )?;
            if token_type != JWT_TYPE && token_type != ID_TOKEN_TYPE {
                return Err(OAuthError::invalid_request(
                    "`subject_token_type` must be a JWT or an ID token",
                ));
            }
            if let Some(requested) = params.get("requested_token_type")
                && requested != ACCESS_TOKEN_TYPE
                && requested != JWT_TYPE
            {
                return Err(OAuthError::invalid_request("only access tokens are issued"));
            }
            let identity = required(&params, "audience", "`audience` must name the identity")?;
            let input = ExchangeInput {
                identity: identity.to_owned(),
                subject_token: subject_token.to_owned(),
                scopes: scopes(&params),
                audience: params.get("resource").cloned(),
                client_address,
            };
            (input, false)
        }
        CR_TOKEN => {
            let input = ExchangeInput {
                identity: required(&params, "profile_id", "`profile_id` is required")?.to_owned(),
                subject_token: required(&params, "cr_token", "`cr_token` is required")?.to_owned(),
                scopes: scopes(&params),
                audience: params.get("resource").cloned(),
                client_address,
            };
            (input, true)
        }
        REFRESH_TOKEN => {
            // Renewal: the access token is its own refresh token, within its session's max ttl.
            let token = required(&params, "refresh_token", "`refresh_token` is required")?;
            let issued = super::life::renew_token(&state, token, client_address).await?;
            return Ok(no_store(Json(token_body(&issued))));
        }
        _ => return Err(OAuthError::unsupported_grant_type()),
    };
    let issued = super::run_exchange(&state, input).await?;
    let mut body = token_body(&issued);
    if ibm {
        body["expiration"] = json!(crate::common::unix_now() + i64::from(issued.expires_in));
    }
    Ok(no_store(Json(body)))
}

/// The RFC 8693 answer; `warnings` when the server issued less than the identity asks.
fn token_body(issued: &crate::exchange::Issued) -> serde_json::Value {
    let mut body = json!({
        "access_token": issued.access_token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scopes.join(" "),
    });
    if !issued.warnings.is_empty() {
        body["warnings"] = json!(issued.warnings);
    }
    body
}

/// Token responses must not be cached (RFC 6749 §5.1).
pub fn no_store<T: IntoResponse>(body: T) -> impl IntoResponse {
    (
        [("cache-control", "no-store"), ("pragma", "no-cache")],
        body,
    )
}
