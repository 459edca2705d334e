//! Per-connection accounting into the VServer's and LB's counters: the
//! connection counts and the active gauge, bytes as they move, and TCP
//! segments from the kernel (`TCP_INFO`) when the connection ends and, for
//! long-lived tunnels, every few seconds.

use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::snapshot::{BackendStat, BackendStats, Stat, VsStats};

/// How often a long-lived tunnel reports its segments.
pub(crate) const SEGMENTS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// One client connection (or UDP flow): counted as new and active when
/// made, inactive when dropped.
#[derive(Debug)]
pub(crate) struct Meter {
    stats: Arc<VsStats>,
    /// Segments already reported: in (high half) and out (low half).
    segs: AtomicU64,
    /// When they were last read ([`coarse_ms`]).
    read_ms: AtomicU64,
}

/// Milliseconds on the kernel's coarse monotonic clock (see
/// [`weir_sys::coarse_monotonic_ms`]): for ages and periods of seconds, where
/// a few milliseconds do not matter, on paths run per request.
pub(crate) fn coarse_ms() -> u64 {
    weir_sys::coarse_monotonic_ms()
}

impl Meter {
    pub(crate) fn open(stats: &Arc<VsStats>) -> Meter {
        stats.inc(Stat::Connections);
        stats.inc(Stat::Active);
        Meter {
            stats: stats.clone(),
            segs: AtomicU64::new(0),
            read_ms: AtomicU64::new(coarse_ms()),
        }
    }

    /// Bytes received from the client.
    #[inline]
    pub(crate) fn bytes_in(&self, n: usize) {
        if n > 0 {
            self.stats.add(Stat::BytesIn, n as u64);
        }
    }

    /// Bytes sent to the client.
    #[inline]
    pub(crate) fn bytes_out(&self, n: usize) {
        if n > 0 {
            self.stats.add(Stat::BytesOut, n as u64);
        }
    }

    /// `n` client bytes relayed to a backend (tunnels).
    #[inline]
    pub(crate) fn relayed_up(&self, backend: &BackendStats, n: usize) {
        self.bytes_in(n);
        backend.add(BackendStat::BytesOut, n as u64);
    }

    /// `n` backend bytes relayed to the client (tunnels).
    #[inline]
    pub(crate) fn relayed_down(&self, backend: &BackendStats, n: usize) {
        self.bytes_out(n);
        backend.add(BackendStat::BytesIn, n as u64);
    }

    /// Datagrams (UDP).
    #[inline]
    pub(crate) fn packets(&self, received: u64, sent: u64) {
        if received > 0 {
            self.stats.add(Stat::PacketsIn, received);
        }
        if sent > 0 {
            self.stats.add(Stat::PacketsOut, sent);
        }
    }

    /// [`Meter::segments`] if the last read is [`SEGMENTS_EVERY`] old: for
    /// long-lived connections, called as they serve (a clock read, no system
    /// call, otherwise).
    #[inline]
    pub(crate) fn segments_if_due(&self, fd: BorrowedFd<'_>) {
        let now = coarse_ms();
        if now.saturating_sub(self.read_ms.load(Ordering::Relaxed)) >= SEGMENTS_EVERY.as_millis() as u64 {
            self.read_ms.store(now, Ordering::Relaxed);
            self.segments(fd);
        }
    }

    /// Adds the segments the client socket moved since the last report.
    pub(crate) fn segments(&self, fd: BorrowedFd<'_>) {
        if !weir_metrics::counters::ENABLED {
            return;
        }
        if let Ok(now) = weir_sys::tcp_segments(fd) {
            let packed = (u64::from(now.r#in) << 32) | u64::from(now.out);
            let before = self.segs.swap(packed, Ordering::Relaxed);
            let r#in = now.r#in.wrapping_sub((before >> 32) as u32);
            let out = now.out.wrapping_sub(before as u32);
            self.packets(u64::from(r#in), u64::from(out));
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.stats.dec_active();
    }
}
