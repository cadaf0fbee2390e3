//! A policy swapped while the server is busy: the upload compiles off the request path, the
//! identity update takes effect at once, and no request in flight fails.

use tollgate_tests::fixtures;
use tollgate_tests::server as server_support;

use serde_json::json;
use server_support::{DevIssuer, Server, TempDir, register_issuer};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const LOOPS: usize = 3;
/// Bounds on the background load, whatever happens in the foreground.
const MAX_REQUESTS_PER_LOOP: usize = 2000;
const MAX_LOAD_TIME: Duration = Duration::from_secs(120);
const IDENTITY: &str = "tenants/acme/identities/deployer";

/// Waits until `counter` reaches `target` (or the load's time bound passes).
async fn wait_for(counter: &AtomicUsize, target: usize) {
    let started = Instant::now();
    while counter.load(Ordering::SeqCst) < target && started.elapsed() < MAX_LOAD_TIME {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(counter.load(Ordering::SeqCst) >= target, "the load stalled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_uploaded_under_load_takes_effect_without_failed_requests() {
    let dir = TempDir::new("reload");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    // This test is about reloading under load, not about rate limits (attack_http.rs).
    let server = Arc::new(Server::start_with(
        &dir.path().join("data"),
        &[
            "--allow-insecure-issuers",
            "--tenant-rate",
            "0",
            "--identity-rate",
            "0",
        ],
    ));
    let (key, audience) = server.create_tenant("acme").await;
    register_issuer(&server, "acme", &key, &issuer.url).await;
    let rules = json!({
        "issuer": "dev",
        "config": {"namespaces": ["team-a-*"], "grant": {"scopes": ["registry.pull"]}},
        "scopes": ["registry.pull", "team-a.read"],
    });
    let (status, body) = server.put_identity("acme", "deployer", &key, rules).await;
    assert_eq!(status, 200, "{body}");
    let token = Arc::new(issuer.token(&audience, "team-a-prod", "builder", &[]));
    let module = fixtures::module("team-scopes");

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let loops: Vec<_> = (0..LOOPS)
        .map(|_| {
            let (server, token) = (server.clone(), token.clone());
            let (stop, done) = (stop.clone(), done.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let mut seen = Vec::new();
                let mut saw_new = false;
                // Each loop keeps going after `stop` until it has run the new policy itself:
                // a loop the scheduler starved must still prove the switch.
                while (!stop.load(Ordering::SeqCst) || !saw_new)
                    && seen.len() < MAX_REQUESTS_PER_LOOP
                    && started.elapsed() < MAX_LOAD_TIME
                {
                    let (status, body) = server.exchange(IDENTITY, &token, &[]).await;
                    saw_new |= body["scope"] == "team-a.read";
                    seen.push((
                        status,
                        body["scope"].as_str().unwrap_or("").to_owned(),
                        body,
                    ));
                    done.fetch_add(1, Ordering::SeqCst);
                }
                seen
            })
        })
        .collect();

    wait_for(&done, 30).await;
    let before_upload = done.load(Ordering::SeqCst);
    let (status, body) = server
        .upload_policy("acme", &key, module, "application/wasm")
        .await;
    assert_eq!(status, 201, "{body}");
    let during_upload = done.load(Ordering::SeqCst);
    let team = json!({
        "issuer": "dev", "policy": body["digest"],
        "config": {"teams": [{"prefix": "team-a-", "team": "team-a", "scopes": ["team-a.read"]}]},
        "scopes": ["registry.pull", "team-a.read"],
    });
    let (status, body) = server.put_identity("acme", "deployer", &key, team).await;
    assert_eq!(status, 200, "{body}");

    // The next exchange, here or in the background, runs the new policy.
    let (status, body) = server.exchange(IDENTITY, &token, &[]).await;
    assert_eq!(
        (status, &body["scope"]),
        (200, &json!("team-a.read")),
        "{body}"
    );
    let after_put = done.load(Ordering::SeqCst);
    wait_for(&done, after_put + 30).await;
    stop.store(true, Ordering::SeqCst);

    let mut total = 0;
    for handle in loops {
        let seen = handle.await.unwrap();
        total += seen.len();
        for (status, _, body) in &seen {
            assert_eq!(
                *status,
                200,
                "a request failed under load: {body}\n{}",
                server.log()
            );
        }
        // Each loop is sequential: old grants, then new ones, never back.
        let scopes: Vec<&str> = seen.iter().map(|(_, scope, _)| scope.as_str()).collect();
        let switch = scopes
            .iter()
            .position(|s| *s == "team-a.read")
            .expect("the new policy was seen");
        assert!(switch > 0, "the old policy answered first: {scopes:?}");
        assert!(
            scopes[..switch].iter().all(|s| *s == "registry.pull"),
            "{scopes:?}"
        );
        assert!(
            scopes[switch..].iter().all(|s| *s == "team-a.read"),
            "{scopes:?}"
        );
    }
    assert!(total >= after_put + 30, "{total}");
    // Compiling the upload did not stop the exchanges.
    assert!(
        during_upload > before_upload,
        "{before_upload} {during_upload}"
    );
    eprintln!(
        "requests: {before_upload} before the upload, {during_upload} after it, {total} in all"
    );
    assert_eq!(
        Arc::strong_count(&server),
        1,
        "the background tasks released the server"
    );
}
