//! Idle keep-alive connections to one backend, shared by every client
//! connection: a bounded lock-free queue, so taking and returning one is an
//! atomic operation, never a lock. A connection is checked when taken: one
//! the backend has closed (or sent stray bytes on) is dropped, as is one
//! idle for longer than the keep-alive limit.

use std::io;

use crossbeam_queue::ArrayQueue;
use tokio::net::TcpStream;
use tokio::time::Duration;

use crate::meter::coarse_ms;

/// Idle connections kept per backend.
const CAPACITY: usize = 512;

/// Connections idle for less than this (ms) are reused without a liveness
/// check (backends close keep-alive connections after seconds, not sooner;
/// a request that meets one anyway is retried when that is safe).
const FRESH_MS: u64 = 1000;

/// Created on first use: TCP and UDP backends never pay for it.
#[derive(Default)]
pub struct Pool {
    /// Each with when it was put back ([`coarse_ms`]: ages are seconds).
    idle: std::sync::OnceLock<ArrayQueue<(TcpStream, u64)>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("idle", &self.idle.get().map_or(0, ArrayQueue::len))
            .finish()
    }
}

impl Pool {
    /// A live idle connection, if there is one younger than `max_idle`.
    pub fn take(&self, max_idle: Duration) -> Option<TcpStream> {
        let idle = self.idle.get()?;
        let now = coarse_ms();
        let max_idle = max_idle.as_millis() as u64;
        while let Some((s, since)) = idle.pop() {
            let age = now.saturating_sub(since);
            if age > max_idle {
                continue;
            }
            if age < FRESH_MS {
                return Some(s);
            }
            // Closed by the backend (EOF), or unexpected bytes: not reusable.
            match s.try_read(&mut [0u8; 1]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(s),
                _ => continue,
            }
        }
        None
    }

    /// Keeps `s` for reuse (dropped when the pool is full).
    pub fn put(&self, s: TcpStream) {
        let _ = self
            .idle
            .get_or_init(|| ArrayQueue::new(CAPACITY))
            .push((s, coarse_ms()));
    }

    /// Closes every idle connection (the backend was removed).
    pub fn clear(&self) {
        if let Some(idle) = self.idle.get() {
            while idle.pop().is_some() {}
        }
    }
}
