//! Per-request limits: body size and total time.
//!
//! Bodies over the limit are refused from their announced length, before any of the body is
//! read. axum's `DefaultBodyLimit` only counts bytes as they arrive: a request announcing
//! 100 MB and then sending a few bytes would hold its connection (and a task) until the client
//! gave up. A body without a length (chunked) is still cut by `DefaultBodyLimit` as soon as it
//! passes the limit; the connection is then closed rather than drained.
//!
//! The header timeout (in the accept loop) does not cover the body: a client announcing a
//! small body and dripping it a byte at a time would hold its connection and task for as long
//! as it liked. The exchange endpoints therefore have a deadline for the whole request, body
//! included.

use super::{ApiError, OAuthError};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

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

/// For the exchange endpoints: the whole request (body, verification, policy) within
/// `deadline`, else 408 and the connection is closed.
pub async fn exchange_deadline(
    State(deadline): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = OAuthError::timed_out().into_response();
            // The body may be half read: the connection cannot carry another request.
            response.headers_mut().insert(
                header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            response
        }
    }
}
