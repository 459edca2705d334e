//! One probe at a time against real loopback sockets: the result and its detail.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::{TcpStream, UdpSocket};
use weir_health::{Probe, Target, probe};

use crate::support::{Counting, Http, HttpServer, closed_tcp_port, udp_echo};

fn t(addr: SocketAddr, probe: Probe, timeout_ms: u64) -> Target {
    Target {
        backend_id: "b-1".into(),
        addr,
        probe,
        interval: Duration::from_secs(5),
        timeout: Duration::from_millis(timeout_ms),
        healthy_threshold: 2,
        unhealthy_threshold: 3,
    }
}

fn http(path: &str, host: Option<&str>) -> Probe {
    Probe::Http {
        path: path.into(),
        host: host.map(str::to_string),
    }
}

#[tokio::test]
async fn tcp_open_port_is_ok() {
    let backend = Counting::start().await;
    assert_eq!(probe(&t(backend.addr, Probe::Tcp, 1000)).await, Ok("ok".into()));
}

#[tokio::test]
async fn tcp_closed_port_is_connect_refused() {
    let addr = closed_tcp_port().await;
    assert_eq!(probe(&t(addr, Probe::Tcp, 1000)).await, Err("connect refused".into()));
}

/// A listener that never accepts: once its (tiny) accept queue is full, the
/// kernel drops further SYNs, so a connect hangs until the probe's timeout.
#[tokio::test]
async fn tcp_listener_that_never_accepts_times_out() {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let mut held = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => panic!("connect failed: {e}"),
            Err(_) => break, // the queue is full
        }
        assert!(held.len() < 64, "accept queue never filled");
    }
    let start = Instant::now();
    assert_eq!(
        probe(&t(addr, Probe::Tcp, 250)).await,
        Err("timeout after 250 ms".into())
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(240) && took < Duration::from_millis(750),
        "{took:?}"
    );
    assert_eq!(
        probe(&t(addr, Probe::Tcp, 1000)).await,
        Err("timeout after 1 s".into()),
        "whole seconds are written in seconds"
    );
}

#[tokio::test]
async fn http_2xx_and_3xx_are_healthy_others_not() {
    for (code, want) in [
        (200, Ok("HTTP 200")),
        (204, Ok("HTTP 204")),
        (301, Ok("HTTP 301")),
        (500, Err("HTTP 500")),
        (503, Err("HTTP 503")),
        (404, Err("HTTP 404")),
    ] {
        let server = HttpServer::start(Http::Status(code)).await;
        let got = probe(&t(server.addr, http("/healthz", None), 1000)).await;
        assert_eq!(got, want.map(str::to_string).map_err(str::to_string), "status {code}");
    }
}

#[tokio::test]
async fn http_request_line_and_default_host() {
    let server = HttpServer::start(Http::Status(200)).await;
    probe(&t(server.addr, http("/health/check?full=1#frag", None), 1000))
        .await
        .unwrap();
    let head = server.last_request.lock().unwrap().clone();
    assert!(head.starts_with("GET /health/check?full=1 HTTP/1.1\r\n"), "{head}");
    assert!(head.contains(&format!("\r\nHost: {}\r\n", server.addr)), "{head}");
    assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
}

#[tokio::test]
async fn http_host_is_sent_when_set() {
    let server = HttpServer::start(Http::NeedsHost).await;
    assert_eq!(
        probe(&t(server.addr, http("/", None), 1000)).await,
        Err("HTTP 400".into())
    );
    assert_eq!(
        probe(&t(server.addr, http("/", Some("app.example")), 1000)).await,
        Ok("HTTP 200".into())
    );
}

#[tokio::test]
async fn http_connection_closed_at_once() {
    let server = HttpServer::start(Http::Close).await;
    let got = probe(&t(server.addr, http("/", None), 1000)).await.unwrap_err();
    // Whether the peer's close shows as EOF or as a reset depends on timing.
    assert!(
        got == "connection closed before status line" || got == "connection reset",
        "{got}"
    );
}

#[tokio::test]
async fn http_closed_port_and_silence() {
    let addr = closed_tcp_port().await;
    assert_eq!(
        probe(&t(addr, http("/", None), 1000)).await,
        Err("connect refused".into())
    );
    let server = HttpServer::start(Http::Silent).await;
    let start = Instant::now();
    assert_eq!(
        probe(&t(server.addr, http("/", None), 200)).await,
        Err("timeout after 200 ms".into())
    );
    assert!(start.elapsed() < Duration::from_millis(700));
}

#[tokio::test]
async fn http_garbage_and_endless_lines() {
    let server = HttpServer::start(Http::Raw(b"SSH-2.0-OpenSSH_9.6\r\n")).await;
    assert_eq!(
        probe(&t(server.addr, http("/", None), 1000)).await,
        Err("not an HTTP response".into())
    );
    static LONG: [u8; 4096] = [b'H'; 4096];
    let server = HttpServer::start(Http::Raw(&LONG)).await;
    assert_eq!(
        probe(&t(server.addr, http("/", None), 1000)).await,
        Err("status line too long".into())
    );
    let server = HttpServer::start(Http::Raw(b"HTTP/1.1 200 OK")).await;
    assert_eq!(
        probe(&t(server.addr, http("/", None), 1000)).await,
        Err("connection closed before status line".into()),
        "a status line must be complete"
    );
}

#[tokio::test]
async fn http_path_that_would_break_the_request_is_refused() {
    let server = HttpServer::start(Http::Status(200)).await;
    assert_eq!(
        probe(&t(server.addr, http("/a\r\nX-Evil: 1", None), 1000)).await,
        Err("invalid path".into())
    );
}

#[tokio::test]
async fn udp_reply_is_healthy() {
    let (addr, _echo) = udp_echo().await;
    let udp = |expect: Option<&[u8]>| Probe::Udp {
        payload: b"ping".to_vec(),
        expect: expect.map(<[u8]>::to_vec),
    };
    assert_eq!(probe(&t(addr, udp(None), 1000)).await, Ok("reply received".into()));
    assert_eq!(
        probe(&t(addr, udp(Some(b"pi")), 1000)).await,
        Ok("reply received".into())
    );
    assert_eq!(
        probe(&t(addr, udp(Some(b"pong")), 1000)).await,
        Err("unexpected reply".into())
    );
}

#[tokio::test]
async fn udp_closed_port_is_port_unreachable() {
    let addr = {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.local_addr().unwrap()
    };
    let p = Probe::Udp {
        payload: Vec::new(),
        expect: None,
    };
    let start = Instant::now();
    assert_eq!(probe(&t(addr, p, 1000)).await, Err("port unreachable".into()));
    assert!(start.elapsed() < Duration::from_millis(500), "ICMP answers at once");
}

#[tokio::test]
async fn udp_silence_is_healthy_unless_a_reply_is_expected() {
    let silent = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let p = |expect: Option<Vec<u8>>| Probe::Udp {
        payload: b"ping".to_vec(),
        expect,
    };
    assert_eq!(
        probe(&t(addr, p(None), 150)).await,
        Ok("no ICMP error within the timeout".into())
    );
    assert_eq!(
        probe(&t(addr, p(Some(b"pong".to_vec())), 150)).await,
        Err("no reply within 150 ms".into())
    );
}
