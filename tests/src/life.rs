//! The calls of an issued token's life, as a resource server and a workload make them:
//! introspection and revocation with a tenant's key, renewal in both shapes, and keys with a
//! role.

use crate::server::Server;
use reqwest::Method;
use serde_json::{Value, json};

impl Server {
    /// `POST /oauth2/introspect` of `token` with `key`, and `extra` form parameters.
    pub async fn introspect(&self, key: &str, token: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        let mut form = vec![("token", token)];
        form.extend_from_slice(extra);
        let request = self.at(Method::POST, "/oauth2/introspect").bearer_auth(key);
        Self::send(request.form(&form)).await
    }

    /// Whether `token` introspects as active for `key` (asserting a 200).
    pub async fn is_active(&self, key: &str, token: &str) -> bool {
        let (status, body) = self.introspect(key, token, &[]).await;
        assert_eq!(status, 200, "{body}");
        body["active"].as_bool().expect("`active` is a boolean")
    }

    /// `POST /oauth2/revoke` of `token` with `key`.
    pub async fn revoke(&self, key: &str, token: &str) -> (u16, Value) {
        let request = self.at(Method::POST, "/oauth2/revoke").bearer_auth(key);
        Self::send(request.form(&[("token", token)])).await
    }

    /// Infisical's `POST /api/v1/auth/token/renew`.
    pub async fn renew(&self, token: &str) -> (u16, Value) {
        let body = json!({ "accessToken": token });
        Self::send(
            self.at(Method::POST, "/api/v1/auth/token/renew")
                .json(&body),
        )
        .await
    }

    /// The `refresh_token` grant on `/oauth2/token`.
    pub async fn refresh(&self, token: &str) -> (u16, Value) {
        self.token_endpoint(&[("grant_type", "refresh_token"), ("refresh_token", token)])
            .await
    }

    /// A new key of `tenant` with `role`, made with the tenant's `key`: the secret.
    pub async fn create_key(&self, tenant: &str, key: &str, role: &str) -> String {
        let path = format!("/v1/tenants/{tenant}/keys");
        let (status, body) = self
            .admin(
                Method::POST,
                &path,
                Some(key),
                Some(json!({ "role": role })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["role"], role);
        body["api_key"].as_str().unwrap().to_owned()
    }
}
