//! Stopping Weir (SIGTERM): listeners close at once, established
//! connections and requests in flight run on until they end or the grace
//! period (`[dataplane] shutdown_grace_s`) is over, then the process exits.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::backends::{add_backend, greet, lb_with_vserver, tcp_backend};
use crate::kit::Server;

/// A TCP VServer on `127.150.<net>.0/24`:7000 with one echo backend.
async fn tcp_site(s: &Server, net: u8) -> SocketAddr {
    let (lb, ip, vs) = lb_with_vserver(
        s,
        &format!("127.150.{net}.0/24"),
        json!({"protocol": "tcp", "port": 7000, "health_check": {"interval_s": 300}}),
    )
    .await;
    let b = tcp_backend(&format!("127.151.{net}.10"), "echo").await;
    add_backend(s, &lb, &vs, b.addr, 1).await;
    SocketAddr::new(ip, 7000)
}

async fn echo(c: &mut TcpStream, what: &[u8]) {
    c.write_all(what).await.expect("write");
    let mut got = vec![0u8; what.len()];
    tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut got))
        .await
        .expect("echo in time")
        .expect("echo");
    assert_eq!(got, what);
}

/// After SIGTERM: new connections are refused, an established one keeps
/// relaying, and the process exits (status 0) as soon as it closes.
#[tokio::test]
async fn sigterm_stops_listening_and_waits_for_established_connections() {
    let mut s = Server::start().await;
    let target = tcp_site(&s, 1).await;
    let (hello, mut c) = greet(target, None).await;
    assert_eq!(hello, "echo");
    echo(&mut c, b"before").await;

    s.terminate();
    // The listener closes at once.
    let refused = async {
        loop {
            if TcpStream::connect(target).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), refused)
        .await
        .expect("new connections are refused after SIGTERM");
    // The established connection runs on, and holds the process.
    echo(&mut c, b"during the stop").await;
    assert!(
        s.exited_within(Duration::from_secs(1)).await.is_none(),
        "weir exited with a connection still open"
    );
    echo(&mut c, b"still").await;

    drop(c);
    let closed = Instant::now();
    let status = s
        .exited_within(Duration::from_secs(10))
        .await
        .expect("weir exits once its last connection has closed");
    assert!(status.success(), "{status:?}");
    assert!(
        closed.elapsed() < Duration::from_secs(3),
        "exit {:?} after the last connection closed",
        closed.elapsed()
    );
}

/// A connection that never ends is cut when the grace period is over.
#[tokio::test]
async fn the_grace_period_bounds_the_stop() {
    let mut s = Server::start_with_config("[dataplane]\nshutdown_grace_s = 2\n").await;
    let target = tcp_site(&s, 2).await;
    let (_, mut c) = greet(target, None).await;
    let started = Instant::now();
    s.terminate();
    let status = s
        .exited_within(Duration::from_secs(10))
        .await
        .expect("weir exits when the grace period is over");
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        (Duration::from_millis(1800)..Duration::from_secs(6)).contains(&took),
        "exited after {took:?} (shutdown_grace_s 2)"
    );
    // The connection was closed with the process.
    let mut b = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(5), c.read(&mut b))
        .await
        .expect("the connection ended");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
}

/// An HTTP/1.1 backend that answers each request `slow` after 1 s, keep-alive.
async fn slow_http_backend(ip: &str) -> SocketAddr {
    crate::http_kit::raw_backend(ip, |mut s| async move {
        while crate::http_kit::read_head(&mut s).await.is_some() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
                .await
                .is_err()
            {
                return;
            }
        }
    })
    .await
}

/// A request in flight when SIGTERM comes is answered, with
/// `Connection: close` (the keep-alive connection then closes), and the
/// process exits after it.
#[tokio::test]
async fn a_request_in_flight_is_answered_with_connection_close() {
    let mut s = Server::start().await;
    let (lb, ip, vs) = lb_with_vserver(
        &s,
        "127.150.3.0/24",
        json!({"protocol": "http", "port": 8080, "health_check": {"interval_s": 300}}),
    )
    .await;
    let b = slow_http_backend("127.151.3.10").await;
    add_backend(&s, &lb, &vs, b, 1).await;
    let mut c = TcpStream::connect(SocketAddr::new(ip, 8080)).await.expect("connect");
    c.write_all(b"GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.terminate();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut got))
        .await
        .expect("answered and closed in time")
        .expect("read");
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got:?}");
    assert!(got.contains("\r\nConnection: close\r\n"), "{got:?}");
    assert!(got.ends_with("\r\n\r\nslow"), "{got:?}");
    let status = s
        .exited_within(Duration::from_secs(5))
        .await
        .expect("weir exits once the request is answered");
    assert!(status.success(), "{status:?}");
}

/// An HTTP/2 connection with a request in flight gets GOAWAY when the stop
/// begins, the request is still answered, and then the process exits.
/// Raw frames, to see the GOAWAY and when it comes.
#[tokio::test]
async fn h2_connections_get_goaway_and_their_requests_are_answered() {
    const GOAWAY: u8 = 7;
    const HEADERS: u8 = 1;
    const SETTINGS: u8 = 4;
    let mut s = Server::start().await;
    let (lb, ip, vs) = lb_with_vserver(
        &s,
        "127.150.4.0/24",
        json!({"protocol": "http", "port": 8080, "health_check": {"interval_s": 300}}),
    )
    .await;
    let b = slow_http_backend("127.151.4.10").await;
    add_backend(&s, &lb, &vs, b, 1).await;
    let mut c = TcpStream::connect(SocketAddr::new(ip, 8080)).await.expect("connect");
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.expect("preface");
    c.write_all(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0])
        .await
        .expect("settings");
    // GET / on stream 1: :method GET, :scheme http, :path / (static
    // indexes 2, 6, 4) and :authority "a.test" (literal, name index 1).
    let block = [0x82, 0x86, 0x84, 0x01, 0x06, b'a', b'.', b't', b'e', b's', b't'];
    let mut frame = vec![0, 0, block.len() as u8, HEADERS, 0x5, 0, 0, 0, 1];
    frame.extend_from_slice(&block);
    c.write_all(&frame).await.expect("request");
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.terminate();
    // The backend answers 1 s after the request: the GOAWAY comes first.
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (kind, flags, stream, _) = crate::l7_h2::read_frame(&mut c).await.expect("frame");
            if kind == SETTINGS && flags & 1 == 0 {
                c.write_all(&[0, 0, 0, SETTINGS, 1, 0, 0, 0, 0])
                    .await
                    .expect("settings ack");
            }
            if kind == GOAWAY || (kind == HEADERS && stream == 1) {
                seen.push(kind);
            }
            if kind == HEADERS && stream == 1 {
                return;
            }
        }
    })
    .await
    .expect("the request is answered");
    assert_eq!(seen, vec![GOAWAY, HEADERS], "GOAWAY at the stop, then the answer");
    let status = s
        .exited_within(Duration::from_secs(5))
        .await
        .expect("weir exits once the request is answered");
    assert!(status.success(), "{status:?}");
}
