//! Test backends on loopback: TCP servers that greet with their name and
//! then echo, and UDP echo servers that prefix replies with their name.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};

use crate::kit::{ADMIN, Server};

/// A TCP backend: on each connection it writes `<name>\n`, then echoes.
pub struct TcpBackend {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    /// Connections currently open.
    pub open: Arc<AtomicUsize>,
}

pub async fn tcp_backend(ip: &str, name: &str) -> TcpBackend {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind(format!("{ip}:0").parse().expect("addr"))
        .expect("bind backend");
    // A deep accept queue: bursts of thousands of connections must not overflow it.
    let l = sock.listen(8192).expect("listen");
    let addr = l.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let (a, o, n) = (accepted.clone(), open.clone(), name.to_string());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            o.fetch_add(1, Ordering::SeqCst);
            let (o, n) = (o.clone(), n.clone());
            tokio::spawn(async move {
                if s.write_all(format!("{n}\n").as_bytes()).await.is_ok() {
                    let mut buf = [0u8; 4096];
                    while let Ok(k) = s.read(&mut buf).await {
                        if k == 0 || s.write_all(&buf[..k]).await.is_err() {
                            break;
                        }
                    }
                }
                o.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    TcpBackend { addr, accepted, open }
}

/// Connects to `target` (from `from` when given) and reads the greeting.
pub async fn greet(target: SocketAddr, from: Option<&str>) -> (String, TcpStream) {
    let s = match from {
        Some(ip) => {
            let sock = tokio::net::TcpSocket::new_v4().expect("socket");
            sock.bind(format!("{ip}:0").parse().expect("addr"))
                .expect("bind client");
            sock.connect(target).await.expect("connect")
        }
        None => TcpStream::connect(target).await.expect("connect"),
    };
    let mut r = BufReader::new(s);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut line))
        .await
        .expect("greeting in time")
        .expect("read");
    (line.trim().to_string(), r.into_inner())
}

/// Names of the backends reached by `n` sequential new connections.
pub async fn tally(target: SocketAddr, n: usize) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for _ in 0..n {
        let (name, _) = greet(target, None).await;
        *m.entry(name).or_insert(0) += 1;
    }
    m
}

/// A UDP backend answering `<name>:<payload>`.
pub async fn udp_backend(ip: &str, name: &str) -> SocketAddr {
    let s = UdpSocket::bind(format!("{ip}:0")).await.expect("bind udp backend");
    let addr = s.local_addr().expect("addr");
    let n = name.to_string();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((k, from)) = s.recv_from(&mut buf).await {
            let mut reply = format!("{n}:").into_bytes();
            reply.extend_from_slice(&buf[..k]);
            let _ = s.send_to(&reply, from).await;
        }
    });
    addr
}

/// The loopback lab: a VPC 127.0.0.0/8 and `subnet` in it (admin-owned).
pub async fn lab(s: &Server, subnet: &str) -> (crate::kit::Resp, crate::kit::Resp) {
    let vpc = s
        .post(ADMIN, "/v1/vpcs", json!({"name": "lab", "cidr": "127.0.0.0/8"}))
        .await;
    vpc.ok(201);
    let sn = s
        .post(
            ADMIN,
            "/v1/subnets",
            json!({"vpc_id": vpc.id(), "name": "sn", "cidr": subnet}),
        )
        .await;
    sn.ok(201);
    (vpc, sn)
}

/// An internal LB (no VServer yet) in `subnet` of the loopback lab.
pub async fn internal_lb(s: &Server, subnet: &str) -> crate::kit::Resp {
    let (vpc, sn) = lab(s, subnet).await;
    let body = json!({"name": "t", "network_type": "internal", "vpc_id": vpc.id(), "subnet_id": sn.id()});
    let lb = s.post(ADMIN, "/v1/load-balancers", body).await;
    lb.ok(201);
    lb
}

/// An LB in its own subnet of 127.0.0.0/8 (so parallel tests never share an
/// address), with a VServer; returns (lb id, lb address, vserver id).
pub async fn lb_with_vserver(
    s: &Server,
    subnet: &str,
    vserver: serde_json::Value,
) -> (String, std::net::IpAddr, String) {
    let lb = internal_lb(s, subnet).await;
    let addr: std::net::IpAddr = lb.body["address"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .expect("lb address");
    let vs = s
        .post_applied(ADMIN, &format!("/v1/load-balancers/{}/vservers", lb.id()), vserver)
        .await;
    vs.ok(201);
    (lb.id(), addr, vs.id())
}

/// Adds a backend by address; waits until applied; returns its id.
pub async fn add_backend(s: &Server, lb: &str, vs: &str, addr: SocketAddr, weight: u32) -> String {
    let r = s
        .post_applied(
            ADMIN,
            &format!("/v1/load-balancers/{lb}/vservers/{vs}/backends"),
            json!({"address": addr.ip().to_string(), "port": addr.port(), "weight": weight}),
        )
        .await;
    r.ok(201);
    r.id()
}

/// A TCP backend that can be stopped (its port then refuses) and started
/// again on the same address; `accepted` counts connections across restarts.
pub struct Killable {
    pub addr: SocketAddr,
    pub name: String,
    pub accepted: Arc<AtomicUsize>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Killable {
    pub async fn start(ip: &str, name: &str) -> Killable {
        let mut k = Killable {
            addr: format!("{ip}:0").parse().expect("addr"),
            name: name.into(),
            accepted: Arc::new(AtomicUsize::new(0)),
            task: None,
        };
        k.restart().await;
        k
    }

    /// (Re)binds the same address and serves `<name>\n` then echo.
    pub async fn restart(&mut self) {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.set_reuseaddr(true).expect("reuseaddr");
        sock.bind(self.addr).expect("bind killable backend");
        let l = sock.listen(1024).expect("listen");
        self.addr = l.local_addr().expect("addr");
        let (a, n) = (self.accepted.clone(), self.name.clone());
        self.task = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut s, _)) = l.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let n = n.clone();
                conns.spawn(async move {
                    if s.write_all(format!("{n}\n").as_bytes()).await.is_ok() {
                        let mut buf = [0u8; 1024];
                        while let Ok(k) = s.read(&mut buf).await {
                            if k == 0 || s.write_all(&buf[..k]).await.is_err() {
                                break;
                            }
                        }
                    }
                });
            }
        }));
    }

    /// Stops listening and closes its connections (the JoinSet is dropped).
    /// Returns once the listener is closed: `abort` only marks the task, and
    /// until the runtime drops it the kernel still completes handshakes into
    /// its backlog (then resets them when it closes), which would cut a
    /// connection started after the kill.
    pub async fn kill(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

/// A tiny HTTP/1.1 server: `GET <path>` answers `status_for(path, host)`.
pub async fn http_backend(ip: &str, status_for: fn(&str, Option<&str>) -> u16) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind(format!("{ip}:0"))
        .await
        .expect("bind http backend");
    let addr = l.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut r = BufReader::new(s);
                let mut line = String::new();
                if r.read_line(&mut line).await.is_err() {
                    return;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let mut host = None;
                loop {
                    let mut h = String::new();
                    match r.read_line(&mut h).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) if h.trim().is_empty() => break,
                        Ok(_) => {
                            if let Some((k, v)) = h.split_once(':')
                                && k.eq_ignore_ascii_case("host")
                            {
                                host = Some(v.trim().to_string());
                            }
                        }
                    }
                }
                let code = status_for(&path, host.as_deref());
                let resp = format!("HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                let _ = r.into_inner().write_all(resp.as_bytes()).await;
            });
        }
    });
    (addr, hits)
}

/// The backend as the API shows it.
pub async fn backend(s: &Server, lb: &str, vs: &str, rs: &str) -> Value {
    s.get(ADMIN, &format!("/v1/load-balancers/{lb}/vservers/{vs}/backends/{rs}"))
        .await
        .body
}

/// Polls until the backend's status is `want`; returns how long it took.
pub async fn until_status(s: &Server, lb: &str, vs: &str, rs: &str, want: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let b = backend(s, lb, vs, rs).await;
        if b["status"] == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "backend {rs} still {} (want {want}): {b}",
            b["status"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
