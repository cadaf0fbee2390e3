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
