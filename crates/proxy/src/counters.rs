//! Data-plane counters: atomics bumped on the hot path, read by whoever
//! exports them (the metrics issue aggregates these per LB/VServer/backend).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counters {
    /// TCP connections accepted.
    pub tcp_accepted: AtomicU64,
    /// New TCP connections / UDP sources refused by a security group.
    pub acl_denied: AtomicU64,
    /// Connections or datagrams dropped because no backend was a candidate.
    pub no_backend: AtomicU64,
    /// Backend connects that failed (refused, timed out).
    pub connect_failed: AtomicU64,
    /// Connections closed by the idle timeout.
    pub idle_closed: AtomicU64,
    /// Connections closed because their backend was deleted and drained.
    pub drained_closed: AtomicU64,
    /// New UDP flows dropped because the flow table was full.
    pub udp_table_full: AtomicU64,
    /// UDP flows expired after the idle timeout.
    pub udp_flows_expired: AtomicU64,
    /// HTTP/2 connections closed for abuse (reset or CONTINUATION floods).
    pub h2_abusive: AtomicU64,
    /// TLS handshakes that failed or timed out (no, or a refused, client
    /// certificate; an old protocol version; no common suite).
    pub tls_handshake_failed: AtomicU64,
}

impl Counters {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// `(name, value)` pairs for exposition.
    pub fn values(&self) -> Vec<(&'static str, u64)> {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("tcp_accepted", g(&self.tcp_accepted)),
            ("acl_denied", g(&self.acl_denied)),
            ("no_backend", g(&self.no_backend)),
            ("connect_failed", g(&self.connect_failed)),
            ("idle_closed", g(&self.idle_closed)),
            ("drained_closed", g(&self.drained_closed)),
            ("udp_table_full", g(&self.udp_table_full)),
            ("udp_flows_expired", g(&self.udp_flows_expired)),
            ("h2_abusive", g(&self.h2_abusive)),
            ("tls_handshake_failed", g(&self.tls_handshake_failed)),
        ]
    }
}
