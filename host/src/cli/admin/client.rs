//! The HTTP side of `tollgate admin`: one authenticated request at a time, with the server's
//! answers turned into errors a person can act on.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;
use url::Url;

/// Why an admin command failed. [`AdminError::exit_code`] tells unusable input (2) from a
/// refusal or an unreachable server (1).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The command line or a file cannot be used; nothing was sent.
    #[error("{0}")]
    Input(String),
    #[error("cannot reach the server at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the API key was refused (set --key or TOLLGATE_API_KEY)")]
    Unauthorized,
    /// Any other refusal, with the server's own `message`.
    #[error("the server answered {status}: {message}")]
    Server { status: StatusCode, message: String },
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// A failure while applying a file: which document, why, and what was applied before it.
    #[error("{document}: {cause}\n{applied}")]
    Apply {
        document: String,
        cause: Box<AdminError>,
        applied: String,
    },
}

impl AdminError {
    /// 2 when the input is unusable, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Input(_) => 2,
            Self::Apply { cause, .. } => cause.exit_code(),
            _ => 1,
        }
    }
}

/// What a request carries.
pub enum Body {
    Empty,
    Json(Value),
    /// A policy module, sent as `application/wasm`.
    Wasm(Vec<u8>),
}

/// An admin API client for one server and one key.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    key: String,
}

impl Client {
    /// Checks the server URL and requires a key before anything is sent.
    pub fn new(server: &str, key: Option<&str>) -> Result<Self, AdminError> {
        let base = Url::parse(server)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
            .ok_or_else(|| {
                AdminError::Input(format!(
                    "`{server}` is not a server URL (expected e.g. http://127.0.0.1:8080)"
                ))
            })?;
        let key = key.filter(|k| !k.trim().is_empty()).ok_or_else(|| {
            AdminError::Input("no API key: pass --key or set TOLLGATE_API_KEY".into())
        })?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("tollgate-admin/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AdminError::Input(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            key: key.trim().to_owned(),
        })
    }

    /// The server URL as given (for messages).
    pub fn server(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The URL of `/v1/` + `segments`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().expect("http URLs have a path");
            path.pop_if_empty().push("v1").extend(segments);
        }
        url
    }

    /// Sends one request to `/v1/{segments}`: the JSON answer, or `Null` for an empty one.
    pub async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Body,
    ) -> Result<Value, AdminError> {
        let mut request = self
            .http
            .request(method, self.url(segments))
            .bearer_auth(&self.key);
        if !query.is_empty() {
            request = request.query(query);
        }
        request = match body {
            Body::Empty => request,
            Body::Json(value) => request.json(&value),
            Body::Wasm(bytes) => request
                .header("content-type", "application/wasm")
                .body(bytes),
        };
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.unreachable(&e))?;
        let body: Option<Value> = serde_json::from_str(&text).ok();
        if status == StatusCode::UNAUTHORIZED {
            return Err(AdminError::Unauthorized);
        }
        if !status.is_success() {
            let message = body
                .as_ref()
                .and_then(|b| b.get("message"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| snippet(&text));
            return Err(AdminError::Server { status, message });
        }
        match body {
            Some(value) => Ok(value),
            None if text.trim().is_empty() => Ok(Value::Null),
            None => Err(AdminError::Protocol(format!(
                "{status} with a body that is not JSON: {}",
                snippet(&text)
            ))),
        }
    }

    fn unreachable(&self, error: &reqwest::Error) -> AdminError {
        // reqwest's own message is generic; the innermost cause says what happened.
        let mut cause: &dyn std::error::Error = error;
        while let Some(source) = cause.source() {
            cause = source;
        }
        let detail = if error.is_timeout() {
            "no answer in time".to_owned()
        } else {
            cause.to_string()
        };
        AdminError::Unreachable {
            url: self.server().to_owned(),
            detail,
        }
    }
}

/// The start of a non-JSON answer, on one line.
fn snippet(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return "(empty answer)".into();
    }
    let mut cut: String = line.chars().take(200).collect();
    if cut.len() < line.len() {
        cut.push('…');
    }
    cut
}
