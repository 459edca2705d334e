//! The idle keep-alive client of the HTTP/1.1 benchmark (`bench/http.sh`).
//!
//! `http-idle --addr A --conns N --hold S [--path P]`: opens N connections
//! (64 at a time), sends one `GET P HTTP/1.1` (keep-alive) on each and reads
//! the whole response (Content-Length framing), prints `ready ok=… errors=…`,
//! then holds them open, idle, for S seconds (or until killed). One thread:
//! the script pins it to one CPU with the proxy and the origin.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use weir_bench::{arg, need};

const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// One request on a new connection; the stream stays open after the response.
async fn one_request(addr: SocketAddr, req: Arc<Vec<u8>>) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(&req).await?;
    weir_bench::read_response(&mut s).await?;
    Ok(s)
}

async fn idle(addr: SocketAddr, conns: usize, hold: f64, path: String) -> anyhow::Result<()> {
    let req = Arc::new(format!("GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: http-idle\r\n\r\n").into_bytes());
    let sem = Arc::new(Semaphore::new(64));
    let mut tasks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let permit = sem.clone().acquire_owned().await?;
        let req = req.clone();
        tasks.push(tokio::spawn(async move {
            let _p = permit;
            tokio::time::timeout(OP_TIMEOUT, one_request(addr, req)).await
        }));
    }
    weir_bench::hold_all("http-idle", tasks, hold).await
}

fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = need("--addr")?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(idle(
        addr,
        need("--conns")?,
        need("--hold")?,
        arg("--path").unwrap_or_else(|| "/".to_string()),
    ))
}
