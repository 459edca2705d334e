//! One active check against one backend, bounded by the target's timeout.
//!
//! Results are `Ok(detail)` / `Err(detail)` with short, stable details meant
//! for the API's `last_check.detail`: "ok", "HTTP 200", "connect refused",
//! "HTTP 503", "timeout after 2 s", "port unreachable", ...
//!
//! The HTTP check is deliberately tiny: one request written by hand, and at
//! most one status line (512 bytes) read back. The connection is then dropped.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::target::{Probe, Target};

/// The longest status line read from an HTTP backend.
const MAX_STATUS_LINE: usize = 512;
/// The UDP receive buffer (replies are only compared by prefix).
const UDP_BUF: usize = 2048;

/// One probe: `Ok(detail)` healthy, `Err(detail)` not. Never takes longer than
/// `target.timeout` (plus scheduling noise).
pub async fn probe(target: &Target) -> Result<String, String> {
    match &target.probe {
        Probe::Tcp => bounded(target.timeout, tcp(target.addr)).await,
        Probe::Http { path, host } => bounded(target.timeout, http(target.addr, path, host.as_deref())).await,
        Probe::Udp { payload, expect } => udp(target.addr, payload, expect.as_deref(), target.timeout).await,
    }
}

async fn bounded(timeout: Duration, check: impl Future<Output = Result<String, String>>) -> Result<String, String> {
    match tokio::time::timeout(timeout, check).await {
        Ok(r) => r,
        Err(_) => Err(format!("timeout after {}", human(timeout))),
    }
}

/// Probe connections close with a reset (SO_LINGER 0), as HAProxy's checks
/// do: thousands of probes a second would otherwise fill the host's
/// TIME_WAIT table with sockets nobody needs.
fn close_with_reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

async fn tcp(addr: SocketAddr) -> Result<String, String> {
    let stream = TcpStream::connect(addr).await.map_err(connect_detail)?;
    close_with_reset(&stream);
    Ok("ok".to_string())
}

async fn http(addr: SocketAddr, path: &str, host: Option<&str>) -> Result<String, String> {
    let request = request(addr, path, host)?;
    let mut stream = TcpStream::connect(addr).await.map_err(connect_detail)?;
    close_with_reset(&stream);
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| io_detail("write", e))?;
    let line = read_status_line(&mut stream).await?;
    let code = status_code(&line).ok_or_else(|| "not an HTTP response".to_string())?;
    let detail = format!("HTTP {code}");
    if (200..400).contains(&code) {
        Ok(detail)
    } else {
        Err(detail)
    }
}

/// The request bytes; `Err` if the path or host could break the request line.
fn request(addr: SocketAddr, path: &str, host: Option<&str>) -> Result<String, String> {
    // A fragment is never sent to a server.
    let path = path.split('#').next().unwrap_or("");
    let path = if path.is_empty() { "/" } else { path };
    if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("invalid path".to_string());
    }
    let host = host.map_or_else(|| addr.to_string(), str::to_string);
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("invalid host".to_string());
    }
    Ok(format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: weir-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    ))
}

/// Reads up to the first `\n`, at most [`MAX_STATUS_LINE`] bytes.
async fn read_status_line(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; MAX_STATUS_LINE];
    let mut len = 0;
    loop {
        let n = stream.read(&mut buf[len..]).await.map_err(|e| io_detail("read", e))?;
        if n == 0 {
            return Err("connection closed before status line".to_string());
        }
        let start = len;
        len += n;
        if let Some(i) = buf[start..len].iter().position(|&b| b == b'\n') {
            buf.truncate(start + i);
            return Ok(buf);
        }
        if len == buf.len() {
            return Err("status line too long".to_string());
        }
    }
}

/// `HTTP/1.1 200 OK` → 200.
fn status_code(line: &[u8]) -> Option<u16> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line.strip_prefix(b"HTTP/")?;
    let (version, rest) = rest.split_at_checked(3)?;
    if !(version[0].is_ascii_digit() && version[1] == b'.' && version[2].is_ascii_digit()) {
        return None;
    }
    let rest = rest.strip_prefix(b" ")?;
    let (code, tail) = rest.split_at_checked(3)?;
    if !code.iter().all(u8::is_ascii_digit) || !(tail.is_empty() || tail[0] == b' ') {
        return None;
    }
    let code = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    (100..=999).contains(&code).then_some(code)
}

/// A datagram on a connected socket; see [`Probe::Udp`].
async fn udp(addr: SocketAddr, payload: &[u8], expect: Option<&[u8]>, timeout: Duration) -> Result<String, String> {
    let local: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("socket failed: {e}"))?;
    sock.connect(addr).await.map_err(connect_detail)?;
    sock.send(payload).await.map_err(udp_detail)?;
    let mut buf = vec![0u8; UDP_BUF.max(expect.map_or(0, <[u8]>::len))];
    match tokio::time::timeout(timeout, sock.recv(&mut buf)).await {
        Ok(Ok(n)) => match expect {
            Some(e) if !buf[..n].starts_with(e) => Err("unexpected reply".to_string()),
            _ => Ok("reply received".to_string()),
        },
        Ok(Err(e)) => Err(udp_detail(e)),
        Err(_) if expect.is_some() => Err(format!("no reply within {}", human(timeout))),
        Err(_) => Ok("no ICMP error within the timeout".to_string()),
    }
}

fn udp_detail(e: io::Error) -> String {
    match e.kind() {
        // ICMP port unreachable, reported on the connected socket.
        io::ErrorKind::ConnectionRefused => "port unreachable".to_string(),
        _ => io_detail("udp", e),
    }
}

/// Prefix of a result that says nothing about the backend: the prober itself
/// lacked a resource (descriptors, buffers, a local port). Such results are
/// not recorded, so the load balancer's own shortage never ejects a backend.
pub const LOCAL_FAILURE: &str = "local: ";

/// Errors that come from this host's limits, not from the peer.
pub fn is_local_error(e: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL.
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12 | 99)) || e.kind() == io::ErrorKind::OutOfMemory
}

fn connect_detail(e: io::Error) -> String {
    if is_local_error(&e) {
        return format!("{LOCAL_FAILURE}{e}");
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connect refused".to_string(),
        _ => io_detail("connect", e),
    }
}

fn io_detail(phase: &str, e: io::Error) -> String {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionReset | ConnectionAborted | BrokenPipe => "connection reset".to_string(),
        HostUnreachable => "host unreachable".to_string(),
        NetworkUnreachable => "network unreachable".to_string(),
        _ => format!("{phase} failed: {e}"),
    }
}

/// `2 s`, `200 ms`: whole seconds or milliseconds, else Debug.
pub(crate) fn human(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{d:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 301 Moved Permanently"), Some(301));
        assert_eq!(status_code(b"HTTP/1.1 503"), Some(503));
        assert_eq!(status_code(b"HTTP/1.1 204 \r"), Some(204));
        assert_eq!(status_code(b"HTTP/1.1 2000 OK"), None);
        assert_eq!(status_code(b"HTTP/1.1 20 OK"), None);
        assert_eq!(status_code(b"HTTP/11 200 OK"), None);
        assert_eq!(status_code(b"SSH-2.0-OpenSSH_9.6"), None);
        assert_eq!(status_code(b"HTTP/1.1 099 x"), None);
        assert_eq!(status_code(b""), None);
    }

    #[test]
    fn builds_requests() {
        let addr: SocketAddr = "10.0.0.1:8080".parse().unwrap();
        let r = request(addr, "/healthz?x=1#frag", None).unwrap();
        assert!(
            r.starts_with("GET /healthz?x=1 HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n"),
            "{r}"
        );
        assert!(r.ends_with("Connection: close\r\n\r\n"));
        let r = request(addr, "", Some("app.example")).unwrap();
        assert!(r.starts_with("GET / HTTP/1.1\r\nHost: app.example\r\n"), "{r}");
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert!(request(v6, "/", None).unwrap().contains("Host: [::1]:80\r\n"));
        assert_eq!(request(addr, "/a b", None), Err("invalid path".into()));
        assert_eq!(request(addr, "/a\r\nX: y", None), Err("invalid path".into()));
        assert_eq!(request(addr, "x", None), Err("invalid path".into()));
        assert_eq!(request(addr, "/", Some("a\r\nb")), Err("invalid host".into()));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(2)), "2 s");
        assert_eq!(human(Duration::from_millis(200)), "200 ms");
        assert_eq!(human(Duration::from_micros(1500)), "1.5ms");
    }
}

#[cfg(test)]
mod local_error_tests {
    use super::*;

    #[test]
    fn own_shortages_are_local_and_unrecorded() {
        for code in [24, 23, 105, 12, 99] {
            let e = io::Error::from_raw_os_error(code);
            assert!(is_local_error(&e), "errno {code}");
            assert!(connect_detail(e).starts_with(LOCAL_FAILURE));
        }
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(!is_local_error(&refused));
        assert_eq!(connect_detail(refused), "connect refused");
        assert!(
            !is_local_error(&io::Error::from_raw_os_error(110)),
            "ETIMEDOUT is the peer's"
        );
    }
}
