//! The rule an endpoint follows: an absolute `http` or `https` URL with a
//! host, no credentials, at most 2048 characters; and none of the
//! addresses it reaches may be private. [`is_forbidden_address`] names the
//! addresses refused (loopback, private, link-local, unspecified,
//! multicast, carrier-grade NAT, IPv6 unique-local, and IPv4 ones hidden
//! in IPv6); the API applies it to the host's addresses when a webhook is
//! created or changed, and the sender again to the addresses it connects
//! to, so a name that later resolves elsewhere cannot reach inside.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const MAX_LENGTH: usize = 2048;

/// A checked endpoint URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint(url::Url);

impl Endpoint {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() > MAX_LENGTH {
            return Err(format!(
                "`endpoint` must be at most {MAX_LENGTH} characters."
            ));
        }
        let url = url::Url::parse(raw).map_err(|e| format!("`endpoint` is not a URL: {e}."))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "`endpoint` must be an http or https URL, not `{}:`.",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("`endpoint` must name a host.".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("`endpoint` must not carry credentials.".into());
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }

    /// The host as the resolver takes it (an IPv6 literal without brackets).
    pub fn host(&self) -> String {
        match self.0.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => String::new(),
        }
    }

    /// The host's address, when the URL names one rather than a name.
    pub fn literal_address(&self) -> Option<IpAddr> {
        match self.0.host()? {
            url::Host::Ipv4(a) => Some(IpAddr::V4(a)),
            url::Host::Ipv6(a) => Some(IpAddr::V6(a)),
            url::Host::Domain(_) => None,
        }
    }

    pub fn port(&self) -> u16 {
        self.0.port_or_known_default().unwrap_or(80)
    }
}

/// Whether an endpoint may not be reached at `address` (unless private
/// endpoints are allowed by configuration).
pub fn is_forbidden_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(a) => forbidden_v4(a),
        IpAddr::V6(a) => forbidden_v6(a),
    }
}

fn forbidden_v4(a: Ipv4Addr) -> bool {
    let [first, second, ..] = a.octets();
    a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_multicast()
        || a.is_broadcast()
        || a.is_documentation()
        || first == 0
        // Carrier-grade NAT, 100.64.0.0/10.
        || (first == 100 && (second & 0xc0) == 64)
        // IETF protocol assignments, 192.0.0.0/24.
        || (first == 192 && second == 0 && a.octets()[2] == 0)
        // The 6to4 relay anycast, 192.88.99.0/24.
        || (first == 192 && second == 88 && a.octets()[2] == 99)
        // Benchmarking, 198.18.0.0/15.
        || (first == 198 && (second & 0xfe) == 18)
        // Reserved for future use, 240.0.0.0/4.
        || first >= 240
}

fn forbidden_v6(a: Ipv6Addr) -> bool {
    let [first, second, ..] = a.segments();
    a.is_loopback()
        || a.is_unspecified()
        || a.is_multicast()
        // IPv4-mapped, ::ffff:0:0/96: a webhook that means an IPv4 host
        // names it, and a mapped address can reach any of them.
        || a.to_ipv4_mapped().is_some()
        // Unique local, fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10, and the deprecated site-local, fec0::/10.
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // IPv4-compatible (deprecated), ::/96.
        || a.segments()[..6].iter().all(|s| *s == 0)
        // NAT64, 64:ff9b::/96 and the local-use 64:ff9b:1::/48, reach IPv4.
        || (first == 0x64 && second == 0xff9b)
        // Discard-only, 100::/64.
        || (first == 0x100 && a.segments()[1..4].iter().all(|s| *s == 0))
        // Teredo, 2001::/32, and 6to4, 2002::/16, embed an IPv4 address;
        // documentation, 2001:db8::/32.
        || (first == 0x2001 && (second == 0 || second == 0xdb8))
        || first == 0x2002
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_with_a_host() {
        assert!(Endpoint::parse("https://hooks.example.com/mq").is_ok());
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:8080/x").unwrap().port(),
            8080
        );
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "example.com/hook",
            "https://user:pw@example.com/",
            "javascript:alert(1)",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        assert!(Endpoint::parse(&format!("https://e.com/{}", "a".repeat(2048))).is_err());
    }

    #[test]
    fn literal_hosts_are_known_without_resolving() {
        let e = Endpoint::parse("http://[::1]:9/").unwrap();
        assert_eq!(e.literal_address(), Some("::1".parse().unwrap()));
        assert_eq!(e.host(), "::1");
        assert_eq!(
            Endpoint::parse("https://example.com")
                .unwrap()
                .literal_address(),
            None
        );
    }

    #[test]
    fn inside_addresses_are_forbidden() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "198.18.0.1",
            "198.19.255.255",
            "192.0.0.8",
            "192.88.99.1",
            "fec0::1",
            "2002:7f00:1::1",
            "2002:a00:1::",
            "::ffff:8.8.8.8",
            "::ffff:0:0",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "100::1",
            "64:ff9b:1::a00:1",
        ] {
            assert!(is_forbidden_address(a.parse().unwrap()), "{a}");
        }
        for a in [
            "93.184.216.34",
            "100.128.0.1",
            "2606:4700::1111",
            "198.20.0.1",
            "192.0.1.1",
            "2001:4860:4860::8888",
            "2003::1",
        ] {
            assert!(!is_forbidden_address(a.parse().unwrap()), "{a}");
        }
    }
}
