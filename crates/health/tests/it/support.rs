//! Test backends (counting TCP, tiny HTTP, UDP echo/silent) and bounded waits.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use weir_health::{Probe, Target};

/// Polls `cond` every 5 ms until it holds; panics after `bound`. Returns the time it took.
pub async fn eventually(what: &str, bound: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        assert!(start.elapsed() < bound, "not within {bound:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn target(id: &str, addr: SocketAddr, probe: Probe, interval_ms: u64) -> Target {
    Target {
        backend_id: id.to_string(),
        addr,
        probe,
        interval: Duration::from_millis(interval_ms),
        timeout: Duration::from_millis(interval_ms.min(300) * 3 / 4),
        healthy_threshold: 2,
        unhealthy_threshold: 3,
    }
}

/// An address on loopback where nothing listens (a port just released).
pub async fn closed_tcp_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// A TCP backend that accepts, counts and closes connections.
pub struct Counting {
    pub addr: SocketAddr,
    count: Arc<AtomicUsize>,
    /// The accept loop (`None` for a [`Counting::threaded`] one).
    task: Option<JoinHandle<()>>,
}

impl Counting {
    pub async fn start() -> Counting {
        Counting::on("127.0.0.1:0".parse().unwrap()).await
    }

    pub async fn on(addr: SocketAddr) -> Counting {
        let l = TcpListener::bind(addr).await.unwrap();
        let addr = l.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Ok((s, _)) = l.accept().await {
                    c.fetch_add(1, Ordering::SeqCst);
                    drop(s);
                }
            }
        });
        Counting {
            addr,
            count,
            task: Some(task),
        }
    }

    /// Accepts on its own OS thread with a deep accept queue, so a test
    /// runtime busy with thousands of probe tasks cannot starve it into
    /// overflowing its accept queue (which the kernel answers by dropping SYNs).
    /// The thread lives until the test process exits.
    pub fn threaded() -> Counting {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.set_reuse_address(true).unwrap();
        sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        sock.listen(4096).unwrap();
        let addr = sock.local_addr().unwrap().as_socket().unwrap();
        let l: std::net::TcpListener = sock.into();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                if s.is_ok() {
                    c.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Counting {
            addr,
            count,
            task: None,
        }
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Closes the listener (later connects are refused).
    pub async fn stop(self) {
        let task = self.task.expect("a threaded backend cannot be stopped");
        task.abort();
        let _ = task.await;
    }
}

/// How the test HTTP backend answers.
#[derive(Clone, Copy)]
pub enum Http {
    Status(u16),
    /// 400 unless `Host: app.example`, then 200.
    NeedsHost,
    /// Accepts and closes at once, reading nothing.
    Close,
    /// Accepts and never answers.
    Silent,
    /// Answers with raw bytes.
    Raw(&'static [u8]),
}

pub struct HttpServer {
    pub addr: SocketAddr,
    /// The last request head received.
    pub last_request: Arc<Mutex<String>>,
    task: JoinHandle<()>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpServer {
    pub async fn start(mode: Http) -> HttpServer {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let last_request = Arc::new(Mutex::new(String::new()));
        let last = last_request.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else { continue };
                tokio::spawn(serve(s, mode, last.clone()));
            }
        });
        HttpServer {
            addr,
            last_request,
            task,
        }
    }
}

async fn serve(mut s: TcpStream, mode: Http, last: Arc<Mutex<String>>) {
    match mode {
        Http::Close => return,
        Http::Silent => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        _ => {}
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    *last.lock().unwrap() = head.clone();
    let response = match mode {
        Http::Status(code) => format!("HTTP/1.1 {code} X\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n").into_bytes(),
        Http::NeedsHost => {
            let ok = head.lines().any(|l| l.eq_ignore_ascii_case("host: app.example"));
            let code = if ok { 200 } else { 400 };
            format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").into_bytes()
        }
        Http::Raw(bytes) => bytes.to_vec(),
        Http::Close | Http::Silent => return,
    };
    let _ = s.write_all(&response).await;
    let _ = s.shutdown().await;
}

/// A UDP backend that echoes every datagram.
pub async fn udp_echo() -> (SocketAddr, JoinHandle<()>) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        loop {
            if let Ok((n, from)) = s.recv_from(&mut buf).await {
                let _ = s.send_to(&buf[..n], from).await;
            }
        }
    });
    (addr, task)
}
