//! The seed documents' own calls, pasted with only the host changed: Infisical's Kubernetes-auth
//! identity config (create, read, change, delete) and its login with the limits it set, and
//! Chainguard's static keys passed inline with their default expiry. (IBM's request is in
//! `exchange.rs`.)

use reqwest::Method;
use serde_json::{Value, json};
use tollgate_tests::issuer_double::IssuerDouble;
use tollgate_tests::server::{Server, TempDir, assert_generic, dev_token};

const CLUSTER_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Infisical's documented body, verbatim but for the values a test cluster needs.
fn infisical_body(api_server: &str) -> String {
    r#"{
  "kubernetesHost": "<host>",
  "caCert": "",
  "tokenReviewerJwt": "<string>",
  "allowedNamespaces": "prod",
  "allowedNames": "deployer,ci",
  "allowedAudience": "infisical",
  "accessTokenTrustedIps": [
    {
      "ipAddress": "0.0.0.0/0"
    },
    {
      "ipAddress": "::/0"
    }
  ],
  "accessTokenTTL": 2592000,
  "accessTokenMaxTTL": 2592000,
  "accessTokenNumUsesLimit": 2
}"#
    .replace("<host>", api_server)
}

/// `curl --request METHOD --url {server}/api/v1/auth/kubernetes-auth/identities/{id}
/// --header 'Authorization: Bearer <token>' --header 'Content-Type: application/json' --data`.
async fn infisical_call(
    server: &Server,
    method: Method,
    id: &str,
    key: &str,
    body: Option<String>,
) -> (u16, Value) {
    let path = format!("/api/v1/auth/kubernetes-auth/identities/{id}");
    let mut request = server
        .at(method, &path)
        .header("Authorization", format!("Bearer {key}"));
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body);
    }
    Server::send(request).await
}

fn cluster_token(state: &std::path::Path, audience: &str, account: &str) -> String {
    namespaced_token(state, audience, "prod", account)
}

fn namespaced_token(
    state: &std::path::Path,
    audience: &str,
    namespace: &str,
    account: &str,
) -> String {
    dev_token(
        state,
        &[
            "--audience",
            audience,
            "-n",
            namespace,
            "-s",
            account,
            "--pod",
            "api-1",
            "--issuer",
            CLUSTER_ISSUER,
        ],
    )
}

#[tokio::test]
async fn infisicals_identity_config_calls_work_as_documented() {
    let dir = TempDir::new("seed-infisical");
    let server = Server::start(&dir.path().join("data"));
    let (key, _) = server.create_tenant("acme").await;
    let api = IssuerDouble::start(json!({"keys": []})).await;

    let (status, created) = infisical_call(
        &server,
        Method::POST,
        "ci",
        &key,
        Some(infisical_body(api.url())),
    )
    .await;
    assert_eq!(status, 200, "{created}\n{}", server.log());
    let auth = &created["identityKubernetesAuth"];
    let uid = auth["identityId"].as_str().unwrap().to_owned();
    assert_eq!(auth["id"], uid.as_str());
    assert_eq!(auth["kubernetesHost"], api.url());
    assert_eq!(auth["allowedNamespaces"], "prod");
    assert_eq!(auth["allowedNames"], "deployer,ci");
    assert_eq!(auth["allowedAudience"], "infisical");
    assert_eq!(auth["accessTokenTTL"], 2_592_000);
    assert_eq!(auth["accessTokenMaxTTL"], 2_592_000);
    assert_eq!(auth["accessTokenNumUsesLimit"], 2);
    assert_eq!(auth["accessTokenTrustedIps"][0]["ipAddress"], "0.0.0.0");
    assert_eq!(auth["accessTokenTrustedIps"][1]["type"], "ipv6");
    assert!(auth["createdAt"].as_str().unwrap().ends_with('Z'), "{auth}");
    assert_eq!(auth["tokenReviewerJwt"], "<redacted>");
    assert!(
        !created.to_string().contains("<string>"),
        "the reviewer token leaked"
    );
    // The seed's 30-day ttl is over the server's 24-hour cap: accepted, with a warning.
    assert!(
        server.log().contains("over this server's cap"),
        "{}",
        server.log()
    );

    // The login, by the uid the answer gave, with Infisical's limits.
    let state = TempDir::new("seed-infisical-cluster");
    let token = cluster_token(state.path(), "infisical", "deployer");
    let (status, login) = server.infisical(&uid, &token).await;
    assert_eq!(status, 200, "{login}\n{}", server.log());
    assert_eq!(login["expiresIn"], 86_400);
    assert_eq!(login["accessTokenMaxTTL"], 2_592_000);
    assert_eq!(api.reviews(), 1, "the API server reviewed the token");
    let access = login["accessToken"].as_str().unwrap();
    assert!(server.is_active(&key, access).await);
    assert!(server.is_active(&key, access).await);
    assert!(
        !server.is_active(&key, access).await,
        "accessTokenNumUsesLimit is 2"
    );
    // A service account the config does not allow, and a token for another audience.
    let other = cluster_token(state.path(), "infisical", "intruder");
    let (status, body) = server.infisical(&uid, &other).await;
    assert_generic(status, &body, "name not allowed");
    let elsewhere = cluster_token(state.path(), "vault", "deployer");
    let (status, body) = server.infisical(&uid, &elsewhere).await;
    assert_generic(status, &body, "audience not allowed");

    // GET by uid or name; PATCH changes only what it names.
    for reference in [uid.as_str(), "ci"] {
        let (status, read) = infisical_call(&server, Method::GET, reference, &key, None).await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(
            read["identityKubernetesAuth"]["allowedNames"],
            "deployer,ci"
        );
    }
    let patch = r#"{"accessTokenNumUsesLimit": 0, "allowedNames": "deployer"}"#.to_owned();
    let (status, patched) = infisical_call(&server, Method::PATCH, &uid, &key, Some(patch)).await;
    assert_eq!(status, 200, "{patched}");
    let auth = &patched["identityKubernetesAuth"];
    assert_eq!(auth["accessTokenNumUsesLimit"], 0);
    assert_eq!(auth["allowedNames"], "deployer");
    assert_eq!(auth["allowedNamespaces"], "prod");
    assert_eq!(auth["identityId"], uid.as_str(), "the uid is kept");
    let ci = cluster_token(state.path(), "infisical", "ci");
    let (status, body) = server.infisical(&uid, &ci).await;
    assert_generic(status, &body, "a name the patch removed");

    // Another tenant sees nothing; bad bodies are refused naming the field.
    let (mallory, _) = server.create_tenant("mallory").await;
    assert_eq!(
        infisical_call(&server, Method::GET, &uid, &mallory, None)
            .await
            .0,
        404
    );
    assert_eq!(
        infisical_call(&server, Method::PATCH, &uid, &mallory, Some("{}".into()))
            .await
            .0,
        404
    );
    for (field, value) in [
        ("accessTokenTTL", json!(0)),
        ("accessTokenTTL", json!(315_360_000)),
        ("accessTokenMaxTTL", json!("long")),
        ("accessTokenNumUsesLimit", json!(-1)),
        ("accessTokenTrustedIps", json!([{"ipAddress": "300.0.0.1"}])),
        ("kubernetesHost", json!("")),
        ("allowedNamespaces", json!(["prod"])),
    ] {
        let mut body: Value = serde_json::from_str(&infisical_body(api.url())).unwrap();
        body[field] = value;
        let (status, answer) =
            infisical_call(&server, Method::POST, "other", &key, Some(body.to_string())).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{field}: {answer}"
        );
    }
    let (status, _) = infisical_call(
        &server,
        Method::POST,
        "other",
        &key,
        Some("{not json".into()),
    )
    .await;
    assert_eq!(status, 400);

    // DELETE answers the config and removes the identity and its issuer.
    let (status, deleted) = infisical_call(&server, Method::DELETE, &uid, &key, None).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(
        deleted["identityKubernetesAuth"]["identityId"],
        uid.as_str()
    );
    assert_eq!(
        infisical_call(&server, Method::GET, &uid, &key, None)
            .await
            .0,
        404
    );
    let (status, _) = server
        .admin(Method::GET, "/v1/tenants/acme/issuers/ci", Some(&key), None)
        .await;
    assert_eq!(status, 404);
    let (status, body) = server.infisical(&uid, &token).await;
    assert_generic(status, &body, "login after the delete");
}

/// Chainguard's static identity: the cluster's JWKS inline, and 30 days of trust by default.
#[tokio::test]
async fn static_keys_default_to_thirty_days_and_warn_as_they_end() {
    let dir = TempDir::new("seed-chainguard");
    let server = Server::start(&dir.path().join("data"));
    let (key, audience) = server.create_tenant("acme").await;
    let state = dir.path().join("cluster");
    let token = namespaced_token(&state, &audience, "default", "default");
    let jwks = tollgate::dev::DevState::new(&state)
        .load()
        .unwrap()
        .unwrap()
        .jwks();
    let body =
        json!({"issuer_url": CLUSTER_ISSUER, "source": {"mode": "static_jwks", "jwks": jwks}});
    let (status, issuer) = server
        .admin(
            Method::PUT,
            "/v1/tenants/acme/issuers/cluster",
            Some(&key),
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{issuer}");
    let expires = issuer["source"]["expires_at"].as_i64().unwrap();
    let month = expires - tollgate::common::unix_now();
    assert!((30 * 86_400 - 60..=30 * 86_400).contains(&month), "{month}");
    let identity = json!({"issuer": "cluster", "config": {"subjects": ["system:serviceaccount:default:default"]}});
    assert_eq!(
        server
            .put_identity("acme", "example-identity", &key, identity)
            .await
            .0,
        200
    );
    let (_, view) = server
        .admin(
            Method::GET,
            "/v1/tenants/acme/identities/example-identity",
            Some(&key),
            None,
        )
        .await;
    let uid = view["uid"].as_str().unwrap();
    // The pod's command: `/sts/exchange?aud=...&identity=$IDENTITY` with the opaque id.
    let (status, body) = server.chainguard(uid, &token, None).await;
    assert_eq!(status, 200, "{body}\n{}", server.log());

    // Keys that end within the week: the registration and every use warn, and a metric counts.
    let soon = tollgate::common::unix_now() + 3600;
    let body = json!({"issuer_url": CLUSTER_ISSUER, "source": {"mode": "static_jwks", "jwks": jwks, "expires_at": soon}});
    let (status, _) = server
        .admin(
            Method::PUT,
            "/v1/tenants/acme/issuers/cluster",
            Some(&key),
            Some(body),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(server.chainguard(uid, &token, None).await.0, 200);
    assert!(
        server.log().contains("static issuer keys expire"),
        "{}",
        server.log()
    );
    let metrics = Server::send(server.at(Method::GET, "/metrics")).await.1;
    let text = metrics.as_str().unwrap();
    let expiring = text
        .lines()
        .find(|l| l.starts_with("tollgate_static_keys_checks_total{state=\"expiring\"}"))
        .unwrap();
    assert!(!expiring.ends_with(" 0"), "{expiring}");
}
