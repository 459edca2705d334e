//! Strict HTTP/1.1 parsing: every malformed or ambiguous request is refused
//! with 400 and its connection closed, and not one byte of it reaches a
//! backend (checked with the backend's raw byte counters).

use std::time::Duration;

use serde_json::json;

use crate::http_kit::{HttpBackend, Reply, Site, fetch, get, http_site, send_and_read_to_close};
use crate::kit::Server;

/// Each malformed or ambiguous request: (what is wrong, its exact bytes).
#[rustfmt::skip]
fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let post = |fields: &str, body: &str| {
        format!("POST /strict HTTP/1.1\r\nHost: strict.test\r\n{fields}\r\n{body}").into_bytes()
    };
    let with = |fields: &str| format!("GET /strict HTTP/1.1\r\nHost: strict.test\r\n{fields}\r\n").into_bytes();
    let target = |t: &str| format!("GET {t} HTTP/1.1\r\nHost: strict.test\r\n\r\n").into_bytes();
    let hello = "5\r\nhello\r\n0\r\n\r\n";
    let (cl, te) = ("Content-Length: 5\r\n", "Transfer-Encoding: chunked\r\n");
    let chunked = |body: &str| post(te, body);
    let http10_chunked = "POST /strict HTTP/1.0\r\nHost: strict.test\r\nTransfer-Encoding: chunked\r\n\r\n";
    let long_target = format!("/{}", "a".repeat(70 * 1024));
    let many_fields: String = (0..70).map(|i| format!("X-Pad-{i}: {}\r\n", "p".repeat(1000))).collect();
    vec![
        // Request smuggling: two framings, or one that is not what it seems.
        ("Content-Length then Transfer-Encoding", post(&format!("{cl}{te}"), "0\r\n\r\n")),
        ("Transfer-Encoding then Content-Length", post(&format!("{te}{cl}"), "0\r\n\r\n")),
        ("Transfer-Encoding: chunked, identity", post("Transfer-Encoding: chunked, identity\r\n", hello)),
        ("chunked then identity in two fields", post(&format!("{te}Transfer-Encoding: identity\r\n"), hello)),
        ("Transfer-Encoding: xchunked", post("Transfer-Encoding: xchunked\r\n", hello)),
        ("space before the colon", post("Transfer-Encoding : chunked\r\n", hello)),
        ("vertical tab before chunked", post("Transfer-Encoding: \x0bchunked\r\n", hello)),
        ("Transfer-Encoding on a continuation line", post("Transfer-Encoding:\r\n chunked\r\n", hello)),
        ("obs-fold continuation line", with("X-Folded: a\r\n b\r\n")),
        ("Content-Length twice", post(&format!("{cl}{cl}"), "hello")),
        ("Content-Length: 5, 5", post("Content-Length: 5, 5\r\n", "hello")),
        ("Content-Length: +5", post("Content-Length: +5\r\n", "hello")),
        ("Content-Length: -1", post("Content-Length: -1\r\n", "hello")),
        ("Content-Length: 0x5", post("Content-Length: 0x5\r\n", "hello")),
        ("HTTP/1.0 with Transfer-Encoding", format!("{http10_chunked}{hello}").into_bytes()),
        // Bad chunking (in the first chunk's size line).
        ("chunk size 0x5", chunked("0x5\r\nhello\r\n0\r\n\r\n")),
        ("chunk size with a leading space", chunked(" 5\r\nhello\r\n0\r\n\r\n")),
        ("chunk size with an inner space", chunked("1 0\r\nhello\r\n0\r\n\r\n")),
        ("chunk size of 20 hex digits", chunked("FFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n")),
        ("chunk extension with a stray quote", chunked("5;a\"b\r\nhello\r\n0\r\n\r\n")),
        // Invalid bytes.
        ("bare LF inside the head", b"GET /strict HTTP/1.1\r\nHost: strict.test\nX-A: b\r\n\r\n".to_vec()),
        ("NUL in a field value", with("X-A: a\0b\r\n")),
        ("CR in a field value", with("X-A: a\rb\r\n")),
        ("NUL in the request target", target("/strict/\0x")),
        ("space in a field name", with("X A: b\r\n")),
        ("invalid percent-encoding %zz", target("/strict/%zz")),
        ("truncated percent-encoding %2", target("/strict/%2")),
        ("encoded NUL %00", target("/strict/a%00b")),
        // Host.
        ("HTTP/1.1 without Host", b"GET /strict HTTP/1.1\r\nX-A: b\r\n\r\n".to_vec()),
        ("two Host fields", with("Host: other.test\r\n")),
        // Size limits (64 KiB).
        ("request line over 64 KiB", target(&long_target)),
        ("header block over 64 KiB", with(&many_fields)),
    ]
}

#[tokio::test]
async fn malformed_or_ambiguous_requests_get_400_and_never_reach_a_backend() {
    let s = Server::start().await;
    let site = http_site(&s, 40, json!({})).await;
    let (b, _) = site.backend(&s, "strict", Reply::Ok).await;
    control(&site, &b, "before the cases").await;
    let cases = cases();
    let mut failures = Vec::new();
    for (what, bytes) in &cases {
        if let Err(why) = refused(&site, &b, bytes.clone()).await {
            failures.push(format!("{what}: {why}"));
        }
    }
    control(&site, &b, "after the cases").await;
    assert!(
        failures.is_empty(),
        "{} of {} malformed requests were not refused cleanly:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
}

/// Valid requests through the same VServer do reach the backend: proof
/// that the byte counter would have seen a refused one.
async fn control(site: &Site, b: &HttpBackend, when: &str) {
    let before = b.bytes_received();
    let r = fetch(site.addr, &get("/strict/control", "strict.test")).await;
    assert_eq!(r.status(), 200, "control GET {when}: {}", r.head.start);
    let chunked = b"POST /strict/control HTTP/1.1\r\nHost: strict.test\r\nTransfer-Encoding: chunked\r\n\r\n\
                    5;a=b\r\nhello\r\n0\r\n\r\n";
    let r = fetch(site.addr, chunked).await;
    assert_eq!(r.status(), 200, "control chunked POST {when}: {}", r.head.start);
    assert_eq!(b.last().body, b"hello", "control chunked POST {when}: body");
    assert!(
        b.bytes_received() > before,
        "control requests {when} did not reach the backend"
    );
}

/// Sends `bytes` on a new connection: the answer must be a 400, the
/// connection closed, and no byte must reach the backend.
async fn refused(site: &Site, b: &HttpBackend, bytes: Vec<u8>) -> Result<(), String> {
    let before = b.bytes_received();
    let (got, closed) = send_and_read_to_close(site.addr, bytes, Duration::from_secs(2)).await;
    // Bytes on their way to the backend have arrived by now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let leaked = b.bytes_received() - before;
    let text = String::from_utf8_lossy(&got);
    let mut why = Vec::new();
    if !got.starts_with(b"HTTP/1.1 400") {
        why.push(format!(
            "answered {:?}, not HTTP/1.1 400",
            text.lines().next().unwrap_or("nothing")
        ));
    }
    if !closed {
        why.push("the connection was left open".to_string());
    }
    if leaked > 0 {
        why.push(format!("{leaked} bytes reached the backend"));
    }
    if why.is_empty() { Ok(()) } else { Err(why.join("; ")) }
}
