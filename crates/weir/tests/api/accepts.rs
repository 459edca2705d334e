//! When connections are accepted: http and https listeners only once the
//! client's first bytes are in (TCP_DEFER_ACCEPT), tcp listeners at once, so
//! server-first protocols (SMTP, SSH banners) never wait for the kernel.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::backends::{add_backend, greet, lb_with_vserver, tcp_backend};
use crate::http_kit::{Client, HttpBackend, Reply, get};
use crate::kit::{ADMIN, Server};

async fn accepted(s: &Server) -> u64 {
    s.get(ADMIN, "/v1/system/status").await.body["dataplane"]["tcp_accepted"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn http_accepts_wait_for_the_request_and_tcp_ones_do_not() {
    let s = Server::start().await;
    let (lb, ip, vs) = lb_with_vserver(
        &s,
        "127.124.1.0/24",
        json!({"protocol": "http", "port": 8080, "health_check": {"interval_s": 300}}),
    )
    .await;
    let web = HttpBackend::start("127.124.2.10", "web", Reply::Ok).await;
    add_backend(&s, &lb, &vs, web.addr, 1).await;
    let http = std::net::SocketAddr::new(ip, 8080);

    // A connection that has sent nothing is still the kernel's (the kernel
    // holds it for at least a second) ...
    let before = accepted(&s).await;
    let mut idle = TcpStream::connect(http).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(accepted(&s).await, before, "accepted before its first byte");
    // ... and is accepted and served as soon as its request is in.
    idle.write_all(&get("/", "shop.example")).await.unwrap();
    let r = Client::over(idle).response().await;
    assert_eq!(r.status(), 200);
    assert_eq!(accepted(&s).await, before + 1);

    // A tcp VServer on the same LB: a server-first backend's greeting comes
    // through without the client sending a byte, well before the kernel's
    // one-second hold of a deferred accept would end.
    let vs = s
        .post_applied(
            ADMIN,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "tcp", "port": 2525, "health_check": {"interval_s": 300}}),
        )
        .await;
    vs.ok(201);
    let smtp = tcp_backend("127.124.2.11", "220 mail").await;
    add_backend(&s, &lb, &vs.id(), smtp.addr, 1).await;
    let t0 = Instant::now();
    let (greeting, _) = greet(std::net::SocketAddr::new(ip, 2525), None).await;
    assert_eq!(greeting, "220 mail");
    assert!(
        t0.elapsed() < Duration::from_millis(900),
        "a tcp listener deferred its accept ({:?})",
        t0.elapsed()
    );
}
