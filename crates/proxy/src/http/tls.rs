//! https VServers: the TLS handshake on the configuration the listener's
//! snapshot holds at accept time, then HTTP/2 (ALPN `h2`) or HTTP/1.1 over
//! the TLS stream, exactly as over cleartext.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::counters::Counters;
use crate::dataplane::DataPlane;
use crate::meter::Meter;
use crate::snapshot::{ListenerConfig, ListenerKey};

/// Serves one https connection. The handshake must complete within the
/// VServer's idle timeout (a client that stalls in it is treated as idle).
pub(crate) async fn serve_tls(
    dp: Arc<DataPlane>,
    cfg: Arc<ListenerConfig>,
    key: ListenerKey,
    sock: TcpStream,
    peer: SocketAddr,
    meter: Meter,
) {
    let (config, idle) = match cfg.tls.as_ref().map(|t| &t.config) {
        Some(Ok(c)) => (c.clone(), cfg.idle_timeout),
        _ => {
            let _ = sock.set_zero_linger();
            return;
        }
    };
    // Hold no snapshot while the client takes its time.
    drop(cfg);
    let stream = match timeout(idle, tokio_rustls::TlsAcceptor::from(config).accept(sock)).await {
        Ok(Ok(s)) => s,
        // A client that leaves without finishing (a port probe, a closed
        // tab) is not a failed handshake; a refused one is.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
        Ok(Err(e)) => {
            Counters::inc(&dp.counters.tls_handshake_failed);
            tracing::debug!(client = %peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            Counters::inc(&dp.counters.tls_handshake_failed);
            Counters::inc(&dp.counters.idle_closed);
            return;
        }
    };
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        // Boxed: HTTP/2's state is large, and inline it would be the size
        // of every TLS connection's task, HTTP/1.1 ones included.
        Box::pin(super::h2::serve(dp, key, stream, peer, Vec::new(), meter)).await;
    } else {
        super::h1::serve(dp, key, stream, peer, meter).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// Every https connection's task is this future: HTTP/2's state must
    /// stay out of it (boxed), or an idle HTTP/1.1-over-TLS connection
    /// pays for it: 8,152 bytes with it inline (+3 KB of RSS per idle
    /// connection in bench/https.sh), 4,376 boxed, most of it the TLS
    /// stream itself.
    #[test]
    fn a_tls_connection_future_stays_small() {
        crate::test_support::on_runtime(async {
            let fx = crate::test_support::Fixture::new();
            let c = fx.client.try_clone().unwrap();
            c.set_nonblocking(true).unwrap();
            let sock = tokio::net::TcpStream::from_std(c).unwrap();
            let cfg = fx.config(weir_model::vserver::Protocol::Https);
            let f = super::serve_tls(fx.dp.clone(), cfg, fx.key, sock, fx.peer(), fx.meter());
            let size = std::mem::size_of_val(&f);
            assert!(size <= 4608, "the TLS connection future grew to {size} bytes");
        });
    }
}
