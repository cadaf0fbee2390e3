//! Admin authentication: `Authorization: Bearer <api key>`. An operator key manages tenants;
//! a tenant key manages only its own tenant; an introspection key of a tenant may only
//! introspect and revoke that tenant's tokens (what a tenant gives its resource servers).

use super::{ApiError, AppState};
use crate::store::{KeyRole, hash_api_key};
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Operator,
    Tenant(String),
    /// A tenant's key with the `introspect` role.
    Introspector(String),
}

pub(super) fn introspection_only() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "this key may only introspect and revoke tokens",
    )
}

impl Principal {
    /// Allows the operator or the tenant itself; anyone else gets 403 before anything is
    /// looked up, so nothing about other tenants leaks.
    pub fn require_tenant(&self, tenant: &str) -> Result<(), ApiError> {
        match self {
            Principal::Operator => Ok(()),
            Principal::Tenant(own) if own == tenant => Ok(()),
            Principal::Tenant(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "this key cannot manage that tenant",
            )),
            Principal::Introspector(_) => Err(introspection_only()),
        }
    }

    /// The tenant whose tokens this key may introspect and revoke: its own, for a tenant's
    /// admin or introspection key; an operator key has none.
    pub fn token_tenant(&self) -> Option<&str> {
        match self {
            Principal::Tenant(tenant) | Principal::Introspector(tenant) => Some(tenant),
            Principal::Operator => None,
        }
    }

    pub fn require_operator(&self) -> Result<(), ApiError> {
        match self {
            Principal::Operator => Ok(()),
            Principal::Tenant(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "an operator key is required",
            )),
            Principal::Introspector(_) => Err(introspection_only()),
        }
    }
}

/// Extracts the bearer token from an `Authorization` header value.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized =
            || ApiError::new(StatusCode::UNAUTHORIZED, "a valid API key is required");
        let secret = bearer(parts).ok_or_else(unauthorized)?;
        let key = state
            .admin
            .store()
            .find_api_key(&hash_api_key(secret))
            .await?
            .ok_or_else(unauthorized)?;
        Ok(match (key.tenant, key.role) {
            (None, _) => Principal::Operator,
            (Some(tenant), KeyRole::Admin) => Principal::Tenant(tenant),
            (Some(tenant), KeyRole::Introspect) => Principal::Introspector(tenant),
        })
    }
}

/// The id of the calling API key (never its secret), for what records who made a change;
/// `None` without a valid key (the route's [`Principal`] refuses those).
#[derive(Debug, Clone)]
pub struct KeyId(pub Option<String>);

impl FromRequestParts<AppState> for KeyId {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(secret) = bearer(parts) else {
            return Ok(KeyId(None));
        };
        let key = state
            .admin
            .store()
            .find_api_key(&hash_api_key(secret))
            .await?;
        Ok(KeyId(key.map(|k| k.id)))
    }
}
