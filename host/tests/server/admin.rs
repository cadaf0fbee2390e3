//! The admin API against the real server: keys, validation at write time, policy upload and
//! simulation, and an uploaded policy deciding a real exchange.

use tollgate_tests::fixtures;
use tollgate_tests::server as server_support;

use reqwest::Method;
use serde_json::{Value, json};
use server_support::{
    DevIssuer, GENERIC_DENIAL, OPERATOR_KEY, Server, TempDir, oauth_error, quickstart,
};

fn team_scopes_config() -> Value {
    json!({
        "teams": [{"prefix": "team-a-", "team": "team-a", "scopes": ["team-a.read", "team-a.deploy"]}],
        "ttl_seconds": 600,
    })
}

/// `(status, message)` of an admin error answer.
fn message(status: u16, body: &Value) -> (u16, String) {
    (
        status,
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn admin_requests_need_the_right_key() {
    let dir = TempDir::new("admin-keys");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    let tenant = Some(json!({"name": "other"}));

    for key in [
        None,
        Some("wrong-key"),
        Some(""),
        Some("e2e-operator-secretx"),
    ] {
        for (method, path) in [
            (Method::GET, "/v1/tenants"),
            (Method::GET, "/v1/tenants/acme/identities"),
            (Method::GET, "/v1/tenants/acme/identities/deployer"),
            (Method::DELETE, "/v1/tenants/acme/identities/deployer"),
            (Method::GET, "/v1/tenants/acme/decisions"),
            (Method::POST, "/v1/tenants/acme/keys"),
        ] {
            let (status, body) = server.admin(method.clone(), path, key, None).await;
            assert_eq!(status, 401, "{method} {path} with {key:?}: {body}");
        }
        let (status, _) = server
            .admin(Method::POST, "/v1/tenants", key, tenant.clone())
            .await;
        assert_eq!(status, 401);
    }
    // A Basic header carrying the operator key is not a bearer key.
    let basic = server
        .at(Method::GET, "/v1/tenants")
        .basic_auth(OPERATOR_KEY, None::<&str>);
    assert_eq!(Server::send(basic).await.0, 401);

    // A tenant key manages its tenant, not the tenant list.
    let (status, body) = server
        .admin(Method::POST, "/v1/tenants", Some(&acme.key), tenant.clone())
        .await;
    assert_eq!(message(status, &body).0, 403, "{body}");
    let (status, _) = server
        .admin(Method::GET, "/v1/tenants", Some(&acme.key), None)
        .await;
    assert_eq!(status, 403);
    let identity = "/v1/tenants/acme/identities/deployer";
    let (status, _) = server
        .admin(Method::GET, identity, Some(&acme.key), None)
        .await;
    assert_eq!(status, 200);
    // Nothing was deleted by the refused requests.
    let (status, _) = server
        .admin(Method::GET, identity, Some(OPERATOR_KEY), None)
        .await;
    assert_eq!(status, 200);

    // A new tenant key works alongside the first.
    let (status, body) = server
        .admin(Method::POST, "/v1/tenants/acme/keys", Some(&acme.key), None)
        .await;
    assert_eq!(status, 201, "{body}");
    let second = body["api_key"].as_str().unwrap();
    assert_ne!(second, acme.key);
    let (status, _) = server
        .admin(Method::GET, identity, Some(second), None)
        .await;
    assert_eq!(status, 200);

    // Tenant names are checked and unique.
    for bad in [
        json!({"name": "Bad Name"}),
        json!({"name": ""}),
        json!({"name": "x", "plan": "gold"}),
    ] {
        let (status, body) = server
            .admin(
                Method::POST,
                "/v1/tenants",
                Some(OPERATOR_KEY),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let (status, _) = server
        .admin(
            Method::POST,
            "/v1/tenants",
            Some(OPERATOR_KEY),
            Some(json!({"name": "acme"})),
        )
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn identities_are_validated_when_written() {
    let dir = TempDir::new("admin-identities");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    let put = |body: Value| server.put_identity("acme", "broken", &acme.key, body);

    let rules = json!({"namespaces": ["prod"]});
    let cases = [
        (
            json!({"issuer": "nope", "config": rules}),
            "issuer `nope` is not registered",
        ),
        (
            json!({"issuer": "dev", "policy": format!("sha256:{}", "0".repeat(64)), "config": rules}),
            "is not uploaded",
        ),
        (
            json!({"issuer": "dev", "config": {"grant": {"scopes": ["x"]}}}),
            "binds nothing",
        ),
        (
            json!({"issuer": "dev", "config": {"namespaces": ["prod"], "colour": "red"}}),
            "colour",
        ),
        (
            json!({"issuer": "dev", "config": rules, "colour": "red"}),
            "colour",
        ),
        (
            json!({"issuer": "dev", "config": {"namespaces": []}}),
            "namespaces",
        ),
        (
            json!({"issuer": "dev", "config": rules, "ttl_seconds": 7200}),
            "ttl_seconds",
        ),
        (
            json!({"issuer": "dev", "config": rules, "scopes": ["two words"]}),
            "whitespace",
        ),
    ];
    for (body, expected) in cases {
        let (status, message) = message_of(put(body.clone()).await);
        assert_eq!(status, 422, "{body}: {message}");
        assert!(message.contains(expected), "{body}: {message}");
    }
    let path = "/v1/tenants/acme/identities/broken";
    let (status, _) = server.admin(Method::GET, path, Some(&acme.key), None).await;
    assert_eq!(status, 404, "a rejected identity is not stored");

    // Issuers are checked too.
    let path = "/v1/tenants/acme/issuers/bad";
    for body in [
        json!({"issuer_url": "not a url"}),
        json!({"issuer_url": issuer.url, "source": {"mode": "telepathy"}}),
        json!({"issuer_url": issuer.url, "extra": true}),
    ] {
        let (status, body) = server
            .admin(Method::PUT, path, Some(&acme.key), Some(body.clone()))
            .await;
        assert_eq!(status, 422, "{body}");
        assert!(!message(status, &body).1.is_empty(), "{body}");
    }
}

fn message_of((status, body): (u16, Value)) -> (u16, String) {
    message(status, &body)
}

#[tokio::test]
async fn an_uploaded_policy_decides_exchanges_and_simulations() {
    let dir = TempDir::new("admin-policy");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    let module = fixtures::module("team-scopes");

    let (status, body) = server
        .upload_policy("acme", &acme.key, module.clone(), "text/plain")
        .await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = server
        .upload_policy(
            "acme",
            &acme.key,
            module.clone(),
            "application/octet-stream",
        )
        .await;
    assert_eq!(status, 415, "{body}");
    let garbage = b"\0asm\x01\0\0\0 this is not a module".to_vec();
    let (status, body) = server
        .upload_policy("acme", &acme.key, garbage, "application/wasm")
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        message(status, &body).1.contains("module rejected"),
        "{body}"
    );

    let (status, body) = server
        .upload_policy("acme", &acme.key, module, "application/wasm")
        .await;
    assert_eq!(status, 201, "{body}");
    let digest = body["digest"].as_str().unwrap().to_owned();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    let (_, listed) = server
        .admin(
            Method::GET,
            "/v1/tenants/acme/policies",
            Some(&acme.key),
            None,
        )
        .await;
    assert!(listed.to_string().contains(&digest), "{listed}");

    // The module validates its own config at identity creation.
    let mut identity = json!({
        "issuer": "dev", "policy": digest,
        "config": {"teams": [{"prefix": "team-a", "team": "team-a", "scopes": ["x"]}]},
        "scopes": ["team-a.read", "team-a.deploy"], "token_audiences": ["https://team-a.example"],
    });
    let (status, text) = message_of(
        server
            .put_identity("acme", "team", &acme.key, identity.clone())
            .await,
    );
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("must end with `-`"), "{text}");
    identity["config"] = team_scopes_config();
    let (status, body) = server
        .put_identity("acme", "team", &acme.key, identity)
        .await;
    assert_eq!(status, 200, "{body}");

    let name = acme.identity("team");
    let token = issuer.token(&acme.audience, "team-a-prod", "builder", &[]);
    let (status, body) = server.exchange(&name, &token, &[]).await;
    assert_eq!(status, 200, "{body}\n{}", server.log());
    assert_eq!(body["scope"], "team-a.read team-a.deploy");
    assert_eq!(
        body["expires_in"], 600,
        "the policy's ttl caps the identity's"
    );
    let claims = server
        .verify(
            body["access_token"].as_str().unwrap(),
            "https://team-a.example",
        )
        .await;
    assert_eq!(claims["policy"], digest.as_str());
    assert_eq!(claims["team"], "team-a", "the policy's claim is issued");
    let (status, body) = server
        .exchange(&name, &token, &[("scope", "team-a.read")])
        .await;
    assert_eq!((status, &body["scope"]), (200, &json!("team-a.read")));

    // Another team's namespace is denied, generically.
    let other = issuer.token(&acme.audience, "team-b-prod", "builder", &[]);
    let (status, body) = server.exchange(&name, &other, &[]).await;
    assert_eq!(
        oauth_error(status, &body, "invalid_request"),
        GENERIC_DENIAL
    );

    // Simulation: claims as if verified, or a real token; nothing is issued.
    let simulate = "/v1/tenants/acme/identities/team/simulate";
    let claims_for = |namespace: &str| {
        json!({"claims": {
            "iss": issuer.url, "sub": format!("system:serviceaccount:{namespace}:builder"),
            "kubernetes.io": {"namespace": namespace,
                "serviceaccount": {"name": "builder", "uid": "5e1c1f9e-7a52-4bb2-9a7c-3d0c2a1b9f00"}},
        }})
    };
    let (status, body) = server
        .admin(
            Method::POST,
            simulate,
            Some(&acme.key),
            Some(claims_for("team-a-dev")),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let evaluation = &body["evaluation"];
    assert_eq!(evaluation["decision"], "allow", "{body}");
    assert_eq!(
        evaluation["scopes"],
        json!(["team-a.read", "team-a.deploy"])
    );
    assert!(evaluation["fuel_used"].as_u64().unwrap() > 0, "{body}");
    // Durations name their unit.
    assert!(evaluation["elapsed_us"].is_u64(), "{body}");
    assert!(evaluation.get("elapsed").is_none(), "{body}");
    assert_eq!(body["reasons"], json!([]));
    let (status, body) = server
        .admin(
            Method::POST,
            simulate,
            Some(&acme.key),
            Some(claims_for("payments")),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["evaluation"]["decision"], "deny", "{body}");
    assert_eq!(body["evaluation"]["code"], "no-team", "{body}");
    assert!(body["evaluation"]["fuel_used"].as_u64().unwrap() > 0);
    assert!(
        body["reasons"][0].as_str().unwrap().contains("payments"),
        "{body}"
    );
    let by_token = json!({"token": token});
    let (status, body) = server
        .admin(Method::POST, simulate, Some(&acme.key), Some(by_token))
        .await;
    assert_eq!(
        (status, &body["evaluation"]["decision"]),
        (200, &json!("allow")),
        "{body}"
    );
    let both = json!({"token": token, "claims": {}});
    let (status, _) = server
        .admin(Method::POST, simulate, Some(&acme.key), Some(both))
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn issuers_keep_their_secrets_and_their_users() {
    let dir = TempDir::new("admin-issuers");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    let k = Some(acme.key.as_str());

    let secret = "reviewer-secret-6f1d2c";
    let review = json!({
        "issuer_url": "https://kubernetes.default.svc",
        "source": {"mode": "token_review", "api_server": "https://127.0.0.1:6443", "ca_pem": null, "reviewer_token": secret},
    });
    let path = "/v1/tenants/acme/issuers/cluster";
    let (status, put) = server.admin(Method::PUT, path, k, Some(review)).await;
    assert_eq!(status, 200, "{put}");
    let (_, got) = server.admin(Method::GET, path, k, None).await;
    let (_, listed) = server
        .admin(Method::GET, "/v1/tenants/acme/issuers", k, None)
        .await;
    for answer in [&put, &got, &listed] {
        assert!(!answer.to_string().contains(secret), "{answer}");
    }
    assert_eq!(got["source"]["reviewer_token"], "<redacted>");
    assert!(
        !server.log().contains(secret),
        "the reviewer token is logged"
    );
    assert_eq!(got["source"]["api_server"], "https://127.0.0.1:6443");

    // An issuer an identity uses cannot be deleted from under it; an unused one can.
    let (status, body) = server
        .admin(Method::DELETE, "/v1/tenants/acme/issuers/dev", k, None)
        .await;
    assert_eq!(status, 409, "{body}");
    let token = issuer.token(&acme.audience, "prod", "deployer", &[]);
    let (status, body) = server
        .exchange(&acme.identity("deployer"), &token, &[])
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.admin(Method::DELETE, path, k, None).await;
    assert_eq!(status, 204);
    let (status, _) = server.admin(Method::GET, path, k, None).await;
    assert_eq!(status, 404);
    let (status, _) = server.admin(Method::DELETE, path, k, None).await;
    assert_eq!(status, 404);
}

/// The OpenAPI document lists every admin route with its typed bodies, and the body it
/// declares for an identity is the one the route reads.
#[tokio::test]
async fn the_openapi_document_describes_the_admin_api() {
    let dir = TempDir::new("openapi");
    let server = Server::start(&dir.path().join("data"));
    let document = server.get_json("/openapi.json").await;
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3."),
        "{document}"
    );
    let paths = document["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/v1/tenants", &["post", "get"][..]),
        ("/v1/tenants/{tenant}/keys", &["post"]),
        ("/v1/tenants/{tenant}/issuers", &["get"]),
        (
            "/v1/tenants/{tenant}/issuers/{name}",
            &["put", "get", "delete"],
        ),
        ("/v1/tenants/{tenant}/policies", &["post", "get"]),
        ("/v1/tenants/{tenant}/identities", &["get"]),
        (
            "/v1/tenants/{tenant}/identities/{id}",
            &["put", "get", "delete"],
        ),
        ("/v1/tenants/{tenant}/identities/{id}/simulate", &["post"]),
        ("/v1/tenants/{tenant}/identities/{id}/revoke", &["post"]),
        ("/v1/tenants/{tenant}/decisions", &["get"]),
        ("/v1/tenants/{tenant}/policies/{name}", &["get"]),
        ("/v1/tenants/{tenant}/policies/{name}/rollback", &["post"]),
        ("/v1/tenants/{tenant}/identities/{id}/promote", &["post"]),
        ("/v1/tenants/{tenant}/identities/{id}/shadow", &["get"]),
        ("/v1/tenants/{tenant}/identities/{id}/replay", &["post"]),
    ] {
        for method in methods {
            assert!(
                paths[path][method].is_object(),
                "{method} {path} is not documented"
            );
        }
    }
    let spec = &document["components"]["schemas"]["IdentitySpec"]["properties"];
    let mut documented: Vec<&str> = spec
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    documented.sort_unstable();
    assert_eq!(
        documented,
        [
            "accepted_audiences",
            "cases",
            "config",
            "fuel",
            "issuer",
            "max_ttl_seconds",
            "num_uses",
            "policy",
            "scopes",
            "shadow",
            "token_audiences",
            "trusted_cidrs",
            "ttl_seconds",
        ]
    );
    // Each documented field is one the route takes, and a field it does not document is refused.
    let (key, _) = server.create_tenant("acme").await;
    let (status, body) = server
        .put_identity(
            "acme",
            "x",
            &key,
            json!({"issuer": "dev", "colour": "blue"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("colour"),
        "{body}"
    );
}
