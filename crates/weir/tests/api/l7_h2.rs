//! HTTP/2 from clients (h2c, prior knowledge) with a real h2 client: plain
//! requests, request bodies, and the rapid-reset bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::backends::{add_backend, lb_with_vserver};
use crate::http_kit::{deaf_backend, early_413_backend};
use crate::kit::{ADMIN, Server};

/// An HTTP/1.1 keep-alive backend answering every request with
/// `<method> <path> <body length>` after `delay`; counts requests.
async fn counting_backend(ip: &str, delay: Duration) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind(format!("{ip}:0")).await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let h = h.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(s);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0usize;
                    let mut chunked = false;
                    loop {
                        let mut l = String::new();
                        if r.read_line(&mut l).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if l.trim().is_empty() {
                            break;
                        }
                        let lower = l.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
                    }
                    let mut body = 0usize;
                    if chunked {
                        loop {
                            let mut size = String::new();
                            if r.read_line(&mut size).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                            let mut data = vec![0u8; n + 2];
                            if r.read_exact(&mut data).await.is_err() {
                                return;
                            }
                            body += n;
                            if n == 0 {
                                break;
                            }
                        }
                    } else {
                        let mut data = vec![0u8; len];
                        if r.read_exact(&mut data).await.is_err() {
                            return;
                        }
                        body = len;
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    let mut words = line.split_whitespace();
                    let text = format!("{} {} {body}", words.next().unwrap_or(""), words.next().unwrap_or(""));
                    let resp = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{text}", text.len());
                    if r.get_mut().write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, hits)
}

/// An http VServer on its own LB in `127.64.<net>.0/24`, port
/// `8200 + net`, health probes out of the way and `idle_timeout_s` if
/// given, with `backend` (started on `127.65.<net>.10`) as its one
/// backend; returns the VServer's address.
async fn h2_site(s: &Server, net: u8, idle_timeout_s: Option<u64>, backend: SocketAddr) -> SocketAddr {
    let port = 8200 + u16::from(net);
    let mut vs = json!({"protocol": "http", "port": port, "health_check": {"interval_s": 300}});
    if let Some(idle) = idle_timeout_s {
        vs["idle_timeout_s"] = json!(idle);
    }
    let (lb, ip, vs) = lb_with_vserver(s, &format!("127.64.{net}.0/24"), vs).await;
    add_backend(s, &lb, &vs, backend, 1).await;
    SocketAddr::new(ip, port)
}

async fn h2_client(target: SocketAddr) -> h2::client::SendRequest<Bytes> {
    h2_client_watched(target).await.0
}

async fn body_text(resp: http::Response<h2::RecvStream>) -> String {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("body chunk");
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test]
async fn h2c_requests_reach_http1_backends() {
    let s = Server::start().await;
    let (b, hits) = counting_backend("127.65.1.10", Duration::ZERO).await;
    let target = h2_site(&s, 1, None, b).await;
    let mut client = h2_client(target).await;

    let req = http::Request::get(format!("http://{target}/a/../b?q=1"))
        .body(())
        .expect("request");
    let (resp, _) = client.send_request(req, true).expect("send");
    let resp = tokio::time::timeout(Duration::from_secs(5), resp)
        .await
        .expect("in time")
        .expect("response");
    assert_eq!(resp.status(), 200);
    assert_eq!(body_text(resp).await, "GET /b?q=1 0", "normalized path, no body");

    // A body without a length arrives chunked, whole.
    let req = http::Request::post(format!("http://{target}/up"))
        .body(())
        .expect("request");
    let (resp, mut send) = client.send_request(req, false).expect("send");
    send.send_data(Bytes::from(vec![b'x'; 100_000]), false).expect("data");
    send.send_data(Bytes::from_static(b"tail"), true).expect("data");
    let resp = tokio::time::timeout(Duration::from_secs(5), resp)
        .await
        .expect("in time")
        .expect("response");
    assert_eq!(body_text(resp).await, "POST /up 100004");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_h2_reset_flood_gets_goaway_and_a_bounded_number_reach_the_backend() {
    let s = Server::start().await;
    // A slow backend: requests are in flight when the client resets them.
    let (b, hits) = counting_backend("127.65.2.10", Duration::from_millis(200)).await;
    let target = h2_site(&s, 2, None, b).await;
    let mut client = h2_client(target).await;

    let mut opened = 0;
    let mut refused = false;
    let flood = async {
        for _ in 0..10_000 {
            if client.clone().ready().await.is_err() {
                refused = true;
                break;
            }
            let req = http::Request::get(format!("http://{target}/flood"))
                .body(())
                .expect("request");
            match client.send_request(req, true) {
                // Dropping the response future and stream resets the stream.
                Ok((resp, send)) => {
                    drop(resp);
                    drop(send);
                    opened += 1;
                }
                Err(_) => {
                    refused = true;
                    break;
                }
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), flood)
        .await
        .expect("flood bounded in time");
    // The connection is refused (GOAWAY) before the flood is through, or
    // right after it.
    if !refused {
        let ok = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if client.clone().ready().await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(ok.is_ok(), "no GOAWAY after {opened} reset streams");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = hits.load(Ordering::SeqCst);
    assert!(seen <= 200, "backend saw {seen} of {opened} reset requests (bound 200)");
    let st = s.get(ADMIN, "/v1/system/status").await;
    assert!(
        st.body["dataplane"]["h2_abusive"].as_u64().unwrap_or(0) >= 1,
        "abusive connection not counted: {}",
        st.body
    );
}

/// Resets of requests already accepted and forwarded (which h2's own
/// pending-accept guard does not see) are bounded by Weir's guard: the
/// 100th cancelled in-flight request on a connection draws GOAWAY.
#[tokio::test]
async fn cancelling_forwarded_requests_over_and_over_draws_goaway() {
    let s = Server::start().await;
    // The backend holds every request for 2 s: they are in flight when reset.
    let (b, hits) = counting_backend("127.65.3.10", Duration::from_secs(2)).await;
    let target = h2_site(&s, 3, None, b).await;
    let mut client = h2_client(target).await;

    let mut cancelled = 0;
    let mut refused = false;
    'batches: for _ in 0..10 {
        let mut batch = Vec::new();
        for _ in 0..20 {
            if client.clone().ready().await.is_err() {
                refused = true;
                break 'batches;
            }
            let req = http::Request::get(format!("http://{target}/slow"))
                .body(())
                .expect("request");
            match client.send_request(req, true) {
                Ok(pair) => batch.push(pair),
                Err(_) => {
                    refused = true;
                    break 'batches;
                }
            }
        }
        // Let Weir accept and forward them, then cancel them all.
        let before = hits.load(Ordering::SeqCst);
        let forwarded = tokio::time::timeout(Duration::from_secs(5), async {
            while hits.load(Ordering::SeqCst) < before + batch.len() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(forwarded.is_ok(), "the batch never reached the backend");
        cancelled += batch.len();
        drop(batch);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !refused {
        let goaway = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let req = http::Request::get(format!("http://{target}/after"))
                    .body(())
                    .expect("request");
                if client.clone().ready().await.is_err() || client.send_request(req, true).is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            goaway.is_ok(),
            "no GOAWAY after {cancelled} cancelled in-flight requests"
        );
    }
    assert!(
        (100..=140).contains(&cancelled),
        "GOAWAY came after {cancelled} cancelled requests (guard: 100)"
    );
    let st = s.get(ADMIN, "/v1/system/status").await;
    assert!(
        st.body["dataplane"]["h2_abusive"].as_u64().unwrap_or(0) >= 1,
        "{}",
        st.body
    );
}

/// A backend answering `/len` with a 3 MiB body of known length, `/chunked`
/// with 200 chunks of 1,000 bytes and `/close` with 500 KB delimited by its
/// close (HTTP/1.0 style); every body the same pattern.
async fn bulk_backend(ip: &str) -> SocketAddr {
    let l = tokio::net::TcpListener::bind(format!("{ip}:0")).await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut r = BufReader::new(s);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).await.unwrap_or(0) == 0 || h.trim().is_empty() {
                            break;
                        }
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let w = r.get_mut();
                    match path.as_str() {
                        "/len" => {
                            let body = pattern(3 << 20);
                            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
                            if w.write_all(head.as_bytes()).await.is_err() || w.write_all(&body).await.is_err() {
                                return;
                            }
                        }
                        "/chunked" => {
                            let body = pattern(200_000);
                            if w.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                                .await
                                .is_err()
                            {
                                return;
                            }
                            for c in body.chunks(1000) {
                                let mut chunk = format!("{:x}\r\n", c.len()).into_bytes();
                                chunk.extend_from_slice(c);
                                chunk.extend_from_slice(b"\r\n");
                                if w.write_all(&chunk).await.is_err() {
                                    return;
                                }
                            }
                            if w.write_all(b"0\r\n\r\n").await.is_err() {
                                return;
                            }
                        }
                        _ => {
                            let body = pattern(500_000);
                            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n").await;
                            let _ = w.write_all(&body).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|k| (k % 251) as u8).collect()
}

/// Response bodies that do not come with their head reach an h2 client
/// whole and in order under flow control (the client's stream window is
/// 64 KiB, far below the 3 MiB body), whatever their framing, several at
/// once on one connection, and the keep-alive backend connection is
/// reused afterwards.
#[tokio::test]
async fn long_response_bodies_stream_to_h2_clients_under_flow_control() {
    let s = Server::start().await;
    let b = bulk_backend("127.65.4.10").await;
    let target = h2_site(&s, 4, None, b).await;
    let client = h2_client(target).await;

    let fetch = |path: &'static str| {
        let mut client = client.clone();
        async move {
            let req = http::Request::get(format!("http://{target}{path}"))
                .body(())
                .expect("request");
            let (resp, _) = client.send_request(req, true).expect("send");
            let resp = resp.await.expect("response");
            assert_eq!(resp.status(), 200, "{path}");
            let mut body = resp.into_body();
            let mut got = Vec::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.expect("body chunk");
                let _ = body.flow_control().release_capacity(chunk.len());
                got.extend_from_slice(&chunk);
            }
            got
        }
    };
    let all = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(fetch("/len"), fetch("/chunked"), fetch("/close"), fetch("/len"))
    })
    .await
    .expect("bodies in time");
    assert!(all.0 == pattern(3 << 20), "length-delimited body");
    assert!(all.1 == pattern(200_000), "chunked body, de-chunked");
    assert!(all.2 == pattern(500_000), "close-delimited body");
    assert!(all.3 == pattern(3 << 20), "a second long body");
    // And again on the same connection, after the long ones completed.
    let again = tokio::time::timeout(Duration::from_secs(30), fetch("/len"))
        .await
        .expect("in time");
    assert!(again == pattern(3 << 20));
}

/// Connects an h2 client; the handle resolves when its connection ends.
async fn h2_client_watched(
    target: SocketAddr,
) -> (
    h2::client::SendRequest<Bytes>,
    tokio::task::JoinHandle<std::time::Instant>,
) {
    let tcp = TcpStream::connect(target).await.expect("connect");
    let (client, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let ended = tokio::spawn(async move {
        let _ = conn.await;
        std::time::Instant::now()
    });
    (client, ended)
}

/// An h2 connection with no request in flight for the idle timeout gets
/// GOAWAY and is closed, whether it never asked anything or is between
/// requests; a request in flight for longer than the idle timeout is not
/// cut (the response-header timeout bounds it instead).
#[tokio::test]
async fn idle_h2_connections_are_closed_and_busy_ones_are_not() {
    let s = Server::start().await;
    let (b, hits) = counting_backend("127.65.5.10", Duration::from_secs(3)).await;
    let target = h2_site(&s, 5, Some(2), b).await;

    let started = std::time::Instant::now();
    let (_quiet, quiet_ended) = h2_client_watched(target).await;
    let (mut busy, busy_ended) = h2_client_watched(target).await;
    let req = http::Request::get(format!("http://{target}/slow"))
        .body(())
        .expect("request");
    let (resp, _) = busy.send_request(req, true).expect("send");
    let resp = tokio::time::timeout(Duration::from_secs(10), resp)
        .await
        .expect("answered in time")
        .expect("a request slower than the idle timeout is answered, not cut");
    let answered = std::time::Instant::now();
    assert_eq!(resp.status(), 200);
    assert_eq!(body_text(resp).await, "GET /slow 0");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    let quiet_at = tokio::time::timeout(Duration::from_secs(8), quiet_ended)
        .await
        .expect("a connection that never asked anything is closed")
        .expect("join");
    let took = quiet_at - started;
    assert!(
        (Duration::from_millis(1800)..=Duration::from_secs(5)).contains(&took),
        "never-used connection closed after {took:?} (idle_timeout_s 2)"
    );
    let busy_at = tokio::time::timeout(Duration::from_secs(8), busy_ended)
        .await
        .expect("a connection idle after its request is closed")
        .expect("join");
    let took = busy_at - answered;
    assert!(
        took <= Duration::from_secs(4),
        "connection closed {took:?} after its last answer (idle_timeout_s 2)"
    );
    let st = s.get(ADMIN, "/v1/system/status").await;
    assert!(
        st.body["dataplane"]["idle_closed"].as_u64().unwrap_or(0) >= 2,
        "{}",
        st.body
    );
}

/// Reads one HTTP/2 frame: (type, flags, stream id, payload).
pub async fn read_frame(s: &mut TcpStream) -> std::io::Result<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    s.read_exact(&mut head).await?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await?;
    Ok((head[3], head[4], stream, payload))
}

/// A request that crosses the idle GOAWAY (sent before the client has
/// seen it) is still served, as HTTP/2's graceful shutdown promises: the
/// first GOAWAY names the highest stream id, so a client may not retry
/// what it sent then. Raw frames: an h2 client library would not open a
/// stream after the GOAWAY.
#[tokio::test]
async fn a_request_crossing_the_idle_goaway_is_served() {
    const GOAWAY: u8 = 7;
    const HEADERS: u8 = 1;
    const RST_STREAM: u8 = 3;
    const SETTINGS: u8 = 4;
    let s = Server::start().await;
    let (b, hits) = counting_backend("127.65.6.10", Duration::ZERO).await;
    let target = h2_site(&s, 6, Some(1), b).await;
    let mut c = TcpStream::connect(target).await.expect("connect");
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.expect("preface");
    c.write_all(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0])
        .await
        .expect("settings");
    // Until the idle GOAWAY; the server's SETTINGS acknowledged on the way.
    let goaway = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let (kind, flags, _, payload) = read_frame(&mut c).await.expect("frame");
            if kind == SETTINGS && flags & 1 == 0 {
                c.write_all(&[0, 0, 0, SETTINGS, 1, 0, 0, 0, 0])
                    .await
                    .expect("settings ack");
            }
            if kind == GOAWAY {
                return payload;
            }
        }
    })
    .await
    .expect("GOAWAY after the idle timeout");
    let last = u32::from_be_bytes([goaway[0], goaway[1], goaway[2], goaway[3]]) & 0x7fff_ffff;
    assert!(
        last >= 1,
        "the first GOAWAY leaves room for streams in flight (last id {last})"
    );
    // GET / on stream 1: :method GET, :scheme http, :path / (static
    // indexes 2, 6, 4) and :authority "a.test" (literal, name index 1).
    let block = [0x82, 0x86, 0x84, 0x01, 0x06, b'a', b'.', b't', b'e', b's', b't'];
    let mut frame = vec![0, 0, block.len() as u8, HEADERS, 0x5, 0, 0, 0, 1];
    frame.extend_from_slice(&block);
    c.write_all(&frame).await.expect("request");
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let (kind, _, stream, _) = read_frame(&mut c).await.expect("frame");
            if stream == 1 && (kind == HEADERS || kind == RST_STREAM) {
                return kind;
            }
        }
    })
    .await
    .expect("an answer on stream 1");
    assert_eq!(answer, HEADERS, "the crossing request was reset instead of answered");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the backend got the request");
}

/// Sends up to 256 MiB of request body as fast as the stream's window
/// allows, until the stream ends or is reset.
fn upload(mut body: h2::SendStream<Bytes>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        for _ in 0..4096 {
            body.reserve_capacity(chunk.len());
            match std::future::poll_fn(|cx| body.poll_capacity(cx)).await {
                Some(Ok(n)) if n > 0 => {
                    if body.send_data(chunk.slice(..n.min(chunk.len())), false).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    })
}

/// A backend that stops taking a request body is given up on after the
/// idle timeout: the stream is answered 504 instead of holding the stream
/// (and the client's flow-control window) forever.
#[tokio::test]
async fn a_backend_that_stops_taking_the_body_gives_504_at_the_idle_timeout() {
    let s = Server::start().await;
    let b = deaf_backend("127.65.7.10").await;
    let target = h2_site(&s, 7, Some(2), b).await;
    let mut client = h2_client(target).await;
    let req = http::Request::post(format!("http://{target}/upload"))
        .body(())
        .expect("request");
    let started = std::time::Instant::now();
    let (resp, body) = client.send_request(req, false).expect("send");
    // Once the backend's and Weir's socket buffers are full, Weir stops
    // opening the window and the upload waits.
    let sender = upload(body);
    let resp = tokio::time::timeout(Duration::from_secs(15), resp)
        .await
        .expect("answered, not stalled behind a backend that stopped reading")
        .expect("a response, not a reset");
    let took = started.elapsed();
    assert_eq!(resp.status(), 504);
    assert_eq!(body_text(resp).await, "gateway timeout\n");
    assert!(
        (Duration::from_millis(1800)..=Duration::from_secs(8)).contains(&took),
        "504 after {took:?} (idle_timeout_s 2)"
    );
    sender.abort();
}

/// A backend's early answer to an upload (413 before reading the body,
/// then closing) reaches the h2 client instead of a 502.
#[tokio::test]
async fn a_backends_early_answer_to_an_upload_reaches_the_h2_client() {
    let s = Server::start().await;
    let b = early_413_backend("127.65.8.10", true).await;
    let target = h2_site(&s, 8, Some(2), b).await;
    let mut client = h2_client(target).await;
    let req = http::Request::post(format!("http://{target}/upload"))
        .body(())
        .expect("request");
    let (resp, body) = client.send_request(req, false).expect("send");
    let sender = upload(body);
    let resp = tokio::time::timeout(Duration::from_secs(15), resp)
        .await
        .expect("answered in time")
        .expect("a response, not a reset");
    assert_eq!(resp.status(), 413);
    assert_eq!(body_text(resp).await, "too large\n");
    sender.abort();
}
