//! HTTP: routes and the mapping of errors to responses. Everything below this layer is
//! transport-free; handlers parse, call `exchange` or the store, and shape the answer.

mod admin;
mod auth;
mod compat;
mod discovery;
mod error;
mod ops;
mod token;

pub use error::{ApiError, OAuthError};

use crate::exchange::{ExchangeError, ExchangeInput, ExchangeService, Issued};
use crate::metrics::{self, Outcome};
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

/// Largest exchange request body: a subject token and a few parameters.
const EXCHANGE_BODY_LIMIT: usize = 64 << 10;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub exchange: Arc<ExchangeService>,
}

/// The whole HTTP surface. `max_body` bounds admin requests (policy uploads).
pub fn router(state: AppState, max_body: usize) -> Router {
    let exchange = Router::new()
        .merge(token::routes())
        .merge(compat::routes())
        .layer(DefaultBodyLimit::max(EXCHANGE_BODY_LIMIT));
    let admin = admin::routes().layer(DefaultBodyLimit::max(max_body));
    Router::new()
        .merge(exchange)
        .merge(admin)
        .merge(discovery::routes())
        .merge(ops::routes())
        .with_state(state)
}

/// The caller's address when the server was started with connect info (absent in tests).
pub struct ClientAddr(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip().to_string()),
        ))
    }
}

/// Runs an exchange for any of the endpoint shapes and counts its outcome.
async fn run_exchange(state: &AppState, input: ExchangeInput) -> Result<Issued, OAuthError> {
    let result = state.exchange.exchange(input).await;
    metrics::count_exchange(match &result {
        Ok(_) => Outcome::Allowed,
        Err(ExchangeError::Internal(_)) => Outcome::Errored,
        Err(_) => Outcome::Denied,
    });
    result.map_err(OAuthError::from)
}
