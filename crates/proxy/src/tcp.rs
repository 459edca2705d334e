//! TCP VServers: accept, check the ACL, pick a backend (retrying up to two
//! others on connect failure), send the PROXY header, relay both ways with
//! half-close until either side is done, the idle timeout fires, or the
//! backend is deleted and drained.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use weir_model::vserver::ProxyProtocol;

use crate::counters::Counters;
use crate::dataplane::{DataPlane, socket_for};
use crate::meter::{Meter, SEGMENTS_EVERY};
use crate::snapshot::{ActiveGuard, BackendStat, BackendState, ListenerConfig, ListenerKey, Stat};
use crate::{proxy_protocol, splice};

/// A listening socket; accepted sockets are not registered with the
/// poller until their connection needs it.
type Listener = AsyncFd<std::net::TcpListener>;

/// Connect attempts per client connection: the first pick and two retries.
const ATTEMPTS: usize = 3;
/// Relay buffer, allocated only while data flows (idle connections hold none).
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
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = accept(&listener) => match r {
                Ok((sock, peer)) => {
                    Counters::inc(&dp.counters.tcp_accepted);
                    // One snapshot read per connection.
                    let cfg = dp.current.load().listeners.get(&key).cloned();
                    match cfg {
                        Some(cfg) if !admit(&dp, &cfg, &sock, peer, key) => {}
                        // Plain HTTP: registered with the poller only if it
                        // has to wait (`Lazy`), in its own (smaller) task.
                        Some(cfg) if cfg.http.is_some() && cfg.tls.is_none() => {
                            let meter = Meter::open(&cfg.stats);
                            tokio::spawn(crate::http::serve(dp.clone(), key, crate::http::Lazy::new(sock), peer, meter));
                        }
                        Some(cfg) => match TcpStream::from_std(sock) {
                            Ok(sock) if cfg.tls.is_some() => {
                                let meter = Meter::open(&cfg.stats);
                                tokio::spawn(crate::http::serve_tls(dp.clone(), cfg, key, sock, peer, meter));
                            }
                            Ok(sock) => {
                                let meter = Meter::open(&cfg.stats);
                                tokio::spawn(serve(dp.clone(), cfg, sock, peer, key, meter));
                            }
                            Err(e) => tracing::warn!(error = %e, "cannot register an accepted connection"),
                        },
                        None => {}
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
/// counted); sets no-delay on admitted ones.
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
    let _ = client.set_nodelay(true);
    true
}

async fn serve(
    dp: Arc<DataPlane>,
    cfg: Arc<ListenerConfig>,
    client: TcpStream,
    peer: SocketAddr,
    key: ListenerKey,
    meter: Meter,
) {
    let local = key.addr;
    let mut tried: Vec<usize> = Vec::with_capacity(ATTEMPTS);
    while tried.len() < ATTEMPTS {
        let Some(i) = cfg.pick(peer.ip(), |i| tried.contains(&i)) else {
            break;
        };
        tried.push(i);
        let Some(backend) = cfg.backends.get(i) else { break };
        let guard = ActiveGuard::new(backend);
        let Some(up) = connect(&dp, backend).await else {
            continue;
        };
        let _ = up.set_nodelay(true);
        relay(&dp, &cfg, client, up, peer, local, guard, meter).await;
        return;
    }
    if tried.is_empty() {
        Counters::inc(&dp.counters.no_backend);
    }
    let _ = client.set_zero_linger();
}

/// Connects to `backend` (no delay set); a refusal or timeout counts toward
/// ejecting it, a local shortage does not.
pub(crate) async fn connect(dp: &DataPlane, backend: &BackendState) -> Option<TcpStream> {
    match tokio::time::timeout(dp.config.connect_timeout, TcpStream::connect(backend.addr)).await {
        Ok(Ok(up)) => {
            let _ = up.set_nodelay(true);
            backend.stats.inc(BackendStat::Connections);
            Some(up)
        }
        Ok(Err(e)) => {
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
        Err(_) => {
            backend.stats.inc(BackendStat::Failures);
            tracing::debug!(backend = %backend.addr, "backend connect timed out");
            Counters::inc(&dp.counters.connect_failed);
            passive(backend, "connect timeout (live traffic)");
            None
        }
    }
}

/// A failure seen by live traffic counts toward ejecting the backend.
pub(crate) fn passive(backend: &BackendState, detail: &str) {
    if let Some(st) = backend.health.passive_failure(detail, time::OffsetDateTime::now_utc()) {
        tracing::info!(backend = %backend.id, addr = %backend.addr, status = ?st, detail, "backend health changed");
    }
}

#[allow(clippy::too_many_arguments)]
async fn relay(
    dp: &DataPlane,
    cfg: &ListenerConfig,
    client: TcpStream,
    mut up: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    guard: ActiveGuard,
    meter: Meter,
) {
    let header = match cfg.proxy_protocol {
        ProxyProtocol::Off => None,
        ProxyProtocol::V1 => Some(proxy_protocol::v1(peer, local)),
        ProxyProtocol::V2 => Some(proxy_protocol::v2(peer, local)),
    };
    if let Some(h) = header
        && up.write_all(&h).await.is_err()
    {
        return;
    }
    tunnel(dp, client, up, cfg.idle_timeout, guard, meter).await;
}

/// Relays both ways until either side is done, nothing moves for
/// `idle_timeout`, or the backend is deleted and drained.
pub(crate) async fn tunnel(
    dp: &DataPlane,
    client: TcpStream,
    up: TcpStream,
    idle_timeout: Duration,
    guard: ActiveGuard,
    meter: Meter,
) {
    let base = Instant::now();
    let last = &AtomicU64::new(0);
    let backend = guard.backend().clone();
    let zero_copy = dp.config.splice;
    let (c, u, m, b) = (&client, &up, &meter, &backend.stats);
    let to_up = |n: usize| m.relayed_up(b, n);
    let to_client = |n: usize| m.relayed_down(b, n);
    let both = async {
        tokio::try_join!(
            splice::pipe(c, u, last, base, zero_copy, &to_up),
            splice::pipe(u, c, last, base, zero_copy, &to_client)
        )
        .map(|_| ())
    };
    watch(dp, both, last, base, idle_timeout, guard, &meter, Some(client.as_fd())).await;
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
    let base = Instant::now();
    let last = &AtomicU64::new(0);
    let backend = guard.backend().clone();
    let (m, b) = (&meter, &backend.stats);
    let both = async move {
        let (cr, cw) = tokio::io::split(client);
        let (ur, uw) = up.into_split();
        let to_up = |n: usize| m.relayed_up(b, n);
        let to_client = |n: usize| m.relayed_down(b, n);
        tokio::try_join!(copy(cr, uw, last, base, &to_up), copy(ur, cw, last, base, &to_client)).map(|_| ())
    };
    watch(
        dp,
        both,
        last,
        base,
        idle_timeout,
        guard,
        &meter,
        fd.as_ref().map(|f| f.as_fd()),
    )
    .await;
}

/// Runs a relay until it ends, nothing moves for `idle_timeout`, or the
/// backend is deleted and drained; reports the client socket's segments
/// every few seconds and at the end.
#[allow(clippy::too_many_arguments)]
async fn watch(
    dp: &DataPlane,
    relay: impl Future<Output = io::Result<()>>,
    last: &AtomicU64,
    base: Instant,
    idle_timeout: Duration,
    guard: ActiveGuard,
    meter: &Meter,
    client: Option<BorrowedFd<'_>>,
) {
    let report = async {
        let mut tick = tokio::time::interval_at(Instant::now() + SEGMENTS_EVERY, SEGMENTS_EVERY);
        loop {
            tick.tick().await;
            if let Some(fd) = client {
                meter.segments(fd);
            }
        }
    };
    tokio::select! {
        _ = relay => {}
        _ = idle(last, base, idle_timeout) => Counters::inc(&dp.counters.idle_closed),
        _ = guard.backend().drained.cancelled() => Counters::inc(&dp.counters.drained_closed),
        _ = report => {}
    }
    if let Some(fd) = client {
        meter.segments(fd);
    }
    drop(guard);
}

/// Copies `r` to `w` until EOF (then half-closes `w`), for streams without
/// readiness (TLS).
async fn copy<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut r: R,
    mut w: W,
    last: &AtomicU64,
    base: Instant,
    moved: &(dyn Fn(usize) + Sync),
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
        moved(n);
        last.store(base.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// Resolves once nothing has moved either way for `timeout`.
async fn idle(last: &AtomicU64, base: Instant, timeout: Duration) {
    loop {
        let seen = Duration::from_millis(last.load(Ordering::Relaxed));
        let deadline = base + seen + timeout;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}
