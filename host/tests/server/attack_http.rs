//! HTTP-level attacks against the server: oversized bodies (announced and chunked), repeated
//! credentials, oversized heads, and the framework's own refusals. Raw sockets speak HTTP/1.1
//! by hand where a well-behaved client cannot misbehave. Slow clients, connection caps and
//! floods counted in the metrics need a process of their own: `process.rs`.

use tollgate_tests::server as server_support;

use reqwest::Method;
use serde_json::Value;
use server_support::{DevIssuer, Server, TempDir, oauth_error, quickstart};
use std::io::Write;
use std::time::Instant;
use tollgate_tests::raw::{PROMPT, connect, raw_request, read_response};

/// The body limit is enforced from the announced length: the server answers 413 while the
/// client has sent only a few bytes of a 100 MB body, on every exchange shape and the admin API.
#[tokio::test]
async fn an_announced_oversized_body_is_refused_before_it_is_read() {
    let dir = TempDir::new("http-announced");
    let server = Server::start(&dir.path().join("data"));
    let cases = [
        (
            "/oauth2/token",
            "application/x-www-form-urlencoded",
            "grant_type=",
        ),
        (
            "/api/v1/auth/kubernetes-auth/login",
            "application/json",
            "{\"jwt\":",
        ),
        (
            "/sts/exchange?identity=x",
            "application/x-www-form-urlencoded",
            "x",
        ),
        ("/v1/tenants/acme/policies", "application/wasm", "\0asm"),
    ];
    for (path, content_type, start) in cases {
        let url = server.url.clone();
        let started = Instant::now();
        let (status, body) = tokio::task::spawn_blocking({
            let mut stream = connect(&server);
            move || {
                let head = format!(
                    "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nAuthorization: Bearer x\r\nContent-Length: 100000000\r\n\r\n{start}",
                    url.strip_prefix("http://").unwrap()
                );
                stream.write_all(head.as_bytes()).unwrap();
                read_response(&mut stream)
            }
        })
        .await
        .unwrap();
        assert!(
            started.elapsed() < PROMPT,
            "{path}: answered only after {:?}",
            started.elapsed()
        );
        assert_eq!(status, 413, "{path}: {body}");
        if path.starts_with("/v1/") {
            assert_eq!(body["error"], "payload too large", "{path}: {body}");
        } else {
            assert_eq!(body["error"], "invalid_request", "{path}: {body}");
            assert_eq!(body["error_description"], "the request body is too large");
        }
    }
    // Still serving.
    let (status, _) = Server::send(server.at(Method::GET, "/healthz")).await;
    assert_eq!(status, 200);
}

/// A chunked body never announces its length: it is cut at the limit, the caller gets 413 and
/// the connection is closed, so the sender cannot keep pushing data at the server.
#[tokio::test]
async fn a_chunked_body_over_the_limit_is_cut_off() {
    let dir = TempDir::new("http-chunked");
    let server = Server::start(&dir.path().join("data"));
    let mut stream = connect(&server);
    let head = "POST /oauth2/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    // Far more than any socket buffer: the writes can only all succeed if the server reads on.
    const CAP: usize = 512 << 20;
    let pushing = std::thread::spawn(move || {
        let chunk = format!("4000\r\n{}\r\n", "a".repeat(0x4000));
        let mut sent = 0;
        while sent < CAP {
            if writer.write_all(chunk.as_bytes()).is_err() {
                return (sent, true);
            }
            sent += 0x4000;
        }
        (sent, false)
    });
    let (status, body) = tokio::task::spawn_blocking(move || read_response(&mut stream))
        .await
        .unwrap();
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error_description"], "the request body is too large");
    let (sent, cut) = tokio::task::spawn_blocking(move || pushing.join().unwrap())
        .await
        .unwrap();
    assert!(cut, "the server kept reading: {sent} bytes accepted");
    assert!(sent < CAP, "{sent}");
    let (status, _) = Server::send(server.at(Method::GET, "/healthz")).await;
    assert_eq!(status, 200);
}

/// Asserts a JSON error answer of the exchange endpoints (RFC 6749: `error` and a generic
/// `error_description`, nothing else).
fn assert_oauth_json(status: u16, body: &Value, expected: u16, case: &str) {
    assert_eq!(status, expected, "{case}: {body}");
    assert!(body["error"].is_string(), "{case}: {body}");
    assert!(body["error_description"].is_string(), "{case}: {body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "{case}: {body}");
}

/// Issue 11, item 1: with two `Authorization` headers a proxy reading the last one would see
/// another credential than this server reading the first. Every order of a good and a bad
/// token, and the good one twice, is refused at `/sts/exchange`, and two keys at the admin API;
/// the good token alone is still exchanged.
#[tokio::test]
async fn a_request_with_two_authorization_headers_is_refused() {
    let dir = TempDir::new("http-two-credentials");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    let good = issuer.token(&acme.audience, "prod", "deployer", &[]);
    let bad = issuer.token(&acme.audience, "kube-system", "admin", &[]);
    let path = format!("/sts/exchange?identity={}", acme.identity("deployer"));
    let exchange = |first: &str, second: Option<&str>| {
        let mut head =
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {first}\r\n");
        if let Some(second) = second {
            head.push_str(&format!("Authorization: Bearer {second}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        raw_request(&server, &head, b"")
    };
    let (status, body) = exchange(&good, None);
    assert_eq!(status, 200, "{body}");
    for (case, first, second) in [
        ("good then bad", &good, &bad),
        ("bad then good", &bad, &good),
        ("good twice", &good, &good),
    ] {
        let (status, body) = exchange(first, Some(second));
        let description = oauth_error(status, &body, "invalid_request");
        assert_eq!(
            description, "the request carries more than one credential",
            "{case}"
        );
    }
    let head = format!(
        "GET /v1/tenants/acme/identities HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Authorization: Bearer {}\r\nConnection: close\r\n\r\n",
        acme.key,
        server_support::OPERATOR_KEY
    );
    let (status, body) = raw_request(&server, &head, b"");
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].is_string(), "{body}");
}

/// Issue 11, item 2: refusals the framework makes itself — a repeated query parameter, a
/// method a route lacks, a 1 MB header (hyper's own limit would answer an empty 431), more
/// headers than hyper takes, an oversized header on a kept-alive connection — are the
/// endpoint's JSON error, on the exchange endpoints and on the admin API.
#[tokio::test]
async fn framework_refusals_are_json_errors() {
    let dir = TempDir::new("http-framework-json");
    let server = Server::start(&dir.path().join("data"));
    let (status, body) = raw_request(
        &server,
        "GET /sts/exchange?identity=a&identity=b HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer t\r\nConnection: close\r\n\r\n",
        b"",
    );
    assert_oauth_json(status, &body, 400, "repeated query parameter");
    assert!(
        !body.to_string().contains("deserialize"),
        "framework text leaks: {body}"
    );
    for (method, path) in [("GET", "/oauth2/token"), ("DELETE", "/sts/exchange")] {
        let head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (status, body) = raw_request(&server, &head, b"");
        assert_oauth_json(status, &body, 405, &format!("{method} {path}"));
    }
    let huge = "a".repeat(1 << 20);
    for path in ["/sts/exchange?identity=x", "/oauth2/token"] {
        let head =
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {huge}\r\n\r\n");
        let (status, body) = raw_request(&server, &head, b"");
        assert_oauth_json(status, &body, 431, &format!("1 MB header at {path}"));
    }
    let many: String = (0..150).map(|i| format!("X-Pad-{i}: y\r\n")).collect();
    let head = format!("POST /oauth2/token HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let (status, body) = raw_request(&server, &head, b"");
    assert_oauth_json(status, &body, 431, "150 headers");
    // A kept-alive connection: the first request is fine, the second's header is too large.
    let mut stream = connect(&server);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (status, _) = read_response(&mut stream);
    assert_eq!(status, 200);
    let big = "a".repeat(100 << 10);
    let head = format!("POST /oauth2/token HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let (status, body) = read_response(&mut stream);
    assert_oauth_json(status, &body, 431, "second request's header");
    // The admin API and unknown paths answer in the admin shape.
    for (head, expected) in [
        (
            format!("GET /v1/tenants HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n"),
            431,
        ),
        (
            "DELETE /v1/tenants HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
            405,
        ),
        (
            "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
            404,
        ),
    ] {
        let (status, body) = raw_request(&server, &head, b"");
        assert_eq!(status, expected, "{body}");
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{body}"
        );
    }
}
