//! PROXY protocol headers (HAProxy's spec, v1 text and v2 binary) that tell a
//! backend the real client address, since in NAT-proxy mode the backend only
//! ever sees Weir's own address. Sent once, as the first bytes of the backend
//! connection.
//!
//! Address families: IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a
//! dual-stack socket reports for an IPv4 peer) are written as IPv4. If the two
//! ends are still of different families, both are written as IPv6, the IPv4
//! one in its IPv4-mapped form: the spec requires one family per header, and
//! this keeps the real client address where `UNKNOWN`/`AF_UNSPEC` would drop it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// v2 version 2, command PROXY.
const V2_PROXY: u8 = 0x21;
/// v2 address family and transport: AF_INET / AF_INET6 with STREAM.
const V2_TCP4: u8 = 0x11;
const V2_TCP6: u8 = 0x21;

/// Both addresses in one family (see the module doc).
enum Pair {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

fn pair(src: IpAddr, dst: IpAddr) -> Pair {
    match (src.to_canonical(), dst.to_canonical()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Pair::V4(s, d),
        (s, d) => Pair::V6(as_v6(s), as_v6(d)),
    }
}

fn as_v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// v1: `PROXY TCP4 <src> <dst> <sport> <dport>\r\n` (`TCP6` for IPv6, with
/// addresses in their canonical RFC 5952 form, e.g. `2001:db8::1`). At most
/// 104 bytes, within the spec's 107.
pub fn v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (sp, dp) = (src.port(), dst.port());
    let line = match pair(src.ip(), dst.ip()) {
        Pair::V4(s, d) => format!("PROXY TCP4 {s} {d} {sp} {dp}\r\n"),
        Pair::V6(s, d) => format!("PROXY TCP6 {s} {d} {sp} {dp}\r\n"),
    };
    line.into_bytes()
}

/// v2: signature, `0x21` (version 2, PROXY), `0x11` (TCP over IPv4) or `0x21`
/// (TCP over IPv6), the address block length (big endian), then source
/// address, destination address, source port, destination port. No TLVs.
pub fn v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(V2_SIGNATURE.len() + 4 + 36);
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(V2_PROXY);
    match pair(src.ip(), dst.ip()) {
        Pair::V4(s, d) => {
            out.push(V2_TCP4);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        Pair::V6(s, d) => {
            out.push(V2_TCP6);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
    }
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const SIG: [u8; 12] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    #[test]
    fn v1_ipv4() {
        assert_eq!(
            v1(sa("192.0.2.1:56324"), sa("198.51.100.10:443")),
            b"PROXY TCP4 192.0.2.1 198.51.100.10 56324 443\r\n".to_vec()
        );
    }

    #[test]
    fn v1_ipv6() {
        assert_eq!(
            v1(sa("[2001:db8::1]:1234"), sa("[::1]:80")),
            b"PROXY TCP6 2001:db8::1 ::1 1234 80\r\n".to_vec()
        );
        assert_eq!(
            v1(sa("[2001:db8:0:0:1:0:0:1]:65535"), sa("[2001:0db8::0001]:1")),
            b"PROXY TCP6 2001:db8::1:0:0:1 2001:db8::1 65535 1\r\n".to_vec()
        );
    }

    #[test]
    fn v1_mixed_families() {
        // Mapped addresses on both ends: plain IPv4.
        assert_eq!(
            v1(sa("[::ffff:10.0.0.7]:5000"), sa("[::ffff:127.0.20.1]:80")),
            b"PROXY TCP4 10.0.0.7 127.0.20.1 5000 80\r\n".to_vec()
        );
        // A real IPv6 end: both IPv6, the IPv4 one mapped.
        assert_eq!(
            v1(sa("[2001:db8::1]:5000"), sa("127.0.20.1:80")),
            b"PROXY TCP6 2001:db8::1 ::ffff:127.0.20.1 5000 80\r\n".to_vec()
        );
    }

    #[test]
    fn v1_longest_fits_the_spec() {
        let a = sa("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535");
        assert!(v1(a, a).len() <= 107);
    }

    #[test]
    fn v2_ipv4() {
        let mut want = SIG.to_vec();
        want.extend_from_slice(&[
            0x21, 0x11, 0x00, 0x0C, // PROXY, TCP4, 12 bytes
            192, 0, 2, 1, // src
            198, 51, 100, 10, // dst
            0xDC, 0x04, // 56324
            0x01, 0xBB, // 443
        ]);
        assert_eq!(v2(sa("192.0.2.1:56324"), sa("198.51.100.10:443")), want);
    }

    #[test]
    fn v2_ipv6() {
        let mut want = SIG.to_vec();
        want.extend_from_slice(&[0x21, 0x21, 0x00, 0x24]); // PROXY, TCP6, 36 bytes
        want.extend_from_slice(&[0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]);
        want.extend_from_slice(&[0x04, 0xD2, 0x00, 0x50]); // 1234, 80
        assert_eq!(v2(sa("[2001:db8::1]:1234"), sa("[::1]:80")), want);
        assert_eq!(want.len(), 16 + 36);
    }

    #[test]
    fn v2_mixed_families() {
        let mut want = SIG.to_vec();
        want.extend_from_slice(&[
            0x21, 0x11, 0x00, 0x0C, 10, 0, 0, 7, 127, 0, 20, 1, 0x13, 0x88, 0x00, 0x50,
        ]);
        assert_eq!(v2(sa("[::ffff:10.0.0.7]:5000"), sa("127.0.20.1:80")), want);

        let mut want = SIG.to_vec();
        want.extend_from_slice(&[0x21, 0x21, 0x00, 0x24]);
        want.extend_from_slice(&[0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 127, 0, 20, 1]);
        want.extend_from_slice(&[0x13, 0x88, 0x00, 0x50]);
        assert_eq!(v2(sa("[2001:db8::1]:5000"), sa("127.0.20.1:80")), want);
    }
}
