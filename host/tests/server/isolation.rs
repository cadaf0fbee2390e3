//! Tenants on one server cannot reach each other: not through the admin API with their keys,
//! not through the exchange with their workloads' tokens, even when both trust the same
//! cluster and name their identities alike.

use tollgate_tests::fixtures;
use tollgate_tests::server as server_support;

use reqwest::Method;
use serde_json::json;
use server_support::{DevIssuer, GENERIC_DENIAL, Server, TempDir, Tenant, oauth_error, quickstart};

#[tokio::test]
async fn a_tenant_key_cannot_touch_another_tenant() {
    let dir = TempDir::new("isolation-admin");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let alpha = quickstart(&server, &issuer, "alpha").await;
    let beta = quickstart(&server, &issuer, "beta").await;
    let (status, body) = server
        .upload_policy(
            "alpha",
            &alpha.key,
            fixtures::module("team-scopes"),
            "application/wasm",
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let alpha_digest = body["digest"].as_str().unwrap().to_owned();

    let b = Some(beta.key.as_str());
    let issuer_body = json!({"issuer_url": issuer.url});
    let identity_body = json!({"issuer": "dev", "config": {"namespaces": ["*"]}});
    let simulate = json!({"claims": {"sub": "x"}});
    let attempts = [
        (Method::GET, "/v1/tenants/alpha/issuers", None),
        (Method::GET, "/v1/tenants/alpha/issuers/dev", None),
        (
            Method::PUT,
            "/v1/tenants/alpha/issuers/dev",
            Some(issuer_body.clone()),
        ),
        (
            Method::PUT,
            "/v1/tenants/alpha/issuers/new",
            Some(issuer_body),
        ),
        (Method::DELETE, "/v1/tenants/alpha/issuers/dev", None),
        (Method::GET, "/v1/tenants/alpha/identities", None),
        (Method::GET, "/v1/tenants/alpha/identities/deployer", None),
        (
            Method::PUT,
            "/v1/tenants/alpha/identities/deployer",
            Some(identity_body.clone()),
        ),
        (
            Method::PUT,
            "/v1/tenants/alpha/identities/new",
            Some(identity_body),
        ),
        (
            Method::DELETE,
            "/v1/tenants/alpha/identities/deployer",
            None,
        ),
        (
            Method::POST,
            "/v1/tenants/alpha/identities/deployer/simulate",
            Some(simulate),
        ),
        (Method::GET, "/v1/tenants/alpha/policies", None),
        (Method::GET, "/v1/tenants/alpha/decisions", None),
        (Method::POST, "/v1/tenants/alpha/keys", None),
        // A tenant that does not exist looks the same as one that does.
        (Method::GET, "/v1/tenants/gamma/identities", None),
        (Method::POST, "/v1/tenants/gamma/keys", None),
    ];
    for (method, path, body) in attempts {
        let (status, answer) = server.admin(method.clone(), path, b, body).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert!(!answer.to_string().contains("deployer"), "{answer}");
    }
    let (status, _) = server
        .upload_policy(
            "alpha",
            &beta.key,
            fixtures::module("team-scopes"),
            "application/wasm",
        )
        .await;
    assert_eq!(status, 403);

    // Beta cannot use alpha's module by its digest either: policies belong to a tenant.
    let borrowed = json!({
        "issuer": "dev", "policy": alpha_digest,
        "config": {"teams": [{"prefix": "team-a-", "team": "a", "scopes": ["s"]}]},
    });
    let (status, body) = server
        .put_identity("beta", "borrowed", &beta.key, borrowed)
        .await;
    assert_eq!(status, 422, "{body}");

    // Alpha's objects are untouched.
    let a = Some(alpha.key.as_str());
    let (status, body) = server
        .admin(
            Method::GET,
            "/v1/tenants/alpha/identities/deployer",
            a,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["uid"], alpha.uid.as_str());
    assert_eq!(
        body["config"],
        json!({"namespaces": ["prod"], "grant": {"scopes": ["registry.pull"]}})
    );
    let (status, body) = server
        .admin(Method::GET, "/v1/tenants/alpha/issuers", a, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["issuers"].as_array().unwrap().len(), 1, "{body}");
    let (status, body) = server
        .admin(Method::GET, "/v1/tenants/alpha/identities", a, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["identities"].as_array().unwrap().len(), 1, "{body}");
}

/// Exchanges a token for `identity` and asserts the generic denial.
async fn refused(server: &Server, identity: &str, token: &str, case: &str) {
    let (status, body) = server.exchange(identity, token, &[]).await;
    let description = oauth_error(status, &body, "invalid_request");
    assert_eq!(description, GENERIC_DENIAL, "{case}");
    let (status, body) = server.chainguard(identity, token, None).await;
    assert_eq!(status, 400, "{case}: {body}");
}

#[tokio::test]
async fn a_workload_token_only_opens_its_own_tenant() {
    let dir = TempDir::new("isolation-exchange");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    // Same issuer URL, same identity name and config in both tenants.
    let alpha = quickstart(&server, &issuer, "alpha").await;
    let beta = quickstart(&server, &issuer, "beta").await;
    assert_ne!(alpha.uid, beta.uid);
    let for_alpha = issuer.token(&alpha.audience, "prod", "deployer", &[]);
    let for_beta = issuer.token(&beta.audience, "prod", "deployer", &[]);

    let own = |tenant: &Tenant, token: &str| {
        let (tenant, token) = (tenant.identity("deployer"), token.to_owned());
        let server = &server;
        async move {
            let (status, body) = server.exchange(&tenant, &token, &[]).await;
            assert_eq!(status, 200, "{body}");
            let claims = server
                .verify(
                    body["access_token"].as_str().unwrap(),
                    "https://registry.example",
                )
                .await;
            assert_eq!(claims["sub"], tenant.as_str());
            claims
        }
    };
    assert_eq!(own(&alpha, &for_alpha).await["tenant"], "alpha");
    assert_eq!(own(&beta, &for_beta).await["tenant"], "beta");

    for (case, identity, token) in [
        (
            "alpha's token for beta",
            beta.identity("deployer"),
            &for_alpha,
        ),
        ("alpha's token for beta's uid", beta.uid.clone(), &for_alpha),
        (
            "beta's token for alpha",
            alpha.identity("deployer"),
            &for_beta,
        ),
        ("beta's token for alpha's uid", alpha.uid.clone(), &for_beta),
    ] {
        refused(&server, &identity, token, case).await;
    }
    // A token carrying both audiences still only opens each tenant's identity, not a
    // mix: it is valid for both, which is what the workload's cluster decided.
    let both = issuer.token(
        &alpha.audience,
        "prod",
        "deployer",
        &["--audience", &beta.audience],
    );
    own(&alpha, &both).await;
    own(&beta, &both).await;

    // Each tenant's log shows its own decisions and the other's denials of its identities.
    for (tenant, key, other) in [(&alpha, &alpha.key, "beta"), (&beta, &beta.key, "alpha")] {
        let path = format!("/v1/tenants/{}/decisions", tenant.name);
        let (status, log) = server.admin(Method::GET, &path, Some(key), None).await;
        assert_eq!(status, 200, "{log}");
        let decisions = log["decisions"].as_array().unwrap();
        assert!(
            decisions
                .iter()
                .all(|d| d["tenant"] == tenant.name.as_str()),
            "{log}"
        );
        let allowed = decisions.iter().filter(|d| d["allowed"] == true).count();
        let denied = decisions.iter().filter(|d| d["allowed"] == false).count();
        assert_eq!((allowed, denied), (2, 4), "{log}");
        let refused_by_verification = decisions
            .iter()
            .filter(|d| d["allowed"] == false)
            .all(|d| d["code"] == "invalid-token");
        assert!(refused_by_verification, "{log}");
        assert!(
            !log.to_string().contains(&format!("tenants/{other}")),
            "{log}"
        );
    }
}

/// Issue 11, item 5: tenant C lists tenant A's audience (or anything under another tenant's
/// `{public_url}/tenants/`, spelled in any case) among an identity's accepted audiences, so
/// that A's workload tokens would be exchanged at C. Refused at registration; C's own audience
/// and audiences outside the server are accepted, and A's token still opens nothing at C.
#[tokio::test]
async fn a_tenant_cannot_accept_another_tenants_audience() {
    let dir = TempDir::new("isolation-audience");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let alpha = quickstart(&server, &issuer, "alpha").await;
    let gamma = quickstart(&server, &issuer, "gamma").await;
    for foreign in [
        alpha.audience.clone(),
        format!("{}/", alpha.audience),
        format!("{}/x", alpha.audience),
        server.tenant_audience("not-yet-created"),
        alpha.audience.replace("http://", "HTTP://"),
        alpha.audience.replace("/tenants/", "/TENANTS/"),
    ] {
        let mut body = server_support::quickstart_identity();
        body["accepted_audiences"] = json!([gamma.audience, foreign]);
        let (status, answer) = server
            .put_identity("gamma", "thief", &gamma.key, body)
            .await;
        assert_eq!(status, 422, "{foreign}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("belongs to another tenant"),
            "{answer}"
        );
    }
    let mut body = server_support::quickstart_identity();
    body["accepted_audiences"] = json!([gamma.audience, "https://gamma.example/sts"]);
    let (status, answer) = server.put_identity("gamma", "fair", &gamma.key, body).await;
    assert_eq!(status, 200, "{answer}");
    let for_alpha = issuer.token(&alpha.audience, "prod", "deployer", &[]);
    for id in ["thief", "fair"] {
        refused(&server, &gamma.identity(id), &for_alpha, id).await;
    }
}
