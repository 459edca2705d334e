//! Fixtures for the data plane's unit tests: a connected socket pair and
//! the data plane, statistics, listener key and configuration a
//! connection's task is built from.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use crate::dataplane::{DataPlane, DataPlaneConfig};
use crate::meter::Meter;
use crate::snapshot::{ListenerConfig, ListenerKey, Scheduler, VsStats};

pub(crate) struct Fixture {
    /// Kept open so `client` stays connected.
    pub listener: std::net::TcpListener,
    /// The connection as the data plane would have accepted it.
    pub client: std::net::TcpStream,
    pub dp: Arc<DataPlane>,
    pub stats: Arc<VsStats>,
    pub key: ListenerKey,
}

impl Fixture {
    pub fn new() -> Fixture {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        Fixture {
            key: ListenerKey {
                addr: listener.local_addr().unwrap(),
                udp: false,
            },
            listener,
            client,
            dp: DataPlane::new(DataPlaneConfig::default()),
            stats: Arc::new(VsStats {
                vs: Default::default(),
                lb: Default::default(),
            }),
        }
    }

    pub fn peer(&self) -> SocketAddr {
        self.listener.local_addr().unwrap()
    }

    pub fn meter(&self) -> Meter {
        Meter::open(&self.stats)
    }

    /// A VServer of `protocol` with no backends and no HTTP or TLS settings.
    pub fn config(&self, protocol: weir_model::vserver::Protocol) -> Arc<ListenerConfig> {
        Arc::new(ListenerConfig {
            vserver_id: "vs-1".into(),
            lb_id: "lb-1".into(),
            protocol,
            backends: vec![],
            weights: vec![],
            scheduler: Scheduler::LeastConnections(Default::default()),
            udp_persist_by_ip: false,
            idle_timeout: std::time::Duration::from_secs(60),
            proxy_protocol: weir_model::vserver::ProxyProtocol::Off,
            acl: None,
            http: None,
            tls: None,
            stats: self.stats.clone(),
        })
    }
}

/// Runs `f` on a current-thread runtime (sockets register with it).
pub(crate) fn on_runtime(f: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}
