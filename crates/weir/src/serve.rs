//! `weir serve`: the store, the API and (as later issues land) the data
//! plane, health checker and metrics, in one process.

use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use weir_api::bootstrap::{AdminToken, ensure_admin};
use weir_api::{AppState, app};
use weir_store::Store;

use crate::config::Config;

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

    // Until the data plane lands there is nothing to apply: the applied
    // revision follows the store's.
    let (applied_tx, applied_rx) = watch::channel(store.revision());
    let mut revs = store.subscribe();
    tokio::spawn(async move {
        while revs.changed().await.is_ok() {
            let r = *revs.borrow_and_update();
            if applied_tx.send(r).is_err() {
                break;
            }
        }
    });

    let state = AppState::new(store, cfg.api_config(), applied_rx);
    let listener = tokio::net::TcpListener::bind(cfg.api_listen)
        .await
        .with_context(|| format!("binding the API to {}", cfg.api_listen))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to find an ephemeral port.
    println!("weir: API listening on http://{addr}");
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "weir serving");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown())
        .await?;
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
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
