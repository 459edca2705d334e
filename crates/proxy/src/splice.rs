//! Zero-copy TCP relaying with splice(2): socket → pipe → socket, so bulk
//! bytes never cross into user space (the relay's bulk directions and HTTP
//! bodies of known length). rustix wraps the syscalls safely, so this needs
//! no `unsafe`.
//!
//! Pipes cost two descriptors and two syscalls to make, so they are pooled
//! per worker thread (no lock): a direction takes one when bytes arrive and
//! gives it back, empty, when the burst is over, so idle connections hold
//! none and new connections pay no pipe2/close. When no pipe can be had
//! (the cap, or the descriptor limit), the burst is copied through a buffer
//! instead, so splice never makes a connection fail.

use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::pipe::{PipeFlags, SpliceFlags, pipe_with, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Bytes moved per splice call, and each pipe's capacity (set when the
/// pipe is made; a pipe the kernel will not grow keeps its 64 KiB and just
/// moves less per call). Measured against HAProxy with splice (64 KiB
/// pipes), `bench/l4.sh` bulk per CPU-second, four same-session A/B runs:
/// s→c 0.80-0.96 with 64 KiB pipes, 0.98-1.20 with 256 KiB (fewer calls
/// per byte, fewer wake-ups).
pub(crate) const CHUNK: usize = 256 * 1024;
/// Empty pipes kept per worker thread for reuse.
const POOL_PER_THREAD: usize = 64;
/// Pipes alive at once across all connections (two descriptors each); past
/// it, bursts are copied. Like HAProxy's `maxpipes`, it keeps splice from
/// starving the sockets of descriptors, and bounds what pipes can hold:
/// 256 × 256 KiB = 64 MiB at most (the kernel's default per-user pipe
/// budget, `pipe-user-pages-soft`, is the same).
pub(crate) const MAX_PIPES: usize = 256;

static PIPES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static POOL: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// A pipe counted against [`MAX_PIPES`] for as long as it lives.
pub(crate) struct Pipe {
    pub(crate) r: OwnedFd,
    pub(crate) w: OwnedFd,
}

impl Pipe {
    /// A pooled empty pipe, or a new one within the cap.
    pub(crate) fn get() -> Option<Pipe> {
        if let Some(p) = POOL.with(|pool| pool.borrow_mut().pop()) {
            return Some(p);
        }
        if PIPES.fetch_add(1, Ordering::Relaxed) >= MAX_PIPES {
            PIPES.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        match pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC) {
            Ok((r, w)) => {
                let _ = rustix::pipe::fcntl_setpipe_size(&w, CHUNK);
                Some(Pipe { r, w })
            }
            Err(_) => {
                PIPES.fetch_sub(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Returns an empty pipe to this thread's pool (a pipe that may still
    /// hold bytes is closed instead).
    pub(crate) fn give_back(self, empty: bool) {
        if empty {
            POOL.with(|pool| {
                let mut pool = pool.borrow_mut();
                if pool.len() < POOL_PER_THREAD {
                    pool.push(self);
                }
            });
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        PIPES.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(crate) fn splice_flags() -> SpliceFlags {
    SpliceFlags::MOVE | SpliceFlags::NONBLOCK
}

/// The side of an [`exact`] transfer that failed or stalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Src,
    Dst,
}

/// Why an [`exact`] transfer stopped short: which side, and the error
/// (`TimedOut` when that side made no progress for `idle`).
pub(crate) type Stopped = (Side, io::Error);

/// Moves exactly `n` bytes from `src` to `dst` (an HTTP body of known
/// length), never reading past them, each wait for bytes bounded by `idle`.
/// Returns the bytes moved: fewer than `n` only at EOF.
pub(crate) async fn exact(src: &TcpStream, dst: &TcpStream, n: u64, idle: std::time::Duration) -> Result<u64, Stopped> {
    let Some(p) = Pipe::get() else {
        return copy_exact(src, dst, n, idle).await;
    };
    let mut moved = 0u64;
    let r = async {
        while moved < n {
            let want = usize::try_from(n - moved).unwrap_or(CHUNK).min(CHUNK);
            let got = match src.try_io(Interest::READABLE, || {
                Ok(splice(src, None, &p.w, None, want, splice_flags())?)
            }) {
                Ok(0) => return Ok(()),
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    within(idle, src.readable()).await.map_err(|e| (Side::Src, e))?;
                    continue;
                }
                Err(e) => return Err((Side::Src, e)),
            };
            let mut in_pipe = got;
            while in_pipe > 0 {
                match dst.try_io(Interest::WRITABLE, || {
                    Ok(splice(&p.r, None, dst, None, in_pipe, splice_flags())?)
                }) {
                    Ok(k) => in_pipe -= k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        within(idle, dst.writable()).await.map_err(|e| (Side::Dst, e))?;
                    }
                    Err(e) => return Err((Side::Dst, e)),
                }
            }
            moved += got as u64;
        }
        Ok(())
    }
    .await;
    // Only a transfer that completed leaves the pipe empty.
    p.give_back(r.is_ok());
    r.map(|()| moved)
}

/// `ready` within `idle`, else a `TimedOut` error.
async fn within(idle: std::time::Duration, ready: impl Future<Output = io::Result<()>>) -> io::Result<()> {
    tokio::time::timeout(idle, ready)
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

async fn copy_exact(src: &TcpStream, dst: &TcpStream, n: u64, idle: std::time::Duration) -> Result<u64, Stopped> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut moved = 0u64;
    while moved < n {
        let want = usize::try_from(n - moved).unwrap_or(buf.len()).min(buf.len());
        let k = match src.try_read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                within(idle, src.readable()).await.map_err(|e| (Side::Src, e))?;
                continue;
            }
            Err(e) => return Err((Side::Src, e)),
        };
        let mut sent = 0;
        while sent < k {
            match dst.try_write(&buf[sent..k]) {
                Ok(w) => sent += w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    within(idle, dst.writable()).await.map_err(|e| (Side::Dst, e))?;
                }
                Err(e) => return Err((Side::Dst, e)),
            }
        }
        moved += k as u64;
    }
    Ok(moved)
}
