//! Wiring between the store and the data plane: on every new revision, read
//! the configuration, compile a snapshot and apply it. The watch channel
//! coalesces bursts: a slow compile never queues stale revisions.

use std::sync::Arc;
use std::time::Duration;

use weir_api::{BackendHealth, DataPlaneView, ListenerStatus, VServerStats};
use weir_model::Kind;
use weir_model::backend::Backend;
use weir_model::backend::{BackendStatus, LastCheck};
use weir_model::certificate::Certificate;
use weir_model::lb::LoadBalancer;
use weir_model::network::SecurityGroup;
use weir_model::rule::Rule;
use weir_model::vserver::VServer;
use weir_proxy::{ConfigInput, DataPlane, ListenerState};
use weir_store::{ListQuery, Store, TxnExt};

/// How often listeners that failed to bind are tried again.
const BIND_RETRY: Duration = Duration::from_secs(5);

async fn load(store: &Store) -> weir_model::Result<ConfigInput> {
    store
        .read(|tx| {
            let mut input = ConfigInput {
                revision: tx.revision(),
                lbs: tx.list::<LoadBalancer>(&ListQuery::new(Kind::LoadBalancer))?.items,
                vservers: tx.list::<VServer>(&ListQuery::new(Kind::VServer))?.items,
                backends: tx.list::<Backend>(&ListQuery::new(Kind::Backend))?.items,
                security_groups: tx.list::<SecurityGroup>(&ListQuery::new(Kind::SecurityGroup))?.items,
                rules: tx.list::<Rule>(&ListQuery::new(Kind::Rule))?.items,
                certificates: Vec::new(),
            };
            // Only the certificates https VServers name.
            let mut ids: Vec<&str> = input
                .vservers
                .iter()
                .filter_map(|v| v.tls.as_ref())
                .flat_map(|t| t.certificate_refs().into_iter().map(|(_, id)| id))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            let mut certificates = Vec::with_capacity(ids.len());
            for id in ids {
                certificates.extend(tx.get::<Certificate>(id)?);
            }
            input.certificates = certificates;
            Ok(input)
        })
        .await
}

/// Applies the store's current state, then every later revision: the data
/// plane gets the snapshot, the health checker its targets.
pub async fn run(
    store: Store,
    dp: Arc<DataPlane>,
    health: Arc<weir_health::Table>,
    checker: Arc<weir_health::Checker>,
) {
    let mut revs = store.subscribe();
    loop {
        revs.borrow_and_update();
        match load(&store).await {
            Ok(input) => {
                let started = std::time::Instant::now();
                let mut compiled = dp.compile(&input, &health);
                let keep = compiled.snapshot.backends.keys().cloned().collect();
                checker.update(std::mem::take(&mut compiled.targets));
                dp.apply(compiled).await;
                health.retain(&keep);
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
pub struct View(
    pub Arc<DataPlane>,
    pub tokio::sync::watch::Receiver<u64>,
    pub Arc<weir_health::Table>,
);

impl DataPlaneView for View {
    fn vserver_stats(&self) -> Vec<VServerStats> {
        use std::sync::atomic::Ordering::Relaxed;
        let snap = self.0.snapshot();
        let mut v: Vec<VServerStats> = snap
            .listeners
            .values()
            .map(|l| VServerStats {
                lb_id: l.lb_id.clone(),
                vserver_id: l.vserver_id.clone(),
                requests: l.stats.requests.load(Relaxed),
                responses: std::array::from_fn(|i| l.stats.responses[i].load(Relaxed)),
            })
            .collect();
        v.sort_by(|a, b| a.vserver_id.cmp(&b.vserver_id));
        v
    }
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
        let mut v = self.0.counters().values();
        v.push(("health_flips", self.2.flips()));
        v
    }
    fn backend_health(&self, backend_id: &str) -> Option<BackendHealth> {
        let cell = self.2.get(backend_id)?;
        Some(BackendHealth {
            status: match cell.status() {
                weir_health::Status::Checking => BackendStatus::Checking,
                weir_health::Status::Valid => BackendStatus::Valid,
                weir_health::Status::Invalid => BackendStatus::Invalid,
            },
            last_check: cell.last_check().map(|c| LastCheck {
                at: c.at,
                ok: c.ok,
                detail: c.detail,
            }),
        })
    }
}
