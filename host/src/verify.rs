//! Verification of subject tokens: the host authenticates, tenant code never sees an
//! unverified token.
//!
//! Three ways to trust an issuer ([`IssuerSource`]): OIDC discovery, a static JWKS pasted by the
//! tenant, or a Kubernetes TokenReview. All three return claims of the same (projected
//! ServiceAccount token) shape for `policy::request::build_request`. The only outbound HTTP of
//! the program is [`fetch::SafeFetcher`].

pub mod address;
mod cache;
pub mod discovery;
mod error;
mod expiry;
pub mod fetch;
pub mod jwks;
pub mod jwt;
mod screen;
pub(crate) mod strict_json;
pub mod tokenreview;

use cache::KeyCache;
pub use error::VerifyError;
use expiry::ExpiryWarnings;
pub use expiry::{KeysState, WARN_BEFORE as STATIC_KEYS_WARN_BEFORE};
use fetch::{FetchSettings, SafeFetcher};
use jwks::KeySet;
use jwt::ClaimRules;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Operator settings of verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySettings {
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Longest accepted token lifetime (`exp - iat`, or `exp - now` without `iat`).
    pub max_lifetime: Duration,
    /// Operator flag for tests and private clusters: permits http and private, loopback or
    /// otherwise internal addresses, and a `jwks_uri` on another host than the issuer.
    pub allow_insecure: bool,
    /// Bound on one outbound fetch, redirects included.
    pub fetch_timeout: Duration,
    /// Largest outbound response body read.
    pub max_response_bytes: usize,
    /// Least time between two refetches of one issuer's keys.
    pub refetch_interval: Duration,
    /// Age after which cached keys are refreshed (failures keep the old keys).
    pub jwks_max_age: Duration,
}

impl Default for VerifySettings {
    fn default() -> Self {
        Self {
            leeway: Duration::from_secs(60),
            max_lifetime: Duration::from_secs(48 * 3600),
            allow_insecure: false,
            fetch_timeout: Duration::from_secs(5),
            max_response_bytes: 100 * 1024,
            refetch_interval: Duration::from_secs(30),
            jwks_max_age: Duration::from_secs(3600),
        }
    }
}

/// How the keys (or the verdict) of an issuer are obtained. `Debug` redacts the reviewer
/// token; serialization keeps it (for the store), so API answers must leave it out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "mode",
    rename_all = "snake_case",
    deny_unknown_fields,
    from = "SourceRepr"
)]
pub enum IssuerSource {
    /// `{issuer}/.well-known/openid-configuration`, then its `jwks_uri`: on the issuer's host
    /// unless the tenant opts in to another (a cluster started with
    /// `--service-account-jwks-uri` pointing elsewhere).
    Discovery {
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_external_jwks_uri: bool,
    },
    /// A JWKS pasted by the tenant, trusted until `expires_at` (seconds since the epoch).
    StaticJwks {
        jwks: serde_json::Value,
        expires_at: i64,
    },
    /// Ask the cluster's API server (TokenReview API) with a reviewer token. With
    /// `any_issuer`, the token's `iss` is not compared with the issuer URL (Infisical's
    /// config names the API server only): the API server's review is what authenticates it.
    TokenReview {
        api_server: String,
        ca_pem: Option<String>,
        reviewer_token: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        any_issuer: bool,
    },
}

impl std::fmt::Debug for IssuerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Discovery {
                allow_external_jwks_uri,
            } => f
                .debug_struct("Discovery")
                .field("allow_external_jwks_uri", allow_external_jwks_uri)
                .finish(),
            Self::StaticJwks { jwks, expires_at } => f
                .debug_struct("StaticJwks")
                .field("jwks", jwks)
                .field("expires_at", expires_at)
                .finish(),
            Self::TokenReview {
                api_server, ca_pem, ..
            } => f
                .debug_struct("TokenReview")
                .field("api_server", api_server)
                .field("ca_pem", &ca_pem.as_ref().map(|_| "<pem>"))
                .field("reviewer_token", &"<redacted>")
                .finish(),
        }
    }
}

/// The accepted input shape of [`IssuerSource`]: serde ignores unknown fields next to the tag
/// of a unit variant, so `Discovery` is read as an empty struct variant that refuses them.
#[derive(Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
enum SourceRepr {
    Discovery {
        #[serde(default)]
        allow_external_jwks_uri: bool,
    },
    StaticJwks {
        jwks: serde_json::Value,
        expires_at: i64,
    },
    TokenReview {
        api_server: String,
        ca_pem: Option<String>,
        reviewer_token: String,
        #[serde(default)]
        any_issuer: bool,
    },
}

impl From<SourceRepr> for IssuerSource {
    fn from(repr: SourceRepr) -> Self {
        match repr {
            SourceRepr::Discovery {
                allow_external_jwks_uri,
            } => Self::Discovery {
                allow_external_jwks_uri,
            },
            SourceRepr::StaticJwks { jwks, expires_at } => Self::StaticJwks { jwks, expires_at },
            SourceRepr::TokenReview {
                api_server,
                ca_pem,
                reviewer_token,
                any_issuer,
            } => Self::TokenReview {
                api_server,
                ca_pem,
                reviewer_token,
                any_issuer,
            },
        }
    }
}

/// One trusted issuer of one tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuerConfig {
    /// Key of the JWKS cache, e.g. `tenant/issuer-name`.
    pub cache_key: String,
    /// The exact `iss` of the tokens.
    pub issuer_url: String,
    pub source: IssuerSource,
}

/// Verifies subject tokens; cheap to clone (shares the fetcher and the key cache).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

struct Inner {
    settings: VerifySettings,
    fetcher: SafeFetcher,
    cache: KeyCache,
    expiry: ExpiryWarnings,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Verifier {
    /// Builds a verifier (and its HTTP client) from operator settings.
    pub fn new(settings: VerifySettings) -> Result<Self, VerifyError> {
        if settings.fetch_timeout.is_zero() {
            return Err(VerifyError::Settings("fetch timeout must be positive"));
        }
        if settings.max_response_bytes == 0 {
            return Err(VerifyError::Settings("response cap must be positive"));
        }
        if settings.max_lifetime.is_zero() {
            return Err(VerifyError::Settings("maximum lifetime must be positive"));
        }
        let fetcher = SafeFetcher::new(FetchSettings {
            allow_insecure: settings.allow_insecure,
            timeout: settings.fetch_timeout,
            max_bytes: settings.max_response_bytes,
        })
        .map_err(|_| VerifyError::Settings("could not build the HTTP client"))?;
        let cache = KeyCache::new(settings.refetch_interval, settings.jwks_max_age);
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                fetcher,
                cache,
                expiry: ExpiryWarnings::default(),
            }),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &VerifySettings {
        &self.inner.settings
    }

    /// Forgets the cached keys of an issuer (after it was deleted; a changed issuer URL gets a
    /// fresh cache entry anyway).
    pub fn forget(&self, cache_key: &str) {
        self.inner.cache.forget(cache_key);
    }

    /// Checks an issuer at registration time: URL scheme and host rules, a well-formed static
    /// JWKS with only usable keys, TokenReview URL, reviewer token and CA. Needs no network.
    pub fn validate_issuer(&self, issuer: &IssuerConfig) -> Result<(), VerifyError> {
        let bad = |why: &str| Err(VerifyError::IssuerConfig(why.to_owned()));
        let insecure = self.inner.settings.allow_insecure;
        if issuer.cache_key.is_empty() {
            return bad("cache key is empty");
        }
        let iss = &issuer.issuer_url;
        if iss.is_empty() || iss.len() > 1024 || iss.chars().any(char::is_control) {
            return bad("issuer must be a non-empty string without control characters");
        }
        match &issuer.source {
            IssuerSource::Discovery { .. } => discovery::check_issuer_url(iss, insecure),
            IssuerSource::StaticJwks { jwks, expires_at } => {
                if *expires_at <= 0 {
                    return bad("`expires_at` must be a positive time");
                }
                let set = KeySet::from_value(jwks)?;
                if let Some(reason) = set.skipped.first() {
                    return Err(VerifyError::Jwks(format!("unusable entry: {reason}")));
                }
                if set.keys.is_empty() {
                    return Err(VerifyError::NoUsableKeys);
                }
                Ok(())
            }
            IssuerSource::TokenReview {
                api_server,
                ca_pem,
                reviewer_token,
                ..
            } => {
                let url = address::check_url(api_server, insecure)
                    .map_err(|e| VerifyError::IssuerConfig(format!("api server: {e}")))?;
                if url.query().is_some() || url.fragment().is_some() {
                    return bad("api server url must not have a query or fragment");
                }
                if reviewer_token.is_empty()
                    || !reviewer_token.bytes().all(|b| b.is_ascii_graphic())
                {
                    return bad("reviewer token must be non-empty printable text");
                }
                if let Some(pem) = ca_pem {
                    SafeFetcher::parse_ca(pem)
                        .map_err(|e| VerifyError::IssuerConfig(e.to_string()))?;
                }
                Ok(())
            }
        }
    }

    /// Verifies `token` and returns its verified claims: the JWT payload, or for TokenReview
    /// the projected-token-shaped claims vouched for by the API server. `now` is seconds since
    /// the Unix epoch.
    pub async fn verify(
        &self,
        issuer: &IssuerConfig,
        token: &str,
        accepted_audiences: &[String],
        now: i64,
    ) -> Result<serde_json::Value, VerifyError> {
        let jws = jwt::parse(token)?;
        self.verify_parsed(issuer, jws, accepted_audiences, now)
            .await
    }

    /// [`Verifier::verify`] for a token already parsed (and screened) by [`jwt::parse`]: the
    /// exchange parses before it looks the identity up, so that a malformed token costs the same
    /// whether or not the identity it names exists.
    pub async fn verify_parsed(
        &self,
        issuer: &IssuerConfig,
        jws: jwt::Jws<'_>,
        accepted_audiences: &[String],
        now: i64,
    ) -> Result<serde_json::Value, VerifyError> {
        let settings = &self.inner.settings;
        let rules = ClaimRules {
            issuer: &issuer.issuer_url,
            audiences: accepted_audiences,
            now,
            leeway: secs(settings.leeway),
            max_lifetime: secs(settings.max_lifetime),
        };
        match &issuer.source {
            IssuerSource::Discovery {
                allow_external_jwks_uri,
            } => {
                self.verify_discovery(issuer, jws, &rules, *allow_external_jwks_uri)
                    .await
            }
            IssuerSource::StaticJwks { jwks, expires_at } => {
                let state = self.inner.expiry.note(&issuer.cache_key, *expires_at, now);
                if state == KeysState::Expired {
                    return Err(VerifyError::StaticKeysExpired);
                }
                let set = KeySet::from_value(jwks)?;
                verified(jws, &set, &rules)
            }
            IssuerSource::TokenReview {
                api_server,
                ca_pem,
                reviewer_token,
                any_issuer,
            } => {
                let reviewer = tokenreview::Reviewer {
                    api_server,
                    ca_pem: ca_pem.as_deref(),
                    reviewer_token,
                };
                // The review vouches for the token: its own (signed) `iss` stands.
                let own_iss = jws
                    .payload
                    .get("iss")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                let rules = match (*any_issuer, &own_iss) {
                    (true, Some(iss)) => ClaimRules {
                        issuer: iss,
                        ..rules
                    },
                    _ => rules,
                };
                tokenreview::review(&self.inner.fetcher, reviewer, &jws, &rules).await
            }
        }
    }

    async fn verify_discovery(
        &self,
        issuer: &IssuerConfig,
        jws: jwt::Jws<'_>,
        rules: &ClaimRules<'_>,
        external_jwks_uri: bool,
    ) -> Result<serde_json::Value, VerifyError> {
        // Screened before any fetch, so that a token of another issuer (or an expired one, or
        // one for another audience) costs the issuer no request; judged again once verified.
        jwt::check_claims(&jws.payload, rules)?;
        let inner = &self.inner;
        let set = inner
            .cache
            .keys(
                &issuer.cache_key,
                &issuer.issuer_url,
                jws.kid.as_deref(),
                || {
                    discovery::fetch_keys(
                        &inner.fetcher,
                        &issuer.issuer_url,
                        inner.settings.allow_insecure,
                        external_jwks_uri,
                    )
                },
            )
            .await?;
        verified(jws, &set, rules)
    }
}

/// Selects the key, checks the signature, then the claims (only signed claims are judged).
fn verified(
    jws: jwt::Jws<'_>,
    set: &KeySet,
    rules: &ClaimRules<'_>,
) -> Result<serde_json::Value, VerifyError> {
    let key = set.select(jws.kid.as_deref(), jws.alg)?;
    jws.verify_signature(&key.key)?;
    jwt::check_claims(&jws.payload, rules)?;
    Ok(serde_json::Value::Object(jws.payload))
}

#[cfg(test)]
mod tests;
