//! Layer 4 through the real binary: schedulers, UDP flows and persistence,
//! idle timeout, PROXY protocol, security groups, bind failures.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use crate::backends::{
    add_backend, greet, internal_lb, lab, lb_with_vserver, tally, tcp_backend, udp_backend, until_status,
};
use crate::kit::{ADMIN, Server};

#[tokio::test]
async fn weighted_round_robin_is_exact() {
    let s = Server::start().await;
    let (lb, ip, vs) = lb_with_vserver(&s, "127.60.1.0/24", json!({"protocol": "tcp", "port": 7001})).await;
    let a = tcp_backend("127.61.1.10", "a").await;
    let b = tcp_backend("127.61.1.11", "b").await;
    add_backend(&s, &lb, &vs, a.addr, 1).await;
    add_backend(&s, &lb, &vs, b.addr, 3).await;
    let v = s.get(ADMIN, &format!("/v1/load-balancers/{lb}/vservers/{vs}")).await;
    assert_eq!(v.ok(200)["status"], "running");
    assert_eq!(
        s.get(ADMIN, &format!("/v1/load-balancers/{lb}")).await.body["status"],
        "active"
    );
    let t = tally(SocketAddr::new(ip, 7001), 400).await;
    assert_eq!((t.get("a").copied(), t.get("b").copied()), (Some(100), Some(300)));
}

#[tokio::test]
async fn least_connections_picks_the_emptiest_by_weight() {
    let s = Server::start().await;
    let (lb, ip, vs) = lb_with_vserver(
        &s,
        "127.60.2.0/24",
        json!({"protocol": "tcp", "port": 7002, "algorithm": "least_connections", "health_check": {"interval_s": 300}}),
    )
    .await;
    let a = tcp_backend("127.61.2.10", "a").await;
    let b = tcp_backend("127.61.2.11", "b").await;
    add_backend(&s, &lb, &vs, a.addr, 1).await;
    add_backend(&s, &lb, &vs, b.addr, 2).await;
    let target = SocketAddr::new(ip, 7002);
    let mut held = Vec::new();
    for _ in 0..30 {
        held.push(greet(target, None).await);
    }
    assert_eq!((a.open.load(Ordering::SeqCst), b.open.load(Ordering::SeqCst)), (10, 20));
    // Close b's connections: the next ones go to b until it catches up by weight.
    let (from_b, rest): (Vec<_>, Vec<_>) = held.into_iter().partition(|(n, _)| n == "b");
    drop(from_b);
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.open.load(Ordering::SeqCst) > 0 {
        assert!(Instant::now() < deadline, "b's connections did not close");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut next = Vec::new();
    for _ in 0..20 {
        next.push(greet(target, None).await);
    }
    assert!(
        next.iter().all(|(n, _)| n == "b"),
        "all 20 new connections go to the emptier b"
    );
    drop(rest);
}

#[tokio::test]
async fn source_ip_hashing_is_sticky_and_consistent() {
    let s = Server::start().await;
    let (lb, ip, vs) = lb_with_vserver(
        &s,
        "127.60.3.0/24",
        json!({"protocol": "tcp", "port": 7003, "algorithm": "source_ip"}),
    )
    .await;
    for i in 0..4 {
        let b = tcp_backend(&format!("127.61.3.{}", 10 + i), &format!("b{i}")).await;
        add_backend(&s, &lb, &vs, b.addr, 1).await;
    }
    let target = SocketAddr::new(ip, 7003);
    let clients: Vec<String> = (0..1000)
        .map(|i| format!("127.62.{}.{}", i / 200, 1 + i % 200))
        .collect();
    let mut first = HashMap::new();
    for c in &clients {
        let (name, _) = greet(target, Some(c)).await;
        first.insert(c.clone(), name);
    }
    let used: HashSet<&String> = first.values().collect();
    assert_eq!(used.len(), 4, "all four backends get clients");
    for c in clients.iter().step_by(7) {
        assert_eq!(greet(target, Some(c)).await.0, first[c], "client {c} keeps its backend");
    }
    let b4 = tcp_backend("127.61.3.20", "b4").await;
    add_backend(&s, &lb, &vs, b4.addr, 1).await;
    let mut moved = 0;
    for c in &clients {
        let (name, _) = greet(target, Some(c)).await;
        if name != first[c] {
            assert_eq!(name, "b4", "a client only moves to the new backend");
            moved += 1;
        }
    }
    assert!((100..=300).contains(&moved), "moved {moved} of 1000");
}

#[tokio::test]
async fn udp_echo_persistence_and_flow_expiry() {
    let s = Server::start().await;
    // Persistence off: a flow (client ip:port) keeps its backend while alive.
    let (lb, ip, vs) = lb_with_vserver(
        &s,
        "127.60.4.0/24",
        json!({"protocol": "udp", "port": 5353, "idle_timeout_s": 1}),
    )
    .await;
    let a = udp_backend("127.61.4.10", "a").await;
    let b = udp_backend("127.61.4.11", "b").await;
    add_backend(&s, &lb, &vs, a, 1).await;
    add_backend(&s, &lb, &vs, b, 1).await;
    let target = SocketAddr::new(ip, 5353);
    let c = UdpSocket::bind("127.63.4.1:0").await.unwrap();
    let ask = |q: &'static str| {
        let c = &c;
        async move {
            c.send_to(q.as_bytes(), target).await.unwrap();
            let mut buf = [0u8; 512];
            let (n, from) = tokio::time::timeout(Duration::from_secs(3), c.recv_from(&mut buf))
                .await
                .expect("reply")
                .unwrap();
            assert_eq!(from, target, "replies come from the LB address");
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let (name, echo) = text.split_once(':').unwrap();
            assert_eq!(echo, q);
            name.to_string()
        }
    };
    let first = ask("q1").await;
    for _ in 0..5 {
        assert_eq!(ask("again").await, first, "the flow keeps its backend");
    }
    // Idle past the timeout: the flow expires; the next datagram is a new
    // flow, which round robin sends to the other backend.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let second = ask("q2").await;
    assert_ne!(second, first, "a new flow after expiry");
    let st = s.get(ADMIN, "/v1/system/status").await;
    assert!(st.ok(200)["dataplane"]["udp_flows_expired"].as_u64().unwrap_or(0) >= 1);

    // source_ip persistence: every port of one client IP goes to one backend.
    let (lb2, ip2, vs2) = lb_with_vserver(
        &s,
        "127.60.5.0/24",
        json!({"protocol": "udp", "port": 5354, "persistence": {"mode": "source_ip"}}),
    )
    .await;
    for i in 0..3 {
        let addr = udp_backend(&format!("127.61.5.{}", 10 + i), &format!("u{i}")).await;
        add_backend(&s, &lb2, &vs2, addr, 1).await;
    }
    let target2 = SocketAddr::new(ip2, 5354);
    for client_ip in ["127.63.5.1", "127.63.5.2", "127.63.5.3"] {
        let mut names = HashSet::new();
        for _ in 0..6 {
            let c = UdpSocket::bind(format!("{client_ip}:0")).await.unwrap();
            c.send_to(b"x", target2).await.unwrap();
            let mut buf = [0u8; 64];
            let (n, _) = tokio::time::timeout(Duration::from_secs(3), c.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
            names.insert(
                String::from_utf8_lossy(&buf[..n])
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        assert_eq!(
            names.len(),
            1,
            "{client_ip} stuck to one backend across ports: {names:?}"
        );
    }
}

#[tokio::test]
async fn idle_timeout_closes_idle_connections_only() {
    let s = Server::start().await;
    let (lb, ip, vs) = lb_with_vserver(
        &s,
        "127.60.6.0/24",
        json!({"protocol": "tcp", "port": 7006, "idle_timeout_s": 2}),
    )
    .await;
    let a = tcp_backend("127.61.6.10", "a").await;
    add_backend(&s, &lb, &vs, a.addr, 1).await;
    let target = SocketAddr::new(ip, 7006);

    let (_, mut idle) = greet(target, None).await;
    let (_, mut busy) = greet(target, None).await;
    let started = Instant::now();
    let busy_task = tokio::spawn(async move {
        for _ in 0..8 {
            busy.write_all(b"ping").await.unwrap();
            let mut buf = [0u8; 4];
            busy.read_exact(&mut buf).await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        busy
    });
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(4), idle.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    let took = started.elapsed();
    assert_eq!(n, 0, "EOF on the idle connection");
    assert!(
        took >= Duration::from_millis(1900) && took <= Duration::from_secs(3),
        "closed after {took:?}"
    );
    // The backend side is closed too.
    let deadline = Instant::now() + Duration::from_secs(2);
    while a.open.load(Ordering::SeqCst) > 1 {
        assert!(
            Instant::now() < deadline,
            "backend side of the idle connection still open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The active one lived on for 4 s and still works.
    let mut busy = busy_task.await.unwrap();
    busy.write_all(b"last").await.unwrap();
    let mut buf = [0u8; 4];
    busy.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"last");
}

#[tokio::test]
async fn proxy_protocol_headers_are_byte_exact() {
    let s = Server::start().await;
    for (i, version) in ["v1", "v2"].iter().enumerate() {
        let port = 7010 + i as u16;
        let (lb, ip, vs) = lb_with_vserver(
            &s,
            &format!("127.60.{}.0/24", 10 + i),
            json!({"protocol": "tcp", "port": port, "proxy_protocol": version}),
        )
        .await;
        // A backend that records the first bytes it receives.
        let l = TcpListener::bind(format!("127.61.{}.10:0", 10 + i)).await.unwrap();
        let baddr = l.local_addr().unwrap();
        add_backend(&s, &lb, &vs, baddr, 1).await;
        let client_ip = format!("127.63.{}.7", 10 + i);
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{client_ip}:0").parse().unwrap()).unwrap();
        let mut c = sock.connect(SocketAddr::new(ip, port)).await.unwrap();
        let caddr = c.local_addr().unwrap();
        c.write_all(b"hello").await.unwrap();
        let expected: Vec<u8> = if *version == "v1" {
            format!("PROXY TCP4 {} {} {} {}\r\n", caddr.ip(), ip, caddr.port(), port).into_bytes()
        } else {
            let mut v = vec![
                0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 12,
            ];
            let (std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst)) = (caddr.ip(), ip) else {
                panic!("ipv4")
            };
            v.extend_from_slice(&src.octets());
            v.extend_from_slice(&dst.octets());
            v.extend_from_slice(&caddr.port().to_be_bytes());
            v.extend_from_slice(&port.to_be_bytes());
            v
        };
        // Health probes also connect (and close without a byte): skip them.
        let got = loop {
            let (mut up, _) = l.accept().await.unwrap();
            let mut got = vec![0u8; expected.len() + 5];
            match tokio::time::timeout(Duration::from_secs(3), up.read_exact(&mut got))
                .await
                .unwrap()
            {
                Ok(_) => break got,
                Err(_) => continue,
            }
        };
        assert_eq!(&got[..expected.len()], &expected[..], "{version} header");
        assert_eq!(&got[expected.len()..], b"hello");
    }
}

#[tokio::test]
async fn security_group_denies_a_single_address() {
    let s = Server::start_with_config("eip_pool = [\"127.0.21.0/24\"]\n").await;
    let (vpc, sn) = lab(&s, "127.60.20.0/24").await;
    let sg = s
        .post(
            ADMIN,
            "/v1/security-groups",
            json!({"name": "web", "rules": [
                {"priority": 1, "action": "deny", "protocol": "any", "ports": "all", "source": "127.63.20.66/32"},
                {"priority": 2, "action": "allow", "protocol": "tcp", "ports": "7020", "source": "127.0.0.0/8"}
            ]}),
        )
        .await;
    sg.ok(201);
    let lb = s
        .post(
            ADMIN,
            "/v1/load-balancers",
            json!({"name": "ext", "network_type": "external", "vpc_id": vpc.id(), "subnet_id": sn.id(), "security_group_id": sg.id()}),
        )
        .await;
    assert_eq!(lb.ok(201)["address"], "127.0.21.1");
    let vs = s
        .post_applied(
            ADMIN,
            &format!("/v1/load-balancers/{}/vservers", lb.id()),
            json!({"protocol": "tcp", "port": 7020, "health_check": {"interval_s": 300}}),
        )
        .await;
    let a = tcp_backend("127.61.20.10", "a").await;
    let rs = add_backend(&s, &lb.id(), &vs.id(), a.addr, 1).await;
    // The first health probe (run at once) connects to the backend too:
    // it must be done before the backend's connections are counted.
    until_status(&s, &lb.id(), &vs.id(), &rs, "valid", Duration::from_secs(5)).await;
    let target: SocketAddr = "127.0.21.1:7020".parse().unwrap();
    assert_eq!(greet(target, Some("127.63.20.65")).await.0, "a");
    // The denied client: closed at once, the backend never sees it.
    let before = a.accepted.load(Ordering::SeqCst);
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.63.20.66:0".parse().unwrap()).unwrap();
    // Reset at once: either the connect already sees it, or the first read does.
    if let Ok(mut c) = sock.connect(target).await {
        let mut buf = [0u8; 8];
        let r = tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf))
            .await
            .expect("closed at once");
        assert!(matches!(r, Ok(0) | Err(_)), "denied connection must be closed");
    }
    assert_eq!(a.accepted.load(Ordering::SeqCst), before);
    let st = s.get(ADMIN, "/v1/system/status").await;
    assert_eq!(
        st.ok(200)["dataplane"]["acl_denied"],
        1,
        "the denied connection is counted"
    );
    // Others still get through, and a rule change applies to new connections.
    assert_eq!(greet(target, Some("127.63.20.67")).await.0, "a");
    s.patch_applied(
        ADMIN,
        &format!("/v1/security-groups/{}", sg.id()),
        json!({"rules": [
            {"priority": 2, "action": "allow", "protocol": "tcp", "ports": "7020", "source": "127.0.0.0/8"}
        ]}),
    )
    .await
    .ok(200);
    assert_eq!(greet(target, Some("127.63.20.66")).await.0, "a");
}

#[tokio::test]
async fn a_bind_failure_is_visible_in_the_vserver() {
    let s = Server::start().await;
    let lb = internal_lb(&s, "127.60.30.0/24").await;
    // Something else holds the port on the LB address.
    let squatter = std::net::TcpListener::bind("127.60.30.1:7030").unwrap();
    let vs = s
        .post_applied(
            ADMIN,
            &format!("/v1/load-balancers/{}/vservers", lb.id()),
            json!({"protocol": "tcp", "port": 7030}),
        )
        .await;
    let v = s
        .get(ADMIN, &format!("/v1/load-balancers/{}/vservers/{}", lb.id(), vs.id()))
        .await;
    assert_eq!(v.ok(200)["status"], "error");
    let msg = v.body["status_message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("127.60.30.1:7030") && msg.to_lowercase().contains("in use"),
        "{msg}"
    );
    // Once the address is free, the data plane binds it without an API call.
    drop(squatter);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = s
            .get(ADMIN, &format!("/v1/load-balancers/{}/vservers/{}", lb.id(), vs.id()))
            .await;
        if v.body["status"] == "running" {
            assert!(v.body["status_message"].is_null());
            break;
        }
        assert!(Instant::now() < deadline, "still {}", v.body["status"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Listening now: with no backend the proxy resets at once, which is a
    // listener answering (a refusal would mean nothing is bound).
    let r = tokio::net::TcpStream::connect("127.60.30.1:7030").await;
    assert!(
        r.as_ref()
            .err()
            .is_none_or(|e| e.kind() != std::io::ErrorKind::ConnectionRefused),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_full_udp_flow_table_drops_new_sources_and_counts_them() {
    let s = Server::start_with_config("[dataplane]\nudp_max_flows = 2\n").await;
    let (lb, ip, vs) = lb_with_vserver(&s, "127.60.50.0/24", json!({"protocol": "udp", "port": 5360})).await;
    let a = udp_backend("127.61.50.10", "a").await;
    add_backend(&s, &lb, &vs, a, 1).await;
    let target = SocketAddr::new(ip, 5360);
    let mut answered = 0;
    let mut socks = Vec::new();
    for i in 0..3 {
        let c = UdpSocket::bind(format!("127.63.50.{}:0", i + 1)).await.unwrap();
        c.send_to(b"x", target).await.unwrap();
        let mut buf = [0u8; 16];
        if tokio::time::timeout(Duration::from_millis(500), c.recv_from(&mut buf))
            .await
            .is_ok()
        {
            answered += 1;
        }
        socks.push(c);
    }
    assert_eq!(answered, 2, "two flows fit, the third source is dropped");
    let st = s.get(ADMIN, "/v1/system/status").await;
    assert_eq!(st.ok(200)["dataplane"]["udp_table_full"], 1);
    // Existing flows keep working.
    socks[0].send_to(b"y", target).await.unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), socks[0].recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"a:y");
}

/// 8 MiB up, half-close, 8 MiB down: byte-exact through the relay, with and
/// without splice(2).
#[tokio::test]
async fn bulk_both_ways_with_half_close_copy_and_splice() {
    for (i, splice) in [false, true].into_iter().enumerate() {
        let s = Server::start_with_config(&format!("[dataplane]\nsplice = {splice}\n")).await;
        let subnet = format!("127.60.{}.0/24", 70 + i);
        let (lb, ip, vs) = lb_with_vserver(
            &s,
            &subnet,
            json!({"protocol": "tcp", "port": 7070, "health_check": {"interval_s": 300}}),
        )
        .await;
        // The backend reads until EOF, then answers with a pattern of the same length.
        let l = TcpListener::bind(format!("127.61.{}.10:0", 70 + i)).await.unwrap();
        let baddr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut c, _)) = l.accept().await else { return };
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    if c.read_to_end(&mut got).await.is_err() || got.is_empty() {
                        return; // a health probe
                    }
                    let ok = got.iter().enumerate().all(|(k, b)| *b == (k % 251) as u8);
                    let reply: Vec<u8> = (0..got.len()).map(|k| if ok { (k % 241) as u8 } else { 0 }).collect();
                    let _ = c.write_all(&reply).await;
                });
            }
        });
        add_backend(&s, &lb, &vs, baddr, 1).await;
        let n = 8 << 20;
        let data: Vec<u8> = (0..n).map(|k| (k % 251) as u8).collect();
        let mut c = tokio::net::TcpStream::connect(SocketAddr::new(ip, 7070)).await.unwrap();
        let (mut r, mut w) = c.split();
        let send = async {
            w.write_all(&data).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let recv = async {
            let mut back = Vec::with_capacity(n);
            r.read_to_end(&mut back).await.unwrap();
            back
        };
        let ((), back) = tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(send, recv) })
            .await
            .unwrap();
        assert_eq!(back.len(), n, "splice={splice}");
        assert!(
            back.iter().enumerate().all(|(k, b)| *b == (k % 241) as u8),
            "splice={splice}: reply corrupted"
        );
    }
}
