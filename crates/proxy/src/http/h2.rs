//! HTTP/2 from clients (h2c with prior knowledge, h2 over TLS by ALPN), on
//! the `h2` crate with its limits set explicitly, forwarded to backends as
//! HTTP/1.1 over the same pooled connections as HTTP/1.1 clients.
//!
//! Served on `h2` directly rather than through hyper's server: a request is
//! a future of this module's (run inside the connection's task, so the
//! responses that complete in one poller tick leave in one write), and a
//! response body is read from the backend and handed to `h2` by that same
//! future, under `h2`'s flow control, with no body trait objects, channel
//! or relay task in between. Measured: hyper's layer was ~15% of an
//! HTTP/2 request's instructions.
//!
//! Limits: 100 concurrent streams, 64 KiB decoded header list (which also
//! bounds CONTINUATION frames), h2's pending-accept reset limit, and Weir's
//! own rapid-reset guard: a connection whose client cancels more than
//! [`MAX_CLIENT_RESETS`] requests in flight is sent GOAWAY and closed. So a
//! reset flood reaches backends with at most `MAX_CLIENT_RESETS` + 100
//! (concurrent streams) requests per connection.

use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use h2::RecvStream;
use h2::server::SendResponse;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};

use super::buf::{Buf, send_all};
use super::chunked::Chunked;
use super::client::ClientIo;
use super::head::{self, Framing};
use super::path;
use super::route::host_key;
use super::timer::Timer;
use super::upstream::{Attempts, Found, early_response};
use crate::counters::Counters;
use crate::dataplane::DataPlane;
use crate::meter::Meter;
use crate::snapshot::{ActiveGuard, BackendState, ListenerConfig, ListenerKey, Stat};

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Requests a client may cancel while in flight before its connection is closed.
pub const MAX_CLIENT_RESETS: usize = 100;
const MAX_STREAMS: u32 = 100;
const MAX_HEADER_LIST: u32 = 64 * 1024;
/// Flow-control windows (stream and connection) and the per-stream send
/// buffer: hyper's server defaults, which Weir used before.
const WINDOW: u32 = 1024 * 1024;
const MAX_SEND_BUFFER: usize = 400 * 1024;

type Stream = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Serves an HTTP/2 connection whose first bytes (`prefix`) were already read.
pub(crate) async fn serve<C: ClientIo>(
    dp: Arc<DataPlane>,
    key: ListenerKey,
    client: C,
    peer: SocketAddr,
    prefix: Vec<u8>,
    meter: Meter,
) {
    let io = Prefixed {
        prefix: Bytes::from(prefix),
        inner: client,
        meter,
    };
    let idle = dp
        .current
        .load()
        .listeners
        .get(&key)
        .map_or(std::time::Duration::from_secs(60), |c| c.idle_timeout);
    let mut b = h2::server::Builder::new();
    b.initial_window_size(WINDOW)
        .initial_connection_window_size(WINDOW)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(Some(1024));
    let mut conn = match timeout(idle, b.handshake::<_, Bytes>(io)).await {
        Ok(Ok(c)) => c,
        _ => return,
    };
    let resets = Arc::new(AtomicUsize::new(0));
    let mut running: FuturesUnordered<Stream> = FuturesUnordered::new();
    let mut start = |req, respond| -> Stream {
        let guard = ResetGuard {
            resets: resets.clone(),
            done: false,
        };
        Box::pin(stream(dp.clone(), key, peer, req, respond, guard))
    };
    let r = drive(
        &mut conn,
        &mut running,
        Some(&resets),
        Some(idle),
        Some(&dp),
        &mut start,
    )
    .await;
    match r {
        // No request for the idle timeout: GOAWAY. Requests that crossed it
        // (sent before the client saw it, which the protocol says are
        // still served) are served; the streams in flight get up to the
        // idle timeout to finish.
        // Weir is stopping: the same graceful GOAWAY, not counted as idle.
        Ok(end @ (Ended::Idle | Ended::Stopping)) => {
            if end == Ended::Idle {
                Counters::inc(&dp.counters.idle_closed);
            }
            conn.graceful_shutdown();
            let _ = timeout(
                idle,
                drive(&mut conn, &mut running, Some(&resets), None, None, &mut start),
            )
            .await;
        }
        // Weir's rapid-reset guard: GOAWAY, nothing new is served, and the
        // streams in flight get up to the idle timeout to finish.
        Ok(Ended::Abusive) => {
            Counters::inc(&dp.counters.h2_abusive);
            conn.graceful_shutdown();
            let _ = timeout(
                idle,
                drive(&mut conn, &mut running, None, None, None, |_, _| -> Stream {
                    Box::pin(async {})
                }),
            )
            .await;
        }
        Ok(Ended::Closed) => {}
        Err(e) => {
            // h2's own flood limits end the connection with ENHANCE_YOUR_CALM.
            if e.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM) {
                Counters::inc(&dp.counters.h2_abusive);
            }
            tracing::debug!(error = %e, "h2 connection ended");
        }
    }
}

/// Why [`drive`] stopped (other than an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The client closed the connection, or it finished shutting down.
    Closed,
    /// The client cancelled too many requests in flight.
    Abusive,
    /// No request was in flight for the idle timeout.
    Idle,
    /// Weir is stopping (the data plane's stop signal was raised).
    Stopping,
}

/// Polls the connection and its streams until the connection ends, the
/// client has cancelled too many requests (only while `resets` is given),
/// or no request has been in flight for `idle` (if given; pings and
/// window updates do not count as activity), or the data plane given as
/// `stop` is stopping. Streams are polled first, so
/// what they finish goes out with the connection's next write.
///
/// The idle timer is one [`Timer`], re-armed only when it fires before the
/// current idle period's end: a busy connection touches the timer wheel
/// about once per idle period, not per request.
async fn drive<T: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut h2::server::Connection<T, Bytes>,
    running: &mut FuturesUnordered<Stream>,
    resets: Option<&AtomicUsize>,
    idle: Option<std::time::Duration>,
    stop: Option<&DataPlane>,
    mut start: impl FnMut(Request<RecvStream>, SendResponse<Bytes>) -> Stream,
) -> Result<Ended, h2::Error> {
    // When the connection last became idle (no stream in flight).
    let mut idle_since = Some(Instant::now());
    let mut timer = Timer::default();
    let mut stopped = pin!(stop.map(|dp| dp.stop.wait()));
    std::future::poll_fn(|cx| {
        loop {
            while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {}
            if resets.is_some_and(|r| r.load(Ordering::Relaxed) >= MAX_CLIENT_RESETS) {
                return Poll::Ready(Ok(Ended::Abusive));
            }
            match conn.poll_accept(cx) {
                Poll::Ready(Some(Ok((req, respond)))) => {
                    idle_since = None;
                    running.push(start(req, respond));
                    continue;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(Ended::Closed)),
                Poll::Pending => {}
            }
            if stopped.as_mut().as_pin_mut().is_some_and(|f| f.poll(cx).is_ready()) {
                return Poll::Ready(Ok(Ended::Stopping));
            }
            let Some(idle) = idle else { return Poll::Pending };
            if !running.is_empty() {
                return Poll::Pending;
            }
            let deadline = *idle_since.get_or_insert_with(Instant::now) + idle;
            return timer.poll_deadline(cx, deadline).map(|()| Ok(Ended::Idle));
        }
    })
    .await
}

/// Counts requests dropped before they finished (the client reset them,
/// or the connection went away under them).
struct ResetGuard {
    resets: Arc<AtomicUsize>,
    done: bool,
}

impl Drop for ResetGuard {
    fn drop(&mut self) {
        if !self.done {
            self.resets.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What a response's body is.
enum Reply {
    /// All of it (possibly empty).
    Whole(Bytes),
    /// To be read from the backend connection.
    Backend(Box<Relay>),
}

/// A response body still to come from the backend.
struct Relay {
    up: TcpStream,
    buf: Buf,
    framing: Framing,
    idle: std::time::Duration,
    keep_alive: bool,
    backend: Arc<BackendState>,
    active: ActiveGuard,
}

fn own(status: StatusCode, text: &'static str) -> (Response<()>, Reply) {
    let mut r = Response::new(());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    (r, Reply::Whole(Bytes::from_static(text.as_bytes())))
}

/// One request stream: forwarded and answered, or dropped if the client
/// resets it first.
async fn stream(
    dp: Arc<DataPlane>,
    key: ListenerKey,
    peer: SocketAddr,
    req: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    mut guard: ResetGuard,
) {
    let mut answer = pin!(handle(&dp, key, peer, req));
    let answered = std::future::poll_fn(|cx| {
        if let Poll::Ready(a) = answer.as_mut().poll(cx) {
            return Poll::Ready(Some(a));
        }
        // Reset by the client: the request is dropped (and counted).
        if respond.poll_reset(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await;
    let Some((head, reply)) = answered else { return };
    guard.done = true;
    match reply {
        Reply::Whole(data) => {
            if let Ok(mut send) = respond.send_response(head, data.is_empty())
                && !data.is_empty()
            {
                // Whole bodies are small or already held: h2 buffers what
                // the window does not take yet.
                let _ = send.send_data(data, true);
            }
        }
        Reply::Backend(relay) => {
            if let Ok(send) = respond.send_response(head, false) {
                relay_body(&dp, *relay, send).await;
            }
        }
    }
}

async fn handle(dp: &DataPlane, key: ListenerKey, peer: SocketAddr, req: Request<RecvStream>) -> (Response<()>, Reply) {
    let Some(cfg) = dp.current.load().listeners.get(&key).cloned() else {
        return own(StatusCode::SERVICE_UNAVAILABLE, "no backend available\n");
    };
    cfg.stats.inc(Stat::Requests);
    let log = dp.config.access_log.then(|| {
        (
            Instant::now(),
            format!(
                "{} {}",
                req.method(),
                req.uri().path_and_query().map_or("/", |p| p.as_str())
            ),
        )
    });
    let (head, reply) = forward(dp, &cfg, key, peer, req)
        .await
        .unwrap_or_else(|(status, text)| own(status, text));
    cfg.stats.response(head.status().as_u16());
    if let Some((started, request)) = log {
        tracing::info!(
            target: "weir::access",
            client = %peer,
            lb = %cfg.lb_id,
            vserver = %cfg.vserver_id,
            protocol = "h2",
            request = %request,
            status = head.status().as_u16(),
            header_ms = started.elapsed().as_secs_f64() * 1000.0,
        );
    }
    (head, reply)
}

type Failure = (StatusCode, &'static str);
const BAD_REQUEST: Failure = (StatusCode::BAD_REQUEST, "bad request\n");
const BAD_GATEWAY: Failure = (StatusCode::BAD_GATEWAY, "bad gateway\n");
const GATEWAY_TIMEOUT: Failure = (StatusCode::GATEWAY_TIMEOUT, "gateway timeout\n");

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
    req: Request<RecvStream>,
) -> Result<(Response<()>, Reply), Failure> {
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
    // Written piece by piece: the formatting machinery cost more than the
    // rest of the head (the client address alone ~1,900 instructions).
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.path.as_bytes());
    out.extend_from_slice(target.query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    // No Connection header can name fields to drop: h2 refuses a request
    // with connection-specific fields (RFC 9113 8.2.2) before it gets here.
    let mut has_length = false;
    let mut xff: Option<&HeaderValue> = None;
    let mut more_xff = false;
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if is_hop(n) {
            continue;
        }
        if fwd.x_forwarded_for && n == "x-forwarded-for" {
            more_xff |= xff.is_some();
            xff.get_or_insert(value);
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
    let mut ip_text = [0u8; 46];
    let ip = super::ip_bytes(peer.ip(), &mut ip_text);
    out.extend_from_slice(b"Host: ");
    out.extend_from_slice(fwd.host.as_deref().unwrap_or(&host).as_bytes());
    out.extend_from_slice(b"\r\n");
    if fwd.x_forwarded_for {
        out.extend_from_slice(b"X-Forwarded-For: ");
        if more_xff {
            for v in parts
                .headers
                .get_all(http::header::HeaderName::from_static("x-forwarded-for"))
            {
                out.extend_from_slice(v.as_bytes());
                out.extend_from_slice(b", ");
            }
        } else if let Some(v) = xff {
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(ip);
        out.extend_from_slice(b"\r\n");
    }
    if fwd.x_real_ip {
        out.extend_from_slice(b"X-Real-IP: ");
        out.extend_from_slice(ip);
        out.extend_from_slice(b"\r\n");
    }
    if fwd.x_forwarded_proto {
        out.extend_from_slice(http.proto_line);
    }
    let has_body = !body.is_end_stream();
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
        let (i, mut up, reused) = match attempts.connect(dp, cfg, group, peer.ip()).await {
            Found::Conn { i, up, reused } => (i, up, reused),
            Found::NoCandidate => return Err((StatusCode::SERVICE_UNAVAILABLE, "no backend available\n")),
            Found::Exhausted => break,
        };
        let Some(backend) = cfg.backends.get(i) else { break };
        let active = ActiveGuard::new(backend);
        // A backend that takes no byte of the request for the idle timeout
        // is given up on (504), as over HTTP/1.
        let mut timer = Timer::default();
        match timer.after(cfg.idle_timeout, send_all(&up, &out)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                attempts.write_failed(i, reused);
                continue;
            }
            // Part of the head may be with the backend: no retry.
            Err(_) => return Err(GATEWAY_TIMEOUT),
        }
        let mut up_buf = Buf::default();
        // Set when the backend answered before taking the whole body: its
        // connection is mid-request, never pooled.
        let mut early = false;
        if let Some(b) = body.take()
            && let Err(f) = send_body(&mut up, b, chunked, cfg.idle_timeout, &mut timer).await
        {
            // The backend stopped taking the body (a failed or stalled
            // write): an answer it already sent (413…) is relayed, as over
            // HTTP/1; h2 then resets the rest of the request (NO_ERROR).
            let backend_side = f == BAD_GATEWAY || f == GATEWAY_TIMEOUT;
            if !backend_side || early_response(&up, &mut up_buf, is_head).is_none() {
                return Err(f);
            }
            early = true;
        }
        let mut res = match read_head(dp, &mut up, &mut up_buf, is_head).await {
            Ok(r) => r,
            Err(_) if reused && retry_safe && up_buf.is_empty() => {
                attempts.retry_same(i);
                body = None;
                continue;
            }
            Err(e) => return Err(e),
        };
        // One copy of the head, and of a body of known length that is all
        // here (the common small response): header values and the body
        // are slices of it.
        let whole_len = match res.framing {
            Framing::Length(n) if (up_buf.len() - res.len) as u64 >= n => Some(n as usize),
            _ => None,
        };
        let b = Bytes::copy_from_slice(&up_buf.bytes()[..res.len + whole_len.unwrap_or(0)]);
        let mut headers = HeaderMap::with_capacity(res.fields.len() + 1);
        for f in &res.fields {
            if f.hop || f.kind == head::Name::TransferEncoding {
                continue;
            }
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(&b[f.name.clone()]),
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
        res.keep_alive &= !early;
        let mut resp = Response::new(());
        *resp.status_mut() = StatusCode::from_u16(res.status).map_err(|_| BAD_GATEWAY)?;
        *resp.headers_mut() = headers;
        up_buf.consume(res.len);
        // The whole body is already here (the common small response):
        // answered at once, the backend connection straight back to the pool.
        let whole = match whole_len {
            Some(n) => {
                up_buf.consume(n);
                Some(b.slice(res.len..))
            }
            None => whole_body(&mut up_buf, res.framing),
        };
        if let Some(data) = whole {
            drop(active);
            if res.keep_alive && up_buf.is_empty() {
                backend.pool.put(up);
            }
            return Ok((resp, Reply::Whole(data)));
        }
        let relay = Relay {
            up,
            buf: up_buf,
            framing: res.framing,
            idle: cfg.idle_timeout,
            keep_alive: res.keep_alive,
            backend: backend.clone(),
            active,
        };
        return Ok((resp, Reply::Backend(Box::new(relay))));
    }
    Err(BAD_GATEWAY)
}

async fn send_body(
    up: &mut TcpStream,
    mut body: RecvStream,
    chunked: bool,
    idle: std::time::Duration,
    timer: &mut Timer,
) -> Result<(), Failure> {
    // Each write bounded by the idle timeout: a backend that stops taking
    // the body must not hold the stream (and the client's window) forever.
    let mut send = async |bytes: &[u8]| match timer.after(idle, send_all(up, bytes)).await {
        Ok(r) => r.map_err(|_| BAD_GATEWAY),
        Err(_) => Err(GATEWAY_TIMEOUT),
    };
    loop {
        let data = match timeout(idle, std::future::poll_fn(|cx| body.poll_data(cx))).await {
            Err(_) => return Err((StatusCode::REQUEST_TIMEOUT, "request body timeout\n")),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(BAD_REQUEST),
            Ok(Some(Ok(d))) => d,
        };
        if data.is_empty() {
            continue;
        }
        let n = data.len();
        let r = if chunked {
            let mut head = [0u8; 18];
            let size = hex_len(n, &mut head);
            let mut all = Vec::with_capacity(size.len() + n + 2);
            all.extend_from_slice(size);
            all.extend_from_slice(&data);
            all.extend_from_slice(b"\r\n");
            send(&all).await
        } else {
            send(&data).await
        };
        r?;
        // Forwarded: the client may send as much again.
        let _ = body.flow_control().release_capacity(n);
    }
    if chunked {
        send(b"0\r\n\r\n").await?;
    }
    Ok(())
}

/// `n` in hex followed by CRLF (a chunk-size line).
fn hex_len(mut n: usize, out: &mut [u8; 18]) -> &[u8] {
    let mut digits = [0u8; 16];
    let mut k = 0;
    loop {
        digits[k] = b"0123456789abcdef"[n & 15];
        k += 1;
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    for (i, d) in digits[..k].iter().rev().enumerate() {
        out[i] = *d;
    }
    out[k] = b'\r';
    out[k + 1] = b'\n';
    &out[..k + 2]
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
            Err(_) => return Err(GATEWAY_TIMEOUT),
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

/// Relays the rest of a response body from the backend to the client's
/// stream, chunk by chunk under the stream's flow control (a chunk waits
/// for window before the next is read: the backend is read no faster than
/// the client takes). The backend connection goes back to the pool if the
/// body completed. A body still streaming when its deleted backend's drain
/// period ends is cut (the stream reset), as over HTTP/1 and TCP.
async fn relay_body(dp: &DataPlane, r: Relay, mut send: h2::SendStream<Bytes>) {
    let Relay {
        up,
        mut buf,
        framing,
        idle,
        keep_alive,
        backend,
        active,
    } = r;
    let mut remaining = match framing {
        Framing::Length(n) => n,
        _ => u64::MAX,
    };
    let mut chunks = Chunked::default();
    let mut drain = pin!(backend.drained.wait());
    let done = loop {
        let avail = buf.bytes();
        let data: Bytes;
        let used;
        match framing {
            Framing::Chunked => {
                let mut out = Vec::with_capacity(avail.len());
                match chunks.feed(avail, |r| out.extend_from_slice(&avail[r])) {
                    Ok(n) => used = n,
                    Err(_) => break false,
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
        let end = match framing {
            Framing::Chunked => chunks.done(),
            Framing::None => true,
            _ => remaining == 0,
        };
        if (!data.is_empty() || end) && send_data(&mut send, data, end, idle).await.is_err() {
            break false;
        }
        if end {
            break buf.is_empty();
        }
        let read = tokio::select! {
            r = timeout(idle, buf.fill(&up)) => r,
            () = drain.as_mut() => {
                Counters::inc(&dp.counters.drained_closed);
                send.send_reset(h2::Reason::CANCEL);
                break false;
            }
        };
        match read {
            Ok(Ok(0)) if framing == Framing::Close => {
                let _ = send.send_data(Bytes::new(), true);
                break false;
            }
            Ok(Ok(n)) if n > 0 => {}
            _ => {
                send.send_reset(h2::Reason::INTERNAL_ERROR);
                break false;
            }
        }
    };
    drop(active);
    if done && keep_alive {
        backend.pool.put(up);
    }
}

/// Sends `data` on `send` as the window allows (the next chunk is read
/// only once this one is handed over).
async fn send_data(
    send: &mut h2::SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
    idle: std::time::Duration,
) -> Result<(), h2::Error> {
    if data.is_empty() {
        return send.send_data(data, end);
    }
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        // A client that opens no window for the idle timeout is idle.
        let granted = match timeout(idle, std::future::poll_fn(|cx| send.poll_capacity(cx))).await {
            Ok(Some(Ok(n))) => n,
            Ok(Some(Err(e))) => return Err(e),
            Ok(None) | Err(_) => return Err(h2::Error::from(h2::Reason::CANCEL)),
        };
        if granted == 0 {
            continue;
        }
        let part = data.split_to(granted.min(data.len()));
        send.send_data(part, end && data.is_empty())?;
    }
    Ok(())
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
