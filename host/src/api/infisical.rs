//! Infisical's admin calls for Kubernetes auth (`admin/infisical.rs`), with a tenant's API key
//! as the bearer: `POST` creates (or replaces), `GET` reads, `PATCH` changes the fields given,
//! `DELETE` removes the identity. `{identityId}` is the identity's unique id or its name.

use super::auth::Principal;
use super::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/auth/kubernetes-auth/identities/{identity}",
        post(create).get(read).patch(change).delete(remove),
    )
}

/// The tenant of the caller's admin key: these calls act within one tenant.
fn tenant_of(who: &Principal) -> Result<&str, ApiError> {
    match who {
        Principal::Tenant(tenant) => Ok(tenant),
        Principal::Operator => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "use a tenant's API key: the identity is created in its tenant",
        )),
        Principal::Introspector(_) => Err(super::auth::introspection_only()),
    }
}

async fn create(
    State(state): State<AppState>,
    who: Principal,
    Path(identity): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    put(&state, &who, &identity, &bytes, false).await
}

async fn change(
    State(state): State<AppState>,
    who: Principal,
    Path(identity): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    put(&state, &who, &identity, &bytes, true).await
}

async fn put(
    state: &AppState,
    who: &Principal,
    identity: &str,
    bytes: &Bytes,
    patch: bool,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant_of(who)?;
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let answer = state
        .admin
        .infisical_put(tenant, identity, &body, patch)
        .await?;
    Ok(Json(answer))
}

async fn read(
    State(state): State<AppState>,
    who: Principal,
    Path(identity): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant_of(&who)?;
    Ok(Json(state.admin.infisical_get(tenant, &identity).await?))
}

async fn remove(
    State(state): State<AppState>,
    who: Principal,
    Path(identity): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant_of(&who)?;
    Ok(Json(state.admin.infisical_delete(tenant, &identity).await?))
}
