//! Shared by the `attack_*` tests: issuer registration, the decision log, the generic denial,
//! and a cluster whose keys a loopback double can serve. Needs `mod server_support` next to it.

#![allow(dead_code, reason = "each test file uses part of these helpers")]

pub use crate::server_support::assert_generic;
use crate::server_support::{DevIssuer, Server, TempDir, dev_token, quickstart_identity};
use reqwest::Method;
use serde_json::{Value, json};

/// PUTs issuer `name` of `tenant` with `body`: (status, answer).
pub async fn put_issuer(
    server: &Server,
    tenant: &str,
    key: &str,
    name: &str,
    body: Value,
) -> (u16, Value) {
    let path = format!("/v1/tenants/{tenant}/issuers/{name}");
    server
        .admin(Method::PUT, &path, Some(key), Some(body))
        .await
}

/// Registers `url` as discovery issuer `name` and binds the quickstart identity `name` to it.
pub async fn bind(server: &Server, tenant: &str, key: &str, name: &str, url: &str) {
    let (status, body) = put_issuer(server, tenant, key, name, json!({"issuer_url": url})).await;
    assert_eq!(status, 200, "{body}");
    let mut identity = quickstart_identity();
    identity["issuer"] = json!(name);
    let (status, body) = server.put_identity(tenant, name, key, identity).await;
    assert_eq!(status, 200, "{body}");
}

/// The newest decision of `tenant`.
pub async fn last_decision(server: &Server, tenant: &str, key: &str) -> Value {
    let path = format!("/v1/tenants/{tenant}/decisions?limit=1");
    let (status, log) = server.admin(Method::GET, &path, Some(key), None).await;
    assert_eq!(status, 200, "{log}");
    log["decisions"][0].clone()
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// The payload of a JWT.
pub fn payload(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&b64().decode(part).unwrap()).unwrap()
}

/// `token` with its header's `kid` replaced (the signature no longer matches).
pub fn with_kid(token: &str, kid: &str) -> String {
    use base64::Engine;
    let parts: Vec<&str> = token.split('.').collect();
    let mut header: Value = serde_json::from_slice(&b64().decode(parts[0]).unwrap()).unwrap();
    header["kid"] = json!(kid);
    let header = b64().encode(header.to_string());
    format!("{header}.{}.{}", parts[1], parts[2])
}

/// A cluster: a dev issuer's keys, for a double to serve; its tokens name any `iss`.
pub struct Cluster {
    pub issuer: DevIssuer,
    pub state: TempDir,
    pub jwks: Value,
}

impl Cluster {
    pub async fn start(name: &str) -> Cluster {
        let state = TempDir::new(name);
        let issuer = DevIssuer::start(state.path());
        let jwks = reqwest::get(format!("{}/openid/v1/jwks", issuer.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Cluster {
            issuer,
            state,
            jwks,
        }
    }

    /// A prod/deployer token bound to pod `api-1`, for `audience`, with `iss` = `issuer`.
    pub fn token(&self, issuer: &str, audience: &str) -> String {
        let args = ["--audience", audience, "-n", "prod", "-s", "deployer"];
        let mut args = args.to_vec();
        args.extend(["--pod", "api-1", "--issuer", issuer]);
        dev_token(self.state.path(), &args)
    }
}
