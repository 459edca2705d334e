//! `weir serve`: the store, the API and (as later issues land) the data
//! plane, health checker and metrics, in one process.

use std::time::Duration;

use anyhow::Context;
use std::sync::Arc;

use weir_api::bootstrap::{AdminToken, ensure_admin};
use weir_api::{AppState, app};
use weir_proxy::DataPlane;
use weir_store::Store;

use crate::config::Config;

/// Health probes in flight at once, across all backends.
const HEALTH_CONCURRENCY: usize = 256;

pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    let store = Store::open(&cfg.data_dir).map_err(|e| anyhow::anyhow!(e.message))?;
    let env_token = std::env::var("WEIR_ADMIN_TOKEN").ok().filter(|t| !t.trim().is_empty());
    match ensure_admin(&store, &cfg.data_dir, env_token)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?
    {
        AdminToken::FromEnv => tracing::info!("admin token taken from WEIR_ADMIN_TOKEN"),
        AdminToken::Generated(p) => tracing::info!(path = %p.display(), "admin token generated"),
        AdminToken::Existing => tracing::info!("admin account present"),
    }

    raise_nofile();
    let key = cookie_key(&cfg.data_dir).context("reading the cookie key")?;
    let dp = DataPlane::new(cfg.dataplane_config(key));
    let applied = dp.applied();
    let health = Arc::new(weir_health::Table::new());
    let checker = weir_health::Checker::new(health.clone(), HEALTH_CONCURRENCY);
    let view = Arc::new(crate::sync::View(dp.clone(), applied.clone(), health.clone()));
    let metrics = weir_metrics::Metrics::open(&cfg.data_dir, cfg.metrics_settings(), view.clone())
        .map_err(|e| anyhow::anyhow!("opening the metrics history: {e}"))?;
    tokio::spawn(crate::sync::run(
        store.clone(),
        dp.clone(),
        health.clone(),
        checker.clone(),
        metrics.clone(),
    ));
    // The API answers once the data plane has applied what the store holds,
    // so a restart never shows stale statuses.
    let mut a = applied.clone();
    let target = store.revision();
    let _ = tokio::time::timeout(Duration::from_secs(30), a.wait_for(|r| *r >= target)).await;

    metrics.start();
    let state = AppState::new(store, cfg.api_config(), view, metrics);
    let listener = tokio::net::TcpListener::bind(cfg.api_listen)
        .await
        .with_context(|| format!("binding the API to {}", cfg.api_listen))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to find an ephemeral port.
    println!("weir: API listening on http://{addr}");
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "weir serving");
    // On SIGTERM or Ctrl-C the API and every listener stop taking new
    // connections at once; what is established runs on (see `wait_idle`).
    let stop_dp = dp.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown().await;
            stop_dp.shutdown();
        })
        .await?;
    let grace = Duration::from_secs(cfg.dataplane.shutdown_grace_s);
    tokio::select! {
        () = wait_idle(&dp, grace) => {}
        () = shutdown() => tracing::warn!("second signal: stopping now"),
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

/// Waits, up to `grace`, until no connection or request is in progress
/// with a backend (seen twice in a row, 100 ms apart, so one that was just
/// starting is not cut).
async fn wait_idle(dp: &DataPlane, grace: Duration) {
    let start = tokio::time::Instant::now();
    let mut idle_seen = false;
    loop {
        let busy = dp.busy();
        if busy == 0 && idle_seen {
            tracing::info!(
                waited_ms = start.elapsed().as_millis() as u64,
                "stopped: no connection left"
            );
            return;
        }
        idle_seen = busy == 0;
        if start.elapsed() >= grace {
            tracing::warn!(
                connections = busy,
                grace_s = grace.as_secs(),
                "stopped: grace period over, closing what is left"
            );
            return;
        }
        if busy > 0 && start.elapsed() < Duration::from_millis(150) {
            tracing::info!(
                connections = busy,
                grace_s = grace.as_secs(),
                "waiting for established connections"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The key of the persistence cookies' MAC: 32 random bytes created once in
/// the data dir (mode 0600), so cookies stay valid across restarts.
fn cookie_key(dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("cookie.key");
    match std::fs::read(&path) {
        Ok(k) if k.len() >= 32 => return Ok(k),
        Ok(_) => anyhow::bail!("{} is shorter than 32 bytes", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let key: [u8; 32] = rand::random();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    f.write_all(&key)?;
    f.sync_all()?;
    Ok(key.to_vec())
}

/// Raises the open-files limit (every proxied TCP connection holds two
/// descriptors): to the kernel's maximum when privileged, else to the hard
/// limit; says in the log what it is.
fn raise_nofile() {
    let max = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    if rlimit::setrlimit(rlimit::Resource::NOFILE, max, max).is_ok() {
        tracing::info!(limit = max, "open-files limit");
        return;
    }
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::info!(
            limit = n,
            "open-files limit (the hard limit; raising it needs privilege)"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
