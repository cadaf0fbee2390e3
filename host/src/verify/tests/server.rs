//! A local issuer and API server on 127.0.0.1 (port 0) for the network tests.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server answers; tests change it while it runs.
#[derive(Default)]
pub struct Behaviour {
    pub jwks: Value,
    /// When set, `/keys` (and discovery) answer with this status instead.
    pub fail_with: Option<StatusCode>,
    /// When set, `/keys` waits this long before answering.
    pub delay: Option<Duration>,
    /// Override of the discovery document.
    pub discovery: Option<Value>,
    /// Answer of the TokenReview endpoint (status code and body).
    pub review: Option<(StatusCode, Value)>,
    /// Last TokenReview request seen: authorization header and body.
    pub last_review: Option<(String, Value)>,
}

pub struct Shared {
    pub behaviour: Mutex<Behaviour>,
    pub jwks_hits: AtomicUsize,
    pub discovery_hits: AtomicUsize,
    pub other_hits: AtomicUsize,
    pub base: String,
}

pub struct TestServer {
    pub shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start(jwks: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(Behaviour {
                jwks,
                ..Behaviour::default()
            }),
            jwks_hits: AtomicUsize::new(0),
            discovery_hits: AtomicUsize::new(0),
            other_hits: AtomicUsize::new(0),
            base,
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/keys", get(keys))
            .route("/apis/authentication.k8s.io/v1/tokenreviews", post(review))
            .route("/redirect/{n}", get(redirect))
            .fallback(other)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { shared, task }
    }

    pub fn base(&self) -> &str {
        &self.shared.base
    }

    pub fn set(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.shared.behaviour.lock().unwrap());
    }

    pub fn jwks_hits(&self) -> usize {
        self.shared.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn total_hits(&self) -> usize {
        self.shared.jwks_hits.load(Ordering::SeqCst)
            + self.shared.discovery_hits.load(Ordering::SeqCst)
            + self.shared.other_hits.load(Ordering::SeqCst)
    }
}

type S = State<Arc<Shared>>;

async fn discovery(State(shared): S) -> Response {
    shared.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let behaviour = shared.behaviour.lock().unwrap();
    if let Some(status) = behaviour.fail_with {
        return status.into_response();
    }
    let doc = behaviour.discovery.clone().unwrap_or_else(
        || json!({ "issuer": shared.base, "jwks_uri": format!("{}/keys", shared.base) }),
    );
    axum::Json(doc).into_response()
}

async fn keys(State(shared): S) -> Response {
    shared.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let (delay, fail, jwks) = {
        let b = shared.behaviour.lock().unwrap();
        (b.delay, b.fail_with, b.jwks.clone())
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    match fail {
        Some(status) => status.into_response(),
        None => axum::Json(jwks).into_response(),
    }
}

async fn review(State(shared): S, headers: HeaderMap, body: String) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (delay, review) = {
        let mut behaviour = shared.behaviour.lock().unwrap();
        behaviour.last_review = Some((auth, serde_json::from_str(&body).unwrap_or(Value::Null)));
        (behaviour.delay, behaviour.review.clone())
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    match review {
        Some((status, answer)) => (status, axum::Json(answer)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `/redirect/n` redirects to `/redirect/n-1`, and `/redirect/0` to `/keys`.
async fn redirect(State(shared): S, Path(n): Path<u32>) -> Response {
    shared.other_hits.fetch_add(1, Ordering::SeqCst);
    let target = match n {
        0 => "/keys".to_owned(),
        n => format!("/redirect/{}", n - 1),
    };
    (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
}

async fn other(State(shared): S) -> StatusCode {
    shared.other_hits.fetch_add(1, Ordering::SeqCst);
    StatusCode::NOT_FOUND
}

/// A raw TCP server answering every connection with `response` verbatim (for answers axum
/// would refuse to produce). Returns its base URL; the task ends with the runtime.
pub async fn raw_server(response: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let response = Arc::new(response);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(&response).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    base
}
