//! Address ranges: identities' trusted CIDRs (IPv4 and IPv6) and the operator's trusted
//! proxies. A bare address is the range of that one address; `0.0.0.0/0` and `::/0` are
//! every address of their family (Infisical's "any").

use ipnet::IpNet;
use std::net::IpAddr;

/// A list of ranges, parsed once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cidrs(Vec<IpNet>);

impl Cidrs {
    /// Parses every entry; the first that is not an address or a range is the error.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<Cidrs, String> {
        list.iter()
            .map(|entry| parse_one(entry.as_ref()))
            .collect::<Result<_, _>>()
            .map(Cidrs)
    }

    /// No ranges: nothing is restricted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `address` is in one of the ranges (an IPv4-mapped IPv6 address counts as its
    /// IPv4 address).
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The ranges in canonical text (`10.0.0.0/8`, `2001:db8::/32`), as stored.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(IpNet::to_string).collect()
    }
}

fn parse_one(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    let net = match entry.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => entry
            .parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| format!("`{entry}` is not an IP address or CIDR range"))?,
    };
    // `10.1.2.3/8` is read as `10.0.0.0/8`, written back in that form.
    Ok(net.trunc())
}

/// Whether a client at `address` (`None`: unknown) may use something restricted to `cidrs`
/// (stored text): yes when there is no restriction; no when the address is unknown or
/// unreadable, or a stored range no longer parses (fail closed).
pub fn allows(cidrs: &[String], address: Option<&str>) -> bool {
    if cidrs.is_empty() {
        return true;
    }
    let (Ok(ranges), Some(Ok(address))) = (
        Cidrs::parse(cidrs),
        address.map(|a| a.trim().parse::<IpAddr>()),
    ) else {
        return false;
    };
    ranges.contains(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(list: &[&str]) -> Vec<String> {
        list.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn ranges_of_both_families_and_the_any_ranges() {
        let cidrs = s(&["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]);
        assert!(allows(&cidrs, Some("10.1.2.3")));
        assert!(allows(&cidrs, Some("2001:db8::1")));
        assert!(allows(&cidrs, Some("192.0.2.7")));
        assert!(allows(&cidrs, Some("::ffff:10.9.9.9")), "IPv4-mapped");
        assert!(!allows(&cidrs, Some("192.0.2.8")));
        assert!(!allows(&cidrs, Some("11.0.0.1")));
        assert!(!allows(&cidrs, Some("2001:db9::1")));
        let any = s(&["0.0.0.0/0", "::/0"]);
        assert!(allows(&any, Some("203.0.113.9")));
        assert!(allows(&any, Some("2001:db8::9")));
        assert!(allows(&[], None), "no restriction");
    }

    #[test]
    fn unknown_or_unreadable_addresses_are_refused() {
        let cidrs = s(&["0.0.0.0/0"]);
        assert!(!allows(&cidrs, None));
        assert!(!allows(&cidrs, Some("not-an-ip")));
        assert!(!allows(&cidrs, Some("10.0.0.1, 10.0.0.2")));
        assert!(!allows(&s(&["bogus"]), Some("10.0.0.1")));
    }

    #[test]
    fn entries_are_validated_and_canonical() {
        let parsed = Cidrs::parse(&["10.1.2.3/8", " 2001:DB8::/32", "::1"]).unwrap();
        assert_eq!(
            parsed.to_strings(),
            ["10.0.0.0/8", "2001:db8::/32", "::1/128"]
        );
        for bad in ["10.0.0.0/33", "10.0.0", "", "example.com", "::/129"] {
            assert!(Cidrs::parse(&[bad]).is_err(), "{bad}");
        }
    }
}
