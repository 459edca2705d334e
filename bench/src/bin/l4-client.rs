//! The clients of the layer-4 benchmark (`bench/l4.sh`), closed-loop, on one
//! thread (the script pins them to one CPU with the proxy and the origin).
//!
//! - `l4-client connrate --addr A --conns N --secs S`: N loops, each: connect,
//!   send one byte, read the echo, close. Prints `ok=… errors=… secs=…`.
//! - `l4-client udp-rtt --addr A --sockets N --secs S [--size B]`: N sockets
//!   (N flows), each: send a datagram, wait for the echo (100 ms timeout),
//!   repeat. Prints `ok=… timeouts=… errors=… secs=…`.
//! - `l4-client idle --addr A --conns N --hold S`: opens N connections, sends
//!   one byte on each and reads its echo, prints `ready ok=… errors=…`, then
//!   holds them open for S seconds (or until killed).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use weir_bench::{arg, need};

use anyhow::bail;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;

const OP_TIMEOUT: Duration = Duration::from_secs(2);
const UDP_TIMEOUT: Duration = Duration::from_millis(100);

/// One exchange: send a byte, read it back. The stream stays open.
async fn ping(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(b"x").await?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await?;
    Ok(s)
}

async fn connrate(addr: SocketAddr, conns: usize, secs: f64) -> anyhow::Result<()> {
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (ok, errors) = (ok.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                match tokio::time::timeout(OP_TIMEOUT, ping(addr)).await {
                    // Dropping the stream closes it: the client closes first.
                    Ok(Ok(_s)) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(e)) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("l4-client connrate: {e}");
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    println!(
        "ok={} errors={} secs={:.4}",
        ok.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn udp_rtt(addr: SocketAddr, sockets: usize, secs: f64, size: usize) -> anyhow::Result<()> {
    let ok = Arc::new(AtomicU64::new(0));
    let timeouts = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut socks = Vec::with_capacity(sockets);
    for _ in 0..sockets {
        let s = UdpSocket::bind("127.0.0.1:0").await?;
        s.connect(addr).await?;
        socks.push(s);
    }
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::with_capacity(sockets);
    for s in socks {
        let (ok, timeouts, errors) = (ok.clone(), timeouts.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let msg = vec![b'u'; size];
            let mut buf = vec![0u8; 65_536];
            while Instant::now() < end {
                if s.send(&msg).await.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                match tokio::time::timeout(UDP_TIMEOUT, s.recv(&mut buf)).await {
                    Ok(Ok(_)) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(_)) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err(_) => {
                        timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    println!(
        "ok={} timeouts={} errors={} secs={:.4}",
        ok.load(Ordering::Relaxed),
        timeouts.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn idle(addr: SocketAddr, conns: usize, hold: f64) -> anyhow::Result<()> {
    let sem = Arc::new(Semaphore::new(64));
    let mut tasks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let permit = sem.clone().acquire_owned().await?;
        tasks.push(tokio::spawn(async move {
            let _p = permit;
            tokio::time::timeout(OP_TIMEOUT * 5, ping(addr)).await
        }));
    }
    weir_bench::hold_all("l4-client idle", tasks, hold).await
}

fn main() -> anyhow::Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let addr: SocketAddr = need("--addr")?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match mode.as_str() {
        "connrate" => rt.block_on(connrate(addr, need("--conns")?, need("--secs")?)),
        "udp-rtt" => rt.block_on(udp_rtt(
            addr,
            need("--sockets")?,
            need("--secs")?,
            arg("--size").unwrap_or(64),
        )),
        "idle" => rt.block_on(idle(addr, need("--conns")?, need("--hold")?)),
        other => bail!("unknown mode {other:?}: connrate | udp-rtt | idle"),
    }
}
