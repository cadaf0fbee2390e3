//! The quickstart, end to end: a dev issuer and `tollgate serve` as real processes, the four
//! exchange shapes, and the issued tokens verified as a relying party would.

use tollgate_tests::jwt::now;
use tollgate_tests::server as server_support;

use reqwest::Method;
use serde_json::{Value, json};
use server_support::{CR_TOKEN, DevIssuer, Server, TOKEN_EXCHANGE, TempDir, Tenant, quickstart};
use std::collections::HashSet;

const REGISTRY: &str = "https://registry.example";
const OTHER: &str = "https://other.example";

/// Everything an issued token must carry, for the quickstart workload.
fn check_claims(claims: &Value, server: &Server, issuer: &DevIssuer, acme: &Tenant, aud: &str) {
    assert_eq!(claims["iss"], server.url.as_str(), "{claims}");
    assert_eq!(claims["sub"], "tenants/acme/identities/deployer");
    assert_eq!(claims["aud"], aud);
    assert_eq!(claims["scope"], "registry.pull");
    let iat = claims["iat"].as_i64().unwrap();
    assert!((iat - now()).abs() < 120, "iat {iat}");
    assert_eq!(claims["nbf"], iat);
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 900);
    let jti = claims["jti"].as_str().unwrap();
    assert!(jti.len() >= 16, "{jti}");
    assert_eq!(
        claims["act"],
        json!({"iss": issuer.url, "sub": "system:serviceaccount:prod:deployer"})
    );
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["identity"], acme.uid.as_str());
    let digest = claims["policy"].as_str().unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert_eq!(claims["kubernetes"]["namespace"], "prod");
    assert_eq!(claims["kubernetes"]["service_account"], "deployer");
    assert_eq!(claims["kubernetes"]["pod"], "api-1");
}

#[tokio::test]
async fn the_quickstart_works_in_all_four_shapes() {
    let dir = TempDir::new("exchange-quickstart");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    let token = issuer.token(&acme.audience, "prod", "deployer", &[]);
    let name = acme.identity("deployer");
    let mut jtis = HashSet::new();

    // RFC 8693, by resource name.
    let (status, body) = server.exchange(&name, &token, &[]).await;
    assert_eq!(status, 200, "{body}\n{}", server.log());
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "registry.pull");
    let access = body["access_token"].as_str().unwrap();
    let claims = server.verify(access, REGISTRY).await;
    check_claims(&claims, &server, &issuer, &acme, REGISTRY);
    jtis.insert(claims["jti"].clone());
    let digest = claims["policy"].clone();

    // RFC 8693, by opaque uid, an `id_token` subject type and another of the identity's
    // audiences picked with `resource`.
    let extra = [
        ("resource", OTHER),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        ),
    ];
    let form: Vec<(&str, &str)> = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", token.as_str()),
        ("audience", acme.uid.as_str()),
    ]
    .into_iter()
    .chain(extra)
    .collect();
    let (status, body) = server.token_endpoint(&form).await;
    assert_eq!(status, 200, "{body}");
    let claims = server
        .verify(body["access_token"].as_str().unwrap(), OTHER)
        .await;
    check_claims(&claims, &server, &issuer, &acme, OTHER);
    jtis.insert(claims["jti"].clone());

    // Chainguard: by name (default audience) and by uid with `aud`.
    let (status, body) = server.chainguard(&name, &token, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let claims = server
        .verify(body["token"].as_str().unwrap(), REGISTRY)
        .await;
    check_claims(&claims, &server, &issuer, &acme, REGISTRY);
    jtis.insert(claims["jti"].clone());
    let (status, body) = server.chainguard(&acme.uid, &token, Some(OTHER)).await;
    assert_eq!(status, 200, "{body}");
    let claims = server.verify(body["token"].as_str().unwrap(), OTHER).await;
    check_claims(&claims, &server, &issuer, &acme, OTHER);
    jtis.insert(claims["jti"].clone());

    // Infisical, by name and by uid.
    for identity in [name.as_str(), acme.uid.as_str()] {
        let (status, body) = server.infisical(identity, &token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["tokenType"], "Bearer");
        assert_eq!(body["expiresIn"], 900);
        assert_eq!(body["accessTokenMaxTTL"], 3600);
        let claims = server
            .verify(body["accessToken"].as_str().unwrap(), REGISTRY)
            .await;
        check_claims(&claims, &server, &issuer, &acme, REGISTRY);
        jtis.insert(claims["jti"].clone());
    }

    // IBM's cr-token grant, by name and by uid.
    for identity in [name.as_str(), acme.uid.as_str()] {
        let (status, body) = server.ibm(identity, &token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        let expiration = body["expiration"].as_i64().unwrap();
        assert!((expiration - now() - 900).abs() < 120, "{body}");
        let claims = server
            .verify(body["access_token"].as_str().unwrap(), REGISTRY)
            .await;
        check_claims(&claims, &server, &issuer, &acme, REGISTRY);
        jtis.insert(claims["jti"].clone());
    }
    assert_eq!(jtis.len(), 8, "every issued token has its own jti");

    // Every token names the same policy digest, the one the decision log records.
    let (status, log) = server
        .admin(
            Method::GET,
            "/v1/tenants/acme/decisions",
            Some(&acme.key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{log}");
    let decisions = log["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 8, "{log}");
    for decision in decisions {
        assert_eq!(decision["allowed"], true, "{decision}");
        assert_eq!(decision["policy_digest"], digest, "{decision}");
        assert_eq!(decision["subject"], "system:serviceaccount:prod:deployer");
        assert_eq!(decision["issuer"], issuer.url.as_str());
        assert_eq!(decision["scopes"], json!(["registry.pull"]));
        assert_eq!(decision["client_address"], "127.0.0.1");
    }
}

#[tokio::test]
async fn discovery_names_the_keys_and_the_token_endpoint() {
    let dir = TempDir::new("exchange-discovery");
    let server = Server::start(dir.path());
    let url = server.url.as_str();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
        "{url}"
    );
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let metadata = server.get_json(path).await;
        assert_eq!(metadata["issuer"], url);
        assert_eq!(metadata["jwks_uri"], format!("{url}/.well-known/jwks.json"));
        assert_eq!(metadata["token_endpoint"], format!("{url}/oauth2/token"));
        let grants = metadata["grant_types_supported"].as_array().unwrap();
        assert!(grants.contains(&json!(TOKEN_EXCHANGE)), "{metadata}");
        assert!(grants.contains(&json!(CR_TOKEN)), "{metadata}");
        let algorithms = &metadata["id_token_signing_alg_values_supported"];
        assert_eq!(algorithms, &json!(["ES256"]), "{metadata}");
    }
    let jwks = server.jwks().await;
    assert!(!jwks.keys.is_empty());
    for key in &jwks.keys {
        assert!(key.common.key_id.is_some());
        let raw = serde_json::to_value(key).unwrap();
        assert!(
            raw.get("d").is_none(),
            "private key material published: {raw}"
        );
    }
    for (path, expected) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let (status, body) = Server::send(server.at(Method::GET, path)).await;
        assert_eq!((status, body.as_str()), (200, Some(expected)), "{path}");
    }
    let (status, metrics) = Server::send(server.at(Method::GET, "/metrics")).await;
    assert_eq!(status, 200);
    assert!(!metrics.as_str().unwrap().is_empty());
}

#[tokio::test]
async fn a_pasted_jwks_verifies_until_it_expires() {
    let dir = TempDir::new("exchange-static");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let (key, audience) = server.create_tenant("acme").await;
    let jwks_uri = format!("{}/openid/v1/jwks", issuer.url);
    let (status, keys) = Server::send(server.http.get(jwks_uri)).await;
    assert_eq!(status, 200, "{keys}");
    let put_issuer = |expires_at: i64| {
        let body = json!({
            "issuer_url": issuer.url,
            "source": {"mode": "static_jwks", "jwks": keys, "expires_at": expires_at},
        });
        server.admin(
            Method::PUT,
            "/v1/tenants/acme/issuers/pinned",
            Some(&key),
            Some(body),
        )
    };
    let (status, body) = put_issuer(now() + 3600).await;
    assert_eq!(status, 200, "{body}");
    let identity = json!({"issuer": "pinned", "config": {"namespaces": ["prod"]}});
    let (status, body) = server.put_identity("acme", "pinned", &key, identity).await;
    assert_eq!(status, 200, "{body}");
    let name = "tenants/acme/identities/pinned";
    let token = issuer.token(&audience, "prod", "deployer", &[]);
    let (status, body) = server.exchange(name, &token, &[]).await;
    assert_eq!(status, 200, "{body}\n{}", server.log());
    // No token audiences: the issued token is for the identity itself.
    let claims = server
        .verify(body["access_token"].as_str().unwrap(), name)
        .await;
    assert_eq!(claims["scope"], "");

    // A set that has already expired is refused when written; the current one stays.
    let (status, body) = put_issuer(now() - 10).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = server.exchange(name, &token, &[]).await;
    assert_eq!(status, 200, "{body}");
    // Replacing the issuer takes effect at once, and an expiring set verifies nothing after
    // its `expires_at`.
    let (status, body) = put_issuer(now() + 4).await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let (status, body) = server.exchange(name, &token, &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request");
    // A set without usable keys is refused when written.
    let body = json!({"issuer_url": issuer.url, "source": {"mode": "static_jwks", "jwks": {"keys": []}, "expires_at": now() + 60}});
    let (status, _) = server
        .admin(
            Method::PUT,
            "/v1/tenants/acme/issuers/empty",
            Some(&key),
            Some(body),
        )
        .await;
    assert_eq!(status, 422);
}

/// IBM's documented request, pasted with only the host changed: `POST /identity/token` with the
/// `cr-token` grant and `Accept: application/json`; the answer has IBM's fields.
#[tokio::test]
async fn the_ibm_seed_request_works_at_identity_token() {
    let dir = TempDir::new("exchange-ibm");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    let token = issuer.token(&acme.audience, "prod", "deployer", &[]);
    let profile_id = acme.uid.clone();
    let form = [
        ("grant_type", "urn:ibm:params:oauth:grant-type:cr-token"),
        ("cr_token", token.as_str()),
        ("profile_id", profile_id.as_str()),
    ];
    let request = server
        .at(reqwest::Method::POST, "/identity/token")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .form(&form);
    let (status, body) = Server::send(request).await;
    assert_eq!(status, 200, "{body}");
    for field in [
        "access_token",
        "token_type",
        "expires_in",
        "expiration",
        "scope",
    ] {
        assert!(!body[field].is_null(), "`{field}` missing: {body}");
    }
    let expiration = body["expiration"].as_i64().unwrap();
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!((expiration - now() - expires_in).abs() <= 5, "{body}");
    server
        .verify(body["access_token"].as_str().unwrap(), REGISTRY)
        .await;
    // A refusal there is the same RFC 6749 JSON.
    let bad = [
        ("grant_type", "urn:ibm:params:oauth:grant-type:cr-token"),
        ("cr_token", "x"),
        ("profile_id", profile_id.as_str()),
    ];
    let (status, body) = Server::send(
        server
            .at(reqwest::Method::POST, "/identity/token")
            .form(&bad),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
}

/// Whitespace around a subject token (a token file ends in a newline) is not part of it, in
/// every exchange shape; whitespace inside one still refuses it.
#[tokio::test]
async fn whitespace_around_a_subject_token_is_trimmed() {
    let dir = TempDir::new("exchange-whitespace");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    let name = acme.identity("deployer");
    let token = issuer.token(&acme.audience, "prod", "deployer", &[]);
    let padded = format!(" {token}\n");
    assert_eq!(server.exchange(&name, &padded, &[]).await.0, 200);
    assert_eq!(server.ibm(&name, &padded).await.0, 200);
    assert_eq!(server.infisical(&name, &padded).await.0, 200);
    assert_eq!(server.chainguard(&name, &token, None).await.0, 200);
    let (head, rest) = token.split_at(10);
    let inside = format!("{head}\n{rest}");
    assert_eq!(server.exchange(&name, &inside, &[]).await.0, 400);
}

#[tokio::test]
async fn every_json_answer_ends_with_a_newline_and_says_its_length() {
    use tollgate_tests::raw::raw_answer;
    let dir = TempDir::new("exchange-newline");
    let issuer = DevIssuer::start(&dir.path().join("dev"));
    let server = Server::start(&dir.path().join("data"));
    let acme = quickstart(&server, &issuer, "acme").await;
    let token = issuer.token(&acme.audience, "prod", "deployer", &[]);
    let form = |token: &str| {
        let form = format!(
            "grant_type={TOKEN_EXCHANGE}&subject_token_type=urn:ietf:params:oauth:token-type:jwt\
             &audience={}&subject_token={token}",
            acme.identity("deployer")
        );
        format!(
            "POST /oauth2/token HTTP/1.1\r\nHost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n\
             content-length: {}\r\n\r\n{form}",
            form.len()
        )
    };
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let length = |head: &str| {
        head.lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("no Content-Length in {head}"))
    };
    for (case, request, status) in [
        ("issued", form(&token), "200"),
        ("oauth error", form("garbage"), "400"),
        ("keys", get("/.well-known/jwks.json"), "200"),
        ("admin error", get("/v1/tenants"), "401"),
        ("unknown path", get("/nowhere"), "404"),
        ("openapi", get("/openapi.json"), "200"),
    ] {
        let (head, body) = raw_answer(&server, &request);
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "{case}: {head}"
        );
        assert!(
            body.ends_with("}\n") && !body.ends_with("\n\n"),
            "{case}: {body:?}"
        );
        assert_eq!(length(&head), body.len().to_string(), "{case}: {head}");
        serde_json::from_str::<Value>(&body).unwrap_or_else(|e| panic!("{case}: {e}"));
    }
    // HEAD announces the length GET sends.
    let (get_head, _) = raw_answer(&server, &get("/.well-known/jwks.json"));
    let head = "HEAD /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\n\r\n";
    let (head_head, body) = raw_answer(&server, head);
    assert_eq!(length(&head_head), length(&get_head));
    assert!(body.is_empty(), "{body:?}");
}
