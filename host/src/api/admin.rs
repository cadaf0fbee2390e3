//! The admin API's routes: who may call (operator or tenant key), the body read as its typed
//! shape, the [`AdminService`] operation, and the answer. Each handler is in the OpenAPI
//! document (`api/openapi.rs`).

use super::auth::{KeyId, Principal};
use super::{ApiError, AppState};
use crate::admin::bodies::{
    DecisionExport, DecisionPage, ErrorBody, IdentityList, IdentitySpec, IdentityView, IssuerList,
    IssuerSpec, IssuerView, KeyCreated, NewKey, NewTenant, PolicyList, PolicyUploaded, Revoked,
    SimulateRequest, Simulation, TenantCreated, TenantList,
};
use crate::admin::{AdminError, AdminService, PolicyUpload};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", post(create_tenant).get(list_tenants))
        .route("/v1/tenants/{tenant}/keys", post(create_key))
        .route("/v1/tenants/{tenant}/issuers", get(list_issuers))
        .route(
            "/v1/tenants/{tenant}/issuers/{name}",
            put(put_issuer).get(get_issuer).delete(delete_issuer),
        )
        .route("/v1/tenants/{tenant}/identities", get(list_identities))
        .route(
            "/v1/tenants/{tenant}/identities/{id}",
            put(put_identity).get(get_identity).delete(delete_identity),
        )
        .route(
            "/v1/tenants/{tenant}/identities/{id}/revoke",
            post(revoke_identity),
        )
        .route(
            "/v1/tenants/{tenant}/identities/{id}/simulate",
            post(simulate),
        )
        .route("/v1/tenants/{tenant}/decisions", get(decisions))
        .route("/v1/decisions", get(export_decisions))
}

/// Policy uploads: a route of their own, as their body limit is the module limit.
pub fn upload_routes() -> Router<AppState> {
    Router::new().route(
        "/v1/tenants/{tenant}/policies",
        post(upload_policy).get(list_policies),
    )
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Invalid(message) => ApiError::unprocessable(message),
            AdminError::BadRequest(message) => ApiError::bad_request(message),
            AdminError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, message),
            AdminError::NotFound(what) => ApiError::not_found(what),
            AdminError::Busy(message) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message),
            AdminError::Store(error) => error.into(),
            AdminError::Internal(detail) => ApiError::internal(detail),
        }
    }
}

pub(super) type Body<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

/// A JSON body, or 422 with what is wrong with it.
pub(super) fn body<T>(body: Body<T>) -> Result<T, ApiError> {
    body.map(|Json(v)| v)
        .map_err(|e| ApiError::unprocessable(e.body_text()))
}

fn admin(state: &AppState) -> &AdminService {
    &state.admin
}

/// Create a tenant (operator key): its first API key is in the answer, shown once.
#[utoipa::path(post, path = "/v1/tenants", request_body = NewTenant, tag = "tenants",
    responses((status = 201, body = TenantCreated), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_tenant(
    State(state): State<AppState>,
    who: Principal,
    new: Body<NewTenant>,
) -> Result<(StatusCode, Json<TenantCreated>), ApiError> {
    who.require_operator()?;
    let new = body(new)?;
    let created = admin(&state).create_tenant(&new.name).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// List tenants (operator key).
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", responses((status = 200, body = TenantList)))]
async fn list_tenants(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<TenantList>, ApiError> {
    who.require_operator()?;
    Ok(Json(admin(&state).list_tenants().await?))
}

/// Another API key for the tenant, shown once: an `admin` key (default), or an `introspect`
/// key for the tenant's resource servers. The body is optional.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/keys", tag = "tenants", request_body(content = NewKey, description = "optional"),
    params(("tenant" = String, Path)), responses((status = 201, body = KeyCreated), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_key(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<KeyCreated>), ApiError> {
    who.require_tenant(&tenant)?;
    let new: NewKey = if bytes.iter().all(u8::is_ascii_whitespace) {
        NewKey::default()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| ApiError::unprocessable(e.to_string()))?
    };
    let key = admin(&state).create_key(&tenant, new.role).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// Register or replace an issuer (a cluster) the tenant trusts; checked without network.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/issuers/{name}", request_body = IssuerSpec, tag = "issuers",
    params(("tenant" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = IssuerView), (status = 422, body = ErrorBody)))]
async fn put_issuer(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, name)): Path<(String, String)>,
    spec: Body<IssuerSpec>,
) -> Result<Json<IssuerView>, ApiError> {
    who.require_tenant(&tenant)?;
    let spec = body(spec)?;
    Ok(Json(admin(&state).put_issuer(&tenant, &name, spec).await?))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/issuers/{name}", tag = "issuers",
    params(("tenant" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = IssuerView), (status = 404, body = ErrorBody)))]
async fn get_issuer(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Json<IssuerView>, ApiError> {
    who.require_tenant(&tenant)?;
    Ok(Json(admin(&state).get_issuer(&tenant, &name).await?))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/issuers", tag = "issuers",
    params(("tenant" = String, Path)), responses((status = 200, body = IssuerList)))]
async fn list_issuers(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
) -> Result<Json<IssuerList>, ApiError> {
    who.require_tenant(&tenant)?;
    Ok(Json(admin(&state).list_issuers(&tenant).await?))
}

#[utoipa::path(delete, path = "/v1/tenants/{tenant}/issuers/{name}", tag = "issuers",
    params(("tenant" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_issuer(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    who.require_tenant(&tenant)?;
    admin(&state).delete_issuer(&tenant, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct UploadQuery {
    /// The policy name it is a new version of.
    name: Option<String>,
    /// What changed, kept with the version.
    description: Option<String>,
}

/// Upload a policy module (`application/wasm`): validated and compiled now, addressed by its
/// `sha256:` digest.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/policies", tag = "policies",
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    params(("tenant" = String, Path), ("name" = Option<String>, Query),
        ("description" = Option<String>, Query)),
    responses((status = 201, body = PolicyUploaded), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn upload_policy(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
    key: KeyId,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<(StatusCode, Json<PolicyUploaded>), ApiError> {
    who.require_tenant(&tenant)?;
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != "application/wasm" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "upload the module as `application/wasm`",
        ));
    }
    let uploaded = admin(&state)
        .upload_policy(
            &tenant,
            bytes,
            PolicyUpload {
                name: query.name.as_deref(),
                description: query.description.as_deref(),
                key_id: key.0.as_deref(),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(uploaded)))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/policies", tag = "policies",
    params(("tenant" = String, Path)), responses((status = 200, body = PolicyList)))]
async fn list_policies(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
) -> Result<Json<PolicyList>, ApiError> {
    who.require_tenant(&tenant)?;
    Ok(Json(admin(&state).list_policies(&tenant).await?))
}

/// Create or replace an identity; its issuer, policy and config are checked now.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/identities/{id}", request_body = IdentitySpec, tag = "identities",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = IdentityView), (status = 422, body = ErrorBody)))]
async fn put_identity(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, id)): Path<(String, String)>,
    spec: Body<IdentitySpec>,
) -> Result<Json<IdentityView>, ApiError> {
    who.require_tenant(&tenant)?;
    let spec = body(spec)?;
    Ok(Json(admin(&state).put_identity(&tenant, &id, spec).await?))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/identities/{id}", tag = "identities",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = IdentityView), (status = 404, body = ErrorBody)))]
async fn get_identity(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<IdentityView>, ApiError> {
    who.require_tenant(&tenant)?;
    Ok(Json(admin(&state).get_identity(&tenant, &id).await?))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/identities", tag = "identities",
    params(("tenant" = String, Path)), responses((status = 200, body = IdentityList)))]
async fn list_identities(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
) -> Result<Json<IdentityList>, ApiError> {
    who.require_tenant(&tenant)?;
    Ok(Json(admin(&state).list_identities(&tenant).await?))
}

/// Revoke every token the identity issued before now (and their renewals): each is inactive
/// at introspection and cannot be renewed. Tokens issued after this answer are not affected.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/identities/{id}/revoke", tag = "identities",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Revoked), (status = 404, body = ErrorBody)))]
async fn revoke_identity(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<Revoked>, ApiError> {
    who.require_tenant(&tenant)?;
    Ok(Json(admin(&state).revoke_identity(&tenant, &id).await?))
}

#[utoipa::path(delete, path = "/v1/tenants/{tenant}/identities/{id}", tag = "identities",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_identity(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    who.require_tenant(&tenant)?;
    admin(&state).delete_identity(&tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A dry run of an exchange: what it would issue, or why it would refuse, field by field.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/identities/{id}/simulate", request_body = SimulateRequest,
    tag = "identities", params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Simulation), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn simulate(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, id)): Path<(String, String)>,
    request: Body<SimulateRequest>,
) -> Result<Json<Simulation>, ApiError> {
    who.require_tenant(&tenant)?;
    let request = body(request)?;
    Ok(Json(admin(&state).simulate(&tenant, &id, request).await?))
}

#[derive(Deserialize)]
struct DecisionQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

/// Every tenant's decision records after `after`, oldest first (operator key): a cursor that
/// several replicas share, for shipping the audit log to a pipeline. Records of the last few
/// seconds wait for a later page, so that each is handed out once, in order.
#[utoipa::path(get, path = "/v1/decisions", tag = "decisions",
    params(("after" = Option<i64>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = DecisionExport), (status = 403, body = ErrorBody)))]
async fn export_decisions(
    State(state): State<AppState>,
    who: Principal,
    Query(query): Query<ExportQuery>,
) -> Result<Json<DecisionExport>, ApiError> {
    who.require_operator()?;
    let page = admin(&state)
        .export_decisions(query.after.unwrap_or(0), query.limit)
        .await?;
    Ok(Json(page))
}

/// The tenant's decision log, newest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/decisions", tag = "decisions",
    params(("tenant" = String, Path), ("limit" = Option<u32>, Query), ("before" = Option<i64>, Query)),
    responses((status = 200, body = DecisionPage)))]
async fn decisions(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
    Query(query): Query<DecisionQuery>,
) -> Result<Json<DecisionPage>, ApiError> {
    who.require_tenant(&tenant)?;
    let page = admin(&state)
        .decisions(&tenant, query.limit, query.before)
        .await?;
    Ok(Json(page))
}
