//! Relaying bytes both ways between two registered TCP sockets until both
//! directions have reached end of stream (half-close honoured) or one fails.
//!
//! A poll-driven state machine rather than two joined futures: one poll of
//! the connection's task drives both directions, and each direction holds a
//! buffer or a pipe only while bytes are in flight (an idle connection
//! holds neither). The system calls are the fewest the work allows:
//!
//! - A read into the buffer that comes back short means the socket's queue
//!   was drained, so its readiness is cleared there (race-free, through
//!   `try_io`) instead of paying a second `recv` that finds nothing.
//! - A direction copies through a pooled 16 KiB buffer until a read fills
//!   it; from then on, when splice is on, it moves bytes through a kernel
//!   pipe (bulk transfers never cross into user space). Short connections
//!   thus pay no pipe handling, and splice reads, which can stop short of
//!   the queue when the pipe fills, never rely on the short-read rule.
//! - When the second direction ends, the first one already has: both
//!   sockets are then closed without a `shutdown` first (the close sends the
//!   same FIN).

use std::io;
use std::task::{Context, Poll, ready};

use rustix::net::{RecvFlags, SendFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::http::buf::{give_vec, take_vec};
use crate::splice::{CHUNK, Pipe, splice_flags};

/// What one direction holds.
enum Hold {
    /// Nothing in flight: waiting for bytes.
    Nothing,
    /// Bytes read into a buffer, written up to `at`.
    Buf { buf: Vec<u8>, at: usize },
    /// `len` bytes in a pipe, not yet written.
    Pipe { pipe: Pipe, len: usize },
}

struct Dir {
    hold: Hold,
    /// A read filled the whole buffer: a bulk transfer, spliced from now
    /// on (when splice is on).
    bulk: bool,
    done: bool,
}

impl Dir {
    const fn new() -> Dir {
        Dir {
            hold: Hold::Nothing,
            bulk: false,
            done: false,
        }
    }
}

/// Which socket is which, for [`Relay::poll`].
pub(crate) struct Ends<'a> {
    pub client: &'a TcpStream,
    pub up: &'a TcpStream,
}

/// Tells the metering of bytes written by a direction.
pub(crate) trait Counted {
    /// `n` client bytes written to the backend.
    fn up(&self, n: usize);
    /// `n` backend bytes written to the client.
    fn down(&self, n: usize);
}

pub(crate) struct Relay {
    /// Client → backend, backend → client.
    dirs: [Dir; 2],
    zero_copy: bool,
    /// Bytes moved since the last [`Relay::take_moved`].
    moved: bool,
}

impl Relay {
    /// `first`: bytes to send the backend before anything from the client
    /// (a PROXY protocol header).
    pub(crate) fn new(zero_copy: bool, first: Option<&[u8]>) -> Relay {
        let mut up = Dir::new();
        if let Some(bytes) = first.filter(|b| !b.is_empty()) {
            let mut buf = take_vec();
            buf.extend_from_slice(bytes);
            up.hold = Hold::Buf { buf, at: 0 };
        }
        Relay {
            dirs: [up, Dir::new()],
            zero_copy,
            moved: false,
        }
    }

    /// Whether bytes moved since the last call.
    pub(crate) fn take_moved(&mut self) -> bool {
        std::mem::take(&mut self.moved)
    }

    /// Ready once both directions have ended, or with the first error.
    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        ends: &Ends<'_>,
        counted: &impl Counted,
    ) -> Poll<io::Result<()>> {
        let [up, down] = &mut self.dirs;
        let zero_copy = self.zero_copy;
        let moved = &mut self.moved;
        let a = poll_dir(up, down.done, cx, ends.client, ends.up, zero_copy, moved, &|n| {
            counted.up(n)
        })?;
        let b = poll_dir(down, up.done, cx, ends.up, ends.client, zero_copy, moved, &|n| {
            counted.down(n)
        })?;
        if a.is_ready() && b.is_ready() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for d in &mut self.dirs {
            match std::mem::replace(&mut d.hold, Hold::Nothing) {
                Hold::Buf { buf, .. } => give_vec(buf),
                // A pipe that may still hold bytes is closed, not pooled.
                Hold::Pipe { pipe, len } => pipe.give_back(len == 0),
                Hold::Nothing => {}
            }
        }
    }
}

/// What a read found.
enum Got {
    Bytes(Hold),
    /// End of stream.
    Eof,
    /// Nothing there (the readiness was stale and is cleared now).
    Nothing,
}

/// Drives one direction, `src` → `dst`, as far as it can go without
/// waiting. Ready once it has relayed the end of stream; `other_done`
/// says the opposite direction has, so the connection is over and `dst`
/// needs no `shutdown` (it is about to be closed).
#[allow(clippy::too_many_arguments)]
fn poll_dir(
    d: &mut Dir,
    other_done: bool,
    cx: &mut Context<'_>,
    src: &TcpStream,
    dst: &TcpStream,
    zero_copy: bool,
    moved: &mut bool,
    counted: &dyn Fn(usize),
) -> Poll<io::Result<()>> {
    loop {
        if d.done {
            return Poll::Ready(Ok(()));
        }
        match &mut d.hold {
            Hold::Nothing => {
                ready!(src.poll_read_ready(cx))?;
                let got = if d.bulk && zero_copy {
                    read_pipe(src)?
                } else {
                    read_buf(src, &mut d.bulk)?
                };
                match got {
                    Got::Bytes(h) => d.hold = h,
                    Got::Nothing => {}
                    Got::Eof => {
                        if !other_done {
                            socket2::SockRef::from(dst).shutdown(std::net::Shutdown::Write)?;
                        }
                        d.done = true;
                    }
                }
            }
            Hold::Buf { buf, at } => {
                ready!(dst.poll_write_ready(cx))?;
                let bytes = buf.get(*at..).unwrap_or_default();
                match dst.try_io(Interest::WRITABLE, || {
                    Ok(rustix::net::send(dst, bytes, SendFlags::NOSIGNAL)?)
                }) {
                    Ok(n) => {
                        *at += n;
                        *moved = true;
                        counted(n);
                        if *at >= buf.len()
                            && let Hold::Buf { buf, .. } = std::mem::replace(&mut d.hold, Hold::Nothing)
                        {
                            give_vec(buf);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            Hold::Pipe { pipe, len } => {
                ready!(dst.poll_write_ready(cx))?;
                match dst.try_io(Interest::WRITABLE, || {
                    Ok(rustix::pipe::splice(&pipe.r, None, dst, None, *len, splice_flags())?)
                }) {
                    Ok(n) => {
                        *len -= n;
                        *moved = true;
                        counted(n);
                        if *len == 0
                            && let Hold::Pipe { pipe, .. } = std::mem::replace(&mut d.hold, Hold::Nothing)
                        {
                            pipe.give_back(true);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        }
    }
}

/// Reads what `src` has into a pooled buffer. A read that fills it marks
/// the direction `bulk`; a short one clears the readiness (see the module
/// doc).
fn read_buf(src: &TcpStream, bulk: &mut bool) -> io::Result<Got> {
    let mut buf = take_vec();
    let room = buf.capacity();
    let mut short = 0;
    let r = src.try_io(Interest::READABLE, || {
        let (n, _) = rustix::net::recv(src, rustix::buffer::spare_capacity(&mut buf), RecvFlags::empty())?;
        if n > 0 && n < room {
            short = n;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match r {
        Ok(0) => {
            give_vec(buf);
            Ok(Got::Eof)
        }
        Ok(_) => {
            *bulk = true;
            Ok(Got::Bytes(Hold::Buf { buf, at: 0 }))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && short > 0 => Ok(Got::Bytes(Hold::Buf { buf, at: 0 })),
        Err(e) => {
            give_vec(buf);
            if e.kind() == io::ErrorKind::WouldBlock {
                Ok(Got::Nothing)
            } else {
                Err(e)
            }
        }
    }
}

/// Splices what `src` has into a pooled pipe (a buffer when no pipe can be
/// had: the cap, or descriptors short).
fn read_pipe(src: &TcpStream) -> io::Result<Got> {
    let Some(pipe) = Pipe::get() else {
        let mut bulk = true;
        return read_buf(src, &mut bulk);
    };
    match src.try_io(Interest::READABLE, || {
        Ok(rustix::pipe::splice(src, None, &pipe.w, None, CHUNK, splice_flags())?)
    }) {
        Ok(0) => {
            pipe.give_back(true);
            Ok(Got::Eof)
        }
        Ok(len) => Ok(Got::Bytes(Hold::Pipe { pipe, len })),
        Err(e) => {
            pipe.give_back(true);
            if e.kind() == io::ErrorKind::WouldBlock {
                Ok(Got::Nothing)
            } else {
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    #[derive(Default)]
    struct Count {
        up: AtomicUsize,
        down: AtomicUsize,
    }

    impl Counted for Arc<Count> {
        fn up(&self, n: usize) {
            self.up.fetch_add(n, Ordering::Relaxed);
        }
        fn down(&self, n: usize) {
            self.down.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// A connected pair of sockets on loopback.
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        (a, b)
    }

    /// The test's client and backend ends, with a relay running between
    /// the proxy's two sockets until it ends; its result and the counts
    /// come back through the handle.
    async fn relayed(
        zero_copy: bool,
        first: Option<&'static [u8]>,
    ) -> (
        TcpStream,
        TcpStream,
        tokio::task::JoinHandle<io::Result<()>>,
        Arc<Count>,
    ) {
        let (client, proxy_client) = pair().await;
        let (proxy_up, backend) = pair().await;
        let count = Arc::new(Count::default());
        let counted = count.clone();
        let task = tokio::spawn(async move {
            let mut relay = Relay::new(zero_copy, first);
            let ends = Ends {
                client: &proxy_client,
                up: &proxy_up,
            };
            std::future::poll_fn(|cx| relay.poll(cx, &ends, &counted)).await
        });
        (client, backend, task, count)
    }

    /// One byte each way a hundred times: every read is short, so the
    /// readiness is cleared after each and the next byte must still wake
    /// the relay (nothing is lost to the cleared readiness).
    #[tokio::test]
    async fn single_bytes_after_short_reads_are_never_stuck() {
        for zero_copy in [false, true] {
            let (mut client, mut backend, task, count) = relayed(zero_copy, None).await;
            for i in 0..100u8 {
                client.write_all(&[i]).await.unwrap();
                let mut b = [0u8; 1];
                backend.read_exact(&mut b).await.unwrap();
                assert_eq!(b[0], i);
                backend.write_all(&[i ^ 0xff]).await.unwrap();
                client.read_exact(&mut b).await.unwrap();
                assert_eq!(b[0], i ^ 0xff);
            }
            drop(client);
            let mut rest = Vec::new();
            backend.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty(), "EOF relayed to the backend");
            drop(backend);
            task.await.unwrap().unwrap();
            assert_eq!(count.up.load(Ordering::Relaxed), 100);
            assert_eq!(count.down.load(Ordering::Relaxed), 100);
        }
    }

    /// The backend half-closes first (answer, then FIN) while the client
    /// is still sending: the client sees EOF after the answer, and what it
    /// sends afterwards still reaches the backend, until it closes too.
    #[tokio::test]
    async fn the_backend_half_closes_first() {
        for zero_copy in [false, true] {
            let (mut client, mut backend, task, _) = relayed(zero_copy, None).await;
            backend.write_all(b"banner").await.unwrap();
            backend.shutdown().await.unwrap();
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"banner");
            client.write_all(b"after").await.unwrap();
            client.shutdown().await.unwrap();
            let mut up = Vec::new();
            backend.read_to_end(&mut up).await.unwrap();
            assert_eq!(up, b"after");
            task.await.unwrap().unwrap();
        }
    }

    /// Past the first full buffer a direction is spliced: 4 MiB each way,
    /// byte-exact across the switch, and the PROXY-style prefix first.
    #[tokio::test]
    async fn bulk_crosses_from_copy_to_splice_intact() {
        for zero_copy in [false, true] {
            let (client, backend, task, count) = relayed(zero_copy, Some(b"PREFIX")).await;
            let n = 4 << 20;
            let data: Vec<u8> = (0..n).map(|k| (k % 251) as u8).collect();
            let (mut cr, mut cw) = client.into_split();
            let (mut br, mut bw) = backend.into_split();
            let sent = data.clone();
            let up = tokio::spawn(async move {
                cw.write_all(&sent).await.unwrap();
                cw.shutdown().await.unwrap();
            });
            let sent = data.clone();
            let down = tokio::spawn(async move {
                bw.write_all(&sent).await.unwrap();
                bw.shutdown().await.unwrap();
            });
            let mut at_backend = Vec::new();
            let mut at_client = Vec::new();
            let (a, b) = tokio::join!(br.read_to_end(&mut at_backend), cr.read_to_end(&mut at_client));
            a.unwrap();
            b.unwrap();
            up.await.unwrap();
            down.await.unwrap();
            assert_eq!(&at_backend[..6], b"PREFIX");
            assert!(
                at_backend[6..] == data[..],
                "client → backend intact (zero_copy={zero_copy})"
            );
            assert!(at_client == data, "backend → client intact (zero_copy={zero_copy})");
            task.await.unwrap().unwrap();
            assert_eq!(count.up.load(Ordering::Relaxed), n + 6);
            assert_eq!(count.down.load(Ordering::Relaxed), n);
        }
    }

    /// A reset from the backend ends the relay with its error.
    #[tokio::test]
    async fn a_reset_ends_the_relay_with_an_error() {
        let (mut client, backend, task, _) = relayed(false, None).await;
        client.write_all(b"x").await.unwrap();
        socket2::SockRef::from(&backend)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        drop(backend);
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        assert!(r.is_err(), "the reset is an error: {r:?}");
    }
}
