//! Wiring between the store and the data plane: on every new revision, read
//! the configuration, compile a snapshot and apply it. The watch channel
//! coalesces bursts: a slow compile never queues stale revisions.

use std::sync::Arc;
use std::time::Duration;

use weir_api::{BackendHealth, DataPlaneView, ListenerStatus};
use weir_metrics::reading::{BackendReading, LbReading, Reading, Source, VsReading};
use weir_model::Kind;
use weir_model::alarm::{AlarmTemplate, Scope};
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

async fn load(store: &Store) -> weir_model::Result<(ConfigInput, Vec<AlarmTemplate>)> {
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
            let templates = tx.list::<AlarmTemplate>(&ListQuery::new(Kind::AlarmTemplate))?.items;
            Ok((input, templates))
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
    metrics: Arc<weir_metrics::Metrics>,
) {
    let mut revs = store.subscribe();
    loop {
        revs.borrow_and_update();
        match load(&store).await {
            Ok((input, templates)) => {
                metrics.set_catalog(catalog(&input, templates));
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

/// Which resources each alarm template watches: a template bound to an LB
/// watches the LB (its `lb` rules) and each of its VServers (its `vserver`
/// rules); bound to a VServer, that VServer.
fn catalog(input: &ConfigInput, templates: Vec<AlarmTemplate>) -> weir_metrics::Catalog {
    use std::collections::HashMap;
    let templates: HashMap<String, Arc<AlarmTemplate>> =
        templates.into_iter().map(|t| (t.id.clone(), Arc::new(t))).collect();
    let mut watches = Vec::new();
    let mut watch = |resource: &str, lb: &str, scope: Scope, t: &Option<String>| {
        if let Some(t) = t.as_ref().and_then(|t| templates.get(t)) {
            watches.push(weir_metrics::alarm::Watch {
                resource_id: resource.to_string(),
                lb_id: lb.to_string(),
                scope,
                template: t.clone(),
            });
        }
    };
    let lb_template: HashMap<&str, &Option<String>> = input
        .lbs
        .iter()
        .map(|l| (l.id.as_str(), &l.alarm_template_id))
        .collect();
    for lb in &input.lbs {
        watch(&lb.id, &lb.id, Scope::Lb, &lb.alarm_template_id);
    }
    for vs in &input.vservers {
        let of_lb = lb_template.get(vs.lb_id.as_str()).copied().unwrap_or(&None);
        watch(&vs.id, &vs.lb_id, Scope::Vserver, of_lb);
        if vs.alarm_template_id != *of_lb {
            watch(&vs.id, &vs.lb_id, Scope::Vserver, &vs.alarm_template_id);
        }
    }
    weir_metrics::Catalog { watches }
}

impl Source for View {
    fn read(&self) -> Reading {
        let snap = self.0.snapshot();
        let mut r = Reading {
            process: self.counters(),
            ..Reading::default()
        };
        let mut unhealthy_of_lb: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        for l in snap.listeners.values() {
            let unhealthy = l.backends.iter().filter(|b| !b.health.is_candidate()).count() as u64;
            *unhealthy_of_lb.entry(l.lb_id.as_str()).or_default() += unhealthy;
            r.vservers.push(VsReading {
                id: l.vserver_id.clone(),
                lb_id: l.lb_id.clone(),
                counters: l.stats.vs.read(),
                unhealthy_backends: unhealthy,
            });
            for b in &l.backends {
                r.backends.push(BackendReading {
                    id: b.id.clone(),
                    vserver_id: l.vserver_id.clone(),
                    lb_id: l.lb_id.clone(),
                    counters: b.stats.read(),
                    active: b.active.load(std::sync::atomic::Ordering::Relaxed),
                    up: b.health.is_candidate(),
                });
            }
        }
        for (id, stats) in &snap.lbs {
            r.lbs.push(LbReading {
                id: id.clone(),
                counters: stats.read(),
                unhealthy_backends: unhealthy_of_lb.get(id.as_str()).copied().unwrap_or(0),
            });
        }
        r.lbs.sort_by(|a, b| a.id.cmp(&b.id));
        r.vservers.sort_by(|a, b| a.id.cmp(&b.id));
        r.backends.sort_by(|a, b| a.id.cmp(&b.id));
        r
    }
}

/// The API's view of the data plane.
pub struct View(
    pub Arc<DataPlane>,
    pub tokio::sync::watch::Receiver<u64>,
    pub Arc<weir_health::Table>,
);

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
