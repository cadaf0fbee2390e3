//! Classification of outbound URLs and addresses: which ones the fetcher may reach.
//!
//! Anything a tenant types (issuer URLs, `jwks_uri` from a discovery document, TokenReview API
//! servers, redirect targets) passes through [`check_url`] before a request is made, and every
//! address a name resolves to passes through [`forbidden_ip`] before a connection is made.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// Longest URL accepted anywhere: real issuer and JWKS URLs are far shorter.
const MAX_URL_LEN: usize = 2048;

/// Why a URL or an address may not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("url is not valid")]
    Invalid,
    #[error(
        "url holds characters that URL parsers read differently (only RFC 3986 characters, with `%` before two hex digits, are accepted)"
    )]
    Ambiguous,
    #[error("url is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("url scheme `{0}` is not allowed (https only)")]
    Scheme(String),
    #[error("url must not carry user information")]
    UserInfo,
    #[error("url has no host")]
    NoHost,
    #[error(
        "url host is not in canonical form (numeric, encoded or internationalized host forms are refused)"
    )]
    NonCanonicalHost,
    #[error("address `{addr}` is not allowed ({reason})")]
    ForbiddenAddress { addr: IpAddr, reason: &'static str },
    #[error("host `localhost` is not allowed")]
    Localhost,
}

/// Parses and vets a URL: scheme, user information, canonical host, and (for IP literals) the
/// address itself. `allow_insecure` permits http and private or loopback addresses.
pub fn check_url(raw: &str, allow_insecure: bool) -> Result<Url, UrlError> {
    if raw.len() > MAX_URL_LEN {
        return Err(UrlError::TooLong);
    }
    // The URL parser silently strips tabs and newlines; a URL carrying them is refused instead.
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(UrlError::Invalid);
    }
    if !rfc3986_text(raw) {
        return Err(UrlError::Ambiguous);
    }
    let url = Url::parse(raw).map_err(|_| UrlError::Invalid)?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        other => return Err(UrlError::Scheme(other.to_owned())),
    }
    if !url.username().is_empty() || url.password().is_some() || raw_authority(raw).contains('@') {
        return Err(UrlError::UserInfo);
    }
    let host = url.host().ok_or(UrlError::NoHost)?;
    // The parser turns `2130706433`, `0x7f.1` or `017700000001` into 127.0.0.1, and punycodes
    // or percent-decodes names: demand the host exactly as the parser would print it.
    let written = raw_host(raw).to_ascii_lowercase();
    let canonical = match host {
        // IPv6 has several equivalent spellings (`::ffff:127.0.0.1`, `0::1`); the std parser
        // accepts only standard ones, and the address itself is vetted below.
        Host::Ipv6(v6) => {
            written
                .strip_prefix('[')
                .and_then(|w| w.strip_suffix(']'))
                .and_then(|w| w.parse::<Ipv6Addr>().ok())
                == Some(v6)
        }
        _ => url.host_str() == Some(written.as_str()),
    };
    if !canonical {
        return Err(UrlError::NonCanonicalHost);
    }
    if !allow_insecure {
        match host {
            Host::Ipv4(v4) => check_ip(IpAddr::V4(v4))?,
            Host::Ipv6(v6) => check_ip(IpAddr::V6(v6))?,
            Host::Domain(name) => {
                let name = name.trim_end_matches('.');
                if name == "localhost" || name.ends_with(".localhost") {
                    return Err(UrlError::Localhost);
                }
            }
        }
    }
    Ok(url)
}

/// Whether `raw` is made only of the characters RFC 3986 allows in a URI (unreserved, reserved
/// and `%HH`). WHATWG parsers (the `url` crate, browsers) and RFC 3986 parsers (curl, Python)
/// disagree on the rest: `\` is a path separator to the first and an ordinary character to the
/// second, so `https://a.example\@169.254.169.254/` names a different host to each. Non-ASCII
/// hosts must be written in their punycode form.
fn rfc3986_text(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&b)) {
            return false;
        }
        i += 1;
    }
    true
}

/// Fails when `ip` is an address the fetcher must never connect to.
pub fn check_ip(ip: IpAddr) -> Result<(), UrlError> {
    match forbidden_ip(ip) {
        Some(reason) => Err(UrlError::ForbiddenAddress { addr: ip, reason }),
        None => Ok(()),
    }
}

/// Why `ip` is not a public unicast address, or `None` when it is.
pub fn forbidden_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "unspecified"),
        ([10, 0, 0, 0], 8, "private"),
        ([100, 64, 0, 0], 10, "shared address space (CGNAT)"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 0, 0, 0], 24, "IETF protocol assignments"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([192, 88, 99, 0], 24, "6to4 relay"),
        ([192, 168, 0, 0], 16, "private"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved or broadcast"),
    ];
    RANGES
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, reason)| *reason)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // Forms that embed an IPv4 address could smuggle a private one past the v4 rules.
    if ip.to_ipv4_mapped().is_some() {
        return Some("IPv4-mapped");
    }
    if seg[..6] == [0; 6] {
        return Some("IPv4-compatible");
    }
    if seg[0] == 0x64 && seg[1] == 0xff9b {
        return Some("NAT64");
    }
    if seg[0] == 0x2002 {
        return Some("6to4");
    }
    if seg[0] == 0x2001 && seg[1] == 0 {
        return Some("Teredo");
    }
    if seg[0] == 0x2001 && seg[1] == 0x0db8 || seg[0] == 0x3fff && seg[1] < 0x1000 {
        return Some("documentation");
    }
    // The rest of 2001::/23 (benchmarking, ORCHID, AMT, AS112 ...): no issuer lives there.
    if seg[0] == 0x2001 && seg[1] < 0x0200 {
        return Some("IETF protocol assignments");
    }
    match seg[0] {
        s if s & 0xfe00 == 0xfc00 => Some("unique local"),
        s if s & 0xffc0 == 0xfe80 => Some("link-local"),
        s if s & 0xffc0 == 0xfec0 => Some("site-local"),
        s if s & 0xff00 == 0xff00 => Some("multicast"),
        // Only global unicast (2000::/3) is public.
        s if s & 0xe000 != 0x2000 => Some("not global unicast"),
        _ => None,
    }
}

/// The authority part of a URL as written (between `//` and the path), empty when absent.
fn raw_authority(raw: &str) -> &str {
    let Some((_, rest)) = raw.split_once("//") else {
        return "";
    };
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    &rest[..end]
}

/// The host as written, without the port.
fn raw_host(raw: &str) -> &str {
    let authority = raw_authority(raw);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> UrlError {
        check_url(url, false).expect_err(url)
    }

    #[test]
    fn public_https_urls_pass() {
        for url in [
            "https://issuer.example.com",
            "https://issuer.example.com/",
            "https://issuer.example.com:8443/tenant/a?x=1",
            "https://8.8.8.8/keys",
            "https://[2606:4700::1111]/keys",
        ] {
            check_url(url, false).expect(url);
        }
    }

    #[test]
    fn scheme_and_userinfo_are_refused() {
        assert!(matches!(
            refused("http://issuer.example.com"),
            UrlError::Scheme(_)
        ));
        assert!(matches!(refused("file:///etc/passwd"), UrlError::Scheme(_)));
        assert!(matches!(refused("gopher://x.example"), UrlError::Scheme(_)));
        assert_eq!(
            refused("https://user:pw@issuer.example.com"),
            UrlError::UserInfo
        );
        assert_eq!(
            refused("https://user@issuer.example.com"),
            UrlError::UserInfo
        );
        assert_eq!(
            refused("https://issuer.example.com@169.254.169.254/"),
            UrlError::UserInfo
        );
        assert_eq!(refused("https://a.example\n.com"), UrlError::Invalid);
        assert_eq!(refused("https:// a.example.com"), UrlError::Invalid);
    }

    /// URLs that a WHATWG parser (this one) and an RFC 3986 parser (curl, Python) read with
    /// different hosts or paths, refused even where insecure issuers are allowed.
    #[test]
    fn urls_parsers_disagree_on_are_refused() {
        for url in [
            r"https://kubernetes.example.com\@169.254.169.254/",
            r"https://a.example\evil.example/",
            r"https://a.example/keys\..\admin",
            "https://a.example/%zz",
            "https://a.example/%4",
            "https://a.example/\"",
            "https://a.example/<x>",
            "https://a.example/{x}",
            "https://a.example/|",
            "https://a.example/^",
            "https://a.example/`",
            "https://bücher.example/",
            "https://a.example/ü",
        ] {
            assert_eq!(refused(url), UrlError::Ambiguous, "{url}");
            assert_eq!(
                check_url(url, true).expect_err(url),
                UrlError::Ambiguous,
                "{url}"
            );
        }
        for url in [
            "https://xn--bcher-kva.example/",
            "https://a.example/a%2Fb?q=%20&r=x~y#frag",
            "https://a.example/!$&'()*+,;=:@",
        ] {
            check_url(url, false).expect(url);
        }
    }

    #[test]
    fn private_and_special_literals_are_refused() {
        for url in [
            "https://127.0.0.1/",
            "https://127.1.2.3:8443/",
            "https://169.254.169.254/latest/meta-data",
            "https://0.0.0.0/",
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://172.31.255.255/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://100.127.255.254/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            "https://[::1]/",
            "https://[0:0::1]/",
            "https://[::FFFF:a9fe:a9fe]/",
            "https://[::]/",
            "https://[fd00::1]/",
            "https://[fc00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:a9fe:a9fe::1]/",
            "https://[ff02::1]/",
        ] {
            assert!(
                matches!(refused(url), UrlError::ForbiddenAddress { .. }),
                "{url}"
            );
        }
        assert_eq!(refused("https://localhost/"), UrlError::Localhost);
        assert_eq!(refused("https://api.localhost./"), UrlError::Localhost);
    }

    #[test]
    fn numeric_host_forms_are_refused_even_when_insecure_is_allowed() {
        for url in [
            "https://2130706433/",
            "https://0x7f000001/",
            "https://0x7f.0.0.1/",
            "https://017700000001/",
            "https://0177.0.0.1/",
            "https://127.1/",
            "https://2852039166/",
            "https://0xa9.0xfe.0xa9.0xfe/",
            "https://%31%32%37.0.0.1/",
        ] {
            assert_eq!(refused(url), UrlError::NonCanonicalHost, "{url}");
            assert_eq!(
                check_url(url, true).expect_err(url),
                UrlError::NonCanonicalHost,
                "{url}"
            );
        }
    }

    #[test]
    fn insecure_mode_allows_http_and_loopback() {
        check_url("http://127.0.0.1:8080/jwks", true).unwrap();
        check_url("http://localhost:8080/", true).unwrap();
        assert_eq!(
            check_url("http://u@127.0.0.1/", true).unwrap_err(),
            UrlError::UserInfo
        );
    }

    #[test]
    fn address_classifier() {
        let bad: [IpAddr; 8] = [
            "169.254.169.254".parse().unwrap(),
            "100.64.0.0".parse().unwrap(),
            "127.0.0.53".parse().unwrap(),
            "::ffff:10.0.0.1".parse().unwrap(),
            "fe80::abcd".parse().unwrap(),
            "fdff::1".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
            "2001:0:4136:e378::1".parse().unwrap(),
        ];
        for ip in [
            "2001:2::1",
            "2001:10::1",
            "2001:1ff::1",
            "3fff::1",
            "3fff:fff::1",
        ] {
            assert!(forbidden_ip(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in [
            "2001:200::1",
            "2001:4860:4860::8888",
            "3ffe::1",
            "2a00:1450::1",
        ] {
            assert_eq!(forbidden_ip(ip.parse().unwrap()), None, "{ip}");
        }
        for ip in bad {
            assert!(forbidden_ip(ip).is_some(), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "2606:4700::1",
        ] {
            assert_eq!(forbidden_ip(ip.parse().unwrap()), None, "{ip}");
        }
    }
}
