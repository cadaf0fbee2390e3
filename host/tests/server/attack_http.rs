//! HTTP-level attacks against the real server: oversized bodies (announced and chunked),
//! slow request heads (slowloris), and request floods, per tenant, per named victim and per
//! client. Raw sockets speak HTTP/1.1 by hand where a well-behaved client cannot misbehave.

#[path = "support/server.rs"]
mod server_support;

use reqwest::Method;
use serde_json::Value;
use server_support::{DevIssuer, GENERIC_DENIAL, Server, TempDir, oauth_error, quickstart};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Generous bound for anything that should happen "at once" on a loaded machine.
const PROMPT: Duration = Duration::from_secs(20);

fn connect(server: &Server) -> TcpStream {
    let address = server.url.strip_prefix("http://").unwrap();
    let stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(PROMPT)).unwrap();
    stream
}

/// Reads until the peer closes (or `PROMPT` passes): what arrived, and whether it closed.
fn read_to_close(stream: &mut TcpStream) -> (String, bool) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&received).into_owned(), true),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&received).into_owned(), true);
            }
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), false),
        }
    }
}

/// Reads one response head and its JSON body (by Content-Length).
fn read_response(stream: &mut TcpStream) -> (u16, Value) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                let body =
                    serde_json::from_str(&body[..length]).unwrap_or(Value::String(body.into()));
                return (status, body);
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => panic!("connection closed before a full response: {text:?}"),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) => panic!("no response in time ({e}): {text:?}"),
        }
    }
}

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

/// Slowloris: a request head dripped a byte at a time never completes within the header
/// timeout, so the server closes the connection; a normal request on another connection is
/// served meanwhile. Without the timeout the drip would hold the connection for as long as the
/// client liked.
#[tokio::test]
async fn a_slow_request_head_is_cut_off_while_others_are_served() {
    let dir = TempDir::new("http-slowloris");
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--allow-insecure-issuers", "--header-timeout-seconds", "2"],
    );
    let mut dripping = connect(&server);
    let mut silent = connect(&server);
    silent
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: loc")
        .unwrap();
    let started = Instant::now();
    let drip = std::thread::spawn(move || {
        let head = b"POST /oauth2/token HTTP/1.1\r\nHost: localhost\r\nX-Padding: ";
        dripping.write_all(head).unwrap();
        // A byte every 200 ms, for up to a minute: far longer than the timeout.
        while started.elapsed() < Duration::from_secs(60) {
            if dripping.write_all(b"a").is_err() {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(200));
            let mut probe = [0u8; 1024];
            dripping.set_nonblocking(true).unwrap();
            let read = dripping.read(&mut probe);
            dripping.set_nonblocking(false).unwrap();
            match read {
                Ok(0) => return started.elapsed(),
                Err(e) if e.kind() != ErrorKind::WouldBlock => return started.elapsed(),
                _ => {}
            }
        }
        started.elapsed()
    });
    // Meanwhile another connection is served.
    for _ in 0..3 {
        let (status, _) = Server::send(server.at(Method::GET, "/healthz")).await;
        assert_eq!(status, 200);
    }
    let cut_after = tokio::task::spawn_blocking(move || drip.join().unwrap())
        .await
        .unwrap();
    assert!(
        cut_after < PROMPT,
        "a dripping head held its connection for {cut_after:?}"
    );
    assert!(
        cut_after >= Duration::from_secs(1),
        "cut too early: {cut_after:?}"
    );
    // The connection that sent half a request line and went silent is closed too.
    let (received, closed) = tokio::task::spawn_blocking(move || read_to_close(&mut silent))
        .await
        .unwrap();
    assert!(
        closed,
        "a silent half request kept its connection: {received:?}"
    );
    assert!(!received.contains("200 OK"), "{received}");
}

/// SIGTERM stops the server cleanly even while connections sit open mid-head, and the
/// shutdown does not wait for them beyond the header timeout.
#[cfg(unix)]
#[tokio::test]
async fn shutdown_is_graceful_with_stalled_connections_open() {
    let dir = TempDir::new("http-shutdown");
    let mut server = Server::start_with(
        &dir.path().join("data"),
        &["--allow-insecure-issuers", "--header-timeout-seconds", "5"],
    );
    let mut stalled = connect(&server);
    stalled
        .write_all(b"POST /oauth2/token HTTP/1.1\r\n")
        .unwrap();
    let (status, _) = Server::send(server.at(Method::GET, "/healthz")).await;
    assert_eq!(status, 200);
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = server
        .wait_exit(Duration::from_secs(40))
        .unwrap_or_else(|| panic!("server did not stop:\n{}", server.log()));
    assert!(status.success(), "{status:?}\n{}", server.log());
    assert!(
        server.log().contains("tollgate stopped"),
        "{}",
        server.log()
    );
}

/// An exchange with the response's Retry-After header: (status, Retry-After, body).
async fn exchange_with_headers(
    server: &Server,
    identity: &str,
    token: &str,
) -> (u16, Option<u64>, Value) {
    exchange_at(
        server.http.clone(),
        server.url.clone(),
        identity.into(),
        token.into(),
    )
    .await
}

/// [`exchange_with_headers`] with owned arguments, for spawned tasks.
async fn exchange_at(
    http: reqwest::Client,
    url: String,
    identity: String,
    token: String,
) -> (u16, Option<u64>, Value) {
    let form = [
        ("grant_type", server_support::TOKEN_EXCHANGE),
        ("subject_token", token.as_str()),
        ("subject_token_type", server_support::JWT_TYPE),
        ("audience", identity.as_str()),
    ];
    let response = http
        .post(format!("{url}/oauth2/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let body = response.json().await.unwrap();
    (status, retry_after, body)
}

/// The 429 is the same RFC 6749 error whichever limit was hit, with a Retry-After, and names
/// no tenant, identity or limit.
fn assert_rate_limited(status: u16, retry_after: Option<u64>, body: &Value) {
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    let seconds = retry_after.expect("a 429 says when to retry");
    assert!((1..=3600).contains(&seconds), "{seconds}");
    let text = body.to_string();
    for secret in ["acme", "bravo", "deployer", "tenant", "identity", "client"] {
        assert!(!text.contains(secret), "`{secret}` leaks in {text}");
    }
}

/// `tollgate_exchanges_total{outcome="rate_limited"}` from /metrics.
async fn rate_limited_count(server: &Server) -> u64 {
    let (status, body) = Server::send(server.at(Method::GET, "/metrics")).await;
    assert_eq!(status, 200);
    let text = body.as_str().unwrap().to_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("tollgate_exchanges_total{outcome=\"rate_limited\"} "))
        .unwrap_or_else(|| panic!("no rate_limited outcome in\n{text}"))
        .parse()
        .unwrap()
}

/// Tenant A floods with valid tokens: past its burst it gets 429s (counted in /metrics),
/// while tenant B's exchanges in the same window all succeed.
#[tokio::test]
async fn a_tenant_flood_is_limited_without_touching_another_tenant() {
    let dir = TempDir::new("http-flood");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let flags = [
        "--allow-insecure-issuers",
        "--tenant-rate",
        "1",
        "--tenant-burst",
        "10",
        "--identity-rate",
        "1",
        "--identity-burst",
        "10",
    ];
    let server = Server::start_with(&dir.path().join("data"), &flags);
    let acme = quickstart(&server, &issuer, "acme").await;
    let bravo = quickstart(&server, &issuer, "bravo").await;
    let acme_token = issuer.token(&acme.audience, "prod", "deployer", &[]);
    let bravo_token = issuer.token(&bravo.audience, "prod", "deployer", &[]);
    let before = rate_limited_count(&server).await;

    let acme_identity = acme.identity("deployer");
    // Waves of concurrent requests: within a wave the burst may overshoot by what is in flight
    // (see `api::ratelimit`), after it the tenant is in debt and refused.
    let flood = async {
        let mut results = Vec::new();
        for _ in 0..4 {
            results.extend(concurrently(20, &server, &acme_identity, &acme_token).await);
        }
        results
    };
    let bravo_identity = bravo.identity("deployer");
    let bravo_runs = async {
        let mut statuses = Vec::new();
        for _ in 0..8 {
            let (status, _, body) =
                exchange_with_headers(&server, &bravo_identity, &bravo_token).await;
            statuses.push((status, body));
        }
        statuses
    };
    let (flooded, bravo_results) = tokio::join!(flood, bravo_runs);

    for (status, body) in &bravo_results {
        assert_eq!(
            *status, 200,
            "tenant B was refused during A's flood: {body}"
        );
    }
    let limited: Vec<_> = flooded.iter().filter(|(s, _, _)| *s == 429).collect();
    let allowed = flooded.iter().filter(|(s, _, _)| *s == 200).count();
    assert!(allowed >= 1, "{flooded:?}");
    assert!(limited.len() >= 40, "only {} of 80 limited", limited.len());
    assert_eq!(allowed + limited.len(), 80, "{flooded:?}");
    for (status, retry_after, body) in &limited {
        assert_rate_limited(*status, *retry_after, body);
    }
    // Every endpoint shape shares the budget.
    let (status, body) = server.chainguard(&acme_identity, &acme_token, None).await;
    assert_eq!(status, 429, "{body}");
    let (status, body) = server.infisical(&acme.uid, &acme_token).await;
    assert_eq!(status, 429, "{body}");
    let after = rate_limited_count(&server).await;
    assert!(
        after >= before + limited.len() as u64 + 2,
        "{before} -> {after}"
    );
}

/// Unverified requests cannot spend another tenant's budget: a flood of garbage tokens naming
/// B's identity leaves B's own exchanges untouched (the client-address limit is off here, so
/// nothing but the tenant and identity limits is in play).
#[tokio::test]
async fn garbage_naming_a_victim_does_not_spend_its_budget() {
    let dir = TempDir::new("http-victim");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let flags = [
        "--allow-insecure-issuers",
        "--tenant-rate",
        "0.01",
        "--tenant-burst",
        "5",
        "--identity-rate",
        "0.01",
        "--identity-burst",
        "5",
        "--client-failure-rate",
        "0",
    ];
    let server = Server::start_with(&dir.path().join("data"), &flags);
    let bravo = quickstart(&server, &issuer, "bravo").await;
    let identity = bravo.identity("deployer");
    let forged = issuer.token("https://elsewhere.example", "prod", "deployer", &[]);
    for (status, _, body) in concurrently(40, &server, &identity, &forged).await {
        let description = oauth_error(status, &body, "invalid_request");
        assert_eq!(description, GENERIC_DENIAL, "{body}");
    }
    let token = issuer.token(&bravo.audience, "prod", "deployer", &[]);
    for _ in 0..5 {
        let (status, _, body) = exchange_with_headers(&server, &identity, &token).await;
        assert_eq!(
            status, 200,
            "the victim's budget was spent by garbage: {body}"
        );
    }
    // Its own sixth exchange is over its budget.
    let (status, retry_after, body) = exchange_with_headers(&server, &identity, &token).await;
    assert_rate_limited(status, retry_after, &body);
}

/// A client sending tokens that do not verify is limited by its address: past its burst it
/// gets 429 before any verification work.
#[tokio::test]
async fn a_client_flooding_failures_is_limited() {
    let dir = TempDir::new("http-client-failures");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let flags = [
        "--allow-insecure-issuers",
        "--client-failure-rate",
        "0.01",
        "--client-failure-burst",
        "5",
    ];
    let server = Server::start_with(&dir.path().join("data"), &flags);
    let acme = quickstart(&server, &issuer, "acme").await;
    let identity = acme.identity("deployer");
    let forged = issuer.token("https://elsewhere.example", "prod", "deployer", &[]);
    for _ in 0..5 {
        let (status, _, body) = exchange_with_headers(&server, &identity, &forged).await;
        assert_eq!(
            oauth_error(status, &body, "invalid_request"),
            GENERIC_DENIAL
        );
    }
    for name in [
        identity.as_str(),
        "tenants/nobody/identities/none",
        "no-such-uid",
    ] {
        let (status, retry_after, body) = exchange_with_headers(&server, name, &forged).await;
        assert_rate_limited(status, retry_after, &body);
    }
}

/// `count` identical exchanges, all in flight at once: their results.
async fn concurrently(
    count: usize,
    server: &Server,
    identity: &str,
    token: &str,
) -> Vec<(u16, Option<u64>, Value)> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let (http, url) = (server.http.clone(), server.url.clone());
        tasks.spawn(exchange_at(http, url, identity.into(), token.into()));
    }
    tasks.join_all().await
}

/// A body dripped a byte at a time: the header timeout does not cover it, the request
/// deadline does. The caller gets 408 and the connection is closed.
#[tokio::test]
async fn a_dripped_body_is_cut_by_the_request_deadline() {
    let dir = TempDir::new("http-drip-body");
    let flags = ["--allow-insecure-issuers", "--request-timeout-seconds", "2"];
    let server = Server::start_with(&dir.path().join("data"), &flags);
    let mut stream = connect(&server);
    let head = "POST /oauth2/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let started = Instant::now();
    let drip = std::thread::spawn(move || {
        while started.elapsed() < Duration::from_secs(60) {
            if writer.write_all(b"a").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let (status, body) = tokio::task::spawn_blocking(move || {
        let answer = read_response(&mut stream);
        let (rest, closed) = read_to_close(&mut stream);
        assert!(
            closed,
            "the connection stayed open after the deadline: {rest:?}"
        );
        answer
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(elapsed < PROMPT, "{elapsed:?}");
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    drip.join().unwrap();
}

/// At most `--max-connections` connections are served at once: with both slots held by
/// silent connections a new request waits until the header timeout frees one, then is served.
#[tokio::test]
async fn the_connection_cap_holds_and_slots_are_freed_by_the_header_timeout() {
    let dir = TempDir::new("http-connection-cap");
    let flags = [
        "--allow-insecure-issuers",
        "--max-connections",
        "2",
        "--header-timeout-seconds",
        "3",
    ];
    let server = Server::start_with(&dir.path().join("data"), &flags);
    let mut held = [connect(&server), connect(&server)];
    for stream in &mut held {
        stream.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    }
    // Let the server take both connections before the third arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let (status, _) = Server::send(server.at(Method::GET, "/healthz")).await;
    let waited = started.elapsed();
    assert_eq!(status, 200);
    assert!(
        waited >= Duration::from_millis(1500),
        "served after {waited:?}: the cap of 2 connections was not applied"
    );
    assert!(waited < PROMPT, "{waited:?}");
}

/// Sends a raw HTTP/1.1 request head (and `body`) on a new connection: (status, JSON body).
fn raw_request(server: &Server, head: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = connect(server);
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    read_response(&mut stream)
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
