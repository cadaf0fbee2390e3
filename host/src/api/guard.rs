//! What every request must satisfy before a handler sees it, and one JSON shape for what the
//! framework refuses on its own.
//!
//! - **One credential per request.** A request with two `Authorization` headers is refused on
//!   every endpoint: a proxy in front that reads the last one would see another credential
//!   than the first one this server reads. (Form and JSON bodies refuse repeated parameters
//!   themselves.)
//! - **Bounded request heads**, answered in the endpoint's error shape. The first request of a
//!   connection is held to [`MAX_HEAD_BYTES`] and [`MAX_HEAD_LINES`] by the transport before
//!   hyper buffers it ([`oversized_head`]); later requests on a kept-alive connection are
//!   checked here, up to hyper's own buffer limit.
//! - **Framework rejections in JSON.** axum and hyper answer some refusals themselves (405 for
//!   a method a route lacks, 415, 422 from an extractor, 413 from the body limit) with a text
//!   or empty body. Each is rewritten here: RFC 6749 JSON with a generic description on the
//!   exchange endpoints, the admin error shape (keeping the framework's text, which helps an
//!   admin) elsewhere.

use super::{ApiError, OAuthError};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Largest request head (request line and headers) answered by a handler. Subject tokens are
/// at most 16 KiB; everything else a request carries is small.
pub const MAX_HEAD_BYTES: usize = 64 << 10;
/// Most lines in a request head (the request line and 100 headers, hyper's own limit).
pub const MAX_HEAD_LINES: usize = 101;
/// Longest framework text kept in an admin error.
const MAX_KEPT_TEXT: usize = 1024;

/// Paths whose refusals are RFC 6749 errors.
const EXCHANGE_PREFIXES: [&str; 4] = ["/oauth2/", "/sts/", "/api/v1/auth/", "/identity/"];

/// Why a request is refused before routing.
enum Refusal {
    RepeatedCredential,
    HeadTooLarge,
}

fn screen(headers: &HeaderMap) -> Option<Refusal> {
    if headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        return Some(Refusal::RepeatedCredential);
    }
    let head: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (head > MAX_HEAD_BYTES).then_some(Refusal::HeadTooLarge)
}

/// For the exchange endpoints.
pub async fn exchange(request: Request, next: Next) -> Response {
    if let Some(refusal) = screen(request.headers()) {
        return oauth_refusal(refusal).into_response();
    }
    let response = next.run(request).await;
    if !is_bare_error(&response) {
        return response;
    }
    let (parts, _) = response.into_parts();
    let mut answer = OAuthError::framework(parts.status).into_response();
    keep_headers(&parts.headers, answer.headers_mut());
    answer
}

/// For the admin API and the fallback of unknown paths.
pub async fn admin(request: Request, next: Next) -> Response {
    if let Some(refusal) = screen(request.headers()) {
        return admin_refusal(refusal).into_response();
    }
    let response = next.run(request).await;
    if !is_bare_error(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_KEPT_TEXT)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        describe(parts.status).to_owned()
    } else {
        text
    };
    let mut answer = ApiError::new(parts.status, message).into_response();
    keep_headers(&parts.headers, answer.headers_mut());
    answer
}

/// Unknown paths: 404 in the admin shape (the exchange paths all exist).
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

fn oauth_refusal(refusal: Refusal) -> OAuthError {
    match refusal {
        Refusal::RepeatedCredential => {
            OAuthError::invalid_request("the request carries more than one credential")
        }
        Refusal::HeadTooLarge => OAuthError::framework(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
    }
}

fn admin_refusal(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::RepeatedCredential => ApiError::bad_request("give one `Authorization` header"),
        Refusal::HeadTooLarge => ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            describe(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        ),
    }
}

/// An error answer that is not JSON: the framework's own.
fn is_bare_error(response: &Response) -> bool {
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    (status.is_client_error() || status.is_server_error()) && !json
}

/// Headers of the framework's answer that still mean something on ours.
fn keep_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for name in [header::ALLOW, header::RETRY_AFTER, header::CONNECTION] {
        if let Some(value) = from.get(&name) {
            to.insert(name, value.clone());
        }
    }
}

/// A generic sentence for a status the framework chose.
pub fn describe(status: StatusCode) -> &'static str {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => "the method is not allowed on this endpoint",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "the request body has an unsupported content type",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "the request headers are too large",
        StatusCode::REQUEST_TIMEOUT => "the request took too long",
        StatusCode::NOT_FOUND => "no such endpoint",
        s if s.is_server_error() => "the server could not complete the request",
        _ => "the request is malformed",
    }
}

/// The whole HTTP/1.1 answer to a first request head over the limits, written by the transport
/// before hyper has a request to route (its own answer would be an empty 431): the exchange
/// endpoints' shape when the request line names one of their paths, else the admin shape.
pub fn oversized_head(request_line: &[u8]) -> Vec<u8> {
    let path = request_line
        .split(|b| *b == b' ')
        .nth(1)
        .unwrap_or_default();
    let exchange = EXCHANGE_PREFIXES
        .iter()
        .any(|prefix| path.starts_with(prefix.as_bytes()));
    let status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    let body = if exchange {
        OAuthError::framework(status).body()
    } else {
        ApiError::new(status, describe(status)).body()
    }
    .to_string()
        // Like every JSON answer (`newline.rs`).
        + "\n";
    format!(
        "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n\
         content-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The body of a response, for tests.
#[cfg(test)]
async fn body_json(response: Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::middleware::from_fn;
    use axum::routing::post;
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route("/oauth2/token", post(|| async { "issued" }))
            .layer(from_fn(exchange))
            .merge(
                Router::new()
                    .route("/v1/things", post(|| async { "made" }))
                    .fallback(not_found)
                    .layer(from_fn(admin)),
            )
    }

    async fn send(
        request: axum::http::Request<Body>,
    ) -> (StatusCode, HeaderMap, serde_json::Value) {
        let response = app().oneshot(request).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, body_json(response).await)
    }

    #[tokio::test]
    async fn framework_refusals_become_json_on_both_surfaces() {
        let get = |path: &str| axum::http::Request::get(path).body(Body::empty()).unwrap();
        let (status, headers, body) = send(get("/oauth2/token")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(headers[header::ALLOW], "POST");
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(body["error_description"], describe(status));

        let (status, _, body) = send(get("/v1/things")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(body["message"].is_string(), "{body}");

        let (status, _, body) = send(get("/nowhere")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["message"], "no such endpoint");
    }

    #[tokio::test]
    async fn two_authorization_headers_are_refused() {
        for path in ["/oauth2/token", "/v1/things"] {
            let request = axum::http::Request::post(path)
                .header("authorization", "Bearer good")
                .header("authorization", "Bearer bad")
                .body(Body::empty())
                .unwrap();
            let (status, _, body) = send(request).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        }
    }

    #[test]
    fn an_oversized_head_is_answered_in_the_shape_of_its_path() {
        let answer = |line: &str| {
            let raw = String::from_utf8(oversized_head(line.as_bytes())).unwrap();
            let (head, body) = raw.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
            let length = format!("content-length: {}", body.len());
            assert!(head.contains(&length), "{head}");
            assert!(body.ends_with("}\n"), "{body}");
            serde_json::from_str::<serde_json::Value>(body).unwrap()
        };
        assert_eq!(
            answer("GET /sts/exchange?identity=x HTTP/1.1")["error"],
            "invalid_request"
        );
        assert_eq!(
            answer("POST /oauth2/token HTTP/1.1")["error"],
            "invalid_request"
        );
        assert!(answer("GET /v1/tenants HTTP/1.1")["message"].is_string());
        assert!(answer("garbage")["message"].is_string());
    }
}
