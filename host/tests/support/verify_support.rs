//! Processes and HTTP helpers for the end-to-end verification tests: a real `tollgate serve`
//! and `tollgate dev issuer` on loopback (port 0), temp dirs, and the admin calls a tenant
//! makes. Every process is killed when its guard is dropped, also when a test fails.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const OPERATOR_KEY: &str = "op-secret";
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A fresh directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("tollgate-verify-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temp dir");
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

/// A child process, killed when dropped. Its output is drained into `log` so that a full pipe
/// never blocks it, and is there to read when an assertion fails.
pub struct Process {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Process {
    /// Spawns `tollgate args...`, reading `stream` (stdout or stderr) line by line until
    /// `ready` extracts a value from a line.
    fn spawn(
        args: &[&str],
        watch_stdout: bool,
        ready: impl Fn(&str) -> Option<String> + Send + 'static,
    ) -> (Process, String) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        command.args(args).stdin(Stdio::null());
        command.env_remove("RUST_LOG");
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("start tollgate");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let out: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        let (watched, other) = if watch_stdout { (out, err) } else { (err, out) };
        let watched_log = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(watched).lines() {
                let Ok(line) = line else { break };
                if let Some(value) = tx.as_ref().and_then(|_| ready(&line)) {
                    let _ = tx.take().unwrap().send(value);
                }
                let mut log = watched_log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let other_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(other).lines() {
                let Ok(line) = line else { break };
                let mut log = other_log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut process = Process { child, log };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(value) => (process, value),
            Err(_) => {
                process.kill();
                panic!(
                    "`tollgate {}` did not start:\n{}",
                    args.join(" "),
                    process.log()
                );
            }
        }
    }

    /// What the process printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Kills the process and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what the process said, which usually tells why.
        if std::thread::panicking() {
            eprintln!("--- output of {:?} ---\n{}", self.child.id(), self.log());
        }
    }
}

/// A running `tollgate dev issuer`.
pub struct DevIssuer {
    pub process: Process,
    /// The issuer URL (`iss` of its tokens), e.g. `http://127.0.0.1:PORT`.
    pub url: String,
}

impl DevIssuer {
    pub fn start(state_dir: &Path, extra: &[&str]) -> DevIssuer {
        let state = state_dir.to_str().unwrap();
        let mut args = vec![
            "dev",
            "issuer",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            state,
        ];
        args.extend_from_slice(extra);
        let (process, url) = Process::spawn(&args, true, |line| {
            line.trim()
                .strip_prefix("issuer ")
                .map(|rest| rest.trim().to_owned())
        });
        DevIssuer { process, url }
    }

    /// Stops the issuer: its port no longer answers.
    pub fn stop(mut self) {
        self.process.kill();
    }
}

/// A running `tollgate serve` with `--allow-insecure-issuers` and the operator key
/// [`OPERATOR_KEY`].
pub struct Server {
    _process: Process,
    /// `http://127.0.0.1:PORT`, also the public URL.
    pub url: String,
    pub http: reqwest::Client,
    _data: TempDir,
}

impl Server {
    pub fn start() -> Server {
        let data = TempDir::new("server-data");
        let args = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--allow-insecure-issuers",
            "--operator-key",
            OPERATOR_KEY,
        ];
        let (process, url) = Process::spawn(&args, false, |line| {
            let rest = line.strip_prefix("tollgate listening on ")?;
            Some(rest.split_whitespace().next()?.to_owned())
        });
        Server {
            _process: process,
            url,
            http: reqwest::Client::new(),
            _data: data,
        }
    }

    /// Sends an admin request with `key` as bearer: (status, JSON body or Null).
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates tenant `name`: (its API key, its audience).
    pub async fn create_tenant(&self, name: &str) -> (String, String) {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                "/v1/tenants",
                OPERATOR_KEY,
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let key = body["api_key"].as_str().unwrap().to_owned();
        let audience = body["audience"].as_str().unwrap().to_owned();
        assert_eq!(audience, format!("{}/tenants/{name}", self.url));
        (key, audience)
    }

    /// PUTs an issuer: (status, body).
    pub async fn put_issuer(
        &self,
        tenant: &str,
        key: &str,
        name: &str,
        body: Value,
    ) -> (u16, Value) {
        let path = format!("/v1/tenants/{tenant}/issuers/{name}");
        self.admin(reqwest::Method::PUT, &path, key, Some(body))
            .await
    }

    /// PUTs the identity `id` trusting `issuer`, letting namespace `prod` have `registry.pull`.
    pub async fn put_identity(&self, tenant: &str, key: &str, id: &str, issuer: &str) {
        let path = format!("/v1/tenants/{tenant}/identities/{id}");
        let body = json!({
            "issuer": issuer,
            "config": {"namespaces": ["prod"], "grant": {"scopes": ["registry.pull"]}},
            "scopes": ["registry.pull"],
        });
        let (status, answer) = self
            .admin(reqwest::Method::PUT, &path, key, Some(body))
            .await;
        assert_eq!(status, 200, "{answer}");
    }

    /// An RFC 8693 exchange of `token` for identity `tenants/{tenant}/identities/{id}`.
    pub async fn exchange(&self, tenant: &str, id: &str, token: &str) -> (u16, Value) {
        let identity = format!("tenants/{tenant}/identities/{id}");
        let form = [
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", token),
            ("subject_token_type", JWT_TYPE),
            ("audience", identity.as_str()),
        ];
        let response = self
            .http
            .post(format!("{}/oauth2/token", self.url))
            .form(&form)
            .send()
            .await
            .expect("token request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The tenant's decision log, newest first.
    pub async fn decisions(&self, tenant: &str, key: &str) -> Vec<Value> {
        let path = format!("/v1/tenants/{tenant}/decisions?limit=500");
        let (status, body) = self.admin(reqwest::Method::GET, &path, key, None).await;
        assert_eq!(status, 200, "{body}");
        body["decisions"].as_array().unwrap().clone()
    }
}

/// Mints a ServiceAccount token with `tollgate dev token` from `state_dir`, for namespace
/// `prod`, service account `deployer`, pod `api-1`.
pub fn mint(state_dir: &Path, audience: &str, issuer: Option<&str>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    command.args([
        "dev", "token", "-n", "prod", "-s", "deployer", "--pod", "api-1",
    ]);
    command.args(["--audience", audience, "--state-dir"]);
    command.arg(state_dir);
    if let Some(issuer) = issuer {
        command.args(["--issuer", issuer]);
    }
    let out = command.output().expect("run tollgate dev token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs `tollgate dev rotate` on `state_dir`.
pub fn rotate(state_dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["dev", "rotate", "--state-dir"])
        .arg(state_dir)
        .output()
        .expect("run tollgate dev rotate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A JWT segment (header or payload), decoded without any verification.
pub fn segment(token: &str, index: usize) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(index).expect("a JWT segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// The `kid` of a JWT.
pub fn kid(token: &str) -> String {
    segment(token, 0)["kid"].as_str().unwrap().to_owned()
}

/// `token` with its payload replaced (the signature is left as it was, so it no longer
/// matches: only for a verifier that does not check it itself, i.e. TokenReview).
pub fn with_payload(token: &str, payload: &Value) -> String {
    use base64::Engine;
    let parts: Vec<&str> = token.split('.').collect();
    let encoded =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string().as_bytes());
    format!("{}.{encoded}.{}", parts[0], parts[2])
}

/// Asserts a successful exchange and returns the issued token's claims.
pub fn assert_allowed((status, body): &(u16, Value), context: &str) -> Value {
    assert_eq!(*status, 200, "{context}: {body}");
    let token = body["access_token"].as_str().expect("access_token");
    assert_eq!(body["token_type"], "Bearer", "{context}");
    assert_eq!(body["scope"], "registry.pull", "{context}");
    segment(token, 1)
}

/// Asserts the generic denial of the token endpoint.
pub fn assert_denied((status, body): &(u16, Value), context: &str) {
    assert_eq!(*status, 400, "{context}: {body}");
    assert_eq!(body["error"], "invalid_request", "{context}: {body}");
    assert!(body.get("access_token").is_none(), "{context}: {body}");
}

/// The newest decision's reason, asserting it is a denial of the verify stage.
pub async fn last_denial(server: &Server, tenant: &str, key: &str) -> String {
    let decisions = server.decisions(tenant, key).await;
    let newest = decisions.first().expect("a decision");
    assert_eq!(newest["allowed"], false, "{newest}");
    assert_eq!(newest["code"], "invalid-token", "{newest}");
    newest["reason"].as_str().unwrap_or_default().to_owned()
}
