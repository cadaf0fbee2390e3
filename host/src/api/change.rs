//! The admin API's routes for changing a policy: a named policy's versions and rollback, an
//! identity's promotion of its shadow candidate, the shadow report and replay.

use super::admin::{Body, body};
use super::auth::{KeyId, Principal};
use super::{ApiError, AppState};
use crate::admin::bodies::{
    ErrorBody, IdentityView, PolicyHistory, ReplayReport, ReplayRequest, RollbackRequest,
    RolledBack, ShadowReport,
};
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/policies/{name}", get(policy_history))
        .route(
            "/v1/tenants/{tenant}/policies/{name}/rollback",
            post(rollback),
        )
        .route(
            "/v1/tenants/{tenant}/identities/{id}/promote",
            post(promote),
        )
        .route("/v1/tenants/{tenant}/identities/{id}/shadow", get(shadow))
        .route("/v1/tenants/{tenant}/identities/{id}/replay", post(replay))
}

/// The versions of a named policy, newest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/policies/{name}", tag = "policies",
    params(("tenant" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = PolicyHistory), (status = 404, body = ErrorBody)))]
async fn policy_history(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Json<PolicyHistory>, ApiError> {
    who.require_tenant(&tenant)?;
    Ok(Json(state.admin.policy_history(&tenant, &name).await?))
}

/// Makes an older version's module the newest version again (the body is optional); the
/// identities that follow the name switch back once their cases pass.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/policies/{name}/rollback", tag = "policies",
    request_body = RollbackRequest,
    params(("tenant" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = RolledBack), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn rollback(
    State(state): State<AppState>,
    who: Principal,
    key: KeyId,
    Path((tenant, name)): Path<(String, String)>,
    request: Option<Json<RollbackRequest>>,
) -> Result<Json<RolledBack>, ApiError> {
    who.require_tenant(&tenant)?;
    let request = request.map(|Json(r)| r).unwrap_or_default();
    let done = state
        .admin
        .rollback(&tenant, &name, request.version, key.0.as_deref())
        .await?;
    Ok(Json(done))
}

/// Makes the identity's shadow candidate its policy: refused (409) while the identity's
/// config or cases fail on it.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/identities/{id}/promote", tag = "identities",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = IdentityView), (status = 409, body = ErrorBody)))]
async fn promote(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<IdentityView>, ApiError> {
    who.require_tenant(&tenant)?;
    Ok(Json(state.admin.promote(&tenant, &id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Since {
    /// How far back, in seconds (default a week).
    since_seconds: Option<u64>,
}

/// How the shadow candidate's answers compared with the policy's: counts by pair, examples.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/identities/{id}/shadow", tag = "identities",
    params(("tenant" = String, Path), ("id" = String, Path), ("since_seconds" = Option<u64>, Query)),
    responses((status = 200, body = ShadowReport), (status = 404, body = ErrorBody)))]
async fn shadow(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, id)): Path<(String, String)>,
    Query(since): Query<Since>,
) -> Result<Json<ShadowReport>, ApiError> {
    who.require_tenant(&tenant)?;
    let since = since.since_seconds.unwrap_or(7 * 86_400);
    Ok(Json(state.admin.shadow_report(&tenant, &id, since).await?))
}

/// Evaluates the identity's recorded decisions with another policy and reports what would
/// have changed.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/identities/{id}/replay", tag = "identities",
    request_body = ReplayRequest,
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = ReplayReport), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn replay(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, id)): Path<(String, String)>,
    request: Body<ReplayRequest>,
) -> Result<Json<ReplayReport>, ApiError> {
    who.require_tenant(&tenant)?;
    let request = body(request)?;
    Ok(Json(state.admin.replay(&tenant, &id, request).await?))
}
