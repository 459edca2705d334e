//! A connection's input buffer: allocated when bytes arrive, released when
//! the connection goes idle, so idle keep-alive connections hold no buffer.
//! Released buffers go to a small per-thread spare list (no lock), so a busy
//! keep-alive connection does not pay malloc/free for its buffers on every
//! request.

use std::cell::RefCell;
use std::io;

use tokio::net::TcpStream;

/// Room reserved per read. 8 KiB is under jemalloc's largest small size
/// class (14 KiB): a buffer that misses the spare list comes from the
/// allocator's per-thread cache. At 16 KiB (a large class) each miss went
/// to the arena's extent path, ~1,100 instructions to allocate and ~900 to
/// free, which with 50 busy keep-alive connections (more buffers in
/// flight than spares) was 8% of the proxy's own work per request.
const CHUNK: usize = 8 * 1024;
/// Spare buffers kept per worker thread (512 KiB at most).
const SPARE_PER_THREAD: usize = 64;

thread_local! {
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer of `CHUNK` bytes' capacity, from this thread's spares
/// when there is one.
pub fn take_vec() -> Vec<u8> {
    SPARE
        .with(|s| s.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(CHUNK))
}

/// Gives a buffer back to this thread's spares (one that grew is freed).
pub fn give_vec(mut v: Vec<u8>) {
    if v.capacity() == CHUNK {
        v.clear();
        SPARE.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < SPARE_PER_THREAD {
                s.push(v);
            }
        });
    }
}

/// Writes all of `bytes` to `s`: straight to the socket while it takes
/// them, waiting only when it is full (no `AsyncWrite` layers between).
/// Waits through the socket's own write-waker slot (`poll_write_ready`),
/// so the future is a few words, not a waiter node.
pub(crate) async fn send_all(s: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    std::future::poll_fn(|cx| {
        while !bytes.is_empty() {
            std::task::ready!(s.poll_write_ready(cx))?;
            let r = s.try_io(tokio::io::Interest::WRITABLE, || {
                Ok(rustix::net::send(s, bytes, rustix::net::SendFlags::NOSIGNAL)?)
            });
            match r {
                Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return std::task::Poll::Ready(Err(e)),
            }
        }
        std::task::Poll::Ready(Ok(()))
    })
    .await
}

#[derive(Debug, Default)]
pub struct Buf {
    data: Vec<u8>,
    /// Start of the unread bytes; `data.len()` is their end.
    r: usize,
}

impl Buf {
    pub fn bytes(&self) -> &[u8] {
        self.data.get(self.r..).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.data.len() - self.r
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn consume(&mut self, n: usize) {
        self.r = (self.r + n).min(self.data.len());
        if self.r == self.data.len() {
            self.r = 0;
            self.data.clear();
        }
    }

    /// Appends bytes read elsewhere.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.data.capacity() == 0 {
            self.data = take_vec();
        }
        self.data.extend_from_slice(bytes);
    }

    /// Frees the memory when nothing is buffered.
    pub fn release(&mut self) {
        if self.is_empty() {
            give_vec(std::mem::take(&mut self.data));
            self.r = 0;
        }
    }

    /// Reads once from any byte stream (a TLS stream): `fill` for streams
    /// without readiness. Returns the bytes read; 0 at end of stream.
    pub async fn fill_io<R: tokio::io::AsyncRead + Unpin>(&mut self, r: &mut R) -> io::Result<usize> {
        use tokio::io::AsyncReadExt;
        self.make_room();
        r.read_buf(&mut self.data).await
    }

    /// Reads what `fd` has now, without waiting (`WouldBlock` when nothing).
    pub fn recv_now(&mut self, fd: impl std::os::fd::AsFd) -> io::Result<usize> {
        self.make_room();
        let flags = rustix::net::RecvFlags::DONTWAIT;
        match rustix::net::recv(fd, rustix::buffer::spare_capacity(&mut self.data), flags) {
            Ok((n, _)) => Ok(n),
            Err(e) => {
                // Nothing there: hold no memory while waiting.
                self.release();
                Err(e.into())
            }
        }
    }

    fn make_room(&mut self) {
        if self.data.capacity() == 0 {
            self.data = take_vec();
        } else if self.data.capacity() - self.data.len() < CHUNK / 4 {
            if self.r > 0 {
                self.data.drain(..self.r);
                self.r = 0;
            }
            self.data.reserve(CHUNK);
        }
    }

    /// Reads once from `s` (waiting until it is readable). Returns the
    /// bytes read; 0 at end of stream.
    ///
    /// A short read means the socket's receive queue was drained, so the
    /// readiness is cleared right there (as tokio's own `poll_read` does),
    /// and the next call waits for the poller instead of paying a `recv`
    /// that finds nothing. The clear goes through `try_io`, which skips it
    /// when an event arrived since the read began: no wake-up is lost.
    pub async fn fill(&mut self, s: &TcpStream) -> io::Result<usize> {
        // Through the socket's read-waker slot (`poll_read_ready`): the
        // future holds two pointers, not a waiter node.
        std::future::poll_fn(|cx| {
            loop {
                std::task::ready!(s.poll_read_ready(cx))?;
                self.make_room();
                let space = self.data.capacity() - self.data.len();
                let mut drained = 0;
                let data = &mut self.data;
                let r = s.try_io(tokio::io::Interest::READABLE, || {
                    let (n, _) =
                        rustix::net::recv(s, rustix::buffer::spare_capacity(data), rustix::net::RecvFlags::empty())
                            .map_err(io::Error::from)?;
                    if n > 0 && n < space {
                        drained = n;
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                    Ok(n)
                });
                match r {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && drained > 0 => {
                        return std::task::Poll::Ready(Ok(drained));
                    }
                    // Readiness was stale: wait for real, holding no memory.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.release(),
                    r => return std::task::Poll::Ready(r),
                }
            }
        })
        .await
    }
}
