//! Every JSON answer ends with a newline, so the answer to a pasted `curl` leaves the prompt on a
//! line of its own. One layer around the whole router does it, after every handler, error and
//! guard has written its answer; `Content-Length` is set again to the new length (axum sets it
//! from the body outside this layer, and drops the body of a HEAD answer there too, so HEAD
//! announces the length GET sends).

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Largest body this layer reads to add the newline: every JSON answer of this server is far
/// smaller (a page of decisions, the OpenAPI document); a larger one is left as it is.
const MAX_BODY: u64 = 16 << 20;

/// Adds `\n` to a JSON body that does not end with one.
pub async fn json(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if !is_json(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Only a body whose whole length is known up front, which is one piece in memory already.
    let Some(length) = body
        .size_hint()
        .exact()
        .filter(|length| *length <= MAX_BODY)
    else {
        return Response::from_parts(parts, body);
    };
    let bytes = match axum::body::to_bytes(body, length as usize).await {
        Ok(bytes) => bytes,
        Err(error) => return super::ApiError::internal(error).into_response(),
    };
    if bytes.ends_with(b"\n") {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let mut ended = Vec::with_capacity(bytes.len() + 1);
    ended.extend_from_slice(&bytes);
    ended.push(b'\n');
    if parts.headers.contains_key(header::CONTENT_LENGTH) {
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(ended.len()));
    }
    Response::from_parts(parts, Body::from(ended))
}

/// `application/json` or a `+json` type (`application/jwk-set+json`, ...).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::http::{Method, StatusCode};
    use axum::middleware::from_fn;
    use axum::routing::get;
    use tower::ServiceExt;

    fn app() -> Router {
        let typed = |content_type: &'static str, body: &'static str| {
            get(move || async move { ([(header::CONTENT_TYPE, content_type)], body) })
        };
        Router::new()
            .route(
                "/json",
                get(|| async { axum::Json(serde_json::json!({"a": 1})) }),
            )
            .route(
                "/error",
                get(|| async { super::super::ApiError::not_found("thing") }),
            )
            .route("/keys", typed("application/jwk-set+json", "{}"))
            .route("/ended", typed("application/json", "{}\n"))
            .route("/text", get(|| async { "ok" }))
            .layer(from_fn(json))
    }

    fn content_length(headers: &HeaderMap) -> Option<u64> {
        headers
            .get(header::CONTENT_LENGTH)?
            .to_str()
            .ok()?
            .parse()
            .ok()
    }

    /// (status, Content-Length, body).
    async fn send(method: Method, path: &str) -> (StatusCode, Option<u64>, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let response = app().oneshot(request).await.unwrap();
        let (status, length) = (response.status(), content_length(response.headers()));
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, length, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn json_answers_end_with_one_newline_and_say_their_length() {
        for (path, body) in [
            ("/json", "{\"a\":1}\n"),
            (
                "/error",
                "{\"error\":\"not found\",\"message\":\"thing not found\"}\n",
            ),
            ("/keys", "{}\n"),
            ("/ended", "{}\n"),
            ("/text", "ok"),
        ] {
            let (_, length, got) = send(Method::GET, path).await;
            assert_eq!(got, body, "{path}");
            assert_eq!(length, Some(body.len() as u64), "{path}");
        }
        assert_eq!(send(Method::GET, "/error").await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn head_announces_the_length_get_sends() {
        let (_, get_length, _) = send(Method::GET, "/json").await;
        let (_, head_length, body) = send(Method::HEAD, "/json").await;
        assert_eq!(head_length, get_length);
        assert!(body.is_empty());
    }
}
