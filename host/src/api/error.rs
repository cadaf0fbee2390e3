//! The two error shapes callers see: RFC 6749 JSON on the exchange endpoints, and a small JSON
//! error on the admin API. Neither carries internal detail: that goes to the log.

use crate::exchange::ExchangeError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An RFC 6749 §5.2 error.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: &'static str,
    /// Seconds for `Retry-After`.
    retry_after: Option<u64>,
}

impl OAuthError {
    pub fn invalid_request(description: &'static str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            description,
            retry_after: None,
        }
    }

    /// 429: over a rate limit. The same answer whichever limit (tenant, identity, client) it
    /// was, so it names none of them.
    pub fn rate_limited(retry_after: std::time::Duration) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "temporarily_unavailable",
            description: "too many requests; retry after the time in Retry-After",
            retry_after: Some(retry_after.as_secs_f64().ceil().max(1.0) as u64),
        }
    }

    /// A request body the endpoint cannot read: 413 when it is over the limit, else 400.
    pub fn unreadable_body(status: StatusCode) -> Self {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return Self {
                status,
                code: "invalid_request",
                description: "the request body is too large",
                retry_after: None,
            };
        }
        Self::invalid_request("the request body must be application/x-www-form-urlencoded")
    }

    /// 408: the request (body included) took longer than the server allows.
    pub fn timed_out() -> Self {
        Self {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "invalid_request",
            description: "the request took too long",
            retry_after: None,
        }
    }

    /// A refusal whose status the framework (axum, hyper, a limit) chose, with the generic
    /// description of that status.
    pub fn framework(status: StatusCode) -> Self {
        let code = if status.is_server_error() {
            "server_error"
        } else {
            "invalid_request"
        };
        Self {
            status,
            code,
            description: super::guard::describe(status),
            retry_after: None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": self.code, "error_description": self.description})
    }

    /// 401: introspection and revocation need a tenant's API key (RFC 6749 §5.2).
    pub fn invalid_client() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: "a tenant API key is required as the bearer credential",
            retry_after: None,
        }
    }

    /// 403: an operator key has no tenant whose tokens it could introspect or revoke.
    pub fn unauthorized_client() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "unauthorized_client",
            description: "only a tenant's key may introspect or revoke its tokens",
            retry_after: None,
        }
    }

    pub fn unsupported_grant_type() -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "unsupported_grant_type",
            description: "the grant type is not supported",
            retry_after: None,
        }
    }
}

impl From<ExchangeError> for OAuthError {
    fn from(error: ExchangeError) -> Self {
        match error {
            // One answer for unknown identity, bad token and denial: a caller cannot probe
            // which identities exist or what their policies check.
            ExchangeError::UnknownIdentity
            | ExchangeError::InvalidToken(_)
            | ExchangeError::Denied { .. }
            | ExchangeError::UntrustedAddress(_) => Self::invalid_request(
                "the subject token cannot be exchanged for the requested identity",
            ),
            // One answer whatever made the token unrenewable.
            ExchangeError::NotRenewable(_) => Self {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_grant",
                description: "the token cannot be renewed",
                retry_after: None,
            },
            ExchangeError::InvalidScope(_) => Self {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_scope",
                description: "a requested scope is not granted",
                retry_after: None,
            },
            ExchangeError::InvalidTarget => Self {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_target",
                description: "the requested audience is not available for this identity",
                retry_after: None,
            },
            // The database is down or restarting: nothing was issued, and a retry may work.
            ExchangeError::Internal(failure) if failure.is_unavailable() => {
                tracing::warn!(%failure, "exchange failed: the database is unavailable");
                Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "temporarily_unavailable",
                    description: "the service is briefly unavailable; retry shortly",
                    retry_after: Some(1),
                }
            }
            ExchangeError::Internal(failure) => {
                tracing::error!(%failure, "exchange failed");
                Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    code: "server_error",
                    description: "the server could not complete the exchange",
                    retry_after: None,
                }
            }
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = Json(self.body());
        let mut response = (self.status, [("cache-control", "no-store")], body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// An admin API error: a status and a message meant for the tenant.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "admin request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match error {
            StoreError::Conflict(message) => Self::new(StatusCode::CONFLICT, message),
            StoreError::NotFound(message) => Self::new(StatusCode::NOT_FOUND, message),
            StoreError::Invalid(message) => Self::unprocessable(message),
            other if other.is_unavailable() => {
                tracing::warn!(error = %other, "admin request failed: the database is unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unavailable; retry shortly",
                )
            }
            other => Self::internal(other),
        }
    }
}

impl ApiError {
    /// The JSON body: the status's reason and the message.
    pub fn body(&self) -> serde_json::Value {
        let error = self
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_lowercase();
        json!({"error": error, "message": self.message})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}
