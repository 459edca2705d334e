//! Health checks through the real binary: ejection and re-admission under
//! load, HTTP checks with Host, UDP checks, VServer colours, disabled
//! backends not probed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::sync::Mutex;

use crate::backends::{Killable, add_backend, backend, http_backend, lb_with_vserver, udp_backend, until_status};
use crate::kit::{ADMIN, Server};

#[tokio::test]
async fn a_dead_backend_is_ejected_and_readmitted_without_failed_requests() {
    let s = Server::start().await;
    let (lb, ip, vs) = lb_with_vserver(
        &s,
        "127.60.60.0/24",
        json!({"protocol": "tcp", "port": 7060, "health_check": {"interval_s": 1, "timeout_s": 1, "healthy_threshold": 2, "unhealthy_threshold": 2}}),
    )
    .await;
    let mut bs = Vec::new();
    let mut ids = Vec::new();
    for i in 0..3 {
        let k = Killable::start(&format!("127.61.60.{}", 10 + i), &format!("b{i}")).await;
        ids.push(add_backend(&s, &lb, &vs, k.addr, 1).await);
        bs.push(k);
    }
    for id in &ids {
        until_status(&s, &lb, &vs, id, "valid", Duration::from_secs(5)).await;
    }
    assert_eq!(
        s.get(ADMIN, &format!("/v1/load-balancers/{lb}/vservers/{vs}"))
            .await
            .body["health"],
        "all_healthy"
    );

    let target = SocketAddr::new(ip, 7060);
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let seen: Arc<Mutex<Vec<(Instant, String)>>> = Arc::new(Mutex::new(Vec::new()));
    // While `hold` is set the load opens no connection (and `held` says
    // none is in flight), so the kill below cannot cut one it already
    // carries: what is under test is that new connections never fail.
    let hold = Arc::new(AtomicBool::new(false));
    let held = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, failures, seen) = (stop.clone(), failures.clone(), seen.clone());
        let (hold, held) = (hold.clone(), held.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(30) {
                if hold.load(Ordering::SeqCst) {
                    held.store(true, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                held.store(false, Ordering::SeqCst);
                let r = tokio::time::timeout(Duration::from_secs(3), async {
                    let mut c = tokio::net::TcpStream::connect(target).await?;
                    let mut buf = [0u8; 3];
                    c.read_exact(&mut buf).await?;
                    std::io::Result::Ok(String::from_utf8_lossy(&buf[..2]).to_string())
                })
                .await;
                match r {
                    Ok(Ok(name)) => seen.lock().await.push((Instant::now(), name)),
                    _ => {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    hold.store(true, Ordering::SeqCst);
    while !held.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    bs[1].kill().await;
    hold.store(false, Ordering::SeqCst);
    let took = until_status(&s, &lb, &vs, &ids[1], "invalid", Duration::from_secs(4)).await;
    assert!(
        took <= Duration::from_secs(3),
        "invalid after {took:?} (interval 1 s × 2 + 1 s)"
    );
    let failed_at_invalid = s.get(ADMIN, "/v1/system/status").await.body["dataplane"]["connect_failed"].clone();
    let b = backend(&s, &lb, &vs, &ids[1]).await;
    assert_eq!(b["last_check"]["ok"], false);
    assert!(
        b["last_check"]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("refused"),
        "{b}"
    );
    assert_eq!(
        s.get(ADMIN, &format!("/v1/load-balancers/{lb}/vservers/{vs}"))
            .await
            .body["health"],
        "partially_healthy"
    );
    // Once invalid, the proxy stops trying it: no more failed connects while
    // the load keeps running.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let st = s.get(ADMIN, "/v1/system/status").await;
    assert_eq!(
        st.body["dataplane"]["connect_failed"], failed_at_invalid,
        "connects to the invalid backend"
    );

    bs[1].restart().await;
    let took = until_status(&s, &lb, &vs, &ids[1], "valid", Duration::from_secs(4)).await;
    assert!(
        took <= Duration::from_secs(3),
        "valid again after {took:?} (interval 1 s × 2 + 1 s)"
    );
    let valid_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();

    assert_eq!(failures.load(Ordering::SeqCst), 0, "clients saw failures");
    let seen = seen.lock().await;
    let after: HashMap<&str, usize> =
        seen.iter()
            .filter(|(t, _)| *t > valid_at)
            .fold(HashMap::new(), |mut m, (_, n)| {
                *m.entry(n.as_str()).or_insert(0) += 1;
                m
            });
    assert!(
        after.get("b1").copied().unwrap_or(0) > 0,
        "re-admitted backend gets traffic again: {after:?}"
    );
}

#[tokio::test]
async fn http_checks_use_the_domain_and_the_path() {
    let s = Server::start().await;
    fn app(path: &str, host: Option<&str>) -> u16 {
        match (path, host) {
            ("/broken", _) => 500,
            (_, Some("app.example")) => 200,
            _ => 400,
        }
    }
    let (addr, _) = http_backend("127.61.61.10", app).await;
    let mk = |domain: Option<&str>, path: &str| {
        let mut hc = json!({"type": "http", "path": path, "interval_s": 1, "timeout_s": 1});
        if let Some(d) = domain {
            hc["domain"] = json!(d);
        }
        hc
    };
    let (lb, _, vs_ok) = lb_with_vserver(
        &s,
        "127.60.61.0/24",
        json!({"protocol": "http", "port": 7061, "health_check": mk(Some("app.example"), "/")}),
    )
    .await;
    let rs_ok = add_backend(&s, &lb, &vs_ok, addr, 1).await;
    let vs_nohost = s
        .post_applied(
            ADMIN,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "http", "port": 7062, "health_check": mk(None, "/")}),
        )
        .await
        .id();
    let rs_nohost = add_backend(&s, &lb, &vs_nohost, addr, 1).await;
    let vs_500 = s
        .post_applied(
            ADMIN,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "http", "port": 7063, "health_check": mk(Some("app.example"), "/broken")}),
        )
        .await
        .id();
    let rs_500 = add_backend(&s, &lb, &vs_500, addr, 1).await;

    until_status(&s, &lb, &vs_ok, &rs_ok, "valid", Duration::from_secs(5)).await;
    until_status(&s, &lb, &vs_nohost, &rs_nohost, "invalid", Duration::from_secs(5)).await;
    assert_eq!(
        backend(&s, &lb, &vs_nohost, &rs_nohost).await["last_check"]["detail"],
        "HTTP 400"
    );
    until_status(&s, &lb, &vs_500, &rs_500, "invalid", Duration::from_secs(5)).await;
    assert_eq!(
        backend(&s, &lb, &vs_500, &rs_500).await["last_check"]["detail"],
        "HTTP 500"
    );
    // Configuring the domain makes the Host-checking backend healthy: re-probed at once.
    s.patch_applied(
        ADMIN,
        &format!("/v1/load-balancers/{lb}/vservers/{vs_nohost}"),
        json!({"health_check": {"domain": "app.example"}}),
    )
    .await
    .ok(200);
    until_status(&s, &lb, &vs_nohost, &rs_nohost, "valid", Duration::from_secs(5)).await;
}

#[tokio::test]
async fn udp_checks_detect_a_closed_port() {
    let s = Server::start().await;
    let (lb, _, vs) = lb_with_vserver(
        &s,
        "127.60.62.0/24",
        json!({"protocol": "udp", "port": 5370, "health_check": {"interval_s": 1, "timeout_s": 1, "unhealthy_threshold": 2}}),
    )
    .await;
    let open = udp_backend("127.61.62.10", "open").await;
    // A closed port: bind, note the port, close.
    let closed = {
        let sock = std::net::UdpSocket::bind("127.61.62.11:0").unwrap();
        sock.local_addr().unwrap()
    };
    let rs_open = add_backend(&s, &lb, &vs, open, 1).await;
    let rs_closed = add_backend(&s, &lb, &vs, closed, 1).await;
    until_status(&s, &lb, &vs, &rs_closed, "invalid", Duration::from_secs(5)).await;
    // The open one stays valid across several intervals.
    until_status(&s, &lb, &vs, &rs_open, "valid", Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(backend(&s, &lb, &vs, &rs_open).await["status"], "valid");
    assert_eq!(
        s.get(ADMIN, &format!("/v1/load-balancers/{lb}/vservers/{vs}"))
            .await
            .body["health"],
        "partially_healthy"
    );
}

#[tokio::test]
async fn vserver_health_goes_red_yellow_green_and_disabled_backends_are_not_probed() {
    let s = Server::start().await;
    let (lb, _, vs) = lb_with_vserver(
        &s,
        "127.60.63.0/24",
        json!({"protocol": "tcp", "port": 7064, "health_check": {"interval_s": 1, "timeout_s": 1, "healthy_threshold": 1, "unhealthy_threshold": 1}}),
    )
    .await;
    let health = || async {
        s.get(ADMIN, &format!("/v1/load-balancers/{lb}/vservers/{vs}"))
            .await
            .body["health"]
            .clone()
    };
    assert_eq!(health().await, "all_unhealthy", "no backends: red");
    let mut a = Killable::start("127.61.63.10", "a").await;
    let mut b = Killable::start("127.61.63.11", "b").await;
    a.kill().await;
    b.kill().await;
    let ra = add_backend(&s, &lb, &vs, a.addr, 1).await;
    let rb = add_backend(&s, &lb, &vs, b.addr, 1).await;
    until_status(&s, &lb, &vs, &ra, "invalid", Duration::from_secs(4)).await;
    until_status(&s, &lb, &vs, &rb, "invalid", Duration::from_secs(4)).await;
    assert_eq!(health().await, "all_unhealthy");
    a.restart().await;
    until_status(&s, &lb, &vs, &ra, "valid", Duration::from_secs(4)).await;
    assert_eq!(health().await, "partially_healthy");
    b.restart().await;
    until_status(&s, &lb, &vs, &rb, "valid", Duration::from_secs(4)).await;
    assert_eq!(health().await, "all_healthy");

    // Disabled: no more probes reach it.
    s.patch_applied(
        ADMIN,
        &format!("/v1/load-balancers/{lb}/vservers/{vs}/backends/{rb}"),
        json!({"enabled": false}),
    )
    .await
    .ok(200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = b.accepted.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        b.accepted.load(Ordering::SeqCst),
        before,
        "a disabled backend is not probed"
    );
    // Re-enabled: probed at once.
    s.patch_applied(
        ADMIN,
        &format!("/v1/load-balancers/{lb}/vservers/{vs}/backends/{rb}"),
        json!({"enabled": true}),
    )
    .await
    .ok(200);
    let deadline = Instant::now() + Duration::from_millis(800);
    while b.accepted.load(Ordering::SeqCst) == before {
        assert!(Instant::now() < deadline, "a re-enabled backend is probed at once");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
