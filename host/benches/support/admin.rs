//! Admin API calls that set a bench's tenants up, and the subject tokens it exchanges.

use super::processes::{Issuer, OPERATOR_KEY};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tollgate::dev::ServiceAccountToken;

/// An HTTP client for admin calls (not the load: that is [`super::loadgen`]).
pub fn client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("HTTP client")
}

/// Sends an admin request; panics unless the status is `expect`.
pub async fn call(
    http: &Client,
    method: Method,
    url: String,
    key: &str,
    body: Option<Value>,
    expect: StatusCode,
) -> Value {
    let mut request = http.request(method.clone(), &url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, expect, "{method} {url}: {body}");
    body
}

/// A tenant made with the operator key, with the dev issuer registered as `dev`.
pub struct Tenant {
    pub name: String,
    pub key: String,
    /// The audience subject tokens for this tenant's identities carry.
    pub audience: String,
}

pub async fn create_tenant(http: &Client, server: &str, name: &str, issuer: &Issuer) -> Tenant {
    let body = json!({ "name": name });
    let created = call(
        http,
        Method::POST,
        format!("{server}/v1/tenants"),
        OPERATOR_KEY,
        Some(body),
        StatusCode::CREATED,
    )
    .await;
    let key = created["api_key"].as_str().expect("api_key").to_owned();
    let audience = created["audience"].as_str().expect("audience").to_owned();
    let issuer_body = json!({ "issuer_url": issuer.url });
    let url = format!("{server}/v1/tenants/{name}/issuers/dev");
    call(
        http,
        Method::PUT,
        url,
        &key,
        Some(issuer_body),
        StatusCode::OK,
    )
    .await;
    Tenant {
        name: name.to_owned(),
        key,
        audience,
    }
}

/// Uploads a module, waiting out 503s (the server compiles at most two at once).
pub async fn upload_policy(http: &Client, server: &str, tenant: &Tenant, wasm: Vec<u8>) -> String {
    let url = format!("{server}/v1/tenants/{}/policies", tenant.name);
    loop {
        let response = http
            .post(&url)
            .bearer_auth(&tenant.key)
            .header("content-type", "application/wasm")
            .body(wasm.clone())
            .send()
            .await
            .expect("upload a policy");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            StatusCode::CREATED => return body["digest"].as_str().expect("digest").to_owned(),
            StatusCode::SERVICE_UNAVAILABLE => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => panic!("upload for `{}`: {status} {body}", tenant.name),
        }
    }
}

/// The rules config every bench identity has: subject, namespace, service account, audience,
/// pod binding and a claim matcher, as in the decision bench.
pub fn rules_config() -> Value {
    json!({
        "subjects": ["system:serviceaccount:prod:*", "system:serviceaccount:team-*:deployer"],
        "namespaces": ["prod", "team-*"],
        "service_accounts": ["deployer", "ci-*"],
        "pod": {"required": true, "names": ["api-*", "worker-*"]},
        "max_token_age_seconds": 3600,
        "claims": {"/kubernetes.io/pod/name": ["api-*", "worker-*"]},
        "grant": {"scopes": ["registry.pull", "registry.push"], "ttl_seconds": 900}
    })
}

/// PUTs identity `id` under `policy` (a digest, or `builtin:rules`).
pub async fn put_identity(http: &Client, server: &str, tenant: &Tenant, id: &str, policy: &str) {
    let body = json!({
        "issuer": "dev",
        "policy": policy,
        "config": rules_config(),
        "scopes": ["registry.pull", "registry.push"],
        "token_audiences": ["https://registry.example"],
    });
    let url = format!("{server}/v1/tenants/{}/identities/{id}", tenant.name);
    call(
        http,
        Method::PUT,
        url,
        &tenant.key,
        Some(body),
        StatusCode::OK,
    )
    .await;
}

/// An RS256 ServiceAccount token from the dev issuer for pod `pod` in `prod`, valid an hour.
pub fn subject_token(issuer: &Issuer, audience: &str, pod: &str) -> String {
    ServiceAccountToken {
        issuer: issuer.url.clone(),
        namespace: "prod".into(),
        service_account: "deployer".into(),
        pod: Some(pod.into()),
        node: Some("pool-a-1".into()),
        audiences: vec![audience.into()],
        ttl_seconds: 3600,
        extended: false,
        issued_at: tollgate::common::unix_now(),
        uid_seed: "bench".into(),
    }
    .mint(issuer.keys.current())
    .expect("mint a subject token")
}

/// The form body of an RFC 8693 exchange of `token` for `identity` (a resource name).
pub fn exchange_body(identity: &str, token: &str) -> String {
    let identity = identity.replace('/', "%2F");
    format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
         &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt\
         &audience={identity}&subject_token={token}"
    )
}

/// `POST /oauth2/token` with a form `body`: the status and the answer's text.
pub async fn exchange(http: &Client, server: &str, body: &str) -> (StatusCode, String) {
    let response = http
        .post(format!("{server}/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .expect("exchange");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}
