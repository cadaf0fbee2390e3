//! Bodies over the limit are refused from their announced length, before any of the body is
//! read. axum's `DefaultBodyLimit` only counts bytes as they arrive: a request announcing
//! 100 MB and then sending a few bytes would hold its connection (and a task) until the client
//! gave up. A body without a length (chunked) is still cut by `DefaultBodyLimit` as soon as it
//! passes the limit; the connection is then closed rather than drained.

use super::{ApiError, OAuthError};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Whether the request announces more than `limit` bytes (an unparsable length counts as
/// more: hyper would refuse it anyway).
fn announced_over(request: &Request, limit: usize) -> bool {
    request
        .headers()
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .any(|value| {
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .is_none_or(|length| length > limit as u64)
        })
}

/// For the exchange endpoints: an RFC 6749 error.
pub async fn exchange(State(limit): State<usize>, request: Request, next: Next) -> Response {
    if announced_over(&request, limit) {
        return OAuthError::unreadable_body(StatusCode::PAYLOAD_TOO_LARGE).into_response();
    }
    next.run(request).await
}

/// For the admin API: an admin error naming the limit.
pub async fn admin(State(limit): State<usize>, request: Request, next: Next) -> Response {
    if announced_over(&request, limit) {
        let message = format!("the request body is larger than the limit of {limit} bytes");
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message).into_response();
    }
    next.run(request).await
}
