//! TCP VServers: accept, check the ACL, pick a backend (retrying up to two
//! others on connect failure), send the PROXY header, relay both ways with
//! half-close until either side is done, the idle timeout fires, or the
//! backend is deleted and drained.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use weir_model::vserver::ProxyProtocol;

use crate::counters::Counters;
use crate::dataplane::{DataPlane, ListenerCache, socket_for};
use crate::meter::{Meter, SEGMENTS_EVERY};
use crate::proxy_protocol;
use crate::relay::{Counted, Ends, Relay};
use crate::snapshot::{ActiveGuard, BackendStat, BackendState, BackendStats, ListenerConfig, ListenerKey, Stat};

/// A listening socket; accepted sockets are not registered with the
/// poller until their connection needs it.
type Listener = AsyncFd<std::net::TcpListener>;

/// Connect attempts per client connection: the first pick and two retries.
const ATTEMPTS: usize = 3;
/// TLS tunnels' copy buffer, allocated only while they run.
const BUF: usize = 16 * 1024;

/// Seconds the kernel may hold a new HTTP/HTTPS connection before its first
/// bytes (see `set_defer_accept`).
const DEFER_ACCEPT_S: u32 = 1;

/// Client-first protocols (HTTP, TLS) are accepted only once their first
/// bytes are in (`TCP_DEFER_ACCEPT`): the accept and the first read then
/// take one wake-up instead of two, and a connect-and-close probe costs no
/// accept at all. Never for tcp VServers: a server-first protocol (SMTP,
/// SSH banners) would wait for the kernel's timeout. Failure only loses the
/// optimisation, so it is logged, not fatal.
pub(crate) fn set_defer_accept(listener: &std::net::TcpListener, on: bool, addr: SocketAddr) {
    use std::os::fd::AsFd;
    let secs = if on { DEFER_ACCEPT_S } else { 0 };
    if let Err(e) = weir_sys::set_tcp_defer_accept(listener.as_fd(), secs) {
        tracing::warn!(%addr, error = %e, "cannot set TCP_DEFER_ACCEPT");
    }
}

/// Binds and starts accepting; returns a handle on the listening socket
/// (for `set_defer_accept` when the port's protocol changes).
pub(crate) async fn bind(
    dp: Arc<DataPlane>,
    key: ListenerKey,
    defer: bool,
    stop: CancellationToken,
) -> io::Result<std::net::TcpListener> {
    let s = socket_for(key.addr, false)?;
    // Accepted sockets inherit no-delay from their listener: no
    // setsockopt per connection.
    s.set_tcp_nodelay(true)?;
    s.listen(4096)?;
    let s = std::net::TcpListener::from(s);
    set_defer_accept(&s, defer, key.addr);
    let handle = s.try_clone()?;
    // `AsyncFd::new` is deprecated for types whose descriptor could change
    // or close while registered; a `std::net::TcpListener` owned by the
    // `AsyncFd` keeps its one descriptor until the `AsyncFd` (which
    // deregisters first) drops it, which is the contract `register` states.
    #[allow(deprecated)]
    let listener = AsyncFd::new(s)?;
    tokio::spawn(accept_loop(dp, key, listener, stop));
    Ok(handle)
}

async fn accept_loop(dp: Arc<DataPlane>, key: ListenerKey, listener: Listener, stop: CancellationToken) {
    let mut cache = ListenerCache::default();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = accept(&listener) => match r {
                Ok((sock, peer)) => {
                    Counters::inc(&dp.counters.tcp_accepted);
                    // The snapshot current at accept (looked up again only
                    // when a new one was applied).
                    let Some(cfg) = dp.listener(key, &mut cache) else { continue };
                    if !admit(&dp, &cfg, &sock, peer, key) {
                        continue;
                    }
                    let meter = Meter::open(&cfg.stats);
                    if cfg.http.is_some() && cfg.tls.is_none() {
                        // Plain HTTP: registered with the poller only if it
                        // has to wait (`Lazy`), in its own (smaller) task.
                        tokio::spawn(crate::http::serve(dp.clone(), key, crate::http::Lazy::new(sock), peer, meter));
                    } else if cfg.tls.is_some() {
                        match TcpStream::from_std(sock) {
                            Ok(sock) => {
                                tokio::spawn(crate::http::serve_tls(dp.clone(), cfg, key, sock, peer, meter));
                            }
                            Err(e) => tracing::warn!(error = %e, "cannot register an accepted connection"),
                        }
                    } else {
                        tokio::spawn(serve(dp.clone(), cfg, sock, peer, key, meter));
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep listening.
                    tracing::warn!(addr = %key.addr, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

/// Accepts one connection as a non-blocking socket not yet registered with
/// the poller (the caller registers it if and when it needs to).
async fn accept(listener: &Listener) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    use rustix::net::SocketFlags;
    loop {
        let mut ready = listener.readable().await?;
        let r = ready.try_io(|l| {
            rustix::net::acceptfrom_with(l.get_ref(), SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)
                .map_err(io::Error::from)
        });
        match r {
            Err(_would_block) => {}
            Ok(Ok((fd, addr))) => {
                let sock = std::net::TcpStream::from(fd);
                let peer = match addr.and_then(|a| SocketAddr::try_from(a).ok()) {
                    Some(p) => p,
                    None => sock.peer_addr()?,
                };
                return Ok((sock, peer));
            }
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// The security-group check on a new connection (denied: reset at once,
/// counted).
fn admit(
    dp: &DataPlane,
    cfg: &ListenerConfig,
    client: &std::net::TcpStream,
    peer: SocketAddr,
    key: ListenerKey,
) -> bool {
    if !cfg.allows(key.addr.port(), peer.ip()) {
        Counters::inc(&dp.counters.acl_denied);
        cfg.stats.inc(Stat::Dropped);
        // Closed at once, with a reset so the client is not left waiting.
        let _ = socket2::SockRef::from(client).set_linger(Some(Duration::ZERO));
        return false;
    }
    true
}

async fn serve(
    dp: Arc<DataPlane>,
    cfg: Arc<ListenerConfig>,
    client: std::net::TcpStream,
    peer: SocketAddr,
    key: ListenerKey,
    meter: Meter,
) {
    let client = match TcpStream::from_std(client) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot register an accepted connection");
            return;
        }
    };
    // One timer for the whole connection: the connect deadline first, then
    // the relay's idle timeout, segment reports and drain watch.
    let timer = tokio::time::sleep(dp.config.connect_timeout);
    tokio::pin!(timer);
    let mut tried = [usize::MAX; ATTEMPTS];
    let mut n = 0;
    while n < ATTEMPTS {
        let Some(i) = cfg.pick(peer.ip(), |i| tried[..n].contains(&i)) else {
            break;
        };
        tried[n] = i;
        n += 1;
        let Some(backend) = cfg.backends.get(i) else { break };
        let guard = ActiveGuard::new(backend);
        if n > 1 {
            timer.as_mut().reset(Instant::now() + dp.config.connect_timeout);
        }
        let Some(up) = connect_by(&dp, backend, timer.as_mut()).await else {
            continue;
        };
        let header = match cfg.proxy_protocol {
            ProxyProtocol::Off => None,
            ProxyProtocol::V1 => Some(proxy_protocol::v1(peer, key.addr)),
            ProxyProtocol::V2 => Some(proxy_protocol::v2(peer, key.addr)),
        };
        let relay = Relay::new(dp.config.splice, header.as_deref());
        // A connection younger than the drain period cannot be cut by a
        // drain (see `Clock::watch_at`).
        let clock = Clock::new(cfg.idle_timeout, dp.config.drain);
        run(&dp, relay, client, up, clock, timer, guard, &meter).await;
        return;
    }
    if n == 0 {
        Counters::inc(&dp.counters.no_backend);
    }
    let _ = client.set_zero_linger();
}

/// Connects to `backend` within the connect timeout; a refusal or timeout
/// counts toward ejecting it, a local shortage does not.
pub(crate) async fn connect(dp: &DataPlane, backend: &BackendState) -> Option<TcpStream> {
    let timer = tokio::time::sleep(dp.config.connect_timeout);
    tokio::pin!(timer);
    connect_by(dp, backend, timer).await
}

/// [`connect`] with the deadline given as a timer.
async fn connect_by(dp: &DataPlane, backend: &BackendState, timer: Pin<&mut Sleep>) -> Option<TcpStream> {
    let attempt = async {
        let up = start_connect(backend.addr)?;
        tokio::select! {
            biased;
            r = up.ready(Interest::WRITABLE) => {
                // A failed connect is reported as a hang-up; only then is
                // the error fetched (no SO_ERROR call when it worked).
                if r?.is_write_closed() {
                    let e = up.take_error()?.unwrap_or_else(|| io::ErrorKind::ConnectionReset.into());
                    return Err(e);
                }
                Ok(Some(up))
            }
            () = timer => Ok(None),
        }
    };
    match attempt.await {
        Ok(Some(up)) => {
            backend.stats.inc(BackendStat::Connections);
            Some(up)
        }
        Ok(None) => {
            backend.stats.inc(BackendStat::Failures);
            tracing::debug!(backend = %backend.addr, "backend connect timed out");
            Counters::inc(&dp.counters.connect_failed);
            passive(backend, "connect timeout (live traffic)");
            None
        }
        Err(e) => {
            backend.stats.inc(BackendStat::Failures);
            tracing::debug!(backend = %backend.addr, error = %e, "backend connect failed");
            Counters::inc(&dp.counters.connect_failed);
            // Our own shortage (descriptors, buffers, local ports) says
            // nothing about the backend: it must not eject it.
            if !weir_health::is_local_error(&e) {
                let detail = match e.kind() {
                    io::ErrorKind::ConnectionRefused => "connect refused (live traffic)".to_string(),
                    _ => format!("connect failed (live traffic): {e}"),
                };
                passive(backend, &detail);
            }
            None
        }
    }
}

/// A non-blocking socket with no-delay set, its connect started and the
/// socket registered with the poller: three system calls and the
/// registration (tokio's `connect` adds a second no-delay and an SO_ERROR
/// read).
fn start_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    s.set_tcp_nodelay(true)?;
    match s.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {}
        Err(e) => return Err(e),
    }
    TcpStream::from_std(s.into())
}

/// A failure seen by live traffic counts toward ejecting the backend.
pub(crate) fn passive(backend: &BackendState, detail: &str) {
    if let Some(st) = backend.health.passive_failure(detail, time::OffsetDateTime::now_utc()) {
        tracing::info!(backend = %backend.id, addr = %backend.addr, status = ?st, detail, "backend health changed");
    }
}

/// Relays an upgraded HTTP connection (WebSocket and the like) to its
/// backend until either side is done, nothing moves for `idle_timeout`,
/// or the backend is deleted and drained.
pub(crate) async fn tunnel(
    dp: &DataPlane,
    client: TcpStream,
    up: TcpStream,
    idle_timeout: Duration,
    guard: ActiveGuard,
    meter: Meter,
) {
    let timer = tokio::time::sleep(idle_timeout);
    tokio::pin!(timer);
    // Its backend was picked for the upgrade request, before the tunnel
    // began: watch the drain from the start.
    let clock = Clock::new(idle_timeout, Duration::ZERO);
    run(
        dp,
        Relay::new(dp.config.splice, None),
        client,
        up,
        clock,
        timer,
        guard,
        &meter,
    )
    .await;
}

/// Runs `relay` between `client` and `up` under `clock`.
#[allow(clippy::too_many_arguments)]
async fn run(
    dp: &DataPlane,
    mut relay: Relay,
    client: TcpStream,
    up: TcpStream,
    clock: Clock,
    timer: Pin<&mut Sleep>,
    guard: ActiveGuard,
    meter: &Meter,
) {
    let backend = guard.backend();
    let counted = Metered {
        meter,
        backend: &backend.stats,
    };
    let ends = Ends {
        client: &client,
        up: &up,
    };
    let pump = |cx: &mut Context<'_>| {
        let r = relay.poll(cx, &ends, &counted).map(|_| ());
        (r, relay.take_moved())
    };
    supervise(dp, pump, clock, timer, backend, meter, Some(client.as_fd())).await;
}

struct Metered<'a> {
    meter: &'a Meter,
    backend: &'a BackendStats,
}

impl Counted for Metered<'_> {
    fn up(&self, n: usize) {
        self.meter.relayed_up(self.backend, n);
    }
    fn down(&self, n: usize) {
        self.meter.relayed_down(self.backend, n);
    }
}

/// [`tunnel`] for a client behind a layer (TLS): copies through buffers.
/// `fd` is the client's socket under the layer (a duplicate: the segment
/// counts are read from it).
pub(crate) async fn tunnel_io<C: AsyncRead + AsyncWrite + Unpin>(
    dp: &DataPlane,
    client: C,
    fd: Option<std::os::fd::OwnedFd>,
    up: TcpStream,
    idle_timeout: Duration,
    guard: ActiveGuard,
    meter: Meter,
) {
    let moved = &AtomicBool::new(false);
    let backend = guard.backend();
    let (m, b) = (&meter, &backend.stats);
    let both = async move {
        let (cr, cw) = tokio::io::split(client);
        let (ur, uw) = up.into_split();
        let to_up = |n: usize| m.relayed_up(b, n);
        let to_client = |n: usize| m.relayed_down(b, n);
        tokio::try_join!(copy(cr, uw, moved, &to_up), copy(ur, cw, moved, &to_client)).map(|_| ())
    };
    tokio::pin!(both);
    let pump = |cx: &mut Context<'_>| {
        let r = both.as_mut().poll(cx).map(|_| ());
        (r, moved.swap(false, Ordering::Relaxed))
    };
    let timer = tokio::time::sleep(idle_timeout);
    tokio::pin!(timer);
    let clock = Clock::new(idle_timeout, Duration::ZERO);
    supervise(dp, pump, clock, timer, backend, &meter, fd.as_ref().map(|f| f.as_fd())).await;
}

/// When a relayed connection's one timer must fire next, and for what.
struct Clock {
    idle: Duration,
    /// The last time bytes moved (or the start).
    last: Instant,
    /// The next report of the client socket's segments.
    report_at: Instant,
    /// When to start watching the backend's drain signal; `None` once
    /// watching. A drain cuts the connections of a backend deleted `drain`
    /// ago, and a connection picks its backend from the snapshot current
    /// when it began: one younger than `drain` cannot be cut, so it need
    /// not register with the signal (and short connections never do).
    /// Reaching that age it checks the signal, then waits on it.
    watch_at: Option<Instant>,
}

impl Clock {
    fn new(idle: Duration, watch_after: Duration) -> Clock {
        let now = Instant::now();
        Clock {
            idle,
            last: now,
            report_at: now + SEGMENTS_EVERY,
            watch_at: Some(now + watch_after),
        }
    }

    fn next(&self) -> Instant {
        let at = (self.last + self.idle).min(self.report_at);
        self.watch_at.map_or(at, |w| at.min(w))
    }
}

/// How a relayed connection ended.
enum End {
    Done,
    Idle,
    Drained,
}

/// Runs a relay (`pump`: its progress, and whether bytes moved) until it
/// ends, nothing moves for the idle timeout, or the backend is deleted and
/// drained; reports the client socket's segments every few seconds and at
/// the end. `timer` is the connection's one timer.
async fn supervise(
    dp: &DataPlane,
    mut pump: impl FnMut(&mut Context<'_>) -> (Poll<()>, bool),
    mut clock: Clock,
    mut timer: Pin<&mut Sleep>,
    backend: &BackendState,
    meter: &Meter,
    client: Option<BorrowedFd<'_>>,
) {
    if clock.next() < timer.deadline() {
        timer.as_mut().reset(clock.next());
    }
    let mut drain: Option<Pin<Box<crate::signal::Wait<'_>>>> = None;
    let end = std::future::poll_fn(|cx| {
        let (progress, moved) = pump(cx);
        if progress.is_ready() {
            return Poll::Ready(End::Done);
        }
        if moved {
            clock.last = Instant::now();
        }
        if let Some(w) = drain.as_mut()
            && w.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(End::Drained);
        }
        while timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if now >= clock.last + clock.idle {
                return Poll::Ready(End::Idle);
            }
            if now >= clock.report_at {
                if let Some(fd) = client {
                    meter.segments(fd);
                }
                clock.report_at = now + SEGMENTS_EVERY;
            }
            if clock.watch_at.is_some_and(|at| now >= at) {
                clock.watch_at = None;
                let mut w = Box::pin(backend.drained.wait());
                if w.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(End::Drained);
                }
                drain = Some(w);
            }
            timer.as_mut().reset(clock.next());
        }
        Poll::Pending
    })
    .await;
    match end {
        End::Done => {}
        End::Idle => Counters::inc(&dp.counters.idle_closed),
        End::Drained => Counters::inc(&dp.counters.drained_closed),
    }
    if let Some(fd) = client {
        meter.segments(fd);
    }
}

/// Copies `r` to `w` until EOF (then half-closes `w`), for streams without
/// readiness (TLS).
async fn copy<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut r: R,
    mut w: W,
    moved: &AtomicBool,
    counted: &(dyn Fn(usize) + Sync),
) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            w.shutdown().await?;
            return Ok(());
        }
        w.write_all(&buf[..n]).await?;
        w.flush().await?;
        counted(n);
        moved.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// Every TCP connection's task is this future: it is moved into the
    /// task at spawn and its stages are written over as it completes, so
    /// its size is paid in copies per connection (1,168 bytes when the
    /// relay became a state machine; 12.6 KB before).
    #[test]
    fn a_tcp_connection_future_stays_small() {
        crate::test_support::on_runtime(async {
            let fx = crate::test_support::Fixture::new();
            let cfg = fx.config(weir_model::vserver::Protocol::Tcp);
            let f = super::serve(
                fx.dp.clone(),
                cfg,
                fx.client.try_clone().unwrap(),
                fx.peer(),
                fx.key,
                fx.meter(),
            );
            let size = std::mem::size_of_val(&f);
            assert!(size <= 1280, "the TCP connection future grew to {size} bytes");
        });
    }
}
