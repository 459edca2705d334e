//! Hot-path counters: sharded per thread so the data plane's workers never
//! write the same cache line, summed when read (by the sampler, `/metrics`).
//!
//! A gauge (active connections) is a counter bumped up and down, possibly on
//! different shards: the wrapping sum is still exact.

use std::sync::OnceLock;
#[cfg(not(feature = "noop"))]
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

/// False when the `noop` feature compiled the hot-path counting out (to
/// measure what it costs): callers skip work that only feeds counters.
pub const ENABLED: bool = cfg!(not(feature = "noop"));

/// Counters of an LB and of a VServer (an LB's are the sum of its
/// VServers', kept apart so deleting a VServer does not reset them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Stat {
    /// Connections accepted (UDP: new flows).
    Connections,
    /// Open connections (UDP: live flows): a gauge.
    Active,
    /// Bytes received from clients (payload, after TLS decryption).
    BytesIn,
    /// Bytes sent to clients.
    BytesOut,
    /// TCP segments received from clients (kernel `tcpi_segs_in`), UDP datagrams.
    PacketsIn,
    /// TCP segments sent to clients (`tcpi_segs_out`), UDP datagrams.
    PacketsOut,
    /// New connections / UDP sources refused by the security group.
    Dropped,
    /// HTTP requests received.
    Requests,
    Http1xx,
    Http2xx,
    Http3xx,
    Http4xx,
    Http5xx,
}

pub const STATS: usize = 13;

/// Counters of one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum BackendStat {
    /// Connections opened to the backend (HTTP: new pooled connections).
    Connections,
    /// Bytes sent to the backend.
    BytesOut,
    /// Bytes received from the backend.
    BytesIn,
    /// Connects that failed, and HTTP exchanges that failed mid-way.
    Failures,
}

pub const BACKEND_STATS: usize = 4;

/// How many shards each counter set has: the number of CPUs, at most 16.
fn shards() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| std::thread::available_parallelism().map_or(4, |n| n.get()).clamp(1, 16))
}

/// This thread's shard (threads are spread round robin), reduced once per
/// thread so an add costs a thread-local read, not a division.
#[cfg(not(feature = "noop"))]
#[inline]
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % shards();
    }
    SHARD.with(|s| *s)
}

/// `N` counters, one cache-line-padded copy per shard.
#[derive(Debug)]
pub struct Counters<const N: usize> {
    shards: Box<[CachePadded<[AtomicU64; N]>]>,
}

impl<const N: usize> Default for Counters<N> {
    fn default() -> Self {
        Counters {
            shards: (0..shards())
                .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        }
    }
}

impl<const N: usize> Counters<N> {
    #[inline]
    fn add_at(&self, i: usize, v: u64) {
        #[cfg(not(feature = "noop"))]
        if let Some(c) = self.shards.get(shard()).and_then(|s| s.get(i)) {
            c.fetch_add(v, Ordering::Relaxed);
        }
        #[cfg(feature = "noop")]
        let _ = (i, v);
    }

    fn get_at(&self, i: usize) -> u64 {
        self.shards
            .iter()
            .filter_map(|s| s.get(i))
            .fold(0u64, |a, c| a.wrapping_add(c.load(Ordering::Relaxed)))
    }

    /// Every counter's value, summed over the shards.
    pub fn read(&self) -> [u64; N] {
        std::array::from_fn(|i| self.get_at(i))
    }
}

/// An LB's or VServer's counters.
pub type Stats = Counters<STATS>;
/// A backend's counters.
pub type BackendStats = Counters<BACKEND_STATS>;

impl Counters<STATS> {
    #[inline]
    pub fn add(&self, s: Stat, v: u64) {
        self.add_at(s as usize, v);
    }

    #[inline]
    pub fn inc(&self, s: Stat) {
        self.add_at(s as usize, 1);
    }

    /// `Active` down by one.
    #[inline]
    pub fn dec_active(&self) {
        self.add_at(Stat::Active as usize, u64::MAX);
    }

    #[inline]
    pub fn get(&self, s: Stat) -> u64 {
        self.get_at(s as usize)
    }

    /// A response of `status` sent to a client.
    #[inline]
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100);
        if (1..=5).contains(&class) {
            self.add_at(Stat::Http1xx as usize + class - 1, 1);
        }
    }
}

impl Counters<BACKEND_STATS> {
    #[inline]
    pub fn add(&self, s: BackendStat, v: u64) {
        self.add_at(s as usize, v);
    }

    #[inline]
    pub fn inc(&self, s: BackendStat) {
        self.add_at(s as usize, 1);
    }

    #[inline]
    pub fn get(&self, s: BackendStat) -> u64 {
        self.get_at(s as usize)
    }
}

#[cfg(all(test, not(feature = "noop")))]
mod tests {
    use super::*;

    #[test]
    fn sums_over_threads_and_gauges_wrap_exactly() {
        let s = std::sync::Arc::new(Stats::default());
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        s.inc(Stat::Connections);
                        s.inc(Stat::Active);
                        s.add(Stat::BytesIn, 3);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        // Closing on another thread than the one that opened.
        for _ in 0..2000 {
            s.dec_active();
        }
        assert_eq!(s.get(Stat::Connections), 8000);
        assert_eq!(s.get(Stat::Active), 6000);
        assert_eq!(s.get(Stat::BytesIn), 24000);
        s.response(404);
        s.response(200);
        s.response(204);
        s.response(600);
        assert_eq!(s.get(Stat::Http4xx), 1);
        assert_eq!(s.get(Stat::Http2xx), 2);
        assert_eq!(s.read().iter().skip(Stat::Http1xx as usize).sum::<u64>(), 3);
    }
}
