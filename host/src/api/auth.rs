//! Admin authentication: `Authorization: Bearer <api key>`. An operator key manages tenants;
//! a tenant key manages only its own tenant.

use super::{ApiError, AppState};
use crate::store::hash_api_key;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Operator,
    Tenant(String),
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
        }
    }

    pub fn require_operator(&self) -> Result<(), ApiError> {
        match self {
            Principal::Operator => Ok(()),
            Principal::Tenant(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "an operator key is required",
            )),
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
        Ok(match key.tenant {
            None => Principal::Operator,
            Some(tenant) => Principal::Tenant(tenant),
        })
    }
}
