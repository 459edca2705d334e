//! Live changes under HTTP keep-alive load: backends added, disabled,
//! deleted, rules added and removed, the algorithm and persistence changed,
//! while clients keep requesting on their connections. Not one request may
//! fail, and each change reaches the next request of an open connection.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Mutex;

use crate::http_kit::{Client, Reply, get, http_site};
use crate::kit::{ADMIN, Server};

#[tokio::test]
async fn live_changes_under_keep_alive_load_fail_nothing() {
    let s = Server::start().await;
    let site = Arc::new(http_site(&s, 60, json!({"port": 8260})).await);
    let (_a, a) = site.backend(&s, "a", Reply::Ok).await;
    let (_b, b) = site.backend(&s, "b", Reply::Ok).await;

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    // Which backend answered each request, by the time it was sent.
    let seen: Arc<Mutex<Vec<(Instant, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (site, stop, done, seen) = (site.clone(), stop.clone(), done.clone(), seen.clone());
        clients.push(tokio::spawn(async move {
            // One keep-alive connection per client for the whole test:
            // `response()` panics (failing the test) on any failed request.
            let mut c = Client::connect(site.addr).await;
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(30) {
                // Stamped when sent: a change must reach requests sent
                // after it was applied (one in flight may predate it).
                let sent = Instant::now();
                c.send(&get("/x", "shop.example.com")).await;
                let r = c.response().await;
                assert_eq!(r.status(), 200, "a request failed during a live change");
                seen.lock().await.push((sent, r.text()));
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let wait_for = |name: &'static str| {
        let seen = seen.clone();
        async move {
            let since = Instant::now();
            tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    if seen.lock().await.iter().any(|(t, n)| *t > since && n == name) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("no request reached {name} after the change"));
        }
    };

    // A new backend gets traffic on the open connections.
    let (_c, c) = site.backend(&s, "c", Reply::Ok).await;
    wait_for("c").await;
    // A rule sends shop.example.com to b only.
    s.post_applied(
        ADMIN,
        &site.url("/rules"),
        json!({"domain": "shop.example.com", "backend_ids": [b]}),
    )
    .await
    .ok(201);
    let after_rule = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let names: HashSet<String> = seen
        .lock()
        .await
        .iter()
        .filter(|(t, _)| *t > after_rule)
        .map(|(_, n)| n.clone())
        .collect();
    assert_eq!(
        names,
        HashSet::from(["b".to_string()]),
        "the rule reaches open connections"
    );
    // Drop the rule, change the algorithm and persistence, disable a, delete c.
    let rules = s.get(ADMIN, &site.url("/rules")).await;
    let rule = rules.body["items"][0]["id"].as_str().unwrap_or_default().to_string();
    s.delete_applied(ADMIN, &site.url(&format!("/rules/{rule}")))
        .await
        .ok(204);
    wait_for("a").await;
    s.patch_applied(
        ADMIN,
        &site.url(""),
        json!({"algorithm": "least_connections", "persistence": {"mode": "insert_cookie"}}),
    )
    .await
    .ok(200);
    site.set_enabled(&s, &a, false).await;
    s.delete_applied(ADMIN, &site.url(&format!("/backends/{c}")))
        .await
        .ok(204);
    let quiet = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.expect("a client failed");
    }
    let late: HashSet<String> = seen
        .lock()
        .await
        .iter()
        .filter(|(t, _)| *t > quiet)
        .map(|(_, n)| n.clone())
        .collect();
    assert_eq!(late, HashSet::from(["b".to_string()]), "only b is left as a candidate");
    assert!(done.load(Ordering::SeqCst) > 100, "the load ran");
}

/// A backend whose responses never end: a few bytes every 50 ms, chunked
/// for `/chunked`, else under a 1 GiB `Content-Length`.
async fn trickle_backend(ip: &str) -> std::net::SocketAddr {
    use tokio::io::AsyncWriteExt;
    crate::http_kit::raw_backend(ip, |mut s| async move {
        let Some(head) = crate::http_kit::read_head(&mut s).await else {
            return;
        };
        let chunked = head.starts_with(b"GET /chunked ");
        let first: &[u8] = if chunked {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n"
        };
        if s.write_all(first).await.is_err() {
            return;
        }
        let piece: &[u8] = if chunked {
            b"10\r\n0123456789abcdef\r\n"
        } else {
            b"0123456789abcdef"
        };
        for _ in 0..2000 {
            if s.write_all(piece).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// A deleted backend's responses still streaming when its drain period
/// is over are cut, on the copy path (chunked), the splice path
/// (`Content-Length`) and over HTTP/2 alike, and counted.
#[tokio::test]
async fn a_deleted_backends_streaming_responses_are_cut_after_the_drain() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start_with_config("[dataplane]\ndrain_s = 1\n").await;
    let site = http_site(&s, 34, json!({})).await;
    let b = trickle_backend("127.71.34.50").await;
    let rs = crate::backends::add_backend(&s, &site.lb, &site.vs, b, 1).await;
    let mut conns = Vec::new();
    for path in ["/chunked", "/length"] {
        let mut c = tokio::net::TcpStream::connect(site.addr).await.expect("connect");
        c.write_all(&get(path, "app.test")).await.expect("send");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while got.len() < 200 {
            let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
                .await
                .expect("streaming")
                .expect("read");
            assert!(n > 0, "{path}: closed early");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"), "{path}");
        conns.push((path, c));
    }
    // And over HTTP/2 (h2c): the stream is reset.
    let tcp = tokio::net::TcpStream::connect(site.addr).await.expect("connect");
    let (mut h2, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://{}/chunked", site.addr))
        .body(())
        .expect("request");
    let (resp, _) = h2.send_request(req, true).expect("send");
    let resp = tokio::time::timeout(Duration::from_secs(5), resp)
        .await
        .expect("h2 head in time")
        .expect("h2 response");
    assert_eq!(resp.status(), 200);
    let mut h2_body = resp.into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), h2_body.data())
        .await
        .expect("h2 data in time");
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
    let before = s.get(ADMIN, "/v1/system/status").await.body["dataplane"]["drained_closed"]
        .as_u64()
        .unwrap_or(0);
    s.delete_applied(ADMIN, &site.url(&format!("/backends/{rs}"))).await;
    let deleted = Instant::now();
    for (path, mut c) in conns {
        let mut buf = [0u8; 4096];
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(n @ 1..) = c.read(&mut buf).await {
                let _ = n;
            }
        })
        .await;
        assert!(ended.is_ok(), "{path}: still streaming 10 s after the delete");
        let took = deleted.elapsed();
        assert!(
            took >= Duration::from_millis(900),
            "{path}: cut {took:?} after the delete, before the 1 s drain"
        );
    }
    let h2_end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match h2_body.data().await {
                Some(Ok(d)) => {
                    let _ = h2_body.flow_control().release_capacity(d.len());
                }
                Some(Err(e)) => return Some(e),
                None => return None,
            }
        }
    })
    .await
    .expect("h2: still streaming 10 s after the delete");
    assert!(h2_end.is_some(), "h2: the body ended cleanly instead of being reset");
    assert!(deleted.elapsed() >= Duration::from_millis(900));
    let after = s.get(ADMIN, "/v1/system/status").await.body["dataplane"]["drained_closed"]
        .as_u64()
        .unwrap_or(0);
    assert!(after >= before + 3, "drained_closed {before} → {after}");
}
