//! The origin of the layer-4 benchmark (`bench/l4.sh`): a TCP echo server
//! (echoes until EOF, then closes) and a UDP echo server, on one thread each.
//!
//! `l4-origin --tcp 127.71.0.10:7000 --udp 127.71.0.10:7001`
//! Runs until killed (the script stops it by PID).

use std::net::SocketAddr;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn udp_echo(addr: SocketAddr) -> anyhow::Result<()> {
    let sock = std::net::UdpSocket::bind(addr).with_context(|| format!("bind udp {addr}"))?;
    let mut buf = vec![0u8; 65_536];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, peer)) => {
                let _ = sock.send_to(buf.get(..n).unwrap_or_default(), peer);
            }
            Err(e) => eprintln!("l4-origin: udp recv: {e}"),
        }
    }
}

async fn tcp_echo(addr: SocketAddr) -> anyhow::Result<()> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind(addr).with_context(|| format!("bind tcp {addr}"))?;
    let listener: TcpListener = sock.listen(4096)?;
    loop {
        let (mut s, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("l4-origin: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if s.write_all(buf.get(..n).unwrap_or_default()).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

fn main() -> anyhow::Result<()> {
    let tcp: Option<SocketAddr> = arg("--tcp").map(|a| a.parse()).transpose()?;
    let udp: Option<SocketAddr> = arg("--udp").map(|a| a.parse()).transpose()?;
    if let Some(u) = udp {
        std::thread::spawn(move || {
            if let Err(e) = udp_echo(u) {
                eprintln!("l4-origin: {e:#}");
                std::process::exit(1);
            }
        });
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match tcp {
        Some(t) => rt.block_on(tcp_echo(t)),
        None => loop {
            std::thread::park();
        },
    }
}
