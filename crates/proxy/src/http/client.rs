//! What HTTP/1 serving needs of a client connection: a cleartext TCP socket
//! (registered with the poller only once it would block: [`Lazy`]) or a TLS
//! stream over one.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::buf::Buf;
use crate::meter::Meter;

pub(crate) trait ClientIo: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static {
    /// HTTP is spoken in clear on it (HTTP/2 then starts by its preface;
    /// over TLS, by ALPN).
    const CLEARTEXT: bool;
    /// The socket itself when the HTTP bytes are on it in clear: splice
    /// and readiness-based reads apply. `None` under TLS.
    fn tcp(&self) -> Option<&TcpStream>;
    /// The socket, under any layer (for `TCP_INFO`).
    fn fd(&self) -> Option<BorrowedFd<'_>>;
    /// The socket back, when there is no layer over it.
    fn into_tcp(self) -> Result<TcpStream, Self>
    where
        Self: Sized;
    /// Reads what is there without the poller, for a socket not registered
    /// yet; `None` when it is registered (or just became so because
    /// nothing was there): then read through the poller.
    fn raw_recv(&mut self, _buf: &mut Buf) -> Option<io::Result<usize>> {
        None
    }
    /// Writes what the socket takes now, likewise.
    fn raw_send(&mut self, _bytes: &[u8]) -> Option<io::Result<usize>> {
        None
    }
}

/// A client socket registered with the poller (tokio) only when a read or
/// write would block. A `Connection: close` request that arrived with its
/// connection, and whose response fits the socket buffer, never is: that
/// saves the `epoll_ctl` ADD at accept and DEL at close, 2 of ~10 system
/// calls per such connection (HAProxy reads speculatively the same way).
#[derive(Debug)]
pub(crate) enum Lazy {
    Raw(Option<std::net::TcpStream>),
    Reg(TcpStream),
}

impl Lazy {
    /// `s` must be non-blocking.
    pub(crate) fn new(s: std::net::TcpStream) -> Lazy {
        Lazy::Raw(Some(s))
    }

    fn registered(&mut self) -> io::Result<&mut TcpStream> {
        if let Lazy::Raw(s) = self {
            let s = s.take().ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
            *self = Lazy::Reg(TcpStream::from_std(s)?);
        }
        match self {
            Lazy::Reg(t) => Ok(t),
            Lazy::Raw(_) => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// After a read or write found the socket not ready: register it (a
    /// socket already ready when added is reported at once, so nothing
    /// that arrived meanwhile is missed).
    fn would_block(&mut self) -> Option<io::Result<usize>> {
        self.registered().err().map(Err)
    }
}

impl ClientIo for Lazy {
    const CLEARTEXT: bool = true;
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Lazy::Reg(t) => Some(t.as_fd()),
            Lazy::Raw(s) => s.as_ref().map(|s| s.as_fd()),
        }
    }
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Lazy::Reg(t) => Some(t),
            Lazy::Raw(_) => None,
        }
    }
    fn into_tcp(mut self) -> Result<TcpStream, Self> {
        if self.registered().is_err() {
            return Err(self);
        }
        match self {
            Lazy::Reg(t) => Ok(t),
            other => Err(other),
        }
    }
    fn raw_recv(&mut self, buf: &mut Buf) -> Option<io::Result<usize>> {
        let Lazy::Raw(Some(s)) = self else { return None };
        match buf.recv_now(&*s) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.would_block(),
            r => Some(r),
        }
    }
    fn raw_send(&mut self, bytes: &[u8]) -> Option<io::Result<usize>> {
        let Lazy::Raw(Some(s)) = self else { return None };
        let flags = rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL;
        match rustix::net::send(&*s, bytes, flags).map_err(io::Error::from) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.would_block(),
            r => Some(r),
        }
    }
}

impl AsyncRead for Lazy {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().registered() {
            Ok(t) => Pin::new(t).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Lazy {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut().registered() {
            Ok(t) => Pin::new(t).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Lazy::Reg(t) => Pin::new(t).poll_flush(cx),
            Lazy::Raw(_) => Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().registered() {
            Ok(t) => Pin::new(t).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl ClientIo for TcpStream {
    const CLEARTEXT: bool = true;
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
    fn into_tcp(self) -> Result<TcpStream, Self> {
        Ok(self)
    }
}

impl ClientIo for tokio_rustls::server::TlsStream<TcpStream> {
    const CLEARTEXT: bool = false;
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.get_ref().0.as_fd())
    }
    fn tcp(&self) -> Option<&TcpStream> {
        None
    }
    fn into_tcp(self) -> Result<TcpStream, Self> {
        Err(self)
    }
}

/// Reads once from the client into `buf`.
pub(crate) async fn fill<C: ClientIo>(client: &mut C, buf: &mut Buf, meter: &Meter) -> io::Result<usize> {
    let r = match client.raw_recv(buf) {
        Some(r) => r,
        None => match client.tcp() {
            Some(s) => buf.fill(s).await,
            None => buf.fill_io(client).await,
        },
    };
    if let Ok(n) = r {
        meter.bytes_in(n);
    }
    r
}

/// Writes all of `bytes` and pushes them out (a TLS layer may hold them).
pub(crate) async fn send<C: ClientIo>(client: &mut C, bytes: &[u8], meter: &Meter) -> io::Result<()> {
    send_inner(client, bytes).await?;
    meter.bytes_out(bytes.len());
    Ok(())
}

async fn send_inner<C: ClientIo>(client: &mut C, bytes: &[u8]) -> io::Result<()> {
    let mut rest = bytes;
    while !rest.is_empty() {
        match client.raw_send(rest) {
            Some(Ok(n)) => rest = rest.get(n..).unwrap_or_default(),
            Some(Err(e)) => return Err(e),
            None => break,
        }
    }
    if rest.is_empty() {
        return Ok(());
    }
    if let Some(tcp) = client.tcp() {
        return super::buf::send_all(tcp, rest).await;
    }
    client.write_all(rest).await?;
    client.flush().await
}
