//! OpenID Connect discovery: from an issuer URL to its key set.

use super::VerifyError;
use super::address::check_url;
use super::fetch::SafeFetcher;
use super::jwks::KeySet;
use super::strict_json::{self, StrictError};
use serde_json::Value;

/// The discovery document URL of an issuer (`{issuer}/.well-known/openid-configuration`).
pub fn discovery_url(issuer_url: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer_url.trim_end_matches('/')
    )
}

/// Checks an issuer URL for discovery: a fetchable URL without query or fragment.
pub fn check_issuer_url(issuer_url: &str, allow_insecure: bool) -> Result<(), VerifyError> {
    let url = check_url(issuer_url, allow_insecure)
        .map_err(|e| VerifyError::IssuerConfig(format!("issuer url: {e}")))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(VerifyError::IssuerConfig(
            "issuer url must not have a query or fragment".to_owned(),
        ));
    }
    Ok(())
}

/// Checks the `jwks_uri` of a discovery document: a fetchable URL (public, `https:`, unless
/// insecure mode is on) on the issuer's own host, or on any host when the issuer opted in
/// (`external`) or insecure mode is on (for clusters whose keys are served by an API server
/// address).
pub fn check_jwks_uri(
    issuer_url: &str,
    jwks_uri: &str,
    allow_insecure: bool,
    external: bool,
) -> Result<(), VerifyError> {
    let bad = |why: String| VerifyError::Discovery(format!("`jwks_uri` {why}"));
    let jwks = check_url(jwks_uri, allow_insecure).map_err(|e| bad(e.to_string()))?;
    if allow_insecure || external {
        return Ok(());
    }
    let issuer = check_url(issuer_url, allow_insecure).map_err(|e| bad(e.to_string()))?;
    if jwks.host_str() != issuer.host_str() {
        return Err(bad("is not on the issuer's host".to_owned()));
    }
    Ok(())
}

/// Fetches the discovery document, checks it, then fetches and filters the key set.
pub async fn fetch_keys(
    fetcher: &SafeFetcher,
    issuer_url: &str,
    allow_insecure: bool,
    external_jwks_uri: bool,
) -> Result<KeySet, VerifyError> {
    let body = fetcher
        .get(&discovery_url(issuer_url))
        .await
        .map_err(|cause| VerifyError::Fetch {
            what: "discovery document",
            cause,
        })?;
    let doc = strict_json::parse_object(&body).map_err(|e| {
        VerifyError::Discovery(match e {
            StrictError::DuplicateKey => "duplicate JSON keys".to_owned(),
            StrictError::Syntax => "not a JSON object".to_owned(),
        })
    })?;
    match doc.get("issuer") {
        Some(Value::String(issuer)) if issuer == issuer_url => {}
        _ => {
            return Err(VerifyError::Discovery(
                "`issuer` does not equal the configured issuer".to_owned(),
            ));
        }
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| VerifyError::Discovery("`jwks_uri` is missing".to_owned()))?;
    check_jwks_uri(issuer_url, jwks_uri, allow_insecure, external_jwks_uri)?;
    let body = fetcher
        .get(jwks_uri)
        .await
        .map_err(|cause| VerifyError::Fetch {
            what: "key set",
            cause,
        })?;
    KeySet::from_bytes(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_url_has_one_slash() {
        assert_eq!(
            discovery_url("https://i.example/t/"),
            "https://i.example/t/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://i.example"),
            "https://i.example/.well-known/openid-configuration"
        );
    }

    #[test]
    fn jwks_uri_must_stay_on_the_issuer_host() {
        let issuer = "https://issuer.example.com";
        check_jwks_uri(issuer, "https://issuer.example.com/keys", false, false).unwrap();
        check_jwks_uri(issuer, "https://issuer.example.com:8443/keys", false, false).unwrap();
        for bad in [
            "https://evil.example.com/keys",
            "https://issuer.example.com.evil.example/keys",
            "http://issuer.example.com/keys",
            "https://169.254.169.254/keys",
            "https://user@issuer.example.com/keys",
        ] {
            assert!(
                matches!(
                    check_jwks_uri(issuer, bad, false, false),
                    Err(VerifyError::Discovery(_))
                ),
                "{bad}"
            );
        }
    }

    /// An issuer that opted in may name another host (`--service-account-jwks-uri`), but
    /// never an address or scheme the fetcher would refuse anyway.
    #[test]
    fn an_opted_in_issuer_may_name_another_public_host_only() {
        let issuer = "https://issuer.example.com";
        check_jwks_uri(
            issuer,
            "https://keys.other.example/openid/v1/jwks",
            false,
            true,
        )
        .unwrap();
        for bad in [
            "http://keys.other.example/jwks",
            "https://169.254.169.254/keys",
            "https://10.0.0.1/keys",
            "https://user@keys.other.example/keys",
        ] {
            assert!(check_jwks_uri(issuer, bad, false, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn issuer_url_rules() {
        check_issuer_url("https://issuer.example.com/tenant", false).unwrap();
        for bad in [
            "https://issuer.example.com/?q=1",
            "https://issuer.example.com/#f",
            "http://issuer.example.com",
            "https://10.1.2.3",
        ] {
            assert!(check_issuer_url(bad, false).is_err(), "{bad}");
        }
    }
}
