//! A restart keeps everything: the server is killed and started again on the same data
//! directory (and a new port); keys, issuers, identities, uploaded policies and the signing
//! key survive.

#[path = "../../tests/src/fixtures.rs"]
#[allow(dead_code, reason = "shared helper: this file uses part of it")]
mod fixtures;
#[path = "support/server.rs"]
mod server_support;

use reqwest::Method;
use serde_json::{Value, json};
use server_support::{DevIssuer, OPERATOR_KEY, Server, TempDir, kids, register_issuer};

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

    let first = Server::start(&data);
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

    let second = Server::start(&data);
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
    let third = Server::start(&data);
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
