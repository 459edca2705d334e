//! The metrics service: samples the data plane's counters every interval
//! into the history, evaluates alarms on each sample, and delivers their
//! events to webhooks.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::alarm::{AlarmEvent, Evaluator, Events, StateFilter, Transition, Watch};
use crate::counters::{STATS, Stat};
use crate::db::{self, Db, DbError};
use crate::history::{History, Retention, Series};
use crate::reading::{Reading, Source};
use crate::{METRICS, Metric, Values};

/// The `[metrics]` settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Seconds between samples.
    pub interval: Duration,
    pub retention: Retention,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            interval: Duration::from_secs(10),
            retention: Retention::default(),
        }
    }
}

/// Which templates watch which resources; replaced on every configuration
/// revision.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub watches: Vec<Watch>,
}

pub struct Metrics {
    settings: Settings,
    history: History,
    events: Events,
    source: Arc<dyn Source>,
    catalog: Mutex<Arc<Catalog>>,
    notifier: Arc<Notifier>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("settings", &self.settings).finish()
    }
}

fn now_s() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn blocking<R: Send + 'static>(f: impl FnOnce() -> db::Result<R> + Send + 'static) -> db::Result<R> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DbError(format!("task failed: {e}")))?
}

/// Per-second rates from two readings of monotonic counters (a counter
/// that went down was reset: its whole value is the delta).
fn values(now: &[u64; STATS], prev: Option<&[u64; STATS]>, dt: f64, unhealthy: u64) -> Values {
    let d = |s: Stat| {
        let (c, p) = (now[s as usize], prev.map_or(0, |p| p[s as usize]));
        let delta = if c >= p { c - p } else { c };
        delta as f64 / dt
    };
    let mut v = [0.0; METRICS];
    let mut set = |m: Metric, x: f64| v[m.index()] = x;
    set(Metric::NewConnectionsPerS, d(Stat::Connections));
    set(
        Metric::ActiveConnections,
        (now[Stat::Active as usize] as i64).max(0) as f64,
    );
    set(Metric::BytesInPerS, d(Stat::BytesIn));
    set(Metric::BytesOutPerS, d(Stat::BytesOut));
    set(Metric::PacketsInPerS, d(Stat::PacketsIn));
    set(Metric::PacketsOutPerS, d(Stat::PacketsOut));
    set(Metric::DroppedPerS, d(Stat::Dropped));
    set(Metric::RequestsPerS, d(Stat::Requests));
    set(Metric::Http2xxPerS, d(Stat::Http2xx));
    set(Metric::Http3xxPerS, d(Stat::Http3xx));
    set(Metric::Http4xxPerS, d(Stat::Http4xx));
    set(Metric::Http5xxPerS, d(Stat::Http5xx));
    set(Metric::UnhealthyBackends, unhealthy as f64);
    v
}

impl Metrics {
    /// Opens the history in `dir/metrics.db`.
    pub fn open(dir: &Path, settings: Settings, source: Arc<dyn Source>) -> db::Result<Arc<Metrics>> {
        let db = Db::open(&dir.join("metrics.db"))?;
        let interval = settings.interval.as_secs().max(1) as i64;
        let events = Events::new(db.clone());
        Ok(Arc::new(Metrics {
            settings,
            history: History::new(db, settings.retention, interval),
            notifier: Arc::new(Notifier::new(events.clone())),
            events,
            source,
            catalog: Mutex::new(Arc::new(Catalog::default())),
        }))
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    pub fn set_catalog(&self, c: Catalog) {
        *self.catalog.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(c);
    }

    fn catalog(&self) -> Arc<Catalog> {
        self.catalog.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The counters now.
    pub fn reading(&self) -> Reading {
        self.source.read()
    }

    /// The Prometheus exposition of the counters now.
    pub fn prometheus(&self) -> String {
        crate::prom::render(&self.source.read())
    }

    /// A resource's history within `[from, to]`.
    pub async fn series(&self, resource: &str, from: i64, to: i64) -> db::Result<Series> {
        let (h, r) = (self.history.clone(), resource.to_string());
        blocking(move || h.query(&r, from, to, now_s())).await
    }

    /// Alarm events, newest first (`owner`'s only when given).
    pub async fn events(&self, owner: Option<String>, state: StateFilter) -> db::Result<Vec<AlarmEvent>> {
        let e = self.events.clone();
        blocking(move || e.list(owner.as_deref(), state)).await
    }

    /// Starts the sampler, and delivers what was left undelivered before a
    /// restart.
    pub fn start(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut eval = Evaluator::default();
            let ev = me.events.clone();
            match blocking(move || ev.list(None, StateFilter::Firing)).await {
                Ok(open) => eval.resume(&open),
                Err(e) => tracing::warn!(error = %e, "cannot read open alarms"),
            }
            let ev = me.events.clone();
            if let Ok(pending) = blocking(move || ev.undelivered()).await {
                for e in pending {
                    me.notifier.kick(e.id);
                }
            }
            me.sample_loop(eval).await;
        });
    }

    async fn sample_loop(self: Arc<Self>, mut eval: Evaluator) {
        let mut tick = tokio::time::interval(self.settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut prev: HashMap<String, [u64; STATS]> = HashMap::new();
        let mut last = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            let now = tokio::time::Instant::now();
            let dt = now.duration_since(last).as_secs_f64().max(0.001);
            last = now;
            let reading = self.source.read();
            let mut rows: Vec<(String, Values)> = Vec::with_capacity(reading.lbs.len() + reading.vservers.len());
            let mut next = HashMap::with_capacity(rows.capacity());
            for lb in &reading.lbs {
                rows.push((
                    lb.id.clone(),
                    values(&lb.counters, prev.get(&lb.id), dt, lb.unhealthy_backends),
                ));
                next.insert(lb.id.clone(), lb.counters);
            }
            for vs in &reading.vservers {
                rows.push((
                    vs.id.clone(),
                    values(&vs.counters, prev.get(&vs.id), dt, vs.unhealthy_backends),
                ));
                next.insert(vs.id.clone(), vs.counters);
            }
            prev = next;
            let ts = now_s();
            let latest: HashMap<String, Values> = rows.iter().cloned().collect();
            let h = self.history.clone();
            if let Err(e) = blocking(move || {
                h.record(ts, &rows)?;
                h.maintain(ts)
            })
            .await
            {
                tracing::warn!(error = %e, "cannot record a metrics sample");
            }
            let changes = eval.evaluate(ts, &self.catalog().watches, &latest);
            for e in changes.fired {
                tracing::info!(alarm = %e.id, template = %e.template_id, resource = %e.resource_id,
                    rule = %e.rule, value = e.value, "alarm fired");
                let (ev, e2) = (self.events.clone(), e.clone());
                match blocking(move || ev.insert(&e2)).await {
                    Ok(()) => self.notifier.kick(e.id),
                    Err(err) => tracing::warn!(error = %err, "cannot record an alarm"),
                }
            }
            for (id, at) in changes.resolved {
                tracing::info!(alarm = %id, "alarm resolved");
                let (ev, id2) = (self.events.clone(), id.clone());
                match blocking(move || ev.resolve(&id2, at)).await {
                    Ok(()) => self.notifier.kick(id),
                    Err(err) => tracing::warn!(error = %err, "cannot record an alarm's resolution"),
                }
            }
            let ev = self.events.clone();
            let keep = self.settings.retention.rollup_s;
            let _ = blocking(move || ev.prune(ts - keep)).await;
        }
    }
}

/// Delivers alarm events to webhooks: one task per event with undelivered
/// transitions, retrying with exponential backoff, so a webhook that is
/// down delays only its own events.
struct Notifier {
    events: Events,
    client: reqwest::Client,
    /// Events being delivered; `true` when a new transition arrived meanwhile.
    active: Mutex<HashMap<String, bool>>,
}

const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// A transition still undelivered after this long is left for the next
/// start (it stays `notified: false`).
const GIVE_UP: Duration = Duration::from_secs(24 * 3600);

impl Notifier {
    fn new(events: Events) -> Notifier {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Notifier {
            events,
            client,
            active: Mutex::new(HashMap::new()),
        }
    }

    fn kick(self: &Arc<Self>, id: String) {
        {
            let mut a = self.active.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(dirty) = a.get_mut(&id) {
                *dirty = true;
                return;
            }
            a.insert(id.clone(), false);
        }
        tokio::spawn(self.clone().deliver(id));
    }

    async fn deliver(self: Arc<Self>, id: String) {
        let started = tokio::time::Instant::now();
        let mut backoff = FIRST_RETRY;
        loop {
            let ev = self.events.clone();
            let id2 = id.clone();
            let event = match blocking(move || ev.get(&id2)).await {
                Ok(Some(e)) => e,
                _ => break,
            };
            let pending = event.pending();
            if pending.is_empty() {
                let mut a = self.active.lock().unwrap_or_else(|p| p.into_inner());
                if a.get(&id).copied().unwrap_or(false) {
                    a.insert(id.clone(), false);
                    continue;
                }
                a.remove(&id);
                return;
            }
            let mut failed = false;
            for t in pending {
                let body = serde_json::json!({ "type": t.name(), "alarm": &event_for(&event, t) });
                let ok = match self.client.post(&event.webhook_url).json(&body).send().await {
                    Ok(r) if r.status().is_success() => true,
                    Ok(r) => {
                        tracing::debug!(alarm = %id, status = %r.status(), "webhook refused the event");
                        false
                    }
                    Err(e) => {
                        tracing::debug!(alarm = %id, error = %e, "webhook unreachable");
                        false
                    }
                };
                if !ok {
                    failed = true;
                    break;
                }
                let (ev, id2) = (self.events.clone(), id.clone());
                let _ = blocking(move || ev.mark_notified(&id2, t)).await;
            }
            if failed {
                if started.elapsed() > GIVE_UP {
                    tracing::warn!(alarm = %id, "webhook unreachable for a day: giving up until restart");
                    break;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_RETRY);
            } else {
                backoff = FIRST_RETRY;
            }
        }
        self.active.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }
}

/// The event as of transition `t` (a `fired` notification shows the alarm
/// firing even when it resolved before the webhook came back).
fn event_for(e: &AlarmEvent, t: Transition) -> AlarmEvent {
    let mut e = e.clone();
    if t == Transition::Fired {
        e.state = "firing";
        e.resolved_at = None;
    }
    e.notified = true;
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_from_deltas_and_resets() {
        let mut a = [0u64; STATS];
        a[Stat::Connections as usize] = 100;
        a[Stat::Active as usize] = 3;
        let mut b = a;
        b[Stat::Connections as usize] = 150;
        let v = values(&b, Some(&a), 10.0, 2);
        assert_eq!(v[Metric::NewConnectionsPerS.index()], 5.0);
        assert_eq!(v[Metric::ActiveConnections.index()], 3.0);
        assert_eq!(v[Metric::UnhealthyBackends.index()], 2.0);
        // Reset (restart): the new value is the delta.
        let v = values(&a, Some(&b), 10.0, 0);
        assert_eq!(v[Metric::NewConnectionsPerS.index()], 10.0);
        // A gauge that is transiently -1 shows 0.
        let mut c = [0u64; STATS];
        c[Stat::Active as usize] = u64::MAX;
        assert_eq!(values(&c, None, 1.0, 0)[Metric::ActiveConnections.index()], 0.0);
    }
}
