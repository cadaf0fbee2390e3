//! HTTP: the routes, the guard every request passes (`guard.rs`), the request limits and rate
//! limits, `run_exchange` (the driver of all four exchange shapes), and the mapping of errors to
//! responses. Everything below this layer is transport-free; handlers parse, call the exchange
//! or admin service, and shape the answer.

mod admin;
mod auth;
mod change;
mod client;
mod compat;
mod discovery;
mod error;
mod form;
pub mod guard;
mod infisical;
mod life;
mod limits;
mod newline;
mod openapi;
mod ops;
mod ratelimit;
mod token;

pub use error::{ApiError, OAuthError};
pub use ratelimit::{Rate, RateLimiter, RateLimits};

use crate::common::cidrs::Cidrs;
use crate::exchange::{ExchangeError, ExchangeInput, ExchangeService, Issued, parse_identity_name};
use crate::metrics::{self, Outcome};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use client::ClientAddr;
use ratelimit::Keys;
use std::sync::Arc;
use std::time::Duration;

/// Largest exchange request body: a subject token and a few parameters.
const EXCHANGE_BODY_LIMIT: usize = 64 << 10;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub exchange: Arc<ExchangeService>,
    pub admin: Arc<crate::admin::AdminService>,
    pub limiter: Arc<RateLimiter>,
    /// Proxies whose forwarding headers name the client (`api/client.rs`).
    pub trusted_proxies: Arc<Cidrs>,
}

/// Limits on each request.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Largest admin request body, policy uploads aside.
    pub max_body: usize,
    /// Largest policy upload (`--policy-max-module-bytes`, or `max_body` when that is larger:
    /// the engine then names the module limit in a 422).
    pub max_upload: usize,
    /// Longest time for a whole exchange request, body included.
    pub exchange_deadline: Duration,
}

/// The whole HTTP surface.
pub fn router(state: AppState, bounds: RequestLimits) -> Router {
    let exchange = Router::new()
        .merge(token::routes())
        .merge(compat::routes())
        .merge(life::routes())
        .layer(DefaultBodyLimit::max(EXCHANGE_BODY_LIMIT))
        .layer(from_fn_with_state(EXCHANGE_BODY_LIMIT, limits::exchange))
        .layer(from_fn_with_state(
            bounds.exchange_deadline,
            limits::exchange_deadline,
        ))
        .layer(from_fn(guard::exchange));
    let admin = admin::routes()
        .merge(change::routes())
        .merge(infisical::routes())
        .layer(DefaultBodyLimit::max(bounds.max_body))
        .layer(from_fn_with_state(bounds.max_body, limits::admin))
        .layer(from_fn(guard::admin));
    let uploads = admin::upload_routes()
        .layer(DefaultBodyLimit::max(bounds.max_upload))
        .layer(from_fn_with_state(bounds.max_upload, limits::admin))
        .layer(from_fn(guard::admin));
    let public = Router::new()
        .merge(discovery::routes())
        .merge(ops::routes())
        .merge(openapi::routes())
        .fallback(guard::not_found)
        .layer(from_fn(guard::admin));
    Router::new()
        .merge(exchange)
        .merge(admin)
        .merge(uploads)
        .merge(public)
        .layer(from_fn(newline::json))
        .with_state(state)
}

/// Runs an exchange for any of the endpoint shapes, within the rate limits (see
/// [`ratelimit`] for what each request is charged to), and counts its outcome.
async fn run_exchange(state: &AppState, input: ExchangeInput) -> Result<Issued, OAuthError> {
    let started = std::time::Instant::now();
    let mut keys = Keys {
        identity: None,
        client: input.client_address.as_deref().and_then(Keys::client_key),
    };
    let result = async {
        state
            .limiter
            .check_client(&keys)
            .map_err(RunError::Limited)?;
        // Checking (never charging) the budget of the identity the request names is safe
        // before the lookup: only verified requests spend it, so this refuses nothing the
        // check after the lookup would not, and spares a throttled flood the store query.
        if let Some((tenant, id)) = parse_identity_name(&input.identity) {
            let named = Keys {
                identity: Some((tenant.to_owned(), format!("{tenant}/{id}"))),
                client: None,
            };
            state
                .limiter
                .check_identity(&named)
                .map_err(RunError::Limited)?;
        }
        let token = ExchangeService::screen_token(&input.subject_token).inspect_err(|error| {
            tracing::info!(identity = ?input.identity, %error, "exchange denied before lookup");
        })?;
        let identity = match state.exchange.find_identity(&input.identity).await {
            Err(ExchangeError::UnknownIdentity) => {
                if let Some((tenant, id)) = parse_identity_name(&input.identity) {
                    state
                        .exchange
                        .record_unknown_identity(tenant, id, &input)
                        .await;
                }
                return Err(ExchangeError::UnknownIdentity.into());
            }
            found => found?,
        };
        keys.identity = Some((
            identity.tenant.clone(),
            format!("{}/{}", identity.tenant, identity.id),
        ));
        state
            .limiter
            .check_identity(&keys)
            .map_err(RunError::Limited)?;
        Ok(state.exchange.exchange_as(&identity, &input, token).await?)
    }
    .await;
    metrics::observe_phase(metrics::Phase::Handler, started.elapsed());
    let outcome = match &result {
        Ok(_) => Outcome::Allowed,
        Err(RunError::Limited(_)) => Outcome::RateLimited,
        Err(RunError::Exchange(ExchangeError::Internal(_))) => Outcome::Errored,
        Err(RunError::Exchange(_)) => Outcome::Denied,
    };
    metrics::count_exchange(outcome);
    match result {
        Ok(issued) => {
            state.limiter.charge(&keys, true);
            Ok(issued)
        }
        Err(RunError::Limited(retry_after)) => Err(OAuthError::rate_limited(retry_after)),
        Err(RunError::Exchange(error)) => {
            state.limiter.charge(&keys, error.after_verification());
            Err(error.into())
        }
    }
}

enum RunError {
    Limited(Duration),
    Exchange(ExchangeError),
}

impl From<ExchangeError> for RunError {
    fn from(error: ExchangeError) -> Self {
        Self::Exchange(error)
    }
}
