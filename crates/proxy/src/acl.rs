//! Security groups compiled for the hot path: every new connection (or new
//! UDP source) of an external LB is checked before anything else, so the rules
//! are turned once per snapshot into plain integers — port bounds, protocol
//! flags and `(network, mask)` pairs split by address family — and a check is
//! a short scan with no parsing and no allocation.
//!
//! Semantics: the first matching rule in priority order decides; no match
//! denies. An IPv4 source only meets IPv4 rules and an IPv6 source IPv6 rules
//! (`0.0.0.0/0` does not cover IPv6, `::/0` does not cover IPv4). IPv4-mapped
//! IPv6 sources (`::ffff:a.b.c.d`) are IPv4, and a rule written in that mapped
//! form (`::ffff:10.0.0.0/104`) is compiled as the IPv4 rule it means.

use std::net::IpAddr;

use ipnet::IpNet;
use weir_model::network::{SgAction, SgProtocol, SgRule};

/// The transport of the traffic being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

/// One compiled rule over addresses of type `A` (`u32` or `u128`).
#[derive(Debug, Clone, Copy)]
struct Rule<A> {
    net: A,
    mask: A,
    lo: u16,
    hi: u16,
    tcp: bool,
    udp: bool,
    allow: bool,
}

impl<A: Copy + Eq + std::ops::BitAnd<Output = A>> Rule<A> {
    fn matches(&self, transport: Transport, port: u16, addr: A) -> bool {
        let proto = match transport {
            Transport::Tcp => self.tcp,
            Transport::Udp => self.udp,
        };
        proto && (self.lo..=self.hi).contains(&port) && addr & self.mask == self.net
    }
}

/// A compiled security group; immutable, shared by all connections.
#[derive(Debug, Default)]
pub struct Acl {
    v4: Box<[Rule<u32>]>,
    v6: Box<[Rule<u128>]>,
}

impl Acl {
    /// Compiles `rules`. They arrive sorted by priority; a stable sort here
    /// keeps "first match wins" true even if a caller forgets.
    pub fn compile(rules: &[SgRule]) -> Acl {
        let mut sorted: Vec<&SgRule> = rules.iter().collect();
        sorted.sort_by_key(|r| r.priority);
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for r in sorted {
            let (lo, hi) = r.port_range();
            let (tcp, udp) = match r.protocol {
                SgProtocol::Tcp => (true, false),
                SgProtocol::Udp => (false, true),
                SgProtocol::Any => (true, true),
            };
            let allow = r.action == SgAction::Allow;
            match r.source {
                IpNet::V4(n) => {
                    let mask = mask32(n.prefix_len());
                    v4.push(Rule {
                        net: u32::from(n.addr()) & mask,
                        mask,
                        lo,
                        hi,
                        tcp,
                        udp,
                        allow,
                    });
                }
                IpNet::V6(n) => match n.network().to_ipv4_mapped() {
                    Some(a) if n.prefix_len() >= 96 => {
                        let mask = mask32(n.prefix_len() - 96);
                        v4.push(Rule {
                            net: u32::from(a) & mask,
                            mask,
                            lo,
                            hi,
                            tcp,
                            udp,
                            allow,
                        });
                    }
                    _ => {
                        let mask = mask128(n.prefix_len());
                        v6.push(Rule {
                            net: u128::from(n.addr()) & mask,
                            mask,
                            lo,
                            hi,
                            tcp,
                            udp,
                            allow,
                        });
                    }
                },
            }
        }
        Acl {
            v4: v4.into(),
            v6: v6.into(),
        }
    }

    /// Whether traffic from `src` to `port` over `transport` is allowed: the
    /// first matching rule (lowest priority number) decides; no match denies.
    pub fn allows(&self, transport: Transport, port: u16, src: IpAddr) -> bool {
        let hit = match src.to_canonical() {
            IpAddr::V4(a) => first(&self.v4, transport, port, u32::from(a)),
            IpAddr::V6(a) => first(&self.v6, transport, port, u128::from(a)),
        };
        hit.unwrap_or(false)
    }
}

fn first<A: Copy + Eq + std::ops::BitAnd<Output = A>>(
    rules: &[Rule<A>],
    transport: Transport,
    port: u16,
    addr: A,
) -> Option<bool> {
    rules.iter().find(|r| r.matches(transport, port, addr)).map(|r| r.allow)
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(priority: u16, action: SgAction, protocol: SgProtocol, ports: &str, source: &str) -> SgRule {
        SgRule {
            priority,
            action,
            protocol,
            ports: ports.into(),
            source: source.parse().unwrap(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    use SgAction::{Allow, Deny};
    use SgProtocol::{Any, Tcp, Udp};
    use Transport as T;

    #[test]
    fn masks() {
        assert_eq!(mask32(0), 0);
        assert_eq!(mask32(8), 0xFF00_0000);
        assert_eq!(mask32(32), u32::MAX);
        assert_eq!(mask128(0), 0);
        assert_eq!(mask128(64), u128::MAX << 64);
        assert_eq!(mask128(128), u128::MAX);
    }

    #[test]
    fn empty_denies() {
        let acl = Acl::compile(&[]);
        assert!(!acl.allows(T::Tcp, 80, ip("10.0.0.1")));
        assert!(!acl.allows(T::Udp, 53, ip("::1")));
    }

    #[test]
    fn first_match_wins() {
        let acl = Acl::compile(&[
            rule(10, Deny, Any, "all", "203.0.113.7/32"),
            rule(20, Allow, Any, "all", "0.0.0.0/0"),
        ]);
        assert!(!acl.allows(T::Tcp, 80, ip("203.0.113.7")));
        assert!(acl.allows(T::Tcp, 80, ip("203.0.113.8")));
        assert!(acl.allows(T::Udp, 53, ip("198.51.100.1")));
        // The deny's priority holds whatever order the rules come in.
        let acl = Acl::compile(&[
            rule(20, Allow, Any, "all", "0.0.0.0/0"),
            rule(10, Deny, Any, "all", "203.0.113.7/32"),
        ]);
        assert!(!acl.allows(T::Tcp, 80, ip("203.0.113.7")));
        // An allow before a broader deny.
        let acl = Acl::compile(&[
            rule(1, Allow, Tcp, "22", "10.1.0.0/16"),
            rule(2, Deny, Tcp, "all", "10.0.0.0/8"),
        ]);
        assert!(acl.allows(T::Tcp, 22, ip("10.1.2.3")));
        assert!(!acl.allows(T::Tcp, 22, ip("10.2.2.3")));
        assert!(!acl.allows(T::Tcp, 80, ip("10.1.2.3")));
    }

    #[test]
    fn protocols() {
        let acl = Acl::compile(&[
            rule(1, Allow, Tcp, "80", "0.0.0.0/0"),
            rule(2, Allow, Udp, "53", "0.0.0.0/0"),
            rule(3, Allow, Any, "443", "0.0.0.0/0"),
        ]);
        let src = ip("192.0.2.1");
        assert!(acl.allows(T::Tcp, 80, src));
        assert!(!acl.allows(T::Udp, 80, src));
        assert!(acl.allows(T::Udp, 53, src));
        assert!(!acl.allows(T::Tcp, 53, src));
        assert!(acl.allows(T::Tcp, 443, src));
        assert!(acl.allows(T::Udp, 443, src));
    }

    #[test]
    fn port_ranges() {
        let acl = Acl::compile(&[
            rule(1, Allow, Tcp, "8000-8100", "0.0.0.0/0"),
            rule(2, Allow, Udp, "all", "0.0.0.0/0"),
        ]);
        let src = ip("192.0.2.1");
        assert!(!acl.allows(T::Tcp, 7999, src));
        assert!(acl.allows(T::Tcp, 8000, src));
        assert!(acl.allows(T::Tcp, 8050, src));
        assert!(acl.allows(T::Tcp, 8100, src));
        assert!(!acl.allows(T::Tcp, 8101, src));
        assert!(acl.allows(T::Udp, 1, src));
        assert!(acl.allows(T::Udp, 65535, src));
    }

    #[test]
    fn ipv6_rules() {
        let acl = Acl::compile(&[
            rule(1, Deny, Any, "all", "2001:db8:bad::/48"),
            rule(2, Allow, Tcp, "443", "2001:db8::/32"),
            rule(3, Allow, Tcp, "80", "::/0"),
        ]);
        assert!(acl.allows(T::Tcp, 443, ip("2001:db8:1::5")));
        assert!(!acl.allows(T::Tcp, 443, ip("2001:db8:bad::5")));
        assert!(!acl.allows(T::Tcp, 443, ip("2001:db9::5")));
        assert!(acl.allows(T::Tcp, 80, ip("2001:db9::5")));
        // ::/0 is IPv6 only, and 0.0.0.0/0 is IPv4 only.
        assert!(!acl.allows(T::Tcp, 80, ip("192.0.2.1")));
        let acl = Acl::compile(&[rule(1, Allow, Any, "all", "0.0.0.0/0")]);
        assert!(!acl.allows(T::Tcp, 80, ip("2001:db8::1")));
    }

    #[test]
    fn mapped_sources_are_ipv4() {
        let acl = Acl::compile(&[
            rule(1, Deny, Any, "all", "10.0.0.1/32"),
            rule(2, Allow, Any, "all", "10.0.0.0/8"),
            rule(3, Allow, Any, "all", "::/0"),
        ]);
        assert!(!acl.allows(T::Tcp, 80, ip("::ffff:10.0.0.1")));
        assert!(acl.allows(T::Tcp, 80, ip("::ffff:10.0.0.2")));
        // Mapped but outside 10/8: the IPv4 rules say no, ::/0 does not apply.
        assert!(!acl.allows(T::Tcp, 80, ip("::ffff:192.0.2.1")));
        // A rule written in the mapped form is an IPv4 rule.
        let acl = Acl::compile(&[rule(1, Allow, Any, "all", "::ffff:192.0.2.0/120")]);
        assert!(acl.allows(T::Udp, 53, ip("192.0.2.9")));
        assert!(acl.allows(T::Udp, 53, ip("::ffff:192.0.2.9")));
        assert!(!acl.allows(T::Udp, 53, ip("192.0.3.9")));
    }
}
