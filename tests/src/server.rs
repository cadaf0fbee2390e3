//! Shared by the `server*` end-to-end tests: the real `tollgate` binary as processes on
//! loopback (a dev issuer and the exchange server, each killed when dropped), temp dirs, and
//! small HTTP helpers over reqwest.

#![allow(dead_code, reason = "each test file uses part of these helpers")]

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The operator key every test server starts with.
pub const OPERATOR_KEY: &str = "e2e-operator-secret";
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const CR_TOKEN: &str = "urn:ibm:params:oauth:grant-type:cr-token";
/// The one description every "cannot exchange" denial carries.
pub const GENERIC_DENIAL: &str = "the subject token cannot be exchanged for the requested identity";

/// A fresh directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("tollgate-e2e-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `tollgate dev issuer` on port 0, killed when dropped (also when a test fails).
pub struct DevIssuer {
    child: Child,
    // Kept open: the issuer prints to stdout when it stops.
    _stdout: BufReader<ChildStdout>,
    pub url: String,
    pub state_dir: PathBuf,
}

impl DevIssuer {
    pub fn start(state_dir: &Path) -> DevIssuer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["dev", "issuer", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the dev issuer");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let url = loop {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "dev issuer exited early"
            );
            if let Some(rest) = line.trim().strip_prefix("issuer ") {
                break rest.trim().to_owned();
            }
        };
        DevIssuer {
            child,
            _stdout: stdout,
            url,
            state_dir: state_dir.to_owned(),
        }
    }

    /// A ServiceAccount token for `namespace`/`service_account` in pod `api-1`, for
    /// `audience`; `extra` adds `dev token` flags.
    pub fn token(
        &self,
        audience: &str,
        namespace: &str,
        service_account: &str,
        extra: &[&str],
    ) -> String {
        let mut args = vec!["--audience", audience, "-n", namespace];
        args.extend(["-s", service_account, "--pod", "api-1"]);
        args.extend_from_slice(extra);
        dev_token(&self.state_dir, &args)
    }
}

/// `tollgate dev token --state-dir STATE ARGS`: the printed token.
pub fn dev_token(state_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["dev", "token", "--state-dir"])
        .arg(state_dir)
        .args(args)
        .output()
        .expect("run dev token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

impl Drop for DevIssuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `tollgate serve` on port 0 with [`OPERATOR_KEY`], killed when dropped.
pub struct Server {
    child: Child,
    /// The public URL, which is the real bound address.
    pub url: String,
    log: Arc<Mutex<String>>,
    pub http: reqwest::Client,
}

impl Server {
    /// A server that allows loopback (`--allow-insecure-issuers`), as local issuers need.
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &["--allow-insecure-issuers"])
    }

    /// A server started with exactly these extra `serve` flags.
    pub fn start_with(data_dir: &Path, flags: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(flags)
            .args(["--operator-key", OPERATOR_KEY, "--data-dir"])
            .arg(data_dir)
            .env_remove("TOLLGATE_PUBLIC_URL")
            .env_remove("TOLLGATE_DATABASE")
            .env("TOLLGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tollgate serve");
        // Drained for the whole run: a full pipe would block the server's logging.
        let log = Arc::new(Mutex::new(String::new()));
        let (ready, listening) = mpsc::channel();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(rest) = line.trim().strip_prefix("tollgate listening on ") {
                    let _ = ready.send(rest.to_owned());
                }
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let Ok(line) = listening.recv_timeout(Duration::from_secs(120)) else {
            let _ = child.kill();
            panic!("server did not start:\n{}", log.lock().unwrap());
        };
        // "http://127.0.0.1:PORT (public URL http://127.0.0.1:PORT)"
        let url = line
            .split_once("(public URL ")
            .and_then(|(_, rest)| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("unexpected listening line: {line}"))
            .to_owned();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .no_proxy()
            .build()
            .unwrap();
        Server {
            child,
            url,
            log,
            http,
        }
    }

    /// What the server logged so far (for failure messages).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The server's process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the process to exit on its own: its exit status, or `None`
    /// while it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// `{url}/tenants/{tenant}`: the audience subject tokens need by default.
    pub fn tenant_audience(&self, tenant: &str) -> String {
        format!("{}/tenants/{tenant}", self.url)
    }

    /// A request to `path` on this server.
    pub fn at(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url))
    }

    /// Sends `request`: (status, JSON body, or the text as a JSON string).
    pub async fn send(request: RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// An admin request with an optional bearer key and JSON body: (status, JSON body).
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.at(method, path);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Self::send(request).await
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let (status, body) = Self::send(self.at(Method::GET, path)).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Creates `name` with the operator key: (api key, tenant audience).
    pub async fn create_tenant(&self, name: &str) -> (String, String) {
        let (status, body) = self
            .admin(
                Method::POST,
                "/v1/tenants",
                Some(OPERATOR_KEY),
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let key = body["api_key"].as_str().unwrap().to_owned();
        (key, body["audience"].as_str().unwrap().to_owned())
    }

    /// PUTs an identity: (status, body).
    pub async fn put_identity(
        &self,
        tenant: &str,
        id: &str,
        key: &str,
        body: Value,
    ) -> (u16, Value) {
        let path = format!("/v1/tenants/{tenant}/identities/{id}");
        self.admin(Method::PUT, &path, Some(key), Some(body)).await
    }

    /// Uploads a policy module with `content_type`: (status, body).
    pub async fn upload_policy(
        &self,
        tenant: &str,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> (u16, Value) {
        let path = format!("/v1/tenants/{tenant}/policies");
        let request = self.at(Method::POST, &path).bearer_auth(key);
        Self::send(request.header("content-type", content_type).body(bytes)).await
    }

    /// `POST /oauth2/token` with exactly these form parameters.
    pub async fn token_endpoint(&self, form: &[(&str, &str)]) -> (u16, Value) {
        Self::send(self.at(Method::POST, "/oauth2/token").form(form)).await
    }

    /// An RFC 8693 exchange of `token` for `identity`, with `extra` parameters.
    pub async fn exchange(
        &self,
        identity: &str,
        token: &str,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut form = vec![
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", token),
            ("subject_token_type", JWT_TYPE),
            ("audience", identity),
        ];
        form.extend_from_slice(extra);
        self.token_endpoint(&form).await
    }

    /// The Chainguard shape: `GET /sts/exchange?identity=...` with the token as bearer.
    pub async fn chainguard(&self, identity: &str, token: &str, aud: Option<&str>) -> (u16, Value) {
        let mut query = vec![("identity", identity)];
        query.extend(aud.map(|aud| ("aud", aud)));
        let request = self.at(Method::GET, "/sts/exchange").query(&query);
        Self::send(request.bearer_auth(token)).await
    }

    /// The Infisical shape: `POST /api/v1/auth/kubernetes-auth/login`.
    pub async fn infisical(&self, identity: &str, token: &str) -> (u16, Value) {
        let body = json!({ "identityId": identity, "jwt": token });
        let path = "/api/v1/auth/kubernetes-auth/login";
        Self::send(self.at(Method::POST, path).json(&body)).await
    }

    /// The IBM shape: `grant_type=...cr-token` with `cr_token` and `profile_id`.
    pub async fn ibm(&self, identity: &str, token: &str) -> (u16, Value) {
        let form = [
            ("grant_type", CR_TOKEN),
            ("cr_token", token),
            ("profile_id", identity),
        ];
        self.token_endpoint(&form).await
    }

    /// The published key set, fetched where discovery says it is.
    pub async fn jwks(&self) -> JwkSet {
        let discovery = self.get_json("/.well-known/openid-configuration").await;
        let uri = discovery["jwks_uri"].as_str().unwrap();
        let response = self.http.get(uri).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.unwrap()
    }

    /// Verifies an issued token like a relying party: published key by `kid`, the header's
    /// algorithm, exact issuer (this server) and `audience`. Returns the claims.
    pub async fn verify(&self, token: &str, audience: &str) -> Value {
        let header = decode_header(token).unwrap();
        let kid = header.kid.expect("issued tokens name their key");
        let jwks = self.jwks().await;
        let jwk = jwks.find(&kid).expect("the signing key is published");
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.url]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        decode::<Value>(token, &key, &validation)
            .unwrap_or_else(|e| panic!("issued token does not verify: {e}"))
            .claims
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kids of a key set, in order.
pub fn kids(jwks: &JwkSet) -> Vec<String> {
    jwks.keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect()
}

/// `tenants/{tenant}/identities/{id}`.
pub fn identity_name(tenant: &str, id: &str) -> String {
    format!("tenants/{tenant}/identities/{id}")
}

/// Registers `issuer_url` as the tenant's issuer `dev` (OIDC discovery).
pub async fn register_issuer(server: &Server, tenant: &str, key: &str, issuer_url: &str) {
    let path = format!("/v1/tenants/{tenant}/issuers/dev");
    let body = json!({ "issuer_url": issuer_url });
    let (status, body) = server
        .admin(Method::PUT, &path, Some(key), Some(body))
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The quickstart's identity: built-in rules binding namespace `prod`, granting
/// `registry.pull`, limited to `registry.pull registry.push`.
pub fn quickstart_identity() -> Value {
    json!({
        "issuer": "dev",
        "config": {"namespaces": ["prod"], "grant": {"scopes": ["registry.pull"]}},
        "scopes": ["registry.pull", "registry.push"],
        "token_audiences": ["https://registry.example", "https://other.example"],
    })
}

/// A tenant set up as in the quickstart.
pub struct Tenant {
    pub name: String,
    pub key: String,
    pub audience: String,
    /// The `deployer` identity's opaque unique id.
    pub uid: String,
}

impl Tenant {
    /// The resource name of the tenant's identity `id`.
    pub fn identity(&self, id: &str) -> String {
        identity_name(&self.name, id)
    }
}

/// Creates `tenant`, registers the dev issuer as `dev` and PUTs the quickstart identity
/// `deployer`.
pub async fn quickstart(server: &Server, issuer: &DevIssuer, tenant: &str) -> Tenant {
    let (key, audience) = server.create_tenant(tenant).await;
    assert_eq!(audience, server.tenant_audience(tenant));
    register_issuer(server, tenant, &key, &issuer.url).await;
    let (status, body) = server
        .put_identity(tenant, "deployer", &key, quickstart_identity())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], identity_name(tenant, "deployer"));
    let uid = body["uid"].as_str().unwrap().to_owned();
    assert!(!uid.is_empty() && !uid.contains('/'), "{uid}");
    Tenant {
        name: tenant.to_owned(),
        key,
        audience,
        uid,
    }
}

/// Asserts an RFC 6749 error with `code`; returns the description.
pub fn oauth_error(status: u16, body: &Value, code: &str) -> String {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], code, "{body}");
    body["error_description"].as_str().unwrap().to_owned()
}

/// The uniform refusal: RFC 6749 `invalid_request` with the generic description and nothing
/// else, so no tenant, pattern, policy or key detail reaches the caller.
pub fn assert_generic(status: u16, body: &Value, case: &str) {
    let description = oauth_error(status, body, "invalid_request");
    assert_eq!(description, GENERIC_DENIAL, "{case}: {body}");
    let text = body.to_string();
    for secret in [
        "acme",
        "prod",
        "dev",
        "namespace",
        "policy",
        "tenant",
        "pattern",
        "expired",
        "audience",
        "signature",
        "deployer",
        "kid",
        "alg",
        "key",
    ] {
        assert!(!text.contains(secret), "{case}: `{secret}` leaks in {text}");
    }
    assert_eq!(body.as_object().unwrap().len(), 2, "{case}: {body}");
}
