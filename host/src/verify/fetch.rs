//! The safe fetcher: the only outbound HTTP client of the program.
//!
//! Every URL is vetted by [`check_url`], every resolved address by [`check_ip`] (the client
//! connects only to the addresses this module resolved and vetted, so a name cannot be re-bound
//! between check and connect), redirects are followed by hand and re-vetted, proxies from the
//! environment are ignored, bodies are streamed and cut at a cap, and nothing is decompressed.

use super::address::{UrlError, check_ip, check_url};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

/// Redirects followed for one GET.
pub const MAX_REDIRECTS: usize = 3;
/// Distinct custom CA bundles kept with a client of their own before the cache starts over.
const MAX_CA_CLIENTS: usize = 64;

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("could not resolve host `{0}`")]
    Resolve(String),
    #[error("request timed out")]
    Timeout,
    #[error("server answered with status {0}")]
    Status(u16),
    #[error("response is larger than {0} bytes")]
    TooLarge(usize),
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("redirect without a usable `Location`")]
    BadRedirect,
    #[error("certificate authority is not a valid PEM certificate bundle")]
    BadCa,
    #[error("request failed: {0}")]
    Transport(String),
}

impl FetchError {
    /// Whether the failure says the server is (maybe temporarily) unavailable rather than wrong:
    /// 5xx, 429, timeouts and connection failures.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Status(code) => *code >= 500 || *code == 429,
            Self::Timeout | Self::Transport(_) | Self::Resolve(_) => true,
            _ => false,
        }
    }
}

/// Limits of the fetcher.
#[derive(Debug, Clone, Copy)]
pub struct FetchSettings {
    /// Permit http and private, loopback or otherwise internal addresses.
    pub allow_insecure: bool,
    /// Bound on one whole fetch, redirects included.
    pub timeout: Duration,
    /// Largest body read; longer responses fail.
    pub max_bytes: usize,
}

/// Resolves names itself and refuses every name with a forbidden address among its answers.
struct VettingResolver {
    allow_insecure: bool,
}

impl Resolve for VettingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_insecure = self.allow_insecure;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| FetchError::Resolve(host.clone()))?
                .collect();
            if addrs.is_empty() {
                return Err(FetchError::Resolve(host).into());
            }
            if !allow_insecure {
                for addr in &addrs {
                    check_ip(addr.ip()).map_err(FetchError::Url)?;
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The outbound HTTP client; cheap to share behind an `Arc`.
pub struct SafeFetcher {
    settings: FetchSettings,
    client: reqwest::Client,
    /// Clients trusting a tenant-supplied CA (TokenReview), keyed by the PEM text.
    ca_clients: Mutex<HashMap<String, reqwest::Client>>,
}

impl SafeFetcher {
    /// Builds the fetcher with the public web PKI roots.
    pub fn new(settings: FetchSettings) -> Result<Self, FetchError> {
        let client = builder(&settings)
            .build()
            .map_err(|e| FetchError::Transport(chain(&e)))?;
        Ok(Self {
            settings,
            client,
            ca_clients: Mutex::new(HashMap::new()),
        })
    }

    /// The fetcher's limits.
    pub fn settings(&self) -> &FetchSettings {
        &self.settings
    }

    /// GETs a JSON document, following at most [`MAX_REDIRECTS`] vetted redirects; any final
    /// status but 2xx is an error.
    pub async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let url = check_url(url, self.settings.allow_insecure)?;
        self.bounded(self.get_following(url)).await
    }

    /// POSTs a JSON body with a bearer token, trusting only `ca_pem` when given. Redirects are
    /// not followed (they fail); any status but 2xx is an error.
    pub async fn post_json(
        &self,
        url: &str,
        bearer: &str,
        body: &serde_json::Value,
        ca_pem: Option<&str>,
    ) -> Result<Vec<u8>, FetchError> {
        let url = check_url(url, self.settings.allow_insecure)?;
        let client = match ca_pem {
            Some(pem) => self.ca_client(pem)?,
            None => self.client.clone(),
        };
        let request = client
            .post(url)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, format!("Bearer {bearer}"))
            .body(body.to_string());
        self.bounded(async {
            let response = request.send().await.map_err(map_reqwest)?;
            if !response.status().is_success() {
                return Err(FetchError::Status(response.status().as_u16()));
            }
            self.read_body(response).await
        })
        .await
    }

    /// Parses a CA bundle the way [`SafeFetcher::post_json`] will (for validation at
    /// registration).
    pub fn parse_ca(pem: &str) -> Result<Vec<reqwest::Certificate>, FetchError> {
        let certs =
            reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|_| FetchError::BadCa)?;
        if certs.is_empty() {
            return Err(FetchError::BadCa);
        }
        Ok(certs)
    }

    fn ca_client(&self, pem: &str) -> Result<reqwest::Client, FetchError> {
        let mut clients = self.ca_clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(pem) {
            return Ok(client.clone());
        }
        let mut builder = builder(&self.settings).tls_built_in_root_certs(false);
        for cert in Self::parse_ca(pem)? {
            builder = builder.add_root_certificate(cert);
        }
        let client = builder
            .build()
            .map_err(|e| FetchError::Transport(chain(&e)))?;
        if clients.len() >= MAX_CA_CLIENTS {
            clients.clear();
        }
        clients.insert(pem.to_owned(), client.clone());
        Ok(client)
    }

    async fn bounded<T>(
        &self,
        fut: impl Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        tokio::time::timeout(self.settings.timeout, fut)
            .await
            .unwrap_or(Err(FetchError::Timeout))
    }

    async fn get_following(&self, mut url: Url) -> Result<Vec<u8>, FetchError> {
        for _ in 0..=MAX_REDIRECTS {
            let response = self
                .client
                .get(url.clone())
                .header(ACCEPT, "application/json")
                .send()
                .await
                .map_err(map_reqwest)?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(FetchError::BadRedirect)?;
                // Absolute targets are vetted as written (joining would normalize numeric or
                // encoded host forms away); relative ones keep the vetted host.
                let next = if location.starts_with("//") {
                    format!("{}:{location}", url.scheme())
                } else if Url::parse(location).is_ok() {
                    location.to_owned()
                } else {
                    url.join(location)
                        .map_err(|_| FetchError::BadRedirect)?
                        .to_string()
                };
                url = check_url(&next, self.settings.allow_insecure)?;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status(status.as_u16()));
            }
            return self.read_body(response).await;
        }
        Err(FetchError::TooManyRedirects)
    }

    /// Streams the body and stops as soon as it passes the cap, whatever `Content-Length` said.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, FetchError> {
        let cap = self.settings.max_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > cap as u64)
        {
            return Err(FetchError::TooLarge(cap));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(map_reqwest)? {
            if body.len() + chunk.len() > cap {
                return Err(FetchError::TooLarge(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn builder(settings: &FetchSettings) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .https_only(!settings.allow_insecure)
        .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(VettingResolver {
            allow_insecure: settings.allow_insecure,
        }))
}

/// Maps a client error, recovering the resolver's own verdict from the source chain.
fn map_reqwest(err: reqwest::Error) -> FetchError {
    if err.is_timeout() {
        return FetchError::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(fetch) = e.downcast_ref::<FetchError>() {
            return fetch.clone();
        }
        source = e.source();
    }
    FetchError::Transport(chain(&err.without_url()))
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
pub mod tests_support {
    use super::*;

    /// The vetting resolver alone.
    pub fn resolver(allow_insecure: bool) -> impl Resolve {
        VettingResolver { allow_insecure }
    }
}
