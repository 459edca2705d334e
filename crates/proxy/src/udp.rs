//! UDP VServers: a flow table (client ip:port → a connected socket toward
//! its backend), replies sent back from the LB address, flows expiring after
//! the idle timeout, and `source_ip` persistence (one backend per client IP
//! while its session is alive). The table is owned by the listener's receive
//! task, so it needs no lock; each flow's reply task shares only atomics.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::counters::Counters;
use crate::dataplane::{DataPlane, socket_for};
use crate::meter::Meter;
use crate::snapshot::{ActiveGuard, BackendStat, BackendState, ListenerConfig, ListenerKey, Stat};

const MAX_DATAGRAM: usize = 65_536;
const SWEEP: Duration = Duration::from_millis(250);

struct Flow {
    upstream: Arc<UdpSocket>,
    guard: ActiveGuard,
    /// The flow as a connection of its VServer (new, active).
    meter: Meter,
    last_ms: AtomicU64,
    idle: Duration,
    stop: CancellationToken,
}

struct Sticky {
    backend: Arc<BackendState>,
    last_ms: u64,
    idle: Duration,
}

pub(crate) fn bind(dp: Arc<DataPlane>, key: ListenerKey, stop: CancellationToken) -> io::Result<()> {
    let s = socket_for(key.addr, true)?;
    let sock = Arc::new(UdpSocket::from_std(s.into())?);
    tokio::spawn(run(dp, key, sock, stop));
    Ok(())
}

fn ms(base: Instant) -> u64 {
    base.elapsed().as_millis() as u64
}

async fn run(dp: Arc<DataPlane>, key: ListenerKey, sock: Arc<UdpSocket>, stop: CancellationToken) {
    let base = Instant::now();
    let mut flows: HashMap<SocketAddr, Arc<Flow>> = HashMap::new();
    let mut sticky: HashMap<IpAddr, Sticky> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut sweep = tokio::time::interval(SWEEP);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = sweep.tick() => {
                let now = ms(base);
                flows.retain(|_, f| {
                    let alive = now.saturating_sub(f.last_ms.load(Ordering::Relaxed)) < f.idle.as_millis() as u64
                        && !f.guard.backend().drained.is_raised();
                    if !alive {
                        f.stop.cancel();
                        Counters::inc(&dp.counters.udp_flows_expired);
                    }
                    alive
                });
                sticky.retain(|_, s| now.saturating_sub(s.last_ms) < s.idle.as_millis() as u64);
            }
            r = sock.recv_from(&mut buf) => {
                let (n, client) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!(addr = %key.addr, error = %e, "udp recv failed");
                        continue;
                    }
                };
                let now = ms(base);
                let data = &buf[..n];
                if let Some(f) = flows.get(&client) {
                    f.last_ms.store(now, Ordering::Relaxed);
                    if let Some(s) = sticky.get_mut(&client.ip()) {
                        s.last_ms = now;
                    }
                    f.received(n);
                    let _ = f.upstream.send(data).await;
                    continue;
                }
                let Some(cfg) = dp.current.load().listeners.get(&key).cloned() else { continue };
                match new_flow(&dp, &cfg, &sock, &mut sticky, flows.len(), client, now, base).await {
                    Some(f) => {
                        f.received(n);
                        let _ = f.upstream.send(data).await;
                        flows.insert(client, f);
                    }
                    None => continue,
                }
            }
        }
    }
    for f in flows.values() {
        f.stop.cancel();
    }
}

#[allow(clippy::too_many_arguments, reason = "the receive loop's state, passed by reference")]
async fn new_flow(
    dp: &Arc<DataPlane>,
    cfg: &ListenerConfig,
    sock: &Arc<UdpSocket>,
    sticky: &mut HashMap<IpAddr, Sticky>,
    open: usize,
    client: SocketAddr,
    now: u64,
    base: Instant,
) -> Option<Arc<Flow>> {
    if !cfg.allows(sock.local_addr().map(|a| a.port()).unwrap_or(0), client.ip()) {
        Counters::inc(&dp.counters.acl_denied);
        cfg.stats.inc(Stat::Dropped);
        return None;
    }
    if open >= dp.config.udp_max_flows {
        Counters::inc(&dp.counters.udp_table_full);
        return None;
    }
    let backend = choose(cfg, sticky, client, now)?;
    let Some(backend) = backend else {
        Counters::inc(&dp.counters.no_backend);
        return None;
    };
    let unspecified: IpAddr = if backend.addr.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let up = UdpSocket::bind(SocketAddr::new(unspecified, 0)).await.ok()?;
    if up.connect(backend.addr).await.is_err() {
        backend.stats.inc(BackendStat::Failures);
        return None;
    }
    backend.stats.inc(BackendStat::Connections);
    let flow = Arc::new(Flow {
        upstream: Arc::new(up),
        guard: ActiveGuard::new(&backend),
        meter: Meter::open(&cfg.stats),
        last_ms: AtomicU64::new(now),
        idle: cfg.idle_timeout,
        stop: CancellationToken::new(),
    });
    tokio::spawn(replies(flow.clone(), sock.clone(), client, base));
    Some(flow)
}

/// The backend for a new flow: the client IP's live sticky backend when
/// `source_ip` persistence is on and it is still a candidate, else a pick.
/// `None` when the table refused; `Some(None)` when no backend is a candidate.
fn choose(
    cfg: &ListenerConfig,
    sticky: &mut HashMap<IpAddr, Sticky>,
    client: SocketAddr,
    now: u64,
) -> Option<Option<Arc<BackendState>>> {
    if cfg.udp_persist_by_ip
        && let Some(s) = sticky.get_mut(&client.ip())
        && cfg.backends.iter().any(|b| Arc::ptr_eq(b, &s.backend))
    {
        s.last_ms = now;
        return Some(Some(s.backend.clone()));
    }
    let picked = cfg
        .pick(client.ip(), |_| false)
        .and_then(|i| cfg.backends.get(i))
        .cloned();
    if cfg.udp_persist_by_ip
        && let Some(b) = &picked
    {
        sticky.insert(
            client.ip(),
            Sticky {
                backend: b.clone(),
                last_ms: now,
                idle: cfg.idle_timeout,
            },
        );
    }
    Some(picked)
}

impl Flow {
    /// A datagram of `n` bytes from the client, forwarded to the backend.
    fn received(&self, n: usize) {
        self.meter.bytes_in(n);
        self.meter.packets(1, 0);
        self.guard.backend().stats.add(BackendStat::BytesOut, n as u64);
    }
}

/// Backend → client: replies leave from the LB address.
async fn replies(flow: Arc<Flow>, sock: Arc<UdpSocket>, client: SocketAddr, base: Instant) {
    loop {
        tokio::select! {
            _ = flow.stop.cancelled() => return,
            r = flow.upstream.readable() => {
                if r.is_err() {
                    return;
                }
                // Uninitialised capacity: no 64 KiB zeroing per reply.
                let mut buf = Vec::with_capacity(MAX_DATAGRAM);
                loop {
                    buf.clear();
                    match flow.upstream.try_recv_buf(&mut buf) {
                        Ok(n) => {
                            flow.last_ms.store(ms(base), Ordering::Relaxed);
                            if sock.send_to(&buf, client).await.is_ok() {
                                flow.meter.bytes_out(n);
                                flow.meter.packets(0, 1);
                                flow.guard.backend().stats.add(BackendStat::BytesIn, n as u64);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        // ICMP port unreachable from the backend: keep the flow; health checks decide.
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                        Err(_) => return,
                    }
                }
            }
        }
    }
}
