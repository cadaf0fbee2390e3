//! The test kit's fake cluster: a loopback issuer (OIDC discovery and JWKS) and Kubernetes
//! TokenReview endpoint that can be told how to misbehave: error statuses, hanging, dripping,
//! oversized or compressed bodies, redirects, lying discovery documents. Further issuers can be
//! published on the same listener under path prefixes (`{url}/{name}`), each with its own key
//! set, which the test may change at any time (key rotation). It records every request it
//! receives, so tests can prove that an attack caused no (or exactly one) outbound request.
//!
//! Raw HTTP/1.1 over tokio TCP, one request per connection: full control of every byte.

#![allow(dead_code, reason = "each test file uses part of these helpers")]

use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
pub const KEYS_PATH: &str = "/keys";
pub const REVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

/// How one endpoint answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The well-formed answer (discovery document, key set, or an authenticated review).
    Normal,
    /// This status with a small JSON body.
    Status(u16),
    /// Nothing at all for a minute.
    Hang,
    /// Announces a normal-sized body, then sends one byte every 200 ms.
    SlowDrip,
    /// A 1 MiB body announced by `Content-Length`.
    Oversized,
    /// A 1 MiB body sent chunked, without `Content-Length`.
    OversizedChunked,
    /// These bytes with `Content-Encoding: gzip`.
    Gzip(Vec<u8>),
    /// `302 Found` to this location.
    Redirect(String),
    /// This JSON document with status 200 (or 201 for reviews).
    Json(Value),
}

struct Shared {
    url: String,
    jwks: Mutex<Value>,
    /// Issuers published under `/{name}`: their key sets.
    named: Mutex<HashMap<String, Value>>,
    /// Every path requested, in order.
    requests: Mutex<Vec<String>>,
    discovery: Mutex<Reply>,
    keys: Mutex<Reply>,
    review: Mutex<Reply>,
    discovery_hits: AtomicUsize,
    keys_hits: AtomicUsize,
    review_hits: AtomicUsize,
    other_hits: AtomicUsize,
    connections: AtomicUsize,
}

/// The double; its task ends with the test's runtime.
#[derive(Clone)]
pub struct IssuerDouble {
    shared: Arc<Shared>,
}

impl IssuerDouble {
    /// Serves `jwks` (discovery, keys and reviews answer normally) on 127.0.0.1:0.
    pub async fn start(jwks: Value) -> IssuerDouble {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            url,
            jwks: Mutex::new(jwks),
            named: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            discovery: Mutex::new(Reply::Normal),
            keys: Mutex::new(Reply::Normal),
            review: Mutex::new(Reply::Normal),
            discovery_hits: AtomicUsize::new(0),
            keys_hits: AtomicUsize::new(0),
            review_hits: AtomicUsize::new(0),
            other_hits: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
        });
        let serving = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                serving.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(handle(serving.clone(), stream));
            }
        });
        IssuerDouble { shared }
    }

    /// The issuer URL (also the API server URL).
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// Publishes (or replaces) `jwks` as issuer `name`, served well under `{url}/{name}`: its
    /// issuer URL.
    pub fn publish(&self, name: &str, jwks: Value) -> String {
        self.shared
            .named
            .lock()
            .unwrap()
            .insert(name.to_owned(), jwks);
        format!("{}/{name}", self.shared.url)
    }

    /// Every path requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn discovery(&self, reply: Reply) {
        *self.shared.discovery.lock().unwrap() = reply;
    }

    pub fn keys(&self, reply: Reply) {
        *self.shared.keys.lock().unwrap() = reply;
    }

    pub fn review(&self, reply: Reply) {
        *self.shared.review.lock().unwrap() = reply;
    }

    /// Requests received: (discovery, keys).
    pub fn fetches(&self) -> (usize, usize) {
        (
            self.shared.discovery_hits.load(Ordering::SeqCst),
            self.shared.keys_hits.load(Ordering::SeqCst),
        )
    }

    pub fn reviews(&self) -> usize {
        self.shared.review_hits.load(Ordering::SeqCst)
    }

    /// TCP connections accepted (TLS attempts included, which never become requests).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Every request received, whatever its path.
    pub fn total(&self) -> usize {
        let (d, k) = self.fetches();
        d + k + self.reviews() + self.shared.other_hits.load(Ordering::SeqCst)
    }
}

/// The method, path and body of one request (headers skipped).
async fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if data.len() > 64 << 10 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let path = head.split_whitespace().nth(1)?.to_owned();
    let body = String::from_utf8_lossy(&data[head_end..]).to_string();
    Some((path, body))
}

fn response(status: u16, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

async fn handle(shared: Arc<Shared>, mut stream: TcpStream) {
    let Some((path, body)) = read_request(&mut stream).await else {
        return;
    };
    shared.requests.lock().unwrap().push(path.clone());
    if let Some(answer) = named(&shared, &path) {
        let _ = stream.write_all(&answer).await;
        return;
    }
    let (reply, normal, ok) = match path.as_str() {
        DISCOVERY_PATH => {
            shared.discovery_hits.fetch_add(1, Ordering::SeqCst);
            let doc =
                json!({"issuer": shared.url, "jwks_uri": format!("{}{KEYS_PATH}", shared.url)});
            (shared.discovery.lock().unwrap().clone(), doc, 200)
        }
        KEYS_PATH => {
            shared.keys_hits.fetch_add(1, Ordering::SeqCst);
            let jwks = shared.jwks.lock().unwrap().clone();
            (shared.keys.lock().unwrap().clone(), jwks, 200)
        }
        REVIEW_PATH => {
            shared.review_hits.fetch_add(1, Ordering::SeqCst);
            (
                shared.review.lock().unwrap().clone(),
                authenticated(&body),
                201,
            )
        }
        _ => {
            shared.other_hits.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(&response(404, "", b"{}")).await;
            return;
        }
    };
    let json = "Content-Type: application/json\r\n";
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(1 << 20));
    let bytes = match reply {
        Reply::Normal => response(ok, json, normal.to_string().as_bytes()),
        Reply::Json(doc) => response(ok, json, doc.to_string().as_bytes()),
        Reply::Status(code) => response(code, json, br#"{"error":"double"}"#),
        Reply::Redirect(to) => response(302, &format!("Location: {to}\r\n"), b""),
        Reply::Gzip(data) => response(ok, &format!("{json}Content-Encoding: gzip\r\n"), &data),
        Reply::Oversized => response(ok, json, big.as_bytes()),
        Reply::OversizedChunked => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nConnection: close\r\n{json}Transfer-Encoding: chunked\r\n\r\n"
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for _ in 0..64 {
                let chunk = format!("{:x}\r\n{}\r\n", 16 << 10, " ".repeat(16 << 10));
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
            }
            b"0\r\n\r\n".to_vec()
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
        Reply::SlowDrip => {
            let doc = normal.to_string();
            let head = format!(
                "HTTP/1.1 {ok} OK\r\nConnection: close\r\n{json}Content-Length: {}\r\n\r\n",
                doc.len()
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for byte in doc.bytes() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if stream.write_all(&[byte]).await.is_err() {
                    return;
                }
            }
            return;
        }
    };
    let _ = stream.write_all(&bytes).await;
    let _ = stream.shutdown().await;
}

/// The answer of an issuer published under a path prefix, if `path` is one of its two.
fn named(shared: &Shared, path: &str) -> Option<Vec<u8>> {
    let json = "Content-Type: application/json\r\n";
    let sets = shared.named.lock().unwrap();
    let rest = path.strip_prefix('/')?;
    if let Some(name) = rest.strip_suffix(DISCOVERY_PATH)
        && sets.contains_key(name)
    {
        let issuer = format!("{}/{name}", shared.url);
        let doc = json!({ "issuer": issuer, "jwks_uri": format!("{issuer}{KEYS_PATH}") });
        return Some(response(200, json, doc.to_string().as_bytes()));
    }
    let set = sets.get(rest.strip_suffix(KEYS_PATH)?)?;
    Some(response(200, json, set.to_string().as_bytes()))
}

/// An authenticated TokenReview answer vouching for what the token says.
fn authenticated(request: &str) -> Value {
    let request: Value = serde_json::from_str(request).unwrap_or(Value::Null);
    let token = request["spec"]["token"].as_str().unwrap_or_default();
    let claims = crate::jwt::try_payload(token).unwrap_or(Value::Null);
    let k8s = &claims["kubernetes.io"];
    let namespace = k8s["namespace"].as_str().unwrap_or_default();
    let account = k8s["serviceaccount"]["name"].as_str().unwrap_or_default();
    json!({
        "kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null}, "spec": request["spec"],
        "status": {
            "authenticated": true,
            "user": {
                "username": format!("system:serviceaccount:{namespace}:{account}"),
                "uid": k8s["serviceaccount"]["uid"],
                "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{namespace}"), "system:authenticated"],
                "extra": {
                    "authentication.kubernetes.io/pod-name": [k8s["pod"]["name"]],
                    "authentication.kubernetes.io/pod-uid": [k8s["pod"]["uid"]],
                },
            },
            "audiences": request["spec"]["audiences"],
        },
    })
}
