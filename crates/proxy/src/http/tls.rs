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
        super::h2::serve(dp, key, stream, peer, Vec::new(), meter).await;
    } else {
        super::h1::serve(dp, key, stream, peer, meter).await;
    }
}
