//! Zero-copy TCP relaying with splice(2): socket → pipe → socket, so bulk
//! bytes never cross into user space. rustix wraps the syscalls safely, so
//! this needs no `unsafe`.
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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use rustix::pipe::{PipeFlags, SpliceFlags, pipe_with, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Bytes moved per splice call: the default pipe capacity.
const CHUNK: usize = 64 * 1024;
/// Empty pipes kept per worker thread for reuse.
const POOL_PER_THREAD: usize = 64;
/// Pipes alive at once across all connections (two descriptors each); past
/// it, bursts are copied. Like HAProxy's `maxpipes`, it keeps splice from
/// starving the sockets of descriptors.
pub(crate) const MAX_PIPES: usize = 1024;

static PIPES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static POOL: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// A pipe counted against [`MAX_PIPES`] for as long as it lives.
struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
}

impl Pipe {
    /// A pooled empty pipe, or a new one within the cap.
    fn get() -> Option<Pipe> {
        if let Some(p) = POOL.with(|pool| pool.borrow_mut().pop()) {
            return Some(p);
        }
        if PIPES.fetch_add(1, Ordering::Relaxed) >= MAX_PIPES {
            PIPES.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        match pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC) {
            Ok((r, w)) => Some(Pipe { r, w }),
            Err(_) => {
                PIPES.fetch_sub(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Returns an empty pipe to this thread's pool (a pipe that may still
    /// hold bytes is closed instead).
    fn give_back(self, empty: bool) {
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

fn flags() -> SpliceFlags {
    SpliceFlags::MOVE | SpliceFlags::NONBLOCK
}

/// Moves bytes from `src` to `dst` until EOF, then half-closes `dst`;
/// through a kernel pipe when `zero_copy` (and one is available), else
/// through a buffer that exists only while bytes flow. `moved` is told of
/// every write.
pub(crate) async fn pipe(
    src: &TcpStream,
    dst: &TcpStream,
    last: &AtomicU64,
    base: Instant,
    zero_copy: bool,
    moved: &(dyn Fn(usize) + Sync),
) -> io::Result<()> {
    loop {
        src.readable().await?;
        let done = match zero_copy.then(Pipe::get).flatten() {
            Some(p) => {
                let r = splice_burst(src, dst, &p.r, &p.w, moved).await;
                // Only a burst that completed leaves the pipe empty.
                p.give_back(r.is_ok());
                r?
            }
            None => copy_burst(src, dst, moved).await?,
        };
        if done {
            socket2::SockRef::from(dst).shutdown(std::net::Shutdown::Write)?;
            return Ok(());
        }
        last.store(base.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// Splices what `src` has now; `true` at EOF.
async fn splice_burst(
    src: &TcpStream,
    dst: &TcpStream,
    pr: &OwnedFd,
    pw: &OwnedFd,
    moved: &(dyn Fn(usize) + Sync),
) -> io::Result<bool> {
    loop {
        let mut in_pipe = match src.try_io(Interest::READABLE, || Ok(splice(src, None, pw, None, CHUNK, flags())?)) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        };
        while in_pipe > 0 {
            dst.writable().await?;
            match dst.try_io(Interest::WRITABLE, || {
                Ok(splice(pr, None, dst, None, in_pipe, flags())?)
            }) {
                Ok(n) => {
                    in_pipe -= n;
                    moved(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Copies what `src` has now through a buffer; `true` at EOF.
async fn copy_burst(src: &TcpStream, dst: &TcpStream, moved: &(dyn Fn(usize) + Sync)) -> io::Result<bool> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match src.try_read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        };
        let mut sent = 0;
        while sent < n {
            dst.writable().await?;
            match dst.try_write(&buf[sent..n]) {
                Ok(k) => {
                    sent += k;
                    moved(k);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Moves exactly `n` bytes from `src` to `dst` (an HTTP body of known
/// length), never reading past them, each wait for bytes bounded by `idle`.
/// Returns the bytes moved: fewer than `n` only at EOF.
pub(crate) async fn exact(src: &TcpStream, dst: &TcpStream, n: u64, idle: std::time::Duration) -> io::Result<u64> {
    let Some(p) = Pipe::get() else {
        return copy_exact(src, dst, n, idle).await;
    };
    let mut moved = 0u64;
    let r = async {
        while moved < n {
            let want = usize::try_from(n - moved).unwrap_or(CHUNK).min(CHUNK);
            let got = match src.try_io(Interest::READABLE, || Ok(splice(src, None, &p.w, None, want, flags())?)) {
                Ok(0) => return Ok(()),
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    within(idle, src.readable()).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut in_pipe = got;
            while in_pipe > 0 {
                match dst.try_io(Interest::WRITABLE, || {
                    Ok(splice(&p.r, None, dst, None, in_pipe, flags())?)
                }) {
                    Ok(k) => in_pipe -= k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        within(idle, dst.writable()).await?;
                    }
                    Err(e) => return Err(e),
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

async fn copy_exact(src: &TcpStream, dst: &TcpStream, n: u64, idle: std::time::Duration) -> io::Result<u64> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut moved = 0u64;
    while moved < n {
        let want = usize::try_from(n - moved).unwrap_or(buf.len()).min(buf.len());
        let k = match src.try_read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                within(idle, src.readable()).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut sent = 0;
        while sent < k {
            match dst.try_write(&buf[sent..k]) {
                Ok(w) => sent += w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    within(idle, dst.writable()).await?;
                }
                Err(e) => return Err(e),
            }
        }
        moved += k as u64;
    }
    Ok(moved)
}
