//! The data plane: applies snapshots (reconciling listeners), and reports
//! what it applied and which listeners are bound.
//!
//! Listeners are keyed by (address, port, transport). A snapshot change keeps
//! unchanged listeners bound (their connections untouched), binds new ones
//! and stops accepting on removed ones; established connections always run
//! on with the backend they have. Each accepted connection reads the current
//! snapshot once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::counters::Counters;
use crate::snapshot::{BackendState, Compiled, ListenerConfig, ListenerKey, Snapshot};
use crate::{tcp, udp};

/// Data-plane settings from the config file.
#[derive(Debug, Clone)]
pub struct DataPlaneConfig {
    /// How long a deleted backend's connections may run on.
    pub drain: Duration,
    /// Backend connect timeout.
    pub connect_timeout: Duration,
    /// UDP flows per listener before new sources are dropped.
    pub udp_max_flows: usize,
    /// Relay TCP with splice(2) (zero-copy) instead of read/write.
    pub splice: bool,
    /// HTTP: how long a backend may take to send its response head.
    pub response_header_timeout: Duration,
    /// HTTP: how long an idle backend connection is kept for reuse.
    pub upstream_keepalive: Duration,
    /// HTTP: one structured log line per request (target `weir::access`).
    pub access_log: bool,
    /// Key of the persistence cookies' MAC (keep it across restarts so
    /// clients keep their backend).
    pub cookie_key: Vec<u8>,
}

impl Default for DataPlaneConfig {
    fn default() -> Self {
        DataPlaneConfig {
            drain: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            udp_max_flows: 65_536,
            splice: true,
            response_header_timeout: Duration::from_secs(60),
            upstream_keepalive: Duration::from_secs(15),
            access_log: false,
            cookie_key: Vec::new(),
        }
    }
}

/// An accept loop's copy of its listener's configuration (see
/// [`DataPlane::listener`]).
#[derive(Default)]
pub(crate) struct ListenerCache {
    generation: Option<u64>,
    cfg: Option<Arc<ListenerConfig>>,
}

/// Whether a VServer's listener is bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerState {
    Bound,
    /// The bind failed; the OS error.
    Failed(String),
}

struct Running {
    vserver_id: String,
    stop: CancellationToken,
    /// TCP: the listening socket (a second descriptor of it) and whether
    /// it defers accepts (client-first protocols only).
    tcp: Option<(std::net::TcpListener, bool)>,
}

pub struct DataPlane {
    pub(crate) config: DataPlaneConfig,
    pub(crate) current: ArcSwap<Snapshot>,
    /// Bumped after each snapshot swap, so accept loops can keep their
    /// listener's configuration until it may have changed.
    generation: AtomicU64,
    pub(crate) counters: Counters,
    /// Control-path state (touched only when a snapshot is applied).
    running: Mutex<HashMap<ListenerKey, Running>>,
    states: RwLock<HashMap<String, ListenerState>>,
    applied: watch::Sender<u64>,
    /// Raised by [`DataPlane::shutdown`]: no listener is bound again,
    /// HTTP/1 connections close after their current response, HTTP/2 ones
    /// get GOAWAY.
    pub(crate) stop: crate::signal::Signal,
}

impl std::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataPlane")
            .field("revision", &self.current.load().revision)
            .finish()
    }
}

impl DataPlane {
    pub fn new(config: DataPlaneConfig) -> Arc<DataPlane> {
        let (applied, _) = watch::channel(0);
        Arc::new(DataPlane {
            config,
            current: ArcSwap::from_pointee(Snapshot::default()),
            generation: AtomicU64::new(0),
            counters: Counters::default(),
            running: Mutex::new(HashMap::new()),
            states: RwLock::new(HashMap::new()),
            applied,
            stop: crate::signal::Signal::default(),
        })
    }

    /// Compiles `input` against the current snapshot (whose backend states,
    /// counters and unchanged TLS configurations carry over).
    pub fn compile(&self, input: &crate::ConfigInput, health: &weir_health::Table) -> Compiled {
        Snapshot::compile(input, &self.snapshot(), health, &self.config.cookie_key)
    }

    /// The revision of the last applied snapshot.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// The configuration of listener `key` in the current snapshot: the
    /// one `cache` holds while no snapshot was applied since it was taken
    /// (a counter read, instead of a snapshot load and a map lookup per
    /// accepted connection).
    pub(crate) fn listener(&self, key: ListenerKey, cache: &mut ListenerCache) -> Option<Arc<ListenerConfig>> {
        // Read before the snapshot: a swap after this read bumps it again,
        // so the next call looks the snapshot up anew.
        let generation = self.generation.load(Ordering::Acquire);
        if cache.generation != Some(generation) {
            cache.cfg = self.current.load().listeners.get(&key).cloned();
            cache.generation = Some(generation);
        }
        cache.cfg.clone()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn config(&self) -> &DataPlaneConfig {
        &self.config
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn listener_state(&self, vserver_id: &str) -> Option<ListenerState> {
        self.states.read().ok()?.get(vserver_id).cloned()
    }

    /// Swaps in a compiled snapshot: binds new listeners, stops removed
    /// ones, schedules the close of removed backends' connections after the
    /// drain period, then publishes the applied revision.
    pub async fn apply(self: &Arc<Self>, compiled: Compiled) {
        let Compiled { snapshot, removed, .. } = compiled;
        let revision = snapshot.revision;
        // Swap first so a listener bound below already sees its config.
        self.current.store(Arc::new(snapshot));
        self.generation.fetch_add(1, Ordering::Release);
        self.reconcile().await;
        self.drain(removed);
        self.applied.send_replace(revision);
    }

    /// True when some listener of the current snapshot failed to bind.
    pub fn has_failed_listeners(&self) -> bool {
        self.states
            .read()
            .is_ok_and(|s| s.values().any(|st| matches!(st, ListenerState::Failed(_))))
    }

    /// Makes the bound listeners match the current snapshot: keeps
    /// unchanged ones, stops removed ones, (re)tries binding the others.
    pub async fn reconcile(self: &Arc<Self>) {
        if self.stopping() {
            return;
        }
        let snapshot = self.current.load_full();
        // Per listener: its VServer, and whether its protocol speaks first
        // from the client (HTTP, HTTPS), so accepts can wait for data.
        let desired: HashMap<ListenerKey, (String, bool)> = snapshot
            .listeners
            .iter()
            .map(|(k, l)| (*k, (l.vserver_id.clone(), l.http.is_some() || l.tls.is_some())))
            .collect();
        // Bound, but refusing connections: its TLS configuration is broken.
        let broken: Vec<(String, String)> = snapshot
            .listeners
            .values()
            .filter_map(|l| match l.tls.as_ref().map(|t| &t.config) {
                Some(Err(e)) => Some((l.vserver_id.clone(), format!("TLS configuration: {e}"))),
                _ => None,
            })
            .collect();
        let mut to_bind = Vec::new();
        if let Ok(mut running) = self.running.lock() {
            running.retain(|key, r| {
                let keep = desired.contains_key(key);
                if !keep {
                    r.stop.cancel();
                }
                keep
            });
            for (key, (vs, defer)) in &desired {
                match running.get_mut(key) {
                    Some(r) => {
                        r.vserver_id = vs.clone();
                        // The port changed protocol (http deleted, tcp added).
                        if let Some((l, on)) = &mut r.tcp
                            && *on != *defer
                        {
                            tcp::set_defer_accept(l, *defer, key.addr);
                            *on = *defer;
                        }
                    }
                    None => to_bind.push((*key, vs.clone(), *defer)),
                }
            }
        }
        let mut bound = Vec::new();
        let mut failed = Vec::new();
        for (key, vs, defer) in to_bind {
            let stop = CancellationToken::new();
            let res = if key.udp {
                udp::bind(self.clone(), key, stop.clone()).map(|()| None)
            } else {
                tcp::bind(self.clone(), key, defer, stop.clone())
                    .await
                    .map(|l| Some((l, defer)))
            };
            match res {
                Ok(tcp) => bound.push((
                    key,
                    Running {
                        vserver_id: vs,
                        stop,
                        tcp,
                    },
                )),
                Err(e) => {
                    let proto = if key.udp { "udp" } else { "tcp" };
                    let msg = format!("cannot bind {proto} {}: {e}", key.addr);
                    // Retries every few seconds must not flood the log: warn
                    // on the first failure (or a new error), then quietly.
                    if self.listener_state(&vs) == Some(ListenerState::Failed(msg.clone())) {
                        tracing::debug!(addr = %key.addr, vserver = %vs, error = %e, "listener bind still failing");
                    } else {
                        tracing::warn!(addr = %key.addr, udp = key.udp, vserver = %vs, error = %e, "listener bind failed");
                    }
                    failed.push((vs, msg));
                }
            }
        }
        if let Ok(mut running) = self.running.lock() {
            // A shutdown that came while these were being bound.
            if self.stopping() {
                for (_, r) in bound {
                    r.stop.cancel();
                }
                return;
            }
            running.extend(bound);
            if let Ok(mut states) = self.states.write() {
                states.clear();
                for r in running.values() {
                    states.insert(r.vserver_id.clone(), ListenerState::Bound);
                }
                for (vs, msg) in failed.into_iter().chain(broken) {
                    states.insert(vs, ListenerState::Failed(msg));
                }
            }
        }
    }

    fn drain(&self, removed: Vec<Arc<BackendState>>) {
        if removed.is_empty() {
            return;
        }
        let period = self.config.drain;
        tokio::spawn(async move {
            tokio::time::sleep(period).await;
            for b in removed {
                b.drained.raise();
                b.pool.clear();
            }
        });
    }

    /// Stops every listener for good (a later [`DataPlane::reconcile`]
    /// binds nothing); established connections run on until they end, and
    /// HTTP/1 connections close after their current response. UDP flows end
    /// with their listener.
    pub fn shutdown(&self) {
        self.stop.raise();
        if let Ok(mut running) = self.running.lock() {
            for (_, r) in running.drain() {
                r.stop.cancel();
            }
        }
    }
}

impl DataPlane {
    /// Whether [`DataPlane::shutdown`] was called.
    pub(crate) fn stopping(&self) -> bool {
        self.stop.is_raised()
    }

    /// Work in progress with backends: TCP connections, HTTP requests
    /// (not idle keep-alive connections) and UDP flows of the current
    /// snapshot's backends. A graceful stop waits for this to reach 0.
    pub fn busy(&self) -> u64 {
        let snapshot = self.current.load();
        let mut seen = std::collections::HashSet::new();
        snapshot
            .listeners
            .values()
            .flat_map(|l| l.backends.iter())
            .filter(|b| seen.insert(Arc::as_ptr(b)))
            .map(|b| b.active.load(Ordering::Relaxed))
            .sum()
    }
}

/// Binds a std socket for `addr` with SO_REUSEADDR (TCP) so a listener can
/// come back right after it was removed.
pub(crate) fn socket_for(addr: SocketAddr, udp: bool) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if addr.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let s = if udp {
        Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?
    } else {
        let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        s
    };
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::fd::AsFd;

    use serde_json::json;
    use weir_model::lb::LoadBalancer;
    use weir_model::vserver::VServer;

    use super::*;

    const ADDR: &str = "127.125.0.1";
    const PORT: u16 = 18080;

    fn lb() -> LoadBalancer {
        serde_json::from_value(json!({
            "id": "lb-1", "name": "t", "comment": "", "network_type": "internal",
            "vpc_id": "vpc-1", "subnet_id": "subnet-1", "private_ip": ADDR, "eip": null,
            "address": ADDR, "security_group_id": null, "alarm_template_id": null,
            "billing_mode": "hourly", "owner_id": "acct-1",
            "created_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-01T01:00:00Z",
            "created_revision": 1}))
        .unwrap()
    }

    fn vserver(id: &str, protocol: &str) -> VServer {
        let headers = (protocol == "http")
            .then(|| json!({"x_forwarded_for": true, "x_real_ip": true, "x_forwarded_proto": true, "host": null}));
        serde_json::from_value(json!({
            "id": id, "lb_id": "lb-1", "protocol": protocol, "port": PORT,
            "algorithm": "weighted_round_robin", "persistence": {"mode": "off"}, "idle_timeout_s": 60,
            "health_check": {"type": "port", "path": "/", "domain": null, "interval_s": 5, "timeout_s": 2,
                             "healthy_threshold": 2, "unhealthy_threshold": 3},
            "proxy_protocol": "off", "forward_headers": headers, "tls": null, "alarm_template_id": null,
            "owner_id": "acct-1", "created_at": "2026-01-01T00:00:00Z",
            "created_revision": 1, "updated_revision": 1}))
        .unwrap()
    }

    /// The listening socket's `TCP_DEFER_ACCEPT` (0: off).
    fn defer(dp: &DataPlane) -> u32 {
        let key = ListenerKey {
            addr: format!("{ADDR}:{PORT}").parse().unwrap(),
            udp: false,
        };
        let running = dp.running.lock().unwrap();
        let (l, _) = running[&key].tcp.as_ref().unwrap();
        weir_sys::tcp_defer_accept(l.as_fd()).unwrap()
    }

    async fn apply(dp: &Arc<DataPlane>, revision: u64, vs: VServer) {
        let input = crate::ConfigInput {
            revision,
            lbs: vec![lb()],
            vservers: vec![vs],
            backends: vec![],
            security_groups: vec![],
            rules: vec![],
            certificates: vec![],
        };
        let compiled = dp.compile(&input, &weir_health::Table::new());
        dp.apply(compiled).await;
    }

    /// HTTP listeners wait for the client's first bytes; when the port's
    /// VServer becomes tcp in one snapshot (the listener kept, its
    /// connections untouched), accepts stop waiting, and the reverse.
    #[tokio::test]
    async fn defer_accept_follows_the_ports_protocol() {
        let dp = DataPlane::new(DataPlaneConfig::default());
        apply(&dp, 1, vserver("vs-http", "http")).await;
        assert_eq!(dp.listener_state("vs-http"), Some(ListenerState::Bound));
        assert!(defer(&dp) >= 1, "http defers accepts");
        apply(&dp, 2, vserver("vs-tcp", "tcp")).await;
        assert_eq!(dp.listener_state("vs-tcp"), Some(ListenerState::Bound));
        assert_eq!(defer(&dp), 0, "tcp never defers: server-first protocols speak first");
        apply(&dp, 3, vserver("vs-http2", "http")).await;
        assert!(defer(&dp) >= 1);
        dp.shutdown();
    }
}
