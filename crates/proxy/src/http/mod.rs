//! HTTP and HTTPS VServers (layer 7): strict HTTP/1.1 and HTTP/2 (h2c, or h2
//! over TLS) from clients, pooled HTTP/1.1 to backends, forwarding rules, cookie persistence and
//! client-address headers. Behaviour: `shared/spec/behaviour.md` (HTTP/HTTPS).

pub(crate) mod buf;
pub mod chunked;
mod client;
mod h1;
mod h2;
pub mod head;
pub mod path;
pub mod pool;
mod respond;
pub mod route;
mod timer;
mod tls;
mod upstream;

pub(crate) use client::Lazy;
pub(crate) use h1::serve;
pub use route::HttpConfig;
pub(crate) use tls::serve_tls;

/// `ip` as text in `out`: IPv4 written digit by digit (the formatting
/// machinery cost ~1,000 instructions a request, ~5% of the proxy's own
/// work on small keep-alive requests), IPv6 through `Display`.
pub(crate) fn ip_bytes(ip: std::net::IpAddr, out: &mut [u8; 46]) -> &[u8] {
    let len = match ip {
        std::net::IpAddr::V4(v4) => {
            let mut at = 0;
            for (k, octet) in v4.octets().into_iter().enumerate() {
                if k > 0 {
                    out[at] = b'.';
                    at += 1;
                }
                if octet >= 100 {
                    out[at] = b'0' + octet / 100;
                    at += 1;
                }
                if octet >= 10 {
                    out[at] = b'0' + octet / 10 % 10;
                    at += 1;
                }
                out[at] = b'0' + octet % 10;
                at += 1;
            }
            at
        }
        std::net::IpAddr::V6(_) => {
            let mut w = std::io::Cursor::new(&mut out[..]);
            let _ = std::io::Write::write_fmt(&mut w, format_args!("{ip}"));
            w.position() as usize
        }
    };
    out.get(..len).unwrap_or_default()
}
