//! What the data plane's counters say at one instant: filled by the wiring
//! (which knows the snapshot), read by the sampler and `/metrics`.

use crate::counters::{BACKEND_STATS, STATS};

#[derive(Debug, Clone)]
pub struct LbReading {
    pub id: String,
    pub counters: [u64; STATS],
    pub unhealthy_backends: u64,
}

#[derive(Debug, Clone)]
pub struct VsReading {
    pub id: String,
    pub lb_id: String,
    pub counters: [u64; STATS],
    /// Enabled backends the health checker has isolated.
    pub unhealthy_backends: u64,
}

#[derive(Debug, Clone)]
pub struct BackendReading {
    pub id: String,
    pub vserver_id: String,
    pub lb_id: String,
    pub counters: [u64; BACKEND_STATS],
    /// Connections (UDP: flows) open to it now.
    pub active: u64,
    /// It receives new traffic (enabled and not isolated by health checks).
    pub up: bool,
}

/// Everything at one instant.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub lbs: Vec<LbReading>,
    pub vservers: Vec<VsReading>,
    pub backends: Vec<BackendReading>,
    /// Data-plane-wide counters (`tcp_accepted`, `tls_handshake_failed`, …).
    pub process: Vec<(&'static str, u64)>,
}

/// Where readings come from.
pub trait Source: Send + Sync + 'static {
    fn read(&self) -> Reading;
}
