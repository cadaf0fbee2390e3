//! The issued token's life, end to end on loopback: introspection with use limits, trusted
//! address ranges (and who may name the client's address), revocation, renewal within max ttl,
//! the server's lifetime cap, and keys published until their tokens expire. Each with its
//! attack or misuse.

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tollgate_tests::jwt::payload;
use tollgate_tests::server::{
    DevIssuer, Server, TempDir, Tenant, assert_generic, quickstart, quickstart_identity,
};

const REGISTRY: &str = "https://registry.example";

/// A quickstart tenant whose `deployer` identity also has `fields`.
async fn tenant_with(server: &Server, issuer: &DevIssuer, name: &str, fields: Value) -> Tenant {
    let tenant = quickstart(server, issuer, name).await;
    let mut identity = quickstart_identity();
    for (key, value) in fields.as_object().unwrap() {
        identity[key] = value.clone();
    }
    let (status, body) = server
        .put_identity(name, "deployer", &tenant.key, identity)
        .await;
    assert_eq!(status, 200, "{body}");
    tenant
}

/// An access token for the tenant's `deployer`.
async fn access_token(server: &Server, issuer: &DevIssuer, tenant: &Tenant) -> String {
    let token = issuer.token(&tenant.audience, "prod", "deployer", &[]);
    let (status, body) = server
        .exchange(&tenant.identity("deployer"), &token, &[])
        .await;
    assert_eq!(status, 200, "{body}\n{}", server.log());
    body["access_token"].as_str().unwrap().to_owned()
}

fn started(name: &str, flags: &[&str]) -> (TempDir, DevIssuer, Server) {
    let dir = TempDir::new(name);
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let mut all = vec!["--allow-insecure-issuers"];
    all.extend_from_slice(flags);
    let server = Server::start_with(&dir.path().join("data"), &all);
    (dir, issuer, server)
}

#[tokio::test]
async fn a_token_is_active_for_num_uses_introspections_and_no_more() {
    let (_dir, issuer, server) = started("life-uses", &[]);
    let acme = tenant_with(&server, &issuer, "acme", json!({"num_uses": 3})).await;
    let access = access_token(&server, &issuer, &acme).await;
    let introspector = server.create_key("acme", &acme.key, "introspect").await;

    let claims = payload(&access);
    for left in [2, 1, 0] {
        let (status, body) = server.introspect(&introspector, &access, &[]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["active"], true, "{body}");
        assert_eq!(body["uses_remaining"], left);
        assert_eq!(body["jti"], claims["jti"]);
        assert_eq!(body["sub"], "tenants/acme/identities/deployer");
        assert_eq!(body["client_id"], "system:serviceaccount:prod:deployer");
        assert_eq!(body["scope"], "registry.pull");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["aud"], REGISTRY);
        assert_eq!(body["iss"], server.url.as_str());
    }
    // Use number num_uses + 1.
    let (status, body) = server.introspect(&introspector, &access, &[]).await;
    assert_eq!((status, body), (200, json!({"active": false})));
    // A renewal shares the session's count: used up stays used up.
    let (status, body) = server.renew(&access).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");

    // The introspection key does nothing else.
    let (status, _) = server
        .admin(
            Method::GET,
            "/v1/tenants/acme/identities",
            Some(&introspector),
            None,
        )
        .await;
    assert_eq!(status, 403);
    // Each introspection is in the record, the refused one with its reason.
    let decisions = server.decisions("acme", &acme.key).await;
    let introspections: Vec<&Value> = decisions
        .iter()
        .filter(|d| d["event"] == "introspection")
        .collect();
    assert_eq!(introspections.len(), 4, "{decisions:?}");
    assert_eq!(introspections[0]["allowed"], false);
    assert!(
        introspections[0]["reason"]
            .as_str()
            .unwrap()
            .contains("3 uses are used up"),
        "{}",
        introspections[0]
    );
    assert_eq!(introspections[0]["jti"], claims["jti"]);
}

#[tokio::test]
async fn concurrent_introspections_of_the_last_use_leave_one_active() {
    let (_dir, issuer, server) = started("life-race", &[]);
    let acme = tenant_with(&server, &issuer, "acme", json!({"num_uses": 2})).await;
    let access = access_token(&server, &issuer, &acme).await;
    assert!(server.is_active(&acme.key, &access).await);
    let server = std::sync::Arc::new(server);
    let tries: Vec<_> = (0..12)
        .map(|_| {
            let (server, key, token) = (server.clone(), acme.key.clone(), access.clone());
            tokio::spawn(async move { server.is_active(&key, &token).await })
        })
        .collect();
    let mut active = 0;
    for attempt in tries {
        active += usize::from(attempt.await.unwrap());
    }
    assert_eq!(active, 1, "the last use was granted {active} times");
}

#[tokio::test]
async fn exchanges_and_introspections_from_outside_the_trusted_ranges_are_refused() {
    let (_dir, issuer, server) = started("life-cidrs", &[]);
    // The tests connect from 127.0.0.1: outside 10.0.0.0/8.
    let outside = tenant_with(
        &server,
        &issuer,
        "far",
        json!({"trusted_cidrs": ["10.0.0.0/8", "2001:db8::/32"]}),
    )
    .await;
    let token = issuer.token(&outside.audience, "prod", "deployer", &[]);
    let (status, body) = server
        .exchange(&outside.identity("deployer"), &token, &[])
        .await;
    assert_generic(status, &body, "exchange from outside the ranges");
    let denied = &server.decisions("far", &outside.key).await[0];
    assert_eq!(denied["code"], "untrusted-address", "{denied}");
    assert!(
        denied["reason"].as_str().unwrap().contains("127.0.0.1"),
        "{denied}"
    );

    let near = tenant_with(
        &server,
        &issuer,
        "near",
        json!({"trusted_cidrs": ["127.0.0.0/8"]}),
    )
    .await;
    let access = access_token(&server, &issuer, &near).await;
    assert_eq!(
        payload(&access)["limits"]["trusted_cidrs"],
        json!(["127.0.0.0/8"]),
        "the ranges travel with the token"
    );
    let from = |address: &'static str| [("client_address", address)];
    let (_, inside) = server
        .introspect(&near.key, &access, &from("127.0.0.9"))
        .await;
    assert_eq!(inside["active"], true, "{inside}");
    for address in ["10.1.2.3", "::1", "not-an-address"] {
        let (status, body) = server
            .introspect(&near.key, &access, &[("client_address", address)])
            .await;
        assert_eq!((status, body), (200, json!({"active": false})), "{address}");
    }
    // An identity with bad ranges is refused at write time, naming them.
    let (status, body) = server
        .put_identity("near", "bad", &near.key, json!({"issuer": "dev", "config": {"namespaces": ["prod"]}, "trusted_cidrs": ["10.0.0.0/33"]}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("trusted_cidrs"),
        "{body}"
    );
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_a_trusted_proxy() {
    let fields = json!({"trusted_cidrs": ["198.51.100.0/24"]});
    let spoof = |server: &Server, identity: String, token: String| {
        let form = [
            ("grant_type", tollgate_tests::server::TOKEN_EXCHANGE),
            ("subject_token", token.as_str()),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ("audience", identity.as_str()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let request = server
            .at(Method::POST, "/oauth2/token")
            .header("x-forwarded-for", "198.51.100.7")
            .header("forwarded", "for=198.51.100.7")
            .form(&form);
        Server::send(request)
    };
    // No trusted proxies: the socket's peer (127.0.0.1) is the client, whatever it claims.
    let (_dir, issuer, server) = started("life-spoof", &[]);
    let acme = tenant_with(&server, &issuer, "acme", fields.clone()).await;
    let token = issuer.token(&acme.audience, "prod", "deployer", &[]);
    let (status, body) = spoof(&server, acme.identity("deployer"), token).await;
    assert_generic(
        status,
        &body,
        "spoofed X-Forwarded-For from an untrusted peer",
    );

    // Loopback named as the proxy: its word counts.
    let (_dir2, issuer, server) = started("life-proxy", &["--trusted-proxies", "127.0.0.1"]);
    let acme = tenant_with(&server, &issuer, "acme", fields).await;
    let token = issuer.token(&acme.audience, "prod", "deployer", &[]);
    let (status, body) = spoof(&server, acme.identity("deployer"), token).await;
    assert_eq!(status, 200, "{body}\n{}", server.log());
    let allowed = &server.decisions("acme", &acme.key).await[0];
    assert_eq!(allowed["client_address"], "198.51.100.7");
}

#[tokio::test]
async fn a_revoked_token_is_inactive_and_cannot_be_renewed() {
    let (_dir, issuer, server) = started("life-revoke", &[]);
    let acme = tenant_with(&server, &issuer, "acme", json!({})).await;
    let access = access_token(&server, &issuer, &acme).await;
    let (status, renewed) = server.renew(&access).await;
    assert_eq!(status, 200, "{renewed}");
    let renewed = renewed["accessToken"].as_str().unwrap().to_owned();
    assert!(server.is_active(&acme.key, &access).await);

    let introspector = server.create_key("acme", &acme.key, "introspect").await;
    let (status, body) = server.revoke(&introspector, &access).await;
    assert_eq!(status, 200, "{body}");
    for token in [&access, &renewed] {
        assert!(
            !server.is_active(&acme.key, token).await,
            "revoking a token revokes its session"
        );
        let (status, body) = server.renew(token).await;
        assert_eq!(
            (status, body["error"].clone()),
            (400, json!("invalid_grant"))
        );
        let (status, _) = server.refresh(token).await;
        assert_eq!(status, 400);
    }
    // Revoking garbage, or again, is still 200 (RFC 7009 §2.2).
    assert_eq!(server.revoke(&introspector, "not-a-token").await.0, 200);
    assert_eq!(server.revoke(&introspector, &access).await.0, 200);
    // The record has the revocation.
    let decisions = server.decisions("acme", &acme.key).await;
    assert!(
        decisions
            .iter()
            .any(|d| d["event"] == "revocation" && d["jti"] == payload(&access)["jti"]),
        "{decisions:?}"
    );
}

#[tokio::test]
async fn revoking_an_identity_revokes_every_token_it_issued_before_now() {
    let (_dir, issuer, server) = started("life-revoke-all", &[]);
    let acme = tenant_with(&server, &issuer, "acme", json!({})).await;
    let first = access_token(&server, &issuer, &acme).await;
    let second = access_token(&server, &issuer, &acme).await;
    let (status, body) = server
        .admin(
            Method::POST,
            "/v1/tenants/acme/identities/deployer/revoke",
            Some(&acme.key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sessions"], 2);
    assert!(!server.is_active(&acme.key, &first).await);
    assert!(!server.is_active(&acme.key, &second).await);
    let later = access_token(&server, &issuer, &acme).await;
    assert!(
        server.is_active(&acme.key, &later).await,
        "a token issued after the revocation"
    );
    // Another tenant's key cannot revoke them.
    let (other_key, _) = server.create_tenant("other").await;
    let (status, _) = server
        .admin(
            Method::POST,
            "/v1/tenants/acme/identities/deployer/revoke",
            Some(&other_key),
            None,
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn another_tenant_can_neither_introspect_nor_revoke_a_token() {
    let (_dir, issuer, server) = started("life-tenants", &[]);
    let acme = tenant_with(&server, &issuer, "acme", json!({"num_uses": 5})).await;
    let access = access_token(&server, &issuer, &acme).await;
    let (mallory, _) = server.create_tenant("mallory").await;
    let mallory_introspector = server.create_key("mallory", &mallory, "introspect").await;
    for key in [&mallory, &mallory_introspector] {
        let (status, body) = server.introspect(key, &access, &[]).await;
        assert_eq!((status, body), (200, json!({"active": false})));
        assert_eq!(server.revoke(key, &access).await.0, 200);
    }
    // Untouched: still active, and none of its five uses went to mallory.
    let (_, body) = server.introspect(&acme.key, &access, &[]).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["uses_remaining"], 4);
    assert!(server.decisions("mallory", &mallory).await.is_empty());
    // No key, a bad key, or the operator's: RFC 6749 errors.
    let (status, body) = Server::send(
        server
            .at(Method::POST, "/oauth2/introspect")
            .form(&[("token", access.as_str())]),
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (401, json!("invalid_client"))
    );
    let (status, body) = server.introspect("tg_bogus", &access, &[]).await;
    assert_eq!(
        (status, body["error"].clone()),
        (401, json!("invalid_client"))
    );
    let (status, body) = server
        .introspect(tollgate_tests::server::OPERATOR_KEY, &access, &[])
        .await;
    assert_eq!(
        (status, body["error"].clone()),
        (403, json!("unauthorized_client"))
    );
    let (status, body) = server.introspect(&acme.key, "", &[]).await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_request"))
    );
}

#[tokio::test]
async fn renewal_never_outlives_max_ttl() {
    let (_dir, issuer, server) = started("life-renew", &[]);
    let acme = tenant_with(
        &server,
        &issuer,
        "acme",
        json!({"ttl_seconds": 2, "max_ttl_seconds": 3}),
    )
    .await;
    let first = access_token(&server, &issuer, &acme).await;
    let start = payload(&first)["auth_time"].as_i64().unwrap();
    assert_eq!(payload(&first)["limits"]["renew_until"], start + 3);
    let mut token = first.clone();
    let mut renewals = 0;
    loop {
        let (status, body) = if renewals % 2 == 0 {
            server.renew(&token).await
        } else {
            server.refresh(&token).await
        };
        if status != 200 {
            assert_eq!(body["error"], "invalid_grant", "{body}");
            break;
        }
        renewals += 1;
        let next = body["accessToken"]
            .as_str()
            .or(body["access_token"].as_str())
            .unwrap()
            .to_owned();
        let claims = payload(&next);
        assert!(
            claims["exp"].as_i64().unwrap() <= start + 3,
            "renewed past max_ttl: {claims}"
        );
        assert_eq!(claims["sid"], payload(&first)["jti"]);
        assert_eq!(claims["auth_time"], start);
        assert_ne!(claims["jti"], payload(&token)["jti"]);
        if body.get("accessTokenMaxTTL").is_some() {
            assert_eq!(body["accessTokenMaxTTL"], 3);
        }
        token = next;
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(renewals < 20, "renewals never ended");
    }
    assert!(renewals >= 2, "only {renewals} renewals");
    assert!(
        tollgate_tests::jwt::now() >= start + 2,
        "refused before the session could end"
    );
    let decisions = server.decisions("acme", &acme.key).await;
    let renewal = decisions
        .iter()
        .find(|d| d["event"] == "renewal" && d["allowed"] == true)
        .unwrap();
    assert_eq!(renewal["session"], payload(&first)["jti"]);
    assert!(renewal["subject_jti"].is_string());
}

#[tokio::test]
async fn the_servers_cap_clamps_issued_lifetimes_with_a_warning() {
    let (_dir, issuer, server) = started("life-cap", &["--max-issued-ttl-seconds", "600"]);
    let acme = quickstart(&server, &issuer, "acme").await;
    let mut identity = quickstart_identity();
    identity["ttl_seconds"] = json!(2_592_000);
    identity["max_ttl_seconds"] = json!(2_592_000);
    let (status, body) = server
        .put_identity("acme", "deployer", &acme.key, identity)
        .await;
    assert_eq!(status, 200, "{body}");
    let warning = body["warnings"][0].as_str().unwrap();
    assert!(warning.contains("600"), "{warning}");
    assert!(
        server.log().contains("over this server's cap"),
        "{}",
        server.log()
    );
    let token = issuer.token(&acme.audience, "prod", "deployer", &[]);
    let (status, body) = server
        .exchange(&acme.identity("deployer"), &token, &[])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 600);
    assert!(body["warnings"][0].as_str().unwrap().contains("600"));
    let claims = payload(body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    // The token is RFC 9068 shaped.
    let header = tollgate_tests::jwt::segment(body["access_token"].as_str().unwrap(), 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["client_id"], "system:serviceaccount:prod:deployer");
}

#[tokio::test]
async fn a_token_signed_two_rotations_ago_verifies_until_it_expires() {
    let (_dir, issuer, server) = started("life-rotation", &["--key-rotation-seconds", "1"]);
    let acme = tenant_with(&server, &issuer, "acme", json!({"ttl_seconds": 600})).await;
    let access = access_token(&server, &issuer, &acme).await;
    let kid = tollgate_tests::jwt::kid(&access);
    // Wait for two rotations.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let kids = tollgate_tests::server::kids(&server.jwks().await);
        if kids.len() >= 3 && kids[0] != kid && kids[1] != kid {
            assert!(kids.contains(&kid), "the old key left the JWKS: {kids:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no two rotations: {kids:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    server.verify(&access, REGISTRY).await;
    assert!(server.is_active(&acme.key, &access).await);
    let discovery = server.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        discovery["introspection_endpoint"],
        format!("{}/oauth2/introspect", server.url)
    );
    assert_eq!(
        discovery["revocation_endpoint"],
        format!("{}/oauth2/revoke", server.url)
    );
    let oauth = server
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(
        oauth["introspection_endpoint"],
        discovery["introspection_endpoint"]
    );
}

/// The record tells the story: both token ids, the policy's log lines (bounded), and
/// exchanges that name an identity that no longer exists.
#[tokio::test]
async fn the_record_keeps_both_jtis_the_policys_lines_and_deleted_identities() {
    let (_dir, issuer, server) = started("life-record", &[]);
    let acme = quickstart(&server, &issuer, "acme").await;
    let digest = tollgate_tests::attack::upload_hostile(&server, &acme).await;
    // Thirty lines logged: more than a record keeps.
    let mut chatty = quickstart_identity();
    chatty["policy"] = json!(digest);
    chatty["config"] = json!({"mode": "talk"});
    let (status, body) = server
        .put_identity("acme", "hostile", &acme.key, chatty)
        .await;
    assert_eq!(status, 200, "{body}");
    let token = issuer.token(&acme.audience, "prod", "deployer", &[]);
    let (status, body) = server
        .exchange(&acme.identity("hostile"), &token, &[])
        .await;
    assert_eq!(status, 200, "{body}\n{}", server.log());
    let record = &server.decisions("acme", &acme.key).await[0];
    assert_eq!(record["event"], "exchange");
    assert_eq!(
        record["jti"],
        payload(body["access_token"].as_str().unwrap())["jti"]
    );
    assert_eq!(record["subject_jti"], payload(&token)["jti"]);
    assert_eq!(record["session"], record["jti"]);
    let logs = record["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 21, "20 lines and a note: {logs:?}");
    assert_eq!(logs[0], "info: line 0 of 30");
    assert!(logs[20].as_str().unwrap().contains("left out"), "{logs:?}");

    // Delete the identity; a workload still asking for it is recorded for the tenant.
    let (status, _) = server
        .admin(
            Method::DELETE,
            "/v1/tenants/acme/identities/deployer",
            Some(&acme.key),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = server
        .exchange(&acme.identity("deployer"), &token, &[])
        .await;
    assert_generic(status, &body, "a deleted identity");
    let record = &server.decisions("acme", &acme.key).await[0];
    assert_eq!(record["identity"], "deployer");
    assert_eq!(record["code"], "unknown-identity");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{record}"
    );
    // Nothing is recorded for a tenant that does not exist.
    let (status, _) = server
        .exchange("tenants/nobody/identities/deployer", &token, &[])
        .await;
    assert_eq!(status, 400);
}

/// A pod's default projected token (kube-api-access): a year of `exp`, judged by `warnafter`.
#[tokio::test]
async fn a_pods_extended_default_token_is_accepted_before_its_warn_time() {
    let (_dir, issuer, server) = started("life-extended", &[]);
    let acme = quickstart(&server, &issuer, "acme").await;
    let token = issuer.token(&acme.audience, "prod", "deployer", &["--extended"]);
    let claims = payload(&token);
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 31_536_000);
    assert!(claims["kubernetes.io"]["warnafter"].as_i64().unwrap() - iat < 7200);
    let (status, body) = server
        .exchange(&acme.identity("deployer"), &token, &[])
        .await;
    assert_eq!(status, 200, "{body}\n{}", server.log());
}
