//! The metrics history kept in `metrics.db` for charts: a raw tier (one row
//! per resource and sample) and a rollup tier (per-metric averages over
//! `ROLLUP_S` buckets), each with its own retention.
//!
//! The sampler calls [`History::record`] then [`History::maintain`] every
//! sample; the API calls [`History::query`], which picks the tier and a
//! resolution so that a chart never has more than [`MAX_POINTS`] points.
//!
//! Both tiers have one `REAL` column per metric, named by `Metric::name` and
//! in the order of `Metric::index`.

use std::sync::{Arc, OnceLock};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::db::{self, Db};
use crate::{METRICS, Metric, Values};

/// The tables of both tiers (one row per resource and sample, the metrics
/// as columns in `Metric::ALL` order) and the bookkeeping of the rollup.
pub fn schema() -> String {
    let columns: String = crate::Metric::ALL
        .iter()
        .map(|m| format!("    {} REAL NOT NULL,\n", m.name()))
        .collect();
    let mut sql = String::new();
    for table in ["samples_raw", "samples_5m"] {
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (\n    resource TEXT NOT NULL,\n    ts INTEGER NOT NULL,\n\
             {columns}    PRIMARY KEY (resource, ts)\n) WITHOUT ROWID;\n\
             CREATE INDEX IF NOT EXISTS {table}_ts ON {table} (ts);\n"
        ));
    }
    sql.push_str(
        "CREATE TABLE IF NOT EXISTS history_meta (\n    key TEXT PRIMARY KEY NOT NULL,\n    value INTEGER NOT NULL\n) WITHOUT ROWID;\n",
    );
    sql
}

/// Rollup tier resolution.
pub const ROLLUP_S: i64 = 300;

/// The most points a [`Series`] holds.
pub const MAX_POINTS: usize = 400;

/// The resolutions a chart may have, finest first.
pub const RESOLUTIONS: [i64; 17] = [
    10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
];

const RAW_TABLE: &str = "samples_raw";
const ROLLUP_TABLE: &str = "samples_5m";

/// `history_meta` key: the end (exclusive, a multiple of `ROLLUP_S`) of what
/// has been rolled up.
const ROLLED_UP_TO: &str = "rolled_up_to";

/// How long each tier is kept, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub raw_s: i64,
    pub rollup_s: i64,
}

impl Default for Retention {
    /// Raw samples for a day, rollups for 30 days.
    fn default() -> Self {
        Retention {
            raw_s: 86_400,
            rollup_s: 2_592_000,
        }
    }
}

/// A resource's chart data: `(bucket start, per-metric average)` for each
/// bucket of `resolution_s` seconds that has samples, ascending.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub resolution_s: i64,
    pub points: Vec<(i64, Values)>,
}

/// The history of every resource's samples.
#[derive(Debug, Clone)]
pub struct History {
    db: Arc<Db>,
    retention: Retention,
    sample_interval_s: i64,
}

/// The SQL that depends on the metric columns, generated from `Metric::ALL`.
struct Sql {
    insert_raw: String,
    select_raw: String,
    select_rollup: String,
    rollup: String,
}

fn sql() -> &'static Sql {
    static SQL: OnceLock<Sql> = OnceLock::new();
    SQL.get_or_init(|| {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        let columns = names.join(", ");
        let placeholders = (3..METRICS + 3).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
        let averages = names.iter().map(|n| format!("AVG({n})")).collect::<Vec<_>>().join(", ");
        let select = |table: &str| {
            format!("SELECT ts, {columns} FROM {table} WHERE resource = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts")
        };
        Sql {
            insert_raw: format!(
                "INSERT OR REPLACE INTO {RAW_TABLE} (resource, ts, {columns}) VALUES (?1, ?2, {placeholders})"
            ),
            select_raw: select(RAW_TABLE),
            select_rollup: select(ROLLUP_TABLE),
            // The bucket start, rounded down also for negative timestamps.
            rollup: format!(
                "INSERT OR REPLACE INTO {ROLLUP_TABLE} (resource, ts, {columns}) \
                 SELECT resource, ts - (((ts % {ROLLUP_S}) + {ROLLUP_S}) % {ROLLUP_S}) AS bucket, {averages} \
                 FROM {RAW_TABLE} WHERE ts >= ?1 AND ts < ?2 GROUP BY resource, bucket"
            ),
        }
    })
}

/// SQLite turns NaN into NULL and charts cannot draw infinities.
fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// How many `res`-aligned buckets intersect `[from, to]` (≤ 0 when empty).
fn buckets(from: i64, to: i64, res: i64) -> i128 {
    i128::from(to.div_euclid(res)) - i128::from(from.div_euclid(res)) + 1
}

/// The resolution of a chart of `[from, to]` from a tier whose samples are
/// `native` seconds apart: the finest candidate no finer than the samples
/// that needs at most `MAX_POINTS` buckets. Candidates are `RESOLUTIONS` from
/// `native` up, preceded by `native` itself when it is finer than them all.
/// A range too long even for the coarsest gets a multiple of it.
pub fn resolution(native: i64, from: i64, to: i64) -> i64 {
    let native = native.max(1);
    let max = MAX_POINTS as i128;
    let finer = (native < RESOLUTIONS[0]).then_some(native);
    let mut candidates = finer
        .into_iter()
        .chain(RESOLUTIONS.into_iter().filter(|&r| r >= native));
    if let Some(r) = candidates.find(|&r| buckets(from, to, r) <= max) {
        return r;
    }
    // `buckets(r) <= span / r + 2`, so `r >= span / (max - 2)` is enough.
    let base = i128::from(native.max(RESOLUTIONS[RESOLUTIONS.len() - 1]));
    let span = i128::from(to) - i128::from(from);
    let step = (max - 2) * base;
    let r = ((span + step - 1) / step).max(1) * base;
    let mut r = i64::try_from(r).unwrap_or(i64::MAX);
    while buckets(from, to, r) > max && r < i64::MAX {
        r = r.saturating_add(i64::try_from(base).unwrap_or(i64::MAX));
    }
    r
}

impl History {
    /// `sample_interval_s` is how far apart `record` is called (at least 1).
    pub fn new(db: Arc<Db>, retention: Retention, sample_interval_s: i64) -> History {
        History {
            db,
            retention,
            sample_interval_s: sample_interval_s.max(1),
        }
    }

    pub fn retention(&self) -> Retention {
        self.retention
    }

    pub fn sample_interval_s(&self) -> i64 {
        self.sample_interval_s
    }

    /// One sample: rows at `ts` (unix seconds). One transaction; (resource, ts) unique (INSERT OR REPLACE).
    pub fn record(&self, ts: i64, rows: &[(String, Values)]) -> db::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.db.with(|c| {
            let tx = c.transaction()?;
            insert_raw(&tx, ts, rows)?;
            tx.commit()
        })
    }

    /// Roll complete ROLLUP_S buckets of raw rows not rolled up yet into the
    /// rollup tier (per-metric AVG over the bucket's samples; the bucket's ts
    /// = its start), then delete raw rows older than now - raw_s and rollup
    /// rows older than now - rollup_s.
    ///
    /// A bucket is complete once `now` reaches its end. What has been rolled
    /// up is remembered in `history_meta` (so nothing is recomputed, also
    /// after a restart): raw rows recorded later into a bucket already rolled
    /// up are not rolled up. Raw rows not rolled up yet are kept whatever
    /// the raw retention.
    pub fn maintain(&self, now: i64) -> db::Result<()> {
        let end = now - now.rem_euclid(ROLLUP_S);
        let raw_cut = now.saturating_sub(self.retention.raw_s);
        let rollup_cut = now.saturating_sub(self.retention.rollup_s);
        self.db.with(|c| {
            let tx = c.transaction()?;
            let mark: Option<i64> = tx
                .prepare_cached("SELECT value FROM history_meta WHERE key = ?1")?
                .query_row([ROLLED_UP_TO], |r| r.get(0))
                .optional()?;
            // Without a mark, start at the bucket of the oldest raw row.
            let start = match mark {
                Some(m) => Some(m),
                None => tx
                    .prepare_cached("SELECT MIN(ts) FROM samples_raw")?
                    .query_row([], |r| r.get::<_, Option<i64>>(0))?
                    .map(|t| t - t.rem_euclid(ROLLUP_S)),
            };
            // Raw rows from `kept` on are not rolled up yet.
            let mut kept = start;
            if let Some(s) = start
                && s < end
            {
                tx.prepare_cached(&sql().rollup)?.execute(params![s, end])?;
                tx.prepare_cached("INSERT OR REPLACE INTO history_meta (key, value) VALUES (?1, ?2)")?
                    .execute(params![ROLLED_UP_TO, end])?;
                kept = Some(end);
            }
            let raw_cut = kept.map_or(raw_cut, |k| raw_cut.min(k));
            tx.prepare_cached("DELETE FROM samples_raw WHERE ts < ?1")?
                .execute([raw_cut])?;
            tx.prepare_cached("DELETE FROM samples_5m WHERE ts < ?1")?
                .execute([rollup_cut])?;
            tx.commit()
        })
    }

    /// Points of `resource` within [from, to]: from the raw tier when the
    /// whole range is within its retention (`from >= now - raw_s`), else
    /// from the rollup tier; at most `MAX_POINTS`, see [`resolution`].
    pub fn query(&self, resource: &str, from: i64, to: i64, now: i64) -> db::Result<Series> {
        let raw = from >= now.saturating_sub(self.retention.raw_s);
        let native = if raw {
            self.sample_interval_s
        } else {
            ROLLUP_S.max(self.sample_interval_s)
        };
        let res = resolution(native, from, to);
        if from > to {
            return Ok(Series {
                resolution_s: res,
                points: Vec::new(),
            });
        }
        let sql = if raw { &sql().select_raw } else { &sql().select_rollup };
        let points = self.db.with(|c| {
            let mut st = c.prepare_cached(sql)?;
            let mut rows = st.query(params![resource, from, to])?;
            let mut points = Vec::new();
            // The bucket being summed: start, sums, count.
            let mut cur: Option<(i64, Values, u32)> = None;
            while let Some(row) = rows.next()? {
                let ts: i64 = row.get(0)?;
                let bucket = ts.saturating_sub(ts.rem_euclid(res));
                let mut values = [0.0; METRICS];
                for (i, v) in values.iter_mut().enumerate() {
                    *v = row.get::<_, Option<f64>>(i + 1)?.unwrap_or(0.0);
                }
                match &mut cur {
                    Some((b, sums, n)) if *b == bucket => {
                        for (s, v) in sums.iter_mut().zip(values) {
                            *s += v;
                        }
                        *n += 1;
                    }
                    _ => {
                        if let Some(done) = cur.take() {
                            points.push(average(done));
                        }
                        cur = Some((bucket, values, 1));
                    }
                }
            }
            if let Some(done) = cur {
                points.push(average(done));
            }
            Ok(points)
        })?;
        Ok(Series {
            resolution_s: res,
            points,
        })
    }

    /// Deletes every row of a resource (used when it is deleted).
    pub fn forget(&self, resource: &str) -> db::Result<()> {
        self.db.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM samples_raw WHERE resource = ?1", [resource])?;
            tx.execute("DELETE FROM samples_5m WHERE resource = ?1", [resource])?;
            tx.commit()
        })
    }
}

fn average((bucket, sums, n): (i64, Values, u32)) -> (i64, Values) {
    let n = f64::from(n);
    (bucket, sums.map(|s| finite(s / n)))
}

fn insert_raw(c: &Connection, ts: i64, rows: &[(String, Values)]) -> rusqlite::Result<()> {
    let mut st = c.prepare_cached(&sql().insert_raw)?;
    for (resource, values) in rows {
        st.raw_bind_parameter(1, resource)?;
        st.raw_bind_parameter(2, ts)?;
        for (i, v) in values.iter().enumerate() {
            st.raw_bind_parameter(i + 3, finite(*v))?;
        }
        st.raw_execute()?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use std::path::Path;

    /// A day-aligned "now".
    const NOW: i64 = 1_700_006_400;

    fn open(dir: &Path, interval: i64) -> History {
        History::new(
            Db::open(&dir.join("metrics.db")).unwrap(),
            Retention::default(),
            interval,
        )
    }

    /// Values `base`, `base + 1`, … (metric `i` gets `base + i`).
    fn vals(base: f64) -> Values {
        std::array::from_fn(|i| base + i as f64)
    }

    fn row(resource: &str, base: f64) -> (String, Values) {
        (resource.to_string(), vals(base))
    }

    /// Records many samples in one transaction (what `record` does for one).
    fn record_many(h: &History, samples: impl Iterator<Item = (i64, Vec<(String, Values)>)>) {
        h.db.with(|c| {
            let tx = c.transaction()?;
            for (ts, rows) in samples {
                insert_raw(&tx, ts, &rows)?;
            }
            tx.commit()
        })
        .unwrap();
    }

    fn count(h: &History, table: &str) -> i64 {
        h.db.with(|c| c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)))
            .unwrap()
    }

    /// `(ts, values)` of the rollup rows of `resource`.
    fn rollups(h: &History, resource: &str) -> Vec<(i64, Values)> {
        h.db.with(|c| {
            let mut st = c.prepare(&sql().select_rollup)?;
            let rows = st.query_map(params![resource, i64::MIN, i64::MAX], |r| {
                Ok((r.get(0)?, std::array::from_fn(|i| r.get(i + 1).unwrap())))
            })?;
            rows.collect()
        })
        .unwrap()
    }

    fn check_shape(s: &Series, from: i64, to: i64) {
        assert!(s.points.len() <= MAX_POINTS, "{} points", s.points.len());
        assert!(
            s.points.windows(2).all(|w| w[0].0 < w[1].0),
            "timestamps strictly increase"
        );
        for (ts, _) in &s.points {
            assert_eq!(ts.rem_euclid(s.resolution_s), 0, "aligned bucket");
            assert!(
                *ts <= to && ts + s.resolution_s > from,
                "bucket {ts} intersects the range"
            );
        }
    }

    #[test]
    fn schema_columns_follow_metric_all() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path(), 10);
        for table in [RAW_TABLE, ROLLUP_TABLE] {
            let cols: Vec<String> =
                h.db.with(|c| {
                    let mut st = c.prepare(&format!("PRAGMA table_info({table})"))?;
                    st.query_map([], |r| r.get::<_, String>(1))?.collect()
                })
                .unwrap();
            let mut want = vec!["resource".to_string(), "ts".to_string()];
            want.extend(Metric::ALL.iter().map(|m| m.name().to_string()));
            assert_eq!(cols, want, "{table}");
        }
        drop(h);
        // The schema applies again on an existing file.
        let h = open(dir.path(), 10);
        assert_eq!(count(&h, RAW_TABLE), 0);
    }

    #[test]
    fn record_and_query_raw_exact() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path(), 10);
        h.record(NOW - 20, &[row("lb-a", 1.5), row("vs-b", 100.0)]).unwrap();
        h.record(NOW - 10, &[row("lb-a", 2.25), row("vs-b", 200.0)]).unwrap();
        let mut odd = vals(7.0);
        odd[0] = f64::NAN;
        odd[1] = f64::INFINITY;
        odd[2] = f64::NEG_INFINITY;
        h.record(NOW, &[("lb-a".to_string(), odd)]).unwrap();
        // Same (resource, ts): replaced.
        h.record(NOW - 10, &[row("lb-a", 3.0)]).unwrap();
        h.record(NOW, &[]).unwrap();

        let s = h.query("lb-a", NOW - 3600, NOW, NOW).unwrap();
        assert_eq!(s.resolution_s, 10);
        let mut cleaned = vals(7.0);
        cleaned[0] = 0.0;
        cleaned[1] = 0.0;
        cleaned[2] = 0.0;
        assert_eq!(
            s.points,
            vec![(NOW - 20, vals(1.5)), (NOW - 10, vals(3.0)), (NOW, cleaned)]
        );

        let s = h.query("vs-b", NOW - 3600, NOW, NOW).unwrap();
        assert_eq!(s.points, vec![(NOW - 20, vals(100.0)), (NOW - 10, vals(200.0))]);

        // Bounds are inclusive.
        let s = h.query("lb-a", NOW - 10, NOW - 10, NOW).unwrap();
        assert_eq!(s.points, vec![(NOW - 10, vals(3.0))]);
        assert!(h.query("nobody", NOW - 3600, NOW, NOW).unwrap().points.is_empty());
        // from > to: empty.
        assert!(h.query("lb-a", NOW, NOW - 10, NOW).unwrap().points.is_empty());
    }

    #[test]
    fn resolution_rules() {
        let now = NOW + 1234;
        assert_eq!(resolution(10, now - 3600, now), 10);
        assert_eq!(resolution(10, now - 6 * 3600, now), 60);
        assert_eq!(resolution(10, now - 12 * 3600, now), 120);
        assert_eq!(resolution(10, now - 86_400, now), 300);
        assert_eq!(resolution(300, now - 7 * 86_400, now), 1800);
        assert_eq!(resolution(300, now - 30 * 86_400, now), 7200);
        // Never finer than the tier.
        assert_eq!(resolution(300, now - 60, now), 300);
        assert_eq!(resolution(15, now - 60, now), 20);
        assert_eq!(resolution(10, now - 3990, now), 10);
        assert_eq!(resolution(10, now - 4000, now), 20);
        // Finer samples than the list.
        assert_eq!(resolution(1, now - 3600, now), 10);
        assert_eq!(resolution(1, now - 120, now), 1);
        assert_eq!(resolution(1, now - 399, now), 1);
        assert_eq!(resolution(1, now - 400, now), 10);
        assert_eq!(resolution(5, now - 1995, now), 5);
        assert_eq!(resolution(5, now - 2000, now), 10);
        assert_eq!(resolution(0, now - 10, now), 1);
        // Empty range.
        assert_eq!(resolution(10, now, now - 100), 10);
        // Beyond the coarsest: a multiple of it, still at most 400 buckets.
        for (from, to) in [
            (0, 400 * 604_800),
            (-5, 10_000 * 604_800 + 3),
            (i64::MIN, i64::MAX),
            (i64::MIN, 0),
            (0, i64::MAX),
        ] {
            let r = resolution(10, from, to);
            assert_eq!(r % 604_800, 0, "{from}..{to}: {r}");
            assert!(buckets(from, to, r) <= 400, "{from}..{to}: {r}");
        }
        assert_eq!(resolution(10, 0, 399 * 604_800), 604_800);
        assert_eq!(resolution(1_000_000, 0, 10), 1_000_000);
    }

    #[test]
    fn day_of_raw_samples() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path(), 10);
        // A day of 10 s samples, in one transaction to keep the test fast.
        record_many(
            &h,
            (NOW - 86_400..=NOW)
                .step_by(10)
                .map(|ts| (ts, vec![row("lb-a", ts as f64), row("vs-b", 1.0)])),
        );
        h.maintain(NOW).unwrap();
        // Raw retention covers the day exactly.
        assert_eq!(count(&h, RAW_TABLE), 2 * 8641);
        for (span, res, n) in [
            (3600, 10, 361),
            (6 * 3600, 60, 361),
            (12 * 3600, 120, 361),
            (86_400, 300, 289),
        ] {
            let (from, to) = (NOW - span, NOW);
            let s = h.query("lb-a", from, to, NOW).unwrap();
            assert_eq!(s.resolution_s, res, "{span}");
            assert_eq!(s.points.len(), n, "{span}");
            check_shape(&s, from, to);
            // Full buckets average their samples, b, b + 10, …
            let (b, v) = s.points[0];
            assert_eq!(b, from);
            let mean = b as f64 + ((res / 10 - 1) * 5) as f64;
            assert_eq!(v, vals(mean), "{span}");
            // The last bucket holds the sample at `now` alone.
            assert_eq!(s.points[n - 1], (NOW, vals(NOW as f64)));
        }
        // An unaligned range starts with its aligned bucket, averaged over the rows inside.
        let s = h.query("lb-a", NOW - 4015, NOW - 5, NOW).unwrap();
        assert_eq!(s.resolution_s, 20);
        assert_eq!(s.points.len(), 201);
        check_shape(&s, NOW - 4015, NOW - 5);
        assert_eq!(s.points[0], (NOW - 4020, vals((NOW - 4010) as f64)));
        assert_eq!(s.points[1], (NOW - 4000, vals((NOW - 3995) as f64)));
        assert_eq!(*s.points.last().unwrap(), (NOW - 20, vals((NOW - 15) as f64)));
    }

    #[test]
    fn week_and_month_from_rollup() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path(), 10);
        // 31 days, two samples per 5-min bucket.
        record_many(
            &h,
            (NOW - 31 * 86_400..NOW)
                .step_by(150)
                .map(|ts| (ts, vec![row("lb-a", (ts / 150 % 1000) as f64)])),
        );
        h.maintain(NOW).unwrap();
        assert_eq!(count(&h, RAW_TABLE), 86_400 / 150);
        assert_eq!(count(&h, ROLLUP_TABLE), 30 * 288);
        let rolled = rollups(&h, "lb-a");
        let (b, v) = rolled[0];
        assert_eq!(b, NOW - 30 * 86_400);
        assert_eq!(v, vals((b / 150 % 1000) as f64 + 0.5));

        for (days, res, n) in [(7, 1800, 337), (30, 7200, 361)] {
            let (from, to) = (NOW - days * 86_400, NOW);
            let s = h.query("lb-a", from, to, NOW).unwrap();
            assert_eq!(s.resolution_s, res, "{days}");
            // The bucket of `now` has no rollup yet.
            assert_eq!(s.points.len(), n - 1, "{days}");
            check_shape(&s, from, to);
            // The average of the bucket's rollups.
            let per = (res / 300) as usize;
            let first = &rolled[rolled.iter().position(|(t, _)| *t == from).unwrap()..][..per];
            let want: Values = std::array::from_fn(|i| first.iter().map(|(_, v)| v[i]).sum::<f64>() / per as f64);
            assert_eq!(s.points[0], (from, want), "{days}");
        }
        // Beyond the raw retention the rollup tier answers, even for a short range.
        let s = h.query("lb-a", NOW - 2 * 86_400, NOW - 2 * 86_400 + 600, NOW).unwrap();
        assert_eq!(s.resolution_s, 300);
        assert_eq!(s.points, rolled[28 * 288..28 * 288 + 3].to_vec());
    }

    #[test]
    fn rollup_averages_and_idempotence() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path(), 10);
        let b = NOW; // a bucket start
        for (i, ts) in (b..b + 300).step_by(10).enumerate() {
            h.record(ts, &[row("lb-a", (i + 1) as f64), row("vs-b", 2.0)]).unwrap();
        }
        // The bucket is incomplete until `now` reaches its end.
        h.maintain(b + 299).unwrap();
        assert!(rollups(&h, "lb-a").is_empty());
        h.maintain(b + 300).unwrap();
        assert_eq!(rollups(&h, "lb-a"), vec![(b, vals(15.5))]);
        assert_eq!(rollups(&h, "vs-b"), vec![(b, vals(2.0))]);
        h.maintain(b + 300).unwrap();
        h.maintain(b + 301).unwrap();
        assert_eq!(rollups(&h, "lb-a"), vec![(b, vals(15.5))]);
        assert_eq!(count(&h, ROLLUP_TABLE), 2);

        // The next bucket, partly.
        for ts in (b + 300..b + 450).step_by(10) {
            h.record(ts, &[row("lb-a", 100.0)]).unwrap();
        }
        h.maintain(b + 450).unwrap();
        assert_eq!(rollups(&h, "lb-a"), vec![(b, vals(15.5))]);

        // A rolled-up bucket is not recomputed, also after a restart.
        h.record(b, &[row("lb-a", 1000.0)]).unwrap();
        h.maintain(b + 460).unwrap();
        assert_eq!(rollups(&h, "lb-a"), vec![(b, vals(15.5))]);
        drop(h);
        let h = open(dir.path(), 10);
        h.maintain(b + 470).unwrap();
        assert_eq!(rollups(&h, "lb-a"), vec![(b, vals(15.5))]);

        for ts in (b + 450..b + 600).step_by(10) {
            h.record(ts, &[row("lb-a", 200.0)]).unwrap();
        }
        h.maintain(b + 600).unwrap();
        h.maintain(b + 600).unwrap();
        assert_eq!(rollups(&h, "lb-a"), vec![(b, vals(15.5)), (b + 300, vals(150.0))]);
        assert_eq!(count(&h, ROLLUP_TABLE), 3);
        // The raw rows are still there (within retention).
        assert_eq!(count(&h, RAW_TABLE), 30 + 30 + 30);
    }

    #[test]
    fn maintain_is_cheap_when_nothing_is_new() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path(), 10);
        h.maintain(NOW).unwrap(); // empty
        record_many(
            &h,
            (NOW..NOW + 3600)
                .step_by(10)
                .map(|ts| (ts, (0..50).map(|r| row(&format!("vs-{r}"), 1.0)).collect())),
        );
        h.maintain(NOW + 3600).unwrap();
        assert_eq!(count(&h, ROLLUP_TABLE), 50 * 12);
        // Nothing new: nothing changes, and every statement maintain runs
        // goes through an index rather than scanning a table.
        h.maintain(NOW + 3601).unwrap();
        assert_eq!(count(&h, ROLLUP_TABLE), 50 * 12);
        assert_eq!(count(&h, RAW_TABLE), 50 * 360);
        let plan = |q: &str| -> String {
            h.db.with(|c| {
                let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {q}"))?;
                let zeros = std::iter::repeat_n(0, st.parameter_count());
                let rows: Vec<String> = st
                    .query_map(rusqlite::params_from_iter(zeros), |r| r.get(3))?
                    .collect::<rusqlite::Result<_>>()?;
                Ok(rows.join("; "))
            })
            .unwrap()
        };
        for (q, index) in [
            ("DELETE FROM samples_raw WHERE ts < ?1", "samples_raw_ts"),
            ("DELETE FROM samples_5m WHERE ts < ?1", "samples_5m_ts"),
            ("SELECT MIN(ts) FROM samples_raw", "samples_raw_ts"),
            (sql().rollup.as_str(), "samples_raw_ts"),
        ] {
            let p = plan(q);
            assert!(p.contains(index) && !p.contains("SCAN samples"), "{q}: {p}");
        }
        let p = plan(&sql().select_raw);
        assert!(p.contains("PRIMARY KEY") && !p.contains("SCAN"), "{p}");
    }

    #[test]
    fn retention() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::new(
            Db::open(&dir.path().join("metrics.db")).unwrap(),
            Retention {
                raw_s: 3600,
                rollup_s: 7200,
            },
            10,
        );
        for ts in (NOW..NOW + 600).step_by(10) {
            h.record(ts, &[row("lb-a", 1.0)]).unwrap();
        }
        h.maintain(NOW + 600).unwrap();
        assert_eq!((count(&h, RAW_TABLE), count(&h, ROLLUP_TABLE)), (60, 2));
        // Raw rows older than now - raw_s go.
        h.maintain(NOW + 3600 + 300).unwrap();
        assert_eq!((count(&h, RAW_TABLE), count(&h, ROLLUP_TABLE)), (30, 2));
        h.maintain(NOW + 3600 + 600).unwrap();
        assert_eq!((count(&h, RAW_TABLE), count(&h, ROLLUP_TABLE)), (0, 2));
        // The chart of that time comes from the rollup.
        let s = h.query("lb-a", NOW, NOW + 600, NOW + 4200).unwrap();
        assert_eq!(s.points, vec![(NOW, vals(1.0)), (NOW + 300, vals(1.0))]);
        // Rollup rows older than now - rollup_s go.
        h.maintain(NOW + 7200 + 1).unwrap();
        assert_eq!(rollups(&h, "lb-a"), vec![(NOW + 300, vals(1.0))]);
        h.maintain(NOW + 7200 + 300).unwrap();
        assert_eq!(count(&h, ROLLUP_TABLE), 1);
        h.maintain(NOW + 7200 + 301).unwrap();
        assert_eq!(count(&h, ROLLUP_TABLE), 0);
    }

    #[test]
    fn raw_rows_not_rolled_up_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::new(
            Db::open(&dir.path().join("metrics.db")).unwrap(),
            Retention {
                raw_s: 60,
                rollup_s: 7200,
            },
            10,
        );
        for ts in (NOW..NOW + 200).step_by(10) {
            h.record(ts, &[row("lb-a", 4.0)]).unwrap();
        }
        h.maintain(NOW + 200).unwrap();
        assert_eq!(count(&h, RAW_TABLE), 20);
        h.maintain(NOW + 300).unwrap();
        assert_eq!(rollups(&h, "lb-a"), vec![(NOW, vals(4.0))]);
        assert_eq!(count(&h, RAW_TABLE), 0);
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path(), 10);
        h.record(NOW - 10, &[row("lb-a", 5.0)]).unwrap();
        h.record(NOW, &[row("lb-a", 6.0)]).unwrap();
        let before = h.query("lb-a", NOW - 3600, NOW, NOW).unwrap();
        drop(h);
        let h = open(dir.path(), 10);
        let after = h.query("lb-a", NOW - 3600, NOW, NOW).unwrap();
        assert_eq!(after, before);
        assert_eq!(after.points, vec![(NOW - 10, vals(5.0)), (NOW, vals(6.0))]);
    }

    #[test]
    fn forget_removes_the_resource() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path(), 10);
        for ts in (NOW..NOW + 300).step_by(10) {
            h.record(ts, &[row("lb-a", 1.0), row("lb-b", 2.0)]).unwrap();
        }
        h.maintain(NOW + 300).unwrap();
        h.forget("lb-a").unwrap();
        assert!(h.query("lb-a", NOW, NOW + 300, NOW + 300).unwrap().points.is_empty());
        assert!(rollups(&h, "lb-a").is_empty());
        assert_eq!(h.query("lb-b", NOW, NOW + 300, NOW + 300).unwrap().points.len(), 30);
        assert_eq!(rollups(&h, "lb-b"), vec![(NOW, vals(2.0))]);
        assert_eq!((count(&h, RAW_TABLE), count(&h, ROLLUP_TABLE)), (30, 1));
    }

    #[test]
    fn one_second_samples() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path(), 1);
        record_many(
            &h,
            (NOW - 3600..=NOW).map(|ts| (ts, vec![row("lb-a", (ts - NOW) as f64)])),
        );
        let s = h.query("lb-a", NOW - 3600, NOW, NOW).unwrap();
        assert_eq!(s.resolution_s, 10);
        assert_eq!(s.points.len(), 361);
        check_shape(&s, NOW - 3600, NOW);
        assert_eq!(s.points[0], (NOW - 3600, vals(-3595.5)));
        let s = h.query("lb-a", NOW - 120, NOW, NOW).unwrap();
        assert_eq!(s.resolution_s, 1);
        assert_eq!(s.points.len(), 121);
        check_shape(&s, NOW - 120, NOW);
        assert_eq!(s.points[0], (NOW - 120, vals(-120.0)));
        assert_eq!(s.points[120], (NOW, vals(0.0)));
    }
}
