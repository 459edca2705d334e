//! HTTP/2 from clients (h2c with prior knowledge, h2 over TLS by ALPN), on
//! hyper's server with its limits set explicitly, forwarded to backends as
//! HTTP/1.1 over the same pooled connections as HTTP/1.1 clients.
//!
//! Limits: 100 concurrent streams, 64 KiB decoded header list (which also
//! bounds CONTINUATION frames), h2's pending-accept reset limit, and Weir's
//! own rapid-reset guard: a connection whose client cancels more than
//! [`MAX_CLIENT_RESETS`] requests in flight is sent GOAWAY and closed. So a
//! reset flood reaches backends with at most `MAX_CLIENT_RESETS` + 100
//! (concurrent streams) requests per connection.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, timeout, timeout_at};

use super::buf::Buf;
use super::chunked::Chunked;
use super::client::ClientIo;
use super::head::{self, Framing};
use super::path;
use super::route::host_key;
use super::upstream::{Attempts, Found};
use crate::counters::Counters;
use crate::dataplane::DataPlane;
use crate::meter::Meter;
use crate::snapshot::{ActiveGuard, ListenerConfig, ListenerKey, Stat};

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Requests a client may cancel while in flight before its connection is closed.
pub const MAX_CLIENT_RESETS: usize = 100;
const MAX_STREAMS: u32 = 100;
const MAX_HEADER_LIST: u32 = 64 * 1024;

/// Serves an HTTP/2 connection whose first bytes (`prefix`) were already read.
pub(crate) async fn serve<C: ClientIo>(
    dp: Arc<DataPlane>,
    key: ListenerKey,
    client: C,
    peer: SocketAddr,
    prefix: Vec<u8>,
    meter: Meter,
) {
    let resets = Arc::new(AtomicUsize::new(0));
    let abusive = Arc::new(Notify::new());
    let io = hyper_util::rt::TokioIo::new(Prefixed {
        prefix: Bytes::from(prefix),
        inner: client,
        meter,
    });
    let svc = {
        let (dp, resets, abusive) = (dp.clone(), resets.clone(), abusive.clone());
        hyper::service::service_fn(move |req| {
            let guard = ResetGuard {
                resets: resets.clone(),
                abusive: abusive.clone(),
                done: false,
            };
            handle(dp.clone(), key, peer, req, guard)
        })
    };
    let streams = super::streams::Streams::default();
    let mut running = super::streams::Running::new();
    let mut b = hyper::server::conn::http2::Builder::new(streams.clone());
    b.timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(1024)
        .keep_alive_interval(None);
    let conn = b.serve_connection(io, svc);
    tokio::pin!(conn);
    let idle = dp
        .current
        .load()
        .listeners
        .get(&key)
        .map_or(std::time::Duration::from_secs(60), |c| c.idle_timeout);
    tokio::select! {
        r = streams.drive(&mut running, conn.as_mut()) => {
            if let Err(e) = r {
                // h2's own flood limits end the connection with ENHANCE_YOUR_CALM.
                let calm = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<h2::Error>())
                    .is_some_and(|h| h.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM));
                if calm {
                    Counters::inc(&dp.counters.h2_abusive);
                }
                tracing::debug!(error = %e, "h2 connection ended");
            }
        }
        _ = abusive.notified() => {
            Counters::inc(&dp.counters.h2_abusive);
            conn.as_mut().graceful_shutdown();
            let _ = timeout(idle, streams.drive(&mut running, conn.as_mut())).await;
        }
    }
}

/// Counts requests dropped before they finished (the client reset them).
struct ResetGuard {
    resets: Arc<AtomicUsize>,
    abusive: Arc<Notify>,
    done: bool,
}

impl Drop for ResetGuard {
    fn drop(&mut self) {
        if !self.done && self.resets.fetch_add(1, Ordering::Relaxed) + 1 == MAX_CLIENT_RESETS {
            self.abusive.notify_one();
        }
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn own(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(
        http_body_util::Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

async fn handle(
    dp: Arc<DataPlane>,
    key: ListenerKey,
    peer: SocketAddr,
    req: Request<Incoming>,
    mut guard: ResetGuard,
) -> Result<Response<Body>, Infallible> {
    let Some(cfg) = dp.current.load().listeners.get(&key).cloned() else {
        guard.done = true;
        return Ok(own(StatusCode::SERVICE_UNAVAILABLE, "no backend available\n"));
    };
    cfg.stats.inc(Stat::Requests);
    let started = Instant::now();
    let request = if dp.config.access_log {
        format!(
            "{} {}",
            req.method(),
            req.uri().path_and_query().map_or("/", |p| p.as_str())
        )
    } else {
        String::new()
    };
    let r = forward(&dp, &cfg, key, peer, req).await;
    guard.done = true;
    let r = r.unwrap_or_else(|(status, text)| own(status, text));
    cfg.stats.response(r.status().as_u16());
    if dp.config.access_log {
        tracing::info!(
            target: "weir::access",
            client = %peer,
            lb = %cfg.lb_id,
            vserver = %cfg.vserver_id,
            protocol = "h2",
            request = %request,
            status = r.status().as_u16(),
            header_ms = started.elapsed().as_secs_f64() * 1000.0,
        );
    }
    Ok(r)
}

type Failure = (StatusCode, &'static str);
const BAD_REQUEST: Failure = (StatusCode::BAD_REQUEST, "bad request\n");
const BAD_GATEWAY: Failure = (StatusCode::BAD_GATEWAY, "bad gateway\n");

fn is_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "http2-settings"
    )
}

async fn forward(
    dp: &DataPlane,
    cfg: &ListenerConfig,
    key: ListenerKey,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Failure> {
    let http = cfg.http.as_ref().ok_or(BAD_GATEWAY)?;
    let (parts, body) = req.into_parts();
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    if !pq.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(BAD_REQUEST);
    }
    let target = path::normalize(pq).map_err(|_| BAD_REQUEST)?;
    let host: std::borrow::Cow<'_, str> = match parts.uri.authority() {
        Some(a) => a.as_str().into(),
        None => match parts.headers.get(http::header::HOST).and_then(|v| v.to_str().ok()) {
            Some(h) => h.into(),
            None => key.addr.to_string().into(),
        },
    };
    let group = http.route(&host_key(&host), &target.path);
    let pinned = http.cookies.as_ref().and_then(|c| {
        let values = parts.headers.get_all(http::header::COOKIE).iter().map(|v| v.as_bytes());
        c.pinned(values, group, &cfg.backends)
    });
    // The backend request head.
    let fwd = &http.forward;
    let mut out = Vec::with_capacity(512);
    let _ = write!(out, "{} {}{} HTTP/1.1\r\n", parts.method, target.path, target.query);
    let mut xff = String::new();
    let conn_named: Vec<String> = parts
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let mut has_length = false;
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if is_hop(n) || conn_named.iter().any(|c| c == n) {
            continue;
        }
        if fwd.x_forwarded_for && n == "x-forwarded-for" {
            xff.push_str(value.to_str().unwrap_or_default());
            xff.push_str(", ");
            continue;
        }
        if (fwd.x_real_ip && n == "x-real-ip") || (fwd.x_forwarded_proto && n == "x-forwarded-proto") || n == "host" {
            continue;
        }
        has_length |= n == "content-length";
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let ip = peer.ip();
    let _ = write!(out, "Host: {}\r\n", fwd.host.as_deref().unwrap_or(&host));
    if fwd.x_forwarded_for {
        let _ = write!(out, "X-Forwarded-For: {xff}{ip}\r\n");
    }
    if fwd.x_real_ip {
        let _ = write!(out, "X-Real-IP: {ip}\r\n");
    }
    if fwd.x_forwarded_proto {
        out.extend_from_slice(http.proto_line);
    }
    let has_body = !hyper::body::Body::is_end_stream(&body);
    let chunked = has_body && !has_length;
    if chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");

    let retry_safe = !has_body
        && matches!(
            parts.method.as_str(),
            "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
        );
    let is_head = parts.method == http::Method::HEAD;
    let mut body = Some(body);
    let cookie_backend = pinned;
    let mut attempts = Attempts::new(pinned);
    for _ in 0..5 {
        let (i, mut up, reused) = match attempts.connect(dp, cfg, group, ip).await {
            Found::Conn { i, up, reused } => (i, up, reused),
            Found::NoCandidate => return Err((StatusCode::SERVICE_UNAVAILABLE, "no backend available\n")),
            Found::Exhausted => break,
        };
        let Some(backend) = cfg.backends.get(i) else { break };
        let active = ActiveGuard::new(backend);
        if up.write_all(&out).await.is_err() {
            attempts.write_failed(i, reused);
            continue;
        }
        if let Some(b) = body.take() {
            send_body(&mut up, b, chunked, cfg.idle_timeout).await?;
        }
        let mut up_buf = Buf::default();
        let res = match read_head(dp, &mut up, &mut up_buf, is_head).await {
            Ok(r) => r,
            Err(_) if reused && retry_safe && up_buf.is_empty() => {
                attempts.retry_same(i);
                body = None;
                continue;
            }
            Err(e) => return Err(e),
        };
        // One copy of the head; the header values are slices of it.
        let b = Bytes::copy_from_slice(&up_buf.bytes()[..res.len]);
        let mut resp = Response::builder().status(res.status);
        let mut headers = HeaderMap::with_capacity(res.fields.len() + 1);
        for f in &res.fields {
            let n = &b[f.name.clone()];
            if f.hop || n.eq_ignore_ascii_case(b"transfer-encoding") {
                continue;
            }
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(n),
                HeaderValue::from_maybe_shared(b.slice(f.value.clone())),
            ) {
                headers.append(n, v);
            }
        }
        if let Some(c) = &http.cookies
            && cookie_backend != Some(i)
            && let Some(v) = c.value(i)
            && let Ok(v) = HeaderValue::from_str(&format!("{}={v}{}", c.name, c.attributes))
        {
            headers.append(http::header::SET_COOKIE, v);
        }
        if let Some(h) = resp.headers_mut() {
            *h = headers;
        }
        up_buf.consume(res.len);
        // The whole body is already here (the common small response):
        // answer at once, the backend connection straight back to the pool,
        // no relay task and no channel.
        if let Some(data) = whole_body(&mut up_buf, res.framing) {
            drop(active);
            if res.keep_alive && up_buf.is_empty() {
                backend.pool.put(up);
            }
            let body = http_body_util::Full::new(data).map_err(|never| match never {}).boxed();
            return resp.body(body).map_err(|_| BAD_GATEWAY);
        }
        let (tx, rx) = mpsc::channel(4);
        let backend = backend.clone();
        let keepalive = res.keep_alive;
        let framing = res.framing;
        let idle = cfg.idle_timeout;
        tokio::spawn(async move {
            let _active = active;
            if relay_body(&mut up, up_buf, framing, idle, &tx).await && keepalive {
                backend.pool.put(up);
            }
        });
        return resp.body(ChannelBody { rx }.boxed()).map_err(|_| BAD_GATEWAY);
    }
    Err(BAD_GATEWAY)
}

async fn send_body(
    up: &mut TcpStream,
    mut body: Incoming,
    chunked: bool,
    idle: std::time::Duration,
) -> Result<(), Failure> {
    loop {
        let frame = match timeout(idle, body.frame()).await {
            Err(_) => return Err((StatusCode::REQUEST_TIMEOUT, "request body timeout\n")),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(BAD_REQUEST),
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data) = frame.into_data() else { continue };
        if data.is_empty() {
            continue;
        }
        let r = if chunked {
            let mut head = Vec::with_capacity(16);
            let _ = write!(head, "{:x}\r\n", data.len());
            up.write_all(&head)
                .await
                .and(up.write_all(&data).await)
                .and(up.write_all(b"\r\n").await)
        } else {
            up.write_all(&data).await
        };
        r.map_err(|_| BAD_GATEWAY)?;
    }
    if chunked {
        up.write_all(b"0\r\n\r\n").await.map_err(|_| BAD_GATEWAY)?;
    }
    Ok(())
}

async fn read_head(
    dp: &DataPlane,
    up: &mut TcpStream,
    buf: &mut Buf,
    is_head: bool,
) -> Result<head::Response, Failure> {
    let deadline = Instant::now() + dp.config.response_header_timeout;
    loop {
        if !buf.is_empty() {
            match head::response(buf.bytes(), is_head) {
                // Interim responses are not relayed over HTTP/2.
                Ok(Some(r)) if (100..200).contains(&r.status) => buf.consume(r.len),
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(_) => return Err(BAD_GATEWAY),
            }
            if !buf.is_empty() {
                continue;
            }
        }
        match timeout_at(deadline, buf.fill(up)).await {
            Err(_) => return Err((StatusCode::GATEWAY_TIMEOUT, "gateway timeout\n")),
            Ok(Ok(0)) | Ok(Err(_)) => return Err(BAD_GATEWAY),
            Ok(Ok(_)) => {}
        }
    }
}

/// The body, when all of it is in `buf` (consumed from it); `None` when
/// more is to come from the backend.
fn whole_body(buf: &mut Buf, framing: Framing) -> Option<Bytes> {
    let avail = buf.bytes();
    match framing {
        Framing::None => Some(Bytes::new()),
        Framing::Length(n) if avail.len() as u64 >= n => {
            let n = n as usize;
            let data = Bytes::copy_from_slice(&avail[..n]);
            buf.consume(n);
            Some(data)
        }
        Framing::Chunked => {
            let mut c = Chunked::default();
            let mut out = Vec::new();
            let used = c.feed(avail, |r| out.extend_from_slice(&avail[r])).ok()?;
            if !c.done() {
                return None;
            }
            buf.consume(used);
            Some(Bytes::from(out))
        }
        _ => None,
    }
}

/// Sends the response body's data to the client stream; returns whether it
/// completed (the backend connection can be reused).
async fn relay_body(
    up: &mut TcpStream,
    mut buf: Buf,
    framing: Framing,
    idle: std::time::Duration,
    tx: &mpsc::Sender<Bytes>,
) -> bool {
    let mut remaining = match framing {
        Framing::None => return true,
        Framing::Length(n) => n,
        _ => u64::MAX,
    };
    let mut chunks = Chunked::default();
    loop {
        let avail = buf.bytes();
        let data: Bytes;
        let used;
        match framing {
            Framing::Chunked => {
                let mut out = Vec::with_capacity(avail.len());
                match chunks.feed(avail, |r| out.extend_from_slice(&avail[r])) {
                    Ok(n) => used = n,
                    Err(_) => return false,
                }
                data = Bytes::from(out);
            }
            _ => {
                used = remaining.min(avail.len() as u64) as usize;
                data = Bytes::copy_from_slice(&avail[..used]);
                remaining -= used as u64;
            }
        }
        buf.consume(used);
        if !data.is_empty() && tx.send(data).await.is_err() {
            return false;
        }
        let done = match framing {
            Framing::Chunked => chunks.done(),
            _ => remaining == 0,
        };
        if done {
            return buf.is_empty();
        }
        match timeout(idle, buf.fill(up)).await {
            Ok(Ok(0)) => return false,
            Ok(Ok(_)) => {}
            _ => return false,
        }
    }
}

/// A response body fed by the task reading the backend.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// A stream whose first bytes were already read.
struct Prefixed<C: ClientIo> {
    prefix: Bytes,
    inner: C,
    /// Counts the bytes (the prefix was counted when HTTP/1 read it) and,
    /// when the connection is dropped, its segments.
    meter: Meter,
}

impl<C: ClientIo> Drop for Prefixed<C> {
    fn drop(&mut self) {
        if let Some(fd) = self.inner.fd() {
            self.meter.segments(fd);
        }
    }
}

impl<C: ClientIo> AsyncRead for Prefixed<C> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let part = self.prefix.split_to(n);
            buf.put_slice(&part);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.meter.bytes_in(buf.filled().len() - before);
        if let Some(fd) = this.inner.fd() {
            this.meter.segments_if_due(fd);
        }
        r
    }
}

impl<C: ClientIo> AsyncWrite for Prefixed<C> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            this.meter.bytes_out(n);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            this.meter.bytes_out(n);
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
