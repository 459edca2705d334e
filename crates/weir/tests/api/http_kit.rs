//! Layer-7 test kit: a raw HTTP/1.1 backend that parses requests itself and
//! records exactly what reached it (requests and raw byte counts per
//! connection), a raw client that sends exact bytes, and the http VServer lab
//! (`Site`): LB `127.70.<net>.1`, backends `127.71.<net>.x`, clients
//! `127.72.<net>.x`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::backends::{add_backend, lb_with_vserver};
use crate::kit::{ADMIN, Server};

/// Bound on every single network wait of the kit.
pub const WAIT: Duration = Duration::from_secs(5);
/// Body bytes a recorded request keeps; the rest is only counted.
const KEEP: usize = 1 << 20;
/// A head larger than this without its blank line is garbage to the kit.
const MAX_HEAD: usize = 1 << 20;

/// A message head as received: the start line and the fields in order.
#[derive(Debug, Clone)]
pub struct Head {
    pub start: String,
    pub fields: Vec<(String, String)>,
}

impl Head {
    fn parse(raw: &[u8]) -> Head {
        let text = String::from_utf8_lossy(raw);
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let start = lines.next().unwrap_or_default().to_string();
        let fields = lines
            .filter(|l| !l.is_empty())
            .map(|l| match l.split_once(':') {
                Some((k, v)) => (k.to_string(), v.trim().to_string()),
                None => (l.to_string(), String::new()),
            })
            .collect();
        Head { start, fields }
    }

    fn word(&self, i: usize) -> &str {
        self.start.split(' ').nth(i).unwrap_or_default()
    }

    pub fn method(&self) -> &str {
        self.word(0)
    }

    /// The request target exactly as received (path and query).
    pub fn target(&self) -> &str {
        self.word(1)
    }

    /// The request's protocol version (`HTTP/1.1`).
    pub fn version(&self) -> &str {
        self.word(2)
    }

    /// The response's status code (0 when the status line is not one).
    pub fn status(&self) -> u16 {
        self.word(1).parse().unwrap_or(0)
    }

    /// Every value of the field `name` (case-insensitive), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of the field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    /// The comma-separated tokens of every `name` field, lowercased.
    pub fn tokens(&self, name: &str) -> Vec<String> {
        self.all(name)
            .iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    }

    fn length(&self) -> Option<u64> {
        self.get("content-length")?.parse().ok()
    }

    fn chunked(&self) -> bool {
        self.tokens("transfer-encoding").last().is_some_and(|t| t == "chunked")
    }

    fn request_body(&self) -> Body {
        match (self.chunked(), self.length()) {
            (true, _) => Body::Chunked,
            (false, Some(n)) => Body::Length(n),
            (false, None) => Body::Length(0),
        }
    }

    fn response_body(&self) -> Body {
        match (self.status(), self.chunked(), self.length()) {
            (100..=199 | 204 | 304, _, _) => Body::Length(0),
            (_, true, _) => Body::Chunked,
            (_, false, Some(n)) => Body::Length(n),
            _ => Body::UntilClose,
        }
    }
}

/// How a message body is delimited.
#[derive(Clone, Copy)]
enum Body {
    Length(u64),
    Chunked,
    UntilClose,
}

fn broken(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// A buffered connection that parses HTTP/1.1 framing, optionally counting
/// every raw byte it reads.
/// A byte stream the kit can speak HTTP/1.1 over (TCP, or TLS over it).
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

struct Wire {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    count: Option<Arc<AtomicUsize>>,
}

impl Wire {
    fn new(io: impl Io + 'static, count: Option<Arc<AtomicUsize>>) -> Wire {
        Wire {
            io: Box::new(io),
            buf: Vec::new(),
            count,
        }
    }

    /// Reads more bytes into the buffer; false at EOF.
    async fn fill(&mut self) -> std::io::Result<bool> {
        self.buf.reserve(64 * 1024);
        let n = self.io.read_buf(&mut self.buf).await?;
        if let Some(c) = &self.count {
            c.fetch_add(n, Ordering::SeqCst);
        }
        Ok(n > 0)
    }

    /// The next head; None at a clean EOF before its first byte.
    async fn head(&mut self) -> std::io::Result<Option<Head>> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let raw: Vec<u8> = self.buf.drain(..end + 4).collect();
                return Ok(Some(Head::parse(&raw[..end])));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(broken("head without an end"));
            }
            if !self.fill().await? {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(broken("EOF inside a head"));
            }
        }
    }

    /// One CRLF-terminated line, without its CRLF.
    async fn line(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let mut l: Vec<u8> = self.buf.drain(..end + 2).collect();
                l.truncate(end);
                return Ok(l);
            }
            if self.buf.len() > MAX_HEAD || !self.fill().await? {
                return Err(broken("no line end"));
            }
        }
    }

    /// Moves `n` bytes out of the stream into `out` (up to `keep` of them are
    /// kept); returns how many were moved.
    async fn take(&mut self, n: u64, out: &mut Vec<u8>, keep: usize) -> std::io::Result<u64> {
        let mut left = n;
        while left > 0 {
            if self.buf.is_empty() && !self.fill().await? {
                return Err(broken("EOF inside a body"));
            }
            let k = self.buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let room = keep.saturating_sub(out.len()).min(k);
            out.extend_from_slice(&self.buf[..room]);
            self.buf.drain(..k);
            left -= k as u64;
        }
        Ok(n)
    }

    /// A whole body: (the first `keep` bytes, the length).
    async fn body(&mut self, framing: Body, keep: usize) -> std::io::Result<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        let mut total = 0;
        match framing {
            Body::Length(n) => total = self.take(n, &mut out, keep).await?,
            Body::Chunked => loop {
                let line = self.line().await?;
                let size = String::from_utf8_lossy(&line);
                let size = size.split(';').next().unwrap_or_default().trim();
                let n = u64::from_str_radix(size, 16).map_err(|_| broken("bad chunk size"))?;
                if n == 0 {
                    // Trailer fields up to the blank line.
                    while !self.line().await?.is_empty() {}
                    break;
                }
                total += self.take(n, &mut out, keep).await?;
                if !self.line().await?.is_empty() {
                    return Err(broken("chunk without its CRLF"));
                }
            },
            Body::UntilClose => loop {
                let k = self.buf.len();
                total += self.take(k as u64, &mut out, keep).await?;
                if !self.fill().await? {
                    break;
                }
            },
        }
        Ok((out, total))
    }
}

/// What a test backend does with a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `200` with its name as the body (and `X-Backend`, `X-Seen-Path`,
    /// `X-Body-Len` fields); keep-alive.
    Ok,
    /// As `Ok`, with these extra response fields.
    OkWith(Vec<(&'static str, &'static str)>),
    /// Reads the request head, then closes without answering.
    Close,
    /// Reads the request head, then never answers.
    Stall,
    /// A request carrying `Upgrade` gets `101` (after a moment in which any
    /// byte arriving counts as early), then the connection echoes raw bytes;
    /// other requests are answered as `Ok`.
    Upgrade,
}

/// One request as the backend received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub head: Head,
    /// The body's first MiB.
    pub body: Vec<u8>,
    pub body_len: u64,
    /// Which of the backend's connections (in accept order) carried it.
    pub conn: usize,
}

struct Shared {
    name: String,
    reply: Reply,
    requests: Mutex<Vec<Recorded>>,
    conns: Mutex<Vec<Arc<AtomicUsize>>>,
    early: AtomicUsize,
    upgrades: AtomicUsize,
}

/// A raw HTTP/1.1 backend on loopback (see `Reply`).
pub struct HttpBackend {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl HttpBackend {
    pub async fn start(ip: &str, name: &str, reply: Reply) -> HttpBackend {
        let sock = TcpSocket::new_v4().expect("socket");
        sock.bind(format!("{ip}:0").parse().expect("backend ip"))
            .expect("bind http backend");
        let l = sock.listen(1024).expect("listen");
        let addr = l.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            name: name.to_string(),
            reply,
            requests: Mutex::new(Vec::new()),
            conns: Mutex::new(Vec::new()),
            early: AtomicUsize::new(0),
            upgrades: AtomicUsize::new(0),
        });
        let sh = shared.clone();
        tokio::spawn(async move {
            while let Ok((io, _)) = l.accept().await {
                let count = Arc::new(AtomicUsize::new(0));
                let conn = {
                    let mut conns = sh.conns.lock().unwrap();
                    conns.push(count.clone());
                    conns.len() - 1
                };
                // Health probes connect and close at once: any error just ends the connection.
                tokio::spawn(serve(sh.clone(), Wire::new(io, Some(count)), conn));
            }
        });
        HttpBackend { addr, shared }
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The last request received; panics when there was none.
    pub fn last(&self) -> Recorded {
        let r = self.requests();
        r.last()
            .cloned()
            .unwrap_or_else(|| panic!("backend {} received no request", self.name()))
    }

    /// Raw bytes received on each connection, in accept order.
    pub fn conn_bytes(&self) -> Vec<usize> {
        let conns = self.shared.conns.lock().unwrap();
        conns.iter().map(|c| c.load(Ordering::SeqCst)).collect()
    }

    /// Raw bytes received on all connections.
    pub fn bytes_received(&self) -> usize {
        self.conn_bytes().iter().sum()
    }

    /// Upgrade mode: client bytes that had arrived when the 101 was written.
    pub fn early_bytes(&self) -> usize {
        self.shared.early.load(Ordering::SeqCst)
    }

    /// Upgrade mode: how many 101s were sent.
    pub fn upgrades(&self) -> usize {
        self.shared.upgrades.load(Ordering::SeqCst)
    }
}

async fn serve(sh: Arc<Shared>, mut w: Wire, conn: usize) -> std::io::Result<()> {
    while let Some(head) = w.head().await? {
        match sh.reply {
            Reply::Close => return Ok(()),
            Reply::Stall => std::future::pending::<()>().await,
            _ => {}
        }
        if head.tokens("expect").iter().any(|t| t == "100-continue") {
            w.io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        let (body, body_len) = w.body(head.request_body(), KEEP).await?;
        let upgrade = head.get("upgrade").filter(|_| matches!(sh.reply, Reply::Upgrade));
        let upgrade = upgrade.map(str::to_string);
        let close = head.tokens("connection").iter().any(|t| t == "close") || head.version() == "HTTP/1.0";
        let seen: String = head
            .target()
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { '?' })
            .collect();
        sh.requests.lock().unwrap().push(Recorded {
            head,
            body,
            body_len,
            conn,
        });
        if let Some(proto) = upgrade {
            return tunnel(&sh, w, &proto).await;
        }
        let name = &sh.name;
        let mut resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-Backend: {name}\r\n\
             X-Seen-Path: {seen}\r\nX-Body-Len: {body_len}\r\n",
            name.len(),
        );
        if let Reply::OkWith(extra) = &sh.reply {
            for (k, v) in extra {
                resp.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        if close {
            resp.push_str("Connection: close\r\n");
        }
        resp.push_str("\r\n");
        resp.push_str(name);
        w.io.write_all(resp.as_bytes()).await?;
        if close {
            return Ok(());
        }
    }
    Ok(())
}

/// Answers 101 and echoes. Bytes already buffered, or arriving within 300 ms
/// after the head, reached the backend before its 101: they are counted as
/// early (and echoed after the 101 like any other).
async fn tunnel(sh: &Shared, mut w: Wire, proto: &str) -> std::io::Result<()> {
    if w.buf.is_empty()
        && let Ok(r) = tokio::time::timeout(Duration::from_millis(300), w.fill()).await
    {
        r?;
    }
    sh.early.fetch_add(w.buf.len(), Ordering::SeqCst);
    let head = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: {proto}\r\nConnection: Upgrade\r\n\r\n");
    w.io.write_all(head.as_bytes()).await?;
    sh.upgrades.fetch_add(1, Ordering::SeqCst);
    loop {
        let pending = std::mem::take(&mut w.buf);
        w.io.write_all(&pending).await?;
        if !w.fill().await? {
            return Ok(());
        }
    }
}

/// A response as the client received it.
#[derive(Debug)]
pub struct Response {
    pub head: Head,
    pub body: Vec<u8>,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.head.status()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    /// The value of the cookie `name` set by this response, checking the
    /// attributes Weir promises (`Path=/`, `HttpOnly`).
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        let line = self
            .head
            .all("set-cookie")
            .into_iter()
            .find(|v| v.starts_with(&prefix))?;
        let mut parts = line.split(';').map(str::trim);
        let value = parts.next().unwrap_or_default()[prefix.len()..].to_string();
        let attrs: Vec<&str> = parts.collect();
        for want in ["Path=/", "HttpOnly"] {
            assert!(
                attrs.iter().any(|a| a.eq_ignore_ascii_case(want)),
                "Set-Cookie {line:?} lacks {want}"
            );
        }
        assert!(!value.is_empty(), "Set-Cookie {line:?} has an empty value");
        Some(value)
    }
}

/// A raw client: sends exact bytes, reads responses with bounded waits.
pub struct Client {
    w: Wire,
}

impl Client {
    pub async fn connect(target: SocketAddr) -> Client {
        Client::dial(target, None).await
    }

    /// Connects from the source address `ip`.
    pub async fn connect_from(target: SocketAddr, ip: &str) -> Client {
        Client::dial(target, Some(ip)).await
    }

    async fn dial(target: SocketAddr, from: Option<&str>) -> Client {
        let sock = TcpSocket::new_v4().expect("socket");
        if let Some(ip) = from {
            sock.bind(format!("{ip}:0").parse().expect("client ip"))
                .expect("bind client");
        }
        let io = tokio::time::timeout(WAIT, sock.connect(target))
            .await
            .unwrap_or_else(|_| panic!("connect to {target} timed out"))
            .unwrap_or_else(|e| panic!("connect to {target} from {from:?}: {e}"));
        Client { w: Wire::new(io, None) }
    }

    /// A client over an established stream (e.g. a TLS session).
    pub fn over(io: impl Io + 'static) -> Client {
        Client { w: Wire::new(io, None) }
    }

    /// Writes `bytes`, bounded by `WAIT`.
    pub async fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let io = &mut self.w.io;
        let write = async move {
            io.write_all(bytes).await?;
            io.flush().await
        };
        match tokio::time::timeout(WAIT, write).await {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "write timed out")),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        if let Err(e) = self.try_send(bytes).await {
            panic!("sending {} bytes: {e}", bytes.len());
        }
    }

    /// The next response (an interim `1xx` is one too), within `WAIT`.
    pub async fn response(&mut self) -> Response {
        let got = tokio::time::timeout(WAIT, async {
            let head = self.w.head().await?.ok_or_else(|| broken("closed before a response"))?;
            let (body, _) = self.w.body(head.response_body(), usize::MAX).await?;
            std::io::Result::Ok(Response { head, body })
        })
        .await;
        let so_far = String::from_utf8_lossy(&self.w.buf).to_string();
        match got {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!("no complete response: {e}; received {so_far:?}"),
            Err(_) => panic!("no complete response within {WAIT:?}; received {so_far:?}"),
        }
    }

    /// Exactly `n` raw bytes (e.g. through an upgraded connection).
    pub async fn read_raw(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let r = tokio::time::timeout(WAIT, self.w.take(n as u64, &mut out, n)).await;
        match r {
            Ok(Ok(_)) => out,
            _ => panic!(
                "wanted {n} raw bytes within {WAIT:?}, got {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }

    /// Waits up to `within` for the peer to close (EOF or reset); returns
    /// the bytes that came meanwhile, or None while still open.
    pub async fn until_closed(&mut self, within: Duration) -> Option<Vec<u8>> {
        let closed = tokio::time::timeout(within, async { while let Ok(true) = self.w.fill().await {} }).await;
        closed.ok().map(|()| std::mem::take(&mut self.w.buf))
    }
}

/// `METHOD target HTTP/1.1` with `Host`, the given fields, and the body
/// with its Content-Length when not empty.
pub fn request(method: &str, target: &str, host: &str, fields: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in fields {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

pub fn get(target: &str, host: &str) -> Vec<u8> {
    request("GET", target, host, &[], b"")
}

/// One request on a new connection; its response.
pub async fn fetch(target: SocketAddr, bytes: &[u8]) -> Response {
    let mut c = Client::connect(target).await;
    c.send(bytes).await;
    c.response().await
}

/// Writes `bytes` while reading until the peer closes, for at most
/// `within`. Write errors are ignored: a peer may answer and close before
/// reading everything. Returns what was read and whether the peer closed.
pub async fn send_and_read_to_close(target: SocketAddr, bytes: Vec<u8>, within: Duration) -> (Vec<u8>, bool) {
    let (mut r, mut w) = tokio::io::split(Client::connect(target).await.w.io);
    let writer = tokio::spawn(async move {
        let _ = tokio::time::timeout(WAIT, w.write_all(&bytes)).await;
        w // keep the write side open until the reader is done
    });
    let mut got = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = r.read(&mut buf).await {
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .is_ok();
    writer.abort();
    (got, closed)
}

/// An http VServer on its own internal LB `127.70.<net>.1`; its backends
/// live on `127.71.<net>.x`.
/// A backend that accepts connections and never reads from them (its
/// socket buffers fill, then the proxy's writes to it stall).
pub async fn deaf_backend(ip: &str) -> SocketAddr {
    raw_backend(ip, |s| async move {
        let _held = s;
        std::future::pending::<()>().await
    })
    .await
}

/// Reads one request head, a byte at a time so that nothing after it is
/// consumed; `None` at end of stream or on an error.
pub async fn read_head<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b).await {
            Ok(1) => head.push(b[0]),
            _ => return None,
        }
    }
    Some(head)
}

/// A raw TCP backend on `ip`: `serve` runs on each accepted connection.
pub async fn raw_backend<F, Fut>(ip: &str, serve: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = tokio::net::TcpListener::bind(format!("{ip}:0")).await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve(s));
        }
    });
    addr
}

/// Sends `head` and then `body_len` bytes of body as a simple client does
/// (the whole body before reading anything), then reads to the end and
/// returns what it read. Panics if a write fails: a client still sending
/// must not be reset before it can read the answer.
pub async fn upload_then_read<S>(mut c: S, head: &str, body_len: usize) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    c.write_all(head.as_bytes()).await.expect("send the head");
    let chunk = vec![b'u'; 64 * 1024];
    let sending = async {
        for _ in 0..body_len / chunk.len() {
            c.write_all(&chunk).await?;
        }
        c.flush().await
    };
    tokio::time::timeout(Duration::from_secs(20), sending)
        .await
        .expect("the body went out within 20 s")
        .expect("the client could send its whole body: not reset before reading the answer");
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), c.read_to_end(&mut got))
        .await
        .expect("the answer and the close came within 20 s")
        .expect("read the answer");
    String::from_utf8_lossy(&got).into_owned()
}

/// A backend that answers `413` as soon as it has a request head, without
/// reading the body, then closes (`close`) or keeps the connection open
/// and reads nothing more.
pub async fn early_413_backend(ip: &str, close: bool) -> SocketAddr {
    raw_backend(ip, move |mut s| async move {
        if read_head(&mut s).await.is_none() {
            return;
        }
        let answer = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 10\r\nConnection: close\r\n\r\ntoo large\n";
        if s.write_all(answer).await.is_err() || close {
            return;
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    })
    .await
}

pub struct Site {
    pub lb: String,
    pub vs: String,
    pub addr: SocketAddr,
    net: u8,
    next: AtomicU8,
}

/// A `Site` whose VServer is `{"protocol": "http", "port": 8080,
/// "health_check": {"interval_s": 300}}` with the keys of `extra` on top.
pub async fn http_site(s: &Server, net: u8, extra: Value) -> Site {
    let mut vs = json!({"protocol": "http", "port": 8080, "health_check": {"interval_s": 300}});
    if let (Some(base), Some(extra)) = (vs.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    let port = vs["port"].as_u64().and_then(|p| u16::try_from(p).ok()).expect("port");
    let (lb, ip, vs) = lb_with_vserver(s, &format!("127.70.{net}.0/24"), vs).await;
    Site {
        lb,
        vs,
        addr: SocketAddr::new(ip, port),
        net,
        next: AtomicU8::new(10),
    }
}

impl Site {
    /// The API path of this VServer, with `rest` appended.
    pub fn url(&self, rest: &str) -> String {
        format!("/v1/load-balancers/{}/vservers/{}{rest}", self.lb, self.vs)
    }

    /// A client source address of this site's range.
    pub fn client_ip(&self, host: u8) -> String {
        format!("127.72.{}.{host}", self.net)
    }

    /// Starts a backend on the next free address, adds it with weight 1 and
    /// waits until applied; returns it with its id.
    pub async fn backend(&self, s: &Server, name: &str, reply: Reply) -> (HttpBackend, String) {
        let host = self.next.fetch_add(1, Ordering::SeqCst);
        let b = HttpBackend::start(&format!("127.71.{}.{host}", self.net), name, reply).await;
        let id = add_backend(s, &self.lb, &self.vs, b.addr, 1).await;
        (b, id)
    }

    /// Adds a forwarding rule (`domain`/`path` as given) to `backends`.
    pub async fn rule(&self, s: &Server, mut rule: Value, backends: &[&str]) {
        rule["backend_ids"] = json!(backends);
        s.post_applied(ADMIN, &self.url("/rules"), rule).await.ok(201);
    }

    /// Enables or disables a backend; waits until applied.
    pub async fn set_enabled(&self, s: &Server, id: &str, enabled: bool) {
        s.patch_applied(
            ADMIN,
            &self.url(&format!("/backends/{id}")),
            json!({"enabled": enabled}),
        )
        .await
        .ok(200);
    }
}
