//! Federation and multi-tenancy attacks against the running server: a tenant claiming another
//! tenant's issuer URL with its own keys, pattern anchoring of the stock `rules` policy, a
//! ServiceAccount deleted and recreated under the same name, and upstreams (discovery, JWKS,
//! TokenReview) that fail, throttle or hang. Every one of them is a generic denial.
//!
//! Already proven elsewhere and not repeated here: a tenant's key cannot touch another tenant
//! and a token for one tenant's audience opens nothing in another (`server_isolation.rs`);
//! TokenReview answering unauthenticated, for other audiences, with a malformed username, with
//! 500, or disagreeing with the token's namespace or pod (`server_verify.rs`,
//! `token_review_allows_what_the_api_server_vouches_for_and_nothing_else`).

use tollgate_tests::attack as attack_support;
use tollgate_tests::issuer_double;
use tollgate_tests::jwt::now;
use tollgate_tests::server as server_support;

use attack_support::{Cluster, assert_generic, bind, last_decision, payload, put_issuer, with_kid};
use issuer_double::{IssuerDouble, Reply};
use reqwest::Method;
use serde_json::{Value, json};
use server_support::{DevIssuer, Server, TempDir, dev_token, quickstart, quickstart_identity};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_registering_the_same_issuer_url_with_its_own_keys_gains_nothing() {
    let dir = TempDir::new("fed-same-issuer");
    let cluster = DevIssuer::start(&dir.path().join("cluster"));
    let server = Server::start(&dir.path().join("data"));
    let alpha = quickstart(&server, &cluster, "alpha").await;
    let real = cluster.token(&alpha.audience, "prod", "deployer", &[]);
    assert_eq!(
        server
            .exchange(&alpha.identity("deployer"), &real, &[])
            .await
            .0,
        200
    );

    // Beta pastes its own key under alpha's issuer URL and mints alpha's subjects with it.
    let own = Cluster::start("fed-same-issuer-beta").await;
    let beta_keys = own.jwks.clone();
    let (beta_key, beta_audience) = server.create_tenant("beta").await;
    let source = json!({"mode": "static_jwks", "jwks": beta_keys, "expires_at": now() + 3600});
    let body = json!({"issuer_url": cluster.url, "source": source});
    let (status, answer) = put_issuer(&server, "beta", &beta_key, "dev", body).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = server
        .put_identity("beta", "deployer", &beta_key, quickstart_identity())
        .await;
    assert_eq!(status, 200, "{answer}");
    let forged = dev_token(
        own.state.path(),
        &[
            "--audience",
            &alpha.audience,
            "--audience",
            &beta_audience,
            "-n",
            "prod",
            "-s",
            "deployer",
            "--pod",
            "api-1",
            "--issuer",
            &cluster.url,
        ],
    );
    assert_eq!(payload(&forged)["iss"], payload(&real)["iss"]);
    assert_eq!(payload(&forged)["sub"], payload(&real)["sub"]);

    // Alpha's identity, by name or uid, does not take beta's key for alpha's issuer.
    for identity in [alpha.identity("deployer"), alpha.uid.clone()] {
        let (status, body) = server.exchange(&identity, &forged, &[]).await;
        assert_generic(status, &body, "beta's key at alpha");
        let decision = last_decision(&server, "alpha", &alpha.key).await;
        let reason = decision["reason"].as_str().unwrap();
        assert!(reason.contains("kid: no key with id"), "{reason}");
    }
    // Relabelled with alpha's real kid, the signature still fails.
    let real_kid = header_kid(&real);
    let relabelled = with_kid(&forged, &real_kid);
    let (status, body) = server
        .exchange(&alpha.identity("deployer"), &relabelled, &[])
        .await;
    assert_generic(status, &body, "beta's signature under alpha's kid");
    let decision = last_decision(&server, "alpha", &alpha.key).await;
    assert!(
        decision["reason"].as_str().unwrap().contains("signature"),
        "{decision}"
    );

    // What beta's key vouches for opens beta's own identity only: an identity of beta.
    let (status, body) = server
        .exchange("tenants/beta/identities/deployer", &forged, &[])
        .await;
    assert_eq!(status, 200, "{body}");
    let claims = server
        .verify(
            body["access_token"].as_str().unwrap(),
            "https://registry.example",
        )
        .await;
    assert_eq!(claims["tenant"], "beta");
    assert_eq!(claims["sub"], "tenants/beta/identities/deployer");

    // Alpha's cached keys were not replaced by beta's registration: its workloads still pass.
    let again = cluster.token(&alpha.audience, "prod", "deployer", &[]);
    assert_eq!(
        server
            .exchange(&alpha.identity("deployer"), &again, &[])
            .await
            .0,
        200
    );
    let log = server
        .admin(
            Method::GET,
            "/v1/tenants/alpha/decisions",
            Some(&alpha.key),
            None,
        )
        .await
        .1;
    assert!(!log.to_string().contains("tenants/beta"), "{log}");
}

/// PUTs identity `id` of `tenant` with the quickstart limits and this `rules` config.
async fn rules_identity(server: &Server, tenant: &str, key: &str, id: &str, config: Value) {
    let mut identity = quickstart_identity();
    identity["config"] = config;
    let (status, body) = server.put_identity(tenant, id, key, identity).await;
    assert_eq!(status, 200, "{id}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_patterns_are_anchored() {
    let dir = TempDir::new("fed-anchoring");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    let grant = json!({"scopes": ["registry.pull"]});
    let configs = [
        (
            "exact",
            json!({"subjects": ["system:serviceaccount:prod:app"], "grant": grant}),
        ),
        (
            "named",
            json!({"namespaces": ["prod"], "service_accounts": ["app"], "grant": grant}),
        ),
        (
            "team-star",
            json!({"subjects": ["system:serviceaccount:team-a*"], "grant": grant}),
        ),
        (
            "team-a",
            json!({"subjects": ["system:serviceaccount:team-a:*"], "grant": grant}),
        ),
    ];
    for (id, config) in configs {
        rules_identity(&server, "acme", &acme.key, id, config).await;
    }
    // (identity, namespace, service account, allowed)
    let cases = [
        ("exact", "prod", "app", true),
        ("exact", "prod", "app-evil", false),
        ("exact", "prod", "app\n", false),
        ("exact", "prod", "app ", false),
        ("exact", "prod", "App", false),
        ("exact", "prod", "app:x", false),
        ("exact", "prod\n", "app", false),
        ("exact", "xprod", "app", false),
        ("named", "prod", "app", true),
        ("named", "prod", "app-evil", false),
        ("named", "prod", "app\n", false),
        ("named", "prod\n", "app", false),
        ("named", "prod-evil", "app", false),
        ("named", "prod", "xapp", false),
        ("team-star", "team-attacker", "sa", false),
        ("team-star", "team-a", "sa", false),
        ("team-a", "team-a", "builder", true),
        ("team-a", "team-attacker", "builder", false),
        ("team-a", "team-a\n", "builder", false),
        ("team-a", "team-a", "builder:x", false),
    ];
    for (id, namespace, account, allowed) in cases {
        let case = format!("{id} with {namespace:?}:{account:?}");
        let token = issuer.token(&acme.audience, namespace, account, &[]);
        let (status, body) = server.exchange(&acme.identity(id), &token, &[]).await;
        let decision = last_decision(&server, "acme", &acme.key).await;
        if allowed {
            assert_eq!(status, 200, "{case}: {body}");
            continue;
        }
        assert_generic(status, &body, &case);
        assert_eq!(decision["allowed"], false, "{case}: {decision}");
        assert_eq!(decision["source"], "policy", "{case}: {decision}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_service_account_does_not_pass_a_uid_bound_rule() {
    let dir = TempDir::new("fed-uid");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    let original = issuer.token(&acme.audience, "prod", "deployer", &[]);
    let recreated = issuer.token(
        &acme.audience,
        "prod",
        "deployer",
        &["--uid-seed", "deleted-and-recreated"],
    );
    let uid = payload(&original)["kubernetes.io"]["serviceaccount"]["uid"].clone();
    let new_uid = payload(&recreated)["kubernetes.io"]["serviceaccount"]["uid"].clone();
    assert!(uid.is_string());
    assert_ne!(uid, new_uid, "same name, new uid");
    assert_eq!(payload(&original)["sub"], payload(&recreated)["sub"]);
    let grant = json!({"scopes": ["registry.pull"]});
    let pinned = json!({"namespaces": ["prod"], "service_account_uids": [uid], "grant": grant});
    rules_identity(&server, "acme", &acme.key, "pinned", pinned).await;

    assert_eq!(
        server
            .exchange(&acme.identity("pinned"), &original, &[])
            .await
            .0,
        200
    );
    let (status, body) = server
        .exchange(&acme.identity("pinned"), &recreated, &[])
        .await;
    assert_generic(status, &body, "recreated service account");
    let decision = last_decision(&server, "acme", &acme.key).await;
    assert_eq!(decision["source"], "policy", "{decision}");
    assert!(!body.to_string().contains(uid.as_str().unwrap()));
    // A name-bound rule cannot tell them apart: that is what the uid binding is for.
    assert_eq!(
        server
            .exchange(&acme.identity("deployer"), &recreated, &[])
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_discovery_or_keys_is_a_denial_never_an_unverified_decode() {
    let dir = TempDir::new("fed-upstream");
    let server = Server::start(&dir.path().join("data"));
    let (key, audience) = server.create_tenant("acme").await;
    let cluster = Cluster::start("fed-upstream-cluster").await;
    let double = IssuerDouble::start(cluster.jwks.clone()).await;
    let token = cluster.token(double.url(), &audience);
    // (case, discovery reply, keys reply, words of the recorded reason)
    let cases = [
        (
            "discovery 500",
            Reply::Status(500),
            Reply::Normal,
            "discovery document failed: server answered with status 500",
        ),
        (
            "discovery 503",
            Reply::Status(503),
            Reply::Normal,
            "status 503",
        ),
        (
            "discovery 429",
            Reply::Status(429),
            Reply::Normal,
            "status 429",
        ),
        (
            "discovery 404",
            Reply::Status(404),
            Reply::Normal,
            "status 404",
        ),
        (
            "discovery hangs",
            Reply::Hang,
            Reply::Normal,
            "discovery document failed: request timed out",
        ),
        (
            "keys 500",
            Reply::Normal,
            Reply::Status(500),
            "key set failed: server answered with status 500",
        ),
        (
            "keys 429",
            Reply::Normal,
            Reply::Status(429),
            "key set failed: server answered with status 429",
        ),
        (
            "keys hang",
            Reply::Normal,
            Reply::Hang,
            "key set failed: request timed out",
        ),
        (
            "keys empty",
            Reply::Normal,
            Reply::Json(json!({"keys": []})),
            "keys:",
        ),
    ];
    for (i, (case, discovery, keys, expected)) in cases.into_iter().enumerate() {
        double.discovery(discovery);
        double.keys(keys);
        let name = format!("case{i}");
        bind(&server, "acme", &key, &name, double.url()).await;
        let started = Instant::now();
        let (status, body) = server
            .exchange(&format!("tenants/acme/identities/{name}"), &token, &[])
            .await;
        assert_generic(status, &body, case);
        assert!(started.elapsed() < Duration::from_secs(30), "{case}");
        let decision = last_decision(&server, "acme", &key).await;
        assert_eq!(decision["code"], "invalid-token", "{case}: {decision}");
        let reason = decision["reason"].as_str().unwrap();
        assert!(reason.contains(expected), "{case}: {reason}");
    }
    // The same token passes once the issuer answers (on an issuer whose failures are not
    // still rate limited): the denials were the upstream's doing.
    double.discovery(Reply::Normal);
    double.keys(Reply::Normal);
    bind(&server, "acme", &key, "recovered", double.url()).await;
    let (status, body) = server
        .exchange("tenants/acme/identities/recovered", &token, &[])
        .await;
    assert_eq!(status, 200, "{body}");
}

const CLUSTER_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_failing_or_hanging_token_review_is_a_denial() {
    let dir = TempDir::new("fed-review");
    let server = Server::start(&dir.path().join("data"));
    let (key, audience) = server.create_tenant("acme").await;
    let api = IssuerDouble::start(json!({"keys": []})).await;
    let source = json!({"mode": "token_review", "api_server": api.url(), "ca_pem": null, "reviewer_token": "reviewer"});
    let body = json!({"issuer_url": CLUSTER_ISSUER, "source": source});
    let (status, answer) = put_issuer(&server, "acme", &key, "cluster", body).await;
    assert_eq!(status, 200, "{answer}");
    let mut identity = quickstart_identity();
    identity["issuer"] = json!("cluster");
    let (status, answer) = server
        .put_identity("acme", "deployer", &key, identity)
        .await;
    assert_eq!(status, 200, "{answer}");
    let state = TempDir::new("fed-review-keys");
    let token = dev_token(
        state.path(),
        &[
            "--audience",
            &audience,
            "-n",
            "prod",
            "-s",
            "deployer",
            "--pod",
            "api-1",
            "--issuer",
            CLUSTER_ISSUER,
        ],
    );
    let identity = "tenants/acme/identities/deployer";
    assert_eq!(server.exchange(identity, &token, &[]).await.0, 200);

    let cases = [
        (Reply::Status(429), "server answered with status 429"),
        (Reply::Status(503), "server answered with status 503"),
        (Reply::Hang, "request timed out"),
        (
            Reply::Redirect(format!(
                "{}/apis/authentication.k8s.io/v1/tokenreviews",
                api.url()
            )),
            "server answered with status 302",
        ),
        (
            Reply::Json(json!({"kind": "Status"})),
            "token review denied",
        ),
        (Reply::SlowDrip, "request timed out"),
    ];
    for (reply, expected) in cases {
        let case = format!("{reply:?}");
        api.review(reply);
        let started = Instant::now();
        let (status, body) = server.exchange(identity, &token, &[]).await;
        assert_generic(status, &body, &case);
        assert!(started.elapsed() < Duration::from_secs(30), "{case}");
        let decision = last_decision(&server, "acme", &key).await;
        let reason = decision["reason"].as_str().unwrap();
        assert!(reason.contains(expected), "{case}: {reason}");
    }
    api.review(Reply::Normal);
    assert_eq!(server.exchange(identity, &token, &[]).await.0, 200);
}

/// The `kid` of a JWT's header.
fn header_kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: Value = serde_json::from_slice(&header).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}
