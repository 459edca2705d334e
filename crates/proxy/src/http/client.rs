//! What HTTP/1 serving needs of a client connection: a cleartext TCP socket
//! or a TLS stream over one.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::buf::Buf;

pub(crate) trait ClientIo: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static {
    /// The socket itself when the HTTP bytes are on it in clear: splice
    /// and readiness-based reads apply. `None` under TLS.
    fn tcp(&self) -> Option<&TcpStream>;
    /// The socket back, when there is no layer over it.
    fn into_tcp(self) -> Result<TcpStream, Self>
    where
        Self: Sized;
}

impl ClientIo for TcpStream {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
    fn into_tcp(self) -> Result<TcpStream, Self> {
        Ok(self)
    }
}

impl ClientIo for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> Option<&TcpStream> {
        None
    }
    fn into_tcp(self) -> Result<TcpStream, Self> {
        Err(self)
    }
}

/// Reads what the client sent next into `buf` (0 at end of stream). The
/// bytes pass through a stack buffer that lives only inside one poll, so a
/// connection waiting here holds no heap buffer and a small future.
pub(crate) async fn first_read<C: ClientIo>(client: &mut C, buf: &mut Buf) -> io::Result<usize> {
    std::future::poll_fn(|cx: &mut Context<'_>| {
        let mut space = [0u8; 2048];
        let mut rb = ReadBuf::new(&mut space);
        ready!(Pin::new(&mut *client).poll_read(cx, &mut rb))?;
        let n = rb.filled().len();
        buf.push(rb.filled());
        Poll::Ready(Ok(n))
    })
    .await
}

/// Reads once from the client into `buf`.
pub(crate) async fn fill<C: ClientIo>(client: &mut C, buf: &mut Buf) -> io::Result<usize> {
    match client.tcp() {
        Some(s) => buf.fill(s).await,
        None => buf.fill_io(client).await,
    }
}

/// Writes all of `bytes` and pushes them out (a TLS layer may hold them).
pub(crate) async fn send<C: ClientIo>(client: &mut C, bytes: &[u8]) -> io::Result<()> {
    client.write_all(bytes).await?;
    client.flush().await
}
