//! Helpers the benchmark clients share.

use anyhow::Context;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The value after `name` on the command line, parsed.
pub fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// Like [`arg`], required.
pub fn need<T: std::str::FromStr>(name: &str) -> anyhow::Result<T> {
    arg(name).with_context(|| format!("{name} is required (and must parse)"))
}

pub fn invalid(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads one response (headers, then Content-Length bytes of body).
pub async fn read_response<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let (head_end, body_len) = loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(invalid("closed before the response headers"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 200") {
                return Err(invalid(head.lines().next().unwrap_or("no status line")));
            }
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| invalid("no Content-Length"))?;
            break (i + 4, len);
        }
        if buf.len() > 64 * 1024 {
            return Err(invalid("response headers over 64 KiB"));
        }
    };
    while buf.len() < head_end + body_len {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(invalid("closed before the end of the body"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Awaits the tasks that each opened a connection (within a timeout), prints
/// `ready ok=N errors=M` (the bench scripts wait for that line), keeps the
/// connections open `hold_s` seconds, then closes them. The first errors
/// are printed to stderr with `who` in front.
pub async fn hold_all<T, E: std::fmt::Display>(
    who: &str,
    tasks: Vec<tokio::task::JoinHandle<Result<Result<T, E>, tokio::time::error::Elapsed>>>,
    hold_s: f64,
) -> anyhow::Result<()> {
    let mut held = Vec::with_capacity(tasks.len());
    let mut errors = 0usize;
    for t in tasks {
        let why = match t.await? {
            Ok(Ok(s)) => {
                held.push(s);
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        if errors < 3 {
            eprintln!("{who}: {why}");
        }
        errors += 1;
    }
    println!("ready ok={} errors={errors}", held.len());
    tokio::time::sleep(std::time::Duration::from_secs_f64(hold_s)).await;
    drop(held);
    Ok(())
}
