//! Outbound fetching (SSRF) attacks against the running server: unsafe issuer and API server
//! URLs at registration, hostile issuer answers (redirects, lying discovery documents,
//! oversized, dripping and compressed bodies), and floods of tokens that would make the server
//! fetch (random `kid`s, unregistered issuers). Issuers are loopback doubles that count the
//! requests they receive.

use tollgate_tests::attack as attack_support;
use tollgate_tests::issuer_double;
use tollgate_tests::server as server_support;

use attack_support::{Cluster, assert_generic, bind, last_decision, put_issuer, with_kid};
use issuer_double::{IssuerDouble, Reply};
use reqwest::Method;
use serde_json::{Value, json};
use server_support::{JWT_TYPE, Server, TOKEN_EXCHANGE, TempDir};
use std::time::{Duration, Instant};

/// The server's least time between two key fetches of one issuer (`VerifySettings`).
const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_urls_are_refused_at_registration_unless_the_operator_allows_them() {
    let dir = TempDir::new("fetch-registration");
    let strict = Server::start_with(&dir.path().join("strict"), &[]);
    let lax = Server::start(&dir.path().join("lax"));
    let (strict_key, _) = strict.create_tenant("acme").await;
    let (lax_key, _) = lax.create_tenant("acme").await;

    // (url, words of the message, words when insecure issuers are allowed or None: accepted)
    let cases = [
        ("http://issuer.example.com", "scheme `http`", None),
        ("file:///etc/passwd", "scheme `file`", Some("scheme `file`")),
        (
            "gopher://issuer.example.com",
            "scheme `gopher`",
            Some("scheme `gopher`"),
        ),
        (
            "https://user:pw@issuer.example.com",
            "user information",
            Some("user information"),
        ),
        (
            "https://issuer.example.com@127.0.0.1",
            "user information",
            Some("user information"),
        ),
        ("https://127.0.0.1:8443", "loopback", None),
        ("https://localhost", "localhost", None),
        (
            "https://169.254.169.254/latest/meta-data",
            "link-local",
            None,
        ),
        ("https://0.0.0.0", "unspecified", None),
        ("https://10.0.0.1", "private", None),
        ("https://100.64.0.1", "CGNAT", None),
        ("https://[fd00::1]", "unique local", None),
        ("https://[::1]", "loopback", None),
        ("https://[::ffff:127.0.0.1]", "IPv4-mapped", None),
        ("https://[::ffff:169.254.169.254]", "IPv4-mapped", None),
        (
            "https://2130706433/",
            "canonical form",
            Some("canonical form"),
        ),
        (
            "https://0177.0.0.1/",
            "canonical form",
            Some("canonical form"),
        ),
        (
            "https://0x7f.0.0.1/",
            "canonical form",
            Some("canonical form"),
        ),
        (
            "http://2130706433/",
            "scheme `http`",
            Some("canonical form"),
        ),
        (
            "http://0177.0.0.1/",
            "scheme `http`",
            Some("canonical form"),
        ),
        (
            "https://issuer.example.com/?next=http://10.0.0.1",
            "query",
            Some("query"),
        ),
        // Issue 11, item 6: the `url` crate reads `\` as `/` (host `kubernetes.example.com`),
        // curl and Python as part of the user information (host 169.254.169.254).
        (
            r"https://kubernetes.example.com\@169.254.169.254/",
            "parsers read differently",
            Some("parsers read differently"),
        ),
        (
            r"https://issuer.example.com\evil.example/",
            "parsers read differently",
            Some("parsers read differently"),
        ),
        (
            "https://issuer.example.com/%zz",
            "parsers read differently",
            Some("parsers read differently"),
        ),
        (
            "https://bücher.example/",
            "parsers read differently",
            Some("parsers read differently"),
        ),
    ];
    for (url, expected, lax_expected) in cases {
        let discovery = json!({"issuer_url": url});
        let review = json!({
            "issuer_url": "https://kubernetes.default.svc",
            "source": {"mode": "token_review", "api_server": url, "ca_pem": null, "reviewer_token": "t"},
        });
        for body in [discovery, review] {
            let (status, answer) =
                put_issuer(&strict, "acme", &strict_key, "x", body.clone()).await;
            assert_eq!(status, 422, "{url}: {answer}");
            let message = answer["message"].as_str().unwrap_or_default();
            assert!(
                message.contains(expected),
                "{url}: `{message}` lacks `{expected}`"
            );
            let (status, answer) = put_issuer(&lax, "acme", &lax_key, "x", body).await;
            if let Some(expected) = lax_expected {
                assert_eq!(status, 422, "insecure allowed, {url}: {answer}");
                let message = answer["message"].as_str().unwrap_or_default();
                assert!(message.contains(expected), "{url}: `{message}`");
            } else {
                assert_eq!(status, 200, "insecure allowed, {url}: {answer}");
            }
        }
    }
    // Nothing was stored by the refusals; a public https issuer is accepted (no network needed).
    let (status, list) = strict
        .admin(
            Method::GET,
            "/v1/tenants/acme/issuers",
            Some(&strict_key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["issuers"], json!([]), "{list}");
    let public = json!({"issuer_url": "https://issuer.example.com/cluster"});
    let (status, answer) = put_issuer(&strict, "acme", &strict_key, "x", public).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_issuer_answers_are_refused_and_cut_off() {
    let dir = TempDir::new("fetch-hostile");
    let server = Server::start(&dir.path().join("data"));
    let (key, audience) = server.create_tenant("acme").await;
    let cluster = Cluster::start("fetch-hostile-cluster").await;
    let double = IssuerDouble::start(cluster.jwks.clone()).await;
    let url = double.url().to_owned();
    let token = cluster.token(&url, &audience);

    // A valid key set padded with 64 MiB of JSON whitespace, gzip-compressed to well under the
    // body cap: only a client that inflates it without a cap would accept it.
    let mut padded = cluster.jwks.to_string().into_bytes();
    padded.extend(std::iter::repeat_n(b' ', 64 << 20));
    let bomb = gzip(&padded);
    assert!(bomb.len() < 100 * 1024, "{} bytes", bomb.len());
    let doc = |issuer: &str, jwks_uri: &str| json!({"issuer": issuer, "jwks_uri": jwks_uri});
    let keys_url = format!("{url}/keys");

    // (case, discovery reply, keys reply, words of the recorded reason)
    let cases = [
        (
            "discovery names another issuer",
            Reply::Json(doc("https://issuer.example.com", &keys_url)),
            Reply::Normal,
            "`issuer` does not equal",
        ),
        (
            "discovery issuer with a trailing slash",
            Reply::Json(doc(&format!("{url}/"), &keys_url)),
            Reply::Normal,
            "`issuer` does not equal",
        ),
        (
            "jwks_uri on a file",
            Reply::Json(doc(&url, "file:///etc/passwd")),
            Reply::Normal,
            "scheme `file`",
        ),
        (
            "jwks_uri on a numeric host",
            Reply::Json(doc(&url, "http://2130706433/keys")),
            Reply::Normal,
            "canonical form",
        ),
        (
            "jwks_uri with user information",
            Reply::Json(doc(&url, &format!("http://user@{}/keys", &url[7..]))),
            Reply::Normal,
            "user information",
        ),
        (
            "redirect to a numeric host",
            Reply::Redirect("http://2130706433/keys".into()),
            Reply::Normal,
            "canonical form",
        ),
        (
            "redirect to a file",
            Reply::Redirect("file:///etc/passwd".into()),
            Reply::Normal,
            "scheme `file`",
        ),
        (
            "redirect with user information",
            Reply::Normal,
            Reply::Redirect(format!("http://user@{}/keys", &url[7..])),
            "user information",
        ),
        (
            "oversized discovery",
            Reply::Oversized,
            Reply::Normal,
            "larger than",
        ),
        (
            "oversized chunked keys",
            Reply::Normal,
            Reply::OversizedChunked,
            "larger than",
        ),
        (
            "gzip bomb keys",
            Reply::Normal,
            Reply::Gzip(bomb),
            "key set is invalid",
        ),
        (
            "slow-drip discovery",
            Reply::SlowDrip,
            Reply::Normal,
            "timed out",
        ),
        (
            "slow-drip keys",
            Reply::Normal,
            Reply::SlowDrip,
            "timed out",
        ),
    ];
    for (i, (case, discovery, keys, expected)) in cases.into_iter().enumerate() {
        double.discovery(discovery);
        double.keys(keys);
        // A fresh issuer per case: nothing cached, nothing rate limited.
        let name = format!("case{i}");
        bind(&server, "acme", &key, &name, &url).await;
        let started = Instant::now();
        let (status, body) = server
            .exchange(&format!("tenants/acme/identities/{name}"), &token, &[])
            .await;
        assert_generic(status, &body, case);
        // The fetch timeout (5 s) bounds a drip, not the size of what is dripped.
        assert!(started.elapsed() < Duration::from_secs(30), "{case}");
        let decision = last_decision(&server, "acme", &key).await;
        assert_eq!(decision["allowed"], false, "{case}: {decision}");
        let reason = decision["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(expected), "{case}: {reason}");
    }
    // The server is unharmed: the same token passes once the issuer behaves.
    double.discovery(Reply::Normal);
    double.keys(Reply::Normal);
    bind(&server, "acme", &key, "good", &url).await;
    let (status, body) = server
        .exchange("tenants/acme/identities/good", &token, &[])
        .await;
    assert_eq!(status, 200, "{body}");
}

/// gzip of `data`, by the system's `gzip` (no compression crate in the dependency tree).
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("gzip")
        .args(["-c", "-9"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run gzip");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// Sends `tokens` to `identity` concurrently: the statuses, in order.
async fn flood(server: &Server, identity: &str, tokens: Vec<String>) -> Vec<(u16, Value)> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let http = server.http.clone();
        let url = format!("{}/oauth2/token", server.url);
        let identity = identity.to_owned();
        tasks.spawn(async move {
            let form = [
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", token.as_str()),
                ("subject_token_type", JWT_TYPE),
                ("audience", identity.as_str()),
            ];
            let answer = Server::send(http.post(url).form(&form)).await;
            (i, answer)
        });
    }
    let mut answers = tasks.join_all().await;
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, a)| a).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_kid_flood_costs_one_fetch_per_interval_and_nobody_else_anything() {
    let dir = TempDir::new("fetch-flood");
    let server = Server::start(&dir.path().join("data"));
    let (alpha_key, alpha_aud) = server.create_tenant("alpha").await;
    let (beta_key, beta_aud) = server.create_tenant("beta").await;
    let cluster = Cluster::start("fetch-flood-cluster").await;
    let a = IssuerDouble::start(cluster.jwks.clone()).await;
    let b = IssuerDouble::start(cluster.jwks.clone()).await;
    bind(&server, "alpha", &alpha_key, "dev", a.url()).await;
    bind(&server, "beta", &beta_key, "dev", b.url()).await;
    let alpha = "tenants/alpha/identities/dev";
    let beta = "tenants/beta/identities/dev";
    let alpha_token = cluster.token(a.url(), &alpha_aud);
    let beta_token = cluster.token(b.url(), &beta_aud);

    assert_eq!(server.exchange(alpha, &alpha_token, &[]).await.0, 200);
    // The keys were fetched during that exchange: the interval started no later than now.
    let fetched = Instant::now();
    assert_eq!(a.fetches(), (1, 1));

    let random = |round: &str| -> Vec<String> {
        (0..40)
            .map(|i| {
                with_kid(
                    &alpha_token,
                    &format!("{round}-{i}-{}", fetched.elapsed().as_nanos()),
                )
            })
            .collect()
    };
    for (status, body) in flood(&server, alpha, random("first")).await {
        assert_generic(status, &body, "random kid");
    }
    let first_flood_done = fetched.elapsed();
    // Valid tokens keep passing, the other tenant is served and its issuer asked once.
    assert_eq!(server.exchange(alpha, &alpha_token, &[]).await.0, 200);
    assert_eq!(server.exchange(beta, &beta_token, &[]).await.0, 200);
    assert_eq!(b.fetches(), (1, 1));
    if first_flood_done < REFETCH_INTERVAL - Duration::from_secs(5) {
        assert_eq!(a.fetches(), (1, 1), "a refetch within the interval");
    } else {
        assert!(a.fetches().1 <= 2, "{:?}", a.fetches());
    }
    let decision = last_decision(&server, "alpha", &alpha_key).await;
    assert_eq!(decision["allowed"], true, "{decision}");

    // After the interval, a second flood costs exactly one more fetch.
    let wait = (REFETCH_INTERVAL + Duration::from_secs(1)).saturating_sub(fetched.elapsed());
    tokio::time::sleep(wait).await;
    let before = a.fetches().1;
    assert!(before <= 2);
    for (status, body) in flood(&server, alpha, random("second")).await {
        assert_generic(status, &body, "random kid, second round");
    }
    let after = a.fetches().1;
    assert!(after <= before + 1 && after <= 2, "{before} then {after}");
    assert_eq!(server.exchange(alpha, &alpha_token, &[]).await.0, 200);
    assert_eq!(server.exchange(beta, &beta_token, &[]).await.0, 200);
    assert_eq!(
        b.fetches(),
        (1, 1),
        "the other tenant's issuer was left alone"
    );
    assert_eq!(a.total(), a.fetches().0 + a.fetches().1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_an_unregistered_issuer_causes_no_request_at_all() {
    let dir = TempDir::new("fetch-unregistered");
    let server = Server::start(&dir.path().join("data"));
    let (key, audience) = server.create_tenant("acme").await;
    let cluster = Cluster::start("fetch-unregistered-cluster").await;
    let registered = IssuerDouble::start(cluster.jwks.clone()).await;
    // The attacker's own issuer, reachable, serving the very keys that signed the tokens.
    let attacker = IssuerDouble::start(cluster.jwks.clone()).await;
    bind(&server, "acme", &key, "dev", registered.url()).await;
    let identity = "tenants/acme/identities/dev";

    // Nothing is cached yet: a fetch would be allowed, and still none may happen.
    let foreign = [
        cluster.token(attacker.url(), &audience),
        cluster.token("https://issuer.example.com", &audience),
        cluster.token(&format!("{}/other", registered.url()), &audience),
    ];
    for token in &foreign {
        for kid in ["", "random-kid"] {
            let token = if kid.is_empty() {
                token.clone()
            } else {
                with_kid(token, kid)
            };
            let (status, body) = server.exchange(identity, &token, &[]).await;
            assert_generic(status, &body, "unregistered issuer");
            let decision = last_decision(&server, "acme", &key).await;
            let reason = decision["reason"].as_str().unwrap_or_default();
            assert!(reason.contains("iss: issuer does not match"), "{reason}");
        }
    }
    assert_eq!(registered.total(), 0, "the registered issuer was asked");
    assert_eq!(attacker.total(), 0, "the token's issuer was asked");

    let good = cluster.token(registered.url(), &audience);
    assert_eq!(server.exchange(identity, &good, &[]).await.0, 200);
    assert_eq!(registered.fetches(), (1, 1));
}

/// A name other than `localhost` that `/etc/hosts` maps to a loopback address, if any (read
/// from the file, so finding it sends no DNS query).
fn loopback_alias() -> Option<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").ok()?;
    hosts.lines().find_map(|line| {
        let mut fields = line.split('#').next()?.split_whitespace();
        let address: std::net::IpAddr = fields.next()?.parse().ok()?;
        if !address.is_loopback() {
            return None;
        }
        fields
            .find(|name| {
                let name = name.to_ascii_lowercase();
                name != "localhost" && !name.ends_with(".localhost") && !name.contains("localhost")
            })
            .map(str::to_owned)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_loopback_is_refused_before_connecting() {
    let Some(alias) = loopback_alias() else {
        eprintln!("no loopback alias in /etc/hosts: nothing to test here");
        return;
    };
    let dir = TempDir::new("fetch-alias");
    let server = Server::start_with(&dir.path().join("data"), &[]);
    let (key, audience) = server.create_tenant("acme").await;
    let cluster = Cluster::start("fetch-alias-cluster").await;
    let double = IssuerDouble::start(cluster.jwks.clone()).await;
    let port = double.url().rsplit(':').next().unwrap().to_owned();
    // A name is not an address: registration cannot tell, the fetch must.
    let url = format!("https://{alias}:{port}");
    bind(&server, "acme", &key, "dev", &url).await;
    let token = cluster.token(&url, &audience);
    let (status, body) = server
        .exchange("tenants/acme/identities/dev", &token, &[])
        .await;
    assert_generic(status, &body, "loopback alias");
    let decision = last_decision(&server, "acme", &key).await;
    let reason = decision["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("is not allowed (loopback)"),
        "{alias}: {reason}"
    );
    assert_eq!(double.connections(), 0, "the server connected to {alias}");
}
