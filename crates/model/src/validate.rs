//! Small validators shared by every resource.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::{Error, Result};

pub const NAME_MAX: usize = 64;
pub const COMMENT_MAX: usize = 255;

/// Names: 1–64 characters, no control characters, not only white space.
pub fn name(field: &str, v: &str) -> Result<String> {
    let t = v.trim();
    if t.is_empty() {
        return Err(Error::invalid(field, format!("{field} must not be empty")));
    }
    if t.chars().count() > NAME_MAX {
        return Err(Error::invalid(
            field,
            format!("{field} must be at most {NAME_MAX} characters"),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(t.to_string())
}

/// Comments: up to 255 characters, no control characters except tab.
pub fn comment(field: &str, v: &str) -> Result<String> {
    if v.chars().count() > COMMENT_MAX {
        return Err(Error::invalid(
            field,
            format!("{field} must be at most {COMMENT_MAX} characters"),
        ));
    }
    if v.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Error::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(v.to_string())
}

/// An integer in `lo..=hi`. Inputs are taken as i64 so negative and huge
/// numbers get a range message instead of a type error.
pub fn range(field: &str, v: i64, lo: i64, hi: i64) -> Result<i64> {
    if v < lo || v > hi {
        return Err(Error::range(field, lo, hi, v));
    }
    Ok(v)
}

pub fn port(field: &str, v: i64) -> Result<u16> {
    range(field, v, 1, 65535).map(|p| p as u16)
}

/// An IPv4 prefix in canonical form (no host bits set).
pub fn cidr(field: &str, v: &str, min_len: u8, max_len: u8) -> Result<Ipv4Net> {
    let net: Ipv4Net = v.trim().parse().map_err(|_| {
        Error::invalid(
            field,
            format!("{field} must be an IPv4 prefix like 10.0.0.0/16, got {v:?}"),
        )
    })?;
    if net.prefix_len() < min_len || net.prefix_len() > max_len {
        return Err(Error::invalid(
            field,
            format!(
                "{field} prefix length must be between /{min_len} and /{max_len}, got /{}",
                net.prefix_len()
            ),
        ));
    }
    if net.trunc() != net {
        return Err(Error::invalid(
            field,
            format!("{field} {net} has host bits set; did you mean {}?", net.trunc()),
        ));
    }
    Ok(net)
}

pub fn ipv4(field: &str, v: &str) -> Result<Ipv4Addr> {
    v.trim()
        .parse()
        .map_err(|_| Error::invalid(field, format!("{field} must be an IPv4 address, got {v:?}")))
}

/// The usable host addresses of a subnet: all but the network and broadcast
/// addresses, except in /31 and /32 where every address is usable.
pub fn usable_hosts(net: Ipv4Net) -> impl Iterator<Item = Ipv4Addr> {
    let all = net.hosts();
    all.into_iter()
}

/// True when `ip` is a usable host address of `net`.
pub fn is_usable_host(net: Ipv4Net, ip: Ipv4Addr) -> bool {
    if !net.contains(&ip) {
        return false;
    }
    net.prefix_len() >= 31 || (ip != net.network() && ip != net.broadcast())
}

/// A DNS name (`api.example.com`), optionally with a leading `*.` wildcard
/// when `wildcard` is allowed. Returned lower-cased.
pub fn domain(field: &str, v: &str, wildcard: bool) -> Result<String> {
    let d = v.trim().trim_end_matches('.').to_ascii_lowercase();
    let bad = || {
        let hint = if wildcard {
            " or a wildcard like *.example.com"
        } else {
            ""
        };
        Error::invalid(
            field,
            format!("{field} must be a domain name like api.example.com{hint}, got {v:?}"),
        )
    };
    let body = match d.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        Some(_) => return Err(bad()),
        None => d.as_str(),
    };
    if body.is_empty() || body.len() > 253 {
        return Err(bad());
    }
    for label in body.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(d)
}

/// Checks an optional nested value, prefixing errors with its path.
pub fn nested<T, U>(parent: &str, v: Option<T>, f: impl FnOnce(T) -> Result<U>) -> Result<Option<U>> {
    v.map(f).transpose().map_err(|e| e.within(parent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_rules() {
        assert!(cidr("cidr", "10.0.0.0/16", 8, 28).is_ok());
        assert_eq!(cidr("cidr", "10.0.0.1/16", 8, 28).unwrap_err().code, "invalid_value");
        assert!(cidr("cidr", "10.0.0.0/7", 8, 28).is_err());
        assert!(cidr("cidr", "10.0.0.0/29", 8, 28).is_err());
        assert!(cidr("cidr", "banana", 8, 28).is_err());
        assert!(cidr("cidr", "127.0.0.0/8", 8, 28).is_ok());
    }

    #[test]
    fn domains() {
        assert_eq!(domain("d", "API.Example.com", false).unwrap(), "api.example.com");
        assert_eq!(domain("d", "*.example.com", true).unwrap(), "*.example.com");
        assert!(domain("d", "*.example.com", false).is_err());
        assert!(domain("d", "a..b", true).is_err());
        assert!(domain("d", "-a.b", true).is_err());
        assert!(domain("d", "a_b.c", true).is_err());
        assert!(domain("d", "", true).is_err());
    }

    #[test]
    fn hosts() {
        let n: Ipv4Net = "10.0.0.0/30".parse().unwrap();
        assert!(!is_usable_host(n, "10.0.0.0".parse().unwrap()));
        assert!(is_usable_host(n, "10.0.0.1".parse().unwrap()));
        assert!(!is_usable_host(n, "10.0.0.3".parse().unwrap()));
        assert_eq!(usable_hosts(n).count(), 2);
    }

    #[test]
    fn names() {
        assert!(name("name", "  ").is_err());
        assert!(name("name", &"x".repeat(65)).is_err());
        assert_eq!(name("name", " web ").unwrap(), "web");
        assert!(name("name", "a\u{0}b").is_err());
    }
}
