//! HTTP/1.x client connections: read a request head strictly, route it, pick
//! a backend (cookie first), forward the rewritten head and the body to a
//! pooled keep-alive backend connection, relay the response back, repeat.
//!
//! Bodies stream through a bounded buffer in both directions (never held
//! whole); chunked bodies are relayed byte for byte while a tracker checks
//! their framing. Weir's own responses (400/502/503/504) come from one place,
//! [`super::respond`]. The snapshot is read once per request.

use std::io::Write as _;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;

use tokio::net::TcpStream;

use super::client::{self, ClientIo};
use crate::meter::Meter;
use tokio::time::{Duration, Instant};

use super::buf::{Buf, send_all};
use super::chunked::Chunked;
use super::head::{self, Framing, HeadError, Method, Name};
use super::path;
use super::respond::{Fail, respond};
use super::route::host_key;
use super::timer::Timer;
use super::upstream::{Attempts, Found, early_response};
use crate::counters::Counters;
use crate::dataplane::DataPlane;
use crate::snapshot::{ActiveGuard, BackendState, ListenerConfig, ListenerKey, Stat};

/// Connections tried per request (a dead pooled connection is replaced;
/// connect failures move on within `Attempts`).
const MAX_ATTEMPTS: usize = 5;
/// Bodies up to this size are sent in the same write as their head.
const COALESCE: usize = 16 * 1024;
/// Body bytes still to come from which a known-length body is spliced
/// (zero-copy) rather than copied through the buffer.
const SPLICE_MIN: u64 = 16 * 1024;
/// Lingering close after Weir's own closing answer (see [`Conn::linger`]):
/// how long the client may stay quiet, and how long it may keep sending.
const LINGER_QUIET: Duration = Duration::from_secs(2);
const LINGER_MAX: Duration = Duration::from_secs(10);

/// What happens to the client connection after a request.
enum Next {
    KeepAlive,
    Close,
    /// Close, once the client is done sending (see [`Conn::linger`]);
    /// `request` does that and returns `Close`.
    Linger,
    /// An upgrade was accepted (101): relay raw bytes from now on.
    Tunnel(TcpStream, ActiveGuard, Duration),
    /// The client opened with the HTTP/2 preface.
    H2,
}

/// Updates the access-log record of the current request, if there is one.
macro_rules! record {
    ($conn:expr, $r:ident => $update:expr) => {
        if let Some($r) = $conn.rec.as_deref_mut() {
            $update;
        }
    };
}

/// What the access log says of one request.
#[derive(Default)]
struct Record {
    started: Option<Instant>,
    /// Method and normalized path (filled only when the log is on).
    request: String,
    backend: Option<Arc<BackendState>>,
    status: u16,
    /// Request bytes forwarded (head as received, plus body).
    bytes_in: u64,
    /// Response bytes sent to the client.
    bytes_out: u64,
    /// Time to the backend's response head.
    header_ms: Option<f64>,
}

/// The listener's key as an idle connection keeps it: LB addresses are
/// IPv4, so 8 bytes instead of a `SocketAddr`'s 32 (boxed otherwise).
enum Key {
    V4(std::net::SocketAddrV4),
    Other(Box<ListenerKey>),
}

impl Key {
    fn new(k: ListenerKey) -> Key {
        match k.addr {
            SocketAddr::V4(a) if !k.udp => Key::V4(a),
            _ => Key::Other(Box::new(k)),
        }
    }

    fn get(&self) -> ListenerKey {
        match self {
            Key::V4(a) => ListenerKey {
                addr: SocketAddr::V4(*a),
                udp: false,
            },
            Key::Other(k) => **k,
        }
    }
}

struct Conn<C> {
    dp: Arc<DataPlane>,
    /// The client's IP as text, for the forwarding headers.
    /// What the access log will say of the current request; only while
    /// the log is on (an idle connection holds a pointer, not the record).
    rec: Option<Box<Record>>,
    key: Key,
    client: C,
    peer: SocketAddr,
    /// Counts this connection into its VServer's and LB's counters.
    meter: Meter,
    /// Client bytes not yet forwarded.
    buf: Buf,
    /// Backend bytes not yet relayed.
    up_buf: Buf,
    /// Heads being written.
    out: Vec<u8>,
    /// The deadline of whatever the connection waits for.
    timer: Timer,
}

/// The connection's future. Not `async fn`: the task then holds only the
/// `run` state, and that stays small while idle because each request's
/// exchange is boxed (an idle keep-alive connection costs a few hundred
/// bytes of task state and no buffer).
pub(crate) fn serve<C: ClientIo>(
    dp: Arc<DataPlane>,
    key: ListenerKey,
    client: C,
    peer: SocketAddr,
    meter: Meter,
) -> impl Future<Output = ()> + Send {
    let c = Conn {
        dp,
        rec: None,
        key: Key::new(key),
        client,
        peer,
        meter,
        buf: Buf::default(),
        up_buf: Buf::default(),
        out: Vec::new(),
        timer: Timer::default(),
    };
    c.run()
}

/// A request head and what Weir decided about it.
struct Plan {
    method: Method,
    framing: Framing,
    keep_alive: bool,
    http10: bool,
    upgrade: bool,
    expect_continue: bool,
    /// Backend named by a valid persistence cookie: tried first, and a
    /// response from another backend gets a new cookie.
    cookie_backend: Option<usize>,
}

impl<C: ClientIo> Conn<C> {
    /// True when the client opened with the HTTP/2 preface (h2c with prior
    /// knowledge); reads until the preface is confirmed or ruled out.
    async fn sniff_h2(&mut self, idle: Duration) -> bool {
        let deadline = Instant::now() + idle;
        loop {
            let b = self.buf.bytes();
            let n = b.len().min(super::h2::PREFACE.len());
            if b[..n] != super::h2::PREFACE[..n] {
                return false;
            }
            if n == super::h2::PREFACE.len() {
                return true;
            }
            match self
                .timer
                .within(deadline, client::fill(&mut self.client, &mut self.buf, &self.meter))
                .await
            {
                Ok(Ok(n)) if n > 0 => {}
                _ => return false,
            }
        }
    }

    /// The connection loop. While waiting for a request the task holds
    /// only this loop's small state; everything a request needs lives in a
    /// boxed future that exists while the request does.
    async fn run(mut self) {
        // Over TLS, HTTP/2 is chosen by ALPN before this connection starts.
        let mut first = C::CLEARTEXT;
        let Some(mut idle) = self
            .dp
            .current
            .load()
            .listeners
            .get(&self.key.get())
            .map(|c| c.idle_timeout)
        else {
            return;
        };
        if let Some(tcp) = self.client.tcp() {
            // A new connection's first request usually came with it: read it
            // now rather than wait for the poller to report it (one wake-up
            // less per connection, which `Connection: close` clients pay on
            // every request).
            let mut early = [0u8; 2048];
            if let Ok((n, _)) = rustix::net::recv(tcp, &mut early[..], rustix::net::RecvFlags::DONTWAIT)
                && n > 0
            {
                self.buf.push(&early[..n]);
                self.meter.bytes_in(n);
            }
        }
        loop {
            if self.buf.is_empty() {
                self.buf.release();
                self.up_buf.release();
                super::buf::give_vec(std::mem::take(&mut self.out));
                match self.await_request(idle).await {
                    Some(true) => {}
                    Some(false) => return self.closed(),
                    None => {
                        Counters::inc(&self.dp.counters.idle_closed);
                        return self.closed();
                    }
                }
            }
            let next = Box::pin(self.request(&mut idle, std::mem::take(&mut first))).await;
            match next {
                Next::KeepAlive => {
                    if let Some(fd) = self.client.fd() {
                        self.meter.segments_if_due(fd);
                    }
                    if self.dp.stopping() {
                        return self.closed();
                    }
                }
                Next::Close | Next::Linger => return self.closed(),
                // The connection leaves HTTP/1: boxed, so its state does not
                // weigh on every idle connection's task.
                other => return Box::pin(self.hand_over(other)).await,
            }
        }
    }

    /// The connection ends here: its last segments are counted.
    fn closed(&self) {
        if let Some(fd) = self.client.fd() {
            self.meter.segments(fd);
        }
    }

    /// Serves the rest of the connection as HTTP/2 or as an upgraded tunnel.
    async fn hand_over(self, next: Next) {
        match next {
            Next::H2 => {
                let prefix = self.buf.bytes().to_vec();
                super::h2::serve(self.dp, self.key.get(), self.client, self.peer, prefix, self.meter).await;
            }
            Next::Tunnel(up, guard, idle) => match self.client.into_tcp() {
                Ok(client) => crate::tcp::tunnel(&self.dp, client, up, idle, guard, self.meter).await,
                Err(client) => {
                    let fd = client.fd().and_then(|f| f.try_clone_to_owned().ok());
                    crate::tcp::tunnel_io(&self.dp, client, fd, up, idle, guard, self.meter).await
                }
            },
            Next::KeepAlive | Next::Close | Next::Linger => {}
        }
    }

    /// Waits (up to the keep-alive idle timeout: `None` after it) for the
    /// next request's first bytes and buffers them; `Some(false)` when the
    /// client closed. This is the state idle connections sit in: no heap
    /// buffer, a small future (see [`Conn::first_read`]).
    async fn await_request(&mut self, idle: Duration) -> Option<bool> {
        let read = Self::first_read(&mut self.client, &mut self.buf, &self.meter);
        match self.timer.after(idle, read).await {
            Err(_) => None,
            Ok(Ok(n)) => Some(n > 0),
            Ok(Err(_)) => Some(false),
        }
    }

    /// Reads what the client sent next into the buffer (0 at end of
    /// stream). The bytes pass through a stack buffer that lives only inside
    /// one poll, and the future holds one pointer (to the connection), so a
    /// connection waiting here holds no heap buffer and a small future.
    async fn first_read(client: &mut C, buf: &mut Buf, meter: &Meter) -> std::io::Result<usize> {
        if let Some(r) = client.raw_recv(buf) {
            if let Ok(n) = r {
                meter.bytes_in(n);
            }
            return r;
        }
        std::future::poll_fn(|cx: &mut std::task::Context<'_>| {
            let mut space = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
            let mut rb = tokio::io::ReadBuf::uninit(&mut space);
            std::task::ready!(std::pin::Pin::new(&mut *client).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            buf.push(rb.filled());
            meter.bytes_in(n);
            std::task::Poll::Ready(Ok(n))
        })
        .await
    }

    /// One request: head, exchange (or Weir's own answer), access log. On a
    /// connection's `first` request, an HTTP/2 preface hands it over.
    async fn request(&mut self, idle: &mut Duration, first: bool) -> Next {
        if first && self.sniff_h2(*idle).await {
            return Next::H2;
        }
        if self.out.capacity() == 0 {
            self.out = super::buf::take_vec();
        }
        self.rec = self.dp.config.access_log.then(|| {
            Box::new(Record {
                started: Some(Instant::now()),
                ..Record::default()
            })
        });
        // Headers must be complete within the idle timeout of the
        // request's first byte (slowloris).
        let head = self.read_head(*idle).await;
        // The snapshot, once per request, read once its head is in.
        let Some(cfg) = self.dp.current.load().listeners.get(&self.key.get()).cloned() else {
            return Next::Close;
        };
        *idle = cfg.idle_timeout;
        let next = match head {
            Ok(None) => return Next::Close,
            Ok(Some(h)) => {
                cfg.stats.inc(Stat::Requests);
                match self.exchange(&cfg, h).await {
                    Ok(n) => n,
                    Err(f) => self.fail(&cfg, f).await,
                }
            }
            Err(f) => {
                if !matches!(f, Fail::ClientGone | Fail::ClientTimeout) {
                    cfg.stats.inc(Stat::Requests);
                }
                self.fail(&cfg, f).await
            }
        };
        self.access_log(&cfg);
        if matches!(next, Next::Linger) {
            self.linger().await;
            return Next::Close;
        }
        next
    }

    /// Sends Weir's own response for `f` (if any) and says whether the
    /// connection goes on.
    async fn fail(&mut self, cfg: &ListenerConfig, f: Fail) -> Next {
        if matches!(f, Fail::ClientTimeout) {
            Counters::inc(&self.dp.counters.idle_closed);
        }
        let Some((status, bytes, keep)) = respond(&f) else {
            return Next::Close;
        };
        cfg.stats.response(status);
        record!(self, r => {
            r.status = status;
            r.bytes_out += bytes.len() as u64;
        });
        let sent = self
            .timer
            .after(cfg.idle_timeout, client::send(&mut self.client, bytes, &self.meter))
            .await;
        if !matches!(sent, Ok(Ok(()))) {
            return Next::Close;
        }
        if !keep {
            return Next::Linger;
        }
        Next::KeepAlive
    }

    /// Weir's closing answer is sent, and the client may still be sending
    /// (a request body Weir did not read). Closing with its bytes unread
    /// would reset the connection, and a client still writing would get
    /// the reset instead of the answer. So Weir stops writing (a FIN after
    /// the answer) and reads and drops what comes until the client closes,
    /// is quiet for [`LINGER_QUIET`], or [`LINGER_MAX`] has passed (nginx's
    /// lingering close).
    async fn linger(&mut self) {
        use tokio::io::AsyncWriteExt;
        if self.client.shutdown().await.is_err() {
            return;
        }
        let end = Instant::now() + LINGER_MAX;
        loop {
            self.buf.consume(self.buf.len());
            let quiet = (Instant::now() + LINGER_QUIET).min(end);
            match self
                .timer
                .within(quiet, client::fill(&mut self.client, &mut self.buf, &self.meter))
                .await
            {
                Ok(Ok(1..)) => {}
                _ => return,
            }
        }
    }

    /// The request head, which must be complete within `idle` of now (the
    /// deadline is only computed when the head is not all there yet).
    async fn read_head(&mut self, idle: Duration) -> Result<Option<head::Request>, Fail> {
        let mut deadline = None;
        loop {
            if !self.buf.is_empty() {
                match head::request(self.buf.bytes()) {
                    Ok(Some(h)) => return Ok(Some(h)),
                    Ok(None) => {}
                    Err(HeadError::Invalid(why)) => return Err(Fail::BadRequest(why)),
                    Err(HeadError::TooLarge) => return Err(Fail::BadRequest("request head too large")),
                }
            }
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + idle);
            match self
                .timer
                .within(deadline, client::fill(&mut self.client, &mut self.buf, &self.meter))
                .await
            {
                Err(_) => return Err(Fail::ClientTimeout),
                Ok(Ok(0)) | Ok(Err(_)) => return Ok(None),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Routes `h`, finds a pinned backend, and writes the backend request
    /// head into `self.out`.
    fn plan_inner<'c>(
        &mut self,
        cfg: &'c ListenerConfig,
        h: &head::Request,
    ) -> Result<(Plan, &'c super::route::Group), Fail> {
        let http = cfg.http.as_ref().ok_or(Fail::BadGateway("not an HTTP VServer"))?;
        let b = self.buf.bytes();
        let s = |r: &Range<usize>| std::str::from_utf8(b.get(r.clone()).unwrap_or_default()).unwrap_or_default();
        let target = path::normalize(s(&h.target)).map_err(|e| Fail::BadRequest(e.0))?;
        let host = target.authority.or_else(|| h.host.as_ref().map(s)).unwrap_or_default();
        let group = http.route(&host_key(host), &target.path);
        let pinned = http
            .cookies
            .as_ref()
            .and_then(|c| c.pinned(h.cookies.iter().map(|r| &b[r.clone()]), group, &cfg.backends));
        let fwd = &http.forward;
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(&b[h.method_range.clone()]);
        out.push(b' ');
        out.extend_from_slice(target.path.as_bytes());
        out.extend_from_slice(target.query.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        // The fields forwarded as they came, in runs of whole lines.
        let replaced = |f: &head::Field| match f.kind {
            Name::XForwardedFor => fwd.x_forwarded_for,
            Name::XRealIp => fwd.x_real_ip,
            Name::XForwardedProto => fwd.x_forwarded_proto,
            Name::Host => fwd.host.is_some(),
            _ => false,
        };
        head::copy_fields(out, b, &h.fields, h.len - 2, |f| !f.hop && !replaced(f));
        // The client's IP as text, on the stack.
        let mut ip_text = [0u8; 46];
        let ip = super::ip_bytes(self.peer.ip(), &mut ip_text);
        if fwd.x_forwarded_for {
            out.extend_from_slice(b"X-Forwarded-For: ");
            for f in h.fields.iter().filter(|f| f.kind == Name::XForwardedFor) {
                out.extend_from_slice(&b[f.value.clone()]);
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
        match &fwd.host {
            Some(v) => {
                let _ = write!(out, "Host: {v}\r\n");
            }
            None if h.host.is_none() => {
                let _ = write!(out, "Host: {}\r\n", self.key.get().addr);
            }
            None => {}
        }
        if let Some(u) = &h.upgrade {
            out.extend_from_slice(b"Connection: upgrade\r\nUpgrade: ");
            out.extend_from_slice(&b[u.clone()]);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        let plan = Plan {
            method: h.method,
            framing: h.framing,
            keep_alive: h.keep_alive,
            http10: h.minor == 0,
            upgrade: h.upgrade.is_some(),
            expect_continue: h.expect_continue,
            cookie_backend: pinned,
        };
        if self.dp.config.access_log {
            let line = format!("{} {}{}", s(&h.method_range), target.path, target.query);
            record!(self, r => r.request = line);
        }
        Ok((plan, group))
    }

    async fn exchange(&mut self, cfg: &Arc<ListenerConfig>, h: head::Request) -> Result<Next, Fail> {
        let (plan, group) = self.plan_inner(cfg, &h)?;
        record!(self, r => r.bytes_in = h.len as u64);
        self.buf.consume(h.len);
        drop(h);
        let idle = cfg.idle_timeout;
        if plan.expect_continue && plan.framing != Framing::None && self.buf.is_empty() {
            let continue_ = client::send(&mut self.client, b"HTTP/1.1 100 Continue\r\n\r\n", &self.meter);
            self.timer
                .after(idle, continue_)
                .await
                .map_err(|_| Fail::ClientTimeout)?
                .map_err(|_| Fail::ClientGone)?;
        }
        if plan.framing == Framing::Chunked {
            self.precheck_chunked(idle).await?;
        }
        // A small body already here goes out with the head.
        let mut body = Body::new(plan.framing);
        if let Framing::Length(n) = plan.framing
            && n as usize <= COALESCE
            && self.buf.len() as u64 >= n
        {
            self.out.extend_from_slice(&self.buf.bytes()[..n as usize]);
            self.buf.consume(n as usize);
            body = Body::Length(0);
        }
        let retry_safe = plan.framing == Framing::None && plan.method.idempotent();
        let mut attempts = Attempts::new(plan.cookie_backend);
        for _ in 0..MAX_ATTEMPTS {
            let (i, mut up, reused) = match attempts.connect(&self.dp, cfg, group, self.peer.ip()).await {
                Found::Conn { i, up, reused } => (i, up, reused),
                Found::NoCandidate => return Err(Fail::NoBackend(plan.framing != Framing::None)),
                Found::Exhausted => break,
            };
            let Some(backend) = cfg.backends.get(i) else { break };
            let guard = ActiveGuard::new(backend);
            record!(self, r => r.backend = Some(backend.clone()));
            // Nothing a previous backend sent may be read as this response.
            self.up_buf.consume(self.up_buf.len());
            match self.timer.after(idle, send_all(&up, &self.out)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    attempts.write_failed(i, reused);
                    continue;
                }
                // Part of the head may be with the backend: no retry.
                Err(_) => return Err(Fail::GatewayTimeout),
            }
            let sent = match self.send_body(&mut up, &mut body, idle).await {
                Ok(n) => n,
                // The backend stopped taking the body: it may have answered
                // early (413, 401…) and closed or stopped reading. Its answer
                // is what the client gets; the connection closes after it
                // (the client's body is unfinished), and so does the
                // backend's (it is mid-request).
                Err(f @ (Fail::BadGateway(_) | Fail::GatewayTimeout)) => {
                    let Some(mut res) = early_response(&up, &mut self.up_buf, plan.method == Method::Head) else {
                        return Err(f);
                    };
                    res.keep_alive = false;
                    let plan = Plan {
                        keep_alive: false,
                        ..plan
                    };
                    let next = self.respond_with(cfg, &plan, i, backend, up, guard, res).await;
                    return next.map(|n| match n {
                        Next::Close => Next::Linger,
                        other => other,
                    });
                }
                Err(f) => return Err(f),
            };
            // The request is with the backend: the client buffer goes back
            // while the response is awaited (unless the next request is in
            // it), so a busy connection holds one buffer across the wait.
            self.buf.release();
            // Timed only for the access log (a clock read less otherwise).
            let asked = self.rec.is_some().then(Instant::now);
            let res = match self.read_response(&mut up, plan.method == Method::Head, idle).await {
                Ok(r) => {
                    record!(self, rec => rec.header_ms = asked.map(|t| t.elapsed().as_secs_f64() * 1000.0));
                    r
                }
                Err(Fail::BadGateway(_)) if reused && retry_safe && sent == 0 && self.up_buf.is_empty() => {
                    // The pooled connection was closed under us.
                    attempts.retry_same(i);
                    continue;
                }
                Err(e) => return Err(e),
            };
            return self.respond_with(cfg, &plan, i, backend, up, guard, res).await;
        }
        Err(Fail::BadGateway("no backend could be reached"))
    }

    /// Chunked bodies: the first size line must be valid before anything
    /// goes to a backend, and so must every chunk already received.
    async fn precheck_chunked(&mut self, idle: Duration) -> Result<(), Fail> {
        loop {
            let mut c = Chunked::default();
            c.feed(self.buf.bytes(), |_| {}).map_err(|e| Fail::BadRequest(e.0))?;
            if c.started() || c.done() {
                return Ok(());
            }
            self.read_client(idle).await?;
        }
    }

    async fn read_client(&mut self, idle: Duration) -> Result<(), Fail> {
        match self
            .timer
            .after(idle, client::fill(&mut self.client, &mut self.buf, &self.meter))
            .await
        {
            Err(_) => Err(Fail::ClientTimeout),
            Ok(Ok(0)) | Ok(Err(_)) => Err(Fail::ClientGone),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Streams the request body to the backend; returns the bytes sent.
    async fn send_body(&mut self, up: &mut TcpStream, body: &mut Body, idle: Duration) -> Result<u64, Fail> {
        let mut sent = 0u64;
        loop {
            if !self.buf.is_empty() {
                let avail = self.buf.bytes();
                let n = match body {
                    Body::None => 0,
                    Body::Length(rem) => (*rem).min(avail.len() as u64) as usize,
                    Body::Chunked(c) => c.feed(avail, |_| {}).map_err(|e| Fail::BadRequestMidBody(e.0))?,
                    Body::Close => avail.len(),
                };
                if n > 0 {
                    // A backend that stops taking the body for the idle
                    // timeout is given up on (504; the connection closes).
                    self.timer
                        .after(idle, send_all(up, &avail[..n]))
                        .await
                        .map_err(|_| Fail::GatewayTimeout)?
                        .map_err(|_| Fail::BadGateway("backend closed while receiving the body"))?;
                    self.buf.consume(n);
                    sent += n as u64;
                    record!(self, r => r.bytes_in += n as u64);
                    if let Body::Length(rem) = body {
                        *rem -= n as u64;
                    }
                }
            }
            if body.done() {
                return Ok(sent);
            }
            if let Body::Length(rem) = body
                && *rem >= SPLICE_MIN
                && self.buf.is_empty()
                && self.dp.config.splice
                && let Some(tcp) = self.client.tcp()
            {
                // Boxed: the splice state is large and rare; inline, it
                // would be copied with every request's future.
                use crate::splice::Side;
                let timed_out = |e: &std::io::Error| e.kind() == std::io::ErrorKind::TimedOut;
                let moved =
                    Box::pin(crate::splice::exact(tcp, up, *rem, idle))
                        .await
                        .map_err(|(side, e)| match side {
                            Side::Src if timed_out(&e) => Fail::ClientTimeout,
                            Side::Src => Fail::ClientGone,
                            // As on the copy path: a backend that stops taking
                            // the body is given up on (504), one that fails, 502.
                            Side::Dst if timed_out(&e) => Fail::GatewayTimeout,
                            Side::Dst => Fail::BadGateway("backend closed while receiving the body"),
                        })?;
                sent += moved;
                self.meter.bytes_in(moved as usize);
                record!(self, r => r.bytes_in += moved);
                *rem -= moved;
                if *rem > 0 {
                    return Err(Fail::ClientGone);
                }
                return Ok(sent);
            }
            self.read_client(idle).await?;
        }
    }

    async fn read_response(
        &mut self,
        up: &mut TcpStream,
        is_head: bool,
        idle: Duration,
    ) -> Result<head::Response, Fail> {
        let deadline = Instant::now() + self.dp.config.response_header_timeout;
        loop {
            if !self.up_buf.is_empty() {
                match head::response(self.up_buf.bytes(), is_head) {
                    Ok(Some(r)) if (100..200).contains(&r.status) && r.status != 101 => {
                        // Interim responses (103 Early Hints…) go on to the client.
                        self.out.clear();
                        write_response_head(&mut self.out, self.up_buf.bytes(), &r, None, false);
                        self.out.extend_from_slice(b"\r\n");
                        // Boxed: rare, and inline it would weigh on every request.
                        let send = client::send(&mut self.client, &self.out, &self.meter);
                        Box::pin(self.timer.after(idle, send))
                            .await
                            .map_err(|_| Fail::ClientTimeout)?
                            .map_err(|_| Fail::ClientGone)?;
                        self.up_buf.consume(r.len);
                        continue;
                    }
                    Ok(Some(r)) => return Ok(r),
                    Ok(None) => {}
                    Err(_) => return Err(Fail::BadGateway("invalid response head from the backend")),
                }
            }
            match self.timer.within(deadline, self.up_buf.fill(up)).await {
                Err(_) => return Err(Fail::GatewayTimeout),
                Ok(Ok(0)) | Ok(Err(_)) => return Err(Fail::BadGateway("backend closed without a response")),
                Ok(Ok(_)) => {}
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn respond_with(
        &mut self,
        cfg: &ListenerConfig,
        plan: &Plan,
        i: usize,
        backend: &Arc<BackendState>,
        mut up: TcpStream,
        guard: ActiveGuard,
        res: head::Response,
    ) -> Result<Next, Fail> {
        record!(self, r => r.status = res.status);
        let http = cfg.http.as_ref();
        let cookie = match http.and_then(|h| h.cookies.as_ref()) {
            Some(c) if plan.cookie_backend != Some(i) => c.value(i).map(|v| (c.name.as_str(), v, c.attributes)),
            _ => None,
        };
        if res.status == 101 {
            if !plan.upgrade {
                return Err(Fail::BadGateway("unexpected 101 from the backend"));
            }
            self.out.clear();
            write_response_head(&mut self.out, self.up_buf.bytes(), &res, cookie, false);
            self.out.extend_from_slice(b"Connection: upgrade\r\n");
            for f in &res.fields {
                let b = self.up_buf.bytes();
                if b[f.name.clone()].eq_ignore_ascii_case(b"upgrade") {
                    self.out.extend_from_slice(b"Upgrade: ");
                    self.out.extend_from_slice(&b[f.value.clone()]);
                    self.out.extend_from_slice(b"\r\n");
                }
            }
            self.out.extend_from_slice(b"\r\n");
            self.up_buf.consume(res.len);
            self.out.extend_from_slice(self.up_buf.bytes());
            self.up_buf.consume(self.up_buf.len());
            if !self.flush_out(cfg.idle_timeout).await {
                return Err(Fail::ClientGone);
            }
            if !self.buf.is_empty() {
                self.timer
                    .after(cfg.idle_timeout, send_all(&up, self.buf.bytes()))
                    .await
                    .map_err(|_| Fail::GatewayTimeout)?
                    .map_err(|_| Fail::ClientGone)?;
                self.buf.consume(self.buf.len());
            }
            cfg.stats.response(101);
            return Ok(Next::Tunnel(up, guard, cfg.idle_timeout));
        }
        // HTTP/1.0 clients cannot read chunked bodies: they get the data.
        let dechunk = plan.http10 && res.framing == Framing::Chunked;
        // A stopping Weir says so and closes after this response.
        let keep = plan.keep_alive && res.framing != Framing::Close && !dechunk && !self.dp.stopping();
        self.out.clear();
        write_response_head(&mut self.out, self.up_buf.bytes(), &res, cookie, dechunk);
        if !keep {
            self.out.extend_from_slice(b"Connection: close\r\n");
        } else if plan.http10 {
            self.out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
        self.up_buf.consume(res.len);
        cfg.stats.response(res.status);
        let mut body = Body::new(res.framing);
        let done = self
            .relay_response(&mut up, &mut body, dechunk, cfg.idle_timeout, &backend.drained)
            .await;
        drop(guard);
        if !done {
            return Ok(Next::Close);
        }
        if res.keep_alive && self.up_buf.is_empty() {
            backend.pool.put(up);
        }
        Ok(if keep { Next::KeepAlive } else { Next::Close })
    }

    /// Relays the response body (the head is in `self.out`, sent with the
    /// first bytes). Returns whether it completed.
    /// A deleted backend's responses still streaming after the drain period
    /// are cut (`drained`), as its TCP connections are.
    async fn relay_response(
        &mut self,
        up: &mut TcpStream,
        body: &mut Body,
        dechunk: bool,
        idle: Duration,
        drained: &crate::signal::Signal,
    ) -> bool {
        if !self.take_body(body, dechunk) || !self.flush_out(idle).await {
            return false;
        }
        if body.done() {
            return true;
        }
        // More is to come. Boxed: small responses (the body came with the
        // head) never need this state, and inline it would be copied with
        // every request's future.
        Box::pin(self.relay_rest(up, body, dechunk, idle, drained)).await
    }

    async fn relay_rest(
        &mut self,
        up: &mut TcpStream,
        body: &mut Body,
        dechunk: bool,
        idle: Duration,
        drained: &crate::signal::Signal,
    ) -> bool {
        // Watched across the whole body: registered once, then one atomic
        // load per wake-up (the signal is shared by the backend's connections).
        let mut drain = std::pin::pin!(drained.wait());
        loop {
            // A long body of known length moves socket to socket (splice).
            if let Body::Length(rem) = body
                && *rem >= SPLICE_MIN
                && self.up_buf.is_empty()
                && self.dp.config.splice
                && let Some(tcp) = self.client.tcp()
            {
                let moved = tokio::select! {
                    r = crate::splice::exact(up, tcp, *rem, idle) => r,
                    () = drain.as_mut() => {
                        Counters::inc(&self.dp.counters.drained_closed);
                        return false;
                    }
                };
                let moved = match moved {
                    Ok(m) => m,
                    Err((crate::splice::Side::Dst, e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                        // The client stopped reading, as in `flush_out`.
                        Counters::inc(&self.dp.counters.idle_closed);
                        return false;
                    }
                    Err(_) => return false,
                };
                self.meter.bytes_out(moved as usize);
                record!(self, r => r.bytes_out += moved);
                *rem -= moved;
                return *rem == 0;
            }
            let read = tokio::select! {
                r = self.timer.after(idle, self.up_buf.fill(up)) => r,
                () = drain.as_mut() => {
                    Counters::inc(&self.dp.counters.drained_closed);
                    return false;
                }
            };
            match read {
                Ok(Ok(0)) => return matches!(body, Body::Close),
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => return false,
            }
            if !self.take_body(body, dechunk) || !self.flush_out(idle).await {
                return false;
            }
            if body.done() {
                return true;
            }
        }
    }

    /// Moves the body bytes the backend sent into `self.out` (decoding
    /// the chunked framing for HTTP/1.0 clients); `false` on a framing
    /// error.
    fn take_body(&mut self, body: &mut Body, dechunk: bool) -> bool {
        let avail = self.up_buf.bytes();
        let n = match body {
            Body::None => 0,
            Body::Length(rem) => (*rem).min(avail.len() as u64) as usize,
            Body::Close => avail.len(),
            Body::Chunked(c) => {
                let out = &mut self.out;
                let r = if dechunk {
                    c.feed(avail, |r| out.extend_from_slice(&avail[r]))
                } else {
                    c.feed(avail, |_| {})
                };
                match r {
                    Ok(n) => n,
                    Err(_) => return false,
                }
            }
        };
        if !dechunk {
            self.out.extend_from_slice(&avail[..n]);
        }
        self.up_buf.consume(n);
        if let Body::Length(rem) = body {
            *rem -= n as u64;
        }
        true
    }

    /// Sends what `self.out` holds to the client; `false` if it is gone
    /// or takes none of it for `idle` (a client that stops reading is
    /// idle: nothing moves).
    async fn flush_out(&mut self, idle: Duration) -> bool {
        if self.out.is_empty() {
            return true;
        }
        match self
            .timer
            .after(idle, client::send(&mut self.client, &self.out, &self.meter))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return false,
            Err(_) => {
                Counters::inc(&self.dp.counters.idle_closed);
                return false;
            }
        }
        let n = self.out.len() as u64;
        record!(self, r => r.bytes_out += n);
        self.out.clear();
        true
    }

    /// One JSON line per request on stdout when `[dataplane] access_log`
    /// is on (see the binary's log set-up).
    fn access_log(&mut self, cfg: &ListenerConfig) {
        let Some(r) = self.rec.take() else { return };
        if r.status == 0 {
            return;
        }
        tracing::info!(
            target: "weir::access",
            client = %self.peer,
            lb = %cfg.lb_id,
            vserver = %cfg.vserver_id,
            backend = r.backend.as_ref().map_or("-", |b| b.id.as_str()),
            request = %r.request,
            status = r.status,
            bytes_in = r.bytes_in,
            bytes_out = r.bytes_out,
            header_ms = r.header_ms.unwrap_or(-1.0),
            total_ms = r.started.map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0),
        );
    }
}

/// Where a body stands.
enum Body {
    None,
    Length(u64),
    Chunked(Chunked),
    Close,
}

impl Body {
    fn new(f: Framing) -> Body {
        match f {
            Framing::None => Body::None,
            Framing::Length(n) => Body::Length(n),
            Framing::Chunked => Body::Chunked(Chunked::default()),
            Framing::Close => Body::Close,
        }
    }
    fn done(&self) -> bool {
        match self {
            Body::None => true,
            Body::Length(n) => *n == 0,
            Body::Chunked(c) => c.done(),
            Body::Close => false,
        }
    }
}

/// A persistence cookie to set: name, value, attributes.
type Cookie<'a> = (&'a str, &'a str, &'static str);

/// Writes the status line and end-to-end headers of `r` (from `b`), plus
/// the persistence cookie; the caller adds `Connection` and the blank line.
fn write_response_head(out: &mut Vec<u8>, b: &[u8], r: &head::Response, cookie: Option<Cookie<'_>>, dechunk: bool) {
    let st = r.status.min(999);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&[
        b'0' + (st / 100) as u8,
        b'0' + (st / 10 % 10) as u8,
        b'0' + (st % 10) as u8,
        b' ',
    ]);
    out.extend_from_slice(&b[r.reason.clone()]);
    out.extend_from_slice(b"\r\n");
    head::copy_fields(out, b, &r.fields, r.len - 2, |f| {
        !(f.hop || dechunk && f.kind == Name::TransferEncoding)
    });
    if let Some((name, value, attributes)) = cookie {
        let _ = write!(out, "Set-Cookie: {name}={value}{attributes}\r\n");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn ip_text_is_what_display_writes() {
        let mut out = [0u8; 46];
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "1.100.99.9",
            "192.168.0.100",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:10.0.0.1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(super::super::ip_bytes(ip, &mut out), ip.to_string().as_bytes());
        }
        for a in (0..=255u8).step_by(7) {
            let ip = std::net::IpAddr::from([a, 255 - a, a / 3, 9]);
            assert_eq!(super::super::ip_bytes(ip, &mut out), ip.to_string().as_bytes());
        }
    }

    /// An idle keep-alive connection's task is mostly this future: growing
    /// it moves every idle connection up a jemalloc size class (768 → 896
    /// bytes of task), which is what bench/http.sh's idle-memory figure
    /// measures against HAProxy's. 624 bytes at the metrics change.
    #[test]
    fn an_idle_connection_future_stays_small() {
        crate::test_support::on_runtime(async {
            let fx = crate::test_support::Fixture::new();
            let c = super::super::Lazy::new(fx.client.try_clone().unwrap());
            let f = super::serve(fx.dp.clone(), fx.key, c, fx.peer(), fx.meter());
            let size = std::mem::size_of_val(&f);
            assert!(size <= 640, "the HTTP/1 connection future grew to {size} bytes");
        });
    }
}
