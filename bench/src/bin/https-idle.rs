//! The TLS clients of the HTTPS benchmark (`bench/https.sh`).
//!
//! `https-idle --addr A --conns N --hold S [--path P] [--sni NAME]`: opens N
//! connections (64 at a time), each a full TLS 1.3 handshake, sends one
//! `GET P HTTP/1.1` (keep-alive) on each and reads the whole response
//! (Content-Length framing), prints `ready ok=… errors=…`, then holds them
//! open, idle, for S seconds (or until killed).
//!
//! `https-idle --handshakes --addr A --conns N --secs S [--path P]`: N closed
//! loops for S seconds, each: connect, a full TLS 1.3 handshake, one
//! `GET P` with `Connection: close`, read the response, close (close_notify,
//! then FIN). Prints one line as the benchmark's wrk script does:
//! `RESULT requests=… duration_us=… errors=… p50_us=… p99_us=…`.
//! wrk cannot be used for this: it keeps the `SSL` object of a closed
//! connection (`SSL_shutdown` + `SSL_clear`) and so offers the session (a
//! TLS 1.3 ticket) on the next connection, resuming wherever the server
//! issues tickets.
//!
//! Every connection: TLS 1.3 only, X25519 key exchange only (what OpenSSL
//! clients send a key share for, so no proxy is offered a costlier group),
//! ALPN `http/1.1`, SNI `bench.test` by default, resumption disabled (no
//! session is ever offered). The server's certificate is not checked against
//! any root (the benchmark's is self-signed, with a CA profile); the
//! handshake signatures are verified as usual, so the client does a real
//! client's work. One thread: the script pins it to one CPU with the proxy
//! and the origin.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use weir_bench::{arg, need};

const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts any certificate; verifies the handshake signatures with it.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config() -> anyhow::Result<Arc<ClientConfig>> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
    let provider = Arc::new(provider);
    let mut cfg = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(cfg))
}

/// A handshake and one request on a new connection; the stream stays open
/// after the response.
async fn one_request(
    tls: TlsConnector,
    name: ServerName<'static>,
    addr: SocketAddr,
    req: Arc<Vec<u8>>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let mut s = tls.connect(name, s).await?;
    s.write_all(&req).await?;
    s.flush().await?;
    weir_bench::read_response(&mut s).await?;
    Ok(s)
}

async fn idle(addr: SocketAddr, conns: usize, hold: f64, path: String, sni: String) -> anyhow::Result<()> {
    let tls = TlsConnector::from(client_config()?);
    let name = ServerName::try_from(sni).context("--sni")?;
    let req =
        Arc::new(format!("GET {path} HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: https-idle\r\n\r\n").into_bytes());
    let sem = Arc::new(Semaphore::new(64));
    let mut tasks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let permit = sem.clone().acquire_owned().await?;
        let (req, tls, name) = (req.clone(), tls.clone(), name.clone());
        tasks.push(tokio::spawn(async move {
            let _p = permit;
            tokio::time::timeout(OP_TIMEOUT, one_request(tls, name, addr, req)).await
        }));
    }
    weir_bench::hold_all("https-idle", tasks, hold).await
}

/// One connection, one request with `Connection: close`, then closed by the
/// client (close_notify, FIN) whether or not the server closed first.
async fn one_close(
    tls: TlsConnector,
    name: ServerName<'static>,
    addr: SocketAddr,
    req: Arc<Vec<u8>>,
) -> std::io::Result<()> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let mut s = tls.connect(name, s).await?;
    s.write_all(&req).await?;
    s.flush().await?;
    weir_bench::read_response(&mut s).await?;
    // The server may have closed already: a failed close_notify is no error.
    let _ = s.shutdown().await;
    Ok(())
}

/// What one closed loop did: latencies (µs) of the completed requests,
/// errors, the first error.
struct LoopResult {
    latencies: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

async fn close_loop(
    tls: TlsConnector,
    name: ServerName<'static>,
    addr: SocketAddr,
    req: Arc<Vec<u8>>,
    end: tokio::time::Instant,
) -> LoopResult {
    let mut r = LoopResult {
        latencies: Vec::new(),
        errors: 0,
        first_error: None,
    };
    while tokio::time::Instant::now() < end {
        let t0 = tokio::time::Instant::now();
        match tokio::time::timeout(OP_TIMEOUT, one_close(tls.clone(), name.clone(), addr, req.clone())).await {
            Ok(Ok(())) => r
                .latencies
                .push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX)),
            Ok(Err(e)) => {
                r.errors += 1;
                r.first_error.get_or_insert_with(|| e.to_string());
                // No hot loop against a refusing server.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => {
                r.errors += 1;
                r.first_error
                    .get_or_insert_with(|| format!("timed out after {OP_TIMEOUT:?}"));
            }
        }
    }
    r
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

async fn handshakes(addr: SocketAddr, conns: usize, secs: f64, path: String, sni: String) -> anyhow::Result<()> {
    let tls = TlsConnector::from(client_config()?);
    let name = ServerName::try_from(sni).context("--sni")?;
    let req = Arc::new(
        format!("GET {path} HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: https-idle\r\nConnection: close\r\n\r\n")
            .into_bytes(),
    );
    let t0 = tokio::time::Instant::now();
    let end = t0 + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..conns)
        .map(|_| tokio::spawn(close_loop(tls.clone(), name.clone(), addr, req.clone(), end)))
        .collect();
    let (mut latencies, mut errors, mut first) = (Vec::new(), 0u64, None);
    for t in tasks {
        let r = t.await?;
        latencies.extend(r.latencies);
        errors += r.errors;
        if first.is_none() {
            first = r.first_error;
        }
    }
    let duration = t0.elapsed();
    if let Some(e) = first {
        eprintln!("https-idle: {errors} errors, the first: {e}");
    }
    latencies.sort_unstable();
    println!(
        "RESULT requests={} duration_us={} bytes=0 errors={errors} p50_us={} p99_us={}",
        latencies.len(),
        duration.as_micros(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = need("--addr")?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let path = arg("--path").unwrap_or_else(|| "/".to_string());
    let sni = arg("--sni").unwrap_or_else(|| "bench.test".to_string());
    if std::env::args().any(|a| a == "--handshakes") {
        return rt.block_on(handshakes(addr, need("--conns")?, need("--secs")?, path, sni));
    }
    rt.block_on(idle(addr, need("--conns")?, need("--hold")?, path, sni))
}
