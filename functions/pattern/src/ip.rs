//! IP addresses and CIDR blocks for `{"cidr": "10.0.0.0/24"}`, compared by value.
//!
//! event-ruler only treats text as an address when it looks like one (four dotted decimal
//! groups, or hex digits and colons with at least one colon) and then parses it with Java's
//! `InetAddress`, which maps IPv4-mapped IPv6 addresses to IPv4. The same rules apply here.

use std::net::{Ipv4Addr, Ipv6Addr};

/// An address, as a number of its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ip {
    V4(u32),
    V6(u128),
}

/// An inclusive address range of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpRange {
    low: Ip,
    high: Ip,
}

impl IpRange {
    /// The range holding exactly `ip`.
    pub(crate) fn single(ip: Ip) -> IpRange {
        IpRange { low: ip, high: ip }
    }

    /// Whether `ip` is inside (a different family never is).
    pub(crate) fn contains(&self, ip: Ip) -> bool {
        match (self.low, self.high, ip) {
            (Ip::V4(lo), Ip::V4(hi), Ip::V4(x)) => lo <= x && x <= hi,
            (Ip::V6(lo), Ip::V6(hi), Ip::V6(x)) => lo <= x && x <= hi,
            _ => false,
        }
    }
}

fn looks_like_ipv4(s: &str) -> bool {
    let mut groups = 0;
    for group in s.split('.') {
        if group.is_empty() || !group.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        groups += 1;
    }
    groups == 4
}

fn looks_like_ipv6(s: &str) -> bool {
    s.contains(':') && s.bytes().all(|b| b == b':' || b.is_ascii_hexdigit())
}

/// Parses an address literal; `None` when `s` is not one.
pub(crate) fn parse_ip(s: &str) -> Option<Ip> {
    if looks_like_ipv4(s) {
        // Java reads each group as a decimal number (leading zeros are not octal).
        let mut octets = [0u8; 4];
        for (octet, group) in octets.iter_mut().zip(s.split('.')) {
            let trimmed = group.trim_start_matches('0');
            if trimmed.len() > 3 {
                return None;
            }
            *octet = if trimmed.is_empty() {
                0
            } else {
                trimmed.parse().ok()?
            };
        }
        return Some(Ip::V4(u32::from(Ipv4Addr::from(octets))));
    }
    if looks_like_ipv6(s) {
        let v6: Ipv6Addr = s.parse().ok()?;
        if let Some(v4) = v6.to_ipv4_mapped() {
            return Some(Ip::V4(u32::from(v4)));
        }
        return Some(Ip::V6(u128::from(v6)));
    }
    None
}

/// Parses `base/bits`, masking host bits of the base (`220.160.154.255/24` is
/// `220.160.154.0/24`). The error text is event-ruler's.
pub(crate) fn parse_cidr(cidr: &str) -> Result<IpRange, String> {
    let parts: Vec<&str> = cidr.split('/').collect();
    // Java's String.split drops trailing empty strings, so "a/" has one part.
    let parts: Vec<&str> = {
        let mut p = parts;
        while p.len() > 1 && p.last().is_some_and(|s| s.is_empty()) {
            p.pop();
        }
        p
    };
    if parts.len() != 2 {
        return Err("Malformed CIDR, one '/' required".to_owned());
    }
    let bits: i64 = parts[1]
        .parse()
        .ok()
        .filter(|_| parts[1].len() <= 10)
        .ok_or_else(|| "Malformed CIDR, mask bits must be an integer".to_owned())?;
    if bits < 0 {
        return Err("Malformed CIDR, mask bits must not be negative".to_owned());
    }
    let base = parts[0];
    if !looks_like_ipv4(base) && !looks_like_ipv6(base) {
        return Err(format!("Nonstandard IP address: {base}"));
    }
    let ip = parse_ip(base).ok_or_else(|| format!("Invalid IP address: {base}"))?;
    match ip {
        Ip::V4(addr) => {
            if bits > 31 {
                return Err("IPv4 mask bits must be < 32".to_owned());
            }
            let host = u32::MAX >> bits;
            Ok(IpRange {
                low: Ip::V4(addr & !host),
                high: Ip::V4(addr | host),
            })
        }
        Ip::V6(addr) => {
            if bits > 127 {
                return Err("IPv6 mask bits must be < 128".to_owned());
            }
            let host = u128::MAX >> bits;
            Ok(IpRange {
                low: Ip::V6(addr & !host),
                high: Ip::V6(addr | host),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_host_bits() {
        let r = parse_cidr("220.160.154.255/24").unwrap();
        assert!(r.contains(parse_ip("220.160.154.0").unwrap()));
        assert!(r.contains(parse_ip("220.160.154.255").unwrap()));
        assert!(!r.contains(parse_ip("220.160.155.0").unwrap()));
    }

    #[test]
    fn ipv6_compares_by_value() {
        let r = parse_cidr("2001:db8:1234:1a00::/64").unwrap();
        assert!(r.contains(parse_ip("2001:0db8:1234:1a00:0000:0000:0000:0000").unwrap()));
        assert!(r.contains(parse_ip("2001:db8:1234:1a00:ffff::1").unwrap()));
        assert!(!r.contains(parse_ip("2001:0db8:123f:1a01::").unwrap()));
        assert!(!r.contains(parse_ip("10.0.0.1").unwrap()));
    }

    #[test]
    fn rejects_malformed_cidrs_with_event_ruler_messages() {
        assert_eq!(
            parse_cidr("bad-filter").unwrap_err(),
            "Malformed CIDR, one '/' required"
        );
        assert_eq!(
            parse_cidr("xx.11.xx/8").unwrap_err(),
            "Nonstandard IP address: xx.11.xx"
        );
        assert_eq!(
            parse_cidr("bad-/64filter").unwrap_err(),
            "Malformed CIDR, mask bits must be an integer"
        );
        assert!(parse_cidr("10.0.0.256/8").is_err());
        assert!(parse_cidr("10.0.0.0/32").is_err());
    }

    #[test]
    fn non_addresses_are_not_parsed() {
        assert_eq!(parse_ip("10.0.0.256"), None);
        assert_eq!(parse_ip("abc"), None);
        assert_eq!(parse_ip("1.2.3"), None);
        assert_eq!(parse_ip("::ffff:10.0.0.1"), None);
        assert_eq!(parse_ip("::ffff:a00:1"), parse_ip("10.0.0.1"));
    }
}
