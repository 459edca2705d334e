//! Zero-copy TCP relaying with splice(2): socket → pipe → socket, so bulk
//! bytes never cross into user space. rustix wraps the syscalls safely, so
//! this needs no `unsafe`.
//!
//! Pipes cost two descriptors each, so a direction holds one only while it
//! is busy: it is created when bytes arrive and released after a quiet
//! second. When no pipe can be had (descriptor limit), the burst is copied
//! through a buffer instead, so splice never makes a connection fail.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rustix::pipe::{PipeFlags, SpliceFlags, pipe_with, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Bytes moved per splice call: the default pipe capacity.
const CHUNK: usize = 64 * 1024;
/// A direction quiet for this long gives its pipe back.
const KEEP_PIPE: Duration = Duration::from_secs(1);
/// Pipes alive at once across all connections (two descriptors each); past
/// it, bursts are copied. Like HAProxy's `maxpipes`, it keeps splice from
/// starving the sockets of descriptors.
pub(crate) const MAX_PIPES: usize = 1024;

static PIPES: AtomicUsize = AtomicUsize::new(0);

/// A pipe counted against [`MAX_PIPES`] for as long as it lives.
struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
}

impl Pipe {
    fn get() -> Option<Pipe> {
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
}

impl Drop for Pipe {
    fn drop(&mut self) {
        PIPES.fetch_sub(1, Ordering::Relaxed);
    }
}

fn flags() -> SpliceFlags {
    SpliceFlags::MOVE | SpliceFlags::NONBLOCK
}

/// Moves bytes from `src` to `dst` until EOF, then half-closes `dst`.
pub(crate) async fn pipe(src: &TcpStream, dst: &TcpStream, last: &AtomicU64, base: Instant) -> io::Result<()> {
    let mut fds: Option<Pipe> = None;
    loop {
        if fds.is_some() {
            // Keep the pipe while bytes keep coming; give it back when quiet.
            if tokio::time::timeout(KEEP_PIPE, src.readable()).await.is_err() {
                fds = None;
                src.readable().await?;
            }
        } else {
            src.readable().await?;
        }
        if fds.is_none() {
            fds = Pipe::get();
        }
        let done = match &fds {
            Some(p) => splice_burst(src, dst, &p.r, &p.w).await?,
            None => copy_burst(src, dst).await?,
        };
        if done {
            socket2::SockRef::from(dst).shutdown(std::net::Shutdown::Write)?;
            return Ok(());
        }
        last.store(base.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// Splices what `src` has now; `true` at EOF.
async fn splice_burst(src: &TcpStream, dst: &TcpStream, pr: &OwnedFd, pw: &OwnedFd) -> io::Result<bool> {
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
                Ok(n) => in_pipe -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Copies what `src` has now through a buffer; `true` at EOF.
async fn copy_burst(src: &TcpStream, dst: &TcpStream) -> io::Result<bool> {
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
                Ok(k) => sent += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}
