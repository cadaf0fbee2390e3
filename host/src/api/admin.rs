//! The admin API: tenants and keys (operator), issuers, policy modules, identities, simulation
//! and the decision log (tenant). Inputs are validated here, at write time, never at exchange.

use super::auth::Principal;
use super::{ApiError, AppState};
use crate::exchange::{Decided, ExchangeError, ExchangeInput, ExchangeService, identity_name};
use crate::policy::limits::MAX_FUEL;
use crate::policy::{BUILTIN_RULES, LoadError};
use crate::store::{IdentityRecord, IssuerRecord, PolicyConfig, generate_api_key};
use crate::verify::{IssuerConfig, IssuerSource};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", post(create_tenant).get(list_tenants))
        .route("/v1/tenants/{tenant}/keys", post(create_key))
        .route("/v1/tenants/{tenant}/issuers", get(list_issuers))
        .route(
            "/v1/tenants/{tenant}/issuers/{name}",
            put(put_issuer).get(get_issuer).delete(delete_issuer),
        )
        .route(
            "/v1/tenants/{tenant}/policies",
            post(upload_policy).get(list_policies),
        )
        .route("/v1/tenants/{tenant}/identities", get(list_identities))
        .route(
            "/v1/tenants/{tenant}/identities/{id}",
            put(put_identity).get(get_identity).delete(delete_identity),
        )
        .route(
            "/v1/tenants/{tenant}/identities/{id}/simulate",
            post(simulate),
        )
        .route("/v1/tenants/{tenant}/decisions", get(decisions))
}

type Body<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

fn body<T>(body: Body<T>) -> Result<T, ApiError> {
    body.map(|Json(v)| v)
        .map_err(|e| ApiError::unprocessable(e.body_text()))
}

/// Names of tenants, issuers and identities: short, URL-safe, no surprises in logs.
fn check_name(kind: &str, name: &str) -> Result<(), ApiError> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::unprocessable(format!(
            "{kind} name `{name}` must be 1-63 lowercase letters, digits or `-`"
        )))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
}

async fn create_tenant(
    State(state): State<AppState>,
    who: Principal,
    new: Body<NewTenant>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    who.require_operator()?;
    let new = body(new)?;
    check_name("tenant", &new.name)?;
    let store = &state.exchange.store;
    let tenant = store.create_tenant(&new.name).await?;
    let (secret, hash) = generate_api_key().map_err(ApiError::internal)?;
    store
        .create_api_key(Some(&tenant.name), &hash, "initial")
        .await?;
    let audience = state.exchange.tenant_audience(&tenant.name);
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"name": tenant.name, "created_at": tenant.created_at, "api_key": secret, "audience": audience}),
        ),
    ))
}

async fn list_tenants(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Value>, ApiError> {
    who.require_operator()?;
    Ok(Json(
        json!({"tenants": state.exchange.store.list_tenants().await?}),
    ))
}

async fn create_key(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    who.require_tenant(&tenant)?;
    let store = &state.exchange.store;
    store
        .get_tenant(&tenant)
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("tenant `{tenant}`")))?;
    let (secret, hash) = generate_api_key().map_err(ApiError::internal)?;
    let key = store.create_api_key(Some(&tenant), &hash, "api").await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": key.id, "api_key": secret})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerBody {
    issuer_url: String,
    #[serde(default = "discovery")]
    source: Value,
}

fn discovery() -> Value {
    json!({"mode": "discovery"})
}

/// An issuer as shown to tenants: the reviewer token never leaves the server.
fn issuer_view(record: &IssuerRecord) -> Value {
    let mut source = record.source.clone();
    if let Some(token) = source.get_mut("reviewer_token") {
        *token = json!("<redacted>");
    }
    json!({
        "name": record.name, "issuer_url": record.issuer_url, "source": source,
        "created_at": record.created_at, "updated_at": record.updated_at,
    })
}

async fn put_issuer(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, name)): Path<(String, String)>,
    issuer: Body<IssuerBody>,
) -> Result<Json<Value>, ApiError> {
    who.require_tenant(&tenant)?;
    check_name("issuer", &name)?;
    let issuer = body(issuer)?;
    let source: IssuerSource = serde_json::from_value(issuer.source.clone())
        .map_err(|e| ApiError::unprocessable(format!("invalid issuer source: {e}")))?;
    let config = IssuerConfig {
        cache_key: format!("{tenant}/{name}"),
        issuer_url: issuer.issuer_url.clone(),
        source,
    };
    state
        .exchange
        .verifier
        .validate_issuer(&config)
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    // Validate early: a pasted key set that has already expired would only ever deny.
    if let IssuerSource::StaticJwks { expires_at, .. } = &config.source
        && *expires_at <= crate::common::unix_now()
    {
        return Err(ApiError::unprocessable(
            "static `expires_at` is in the past",
        ));
    }
    let record = IssuerRecord {
        tenant: tenant.clone(),
        name: name.clone(),
        issuer_url: issuer.issuer_url,
        source: issuer.source,
        created_at: 0,
        updated_at: 0,
    };
    let stored = state.exchange.store.put_issuer(&record).await?;
    state.exchange.verifier.forget(&config.cache_key);
    Ok(Json(issuer_view(&stored)))
}

async fn get_issuer(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    who.require_tenant(&tenant)?;
    let record = state.exchange.store.get_issuer(&tenant, &name).await?;
    let record = record.ok_or_else(|| ApiError::not_found(format_args!("issuer `{name}`")))?;
    Ok(Json(issuer_view(&record)))
}

async fn list_issuers(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    who.require_tenant(&tenant)?;
    let issuers = state.exchange.store.list_issuers(&tenant).await?;
    Ok(Json(
        json!({"issuers": issuers.iter().map(issuer_view).collect::<Vec<_>>()}),
    ))
}

async fn delete_issuer(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    who.require_tenant(&tenant)?;
    if !state.exchange.store.delete_issuer(&tenant, &name).await? {
        return Err(ApiError::not_found(format_args!("issuer `{name}`")));
    }
    state.exchange.verifier.forget(&format!("{tenant}/{name}"));
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct UploadQuery {
    name: Option<String>,
}

async fn upload_policy(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    let store = &state.exchange.store;
    store
        .get_tenant(&tenant)
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("tenant `{tenant}`")))?;
    let registry = state.exchange.policies.clone();
    let owner = tenant.clone();
    let data = bytes.clone();
    // Compiling takes real CPU time: off the async workers.
    let module = tokio::task::spawn_blocking(move || registry.load(&owner, &data))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            // Not the module's fault: the compiler is taken (possibly by abandoned bombs).
            LoadError::Busy => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            _ => ApiError::unprocessable(format!("module rejected: {e}")),
        })?;
    let meta = store
        .put_policy(&tenant, &module.info.digest, &bytes, query.name.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "digest": meta.digest, "size": meta.size, "name": meta.name, "uploaded_at": meta.uploaded_at,
            "imports": module.info.imports, "compile_ms": module.info.compile_time.as_millis() as u64,
        })),
    ))
}

async fn list_policies(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    who.require_tenant(&tenant)?;
    let policies = state.exchange.store.list_policies(&tenant).await?;
    Ok(Json(
        json!({"builtin": [BUILTIN_RULES], "policies": policies}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityBody {
    issuer: String,
    #[serde(default)]
    accepted_audiences: Vec<String>,
    #[serde(default)]
    token_audiences: Vec<String>,
    #[serde(default = "builtin_rules")]
    policy: String,
    #[serde(default)]
    config: Value,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default = "default_ttl")]
    ttl_seconds: u32,
    #[serde(default = "default_max_ttl")]
    max_ttl_seconds: u32,
    fuel: Option<u64>,
}

fn builtin_rules() -> String {
    BUILTIN_RULES.to_owned()
}
fn default_ttl() -> u32 {
    900
}
fn default_max_ttl() -> u32 {
    3600
}

fn identity_view(record: &IdentityRecord) -> Value {
    let mut value = serde_json::to_value(record).unwrap_or(Value::Null);
    value["name"] = json!(identity_name(record));
    value
}

async fn put_identity(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, id)): Path<(String, String)>,
    identity: Body<IdentityBody>,
) -> Result<Json<Value>, ApiError> {
    who.require_tenant(&tenant)?;
    check_name("identity", &id)?;
    let identity = body(identity)?;
    if identity.ttl_seconds == 0
        || identity.max_ttl_seconds == 0
        || identity.ttl_seconds > identity.max_ttl_seconds
    {
        return Err(ApiError::unprocessable(
            "need 0 < `ttl_seconds` <= `max_ttl_seconds`",
        ));
    }
    if identity.fuel.is_some_and(|f| f == 0 || f > MAX_FUEL) {
        return Err(ApiError::unprocessable(format!(
            "`fuel` must be between 1 and {MAX_FUEL}"
        )));
    }
    if identity
        .scopes
        .iter()
        .any(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        return Err(ApiError::unprocessable(
            "scopes must be non-empty and contain no whitespace",
        ));
    }
    let exchange = &state.exchange;
    if let Some(foreign) = identity
        .accepted_audiences
        .iter()
        .find(|a| exchange.is_foreign_tenant_audience(&tenant, a))
    {
        return Err(ApiError::unprocessable(format!(
            "accepted audience `{foreign}` belongs to another tenant"
        )));
    }
    exchange
        .store
        .get_issuer(&tenant, &identity.issuer)
        .await?
        .ok_or_else(|| {
            ApiError::unprocessable(format!("issuer `{}` is not registered", identity.issuer))
        })?;
    let module = exchange
        .policies
        .get(&tenant, &identity.policy)
        .ok_or_else(|| {
            ApiError::unprocessable(format!("policy `{}` is not uploaded", identity.policy))
        })?;
    let config = if identity.config.is_null() {
        PolicyConfig::empty()
    } else {
        PolicyConfig::from(&identity.config)
    };
    let engine = exchange.policies.engine().clone();
    let config_text = config.as_str().to_owned();
    tokio::task::spawn_blocking(move || engine.validate_config(&module, &config_text))
        .await
        .map_err(ApiError::internal)?
        .map_err(|message| ApiError::unprocessable(format!("policy config rejected: {message}")))?;
    let record = IdentityRecord {
        tenant,
        id,
        uid: String::new(),
        issuer: identity.issuer,
        accepted_audiences: identity.accepted_audiences,
        token_audiences: identity.token_audiences,
        policy: identity.policy,
        config,
        scopes: identity.scopes,
        ttl_seconds: identity.ttl_seconds,
        max_ttl_seconds: identity.max_ttl_seconds,
        fuel: identity.fuel,
        created_at: 0,
        updated_at: 0,
    };
    let stored = exchange.store.put_identity(&record).await?;
    Ok(Json(identity_view(&stored)))
}

async fn get_identity(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    who.require_tenant(&tenant)?;
    let record = state.exchange.store.get_identity(&tenant, &id).await?;
    let record = record.ok_or_else(|| ApiError::not_found(format_args!("identity `{id}`")))?;
    Ok(Json(identity_view(&record)))
}

async fn list_identities(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
) -> Result<Json<Value>, ApiError> {
    who.require_tenant(&tenant)?;
    let identities = state.exchange.store.list_identities(&tenant).await?;
    Ok(Json(
        json!({"identities": identities.iter().map(identity_view).collect::<Vec<_>>()}),
    ))
}

async fn delete_identity(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    who.require_tenant(&tenant)?;
    if !state.exchange.store.delete_identity(&tenant, &id).await? {
        return Err(ApiError::not_found(format_args!("identity `{id}`")));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulateBody {
    /// A subject token, screened and verified as an exchange would.
    token: Option<String>,
    /// Or claims as if verified (a dry run of everything after verification).
    claims: Option<Value>,
    /// Requested scopes, as `scope` of an exchange.
    #[serde(default)]
    scopes: Vec<String>,
    /// Requested audience, as `resource` (or `aud`) of an exchange.
    audience: Option<String>,
    /// The address the exchange would come from.
    client_address: Option<String>,
    now: Option<i64>,
}

/// A dry run of an exchange: verification (for a token), then exactly the exchange's decision
/// ([`ExchangeService::decide`](crate::exchange::ExchangeService::decide)), answered field by
/// field as the exchange would issue it or record its refusal.
async fn simulate(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, id)): Path<(String, String)>,
    simulation: Body<SimulateBody>,
) -> Result<Json<Value>, ApiError> {
    who.require_tenant(&tenant)?;
    let simulation = body(simulation)?;
    let exchange = &state.exchange;
    let identity = exchange
        .store
        .get_identity(&tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("identity `{id}`")))?;
    let now = simulation.now.unwrap_or_else(crate::common::unix_now);
    let input = ExchangeInput {
        identity: identity_name(&identity),
        subject_token: simulation.token.clone().unwrap_or_default(),
        scopes: simulation.scopes,
        audience: simulation.audience,
        client_address: simulation.client_address,
    };
    let claims = match (simulation.token, simulation.claims) {
        (Some(token), None) => match verify_simulated(exchange, &identity, &token, now).await {
            Ok(claims) => claims,
            Err(error) => {
                return Ok(Json(json!({
                    "decision": "deny", "stage": "verify", "code": error.code(),
                    "reasons": [error.to_string()],
                })));
            }
        },
        (None, Some(mut claims)) => {
            if let Some(map) = claims.as_object_mut() {
                map.entry("exp").or_insert(json!(now + 3600));
            }
            claims
        }
        _ => {
            return Err(ApiError::unprocessable(
                "give exactly one of `token` or `claims`",
            ));
        }
    };
    let decided = exchange.decide(&identity, &claims, &input, now);
    Ok(Json(simulation_view(decided)))
}

/// What a simulation answers: the decision, where it was made, and what would be issued or
/// recorded.
fn simulation_view(decided: Decided) -> Value {
    let mut view = match &decided.outcome {
        Ok(granted) => json!({
            "decision": "allow", "stage": "grant", "reasons": [],
            "audience": granted.audience, "scopes": granted.scopes,
            "ttl_seconds": granted.ttl, "claims": granted.claims,
        }),
        Err(error) => {
            let mut record = crate::store::DecisionRecord::default();
            decided.record_into(&mut record);
            let stage = match (&decided.evaluation, error) {
                (None, _) => "request",
                (Some(_), ExchangeError::Denied { .. }) => "policy",
                (Some(_), _) => "grant",
            };
            let code = record.code.unwrap_or_else(|| error.code().to_owned());
            let reason = record.reason.unwrap_or_else(|| error.to_string());
            json!({
                "decision": "deny", "stage": stage, "code": code,
                "reasons": [format!("{code}: {reason}")],
            })
        }
    };
    view["policy_digest"] = json!(decided.policy_digest);
    if let Some(evaluation) = decided.evaluation {
        view["evaluation"] = json!(evaluation);
    }
    view
}

/// The exchange's own screening and verification of a simulated token.
async fn verify_simulated(
    exchange: &ExchangeService,
    identity: &IdentityRecord,
    token: &str,
    now: i64,
) -> Result<Value, ExchangeError> {
    let token = ExchangeService::screen_token(token)?;
    exchange.verify_token(identity, token, now).await
}

#[derive(Deserialize)]
struct DecisionQuery {
    limit: Option<u32>,
    before: Option<i64>,
}

async fn decisions(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
    Query(query): Query<DecisionQuery>,
) -> Result<Json<Value>, ApiError> {
    who.require_tenant(&tenant)?;
    let limit = query
        .limit
        .unwrap_or(100)
        .clamp(1, crate::store::MAX_DECISION_PAGE);
    let decisions = state
        .exchange
        .store
        .list_decisions(&tenant, limit, query.before)
        .await?;
    let next = decisions.last().map(|d| d.id);
    Ok(Json(json!({"decisions": decisions, "next_before": next})))
}
