//! Live changes never drop established connections; many connections leave
//! no descriptor behind.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::backends::{add_backend, greet, lb_with_vserver, tcp_backend};
use crate::kit::{ADMIN, Server};

#[tokio::test]
async fn live_changes_under_load_reset_nothing() {
    let s = Server::start().await;
    let (lb, ip, vs) = lb_with_vserver(&s, "127.60.40.0/24", json!({"protocol": "tcp", "port": 7040})).await;
    let target = SocketAddr::new(ip, 7040);
    let a = tcp_backend("127.61.40.10", "a").await;
    let b = tcp_backend("127.61.40.11", "b").await;
    let c = tcp_backend("127.61.40.12", "c").await;
    let ra = add_backend(&s, &lb, &vs, a.addr, 1).await;
    let rb = add_backend(&s, &lb, &vs, b.addr, 1).await;
    add_backend(&s, &lb, &vs, c.addr, 1).await;
    // A VServer that will be removed while the load runs.
    let doomed = s
        .post_applied(
            ADMIN,
            &format!("/v1/load-balancers/{lb}/vservers"),
            json!({"protocol": "tcp", "port": 7041}),
        )
        .await;
    doomed.ok(201);

    let mut held = Vec::new();
    for _ in 0..200 {
        held.push(greet(target, None).await);
    }

    // New connections keep coming while the configuration changes.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let seen: Arc<Mutex<Vec<(Instant, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let churn = {
        let (stop, failures, seen) = (stop.clone(), failures.clone(), seen.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(30) {
                match tokio::time::timeout(Duration::from_secs(3), async {
                    let mut s = tokio::net::TcpStream::connect(target).await?;
                    let mut buf = [0u8; 2];
                    s.read_exact(&mut buf).await?;
                    std::io::Result::Ok(String::from_utf8_lossy(&buf[..1]).to_string())
                })
                .await
                {
                    Ok(Ok(name)) => seen.lock().await.push((Instant::now(), name)),
                    _ => {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        })
    };

    tokio::time::sleep(Duration::from_millis(200)).await;
    s.patch_applied(
        ADMIN,
        &format!("/v1/load-balancers/{lb}/vservers/{vs}/backends/{ra}"),
        json!({"weight": 5}),
    )
    .await
    .ok(200);
    let r = s
        .patch(
            ADMIN,
            &format!("/v1/load-balancers/{lb}/vservers/{vs}/backends/{rb}"),
            json!({"enabled": false}),
        )
        .await;
    r.ok(200);
    let disabled_at = Instant::now();
    s.wait_applied(r.revision.unwrap()).await;
    s.post_applied(
        ADMIN,
        &format!("/v1/load-balancers/{lb}/vservers"),
        json!({"protocol": "tcp", "port": 7042}),
    )
    .await
    .ok(201);
    s.delete_applied(ADMIN, &format!("/v1/load-balancers/{lb}/vservers/{}", doomed.id()))
        .await;
    s.patch_applied(
        ADMIN,
        &format!("/v1/load-balancers/{lb}/vservers/{vs}"),
        json!({"algorithm": "least_connections"}),
    )
    .await
    .ok(200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    churn.await.unwrap();

    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "new connections failed during changes"
    );
    let seen = seen.lock().await;
    assert!(seen.len() > 20, "the churn made {} connections", seen.len());
    let late_to_b = seen
        .iter()
        .filter(|(t, n)| *t > disabled_at + Duration::from_secs(1) && n == "b")
        .count();
    assert_eq!(
        late_to_b, 0,
        "the disabled backend got new connections more than 1 s after the change"
    );
    // Every established connection still works, including those to the disabled backend.
    for (name, conn) in held.iter_mut() {
        conn.write_all(b"ok?").await.unwrap();
        let mut buf = [0u8; 3];
        tokio::time::timeout(Duration::from_secs(2), conn.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"ok?", "connection to {name}");
    }
    let by: HashMap<&str, usize> = held.iter().fold(HashMap::new(), |mut m, (n, _)| {
        *m.entry(n.as_str()).or_insert(0) += 1;
        m
    });
    assert!(by.get("b").copied().unwrap_or(0) > 0);
    // The removed VServer's port no longer accepts; the new one does (it has
    // no backend, so the proxy resets the connection at once: that is a
    // listener answering, unlike a refusal).
    let removed = tokio::net::TcpStream::connect(SocketAddr::new(ip, 7041)).await;
    assert_eq!(
        removed.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    let added = tokio::net::TcpStream::connect(SocketAddr::new(ip, 7042)).await;
    assert!(
        added
            .as_ref()
            .err()
            .is_none_or(|e| e.kind() != std::io::ErrorKind::ConnectionRefused),
        "{added:?}"
    );
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn ten_thousand_connections_leave_no_descriptor_behind() {
    // Both the proxy and this process hold two descriptors per connection
    // (here: the client and the backend's end). Where the hard limit is too
    // low for 10,000 (some sandboxes cap it at 20,000 and refuse to raise
    // it), hold as many as it allows and say so.
    if rlimit::setrlimit(rlimit::Resource::NOFILE, 65_536, 65_536).is_err() {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
    }
    let limit = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    let n = 10_000usize.min((limit.saturating_sub(1_000) / 2) as usize);
    if n < 10_000 {
        eprintln!("open-files limit {limit}: holding {n} connections instead of 10000");
    }
    let s = Server::start().await;
    let (lb, ip, vs) = lb_with_vserver(&s, "127.60.41.0/24", json!({"protocol": "tcp", "port": 7043})).await;
    let a = tcp_backend("127.61.41.10", "a").await;
    add_backend(&s, &lb, &vs, a.addr, 1).await;
    let target = SocketAddr::new(ip, 7043);
    // Warm up (lazy statics, the runtime's threads) before the baseline.
    drop(greet(target, None).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = open_fds(s.pid());

    let mut conns = Vec::with_capacity(n);
    for i in 0..n as u32 {
        // Spread clients over source addresses so no ephemeral range runs out.
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("127.64.{}.{}:0", i / 250, 1 + i % 250).parse().unwrap())
            .unwrap();
        conns.push(sock.connect(target).await.unwrap());
        if i % 1000 == 999 {
            // Let the proxy and the backend keep up with the accept queues.
            let deadline = Instant::now() + Duration::from_secs(10);
            while a.open.load(Ordering::SeqCst) < (i as usize + 1) * 9 / 10 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while a.open.load(Ordering::SeqCst) < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} reached the backend",
            a.open.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        open_fds(s.pid()) >= baseline + 2 * n,
        "two descriptors per proxied connection"
    );
    drop(conns);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = open_fds(s.pid());
        if now <= baseline && a.open.load(Ordering::SeqCst) == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "descriptors: baseline {baseline}, now {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_deleted_backend_drains_then_closes() {
    let s = Server::start_with_config("[dataplane]\ndrain_s = 1\n").await;
    let (lb, ip, vs) = lb_with_vserver(&s, "127.60.42.0/24", json!({"protocol": "tcp", "port": 7044})).await;
    let a = tcp_backend("127.61.42.10", "a").await;
    let b = tcp_backend("127.61.42.11", "b").await;
    let ra = add_backend(&s, &lb, &vs, a.addr, 1).await;
    add_backend(&s, &lb, &vs, b.addr, 1).await;
    let target = SocketAddr::new(ip, 7044);
    let mut to_a = None;
    for _ in 0..4 {
        let (name, conn) = greet(target, None).await;
        if name == "a" {
            to_a = Some(conn);
        }
    }
    let mut conn = to_a.expect("a connection to a");
    s.delete_applied(ADMIN, &format!("/v1/load-balancers/{lb}/vservers/{vs}/backends/{ra}"))
        .await;
    let deleted_at = Instant::now();
    // Still works during the drain period; new connections avoid it.
    conn.write_all(b"hi").await.unwrap();
    let mut buf = [0u8; 2];
    conn.read_exact(&mut buf).await.unwrap();
    for _ in 0..4 {
        assert_eq!(greet(target, None).await.0, "b");
    }
    // Then it is closed.
    let mut rest = [0u8; 8];
    let r = tokio::time::timeout(Duration::from_secs(4), conn.read(&mut rest))
        .await
        .expect("closed after the drain");
    assert!(matches!(r, Ok(0) | Err(_)));
    let took = deleted_at.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed after {took:?}, before the 1 s drain"
    );
}
