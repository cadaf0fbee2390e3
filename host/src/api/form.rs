//! The form bodies of the OAuth endpoints (`application/x-www-form-urlencoded`): each parameter
//! at most once (RFC 6749 §3.2), decoded exactly as `form_urlencoded` decodes them.
//!
//! axum's `Form` decodes through serde and `serde_path_to_error`, and `form_urlencoded` walks
//! every value byte by byte twice (for `%` escapes, then for UTF-8) before serde copies it:
//! 8 µs of an exchange's CPU for a 1 KB subject token, the largest piece of the handler's own
//! work in a profile of the parts bench (docs/benchmarks-history.md); about 3 µs less now. A JWT, like most values, has neither `%` nor `+`:
//! such a value is only checked to be UTF-8 (vectorized) and copied once; anything else is
//! handed to `form_urlencoded` as before. The content-type check and the body limit are axum's
//! (`RawForm`), so every refusal is the one `Form` gave.

use super::{AppState, OAuthError};
use axum::extract::{FromRequest, RawForm, Request};
use std::collections::HashMap;
use url::form_urlencoded;

/// The parameters of a form body, by name.
pub struct FormParams(pub HashMap<String, String>);

impl FromRequest<AppState> for FormParams {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let RawForm(body) = RawForm::from_request(request, state)
            .await
            .map_err(|rejection| OAuthError::unreadable_body(rejection.status()))?;
        params(pairs(&body)).map(FormParams)
    }
}

/// Form parameters, each at most once (RFC 6749 §3.2: parameters must not be repeated).
pub fn params(pairs: Vec<(String, String)>) -> Result<HashMap<String, String>, OAuthError> {
    let mut map = HashMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        if map.insert(name, value).is_some() {
            return Err(OAuthError::invalid_request("a parameter is repeated"));
        }
    }
    Ok(map)
}

/// The name-value pairs of `body`, in order: what `form_urlencoded::parse` yields, owned.
pub fn pairs(body: &[u8]) -> Vec<(String, String)> {
    body.split(|&byte| byte == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match plain(piece) {
            Some(pair) => pair,
            None => {
                let (name, value) = form_urlencoded::parse(piece)
                    .next()
                    .expect("a non-empty piece is a pair");
                (name.into_owned(), value.into_owned())
            }
        })
        .collect()
}

/// The pair of a piece with nothing to decode (no `%`, no `+`, valid UTF-8), else `None`.
fn plain(piece: &[u8]) -> Option<(String, String)> {
    if piece.iter().any(|&byte| byte == b'%' || byte == b'+') {
        return None;
    }
    let text = std::str::from_utf8(piece).ok()?;
    let (name, value) = text.split_once('=').unwrap_or((text, ""));
    Some((name.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `form_urlencoded` makes of `body`, as axum's `Form` read it.
    fn reference(body: &[u8]) -> Vec<(String, String)> {
        form_urlencoded::parse(body)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect()
    }

    #[test]
    fn pairs_are_what_form_urlencoded_decodes() {
        let bodies: [&[u8]; 16] = [
            b"",
            b"&&&",
            b"a=1&b=2",
            b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=eyJh.eyJz.c2ln",
            b"scope=registry.pull+registry.push",
            b"a=%zz&b=%4&c=%41%42",
            b"novalue&=empty-name&x=",
            b"x=a=b=c",
            b"name%3D=v%26w",
            b"caf\xc3\xa9=cr\xc3\xa8me",
            b"bad=\xff\xfe&ok=1",
            b"bad%FF=1",
            b"+=+",
            b"%=%",
            b"a=1&&b=2&",
            b"t=\xe2\x82",
        ];
        for body in bodies {
            assert_eq!(
                pairs(body),
                reference(body),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// Every body of a small alphabet with the characters that decoding treats specially,
    /// up to five bytes long: the fast path never gives another answer than the library.
    #[test]
    fn every_short_body_decodes_as_form_urlencoded_does() {
        let alphabet: &[u8] = b"a%+&=4\xc3\xa9\xff";
        let mut body = Vec::new();
        let mut checked = 0;
        for length in 0..=5u32 {
            for mut n in 0..alphabet.len().pow(length) {
                body.clear();
                for _ in 0..length {
                    body.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                assert_eq!(pairs(&body), reference(&body), "{body:?}");
                checked += 1;
            }
        }
        assert!(checked > 60_000, "{checked}");
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        assert!(params(pairs(b"a=1&b=2")).is_ok());
        assert!(params(pairs(b"a=1&a=1")).is_err());
        // Repeated once decoded, even when written differently.
        assert!(params(pairs(b"a=1&%61=2")).is_err());
    }
}
