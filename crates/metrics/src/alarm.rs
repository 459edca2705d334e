//! Alarms: rules of the templates bound to LBs and VServers, evaluated on
//! every sample; each firing and each resolution is an event, kept in the
//! metrics database and posted to the template's webhook.
//!
//! A rule fires once its condition has held for `for_s` (measured from the
//! first sample that broke it) and resolves at the first sample where it no
//! longer holds, or when it stops applying (template unbound or changed,
//! resource deleted). A template bound to an LB applies its `lb` rules to
//! the LB and its `vserver` rules to each of the LB's VServers; bound to a
//! VServer, its `vserver` rules apply to that VServer (its `lb` rules do
//! not: bind the template to the LB for those).

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use weir_model::alarm::{AlarmRule, AlarmTemplate, Scope};

use crate::db::{self, Db};
use crate::{Metric, Values};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alarm_events (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    template_id TEXT NOT NULL,
    template_name TEXT NOT NULL,
    rule_index INTEGER NOT NULL,
    rule TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    lb_id TEXT NOT NULL,
    value REAL NOT NULL,
    started_at INTEGER NOT NULL,
    resolved_at INTEGER,
    webhook_url TEXT NOT NULL,
    notified_fired INTEGER NOT NULL DEFAULT 0,
    notified_resolved INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS alarm_events_started ON alarm_events (started_at);
CREATE INDEX IF NOT EXISTS alarm_events_open ON alarm_events (resolved_at);
";

/// One resource a template watches, with the scope it is watched as.
#[derive(Debug, Clone)]
pub struct Watch {
    pub resource_id: String,
    pub lb_id: String,
    pub scope: Scope,
    pub template: Arc<AlarmTemplate>,
}

/// An alarm event as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmEvent {
    pub id: String,
    #[serde(skip)]
    pub owner_id: String,
    pub template_id: String,
    pub template_name: String,
    pub rule_index: u32,
    pub rule: AlarmRule,
    pub resource_id: String,
    pub lb_id: String,
    /// The value that fired it.
    pub value: f64,
    /// `firing` or `resolved`.
    pub state: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<time::OffsetDateTime>,
    /// Every transition so far reached the webhook.
    pub notified: bool,
    #[serde(skip)]
    pub webhook_url: String,
    #[serde(skip)]
    pub notified_fired: bool,
    #[serde(skip)]
    pub notified_resolved: bool,
}

impl AlarmEvent {
    /// The transitions not yet delivered, in order.
    pub fn pending(&self) -> Vec<Transition> {
        let mut v = Vec::new();
        if !self.notified_fired {
            v.push(Transition::Fired);
        }
        if self.resolved_at.is_some() && !self.notified_resolved {
            v.push(Transition::Resolved);
        }
        v
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Fired,
    Resolved,
}

impl Transition {
    pub fn name(self) -> &'static str {
        match self {
            Transition::Fired => "alarm.fired",
            Transition::Resolved => "alarm.resolved",
        }
    }
}

/// Identifies one rule on one resource; the rule's text is part of it, so
/// an edited rule is a new alarm.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    template_id: String,
    rule_index: u32,
    rule: String,
    resource_id: String,
}

#[derive(Debug, Default)]
struct RuleState {
    /// The first sample of the current breach.
    since: Option<i64>,
    /// The open event.
    firing: Option<String>,
}

/// The alarm state machine (owned by the sampler; no locks).
#[derive(Debug, Default)]
pub struct Evaluator {
    state: HashMap<Key, RuleState>,
}

/// What one evaluation changed.
#[derive(Debug, Default)]
pub struct Changes {
    pub fired: Vec<AlarmEvent>,
    /// `(event id, when)`.
    pub resolved: Vec<(String, i64)>,
}

fn key(w: &Watch, i: usize, rule: &AlarmRule) -> Key {
    Key {
        template_id: w.template.id.clone(),
        rule_index: i as u32,
        rule: format!("{}:{rule}:{}", rule.scope.name(), rule.threshold),
        resource_id: w.resource_id.clone(),
    }
}

fn at(ts: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(ts).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

impl Evaluator {
    /// Picks up the events still firing (after a restart) so they resolve
    /// when their condition ends instead of staying open forever.
    pub fn resume(&mut self, open: &[AlarmEvent]) {
        for e in open {
            let k = Key {
                template_id: e.template_id.clone(),
                rule_index: e.rule_index,
                rule: format!("{}:{}:{}", e.rule.scope.name(), e.rule, e.rule.threshold),
                resource_id: e.resource_id.clone(),
            };
            self.state.insert(
                k,
                RuleState {
                    since: Some(e.started_at.unix_timestamp()),
                    firing: Some(e.id.clone()),
                },
            );
        }
    }

    /// Evaluates every watch at sample `ts` against the latest values.
    pub fn evaluate(&mut self, ts: i64, watches: &[Watch], values: &HashMap<String, Values>) -> Changes {
        let mut changes = Changes::default();
        let mut seen: HashMap<Key, ()> = HashMap::new();
        for w in watches {
            let Some(v) = values.get(&w.resource_id) else { continue };
            for (i, rule) in w.template.rules.iter().enumerate() {
                if rule.scope != w.scope {
                    continue;
                }
                let k = key(w, i, rule);
                let value = v.get(rule.metric.index()).copied().unwrap_or(0.0);
                let st = self.state.entry(k.clone()).or_default();
                seen.insert(k, ());
                if rule.op.holds(value, rule.threshold) {
                    let since = *st.since.get_or_insert(ts);
                    if st.firing.is_none() && ts - since >= i64::from(rule.for_s) {
                        let e = AlarmEvent {
                            id: weir_model::ids::new_id("event"),
                            owner_id: w.template.owner_id.clone(),
                            template_id: w.template.id.clone(),
                            template_name: w.template.name.clone(),
                            rule_index: i as u32,
                            rule: *rule,
                            resource_id: w.resource_id.clone(),
                            lb_id: w.lb_id.clone(),
                            value,
                            state: "firing",
                            started_at: at(ts),
                            resolved_at: None,
                            notified: false,
                            webhook_url: w.template.webhook_url.clone(),
                            notified_fired: false,
                            notified_resolved: false,
                        };
                        st.firing = Some(e.id.clone());
                        changes.fired.push(e);
                    }
                } else {
                    st.since = None;
                    if let Some(id) = st.firing.take() {
                        changes.resolved.push((id, ts));
                    }
                }
            }
        }
        // Rules that no longer apply: their open alarms resolve.
        self.state.retain(|k, st| {
            if seen.contains_key(k) {
                return true;
            }
            if let Some(id) = st.firing.take() {
                changes.resolved.push((id, ts));
            }
            false
        });
        changes
    }
}

/// The events table.
#[derive(Debug, Clone)]
pub struct Events {
    db: Arc<Db>,
}

const COLUMNS: &str = "id, owner_id, template_id, template_name, rule_index, rule, resource_id, lb_id, value, \
     started_at, resolved_at, webhook_url, notified_fired, notified_resolved";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlarmEvent> {
    let rule: String = r.get(5)?;
    let rule: AlarmRule = serde_json::from_str(&rule)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e)))?;
    let resolved: Option<i64> = r.get(10)?;
    let (fired, res): (bool, bool) = (r.get(12)?, r.get(13)?);
    Ok(AlarmEvent {
        id: r.get(0)?,
        owner_id: r.get(1)?,
        template_id: r.get(2)?,
        template_name: r.get(3)?,
        rule_index: r.get(4)?,
        rule,
        resource_id: r.get(6)?,
        lb_id: r.get(7)?,
        value: r.get(8)?,
        state: if resolved.is_some() { "resolved" } else { "firing" },
        started_at: at(r.get(9)?),
        resolved_at: resolved.map(at),
        notified: fired && (resolved.is_none() || res),
        webhook_url: r.get(11)?,
        notified_fired: fired,
        notified_resolved: res,
    })
}

/// Which events a listing returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    Any,
    Firing,
    Resolved,
}

impl Events {
    pub fn new(db: Arc<Db>) -> Events {
        Events { db }
    }

    pub fn insert(&self, e: &AlarmEvent) -> db::Result<()> {
        let rule = serde_json::to_string(&e.rule).map_err(|x| db::DbError(x.to_string()))?;
        self.db.with(|c| {
            c.prepare_cached(&format!(
                "INSERT INTO alarm_events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
            ))?
            .execute(params![
                e.id,
                e.owner_id,
                e.template_id,
                e.template_name,
                e.rule_index,
                rule,
                e.resource_id,
                e.lb_id,
                e.value,
                e.started_at.unix_timestamp(),
                e.resolved_at.map(|t| t.unix_timestamp()),
                e.webhook_url,
                e.notified_fired,
                e.notified_resolved,
            ])?;
            Ok(())
        })
    }

    pub fn resolve(&self, id: &str, ts: i64) -> db::Result<()> {
        self.db.with(|c| {
            c.execute(
                "UPDATE alarm_events SET resolved_at = ?2 WHERE id = ?1 AND resolved_at IS NULL",
                params![id, ts],
            )?;
            Ok(())
        })
    }

    pub fn mark_notified(&self, id: &str, t: Transition) -> db::Result<()> {
        let sql = match t {
            Transition::Fired => "UPDATE alarm_events SET notified_fired = 1 WHERE id = ?1",
            Transition::Resolved => "UPDATE alarm_events SET notified_resolved = 1 WHERE id = ?1",
        };
        self.db.with(|c| {
            c.execute(sql, params![id])?;
            Ok(())
        })
    }

    pub fn get(&self, id: &str) -> db::Result<Option<AlarmEvent>> {
        self.db.with(|c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM alarm_events WHERE id = ?1"),
                params![id],
                row,
            )
            .optional()
        })
    }

    /// Events newest first, optionally only `owner`'s.
    pub fn list(&self, owner: Option<&str>, state: StateFilter) -> db::Result<Vec<AlarmEvent>> {
        let cond = match state {
            StateFilter::Any => "1",
            StateFilter::Firing => "resolved_at IS NULL",
            StateFilter::Resolved => "resolved_at IS NOT NULL",
        };
        self.db.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLUMNS} FROM alarm_events WHERE {cond} AND (?1 IS NULL OR owner_id = ?1) \
                 ORDER BY started_at DESC, id DESC LIMIT 10000"
            ))?;
            st.query_map(params![owner], row)?.collect()
        })
    }

    /// Events with a transition not yet delivered.
    pub fn undelivered(&self) -> db::Result<Vec<AlarmEvent>> {
        self.db.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLUMNS} FROM alarm_events WHERE notified_fired = 0 \
                 OR (resolved_at IS NOT NULL AND notified_resolved = 0)"
            ))?;
            st.query_map([], row)?.collect()
        })
    }

    /// Deletes resolved events older than `before`.
    pub fn prune(&self, before: i64) -> db::Result<()> {
        self.db.with(|c| {
            c.execute(
                "DELETE FROM alarm_events WHERE resolved_at IS NOT NULL AND resolved_at < ?1 \
                 AND notified_fired = 1 AND notified_resolved = 1",
                params![before],
            )?;
            Ok(())
        })
    }
}

/// The metric a rule names, as a `Metric` index into a sample's values.
pub fn metric_value(values: &Values, m: Metric) -> f64 {
    values.get(m.index()).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use weir_model::alarm::Op;

    use super::*;

    fn template(for_s: u32) -> Arc<AlarmTemplate> {
        Arc::new(AlarmTemplate {
            id: "alarm-1".into(),
            name: "t".into(),
            rules: vec![AlarmRule {
                scope: Scope::Lb,
                metric: Metric::NewConnectionsPerS,
                op: Op::Gt,
                threshold: 5.0,
                for_s,
            }],
            webhook_url: "http://127.0.0.1:1/".into(),
            owner_id: "acct-1".into(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        })
    }

    fn values(v: f64) -> HashMap<String, Values> {
        let mut x = [0.0; crate::METRICS];
        x[Metric::NewConnectionsPerS.index()] = v;
        HashMap::from([("lb-1".to_string(), x)])
    }

    #[test]
    fn fires_after_for_s_and_resolves_when_it_stops_holding() {
        let w = vec![Watch {
            resource_id: "lb-1".into(),
            lb_id: "lb-1".into(),
            scope: Scope::Lb,
            template: template(20),
        }];
        let mut ev = Evaluator::default();
        assert!(ev.evaluate(0, &w, &values(10.0)).fired.is_empty());
        assert!(ev.evaluate(10, &w, &values(10.0)).fired.is_empty());
        // Held at 0, 10, 20: 20 s.
        let c = ev.evaluate(20, &w, &values(10.0));
        assert_eq!(c.fired.len(), 1);
        assert_eq!(c.fired[0].value, 10.0);
        let id = c.fired[0].id.clone();
        // Still firing: no second event.
        assert!(ev.evaluate(30, &w, &values(9.0)).fired.is_empty());
        let c = ev.evaluate(40, &w, &values(5.0));
        assert_eq!(c.resolved, vec![(id, 40)]);
        // A dip resets the clock.
        assert!(ev.evaluate(50, &w, &values(10.0)).fired.is_empty());
        assert!(ev.evaluate(60, &w, &values(1.0)).fired.is_empty());
        assert!(ev.evaluate(70, &w, &values(10.0)).fired.is_empty());
        assert!(ev.evaluate(80, &w, &values(10.0)).fired.is_empty());
        assert_eq!(ev.evaluate(90, &w, &values(10.0)).fired.len(), 1);
        // Unbinding resolves the open alarm.
        assert_eq!(ev.evaluate(100, &[], &values(10.0)).resolved.len(), 1);
    }

    #[test]
    fn events_persist_and_resume_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("m.db")).unwrap();
        let events = Events::new(db.clone());
        let w = vec![Watch {
            resource_id: "lb-1".into(),
            lb_id: "lb-1".into(),
            scope: Scope::Lb,
            template: template(0),
        }];
        let mut ev = Evaluator::default();
        let c = ev.evaluate(100, &w, &values(6.0));
        events.insert(&c.fired[0]).unwrap();
        assert_eq!(events.undelivered().unwrap().len(), 1);
        events.mark_notified(&c.fired[0].id, Transition::Fired).unwrap();
        assert!(events.undelivered().unwrap().is_empty());
        drop((events, db));
        let db = Db::open(&dir.path().join("m.db")).unwrap();
        let events = Events::new(db);
        let open = events.list(None, StateFilter::Firing).unwrap();
        assert_eq!(open.len(), 1);
        assert!(open[0].notified);
        let mut ev = Evaluator::default();
        ev.resume(&open);
        let c = ev.evaluate(110, &w, &values(1.0));
        assert_eq!(c.resolved, vec![(open[0].id.clone(), 110)]);
        events.resolve(&open[0].id, 110).unwrap();
        let e = events.get(&open[0].id).unwrap().unwrap();
        assert_eq!(e.state, "resolved");
        assert!(!e.notified);
        assert_eq!(e.pending(), vec![Transition::Resolved]);
        assert_eq!(events.list(Some("acct-2"), StateFilter::Any).unwrap().len(), 0);
        assert_eq!(events.list(Some("acct-1"), StateFilter::Resolved).unwrap().len(), 1);
    }
}
