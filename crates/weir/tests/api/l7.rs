//! Layer 7 through the real binary: forwarding rules and path normalization,
//! cookie persistence, forwarded and hop-by-hop headers, the errors Weir
//! answers itself, client timeouts, upgrades, 100-continue, pipelining,
//! streaming and h2c. Each test owns `127.70.<net>.0/24` (see `http_kit`).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::http_kit::{Client, Head, HttpBackend, Reply, Response, Site, fetch, get, http_site, request};
use crate::kit::Server;

// ---- helpers ---------------------------------------------------------------

/// Starts and adds plain backends named `names`; their ids by name.
async fn plain_backends(s: &Server, site: &Site, names: &[&str]) -> HashMap<String, String> {
    let mut ids = HashMap::new();
    for name in names {
        let (_, id) = site.backend(s, name, Reply::Ok).await;
        ids.insert(name.to_string(), id);
    }
    ids
}

/// `n` requests for `host` + `target`, each on a new connection; each must
/// be answered 200.
async fn fetch_n(site: &Site, host: &str, target: &str, n: usize) -> Vec<Response> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = fetch(site.addr, &get(target, host)).await;
        assert_eq!(r.status(), 200, "{host} {target}: {}", r.head.start);
        out.push(r);
    }
    out
}

/// Three requests for `host` + `target` (with at least three backends in
/// the default pool, a miss cannot look like a hit): each must be answered
/// by `want`, which must have received `forwarded` as the request target.
async fn expect_route(site: &Site, host: &str, target: &str, want: &str, forwarded: &str) {
    for r in fetch_n(site, host, target, 3).await {
        assert_eq!(r.text(), want, "Host {host:?} {target:?} went to the wrong backend");
        assert_eq!(
            r.head.get("x-seen-path"),
            Some(forwarded),
            "Host {host:?} {target:?}: the backend received another request target"
        );
    }
}

/// A `GET /` for the shop on a new connection, with `cookie` as the Cookie
/// field when given; must be answered 200.
async fn shop(site: &Site, cookie: Option<&str>) -> Response {
    let fields: Vec<(&str, &str)> = cookie.map(|c| ("Cookie", c)).into_iter().collect();
    let r = fetch(site.addr, &request("GET", "/", "shop.test", &fields, b"")).await;
    assert_eq!(r.status(), 200, "cookie {cookie:?}: {}", r.head.start);
    r
}

/// `v` with one alphanumeric character (from the middle on) replaced by
/// another of the same class: same shape, different value, in any encoding.
fn flip(v: &str) -> String {
    let mut c: Vec<char> = v.chars().collect();
    let i = (c.len() / 2..c.len())
        .chain(0..c.len() / 2)
        .find(|&i| c[i].is_ascii_alphanumeric())
        .unwrap_or_else(|| panic!("no alphanumeric character in {v:?}"));
    c[i] = match c[i] {
        '9' => '0',
        'z' => 'a',
        'Z' => 'A',
        x => char::from(x as u8 + 1),
    };
    c.into_iter().collect()
}

/// Four requests carrying `name=value`, which Weir must not trust: each is
/// scheduled normally (both backends answer) and gets a `want` cookie (a
/// valid one: not the untrusted value, when that came under the same name).
async fn assert_cookie_ignored(site: &Site, want: &str, name: &str, value: &str, what: &str) {
    let mut names = HashSet::new();
    for _ in 0..4 {
        let r = shop(site, Some(&format!("{name}={value}"))).await;
        let fresh = r
            .set_cookie(want)
            .unwrap_or_else(|| panic!("{what}: no new {want} cookie was set"));
        if name == want {
            assert_ne!(fresh, value, "{what}: the untrusted value was set again");
        }
        names.insert(r.text());
    }
    assert_eq!(
        names.len(),
        2,
        "{what}: requests must be scheduled normally over both backends, got {names:?}"
    );
}

#[track_caller]
fn assert_status_line(r: &Response, code: u16, what: &str) {
    assert!(
        r.head.start.starts_with(&format!("HTTP/1.1 {code}")),
        "{what}: want HTTP/1.1 {code}, got {:?} {:?}",
        r.head.start,
        r.text()
    );
}

/// `head` carries no hop-by-hop field, none of the `named` ones (listed in
/// an incoming Connection), and a Connection field only with Weir's own
/// `keep-alive`/`close`.
#[track_caller]
fn assert_no_hop_by_hop(head: &Head, named: &[&str], side: &str) {
    for name in ["keep-alive", "proxy-connection", "te", "upgrade"].iter().chain(named) {
        assert!(
            head.all(name).is_empty(),
            "{side}: hop-by-hop field {name} was passed on: {:?}",
            head.fields
        );
    }
    for t in head.tokens("connection") {
        assert!(
            t == "keep-alive" || t == "close",
            "{side}: Connection option {t:?} was passed on: {:?}",
            head.fields
        );
    }
}

/// The window in which an idle timeout of 2 s must have fired.
#[track_caller]
fn assert_cut_off_in_time(took: Duration, what: &str) {
    assert!(
        (Duration::from_millis(1800)..=Duration::from_secs(4)).contains(&took),
        "{what}: closed after {took:?}, want 2–4 s (idle_timeout_s 2)"
    );
}

/// A WebSocket upgrade request head.
fn websocket_request() -> Vec<u8> {
    b"GET /chat HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
      Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        .to_vec()
}

// ---- the kit itself (no Weir involved) --------------------------------------

#[tokio::test]
async fn kit_backend_parses_framing_and_counts_bytes() {
    let b = HttpBackend::start("127.71.0.10", "kit", Reply::Ok).await;
    let mut sent = get("/a?q=1", "kit.test");
    sent.extend_from_slice(
        b"POST /chunked HTTP/1.1\r\nHost: kit.test\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    sent.extend(request("POST", "/length", "kit.test", &[], b"abc"));
    let mut c = Client::connect(b.addr).await;
    c.send(&sent).await;
    for want in ["/a?q=1", "/chunked", "/length"] {
        let r = c.response().await;
        assert_eq!((r.status(), r.text()), (200, "kit".to_string()));
        assert_eq!(r.head.get("x-seen-path"), Some(want), "pipelined answers in order");
    }
    let expect = b"POST /expect HTTP/1.1\r\nHost: kit.test\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    c.send(expect).await;
    assert_eq!(c.response().await.status(), 100);
    c.send(b"ok").await;
    assert_eq!(c.response().await.status(), 200);
    let reqs = b.requests();
    let bodies: Vec<&[u8]> = reqs.iter().map(|r| r.body.as_slice()).collect();
    assert_eq!(bodies, [&b""[..], b"hello world", b"abc", b"ok"]);
    assert!(reqs.iter().all(|r| r.conn == 0), "all on the first connection");
    assert_eq!(
        b.bytes_received(),
        sent.len() + expect.len() + 2,
        "every raw byte counted"
    );
    // A connection that sends nothing is counted with zero bytes.
    let _quiet = Client::connect(b.addr).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while b.conn_bytes().len() < 2 {
        assert!(Instant::now() < deadline, "second connection not accepted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.conn_bytes()[1], 0);
}

#[tokio::test]
async fn kit_upgrade_backend_notices_early_bytes() {
    let b = HttpBackend::start("127.71.0.11", "kit-up", Reply::Upgrade).await;
    // Bytes right behind the head are early: the detector must see them.
    let mut c = Client::connect(b.addr).await;
    c.send(&[websocket_request(), b"early".to_vec()].concat()).await;
    assert_eq!(c.response().await.status(), 101);
    assert_eq!(b.early_bytes(), 5, "bytes sent with the head count as early");
    assert_eq!(c.read_raw(5).await, b"early", "early bytes are echoed after the 101");
    // Bytes sent after the 101 are not early, and echo.
    let mut c = Client::connect(b.addr).await;
    c.send(&websocket_request()).await;
    assert_eq!(c.response().await.status(), 101);
    c.send(b"late").await;
    assert_eq!(c.read_raw(4).await, b"late");
    assert_eq!((b.early_bytes(), b.upgrades()), (5, 2));
    // A request without Upgrade gets a plain answer.
    assert_eq!(fetch(b.addr, &get("/plain", "kit.test")).await.status(), 200);
}

// ---- forwarding rules and path normalization --------------------------------

#[tokio::test]
async fn rules_pick_the_most_specific_match() {
    let s = Server::start().await;
    let site = http_site(&s, 1, json!({})).await;
    let ids = plain_backends(&s, &site, &["api-v1", "api", "wild", "v1", "v1-deep", "other"]).await;
    site.rule(
        &s,
        json!({"domain": "api.example.com", "path": "/v1"}),
        &[&ids["api-v1"]],
    )
    .await;
    site.rule(&s, json!({"domain": "api.example.com"}), &[&ids["api"]])
        .await;
    site.rule(&s, json!({"domain": "*.example.com"}), &[&ids["wild"]]).await;
    site.rule(&s, json!({"path": "/v1"}), &[&ids["v1"]]).await;
    site.rule(&s, json!({"path": "/v1/deep"}), &[&ids["v1-deep"]]).await;
    for (host, target, want) in [
        ("api.example.com", "/v1", "api-v1"),
        ("api.example.com", "/v1/users?id=1", "api-v1"),
        // An exact domain beats a longer path-only prefix.
        ("api.example.com", "/v1/deep/x", "api-v1"),
        ("api.example.com", "/v2", "api"),
        // Prefixes match whole segments.
        ("api.example.com", "/v1x", "api"),
        // A wildcard domain beats path-only rules.
        ("www.example.com", "/v1/deep", "wild"),
        ("other.test", "/v1", "v1"),
        ("other.test", "/v1/deep/x", "v1-deep"),
        ("other.test", "/v1/deeper", "v1"),
    ] {
        expect_route(&site, host, target, want, target).await;
    }
}

#[tokio::test]
async fn host_rules_ignore_case_and_port() {
    let s = Server::start().await;
    let site = http_site(&s, 2, json!({})).await;
    let ids = plain_backends(&s, &site, &["api", "wild", "other"]).await;
    site.rule(&s, json!({"domain": "api.example.com"}), &[&ids["api"]])
        .await;
    site.rule(&s, json!({"domain": "*.example.com"}), &[&ids["wild"]]).await;
    for (host, want) in [
        ("API.Example.com:8080", "api"),
        ("api.example.com:80", "api"),
        ("Api.Example.Com", "api"),
        ("WWW.EXAMPLE.COM:8080", "wild"),
    ] {
        expect_route(&site, host, "/x", want, "/x").await;
    }
}

#[tokio::test]
async fn unmatched_requests_spread_over_every_backend() {
    let s = Server::start().await;
    let site = http_site(&s, 3, json!({})).await;
    let ids = plain_backends(&s, &site, &["a", "b", "c"]).await;
    site.rule(&s, json!({"path": "/only"}), &[&ids["a"]]).await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for i in 0..6 {
        let target = if i % 2 == 0 { "/elsewhere" } else { "/onlyx" };
        for r in fetch_n(&site, "any.test", target, 1).await {
            *counts.entry(r.text()).or_default() += 1;
        }
    }
    let want: HashMap<String, usize> = [("a", 2), ("b", 2), ("c", 2)].map(|(k, v)| (k.to_string(), v)).into();
    assert_eq!(
        counts, want,
        "no rule matches: round robin over all the VServer's backends"
    );
}

#[tokio::test]
async fn paths_are_normalized_before_matching_and_forwarded_normalized() {
    let s = Server::start().await;
    let site = http_site(&s, 4, json!({})).await;
    let ids = plain_backends(&s, &site, &["v1", "admin", "other"]).await;
    site.rule(&s, json!({"path": "/v1"}), &[&ids["v1"]]).await;
    site.rule(&s, json!({"path": "/admin"}), &[&ids["admin"]]).await;
    for (target, want, forwarded) in [
        ("/v1/../admin", "admin", "/admin"),
        ("/v1/%2e%2e/admin", "admin", "/admin"),
        ("/v1/%2E%2E/admin", "admin", "/admin"),
        ("/v1/./%2e/../admin/x", "admin", "/admin/x"),
        ("//admin", "admin", "/admin"),
        ("/%61dmin/x", "admin", "/admin/x"),
        ("/admin/./x/..//y", "admin", "/admin/y"),
        ("/../../admin", "admin", "/admin"),
        ("/admin/../v1/x", "v1", "/v1/x"),
        ("/v%31//x?q=/../a%2e", "v1", "/v1/x?q=/../a%2e"),
    ] {
        expect_route(&site, "norm.test", target, want, forwarded).await;
    }
}

#[tokio::test]
async fn path_rules_are_case_sensitive() {
    let s = Server::start().await;
    let site = http_site(&s, 5, json!({})).await;
    let ids = plain_backends(&s, &site, &["v1", "x", "y"]).await;
    site.rule(&s, json!({"path": "/v1"}), &[&ids["v1"]]).await;
    expect_route(&site, "case.test", "/v1/a", "v1", "/v1/a").await;
    let upper = fetch_n(&site, "case.test", "/V1/a", 3).await;
    let names: HashSet<String> = upper.iter().map(Response::text).collect();
    assert!(
        names.iter().any(|n| n != "v1"),
        "/V1/a must not match the /v1 rule (all went to v1)"
    );
    for r in &upper {
        assert_eq!(r.head.get("x-seen-path"), Some("/V1/a"), "the path's case is kept");
    }
}

// ---- cookie persistence -----------------------------------------------------

#[tokio::test]
async fn insert_cookie_pins_a_client_to_its_backend() {
    let s = Server::start().await;
    let site = http_site(&s, 6, json!({"persistence": {"mode": "insert_cookie"}})).await;
    plain_backends(&s, &site, &["a", "b"]).await;
    let first = shop(&site, None).await;
    let value = first
        .set_cookie("WEIRSRV")
        .expect("a request without a cookie gets Set-Cookie: WEIRSRV");
    let pinned = first.text();
    for i in 0..100 {
        let cookie = if i % 2 == 0 {
            format!("WEIRSRV={value}")
        } else {
            format!("theme=dark; WEIRSRV={value}; lang=en")
        };
        let r = shop(&site, Some(&cookie)).await;
        assert_eq!(r.text(), pinned, "request {i} carrying {cookie:?} left its backend");
        assert!(
            r.set_cookie("WEIRSRV").is_none(),
            "request {i} carried a valid cookie, yet got a new one"
        );
    }
}

#[tokio::test]
async fn requests_without_a_cookie_follow_the_algorithm() {
    let s = Server::start().await;
    let site = http_site(&s, 7, json!({"persistence": {"mode": "insert_cookie"}})).await;
    plain_backends(&s, &site, &["a", "b"]).await;
    let mut seen = Vec::new();
    for i in 0..10 {
        let r = shop(&site, None).await;
        let value = r
            .set_cookie("WEIRSRV")
            .unwrap_or_else(|| panic!("request {i} without a cookie got no Set-Cookie: WEIRSRV"));
        seen.push((r.text(), value));
    }
    let order: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        order.windows(2).all(|w| w[0] != w[1]) && order.contains(&"a") && order.contains(&"b"),
        "weights 1:1 without cookies alternate: {order:?}"
    );
    // Each cookie names the backend that answered.
    for (name, value) in &seen[..2] {
        for _ in 0..5 {
            let r = shop(&site, Some(&format!("WEIRSRV={value}"))).await;
            assert_eq!(&r.text(), name, "the cookie set by {name} leads elsewhere");
        }
    }
}

#[tokio::test]
async fn custom_cookie_uses_the_configured_name() {
    let s = Server::start().await;
    let site = http_site(
        &s,
        8,
        json!({"persistence": {"mode": "custom_cookie", "key": "SESSION_ID"}}),
    )
    .await;
    plain_backends(&s, &site, &["a", "b"]).await;
    let first = shop(&site, None).await;
    assert!(
        first.set_cookie("WEIRSRV").is_none(),
        "custom_cookie must not set WEIRSRV: {:?}",
        first.head.fields
    );
    let value = first
        .set_cookie("SESSION_ID")
        .expect("custom_cookie sets a cookie named after its key");
    let pinned = first.text();
    for i in 0..20 {
        let r = shop(&site, Some(&format!("SESSION_ID={value}"))).await;
        assert_eq!(r.text(), pinned, "request {i} with SESSION_ID left its backend");
    }
    // The same value under another name pins nothing.
    assert_cookie_ignored(
        &site,
        "SESSION_ID",
        "WEIRSRV",
        &value,
        "the value under the name WEIRSRV",
    )
    .await;
}

#[tokio::test]
async fn tampered_or_foreign_cookies_are_ignored() {
    let s = Server::start().await;
    let site = http_site(&s, 9, json!({"persistence": {"mode": "insert_cookie"}})).await;
    plain_backends(&s, &site, &["a", "b"]).await;
    let other = http_site(&s, 10, json!({"persistence": {"mode": "insert_cookie"}})).await;
    plain_backends(&s, &other, &["c", "d"]).await;
    let mine = shop(&site, None).await.set_cookie("WEIRSRV").expect("a cookie");
    let foreign = shop(&other, None).await.set_cookie("WEIRSRV").expect("a cookie");
    for (what, value) in [
        ("a value with one character changed", flip(&mine)),
        ("a truncated value", mine[..mine.len() / 2].to_string()),
        ("a value with a character appended", format!("{mine}A")),
        ("another VServer's value", foreign),
    ] {
        assert_cookie_ignored(&site, "WEIRSRV", "WEIRSRV", &value, what).await;
    }
}

#[tokio::test]
async fn disabling_the_pinned_backend_moves_the_client() {
    let s = Server::start().await;
    let site = http_site(&s, 11, json!({"persistence": {"mode": "insert_cookie"}})).await;
    let ids = plain_backends(&s, &site, &["a", "b"]).await;
    let first = shop(&site, None).await;
    let old = first.set_cookie("WEIRSRV").expect("a cookie");
    let pinned = first.text();
    let other = if pinned == "a" { "b" } else { "a" };
    site.set_enabled(&s, &ids[&pinned], false).await;
    let moved = shop(&site, Some(&format!("WEIRSRV={old}"))).await;
    assert_eq!(moved.text(), other, "a client pinned to a disabled backend moves");
    let new = moved.set_cookie("WEIRSRV").expect("the moved client gets a new cookie");
    assert_ne!(new, old, "the new cookie must name the new backend");
    for i in 0..10 {
        let r = shop(&site, Some(&format!("WEIRSRV={new}"))).await;
        assert_eq!(r.text(), other, "request {i} with the new cookie left {other}");
    }
    // Re-enabled: each cookie leads to its own backend again.
    site.set_enabled(&s, &ids[&pinned], true).await;
    for (value, want) in [(&new, other), (&old, pinned.as_str())] {
        for _ in 0..3 {
            assert_eq!(shop(&site, Some(&format!("WEIRSRV={value}"))).await.text(), want);
        }
    }
}

// ---- headers ------------------------------------------------------------------

/// `forward_headers` with every X- header on and `host` as given.
fn forward_headers(host: Option<&str>) -> serde_json::Value {
    json!({"forward_headers": {"x_forwarded_for": true, "x_real_ip": true, "x_forwarded_proto": true, "host": host}})
}

#[tokio::test]
async fn forwarded_headers_carry_the_client_address() {
    let s = Server::start().await;
    let site = http_site(&s, 12, forward_headers(None)).await;
    let (b, _) = site.backend(&s, "a", Reply::Ok).await;
    let ip = site.client_ip(7);
    let mut c = Client::connect_from(site.addr, &ip).await;
    let spoofed = [
        ("X-Forwarded-For", "1.2.3.4"),
        ("X-Real-IP", "9.9.9.9"),
        ("X-Forwarded-Proto", "https"),
    ];
    c.send(&request("GET", "/h", "app.test", &spoofed, b"")).await;
    assert_eq!(c.response().await.status(), 200);
    let h = b.last().head;
    assert_eq!(
        h.all("x-forwarded-for").join(", "),
        format!("1.2.3.4, {ip}"),
        "X-Forwarded-For appends the client address: {:?}",
        h.fields
    );
    assert_eq!(
        h.all("x-real-ip"),
        [ip.as_str()],
        "X-Real-IP is replaced by the client address"
    );
    assert_eq!(h.all("x-forwarded-proto"), ["http"], "X-Forwarded-Proto is replaced");
    assert_eq!(h.all("host"), ["app.test"], "Host is kept when not configured");
    // Without an incoming value: the client address alone.
    c.send(&get("/h2", "app.test")).await;
    assert_eq!(c.response().await.status(), 200);
    assert_eq!(b.last().head.all("x-forwarded-for"), [ip.as_str()]);
}

/// The same over HTTP/2 (h2c): repeated X-Forwarded-For fields are one
/// list the client address is appended to, spoofed X-Real-IP and
/// X-Forwarded-Proto are replaced, Host comes from :authority.
#[tokio::test]
async fn forwarded_headers_carry_the_client_address_over_h2() {
    let s = Server::start().await;
    let site = http_site(&s, 14, forward_headers(None)).await;
    let (b, _) = site.backend(&s, "a", Reply::Ok).await;
    let ip = site.client_ip(9);
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    let tcp = sock.connect(site.addr).await.unwrap();
    let (mut client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let send = |xff: &[&str]| {
        let mut req = http::Request::get("http://app.test/h").body(()).unwrap();
        for v in xff {
            req.headers_mut().append("x-forwarded-for", v.parse().unwrap());
        }
        req.headers_mut().insert("x-real-ip", "9.9.9.9".parse().unwrap());
        req.headers_mut().insert("x-forwarded-proto", "https".parse().unwrap());
        req
    };
    for (xff, want) in [
        (&["1.2.3.4", "5.6.7.8"][..], format!("1.2.3.4, 5.6.7.8, {ip}")),
        (&["1.2.3.4"][..], format!("1.2.3.4, {ip}")),
        (&[][..], ip.clone()),
    ] {
        let (resp, _) = client.send_request(send(xff), true).unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(5), resp)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(resp.status(), 200);
        let h = b.last().head;
        assert_eq!(h.all("x-forwarded-for").join(", "), want, "{:?}", h.fields);
        assert_eq!(h.all("x-real-ip"), [ip.as_str()]);
        assert_eq!(h.all("x-forwarded-proto"), ["http"]);
        assert_eq!(h.all("host"), ["app.test"]);
    }
}

#[tokio::test]
async fn the_host_header_is_replaced_when_configured() {
    let s = Server::start().await;
    let site = http_site(&s, 13, forward_headers(Some("backend.internal:8080"))).await;
    let (b, _) = site.backend(&s, "a", Reply::Ok).await;
    assert_eq!(fetch(site.addr, &get("/h", "app.test")).await.status(), 200);
    assert_eq!(b.last().head.all("host"), ["backend.internal:8080"]);
}

#[tokio::test]
async fn hop_by_hop_request_headers_are_not_forwarded() {
    let s = Server::start().await;
    let site = http_site(&s, 14, json!({})).await;
    let (b, _) = site.backend(&s, "a", Reply::Ok).await;
    let fields = [
        ("Connection", "keep-alive, X-Foo"),
        ("X-Foo", "secret"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"),
        ("TE", "trailers"),
        ("Upgrade", "foo/1"),
        ("X-Keep", "yes"),
    ];
    let r = fetch(site.addr, &request("GET", "/hop", "app.test", &fields, b"")).await;
    assert_eq!(r.status(), 200, "{}", r.head.start);
    let h = b.last().head;
    assert_no_hop_by_hop(&h, &["x-foo"], "toward the backend");
    assert_eq!(h.get("x-keep"), Some("yes"), "end-to-end fields are forwarded");
}

#[tokio::test]
async fn hop_by_hop_response_headers_are_removed() {
    let s = Server::start().await;
    let site = http_site(&s, 15, json!({})).await;
    let reply = Reply::OkWith(vec![
        ("Connection", "keep-alive, X-Hop"),
        ("X-Hop", "secret"),
        ("Keep-Alive", "timeout=5, max=100"),
        ("Proxy-Connection", "keep-alive"),
        ("Upgrade", "foo/1"),
        ("X-End", "kept"),
    ]);
    site.backend(&s, "a", reply).await;
    let r = fetch(site.addr, &get("/hop", "app.test")).await;
    assert_eq!((r.status(), r.text()), (200, "a".to_string()));
    assert_no_hop_by_hop(&r.head, &["x-hop"], "toward the client");
    assert_eq!(r.head.get("x-end"), Some("kept"), "end-to-end fields are passed on");
}

// ---- errors Weir answers itself --------------------------------------------

#[tokio::test]
async fn no_candidate_answers_503() {
    let s = Server::start().await;
    let site = http_site(&s, 16, json!({})).await;
    let (b, id) = site.backend(&s, "a", Reply::Ok).await;
    assert_eq!(fetch(site.addr, &get("/", "app.test")).await.status(), 200, "control");
    site.set_enabled(&s, &id, false).await;
    let before = b.requests().len();
    let r = fetch(site.addr, &get("/", "app.test")).await;
    assert_status_line(&r, 503, "the only backend is disabled");
    assert!(!r.body.is_empty(), "the 503 carries a short body");
    assert_eq!(b.requests().len(), before, "a disabled backend gets no request");
}

#[tokio::test]
async fn a_backend_closing_without_an_answer_gives_502() {
    let s = Server::start().await;
    let site = http_site(&s, 17, json!({})).await;
    site.backend(&s, "mute", Reply::Close).await;
    let r = fetch(site.addr, &get("/", "app.test")).await;
    assert_status_line(&r, 502, "the backend closed without answering");
}

#[tokio::test]
async fn a_silent_backend_gives_504_after_the_response_header_timeout() {
    let s = Server::start_with_config("[dataplane]\nresponse_header_timeout_ms = 1000\n").await;
    let site = http_site(&s, 18, json!({})).await;
    site.backend(&s, "silent", Reply::Stall).await;
    let started = Instant::now();
    let r = fetch(site.addr, &get("/", "app.test")).await;
    let took = started.elapsed();
    assert_status_line(&r, 504, "the backend never answered");
    assert!(
        (Duration::from_millis(900)..=Duration::from_secs(3)).contains(&took),
        "504 after {took:?}, want 1–3 s (response_header_timeout_ms 1000)"
    );
}

/// [`crate::http_kit::upload_then_read`] on a new connection to `target`;
/// also returns how long it all took.
async fn upload_then_read(target: SocketAddr, head: &str, body_len: usize) -> (String, Duration) {
    let started = Instant::now();
    let c = tokio::net::TcpStream::connect(target).await.expect("connect");
    let got = crate::http_kit::upload_then_read(c, head, body_len).await;
    (got, started.elapsed())
}

/// Weir's own closing answer to a request whose body it does not read
/// (no backend: 503) reaches a client that sends its whole body before
/// reading: Weir lingers, reading and dropping the body, instead of
/// resetting the connection under the client's writes.
#[tokio::test]
async fn an_early_answer_reaches_a_client_still_sending_its_body() {
    let s = Server::start().await;
    let site = http_site(&s, 30, json!({})).await;
    let len = 32 << 20;
    let head = format!("POST /up HTTP/1.1\r\nHost: app.test\r\nContent-Length: {len}\r\n\r\n");
    let (got, _) = upload_then_read(site.addr, &head, len).await;
    assert!(got.starts_with("HTTP/1.1 503 "), "{got:?}");
    assert!(got.contains("Connection: close\r\n"), "{got:?}");
    assert!(got.ends_with("no backend available\n"), "{got:?}");
    // The VServer goes on serving.
    let (_b, _) = site.backend(&s, "a", Reply::Ok).await;
    assert_eq!(fetch(site.addr, &get("/", "app.test")).await.status(), 200);
}

/// A backend that stops taking the request body is given up on at the
/// idle timeout (504), and the answer reaches the client still sending.
#[tokio::test]
async fn a_backend_that_stops_taking_the_body_gives_504_at_the_idle_timeout() {
    let s = Server::start().await;
    let site = http_site(&s, 31, json!({"idle_timeout_s": 2})).await;
    let b = crate::http_kit::deaf_backend("127.71.31.50").await;
    crate::backends::add_backend(&s, &site.lb, &site.vs, b, 1).await;
    let len = 64 << 20;
    let head = format!("POST /up HTTP/1.1\r\nHost: app.test\r\nContent-Length: {len}\r\n\r\n");
    let (got, took) = upload_then_read(site.addr, &head, len).await;
    assert!(got.starts_with("HTTP/1.1 504 "), "{got:?}");
    assert!(got.ends_with("gateway timeout\n"), "{got:?}");
    assert!(
        (Duration::from_millis(1800)..=Duration::from_secs(12)).contains(&took),
        "504 after {took:?} (idle_timeout_s 2)"
    );
}

/// A backend's early answer to an upload (413 before reading the body)
/// reaches the client, rather than a 502 for the body it would not take:
/// whether the backend then closes (the body write fails) or just stops
/// reading (the write stalls for the idle timeout).
#[tokio::test]
async fn a_backends_early_answer_to_an_upload_reaches_the_client() {
    let s = Server::start().await;
    for (i, close) in [(0u8, true), (1, false)] {
        let site = http_site(&s, 32 + i, json!({"idle_timeout_s": 2})).await;
        let b = crate::http_kit::early_413_backend(&format!("127.71.{}.50", 32 + i), close).await;
        crate::backends::add_backend(&s, &site.lb, &site.vs, b, 1).await;
        let len = 32 << 20;
        let head = format!("POST /up HTTP/1.1\r\nHost: app.test\r\nContent-Length: {len}\r\n\r\n");
        let (got, _) = upload_then_read(site.addr, &head, len).await;
        assert!(got.starts_with("HTTP/1.1 413 "), "backend closes: {close}: {got:?}");
        assert!(got.contains("Connection: close\r\n"), "{got:?}");
        assert!(got.ends_with("\r\n\r\ntoo large\n"), "{got:?}");
    }
}

// ---- client timeouts ----------------------------------------------------------

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let s = Server::start().await;
    let site = http_site(&s, 19, json!({"idle_timeout_s": 2})).await;
    site.backend(&s, "a", Reply::Ok).await;
    let mut c = Client::connect(site.addr).await;
    c.send(&get("/", "idle.test")).await;
    assert_eq!(c.response().await.status(), 200);
    let started = Instant::now();
    let closed = c.until_closed(Duration::from_secs(6)).await;
    let took = started.elapsed();
    assert!(
        closed.is_some(),
        "an idle keep-alive connection is still open after {took:?}"
    );
    assert_cut_off_in_time(took, "idle keep-alive connection");
}

/// Connects, writes `head`, then one byte of `drip` every `every`; returns
/// how long after its first byte the connection was closed.
async fn cut_off_after(target: SocketAddr, head: &[u8], drip: &[u8], every: Duration) -> Duration {
    let mut c = Client::connect(target).await;
    let started = Instant::now();
    c.send(head).await;
    for byte in drip {
        if c.until_closed(every).await.is_some() || c.try_send(&[*byte]).await.is_err() {
            return started.elapsed();
        }
    }
    panic!("the slow client was still connected after {:?}", started.elapsed());
}

/// One keep-alive client asking every 400 ms for `total`: every answer must
/// be 200. Returns how many it got.
async fn steady_client(target: SocketAddr, total: Duration) -> usize {
    let mut c = Client::connect(target).await;
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < total {
        c.send(&get("/steady", "steady.test")).await;
        let r = c.response().await;
        assert_eq!(
            r.status(),
            200,
            "a normal client was refused after {:?}",
            started.elapsed()
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    n
}

/// A slow client is cut off 2–4 s after it began while a normal client on
/// the same VServer (idle_timeout_s 2) is served throughout.
async fn slow_client_is_cut_off(net: u8, what: &str, head: &[u8], drip: &[u8], every: Duration) {
    let s = Server::start().await;
    let site = http_site(&s, net, json!({"idle_timeout_s": 2})).await;
    site.backend(&s, "a", Reply::Ok).await;
    let (took, served) = tokio::join!(
        cut_off_after(site.addr, head, drip, every),
        steady_client(site.addr, Duration::from_millis(4500)),
    );
    assert_cut_off_in_time(took, what);
    assert!(served >= 8, "the normal client got only {served} answers in 4.5 s");
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off_while_others_are_served() {
    slow_client_is_cut_off(
        20,
        "one header byte per second",
        b"GET /slow HTTP/1.1\r\nHost: slow.test\r\n",
        b"X-Slow: 1",
        Duration::from_secs(1),
    )
    .await;
}

#[tokio::test]
async fn a_slow_post_is_cut_off_while_others_are_served() {
    slow_client_is_cut_off(
        21,
        "one body byte every 3 s",
        b"POST /upload HTTP/1.1\r\nHost: slow.test\r\nContent-Length: 100\r\n\r\n",
        &[b'x'; 100],
        Duration::from_secs(3),
    )
    .await;
}

/// A backend answering any request with a 64 MiB chunked body, written
/// as fast as the proxy takes it (a write error ends it).
async fn endless_backend(ip: &str) -> SocketAddr {
    use tokio::io::AsyncWriteExt;
    crate::http_kit::raw_backend(ip, |mut s| async move {
        if crate::http_kit::read_head(&mut s).await.is_none() {
            return;
        }
        if s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        let mut chunk = b"10000\r\n".to_vec();
        chunk.extend_from_slice(&[b'x'; 0x10000]);
        chunk.extend_from_slice(b"\r\n");
        for _ in 0..ENDLESS_CHUNKS {
            if s.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = s.write_all(b"0\r\n\r\n").await;
    })
    .await
}

const ENDLESS_CHUNKS: usize = 1024;

/// A client that stops reading a long response is idle (nothing moves
/// either way once the socket buffers are full): it is cut at the idle
/// timeout instead of holding its connection and the backend's for ever.
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_at_the_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start().await;
    let site = http_site(&s, 29, json!({"idle_timeout_s": 2})).await;
    let b = endless_backend("127.71.29.50").await;
    crate::backends::add_backend(&s, &site.lb, &site.vs, b, 1).await;
    let idle_before = s.get(crate::kit::ADMIN, "/v1/system/status").await.body["dataplane"]["idle_closed"]
        .as_u64()
        .unwrap_or(0);
    let mut c = tokio::net::TcpStream::connect(site.addr).await.expect("connect");
    c.write_all(&get("/big", "big.test")).await.expect("send");
    // The socket buffers fill within moments; 2 s later the proxy gives up.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(n @ 1..) = c.read(&mut buf).await {
            got += n;
        }
    })
    .await
    .is_ok();
    let whole = ENDLESS_CHUNKS * 0x10000;
    assert!(ended, "the connection was not closed ({got} bytes read)");
    assert!(
        got < whole,
        "the whole {whole}-byte body arrived: the stalled client was never cut"
    );
    let idle_after = s.get(crate::kit::ADMIN, "/v1/system/status").await.body["dataplane"]["idle_closed"]
        .as_u64()
        .unwrap_or(0);
    assert!(idle_after > idle_before, "counted as an idle close");
    // The VServer still serves.
    let mut c2 = tokio::net::TcpStream::connect(site.addr).await.expect("connect");
    c2.write_all(&get("/big", "big.test")).await.expect("send");
    let mut first = [0u8; 15];
    c2.read_exact(&mut first).await.expect("a new client is answered");
    assert_eq!(&first, b"HTTP/1.1 200 OK");
}

// ---- upgrades, 100-continue, pipelining ----------------------------------------

#[tokio::test]
async fn an_h2c_upgrade_is_not_tunnelled() {
    let s = Server::start().await;
    let site = http_site(&s, 22, json!({})).await;
    let (b, _) = site.backend(&s, "up", Reply::Upgrade).await;
    let mut c = Client::connect(site.addr).await;
    c.send(
        b"GET /h2c HTTP/1.1\r\nHost: up.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
          HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    )
    .await;
    let r = c.response().await;
    assert_ne!(r.status(), 101, "an h2c upgrade must never be switched to");
    assert_eq!(r.status(), 200, "served as a plain HTTP/1.1 request: {}", r.head.start);
    assert_eq!(b.upgrades(), 0, "the backend was asked to upgrade");
    let h = b.last().head;
    assert!(
        h.all("upgrade").is_empty() && h.all("http2-settings").is_empty(),
        "the backend received the h2c upgrade: {:?}",
        h.fields
    );
    // The connection still speaks HTTP/1.1.
    c.send(&get("/after", "up.test")).await;
    assert_eq!(c.response().await.status(), 200);
}

#[tokio::test]
async fn a_websocket_upgrade_holds_client_bytes_until_101() {
    let s = Server::start().await;
    let site = http_site(&s, 23, json!({})).await;
    let (b, _) = site.backend(&s, "ws", Reply::Upgrade).await;
    let mut c = Client::connect(site.addr).await;
    c.send(&[websocket_request(), b"early-bytes".to_vec()].concat()).await;
    let r = c.response().await;
    assert_eq!(r.status(), 101, "{} {:?}", r.head.start, r.text());
    assert!(
        r.head
            .get("upgrade")
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
            && r.head.tokens("connection").iter().any(|t| t == "upgrade"),
        "the 101 names the upgrade: {:?}",
        r.head.fields
    );
    assert_eq!(
        b.early_bytes(),
        0,
        "client bytes reached the backend before it answered 101"
    );
    assert_eq!(
        b.last().head.get("upgrade"),
        Some("websocket"),
        "the upgrade reaches the backend"
    );
    assert_eq!(
        c.read_raw(11).await,
        b"early-bytes",
        "bytes sent with the request are delivered after the 101"
    );
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    for msg in [b"ping".to_vec(), big] {
        c.send(&msg).await;
        assert_eq!(c.read_raw(msg.len()).await, msg, "echo through the upgraded connection");
    }
}

#[tokio::test]
async fn expect_100_continue_gets_an_interim_response() {
    let s = Server::start().await;
    let site = http_site(&s, 24, json!({})).await;
    let (b, _) = site.backend(&s, "a", Reply::Ok).await;
    let mut c = Client::connect(site.addr).await;
    c.send(b"POST /expect HTTP/1.1\r\nHost: e.test\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let interim = c.response().await;
    assert_status_line(&interim, 100, "before the body is sent");
    c.send(b"hello world").await;
    let r = c.response().await;
    assert_eq!(r.status(), 200, "{}", r.head.start);
    assert_eq!(b.last().body, b"hello world", "the backend got the whole body");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let s = Server::start().await;
    let site = http_site(&s, 25, json!({})).await;
    let (a, _) = site.backend(&s, "a", Reply::Ok).await;
    let (b, _) = site.backend(&s, "b", Reply::Ok).await;
    let mut all = get("/first", "pipe.test");
    all.extend(request("POST", "/second", "pipe.test", &[], b"abc"));
    all.extend(get("/third", "pipe.test"));
    let mut c = Client::connect(site.addr).await;
    c.send(&all).await;
    for want in ["/first", "/second", "/third"] {
        let r = c.response().await;
        assert_eq!(r.status(), 200, "{}", r.head.start);
        assert_eq!(r.head.get("x-seen-path"), Some(want), "responses out of order");
    }
    let second: Vec<Vec<u8>> = a
        .requests()
        .into_iter()
        .chain(b.requests())
        .filter(|r| r.head.target() == "/second")
        .map(|r| r.body)
        .collect();
    assert_eq!(
        second,
        [b"abc".to_vec()],
        "the pipelined POST reached a backend once, whole"
    );
}

// ---- streaming and HTTP/2 ---------------------------------------------------

/// The resident set size of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_gib_upload_streams_in_bounded_memory() {
    const SIZE: usize = 1 << 30;
    let s = Server::start().await;
    let site = http_site(&s, 26, json!({})).await;
    let (b, _) = site.backend(&s, "sink", Reply::Ok).await;
    assert_eq!(fetch(site.addr, &get("/warm-up", "up.test")).await.status(), 200);
    let pid = s.pid();
    let base = rss_kib(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while !stop.load(Ordering::SeqCst) {
                peak = peak.max(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        })
    };
    let started = Instant::now();
    let mut c = Client::connect(site.addr).await;
    c.send(format!("POST /upload HTTP/1.1\r\nHost: up.test\r\nContent-Length: {SIZE}\r\n\r\n").as_bytes())
        .await;
    let chunk: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    for _ in 0..SIZE / chunk.len() {
        c.send(&chunk).await;
    }
    let r = c.response().await;
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let peak = sampler.await.unwrap().max(rss_kib(pid));
    eprintln!("1 GiB upload took {took:?}; Weir RSS {base} KiB, peak {peak} KiB");
    assert_eq!(r.status(), 200, "{}", r.head.start);
    assert_eq!(b.last().body_len, SIZE as u64, "the backend got every byte");
    let growth = peak.saturating_sub(base);
    assert!(
        growth < 50 * 1024,
        "Weir's RSS grew by {growth} KiB (from {base} KiB) while streaming 1 GiB"
    );
}

#[tokio::test]
async fn h2c_with_prior_knowledge_reaches_an_http1_backend() {
    let s = Server::start().await;
    let site = http_site(&s, 27, json!({})).await;
    let (b, _) = site.backend(&s, "a", Reply::Ok).await;
    let url = format!("http://{}/x", site.addr);
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new("curl")
            .args(["--http2-prior-knowledge", "-s", "--max-time", "5"])
            .args(["-w", "\n%{http_version} %{response_code}", &url])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("curl finished in time")
    .expect("run curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "a\n2 200",
        "curl over h2c ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let h = b.last().head;
    assert_eq!((h.method(), h.target(), h.version()), ("GET", "/x", "HTTP/1.1"));
}
