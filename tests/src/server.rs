//! The exchange server under test, on loopback: built in this process by the same composition
//! root `tollgate serve` uses ([`App::build`]), or, for what needs one (signals, restart, a
//! resident-memory reading), as a real `tollgate serve` process. Both answer on a real port, so
//! the HTTP helpers below serve either.

use crate::process::{self, Child};
use clap::Parser;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tollgate::app::App;
use tollgate::config::ServeArgs;

pub use crate::cluster::{DevIssuer, dev_token};
pub use crate::temp::TempDir;

/// The operator key every test server starts with.
pub const OPERATOR_KEY: &str = "e2e-operator-secret";
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const CR_TOKEN: &str = "urn:ibm:params:oauth:grant-type:cr-token";
/// The one description every "cannot exchange" denial carries.
pub const GENERIC_DENIAL: &str = "the subject token cannot be exchanged for the requested identity";

/// How long a server may take to start on a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running exchange server on 127.0.0.1 with [`OPERATOR_KEY`], stopped when dropped.
pub struct Server {
    /// The public URL (`iss`, the tenants' audiences): the bound address unless the test
    /// gave `--public-url`.
    pub url: String,
    /// Where requests go: the bound address, `http://127.0.0.1:PORT`.
    pub addr: String,
    log: Arc<Mutex<String>>,
    pub http: reqwest::Client,
    backend: Backend,
    /// The data directory, when the server owns it.
    _data: Option<TempDir>,
}

enum Backend {
    /// Built by `App::build` in this process, on a runtime of its own.
    InProcess {
        runtime: Option<tokio::runtime::Runtime>,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
    },
    /// `tollgate serve` as a child process.
    Process(Child),
}

/// `tollgate serve` flags, parsed as the binary parses them.
#[derive(Parser)]
#[command(name = "serve")]
struct ServeCommand {
    #[command(flatten)]
    serve: ServeArgs,
}

impl Server {
    /// A server that allows loopback (`--allow-insecure-issuers`), as local issuers need.
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &["--allow-insecure-issuers"])
    }

    /// An in-process server started with exactly these extra `serve` flags.
    pub fn start_with(data_dir: &Path, flags: &[&str]) -> Server {
        let args = ServeCommand::try_parse_from(serve_argv(data_dir, flags))
            .unwrap_or_else(|e| panic!("bad serve flags {flags:?}: {e}"))
            .serve;
        let log = Arc::new(Mutex::new(String::new()));
        let dispatch = crate::logs::dispatch(log.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                // Every thread of this server logs into its own buffer, as a process would.
                std::mem::forget(tracing::dispatcher::set_default(&dispatch));
            })
            .build()
            .expect("a runtime for the server");
        let (ready, started) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(async move {
            let built = async {
                let listener = tokio::net::TcpListener::bind(args.listen).await?;
                let local = listener.local_addr()?;
                let app = App::build(&args, local).await?;
                anyhow::Ok((listener, app))
            }
            .await;
            match built {
                Ok((listener, app)) => {
                    let addr = listener
                        .local_addr()
                        .map(|a| format!("http://{a}"))
                        .unwrap_or_default();
                    let _ = ready.send(Ok((app.public_url.clone(), addr)));
                    let _ = app
                        .serve(listener, async {
                            let _ = stopped.await;
                        })
                        .await;
                }
                Err(error) => {
                    let _ = ready.send(Err(format!("{error:#}")));
                }
            }
        });
        let (url, addr) = match started.recv_timeout(START_TIMEOUT) {
            Ok(Ok(started)) => started,
            Ok(Err(error)) => panic!("server did not start: {error}"),
            Err(_) => panic!("server did not start in time:\n{}", log.lock().unwrap()),
        };
        Server {
            url,
            addr,
            log,
            http: client(),
            backend: Backend::InProcess {
                runtime: Some(runtime),
                stop: Some(stop),
            },
            _data: None,
        }
    }

    /// An in-process server (loopback issuers allowed) on a data directory of its own.
    pub fn start_fresh() -> Server {
        let data = TempDir::new("server");
        let mut server = Server::start(data.path());
        server._data = Some(data);
        server
    }

    /// A real `tollgate serve` process started with exactly these extra flags: for what needs
    /// a process (signals, a restart, its resident memory).
    pub fn process_with(data_dir: &Path, flags: &[&str]) -> Server {
        let argv = serve_argv(data_dir, flags);
        let (child, line) = process::spawn(&argv[..], process::Watch::Stderr, |line| {
            line.strip_prefix("tollgate listening on ")
                .map(str::to_owned)
        });
        // "http://127.0.0.1:PORT (public URL http://127.0.0.1:PORT)"
        let (addr, url) = line
            .split_once(" (public URL ")
            .and_then(|(addr, rest)| Some((addr.to_owned(), rest.strip_suffix(')')?.to_owned())))
            .unwrap_or_else(|| panic!("unexpected listening line: {line}"));
        Server {
            url,
            addr,
            log: child.log.clone(),
            http: client(),
            backend: Backend::Process(child),
            _data: None,
        }
    }

    /// A real process with `--allow-insecure-issuers`.
    pub fn process(data_dir: &Path) -> Server {
        Server::process_with(data_dir, &["--allow-insecure-issuers"])
    }

    /// What the server logged so far (for failure messages).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The server's process id (to send it signals); a process server only.
    pub fn pid(&self) -> u32 {
        match &self.backend {
            Backend::Process(child) => child.id(),
            Backend::InProcess { .. } => panic!("an in-process server has no process of its own"),
        }
    }

    /// Waits up to `timeout` for a process server to exit on its own: its exit status, or
    /// `None` while it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        match &mut self.backend {
            Backend::Process(child) => child.wait_exit(timeout),
            Backend::InProcess { .. } => panic!("an in-process server has no process of its own"),
        }
    }

    /// Stops the server: a process is killed, an in-process server's tasks are dropped.
    pub fn kill(&mut self) {
        match &mut self.backend {
            Backend::Process(child) => child.kill(),
            Backend::InProcess { runtime, stop } => {
                drop(stop.take());
                if let Some(runtime) = runtime.take() {
                    runtime.shutdown_background();
                }
            }
        }
    }

    /// `{url}/tenants/{tenant}`: the audience subject tokens need by default.
    pub fn tenant_audience(&self, tenant: &str) -> String {
        format!("{}/tenants/{tenant}", self.url)
    }

    /// A request to `path` on this server.
    pub fn at(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.addr))
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

    /// The tenant's decision log, newest first (up to 500).
    pub async fn decisions(&self, tenant: &str, key: &str) -> Vec<Value> {
        let path = format!("/v1/tenants/{tenant}/decisions?limit=500");
        let (status, body) = self.admin(Method::GET, &path, Some(key), None).await;
        assert_eq!(status, 200, "{body}");
        body["decisions"].as_array().unwrap().clone()
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
        self.kill();
    }
}

/// `serve --listen 127.0.0.1:0 FLAGS --operator-key OPERATOR_KEY --data-dir DIR`.
fn serve_argv(data_dir: &Path, flags: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = ["serve", "--listen", "127.0.0.1:0"]
        .map(String::from)
        .into();
    argv.extend(flags.iter().map(|f| f.to_string()));
    argv.extend([
        "--operator-key".into(),
        OPERATOR_KEY.into(),
        "--data-dir".into(),
    ]);
    argv.push(data_dir.to_str().expect("a UTF-8 path").to_owned());
    argv
}

/// The HTTP client of the tests: no proxy (a test talks to loopback only).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .build()
        .unwrap()
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
