//! What needs a real `tollgate serve` process: a restart on the same data directory (keys,
//! issuers, identities, uploaded policies and the signing key survive), signals and graceful
//! shutdown, slow clients (slowloris, dripped bodies), the connection cap, floods counted in
//! the process's own metrics, the process's resident memory, and refusing to start.

use reqwest::Method;
use serde_json::{Value, json};
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};
use tollgate_tests::attack::{bind_hostile, last_decision, upload_hostile};
use tollgate_tests::fixtures;
use tollgate_tests::raw::{PROMPT, connect, read_response, read_to_close};
use tollgate_tests::server::{
    self as server_support, DevIssuer, GENERIC_DENIAL, OPERATOR_KEY, Server, TempDir, kids,
    oauth_error, quickstart, register_issuer,
};

/// A fixed audience, so subject tokens stay valid when the server's URL changes.
const AUDIENCE: &str = "tollgate-e2e-restart";

/// Exchanges a fresh token for `identity`; returns the verified claims of the issued token.
async fn exchange(
    server: &Server,
    issuer: &DevIssuer,
    identity: &str,
    ns: &str,
    aud: &str,
) -> Value {
    let token = issuer.token(AUDIENCE, ns, "deployer", &[]);
    let (status, body) = server.exchange(identity, &token, &[]).await;
    assert_eq!(status, 200, "{body}\n{}", server.log());
    server
        .verify(body["access_token"].as_str().unwrap(), aud)
        .await
}

#[tokio::test]
async fn a_restart_keeps_tenants_identities_policies_and_keys() {
    let dir = TempDir::new("restart");
    let data = dir.path().join("data");
    let issuer = DevIssuer::start(&dir.path().join("dev"));

    let first = Server::process(&data);
    let (key, audience) = first.create_tenant("acme").await;
    assert_eq!(audience, first.tenant_audience("acme"));
    register_issuer(&first, "acme", &key, &issuer.url).await;
    let identity = json!({
        "issuer": "dev", "accepted_audiences": [AUDIENCE],
        "config": {"namespaces": ["prod"], "grant": {"scopes": ["registry.pull"]}},
        "scopes": ["registry.pull"], "token_audiences": ["https://registry.example"],
    });
    let (status, body) = first.put_identity("acme", "deployer", &key, identity).await;
    assert_eq!(status, 200, "{body}");
    let uid = body["uid"].as_str().unwrap().to_owned();
    let (status, body) = first
        .upload_policy(
            "acme",
            &key,
            fixtures::module("team-scopes"),
            "application/wasm",
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let digest = body["digest"].as_str().unwrap().to_owned();
    let team = json!({
        "issuer": "dev", "policy": digest, "accepted_audiences": [AUDIENCE],
        "config": {"teams": [{"prefix": "team-a-", "team": "team-a", "scopes": ["team-a.read"]}]},
        "scopes": ["team-a.read"], "token_audiences": ["https://team-a.example"],
    });
    let (status, body) = first.put_identity("acme", "team", &key, team).await;
    assert_eq!(status, 200, "{body}");

    let claims = exchange(
        &first,
        &issuer,
        "tenants/acme/identities/deployer",
        "prod",
        "https://registry.example",
    )
    .await;
    assert_eq!(claims["iss"], first.url.as_str());
    let before = kids(&first.jwks().await);
    assert!(!before.is_empty());
    let first_url = first.url.clone();
    drop(first);

    let second = Server::process(&data);
    assert_ne!(second.url, first_url, "port 0 gives another port");
    assert!(
        !second.log().contains("generated operator API key"),
        "{}",
        second.log()
    );

    // The tenant key, and what it manages, are still there.
    let path = "/v1/tenants/acme/identities/deployer";
    let (status, body) = second.admin(Method::GET, path, Some(&key), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["uid"], uid.as_str(), "the opaque id is stable");
    let (status, body) = second
        .admin(Method::GET, "/v1/tenants", Some(OPERATOR_KEY), None)
        .await;
    assert_eq!(status, 200);
    assert!(body.to_string().contains("acme"), "{body}");
    // The tenant's default audience follows the new URL.
    assert_eq!(
        second.tenant_audience("acme"),
        format!("{}/tenants/acme", second.url)
    );

    // Same signing key, so tokens issued before the restart still verify.
    assert_eq!(kids(&second.jwks().await), before);

    // Exchanges work, by name and by uid, and the issued tokens carry the new URL.
    let claims = exchange(
        &second,
        &issuer,
        "tenants/acme/identities/deployer",
        "prod",
        "https://registry.example",
    )
    .await;
    assert_eq!(claims["iss"], second.url.as_str());
    assert_eq!(claims["scope"], "registry.pull");
    let claims = exchange(&second, &issuer, &uid, "prod", "https://registry.example").await;
    assert_eq!(claims["sub"], "tenants/acme/identities/deployer");

    // The uploaded policy was reloaded from the store and decides again.
    let claims = exchange(
        &second,
        &issuer,
        "tenants/acme/identities/team",
        "team-a-prod",
        "https://team-a.example",
    )
    .await;
    assert_eq!(claims["policy"], digest.as_str());
    assert_eq!(claims["team"], "team-a");
    assert_eq!(claims["scope"], "team-a.read");

    // A token for the old server's tenant audience is not accepted by an identity that
    // pins its own audience.
    let stale = issuer.token(
        &format!("{first_url}/tenants/acme"),
        "prod",
        "deployer",
        &[],
    );
    let (status, _) = second
        .exchange("tenants/acme/identities/deployer", &stale, &[])
        .await;
    assert_eq!(status, 400);

    // The decision log spans both runs.
    let (status, log) = second
        .admin(Method::GET, "/v1/tenants/acme/decisions", Some(&key), None)
        .await;
    assert_eq!(status, 200);
    let allowed = log["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["allowed"] == true)
        .count();
    assert_eq!(allowed, 4, "{log}");
    drop(second);

    // A start loads stored modules from their cached artifacts; without those (another
    // engine configuration, a wiped cache) it compiles them from the stored bytes again.
    let artifacts = data.join("artifacts");
    let cached = std::fs::read_dir(&artifacts).unwrap().count();
    assert!(cached > 0, "the upload left an artifact");
    std::fs::remove_dir_all(&artifacts).unwrap();
    let third = Server::process(&data);
    let claims = exchange(
        &third,
        &issuer,
        "tenants/acme/identities/team",
        "team-a-prod",
        "https://team-a.example",
    )
    .await;
    assert_eq!(claims["team"], "team-a");
    assert_eq!(std::fs::read_dir(&artifacts).unwrap().count(), cached);
}

/// Slowloris: a request head dripped a byte at a time never completes within the header
/// timeout, so the server closes the connection; a normal request on another connection is
/// served meanwhile. Without the timeout the drip would hold the connection for as long as the
/// client liked.
#[tokio::test]
async fn a_slow_request_head_is_cut_off_while_others_are_served() {
    let dir = TempDir::new("http-slowloris");
    let server = Server::process_with(
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
    let mut server = Server::process_with(
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
    let server = Server::process_with(&dir.path().join("data"), &flags);
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
    let server = Server::process_with(&dir.path().join("data"), &flags);
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
    let server = Server::process_with(&dir.path().join("data"), &flags);
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
    let server = Server::process_with(&dir.path().join("data"), &flags);
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
    let server = Server::process_with(&dir.path().join("data"), &flags);
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

/// Resident memory of a process, from `/proc` (Linux).
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_memory_stays_bounded_while_policies_fill_their_memory() {
    const MIB: u64 = 1 << 20;
    let dir = TempDir::new("sandbox-memory");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = std::sync::Arc::new(Server::process_with(
        &dir.path().join("data"),
        &[
            "--allow-insecure-issuers",
            "--tenant-rate",
            "0",
            "--identity-rate",
            "0",
        ],
    ));
    let acme = quickstart(&server, &issuer, "acme").await;
    let digest = upload_hostile(&server, &acme).await;
    bind_hostile(&server, &acme, &digest, "fill").await;
    let token = issuer.token(&acme.audience, "prod", "deployer", &[]);
    let hostile = acme.identity("hostile");

    // Each decision dirties its whole 32 MiB memory cap; 4 at a time, 25 rounds: 3.2 GB.
    let flood = || async {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (server, hostile, token) = (server.clone(), hostile.clone(), token.clone());
                tokio::spawn(async move {
                    for _ in 0..25 {
                        let (status, body) = server.exchange(&hostile, &token, &[]).await;
                        assert_eq!(status, 400, "{body}");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    };
    let (status, body) = server
        .exchange(&acme.identity("deployer"), &token, &[])
        .await;
    assert_eq!(status, 200, "{body}");
    let before = resident_bytes(server.pid());
    flood().await;
    assert_eq!(
        last_decision(&server, &acme.name, &acme.key).await["code"],
        "memory-limit"
    );
    flood().await;
    let after = resident_bytes(server.pid());
    eprintln!(
        "resident: before {} MiB, after {} MiB",
        before / MIB,
        after / MIB
    );
    // 6.4 GB were written; what stays is the kept-resident megabyte of each pooled slot used
    // (pages past it are decommitted after every decision) and allocator noise. Keeping the
    // dirtied memory would cost 32 MiB per slot, 128 MiB for these four.
    assert!(
        after < before + 48 * MIB,
        "resident memory grew from {} MiB to {} MiB",
        before / MIB,
        after / MIB
    );
    let (status, body) = server
        .exchange(&acme.identity("deployer"), &token, &[])
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Runs `tollgate serve ARGS` expecting it to fail: its stderr.
fn serve_fails(args: &[&str]) -> String {
    let out = tollgate_tests::process::command()
        .args(["serve", "--listen", "127.0.0.1:0", "--operator-key", "k"])
        .args(args)
        .env_remove("TOLLGATE_DATABASE")
        .output()
        .expect("run tollgate serve");
    assert!(!out.status.success(), "serve {args:?} started");
    String::from_utf8(out.stderr).unwrap()
}

/// `tollgate serve` refusing to start: each reason printed once, with its cause once.
#[test]
fn a_failure_to_start_says_each_cause_once() {
    let dir = TempDir::new("serve-fails");
    let file = dir.path().join("file");
    std::fs::write(&file, "not a directory").unwrap();
    let under_file = file.join("sub");
    let data_dir = under_file.to_str().unwrap();
    let database = format!("sqlite://{data_dir}/x.db");
    let ok_dir = dir.path().join("data");
    let missing = dir.path().join("missing.yaml");
    for (args, reason, cause) in [
        (
            vec!["--data-dir", data_dir],
            "cannot create data directory",
            "Not a directory (os error 20)",
        ),
        (
            vec![
                "--data-dir",
                ok_dir.to_str().unwrap(),
                "--database",
                &database,
            ],
            "cannot create the database directory",
            "Not a directory (os error 20)",
        ),
        (
            vec!["--config", missing.to_str().unwrap()],
            "cannot read config file",
            "No such file or directory (os error 2)",
        ),
    ] {
        let stderr = serve_fails(&args);
        assert_eq!(stderr.matches(reason).count(), 1, "{args:?}: {stderr}");
        assert_eq!(stderr.matches(cause).count(), 1, "{args:?}: {stderr}");
    }
}

/// One server, restarted with another `--signing-alg` (or another `--public-url` after one was
/// given): refused with the reason, instead of silently keeping the old keys or issuing under
/// another name.
#[test]
fn a_restart_with_another_signing_algorithm_or_public_url_is_refused() {
    let dir = TempDir::new("serve-settings");
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let first = Server::process_with(
        std::path::Path::new(data),
        &["--public-url", "http://tollgate.test"],
    );
    drop(first);
    for (args, named) in [
        (
            vec!["--data-dir", data, "--signing-alg", "EdDSA"],
            "--signing-alg",
        ),
        (
            vec!["--data-dir", data, "--public-url", "http://other.test"],
            "--public-url",
        ),
    ] {
        let stderr = serve_fails(&args);
        assert!(
            stderr.contains(named) && stderr.contains("must use the same"),
            "{args:?}: {stderr}"
        );
    }
    // The same settings start again.
    drop(Server::process_with(
        std::path::Path::new(data),
        &["--public-url", "http://tollgate.test"],
    ));
}
