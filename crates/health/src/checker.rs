//! Runs the probes for the current target set.
//!
//! One small task per target sleeps until its next due time, takes a permit
//! from a shared semaphore (so at most `max_concurrent` probes are in flight,
//! whatever the number of targets), probes, records the result in the
//! target's [`Cell`](crate::Cell) and schedules the next probe with jitter
//! (see [`crate::schedule`]). Sleeping tasks cost a timer entry each, so
//! 10,000 targets are cheap. Waiting for a permit does not count toward the
//! probe's timeout.
//!
//! [`Checker::update`] diffs the new target set against the running one by
//! backend id: unchanged targets keep their task and schedule; new or changed
//! ones get a fresh task that probes at once; removed ones are aborted (a probe
//! in flight is dropped, its result never recorded).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::probe::probe;
use crate::schedule;
use crate::table::Table;
use crate::target::Target;

/// A floor on the interval, so a zero interval cannot spin.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

struct Job {
    target: Target,
    task: AbortHandle,
}

#[derive(Default)]
struct Jobs {
    by_id: HashMap<String, Job>,
    stopped: bool,
}

pub struct Checker {
    table: Arc<Table>,
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    /// Probes completed (results recorded or dropped for a removed cell).
    probes: Arc<AtomicU64>,
    /// Where tasks are spawned when `update` is called outside a runtime.
    runtime: Option<Handle>,
    jobs: Mutex<Jobs>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("targets", &self.targets())
            .field("max_concurrent", &self.max_concurrent)
            .field("in_flight", &self.in_flight())
            .field("probes", &self.probes())
            .finish()
    }
}

impl Checker {
    /// `max_concurrent` bounds probes in flight (e.g. 256; at least 1).
    /// Call inside a tokio runtime: its handle is kept for spawning probe
    /// tasks when [`Checker::update`] is later called from a plain thread.
    pub fn new(table: Arc<Table>, max_concurrent: usize) -> Arc<Checker> {
        let max_concurrent = max_concurrent.clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(Checker {
            table,
            permits: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            probes: Arc::new(AtomicU64::new(0)),
            runtime: Handle::try_current().ok(),
            jobs: Mutex::new(Jobs::default()),
        })
    }

    /// Replaces the target set (call it on every config snapshot). Targets
    /// that are new or whose settings changed (any field) are probed at once
    /// and then every interval (jittered); removed targets stop being probed.
    /// A target new to the checker (added, or re-enabled after being left
    /// out), or whose address changed, has its cell reset to `Checking`
    /// ([`Cell::reset`](crate::Cell::reset)); one whose check settings changed keeps its
    /// status and is re-decided by the new check ([`Cell::recheck`](crate::Cell::recheck)).
    /// Every target's cell exists in the table when this returns, with the
    /// target's thresholds. With duplicate backend ids the last one wins.
    /// Cheap when nothing changed: one comparison per target, no task touched.
    pub fn update(self: &Arc<Self>, targets: Vec<Target>) {
        let mut jobs = self.lock();
        if jobs.stopped {
            return;
        }
        let Some(rt) = Handle::try_current().ok().or_else(|| self.runtime.clone()) else {
            tracing::error!("health checker updated outside a tokio runtime; targets not probed");
            return;
        };
        let mut old = std::mem::take(&mut jobs.by_id);
        let (mut started, mut restarted) = (0usize, 0usize);
        for target in targets {
            let id = target.backend_id.clone();
            let prev = jobs.by_id.remove(&id).or_else(|| old.remove(&id));
            let job = match prev {
                Some(job) if job.target == target => job,
                prev => {
                    let cell = self.table.cell(&id);
                    match prev {
                        Some(job) => {
                            job.task.abort();
                            if job.target.addr == target.addr {
                                cell.recheck();
                            } else {
                                // Another server behind the same id: start over as if new.
                                cell.reset();
                            }
                            restarted += 1;
                        }
                        None => {
                            cell.reset();
                            started += 1;
                        }
                    }
                    cell.set_thresholds(target.healthy_threshold, target.unhealthy_threshold);
                    self.spawn(&rt, target)
                }
            };
            jobs.by_id.insert(id, job);
        }
        let stopped = old.len();
        for (_, job) in old {
            job.task.abort();
        }
        if started + restarted + stopped > 0 {
            tracing::debug!(
                targets = jobs.by_id.len(),
                started,
                restarted,
                stopped,
                "health check targets updated"
            );
        }
    }

    /// Stops everything: running probes are dropped, later updates ignored.
    pub fn shutdown(&self) {
        let mut jobs = self.lock();
        jobs.stopped = true;
        for (_, job) in jobs.by_id.drain() {
            job.task.abort();
        }
        self.permits.close();
    }

    /// Targets being probed.
    pub fn targets(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Probes in flight now.
    pub fn in_flight(&self) -> usize {
        self.max_concurrent.saturating_sub(self.permits.available_permits())
    }

    /// Probes completed since start.
    pub fn probes(&self) -> u64 {
        self.probes.load(Ordering::Relaxed)
    }

    fn spawn(&self, rt: &Handle, target: Target) -> Job {
        let task = rt
            .spawn(run(
                target.clone(),
                self.table.clone(),
                self.permits.clone(),
                self.probes.clone(),
            ))
            .abort_handle();
        Job { target, task }
    }

    fn lock(&self) -> MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One target's probe loop: at once, then jittered every interval.
async fn run(target: Target, table: Arc<Table>, permits: Arc<Semaphore>, probes: Arc<AtomicU64>) {
    let interval = target.interval.max(MIN_INTERVAL);
    let mut due = Instant::now();
    let mut first = true;
    loop {
        tokio::time::sleep_until(due).await;
        let Ok(permit) = permits.acquire().await else {
            return; // closed: shut down
        };
        let result = probe(&target).await;
        drop(permit);
        probes.fetch_add(1, Ordering::Relaxed);
        if let Err(d) = &result
            && d.starts_with(crate::probe::LOCAL_FAILURE)
        {
            tracing::warn!(backend = %target.backend_id, detail = %d, "health probe could not run; result not recorded");
            due = Instant::now() + interval;
            continue;
        }
        // Looked up each time: a cell dropped by `Table::retain` is not revived
        // here (its target is about to be removed too).
        if let Some(cell) = table.get(&target.backend_id) {
            cell.set_thresholds(target.healthy_threshold, target.unhealthy_threshold);
            let (ok, detail) = match result {
                Ok(d) => (true, d),
                Err(d) => (false, d),
            };
            tracing::debug!(backend = %target.backend_id, addr = %target.addr, ok, detail, "health probe");
            cell.record(ok, detail, OffsetDateTime::now_utc());
        }
        let u: f64 = rand::random();
        let period = if first {
            schedule::first_period(interval, u)
        } else {
            schedule::period(interval, u)
        };
        first = false;
        due = schedule::next_due(due, period, Instant::now());
    }
}
