//! The safe fetcher against live local servers: redirects, caps, timeouts, address vetting.

use super::server::{TestServer, raw_server};
use super::*;
use crate::verify::address::UrlError;
use crate::verify::fetch::{FetchSettings, SafeFetcher};
use std::time::Duration;

fn fetcher(allow_insecure: bool) -> SafeFetcher {
    SafeFetcher::new(FetchSettings {
        allow_insecure,
        timeout: Duration::from_millis(500),
        max_bytes: 100 * 1024,
    })
    .unwrap()
}

#[tokio::test]
async fn redirects_are_followed_at_most_three_times() {
    let server = TestServer::start(json!({ "keys": [] })).await;
    let fetcher = fetcher(true);
    let body = fetcher
        .get(&format!("{}/redirect/2", server.base()))
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({ "keys": [] })
    );
    assert_eq!(
        fetcher.get(&format!("{}/redirect/3", server.base())).await,
        Err(FetchError::TooManyRedirects)
    );
}

#[tokio::test]
async fn redirect_targets_are_vetted() {
    for location in [
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433/",
        "http://user@127.0.0.1/",
        "file:///etc/passwd",
    ] {
        let response =
            format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
        let base = raw_server(response.into_bytes()).await;
        // Even the insecure mode (which allows loopback) refuses these forms, except the
        // metadata address, which only the strict mode refuses: check it through the classifier.
        let result = fetcher(true).get(&format!("{base}/")).await;
        if location.contains("169.254") {
            assert!(crate::verify::address::check_url(location, false).is_err());
            continue;
        }
        assert!(
            matches!(result, Err(FetchError::Url(_))),
            "{location}: {result:?}"
        );
    }
}

#[tokio::test]
async fn body_cap_holds_without_and_against_content_length() {
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
    let mut chunked =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..4 {
        chunked.extend_from_slice(chunk.as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let base = raw_server(chunked).await;
    assert_eq!(
        fetcher(true).get(&format!("{base}/")).await,
        Err(FetchError::TooLarge(100 * 1024))
    );

    let announced = b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n{}".to_vec();
    let base = raw_server(announced).await;
    assert_eq!(
        fetcher(true).get(&format!("{base}/")).await,
        Err(FetchError::TooLarge(100 * 1024))
    );
}

#[tokio::test]
async fn compressed_bodies_are_not_decoded() {
    // A gzip body would expand; the fetcher neither asks for nor decodes compression.
    let gzip_magic = b"\x1f\x8b\x08\x00\x00\x00\x00\x00";
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gzip_magic.len()
    )
    .into_bytes();
    response.extend_from_slice(gzip_magic);
    let base = raw_server(response).await;
    assert_eq!(
        fetcher(true).get(&format!("{base}/")).await.unwrap(),
        gzip_magic.to_vec()
    );
}

#[tokio::test]
async fn slow_servers_time_out() {
    let key = TestKey::rsa("k", Algorithm::RS256);
    let server = TestServer::start(json!({ "keys": [key.jwk] })).await;
    server.set(|b| b.delay = Some(Duration::from_secs(3)));
    let started = std::time::Instant::now();
    assert_eq!(
        fetcher(true).get(&format!("{}/keys", server.base())).await,
        Err(FetchError::Timeout)
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn strict_mode_refuses_http_and_loopback_names_and_literals() {
    let server = TestServer::start(json!({ "keys": [] })).await;
    let strict = fetcher(false);
    let port = server.base().rsplit(':').next().unwrap().to_owned();
    assert!(matches!(
        strict.get(server.base()).await,
        Err(FetchError::Url(UrlError::Scheme(_)))
    ));
    assert!(matches!(
        strict.get(&format!("https://127.0.0.1:{port}/keys")).await,
        Err(FetchError::Url(UrlError::ForbiddenAddress { .. }))
    ));
    assert!(matches!(
        strict
            .get(&format!("https://[::ffff:127.0.0.1]:{port}/keys"))
            .await,
        Err(FetchError::Url(UrlError::ForbiddenAddress { .. }))
    ));
    assert_eq!(
        strict.get(&format!("https://localhost:{port}/keys")).await,
        Err(FetchError::Url(UrlError::Localhost))
    );
    // A name that resolves to loopback (this machine's own name, when it does) is refused
    // after resolution, before any connection.
    if let Ok(name) = std::fs::read_to_string("/etc/hostname") {
        let name = name.trim();
        let loopback = tokio::net::lookup_host((name, 0))
            .await
            .map(|mut addrs| addrs.any(|a| a.ip().is_loopback()))
            .unwrap_or(false);
        if loopback && !name.is_empty() {
            let result = strict.get(&format!("https://{name}:{port}/keys")).await;
            assert!(
                matches!(
                    result,
                    Err(FetchError::Url(UrlError::ForbiddenAddress { .. }))
                ),
                "{result:?}"
            );
        }
    }
    assert_eq!(server.total_hits(), 0);
}

#[tokio::test]
async fn resolver_vets_every_answer() {
    use reqwest::dns::Resolve;
    let strict = crate::verify::fetch::tests_support::resolver(false);
    let result = strict.resolve("localhost".parse().unwrap()).await;
    let err = result.err().expect("loopback answers are refused");
    assert!(err.to_string().contains("not allowed"), "{err}");
    let lax = crate::verify::fetch::tests_support::resolver(true);
    assert!(lax.resolve("localhost".parse().unwrap()).await.is_ok());
}
