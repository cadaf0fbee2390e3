//! Who is asking: the client's address, from the socket, or from `Forwarded` /
//! `X-Forwarded-For` only when the socket's peer is one of the proxies the operator trusts
//! (`--trusted-proxies`). Anyone can write those headers; only a trusted proxy's word counts.

use super::AppState;
use crate::common::cidrs::Cidrs;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// The caller's address (absent only when the server was started without connect info).
pub struct ClientAddr(pub Option<String>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(Self(
            peer.map(|peer| client_address(peer, &parts.headers, &state.trusted_proxies))
                .map(|address| address.to_canonical().to_string()),
        ))
    }
}

/// The client behind `peer`: walking the forwarding chain from the nearest hop, the first
/// address that is not a trusted proxy. `Forwarded` (RFC 7239) is read when present, else
/// `X-Forwarded-For`. A hop that cannot be read ends the walk at the last trusted one, so a
/// garbled header never yields an address the proxy did not write.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &Cidrs) -> IpAddr {
    if trusted.is_empty() || !trusted.contains(peer) {
        return peer;
    }
    let chain = forwarded_chain(headers);
    let mut client = peer;
    for hop in chain.iter().rev() {
        let Some(address) = hop else {
            return client;
        };
        client = *address;
        if !trusted.contains(client) {
            return client;
        }
    }
    client
}

/// The `for=` addresses of `Forwarded`, or the entries of `X-Forwarded-For`, in order (client
/// first); `None` for an entry that is not an address.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().map(str::to_owned).unwrap_or_default())
            .collect()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|value| value.split(','))
            .map(|element| {
                element
                    .split(';')
                    .find_map(|pair| {
                        let (key, value) = pair.trim().split_once('=')?;
                        key.eq_ignore_ascii_case("for").then_some(value)
                    })
                    .and_then(parse_forwarded_node)
            })
            .collect();
    }
    values("x-forwarded-for")
        .iter()
        .flat_map(|value| value.split(','))
        .map(|entry| entry.trim().parse().ok())
        .collect()
}

/// A `for=` node: `192.0.2.1`, `"192.0.2.1:80"`, `"[2001:db8::1]:443"`; obfuscated and
/// `unknown` nodes are not addresses.
fn parse_forwarded_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    node.parse()
        .ok()
        .or_else(|| node.rsplit_once(':')?.0.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let spoofed = headers(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("forwarded", "for=10.0.0.1"),
        ]);
        assert_eq!(
            client_address(ip("203.0.113.5"), &spoofed, &Cidrs::default()),
            ip("203.0.113.5")
        );
        let trusted = Cidrs::parse(&["192.0.2.0/24"]).unwrap();
        assert_eq!(
            client_address(ip("203.0.113.5"), &spoofed, &trusted),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_first_untrusted_hop() {
        let trusted = Cidrs::parse(&["192.0.2.0/24", "2001:db8::/32"]).unwrap();
        // The client wrote 10.0.0.1 itself; the proxy appended what it saw.
        let xff = headers(&[("x-forwarded-for", "10.0.0.1, 198.51.100.7, 192.0.2.9")]);
        assert_eq!(
            client_address(ip("192.0.2.1"), &xff, &trusted),
            ip("198.51.100.7")
        );
        let forwarded = headers(&[(
            "forwarded",
            "for=10.0.0.1, for=\"[2001:db8:cafe::17]:4711\";proto=https, for=\"198.51.100.8:80\"",
        )]);
        assert_eq!(
            client_address(ip("2001:db8::1"), &forwarded, &trusted),
            ip("198.51.100.8")
        );
    }

    #[test]
    fn a_garbled_hop_stops_at_the_last_trusted_one() {
        let trusted = Cidrs::parse(&["192.0.2.0/24"]).unwrap();
        let garbled = headers(&[("x-forwarded-for", "10.0.0.1, not-an-ip, 192.0.2.9")]);
        assert_eq!(
            client_address(ip("192.0.2.1"), &garbled, &trusted),
            ip("192.0.2.9")
        );
        let none = headers(&[]);
        assert_eq!(
            client_address(ip("192.0.2.1"), &none, &trusted),
            ip("192.0.2.1")
        );
    }
}
