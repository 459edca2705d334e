//! The compiled configuration the data plane runs: an immutable value built
//! once per store revision, swapped atomically, read once per connection.
//!
//! Everything a connection needs is precomputed here (scheduler tables, ACLs,
//! socket addresses). Per-backend runtime state ([`BackendState`]: active
//! connection count, drain signal) lives in `Arc`s carried from one snapshot
//! to the next by backend id, so a config change never resets live counters.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use weir_model::backend::Backend;
use weir_model::certificate::Certificate;
use weir_model::lb::{LoadBalancer, NetworkType};
use weir_model::network::SecurityGroup;
use weir_model::vserver::{
    Algorithm, HealthCheckType, PersistenceMode, Protocol, ProxyProtocol, Tls, TlsMode, VServer,
};
use weir_tls::server::{ServerCertMaterial, Settings};

use weir_model::rule::Rule;

pub use weir_metrics::counters::{BackendStat, BackendStats, Stat, Stats};

use crate::acl::{Acl, Transport};
use crate::http::HttpConfig;
use crate::http::pool::Pool;
use crate::sched::{Maglev, Wrr, least_connections};

/// What a listener binds: address, port and transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerKey {
    pub addr: SocketAddr,
    pub udp: bool,
}

/// The listeners of a snapshot, looked up per request, per new connection
/// and per new UDP flow.
pub type Listeners = HashMap<ListenerKey, Arc<ListenerConfig>, BuildHasherDefault<KeyHasher>>;

/// Hashes a [`ListenerKey`] (an address, a port, a transport) with a
/// multiply per word instead of SipHash: the keys come from the
/// configuration, never from clients, so there is no collision flooding to
/// defend against, and the lookup is on the hot path.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl KeyHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

/// Runtime state of one backend, shared by every snapshot that contains it.
#[derive(Debug)]
pub struct BackendState {
    pub id: String,
    pub addr: SocketAddr,
    /// Connections (TCP) or flows (UDP) currently open to it.
    pub active: AtomicU64,
    /// Cancelled when the backend has been deleted and its drain period is
    /// over: its remaining connections are closed.
    pub drained: crate::signal::Signal,
    /// Its health, shared with the checker (one atomic load per pick).
    pub health: Arc<weir_health::Cell>,
    /// Idle HTTP/1.1 connections to it, for reuse.
    pub pool: Pool,
    pub stats: BackendStats,
}

impl BackendState {
    pub fn new(id: &str, addr: SocketAddr, health: Arc<weir_health::Cell>) -> Self {
        BackendState {
            id: id.to_string(),
            addr,
            active: AtomicU64::new(0),
            drained: crate::signal::Signal::default(),
            health,
            pool: Pool::default(),
            stats: BackendStats::default(),
        }
    }
}

/// Holds one unit of `active` for as long as it lives.
#[derive(Debug)]
pub struct ActiveGuard(Arc<BackendState>);

impl ActiveGuard {
    pub fn new(b: &Arc<BackendState>) -> Self {
        b.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(b.clone())
    }
    pub fn backend(&self) -> &Arc<BackendState> {
        &self.0
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a VServer picks among its candidates.
pub enum Scheduler {
    Wrr(Wrr),
    LeastConnections(AtomicUsize),
    SourceIp(Maglev),
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scheduler::Wrr(_) => "Wrr",
            Scheduler::LeastConnections(_) => "LeastConnections",
            Scheduler::SourceIp(_) => "SourceIp",
        })
    }
}

/// One VServer, as its listener needs it.
#[derive(Debug)]
pub struct ListenerConfig {
    pub vserver_id: String,
    pub lb_id: String,
    pub protocol: Protocol,
    /// Candidates: the enabled backends, in a fixed order.
    pub backends: Vec<Arc<BackendState>>,
    pub weights: Vec<u32>,
    pub scheduler: Scheduler,
    /// udp `source_ip` persistence: one backend per client IP while alive.
    pub udp_persist_by_ip: bool,
    pub idle_timeout: Duration,
    pub proxy_protocol: ProxyProtocol,
    /// External LBs with a security group; `None` allows everything.
    pub acl: Option<Arc<Acl>>,
    /// http/https VServers: rules, persistence, headers.
    pub http: Option<HttpConfig>,
    /// https VServers: what handshakes run on.
    pub tls: Option<Arc<TlsListener>>,
    pub stats: Arc<VsStats>,
}

/// An https VServer's TLS configuration, built from its `tls` setting.
#[derive(Debug)]
pub struct TlsListener {
    /// The setting it was built from: certificates are immutable, so an
    /// unchanged setting reuses the configuration (and its resumption
    /// state); a changed one starts afresh, so no session resumes across a
    /// change of certificate or mode.
    pub spec: Tls,
    /// The configuration, or why it could not be built (the listener then
    /// refuses connections and the VServer shows the message).
    pub config: Result<Arc<rustls::ServerConfig>, String>,
}

impl TlsListener {
    fn build(spec: &Tls, certs: &HashMap<&str, &Certificate>) -> TlsListener {
        TlsListener {
            spec: spec.clone(),
            config: tls_config(spec, certs),
        }
    }
}

fn tls_config(spec: &Tls, certs: &HashMap<&str, &Certificate>) -> Result<Arc<rustls::ServerConfig>, String> {
    let get = |id: &str| {
        certs
            .get(id)
            .copied()
            .ok_or_else(|| format!("certificate {id} not found"))
    };
    let server = |id: &str| -> Result<ServerCertMaterial, String> {
        let c = get(id)?;
        let key = c
            .private_key_pem
            .as_deref()
            .ok_or_else(|| format!("certificate {id} has no private key"))?;
        let (chain, key) = weir_tls::validate::load_server(&c.certificate_pem, key)
            .map_err(|e| format!("certificate {id}: {}", e.message))?;
        Ok(ServerCertMaterial { chain, key })
    };
    let default = server(spec.server_certificate_id.as_deref().ok_or("no server certificate")?)?;
    let extra = spec
        .extra_certificate_ids
        .iter()
        .map(|id| server(id))
        .collect::<Result<Vec<_>, _>>()?;
    let client_cas = match (spec.mode, spec.client_certificate_id.as_deref()) {
        (TlsMode::TwoWay, Some(id)) => Some(
            weir_tls::validate::load_cas(&get(id)?.certificate_pem)
                .map_err(|e| format!("certificate {id}: {}", e.message))?,
        ),
        (TlsMode::TwoWay, None) => return Err("two_way needs a client certificate".into()),
        (TlsMode::OneWay, _) => None,
    };
    weir_tls::server::config(Settings {
        default,
        extra,
        client_cas,
    })
    .map_err(|e| e.to_string())
}

impl ListenerConfig {
    /// Picks a candidate for a new connection from `client`, skipping those
    /// `skip` rejects (already tried).
    pub fn pick(&self, client: IpAddr, skip: impl Fn(usize) -> bool) -> Option<usize> {
        pick_from(
            &self.scheduler,
            &self.weights,
            |i| self.backends.get(i).map(Arc::as_ref),
            client,
            skip,
        )
    }

    pub fn allows(&self, port: u16, src: IpAddr) -> bool {
        let t = if self.protocol == Protocol::Udp {
            Transport::Udp
        } else {
            Transport::Tcp
        };
        self.acl.as_ref().is_none_or(|a| a.allows(t, port, src))
    }
}

/// Picks with `scheduler` among the backends `at` lists (by position),
/// skipping those `skip` rejects and those that are not candidates
/// (enabled backends only are listed; unhealthy ones are skipped here).
pub(crate) fn pick_from<'a>(
    scheduler: &Scheduler,
    weights: &[u32],
    at: impl Fn(usize) -> Option<&'a BackendState>,
    client: IpAddr,
    skip: impl Fn(usize) -> bool,
) -> Option<usize> {
    let ok = |i: usize| !skip(i) && at(i).is_some_and(|b| b.health.is_candidate());
    match scheduler {
        Scheduler::Wrr(w) => w.pick(ok),
        Scheduler::LeastConnections(cursor) => least_connections(
            weights,
            |i| at(i).map_or(0, |b| b.active.load(Ordering::Relaxed)),
            ok,
            cursor,
        ),
        Scheduler::SourceIp(m) => m.pick(client, ok),
    }
}

/// A VServer's counters and its LB's, bumped together: the VServer's are
/// carried from one snapshot to the next by VServer id, the LB's by LB id
/// (so deleting a VServer does not reset its LB's totals).
#[derive(Debug)]
pub struct VsStats {
    pub vs: Stats,
    pub lb: Arc<Stats>,
}

impl VsStats {
    #[inline]
    pub fn add(&self, s: Stat, v: u64) {
        self.vs.add(s, v);
        self.lb.add(s, v);
    }
    #[inline]
    pub fn inc(&self, s: Stat) {
        self.add(s, 1);
    }
    #[inline]
    pub fn dec_active(&self) {
        self.vs.dec_active();
        self.lb.dec_active();
    }
    /// A response of `status` sent to a client (Weir's own included).
    #[inline]
    pub fn response(&self, status: u16) {
        self.vs.response(status);
        self.lb.response(status);
    }
}

/// The whole data-plane configuration at one revision.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub revision: u64,
    pub listeners: Listeners,
    /// Every configured backend (enabled or not), by id.
    pub backends: HashMap<String, Arc<BackendState>>,
    /// Every LB's counters, by id.
    pub lbs: HashMap<String, Arc<Stats>>,
}

/// The store's state the snapshot is compiled from.
#[derive(Debug, Default)]
pub struct ConfigInput {
    pub revision: u64,
    pub lbs: Vec<LoadBalancer>,
    pub vservers: Vec<VServer>,
    pub backends: Vec<Backend>,
    pub security_groups: Vec<SecurityGroup>,
    pub rules: Vec<Rule>,
    /// The certificates https VServers name (others need not be loaded).
    pub certificates: Vec<Certificate>,
}

/// A compiled snapshot and the backends that left the configuration.
#[derive(Debug)]
pub struct Compiled {
    pub snapshot: Snapshot,
    /// Backends of the previous snapshot that are gone (deleted, or their
    /// address changed): they drain, then their connections are closed.
    pub removed: Vec<Arc<BackendState>>,
    /// What the health checker probes: the enabled backends.
    pub targets: Vec<weir_health::Target>,
}

impl Snapshot {
    /// Compiles `input`, reusing `prev`'s backend states by id (so active
    /// counts and drain signals carry over a change).
    pub fn compile(input: &ConfigInput, prev: &Snapshot, health: &weir_health::Table, cookie_key: &[u8]) -> Compiled {
        let prev_stats: HashMap<&str, &Arc<VsStats>> = prev
            .listeners
            .values()
            .map(|l| (l.vserver_id.as_str(), &l.stats))
            .collect();
        let prev_tls: HashMap<&str, &Arc<TlsListener>> = prev
            .listeners
            .values()
            .filter_map(|l| Some((l.vserver_id.as_str(), l.tls.as_ref()?)))
            .collect();
        let certs: HashMap<&str, &Certificate> = input.certificates.iter().map(|c| (c.id.as_str(), c)).collect();
        let mut rules_of: HashMap<&str, Vec<&Rule>> = HashMap::new();
        for r in &input.rules {
            rules_of.entry(r.vserver_id.as_str()).or_default().push(r);
        }
        let lbs: HashMap<&str, &LoadBalancer> = input.lbs.iter().map(|l| (l.id.as_str(), l)).collect();
        let lb_stats: HashMap<String, Arc<Stats>> = input
            .lbs
            .iter()
            .map(|l| (l.id.clone(), prev.lbs.get(&l.id).cloned().unwrap_or_default()))
            .collect();
        let sgs: HashMap<&str, Arc<Acl>> = input
            .security_groups
            .iter()
            .map(|s| (s.id.as_str(), Arc::new(Acl::compile(&s.rules))))
            .collect();
        let mut states: HashMap<String, Arc<BackendState>> = HashMap::with_capacity(input.backends.len());
        let mut by_vs: HashMap<&str, Vec<&Backend>> = HashMap::new();
        for b in &input.backends {
            let addr = SocketAddr::new(IpAddr::V4(b.address), b.port);
            let state = match prev.backends.get(&b.id) {
                Some(s) if s.addr == addr => s.clone(),
                _ => Arc::new(BackendState::new(&b.id, addr, health.cell(&b.id))),
            };
            states.insert(b.id.clone(), state);
            by_vs.entry(b.vserver_id.as_str()).or_default().push(b);
        }
        let mut listeners = Listeners::with_capacity_and_hasher(input.vservers.len(), Default::default());
        let mut targets = Vec::with_capacity(input.backends.len());
        for vs in &input.vservers {
            let Some(lb) = lbs.get(vs.lb_id.as_str()) else { continue };
            let hc = &vs.health_check;
            let probe = match (vs.protocol, hc.check_type) {
                (Protocol::Udp, _) => weir_health::Probe::Udp {
                    payload: b"weir-health-check".to_vec(),
                    expect: None,
                },
                (_, HealthCheckType::Http) => weir_health::Probe::Http {
                    path: hc.path.clone(),
                    host: hc.domain.clone(),
                },
                _ => weir_health::Probe::Tcp,
            };
            let mut backends = Vec::new();
            let mut weights = Vec::new();
            let mut keys = Vec::new();
            // Disabled backends get no new traffic; their connections run on.
            for b in by_vs
                .get(vs.id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|b| b.enabled)
            {
                if let Some(state) = states.get(&b.id) {
                    state
                        .health
                        .set_thresholds(hc.healthy_threshold, hc.unhealthy_threshold);
                    targets.push(weir_health::Target {
                        backend_id: b.id.clone(),
                        addr: state.addr,
                        probe: probe.clone(),
                        interval: Duration::from_secs(u64::from(hc.interval_s)),
                        timeout: Duration::from_secs(u64::from(hc.timeout_s)),
                        healthy_threshold: hc.healthy_threshold,
                        unhealthy_threshold: hc.unhealthy_threshold,
                    });
                    keys.push(b.id.as_str());
                    weights.push(u32::from(b.weight));
                    backends.push(state.clone());
                }
            }
            let scheduler = match vs.algorithm {
                Algorithm::WeightedRoundRobin => Scheduler::Wrr(Wrr::new(&weights)),
                Algorithm::LeastConnections => Scheduler::LeastConnections(AtomicUsize::new(0)),
                Algorithm::SourceIp => Scheduler::SourceIp(Maglev::new(&keys, &weights)),
            };
            let acl = match (lb.network_type, &lb.security_group_id) {
                (NetworkType::External, Some(sg)) => Some(
                    sgs.get(sg.as_str())
                        .cloned()
                        .unwrap_or_else(|| Arc::new(Acl::compile(&[]))),
                ),
                _ => None,
            };
            let key = ListenerKey {
                addr: SocketAddr::new(IpAddr::V4(lb.address), vs.port),
                udp: vs.protocol == Protocol::Udp,
            };
            let http = vs.protocol.is_http().then(|| {
                let rules = rules_of.get(vs.id.as_str()).map(Vec::as_slice).unwrap_or_default();
                HttpConfig::compile(vs, rules, &backends, &weights, cookie_key)
            });
            let stats = match (prev_stats.get(vs.id.as_str()), lb_stats.get(&lb.id)) {
                (Some(s), _) => Arc::clone(s),
                (None, lb) => Arc::new(VsStats {
                    vs: Stats::default(),
                    lb: lb.cloned().unwrap_or_default(),
                }),
            };
            let tls = match (vs.protocol, &vs.tls) {
                (Protocol::Https, Some(spec)) => Some(match prev_tls.get(vs.id.as_str()) {
                    Some(t) if t.spec == *spec && t.config.is_ok() => Arc::clone(t),
                    _ => Arc::new(TlsListener::build(spec, &certs)),
                }),
                (Protocol::Https, None) => Some(Arc::new(TlsListener {
                    spec: Tls {
                        mode: TlsMode::OneWay,
                        server_certificate_id: None,
                        client_certificate_id: None,
                        extra_certificate_ids: Vec::new(),
                    },
                    config: Err("no TLS settings".into()),
                })),
                _ => None,
            };
            listeners.insert(
                key,
                Arc::new(ListenerConfig {
                    vserver_id: vs.id.clone(),
                    lb_id: lb.id.clone(),
                    protocol: vs.protocol,
                    backends,
                    weights,
                    scheduler,
                    udp_persist_by_ip: vs.persistence.mode == PersistenceMode::SourceIp,
                    idle_timeout: Duration::from_secs(u64::from(vs.idle_timeout_s)),
                    proxy_protocol: vs.proxy_protocol,
                    acl,
                    http,
                    tls,
                    stats,
                }),
            );
        }
        let removed = prev
            .backends
            .iter()
            .filter(|(id, s)| states.get(*id).is_none_or(|n| !Arc::ptr_eq(n, s)))
            .map(|(_, s)| s.clone())
            .collect();
        Compiled {
            snapshot: Snapshot {
                revision: input.revision,
                listeners,
                backends: states,
                lbs: lb_stats,
            },
            removed,
            targets,
        }
    }
}
