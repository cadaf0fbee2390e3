//! The OpenAPI document of the admin API (`GET /openapi.json`), generated from the routes'
//! annotations and the typed bodies they read and write.

use crate::admin::bodies::{
    DecisionExport, DecisionPage, ErrorBody, IdentityList, IdentitySpec, IdentityView, IssuerList,
    IssuerSpec, IssuerView, KeyCreated, NewKey, NewTenant, OAuthErrorBody, PolicyList,
    PolicyUploaded, Revoked, SimulateRequest, Simulation, TenantCreated, TenantList,
};
use crate::admin::bodies::{
    Follower, OutcomePair, PolicyHistory, ReplayReport, ReplayRequest, RollbackRequest, RolledBack,
    ShadowReport, ShadowSpec,
};
use axum::Json;
use axum::routing::get;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tollgate admin API",
        description = "Tenants, issuers, policy modules, identities, simulation and the decision log. Every call takes `Authorization: Bearer <api key>`: an operator key manages tenants, a tenant key only its own tenant."
    ),
    paths(
        super::admin::create_tenant,
        super::admin::list_tenants,
        super::admin::create_key,
        super::admin::put_issuer,
        super::admin::get_issuer,
        super::admin::list_issuers,
        super::admin::delete_issuer,
        super::admin::upload_policy,
        super::admin::list_policies,
        super::admin::put_identity,
        super::admin::get_identity,
        super::admin::list_identities,
        super::admin::delete_identity,
        super::admin::revoke_identity,
        super::admin::simulate,
        super::admin::decisions,
        super::admin::export_decisions,
        super::change::policy_history,
        super::change::rollback,
        super::change::promote,
        super::change::shadow,
        super::change::replay,
    ),
    components(schemas(
        NewTenant,
        TenantCreated,
        TenantList,
        KeyCreated,
        NewKey,
        Revoked,
        IssuerSpec,
        IssuerView,
        IssuerList,
        PolicyUploaded,
        PolicyList,
        IdentitySpec,
        IdentityView,
        IdentityList,
        SimulateRequest,
        Simulation,
        DecisionPage,
        DecisionExport,
        ErrorBody,
        OAuthErrorBody,
        PolicyHistory,
        RollbackRequest,
        RolledBack,
        Follower,
        ShadowSpec,
        ShadowReport,
        OutcomePair,
        ReplayRequest,
        ReplayReport,
    ))
)]
pub struct ApiDoc;

pub fn routes() -> axum::Router<super::AppState> {
    axum::Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}
