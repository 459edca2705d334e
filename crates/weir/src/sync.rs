//! Wiring between the store and the data plane: on every new revision, read
//! the configuration, compile a snapshot and apply it. The watch channel
//! coalesces bursts: a slow compile never queues stale revisions.

use std::sync::Arc;
use std::time::Duration;

use weir_api::{DataPlaneView, ListenerStatus};
use weir_model::Kind;
use weir_model::backend::Backend;
use weir_model::lb::LoadBalancer;
use weir_model::network::SecurityGroup;
use weir_model::vserver::VServer;
use weir_proxy::{ConfigInput, DataPlane, ListenerState, Snapshot};
use weir_store::{ListQuery, Store, TxnExt};

/// How often listeners that failed to bind are tried again.
const BIND_RETRY: Duration = Duration::from_secs(5);

async fn load(store: &Store) -> weir_model::Result<ConfigInput> {
    store
        .read(|tx| {
            Ok(ConfigInput {
                revision: tx.revision(),
                lbs: tx.list::<LoadBalancer>(&ListQuery::new(Kind::LoadBalancer))?.items,
                vservers: tx.list::<VServer>(&ListQuery::new(Kind::VServer))?.items,
                backends: tx.list::<Backend>(&ListQuery::new(Kind::Backend))?.items,
                security_groups: tx.list::<SecurityGroup>(&ListQuery::new(Kind::SecurityGroup))?.items,
            })
        })
        .await
}

/// Applies the store's current state, then every later revision.
pub async fn run(store: Store, dp: Arc<DataPlane>) {
    let mut revs = store.subscribe();
    loop {
        revs.borrow_and_update();
        match load(&store).await {
            Ok(input) => {
                let started = std::time::Instant::now();
                let compiled = Snapshot::compile(&input, &dp.snapshot());
                dp.apply(compiled).await;
                tracing::debug!(revision = input.revision, took = ?started.elapsed(), "snapshot applied");
            }
            Err(e) => {
                tracing::error!(error = %e.message, "cannot load the configuration; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        // Wait for the next revision; meanwhile retry listeners that failed
        // to bind (an address may appear on the host later).
        loop {
            tokio::select! {
                r = revs.changed() => {
                    if r.is_err() {
                        return;
                    }
                    break;
                }
                _ = tokio::time::sleep(BIND_RETRY) => {
                    if dp.has_failed_listeners() {
                        dp.reconcile().await;
                    }
                }
            }
        }
    }
}

/// The API's view of the data plane.
pub struct View(pub Arc<DataPlane>, pub tokio::sync::watch::Receiver<u64>);

impl DataPlaneView for View {
    fn applied_revision(&self) -> u64 {
        *self.1.borrow()
    }
    fn listener(&self, vserver_id: &str) -> Option<ListenerStatus> {
        self.0.listener_state(vserver_id).map(|s| match s {
            ListenerState::Bound => ListenerStatus::Bound,
            ListenerState::Failed(m) => ListenerStatus::Failed(m),
        })
    }
    fn alive(&self) -> bool {
        true
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        self.0.counters().values()
    }
}
